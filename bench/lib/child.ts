/**
 * Runs a benchmark participant (the hub, a baseline server, a pg-boss worker) in its own Node
 * process, so its peak resident memory is its own and it does not share an event loop with the
 * load generator. Parent and child talk over IPC with a tiny request/answer protocol.
 */
import { type ChildProcess, fork } from 'node:child_process';

interface Request {
  id: number;
  method: string;
  args: unknown[];
}

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** The parent's handle on a child process. */
export interface Child {
  /** Calls a method the child registered with {@link serveChild}. */
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  /** Peak resident set size of the child so far, bytes (`process.resourceUsage().maxRSS`). */
  peakRss(): Promise<number>;
  /** Asks the child to stop and waits for it to exit (kills it after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<void>;
  readonly process: ChildProcess;
}

/**
 * Starts `entry` (a .ts file under bench/lib) with IPC and waits for it to report ready.
 *
 * @example
 * ```ts
 * const hub = await startChild(new URL('./hub-process.ts', import.meta.url), { DATABASE_URL: url });
 * const { port } = await hub.call<{ port: number }>('start', {});
 * await hub.stop();
 * ```
 */
export async function startChild(
  entry: URL,
  env: Record<string, string> = {},
  execArgv: string[] = [],
): Promise<Child> {
  const child = fork(entry, [], {
    env: { ...process.env, ...env },
    execArgv: [...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      for (const p of pending.values())
        p.reject(new Error(`child ${entry.pathname} exited (${code ?? signal})`));
      pending.clear();
      resolve();
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.once('message', (m) =>
      (m as { ready?: boolean }).ready ? resolve() : reject(new Error('bad hello')),
    );
    child.once('exit', () => reject(new Error(`child ${entry.pathname} exited before it was ready`)));
  });
  await ready;
  child.on('message', (raw) => {
    const m = raw as Answer;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  });
  const handle: Child = {
    process: child,
    call<T>(method: string, ...args: unknown[]): Promise<T> {
      if (exited) return Promise.reject(new Error(`child ${entry.pathname} has exited`));
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, method, args } satisfies Request);
      });
    },
    async peakRss() {
      return handle.call<number>('__peakRss');
    },
    async stop(timeoutMs = 30_000) {
      if (exited) return;
      await handle.call('__stop').catch(() => {});
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(timer);
    },
  };
  return handle;
}

type Method = (...args: never[]) => unknown;

/**
 * The child's side: registers methods the parent may call. `onStop` runs before the process exits.
 *
 * @example
 * ```ts
 * serveChild({ start: async (opts) => ({ port: 1234 }) }, async () => server.close());
 * ```
 */
export function serveChild(methods: Record<string, Method>, onStop: () => Promise<void>): void {
  process.on('message', async (raw) => {
    const m = raw as Request;
    const answer = (a: Omit<Answer, 'id'>) => process.send?.({ id: m.id, ...a });
    try {
      if (m.method === '__peakRss') return answer({ ok: true, value: process.resourceUsage().maxRSS * 1024 });
      if (m.method === '__stop') {
        await onStop();
        answer({ ok: true });
        process.disconnect?.();
        setTimeout(() => process.exit(0), 50).unref();
        return;
      }
      const fn = methods[m.method];
      if (!fn) throw new Error(`no method ${m.method}`);
      answer({ ok: true, value: await (fn as (...a: unknown[]) => unknown)(...m.args) });
    } catch (error) {
      answer({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
  process.send?.({ ready: true });
}
