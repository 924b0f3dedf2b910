// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * The hub as users run it: `switchyard start` (packages/server/bin/switchyard.mjs) on a
 * switchyard.yaml the bench writes, every role unless told otherwise, default logging (the level
 * is not set, so `CONFIG_DEFAULTS.logging.level`) with stdout and stderr redirected to a file as an
 * operator would (`switchyard start > hub.log 2>&1`), one Docplanner push instance and webhook
 * subscriptions to the bench's subscriber. Nothing in packages/server is changed or bypassed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../packages/testing/src/index.ts';
import { API_KEY, INSTANCE_ID, SECRET_KEY } from './docplanner.ts';
import { waitUntil } from './result.ts';

/**
 * The node flags `./sy start` (the README's command) runs the hub with: 8 MB semi-spaces
 * (docs/operations.md, "Memory"). Every hub the bench starts gets them, so its CPU and RSS rows are
 * the hub's as users start it.
 */
export const HUB_NODE_FLAGS = ['--max-semi-space-size=8'];

const BIN = fileURLToPath(new URL('../../packages/server/bin/switchyard.mjs', import.meta.url));

/** What {@link startCliHub} starts. */
export interface CliHubOptions {
  /** The hub's database (a fresh one per run). */
  databaseUrl: string;
  /** `all` (default, as `switchyard start` runs), `http` or `worker`. */
  role?: 'all' | 'http' | 'worker';
  /** Webhook subscription URLs (one subscription each; the same URL may repeat). */
  subscribers: string[];
  /** An OTLP/HTTP traces endpoint: tracing on at sample ratio 1.0 (bench/otel.ts); off when absent. */
  traces?: string;
  /** The subscriptions' body format (`cloudevents` when absent; bench/fhir.ts). */
  format?: string;
}

/** A running `switchyard start` child. */
export interface CliHub {
  port: number;
  /** The spawned process and every descendant of it (the hub process(es) whose CPU counts). */
  pids(): number[];
  /** Peak resident set size of the hub process(es) so far, bytes (VmHWM from /proc, summed). */
  peakRss(): number;
  /** Lines the hub has written to its log file so far. */
  logLines(): number;
  /** The hub's log file as written so far (with `BENCH_TRACE_GC=1`, V8's `--trace-gc-nvp` lines too). */
  logText(): string;
  /** Lines of the log file that are fastify request logs (`reqId`), so far. */
  requestLogLines(): number;
  /** SIGTERM, wait for the exit (SIGKILL after 30 s); removes the config directory. */
  stop(): Promise<void>;
}

function yaml(port: number, subscribers: string[], traces?: string, format?: string): string {
  return [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    `  port: ${port}`,
    '  adminToken: ${env:SY_BENCH_ADMIN_TOKEN}',
    'database:',
    '  url: ${env:SY_BENCH_DATABASE_URL}',
    'secretKey: ${env:SY_BENCH_SECRET_KEY}',
    'instances:',
    `  - id: ${INSTANCE_ID}`,
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    '      pushAuth:',
    '        headerName: x-api-key',
    '        apiKey: ${env:SY_BENCH_PUSH_KEY}',
    'subscriptions:',
    ...subscribers.flatMap((url, i) => [
      `  - id: bench-${i + 1}`,
      '    kind: webhook',
      `    url: ${url}`,
      '    events: ["appointment.*"]',
      ...(format ? [`    format: ${format}`] : []),
      '    secrets:',
      '      - ${env:SY_BENCH_SIGNING_SECRET}',
      // The subscriber is on loopback: the SSRF guard would refuse it otherwise.
      '    allowPrivateAddresses: true',
    ]),
    ...(traces ? ['telemetry:', '  traces:', `    endpoint: ${traces}`, '    sampleRatio: 1'] : []),
    // No `logging:` block: the default level, as a user who does not set one gets.
    '',
  ].join('\n');
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const line of (() => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    } catch {
      return [];
    }
  })()) {
    const child = Number(line);
    if (child > 0) out.push(child, ...children(child));
  }
  return out;
}

