/**
 * What every vendor simulator does when it pushes: POST a JSON body with the vendor's headers and a
 * per-attempt timeout, and retry a failed push with the vendor's habit (its delays, as data, shrunk
 * by a time scale in tests). Each simulator keeps its own record shapes and habits; this is only the
 * mechanics they share.
 *
 * Simulators import it as `@switchyard/testing/simulator-kit/push`.
 */

import type { EventEnvelope } from '@switchyard/core';

/** What one POST came to. `status` is null when there was no answer (refused, timed out). */
export interface PostResult {
  status: number | null;
  body: string;
  /** The answer's `content-type`, when it had one. */
  contentType?: string;
  /** Why there was no answer. */
  error?: string;
  /** True when the timeout cut the request off. */
  timedOut: boolean;
}

/**
 * POSTs `payload` as JSON with `headers` (add `content-type` yourself), giving up after `timeoutMs`.
 * Never throws: a failure is a result with `status: null`.
 *
 * @example
 * ```ts
 * const r = await postJson(url, { 'content-type': 'application/json' }, { id: 1 }, 10_000);
 * if (r.status === null) console.log(r.error);
 * ```
 */
export function postJson(
  url: string,
  headers: Record<string, string>,
  payload: unknown,
  timeoutMs: number,
): Promise<PostResult> {
  return postBody(url, headers, JSON.stringify(payload), timeoutMs);
}

/**
 * POSTs `body` exactly as given (the bytes a signature covers: a form, XML, JSON already
 * serialized) with `headers` (add `content-type` yourself), giving up after `timeoutMs`. Never
 * throws: a failure is a result with `status: null`.
 *
 * @example
 * ```ts
 * const form = 'action=scheduled&id=54321';
 * const r = await postBody(url, { 'content-type': 'application/x-www-form-urlencoded', ...signed(form) }, form, 10_000);
 * ```
 */
export async function postBody(
  url: string,
  headers: Record<string, string>,
  body: string | Buffer,
  timeoutMs: number,
): Promise<PostResult> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body: typeof body === 'string' ? body : new Uint8Array(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const result: PostResult = { status: res.status, body: await res.text(), timedOut: false };
    const type = res.headers.get('content-type');
    if (type !== null) result.contentType = type;
    return result;
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    return { status: null, body: '', error: (error as Error).message, timedOut };
  }
}

/** The attempt record most simulators keep: when, the status, the answer's text, why it failed. */
export interface Attempt {
  at: Date;
  /** null when the request failed without an answer (refused, timed out). */
  status: number | null;
  body: string;
  error?: string;
}

/**
 * A {@link PostResult} as an {@link Attempt} made at `at`.
 *
 * @example
 * ```ts
 * const at = new Date();
 * record.attempts.push(toAttempt(at, await postJson(url, headers, body, 10_000)));
 * ```
 */
export function toAttempt(at: Date, r: PostResult): Attempt {
  return r.error === undefined
    ? { at, status: r.status, body: r.body }
    : { at, status: r.status, body: r.body, error: r.error };
}

/** True for a 2xx answer. */
export function isSuccess(status: number | null): boolean {
  return status !== null && status >= 200 && status < 300;
}

/** A vendor's retry habit: the delays before each retry, and the factor tests shrink them by. */
export interface RetryHabit {
  /** Delays before the 1st, 2nd, ... retry, ms; empty: one try only. */
  delaysMs: readonly number[];
  /** Multiplies every delay (e.g. 0.0001: 5 minutes become 30 ms). Default 1. */
  timeScale?: number;
}

/**
 * Tries `send` once, then once after each delay of the habit until an attempt succeeds. Every attempt
 * is appended to `attempts` as it happens (so a record being watched fills in live). `stop`, asked
 * before each attempt and after each failed one, ends the tries early (a vendor that disabled the
 * endpoint meanwhile). Resolves true when an attempt succeeded.
 *
 * @example
 * ```ts
 * const delivered = await withRetries({ delaysMs: [300_000, 600_000], timeScale: 1e-4 }, attempts,
 *   () => send(), (a) => isSuccess(a.status));
 * ```
 */
export async function withRetries<A>(
  habit: RetryHabit,
  attempts: A[],
  send: () => Promise<A>,
  succeeded: (attempt: A) => boolean,
  stop: { before?: () => boolean; afterFailure?: () => boolean } = {},
): Promise<boolean> {
  const scale = habit.timeScale ?? 1;
  for (let i = 0; i <= habit.delaysMs.length; i++) {
    if (i > 0) await sleep(habit.delaysMs[i - 1]! * scale);
    if (stop.before?.()) return false;
    const attempt = await send();
    attempts.push(attempt);
    if (succeeded(attempt)) return true;
    if (stop.afterFailure?.()) return false;
  }
  return false;
}

/** The push options simulators share: the retry delays (the habit, as data), their scale, the timeout. */
export interface PushOptions {
  /** Delays before retries of a failed push, ms. Default: none (one try). */
  retryDelaysMs?: number[];
  /** Multiplies every retry delay (e.g. 0.001 in tests). Default 1. */
  timeScale?: number;
  /** Per-attempt timeout of a push, ms. Default 10 s. */
  pushTimeoutMs?: number;
}

/**
 * The plain vendor push: POSTs `payload` as JSON to `url`, retried per `options`, each attempt
 * recorded as an {@link Attempt} in `attempts`. Resolves true when delivered (a 2xx).
 *
 * @example
 * ```ts
 * record.delivered = await pushJson(url, headers, body, { retryDelaysMs: [1000], timeScale: 0.01 }, record.attempts);
 * ```
 */
export function pushJson(
  url: string,
  headers: Record<string, string>,
  payload: unknown,
  options: PushOptions,
  attempts: Attempt[],
): Promise<boolean> {
  const timeoutMs = options.pushTimeoutMs ?? 10_000;
  return withRetries(
    { delaysMs: options.retryDelaysMs ?? [], timeScale: options.timeScale ?? 1 },
    attempts,
    async () => toAttempt(new Date(), await postJson(url, headers, payload, timeoutMs)),
    (a) => isSuccess(a.status),
  );
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Tracks pushes in flight, so a simulator can offer `idle()`. */
export class PendingTasks {
  readonly #pending = new Set<Promise<unknown>>();

  /** Adds a task; returns it. */
  track<T>(task: Promise<T>): Promise<T> {
    this.#pending.add(task);
    task.finally(() => this.#pending.delete(task)).catch(() => {});
    return task;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Resolves when every task tracked so far (and any they started) has finished. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}

/**
 * True for a CloudEvent (a normalized event, which the simulator encodes) rather than a vendor body.
 *
 * @example
 * ```ts
 * const body = isCloudEvent(input) ? encode(input, config).body : input; // the connector's encode.ts
 * ```
 */
export function isCloudEvent<T>(input: T | EventEnvelope): input is EventEnvelope {
  const e = input as { specversion?: unknown; type?: unknown };
  return e.specversion === '1.0' && typeof e.type === 'string';
}
