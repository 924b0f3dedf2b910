/**
 * Where a hub process finds its Postgres: the configured URL, or an embedded Postgres it runs itself
 * (data under the config's `database.embedded.dataDir`, by default `./.switchyard/postgres` beside
 * the config file), and the key that seals secrets at rest.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchyardError } from '@switchyard/core';
import type pino from 'pino';
import { ConfigError } from '../config/errors.ts';
import { secretKeyProblem } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { isDatabaseNotUpYet } from '../storage/unavailable.ts';

/** A database the process can use, and how to let go of it. */
export interface HubDatabase {
  /** Connection URL. Holds a password: never print it. */
  url: string;
  kind: 'url' | 'embedded';
  /** The embedded cluster's data directory. */
  dataDir?: string;
  /** True when this process started the embedded Postgres (and so must stop it). */
  owned: boolean;
  /** Stops the embedded Postgres when this process started it. Idempotent. */
  release(): Promise<void>;
}

/** Beside the data directory: how other `switchyard` commands reach a running embedded Postgres. */
const STATE_FILE = 'embedded-postgres.json';
const HOOKED_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/** Beside the data directory: the generated `secretKey` of an embedded installation. */
export const SECRET_KEY_FILE = 'secret-key';

/** The `.switchyard` directory of an embedded installation: the parent of the data directory. */
export function stateDir(dataDir: string): string {
  return dirname(dataDir);
}

/**
 * Whether a process with this pid exists (a published state file's owner may be gone).
 *
 * @example
 * ```ts
 * alive(process.pid); // true
 * ```
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function runningEmbedded(dataDir: string): Promise<{ url: string; pid: number } | undefined> {
  try {
    const state = JSON.parse(await readFile(join(stateDir(dataDir), STATE_FILE), 'utf8')) as {
      url?: unknown;
      pid?: unknown;
      dataDir?: unknown;
    };
    if (typeof state.url !== 'string' || typeof state.pid !== 'number' || state.dataDir !== dataDir)
      return undefined;
    return alive(state.pid) ? { url: state.url, pid: state.pid } : undefined;
  } catch {
    return undefined;
  }
}

/** How long a Postgres left by a dead switchyard process gets to shut down before start gives up. */
const ORPHAN_STOP_MS = 30_000;

/**
 * Stops the embedded Postgres of a switchyard process that died without stopping it (SIGKILL, the
 * OOM killer, a crash): the server runs in its own process group, so it outlives its owner, and
 * its lock file would make every later start fail with "lock file postmaster.pid already exists".
 * Only a server this data directory's published state names as run by a process that is gone, and
 * whose lock file names this data directory, is stopped (SIGINT: Postgres's fast shutdown, which
 * writes a checkpoint and loses nothing committed).
 */
