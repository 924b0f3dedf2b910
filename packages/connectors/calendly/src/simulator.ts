/**
 * A fake Calendly for tests and demos: it POSTs notifications to a hub the way the vendor
 * does, retrying a failed push on the vendor's schedule. Pushes are signed with HMAC-SHA256 over the timestamp and the body, `t=…,v1=…`.
 * Calendly retries a failed delivery "for 24 hours with an exponential back-off" (developer.calendly.com,
 * "Webhook Errors"), without publishing the delays: the simulator doubles from one minute.
 *
 * Test code imports it as `@switchyard/connector-calendly/simulator` (production code never does); it
 * imports this connector's own modules through `./testing.ts`, never by package name.
 */
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import {
  type Attempt,
  isSuccess,
  PendingTasks,
  postJson,
  toAttempt,
  withRetries,
} from '@switchyard/testing/simulator-kit/push';
import { type Config, credentialHeaders, encode, type VendorEvent } from './testing.ts';

/**
 * The vendor's retry delays after a failed push, ms: 1, 2, 4, … 512 minutes (about 17 hours in all),
 * an assumed exponential schedule inside the 24 hours Calendly documents (it publishes no delays).
 */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Array.from(
  { length: 10 },
  (_, i) => 60_000 * 2 ** i,
);

/** Options of {@link CalendlySimulator}. */
export interface CalendlySimulatorOptions {
  /** Where pushes go (the hub's `/hooks/{instance}` URL). Can also be given per push. */
  hookUrl?: string;
  /** The settings the vendor and the hub share: what the simulator authenticates with. */
  config: Config;
  /** Delays before retries of a failed push, ms. Default {@link DEFAULT_RETRY_DELAYS_MS}. */
  retryDelaysMs?: readonly number[];
  /** Multiplies every retry delay (e.g. 0.0001 in tests). Default 1. */
  timeScale?: number;
  /** Per-attempt timeout, ms. Default 10 s. */
  pushTimeoutMs?: number;
  /** The simulator's clock (what signatures are made at). Default: real time. */
  now?: () => Date;
}

/** What happened to one push. */
export interface CalendlyPushRecord {
  body: JsonObject;
  attempts: Attempt[];
  delivered: boolean;
}

/**
 * A Calendly stand-in that speaks real HTTP.
 *
 * @example
 * ```ts
 * const sim = new CalendlySimulator({ hookUrl: `${hub}/hooks/calendly-main`, config, timeScale: 0.0001 });
 * const record = await sim.push(body); // retried on failure, then given up
 * record.delivered; // true once the hub answered 2xx
 * ```
 */
export class CalendlySimulator {
  readonly pushes: CalendlyPushRecord[] = [];
  readonly #options: CalendlySimulatorOptions;
  readonly #pending = new PendingTasks();

  constructor(options: CalendlySimulatorOptions) {
    this.#options = options;
  }

  /** A body as the vendor sends it, from a body or from a normalized event (through `encode`). */
  toBody(input: VendorEvent | EventEnvelope | JsonObject): JsonObject {
    if (!('specversion' in input)) return input as JsonObject;
    return encode(input as EventEnvelope, this.#options.config).body as JsonObject;
  }

  /** Pushes one notification with the vendor's authentication and retry habit. */
  push(
    input: VendorEvent | EventEnvelope | JsonObject,
    options: { hookUrl?: string } = {},
  ): Promise<CalendlyPushRecord> {
    return this.#pending.track(this.#deliver(this.toBody(input), options.hookUrl ?? this.#options.hookUrl));
  }

  /** Resolves when every push started so far has finished. */
  async idle(): Promise<void> {
    await this.#pending.idle();
  }

  async #deliver(body: JsonObject, hookUrl: string | undefined) {
    if (!hookUrl) throw new Error('the simulator needs a hookUrl (in the options or per push)');
    const record: CalendlyPushRecord = {
      body,
      attempts: [],
      delivered: false,
    };
    this.pushes.push(record);
    // postJson sends JSON.stringify(body): these are the bytes a signature must cover.
    const raw = JSON.stringify(body);
    const timeoutMs = this.#options.pushTimeoutMs ?? 10_000;
    record.delivered = await withRetries(
      {
        delaysMs: this.#options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
        timeScale: this.#options.timeScale ?? 1,
      },
      record.attempts,
      async () => {
        // Authenticated per attempt: a vendor that timestamps its signatures signs each retry anew.
        const at = this.#options.now?.() ?? new Date();
        const headers = {
          'content-type': 'application/json',
          ...credentialHeaders(this.#options.config, raw, at),
        };
        return toAttempt(at, await postJson(hookUrl, headers, body, timeoutMs));
      },
      (attempt) => isSuccess(attempt.status),
    );
    return record;
  }
}
