/**
 * End-to-end helpers: real `switchyard` child processes on a config file, and Docplanner pushes.
 * Every process started here is killed in `afterAll` if a test left it running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@switchyard/testing';
import { afterAll } from 'vitest';

export const BIN = fileURLToPath(new URL('../../bin/switchyard.mjs', import.meta.url));
/** The checkout's `./sy`, as a newcomer runs it. */
export const SY = fileURLToPath(new URL('../../../../sy', import.meta.url));
const SLOT_BOOKED = fileURLToPath(
  new URL('../../../connectors/docplanner/fixtures/slot-booked.json', import.meta.url),
);

export const PUSH_KEY = 'dp-e2e-push-key-7f3a9c';
export const ADMIN_TOKEN = 'e2e-admin-token-5b21d0c9aa';
export const SECRET_KEY = 'e2e-secret-key-0123456789abcdef';

/** A fresh Standard Webhooks secret. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `switchyard-e2e-${prefix}-`));
}

/** One hub child process with its captured output. */
export interface HubChild {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Polls `/readyz` until it answers 200; rejects with the output if the process exits first. */
  ready(timeoutMs?: number): Promise<void>;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const running = new Set<ChildProcess>();
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs `switchyard <args>` as a child process. */
export function spawnSwitchyard(
  args: string[],
  opts: {
    cwd: string;
    env?: Record<string, string | undefined>;
    port?: number;
    /** Run through `./sy` (`./sy start …`, else `./sy switchyard …`) instead of the bin directly. */
    viaSy?: boolean;
    /** Its own process group, as a terminal runs a foreground command: `-pid` signals the group. */
    detached?: boolean;
  },
): HubChild {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const [command, argv] = opts.viaSy
    ? [SY, args[0] === 'start' ? args : ['switchyard', ...args]]
    : [process.execPath, [BIN, ...args]];
  const child = spawn(command, argv, { cwd: opts.cwd, env, stdio: 'pipe', detached: opts.detached ?? false });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    });
  });
  const url = `http://127.0.0.1:${opts.port ?? 0}`;
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    url,
    stdout: () => out,
    stderr: () => err,
    exited,
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (done) throw new Error(`switchyard exited before it was ready:\n${err}\n${out.slice(-4000)}`);
        try {
          const res = await fetch(`${url}/readyz`);
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`switchyard was not ready in ${timeoutMs} ms:\n${err}\n${out.slice(-4000)}`);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!done) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Writes `switchyard.yaml` in `dir` for a hub with one Docplanner pull instance `dp` (pulled every
 * 200 ms from `apiBaseUrl`, the simulator's client credentials), the admin token from `T_ADMIN`,
 * and `extra` lines at the end (e.g. a `logging` block).
 *
 * @example
 * ```ts
 * writeDocplannerPullConfig(dir, { databaseUrl: db.url(), apiBaseUrl: sim.url, secretKey: 't-secret-key-0123456789' });
 * const hub = await startHubIn(dir, { T_ADMIN: 'admin-token' });
 * ```
 */
export function writeDocplannerPullConfig(
  dir: string,
  o: { databaseUrl: string; apiBaseUrl: string; secretKey: string; extra?: readonly string[] },
): void {
  const lines = [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a secret reference, resolved by the hub.
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    `  url: ${o.databaseUrl}`,
    `secretKey: ${o.secretKey}`,
    'instances:',
    '  - id: dp',
    '    connector: docplanner',
    '    mode: pull',
    '    pull: { interval: 200ms }',
    '    settings:',
    `      apiBaseUrl: ${o.apiBaseUrl}`,
    '      clientId: sim-client',
    '      clientSecret: sim-secret-0123456789',
    ...(o.extra ?? []),
    '',
  ];
  writeFileSync(join(dir, 'switchyard.yaml'), lines.join('\n'));
}

/**
 * Starts `switchyard start` on the `switchyard.yaml` in `dir`, on a free port, and waits until it
 * is ready. The file decides the database: the runner's DATABASE_URL and SWITCHYARD_CONFIG are not
 * passed on.
 *
 * @example
 * ```ts
 * const hub = await startHubIn(dir, { T_ADMIN: ADMIN }); // hub.url, hub.stop('SIGKILL')
 * ```
 */
export async function startHubIn(
  dir: string,
  env: Record<string, string | undefined> = {},
): Promise<HubChild> {
  const port = await freePort();
  const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml', '--port', String(port)], {
    cwd: dir,
    port,
    env: { DATABASE_URL: undefined, SWITCHYARD_CONFIG: undefined, ...env },
  });
  await hub.ready();
  return hub;
}