async function stopOrphanedPostgres(dataDir: string, logger: pino.Logger): Promise<void> {
  let owner: number;
  let postmaster: number;
  try {
    const state = JSON.parse(await readFile(join(stateDir(dataDir), STATE_FILE), 'utf8')) as {
      pid?: unknown;
      dataDir?: unknown;
    };
    const lock = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    if (typeof state.pid !== 'number' || state.dataDir !== dataDir || lock[1] !== dataDir) return;
    owner = state.pid;
    postmaster = Number(lock[0]);
  } catch {
    return; // no published owner or no lock file: nothing was left running
  }
  if (alive(owner) || !Number.isInteger(postmaster) || postmaster <= 0 || !alive(postmaster)) return;
  // A lock file left by a crash may name a pid since reused by another program: where the system
  // shows command lines, only a postgres server of this data directory is stopped.
  const command = await readFile(`/proc/${postmaster}/cmdline`, 'utf8').catch(() => undefined);
  if (command !== undefined && !(command.includes('postgres') && command.includes(dataDir))) return;
  logger.warn(
    { dataDir, postgresPid: postmaster, ownerPid: owner },
    'embedded Postgres left running by a switchyard process that is gone: stopping it first',
  );
  process.kill(postmaster, 'SIGINT');
  const deadline = Date.now() + ORPHAN_STOP_MS;
  while (alive(postmaster)) {
    if (Date.now() > deadline) {
      throw new Error(
        `the embedded Postgres in ${dataDir} (pid ${postmaster}), left by a switchyard process that is gone, did not stop within ${ORPHAN_STOP_MS / 1000} s: stop it, then start again`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Opens the configured database. With `database.kind: 'url'` nothing starts. Embedded: when
 * another `switchyard` process already runs the cluster of this data directory, its server is
 * reused (so `switchyard events list` works next to a running `switchyard start`), except by a hub
 * (`publish`), which is refused with a ConfigError saying to use a real Postgres; otherwise an
 * embedded PostgreSQL is started here, and `publish` makes it reachable for other commands.
 *
 * @example
 * ```ts
 * const database = await openHubDatabase(config, { logger, publish: true });
 * const hub = await createHub({ databaseUrl: database.url, ... });
 * // ...
 * await hub.stop();
 * await database.release();
 * ```
 */
export async function openHubDatabase(
  config: ResolvedConfig,
  options: { logger: pino.Logger; publish?: boolean },
): Promise<HubDatabase> {
  const { logger } = options;
  if (config.database.kind === 'url') {
    return { url: config.database.url, kind: 'url', owned: false, release: async () => {} };
  }
  const dataDir = config.database.dataDir;
  const running = await runningEmbedded(dataDir);
  if (running && options.publish) {
    // A second hub process beside the one that owns this embedded server would lose its database
    // the moment that one stops (it stops its Postgres on the way out). Commands that run and
    // exit (`events list`, `replay`) may share it; a hub may not.
    throw new ConfigError([
      {
        file: config.file,
        line: 1,
        column: 1,
        path: 'database',
        message: `another switchyard process (pid ${running.pid}) runs the embedded Postgres of ${dataDir}, and a hub started beside it would lose its database when that one stops. To run several processes (say --role http and --role worker), give them one Postgres: set DATABASE_URL, or database.url in the file`,
      },
    ]);
  }
  if (running) {
    logger.info(
      { dataDir, pid: running.pid },
      'using the embedded Postgres of the switchyard process already running on this data directory',
    );
    return { url: running.url, kind: 'embedded', dataDir, owned: false, release: async () => {} };
  }
  await stopOrphanedPostgres(dataDir, logger);
  logger.info(
    { dataDir },
    `embedded Postgres: no database.url in ${config.file} and no DATABASE_URL, so the hub runs its own PostgreSQL with its data in ${dataDir}. For several processes or production, set DATABASE_URL (or database.url) to a Postgres 15+ database.`,
  );
  // Imported here: only embedded mode needs the embedded-postgres binaries.
  const { startEmbeddedPostgres } = await import('@switchyard/embedded-postgres');
  const before = new Map(HOOKED_SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const pg = await startEmbeddedPostgres({
    dataDir,
    persistent: true,
    onLog: (line) => logger.debug({ postgres: line }, 'embedded postgres'),
  });
  // embedded-postgres installs signal handlers (async-exit-hook) that stop Postgres and exit at once
  // with 128+signal, cutting the graceful stop short. The process owns its signals: remove them.
  for (const signal of HOOKED_SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.off(signal, listener as (...args: unknown[]) => void);
    }
  }
  logger.info({ dataDir, port: pg.port }, 'embedded Postgres is running');
  const statePath = join(stateDir(dataDir), STATE_FILE);
  if (options.publish) {
    await writeFile(statePath, JSON.stringify({ url: pg.url, pid: process.pid, dataDir }), { mode: 0o600 });
  }
  let released: Promise<void> | undefined;
  return {
    url: pg.url,
    kind: 'embedded',
    dataDir,
    owned: true,
    release() {
      released ??= (async () => {
        if (options.publish) await rm(statePath, { force: true });
        await pg.stop();
        logger.info({ dataDir }, 'embedded Postgres stopped');
      })();
      return released;
    },
  };
}

/**
 * The key sealing secrets at rest. From the config when given. Embedded installations without one
 * get a generated key kept in `.switchyard/secret-key` (mode 0600) next to the data, so a restart
 * reads back what it sealed. With a real Postgres a missing `secretKey` is a configuration error:
 * a key that lives on one machine's disk would make the database unreadable to the other processes.
 * The rule is `secretKeyProblem` (config/load.ts), which `switchyard validate` asks too.
 *
 * @example
 * ```ts
 * const secretKey = await resolveSecretKey(config); // throws ConfigError when it must be configured
 * ```
 */
export async function resolveSecretKey(config: ResolvedConfig, logger?: pino.Logger): Promise<string> {
  if (config.secretKey) return config.secretKey;
  if (config.database.kind === 'url') throw new ConfigError([secretKeyProblem(config)!]);
  const dir = stateDir(config.database.dataDir);
  const path = join(dir, SECRET_KEY_FILE);
  try {
    const stored = (await readFile(path, 'utf8')).trim();
    if (stored.length >= 16) return stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dir, { recursive: true });
  const key = randomBytes(32).toString('base64url');
  // wx: two processes racing here must not overwrite each other's key.
  try {
    await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(path, 'utf8')).trim();
    throw error;
  }
  await chmod(path, 0o600);
  logger?.info({ file: path }, 'no secretKey in the config: generated one for this embedded installation');
  return key;
}

/**
 * `switchyard start` gave up waiting for its database (`database.startupWait`): the one line it
 * exits 1 with says where and why, never the URL (it may hold a password).
 */
export class DatabaseWaitExpired extends SwitchyardError {
  constructor(message: string) {
    super('SY_STORAGE_UNAVAILABLE', message);
  }
}

/** A stop signal came while `switchyard start` waited for its database: nothing was started. */
export class StoppedWhileWaiting extends Error {
  constructor() {
    super('stopped while waiting for the database');
    this.name = 'StoppedWhileWaiting';
  }
}

/** The first retry of a database that does not accept connections yet, and the longest between two. */
const WAIT_FIRST_MS = 250;
const WAIT_MAX_MS = 5000;

/** host:port of a Postgres URL, for the log: never its user, password or database. */
export function databaseAddress(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${host}:${u.port || '5432'}`;
  } catch {
    return 'the configured address';
  }
}

/** The error code of a failed connection (a refused connection to several addresses is an AggregateError). */
function errorCode(error: unknown): string {
  const e = error as { code?: unknown; errors?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string') return e.code;
  if (Array.isArray(e?.errors)) return errorCode(e.errors[0]);
  return typeof e?.message === 'string' && e.message !== '' ? e.message : 'no answer';
}

/**
 * Runs `probe` (a first statement on the database) until it succeeds, waiting out a database that
 * does not accept connections yet (`isDatabaseNotUpYet`: refused, unreachable, starting up) for at
 * most `waitMs`, with backoff from 250 ms to 5 s. Says once on the log that it waits and why (the
 * error code and host:port), and once that the database answers. Throws {@link DatabaseWaitExpired}
 * when the time is up, {@link StoppedWhileWaiting} when `signal` aborts meanwhile, and at once any
 * error waiting cannot cure (a refused password, a missing database, a bad URL).
 *
 * @example
 * ```ts
 * await waitForDatabase(() => sql`select 1`.execute(db), { url, waitMs: 60_000, logger, signal });
 * ```
 */
export async function waitForDatabase(
  probe: () => Promise<unknown>,
  options: { url: string; waitMs: number; logger: pino.Logger; signal?: AbortSignal },
): Promise<void> {
  const { logger, signal, waitMs } = options;
  const where = databaseAddress(options.url);
  const startedAt = performance.now();
  let delay = WAIT_FIRST_MS;
  let waiting = false;
  for (;;) {
    if (signal?.aborted) throw new StoppedWhileWaiting();
    try {
      await abortable(probe(), signal);
      if (waiting) {
        const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
        logger.info(
          { database: where, waitedSeconds: Number(seconds) },
          `the database at ${where} answers after ${seconds} s`,
        );
      }
      return;
    } catch (error) {
      if (error instanceof StoppedWhileWaiting || !isDatabaseNotUpYet(error)) throw error;
      const code = errorCode(error);
      const elapsed = performance.now() - startedAt;
      if (elapsed >= waitMs) {
        throw new DatabaseWaitExpired(
          `the database at ${where} does not accept connections (${code}), and did not within ${formatSeconds(waitMs)} (database.startupWait)`,
        );
      }
      if (!waiting) {
        waiting = true;
        logger.warn(
          { database: where, code, waitMs },
          `waiting for the database at ${where} (${code}): trying again for up to ${formatSeconds(waitMs)} (database.startupWait)`,
        );
      } else logger.debug({ database: where, code }, 'the database does not accept connections yet');
      const pause = Math.min(delay, waitMs - elapsed);
      delay = Math.min(delay * 2, WAIT_MAX_MS);
      try {
        await sleep(pause, undefined, signal ? { signal } : undefined);
      } catch {
        throw new StoppedWhileWaiting();
      }
    }
  }
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** `work`, or {@link StoppedWhileWaiting} as soon as `signal` aborts (a connect may take 5 s). */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new StoppedWhileWaiting());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
