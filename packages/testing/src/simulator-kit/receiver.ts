/**
 * The tiny hub stand-in the simulator tests push to: it records every request and answers from a
 * script (statuses, optionally with a body, content type or delay).
 *
 * Simulator tests import it as `@switchyard/testing/simulator-kit/receiver`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { closeServer, listenLocal, readBody } from './server.ts';

/** One request the receiver got. */
export interface ReceivedPush {
  /** The request path and query (`/hooks/dp`). */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An answer of the script: a status, or a status with a body, content type or delay. */
export type ScriptedAnswer = number | { status: number; body?: string; type?: string; delayMs?: number };

/** Options of {@link startHookReceiver}. */
export interface HookReceiverOptions {
  /** Appended to the base URL in `url` (e.g. `/hooks/bb`). Default: none. */
  path?: string;
  /** The answers, in order (more can be pushed onto `answers` later). */
  answers?: ScriptedAnswer[];
  /** When the script runs out: `repeat` the last answer given, or answer `200`. Default `200`. */
  whenDone?: 'repeat' | 200;
  /** Body of answers that set none. Default `{"status":"accepted"}`. */
  body?: string;
}

/** A started receiver. */
export interface HookReceiver {
  /** Where to push: `http://127.0.0.1:<port>` plus the `path` option. */
  url: string;
  received: ReceivedPush[];
  /** What is left of the script; push onto it to script the next answers. */
  answers: ScriptedAnswer[];
  close(): Promise<void>;
}

/**
 * Starts a receiver on 127.0.0.1.
 *
 * @example
 * ```ts
 * const hook = await startHookReceiver({ path: '/hooks/dp', answers: [503, 200] });
 * await sim.push(notification, { hookUrl: hook.url }); // retried once, then delivered
 * expect(hook.received).toHaveLength(2);
 * await hook.close();
 * ```
 */
export async function startHookReceiver(options: HookReceiverOptions = {}): Promise<HookReceiver> {
  const received: ReceivedPush[] = [];
  const answers = [...(options.answers ?? [])];
  let last: ScriptedAnswer = 200;
  const { server, url } = await listenLocal(
    async (req, res) => {
      const body = await readBody(req);
      received.push({ url: req.url ?? '', headers: req.headers, body });
      const next = answers.shift() ?? (options.whenDone === 'repeat' ? last : 200);
      last = next;
      const answer = typeof next === 'number' ? { status: next } : next;
      const reply = () => {
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': answer.type ?? 'application/json' });
        res.end(answer.body ?? options.body ?? '{"status":"accepted"}');
      };
      if (answer.delayMs === undefined) reply();
      else setTimeout(reply, answer.delayMs);
    },
    (_error, _req, res) => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    },
  );
  return { url: `${url}${options.path ?? ''}`, received, answers, close: () => closeServer(server) };
}