/** Runs a one-shot `switchyard` command to its end. */
export async function runSwitchyard(
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined> },
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const run = spawnSwitchyard(args, opts);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** The Docplanner `slot-booked` fixture as booking `bookingId` (a distinct notification per id). */
export function slotBooked(bookingId: number): string {
  const payload = JSON.parse(readFileSync(SLOT_BOOKED, 'utf8')) as {
    created_at: string;
    data: { visit_booking: { id: string } };
  };
  payload.data.visit_booking.id = String(bookingId);
  return JSON.stringify(payload);
}

/** Pushes a notification as Docplanner would; resolves with the status, or 0 when the connection failed. */
export async function pushSlotBooked(hubUrl: string, instance: string, bookingId: number): Promise<number> {
  try {
    const res = await fetch(`${hubUrl}/hooks/${instance}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PUSH_KEY },
      body: slotBooked(bookingId),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** A config file for a Docplanner push instance `dp` and the given subscriptions (YAML lines). */
export function writeConfig(
  dir: string,
  opts: {
    port: number;
    database?: string;
    /** `database.startupWait` (with `database`). */
    startupWait?: string;
    subscriptions: string[];
    name?: string;
    extra?: string[];
    /** The `logging.level` (default info). */
    logLevel?: string;
  },
): string {
  const lines = [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    `  port: ${opts.port}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a secret reference, resolved by the hub.
    '  adminToken: ${env:E2E_ADMIN_TOKEN}',
    ...(opts.database ? ['database:', `  url: ${opts.database}`] : []),
    ...(opts.database && opts.startupWait ? [`  startupWait: ${opts.startupWait}`] : []),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a secret reference, resolved by the hub.
    ...(opts.database ? ['secretKey: ${env:E2E_SECRET_KEY}'] : []),
    'instances:',
    '  - id: dp',
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    '      pushAuth:',
    '        headerName: x-api-key',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a secret reference, resolved by the hub.
    '        apiKey: ${env:E2E_PUSH_KEY}',
    ...(opts.subscriptions.length > 0 ? ['subscriptions:', ...opts.subscriptions] : ['subscriptions: []']),
    'logging:',
    `  level: ${opts.logLevel ?? 'info'}`,
    ...(opts.extra ?? []),
    '',
  ];
  const file = join(dir, opts.name ?? 'switchyard.yaml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

/** A webhook subscription (YAML lines) to a local recording subscriber. */
export function webhookSubscription(id: string, url: string, opts: { schedule?: string[] } = {}): string[] {
  return [
    `  - id: ${id}`,
    '    kind: webhook',
    `    url: ${url}`,
    '    events: ["appointment.*"]',
    '    secrets:',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a secret reference, resolved by the hub.
    '      - ${env:E2E_SIGNING_SECRET}',
    '    allowPrivateAddresses: true',
    `    retry: { schedule: [${(opts.schedule ?? ['0s', '1s', '1s', '2s']).map((d) => `"${d}"`).join(', ')}] }`,
    '    timeout: 5s',
  ];
}

/** The environment holding the secrets the configs reference. */
export function secretEnv(signingSecret: string, databaseUrl?: string): Record<string, string | undefined> {
  return {
    E2E_ADMIN_TOKEN: ADMIN_TOKEN,
    E2E_PUSH_KEY: PUSH_KEY,
    E2E_SECRET_KEY: SECRET_KEY,
    E2E_SIGNING_SECRET: signingSecret,
    SY_E2E_DATABASE_URL: databaseUrl,
    // The file (or the embedded default) decides the database, never the test runner's environment.
    DATABASE_URL: undefined,
    SWITCHYARD_CONFIG: undefined,
  };
}

/** The Docplanner booking id a delivered event is about (from its vendor ids), if any. */
export function bookingIdOf(text: string, candidates: Iterable<number>): number | undefined {
  for (const id of candidates) if (text.includes(`"${id}"`)) return id;
  return undefined;
}
