/**
 * `./sy new-connector <name> [--auth header-key|basic|hmac | --pull] [--commands] [--display-name "Acme Booking"] [--root DIR] [--no-install] [--install-timeout SECONDS]`:
 * scaffolds `packages/connectors/<name>/` (the standard file set, a working minimal connector with the
 * vendor's auth shape, a fixture, passing unit and conformance tests, the vendor simulator and its
 * test), the end-to-end test, and `docs/connectors/<name>.md`; adds the connector to the dependencies
 * of `packages/server` (the end-to-end test imports it and its simulator by package name) and runs
 * `pnpm install --prefer-offline` to link it, so its tests run at once. `--root`
 * writes into another workspace-shaped folder and `--no-install` leaves the linking to the caller
 * (both used by the tests). The install is given `--install-timeout` seconds (default
 * {@link DEFAULT_INSTALL_TIMEOUT_S}): a pnpm that waits on a registry it cannot reach is stopped
 * with a clear message instead of holding the terminal (or a CI job) without end.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  AUTH_SHAPES,
  type AuthShape,
  ConnectorNameError,
  DEFAULT_AUTH,
  generateConnector,
  nextSteps,
} from './new-connector/generate.ts';

/**
 * How long the linking `pnpm install` may take. It reads only the local store, so a healthy run takes
 * seconds; one that outlasts this is waiting on a network it cannot reach.
 */
const DEFAULT_INSTALL_TIMEOUT_S = 300;

const usage = `usage: ./sy new-connector <name> [--auth ${AUTH_SHAPES.join('|')} (default ${DEFAULT_AUTH}) | --pull] [--commands] [--display-name "Acme Booking"] [--root DIR] [--no-install] [--install-timeout SECONDS (default ${DEFAULT_INSTALL_TIMEOUT_S})]
Writes a push connector, or with --pull a pull-only one (a vendor without webhooks whose list is polled); --commands adds book and cancel through the vendor's API: docs/writing-a-connector.md §9 (packages/connectors/cliniko).`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    console.error(`new-connector: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  if (parsed.positionals.length > 1) {
    console.error(`new-connector: one name at a time (got ${parsed.positionals.join(', ')})\n${usage}`);
    return 2;
  }
  const pull = parsed.values.pull === true;
  if (pull && parsed.values.auth !== undefined) {
    console.error(`new-connector: --auth is for pushes; --pull writes a pull-only connector\n${usage}`);
    return 2;
  }
  const auth = parsed.values.auth ?? DEFAULT_AUTH;
  if (!(AUTH_SHAPES as readonly string[]).includes(auth)) {
    console.error(
      `new-connector: --auth must be one of ${AUTH_SHAPES.join(', ')} (got ${JSON.stringify(auth)})\n${usage}`,
    );
    return 2;
  }
  const timeoutText = parsed.values['install-timeout'] ?? String(DEFAULT_INSTALL_TIMEOUT_S);
  const installTimeoutS = Number(timeoutText);
  if (!/^\d+$/.test(timeoutText) || installTimeoutS < 1) {
    console.error(
      `new-connector: --install-timeout must be a whole number of seconds ≥ 1 (got ${JSON.stringify(timeoutText)})\n${usage}`,
    );
    return 2;
  }
  const root = parsed.values.root ?? fileURLToPath(new URL('..', import.meta.url));
  try {
    const result = await generateConnector({
      name: parsed.positionals[0] ?? '',
      root,
      displayName: parsed.values['display-name'],
      ...(pull ? { pull } : { auth: auth as AuthShape }),
      commands: parsed.values.commands === true,
    });
    if (!parsed.values['no-install'] && result.dependents.length > 0) {
      // Links the new package (and the dependents' new links) from the local store: the package's own
      // dependencies are workspace packages. --prefer-offline, not --offline: re-resolving the
      // lockfile reads each package's metadata, and a store whose metadata cache was pruned or
      // written by another pnpm would fail offline; missing metadata is fetched, nothing else.
      // pnpm's output goes to stderr.
      console.error(
        `new-connector: pnpm install --prefer-offline (links @switchyard/connector-${result.name})`,
      );
      // --no-frozen-lockfile: the lockfile gains the new package (CI=true would otherwise freeze it).
      const install = spawnSync('pnpm', ['install', '--prefer-offline', '--no-frozen-lockfile'], {
        cwd: root,
        stdio: ['ignore', 2, 2],
        timeout: installTimeoutS * 1000,
        killSignal: 'SIGTERM',
      });
      if (install.status !== 0) {
        const timedOut = (install.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
        const why = timedOut
          ? `stopped after ${installTimeoutS} s: is a registry it needs out of reach?`
          : (install.error?.message ?? `exit ${install.status ?? install.signal}`);
        console.error(
          `new-connector: the files are written, but \`pnpm install --prefer-offline\` failed (${why}): run \`./sy install\` to link the package`,
        );
        return 1;
      }
      // What sy_install (scripts/toolchain.sh) records after an install: without it the next `./sy`
      // would install again, because the lockfile changed.
      copyFileSync(join(root, 'pnpm-lock.yaml'), join(root, 'node_modules', '.sy-lock-stamp'));
    }
    console.log(nextSteps(result));
    return 0;
  } catch (error) {
    if (error instanceof ConnectorNameError) {
      console.error(`new-connector: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'display-name': { type: 'string' },
      auth: { type: 'string' },
      pull: { type: 'boolean' },
      commands: { type: 'boolean' },
      root: { type: 'string' },
      'no-install': { type: 'boolean' },
      'install-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

process.exitCode = await main(process.argv.slice(2));