function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function countLines(file: string, match?: string): number {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (const line of text.split('\n')) if (line && (!match || line.includes(match))) n++;
  return n;
}

/**
 * Writes the config, runs `switchyard start` and waits for `/readyz`.
 *
 * @example
 * ```ts
 * const hub = await startCliHub({ databaseUrl: db.url, subscribers: [subscriber.url] });
 * await cannon({ url: hookUrl(hub.port), durationS: 10 });
 * await hub.stop();
 * ```
 */
export async function startCliHub(o: CliHubOptions): Promise<CliHub> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-'));
  const port = await freePort();
  writeFileSync(join(dir, 'switchyard.yaml'), yaml(port, o.subscribers, o.traces, o.format));
  const logFile = join(dir, 'hub.log');
  const fd = openSync(logFile, 'a');
  const env: Record<string, string | undefined> = {
    ...process.env,
    SY_BENCH_ADMIN_TOKEN: randomBytes(16).toString('hex'),
    SY_BENCH_DATABASE_URL: o.databaseUrl,
    SY_BENCH_SECRET_KEY: SECRET_KEY,
    SY_BENCH_PUSH_KEY: API_KEY,
    SY_BENCH_SIGNING_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
    // The file decides the database and the config, not the bench's environment.
    DATABASE_URL: undefined,
    SWITCHYARD_CONFIG: undefined,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  // BENCH_CPU_PROF=dir profiles the hub (a V8 .cpuprofile written to dir when it exits; split it
  // by component with `node bench/lib/profile-split.ts <file>`).
  const prof = process.env.BENCH_CPU_PROF;
  const profile = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  // BENCH_TRACE_GC=1 has V8 log every collection to the hub's log (`--trace-gc-nvp`: pause,
  // allocated and promoted bytes); bench/lib/tail-latency.ts sums them over its measured window.
  if (process.env.BENCH_TRACE_GC === '1') profile.push('--trace-gc-nvp');
  // BENCH_OLD_GEN_SITES=<file> loads the old generation's site profiler (old-generation-sites.ts),
  // started and stopped by SIGUSR2 (bench/lib/tail-latency.ts sends both).
  if (process.env.BENCH_OLD_GEN_SITES)
    profile.push(`--import=${fileURLToPath(new URL('./old-generation-sites.ts', import.meta.url))}`);
  // BENCH_HUB_NODE_FLAGS adds node (or V8) flags to the hub's command line, space-separated, for
  // trials of a setting the hub does not give itself (say, a garbage collector flag).
  const extra = process.env.BENCH_HUB_NODE_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
  profile.unshift(...HUB_NODE_FLAGS, ...extra);
  const child: ChildProcess = spawn(
    process.execPath,
    [...profile, BIN, 'start', '--config', 'switchyard.yaml', '--role', o.role ?? 'all'],
    { cwd: dir, env, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const pids = () => (child.pid ? [child.pid, ...children(child.pid)] : []);
  const hwm = new Map<number, number>();
  const peakRss = () => {
    // A process's own high-water mark; kept per pid so a child that exited still counts.
    for (const pid of pids()) hwm.set(pid, Math.max(hwm.get(pid) ?? 0, vmHwm(pid)));
    return [...hwm.values()].reduce((a, b) => a + b, 0);
  };
  const stop = async () => {
    peakRss();
    if (!exited) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exit;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      async () => {
        if (exited)
          throw new Error(`switchyard start exited:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/readyz`);
          await res.arrayBuffer();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      'switchyard start to be ready',
      120_000,
      100,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    pids,
    peakRss,
    logLines: () => (statSync(logFile, { throwIfNoEntry: false }) ? countLines(logFile) : 0),
    logText: () => (statSync(logFile, { throwIfNoEntry: false }) ? readFileSync(logFile, 'utf8') : ''),
    requestLogLines: () =>
      statSync(logFile, { throwIfNoEntry: false }) ? countLines(logFile, '"reqId"') : 0,
    stop,
  };
}
