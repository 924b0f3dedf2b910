/**
 * What the operational commands (`start`, `migrate`, `replay`, `events`, `subscriptions`) share:
 * finding and loading the config file, and a hub on its database for a command that talks to the
 * database directly (no HTTP, no workers).
 */
import type pino from 'pino';
import { ConfigError } from '../config/errors.ts';
import { formatProblem, type LoadOptions, loadConfig } from '../config/load.ts';
import type { ConfigProblem, ResolvedConfig } from '../config/types.ts';
import { shippedConnectors } from '../connectors.ts';
import { createLogger, secretScrubber } from '../logging/logger.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { type HubDatabase, openHubDatabase, resolveSecretKey } from '../runtime/database.ts';
import { isDatabaseUnavailable } from '../storage/unavailable.ts';
import { type CliIO, findConfigFile, type ParsedArgs } from './command.ts';

/**
 * Prints located problems (never a secret) and the count, then what did not happen (`not started`
 * for `start`; a command that starts nothing says so itself); the exit code is 1.
 */
export function reportProblems(
  io: CliIO,
  shown: string,
  problems: readonly ConfigProblem[],
  outcome = 'not started',
): number {
  for (const problem of problems) io.stderr.write(`${formatProblem({ ...problem, file: shown })}\n`);
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  io.stderr.write(`${shown}: ${count}; ${outcome}\n`);
  return 1;
}

/**
 * TLS errors of the connection to the database: a server without SSL while the URL asks for it
 * (`sslmode=require`), or a certificate Node does not trust. The operator's to fix (the URL or the
 * server's certificate), never a bug of the command.
 */
const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const NO_SSL = /does not support SSL connections/;

/**
 * Says so when `error` is the database refusing or not answering (a stopped server, a wrong host,
 * password or database name), a database URL the driver cannot parse (a port past 65535, an IPv6
 * literal without its closing bracket: pg answers `Invalid URL`), or the TLS of the connection
 * failing (a server without SSL for `sslmode=require`): an operator's condition, not a bug of the
 * command, so it is printed as one line and exit 1, as `start` does ("could not start: …"). The
 * one place every one-shot command on the database reports it (an audit found "internal error"
 * and a stack for the last two). Returns undefined otherwise.
 *
 * @example
 * ```ts
 * const code = reportUnreachableDatabase(io, secrets, error);
 * if (code === undefined) throw error;
 * ```
 */
export function reportUnreachableDatabase(
  io: CliIO,
  secrets: readonly string[],
  error: unknown,
): number | undefined {
  const message = describeUnreachableDatabase(error);
  if (message === undefined) return undefined;
  io.stderr.write(secretScrubber(secrets)(`switchyard: cannot reach the database: ${message}\n`));
  return 1;
}

/** What {@link reportUnreachableDatabase} prints after its prefix, or undefined for any other error. */
function describeUnreachableDatabase(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  const text = (error as { message?: unknown } | undefined)?.message;
  // Node's TypeError keeps the whole URL in `input`: only the fixed message and a hint are printed.
  if (code === 'ERR_INVALID_URL')
    return 'its URL (database.url or DATABASE_URL) is not a valid URL: check the host, the port (1..65535) and the [brackets] of an IPv6 address';
  if ((typeof code === 'string' && TLS_CODES.has(code)) || (typeof text === 'string' && NO_SSL.test(text)))
    return `${text} (the URL's sslmode and the server's TLS setup must agree)`;
  // The outage the workers wait out (storage/unavailable.ts), or credentials Postgres refuses
  // (SQLSTATE class 28): the operator's to fix either way.
  const refused = typeof code === 'string' && code.startsWith('28');
  if (!refused && !isDatabaseUnavailable(error)) return undefined;
  // A refused connection to several addresses is an AggregateError with an empty message.
  return (error as Error).message || String(code);
}

/**
 * Says on stderr which database a command uses when it is an embedded Postgres: without
 * `database.url` or DATABASE_URL a command quietly ran on one (its log is warnings only), and an
 * operator whose hub runs on another database saw an empty list with no word why (an audit). One
 * line, the data directory and how to choose another; a real Postgres is not named (its URL holds
 * a password).
 */
