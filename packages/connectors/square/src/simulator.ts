/**
 * A fake Square Appointments for tests and demos: it POSTs notifications to a hub the way the vendor
 * does, retrying a failed push on the vendor's schedule. Pushes are signed with HMAC-SHA256 over the timestamp and the body, `t=…,v1=…`.
 * TODO: replace the retry habit with the one the vendor documents.
 *
 * Test code imports it as `@switchyard/connector-square/simulator` (production code never does); it
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
 * Square's retry delays after a failed push, ms: Square retries a notification not answered 2xx
 * within 10 s with exponential backoff for up to 24 hours (Square Webhooks overview); the first
 * steps are modelled here, not their exact values (Square does not publish them).
 */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [60_000, 120_000, 240_000, 480_000];

/** Options of {@link SquareSimulator}. */
export interface SquareSimulatorOptions {
  /** Where pushes go (the hub's `/hooks/{instance}` URL). Can also be given per push. */
  hookUrl?: string;
  /**
   * The notification URL registered at Square, which Square signs with the body: the hub's
   * `server.publicUrl` + `/hooks/{instance}`. Default: where the push goes (no proxy in between).
   */
  notificationUrl?: string;
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
export interface SquarePushRecord {
  body: JsonObject;
  attempts: Attempt[];
  delivered: boolean;
}

/**
 * A Square Appointments stand-in that speaks real HTTP.
 *
 * @example
 * ```ts
 * const sim = new SquareSimulator({ hookUrl: `${hub}/hooks/square-main`, config, timeScale: 0.0001 });
 * const record = await sim.push(body); // retried on failure, then given up
 * record.delivered; // true once the hub answered 2xx
 * ```
 */
export class SquareSimulator {
  readonly pushes: SquarePushRecord[] = [];
  readonly #options: SquareSimulatorOptions;
  readonly #pending = new PendingTasks();

  constructor(options: SquareSimulatorOptions) {
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
    options: { hookUrl?: string; notificationUrl?: string } = {},
  ): Promise<SquarePushRecord> {
    const hookUrl = options.hookUrl ?? this.#options.hookUrl;
    const signedUrl = options.notificationUrl ?? this.#options.notificationUrl ?? hookUrl;
    return this.#pending.track(this.#deliver(this.toBody(input), hookUrl, signedUrl));
  }

  /** Resolves when every push started so far has finished. */
  async idle(): Promise<void> {
    await this.#pending.idle();
  }

  async #deliver(body: JsonObject, hookUrl: string | undefined, signedUrl: string | undefined) {
    if (!hookUrl) throw new Error('the simulator needs a hookUrl (in the options or per push)');
    const record: SquarePushRecord = {
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
        // Square's signature covers the notification URL and the body; nothing in it is dated.
        const at = this.#options.now?.() ?? new Date();
        const headers = {
          'content-type': 'application/json',
          ...credentialHeaders(this.#options.config, signedUrl ?? hookUrl, raw),
        };
        return toAttempt(at, await postJson(hookUrl, headers, body, timeoutMs));
      },
      (attempt) => isSuccess(attempt.status),
    );
    return record;
  }
}