export function reportEmbeddedDatabase(io: CliIO, database: HubDatabase): void {
  if (database.kind !== 'embedded') return;
  const whose = database.owned
    ? 'started for this command: no switchyard start runs on it'
    : 'the one the running switchyard start uses';
  io.stderr.write(
    `switchyard: database: the embedded Postgres at ${database.dataDir} (${whose}); for another, give --config FILE with database.url, or set DATABASE_URL\n`,
  );
}

/** What a command on the database did when its config has problems (`start` says `not started`). */
export const NOTHING_DONE = 'nothing done';

/** A loaded config, or the exit code after its problems were printed. */
export async function loadForCommand(
  args: ParsedArgs,
  io: CliIO,
  resolve: LoadOptions['resolve'] = 'all',
  outcome?: string,
): Promise<{ config: ResolvedConfig; secrets: string[]; shown: string; example: boolean } | number> {
  const file = findConfigFile(args, io);
  if (file.example)
    io.stderr.write(`no --config and no ./switchyard.yaml: using the example ${file.shown}\n`);
  const result = await loadConfig(file.path, {
    env: io.env,
    connectors: shippedConnectors,
    resolve,
    // What `start` would refuse besides: not a problem of a command that only talks to a hub.
    reportSecretKey: typeof resolve !== 'object',
  });
  if (!result.ok) return reportProblems(io, file.shown, result.problems, outcome);
  return { config: result.config, secrets: result.secrets, shown: file.shown, example: file.example };
}

/** What a command run by {@link withHub} gets. */
export interface CommandHub {
  hub: Hub;
  config: ResolvedConfig;
  logger: pino.Logger;
}

/**
 * Loads the config, opens its database (reusing a running embedded Postgres when there is one),
 * and runs `fn` with a hub that runs no workers; closes everything after. `queue: true` starts the
 * hub's pg-boss instance, for a command that enqueues (`commands send`).
 *
 * @example
 * ```ts
 * return withHub(args, io, async ({ hub }) => {
 *   io.stdout.write(`${(await hub.events.list()).items.length}\n`);
 *   return 0;
 * });
 * ```
 */
export async function withHub(
  args: ParsedArgs,
  io: CliIO,
  fn: (ctx: CommandHub) => Promise<number>,
  opts: { queue?: boolean } = {},
): Promise<number> {
  // A command on the database needs its URL and the secret key, not the vendors' credentials.
  // Such a command starts nothing: "not started" read as if a hub had been asked for (an audit).
  const loaded = await loadForCommand(args, io, 'database', NOTHING_DONE);
  if (typeof loaded === 'number') return loaded;
  const { config, secrets, shown } = loaded;
  // Commands print their results on stdout; the hub's own log lines go to stderr, warnings and up.
  const logger = createLogger({
    level: config.logging.level === 'silent' ? 'silent' : 'warn',
    pretty: (io.stderr as { isTTY?: boolean }).isTTY === true,
    secrets,
    destination: io.stderr,
  });
  let secretKey: string;
  try {
    secretKey = await resolveSecretKey(config);
  } catch (error) {
    if (error instanceof ConfigError) return reportProblems(io, shown, error.problems, NOTHING_DONE);
    throw error;
  }
  const database = await openHubDatabase(config, { logger });
  reportEmbeddedDatabase(io, database);
  try {
    let hub: Hub;
    try {
      hub = await createHub({
        databaseUrl: database.url,
        connectors: shippedConnectors,
        secretKey,
        logger,
        poolSize: 2,
        // A production database is migrated by the deploy step only (`switchyard migrate`, `start`).
        migrate: database.kind === 'embedded',
        options: { workers: false, queue: opts.queue ?? false },
      });
    } catch (error) {
      const code = reportUnreachableDatabase(io, secrets, error);
      if (code === undefined) throw error;
      return code;
    }
    try {
      // With a queue, start it (and the LISTEN connection): no workers run either way.
      if (opts.queue) await hub.start();
      return await fn({ hub, config, logger });
    } catch (error) {
      // The database lost after the hub opened it (a restart, a failover to a read-only standby):
      // the same one line and exit 1, not "internal error (a bug ...)" with a stack.
      const code = reportUnreachableDatabase(io, secrets, error);
      if (code === undefined) throw error;
      return code;
    } finally {
      await hub.stop({ graceful: true });
    }
  } finally {
    await database.release();
  }
}
