/**
 * A fake BookingBug (JRNI) for tests and demos: it pushes whole purchases with HTTP Basic auth to
 * the booking callback URL, or to the cancellation callback URL for cancellations when one is
 * configured (BookingBug sends everything to the booking URL otherwise), optionally in JRNI's newer
 * shape with `triggerName` / `triggerTime`. BookingBug does not document whether or how it retries
 * a failed push: by default it does not, and `retryDelaysMs` makes it.
 */
import { type EventEnvelope, isJsonObject, type JsonObject } from '@switchyard/core';
import { basicAuthorization } from '../../../connectors/bookingbug/src/auth.ts';
import type { Config as BookingBugConfig } from '../../../connectors/bookingbug/src/config.ts';
import { bookingbugConnector } from '../../../connectors/bookingbug/src/index.ts';

/** Options of {@link BookingBugSimulator}. */
export interface BookingBugSimulatorOptions {
  /** The booking callback URL (the hub's `/hooks/{instance}`). Can also be given per push. */
  bookingUrl?: string;
  /** The cancellation callback URL (the hub's `/hooks/{instance}/cancellation`); unset: cancellations go to `bookingUrl`. */
  cancellationUrl?: string;
  /** HTTP Basic credentials; no Authorization header when unset. */
  username?: string;
  password?: string;
  /** Send JRNI's `triggerName` / `triggerTime` with every push. */
  jrni?: boolean;
  /** Delays before retries of a failed push. BookingBug's habit is undocumented: default none. */
  retryDelaysMs?: number[];
  /** Multiplies every retry delay (e.g. 0.001 in tests). Default 1. */
  timeScale?: number;
  /** Per-attempt timeout of a push, default 10 s. */
  pushTimeoutMs?: number;
  /** The clock for `triggerTime`. Default: real time. */
  now?: () => Date;
}

/** What a push is about: BookingBug picks the URL by it. */
export type BookingBugPushKind = 'create' | 'modify' | 'cancelled';

/** One try at delivering a push. */
export interface BookingBugPushAttempt {
  at: Date;
  /** null when the request failed without an answer (refused, timed out). */
  status: number | null;
  body: string;
  error?: string;
}

/** What happened to one push. */
export interface BookingBugPushRecord {
  kind: BookingBugPushKind;
  url: string;
  body: JsonObject;
  attempts: BookingBugPushAttempt[];
  delivered: boolean;
}

/**
 * A BookingBug stand-in that pushes over real HTTP.
 *
 * @example
 * ```ts
 * const bb = new BookingBugSimulator({
 *   bookingUrl: `${hub}/hooks/bb-main`,
 *   cancellationUrl: `${hub}/hooks/bb-main/cancellation`,
 *   username: 'switchyard', password: 'p'.repeat(20),
 * });
 * await bb.push(purchase);                          // created
 * await bb.push(purchase, { kind: 'cancelled' });   // to the cancellation URL
 * ```
 */
export class BookingBugSimulator {
  readonly pushes: BookingBugPushRecord[] = [];
  readonly #options: BookingBugSimulatorOptions;

  constructor(options: BookingBugSimulatorOptions = {}) {
    this.#options = options;
  }

  /**
   * POSTs a purchase (as is), or a normalized event turned into one by the connector's `encode`.
   * `kind` picks the URL for a raw purchase (default `create`; an event's kind follows its type) and
   * the JRNI `triggerName`.
   */
  async push(
    input: JsonObject | EventEnvelope,
    options: {
      kind?: BookingBugPushKind;
      bookingUrl?: string;
      cancellationUrl?: string;
      jrni?: boolean;
    } = {},
  ): Promise<BookingBugPushRecord> {
    let body: JsonObject;
    let kind: BookingBugPushKind;
    if (isEvent(input)) {
      const encoded = bookingbugConnector.encode(input, this.#connectorConfig());
      if (!isJsonObject(encoded.body)) throw new Error('the BookingBug encoder returned a non-object body');
      body = encoded.body;
      kind =
        options.kind ??
        (encoded.route === 'cancellation'
          ? 'cancelled'
          : input.type === 'appointment.created'
            ? 'create'
            : 'modify');
    } else {
      body = structuredClone(input);
      kind = options.kind ?? 'create';
    }
    if (options.jrni ?? this.#options.jrni) {
      body = { triggerName: kind, triggerTime: (this.#options.now?.() ?? new Date()).toISOString(), ...body };
      body.triggerName = kind;
    }
    const bookingUrl = options.bookingUrl ?? this.#options.bookingUrl;
    if (bookingUrl === undefined) throw new Error('BookingBugSimulator.push: no bookingUrl');
    const cancellationUrl = options.cancellationUrl ?? this.#options.cancellationUrl;
    const url = kind === 'cancelled' && cancellationUrl !== undefined ? cancellationUrl : bookingUrl;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const { username, password } = this.#options;
    if (username !== undefined && password !== undefined) {
      headers.authorization = basicAuthorization(username, password);
    }
    const record: BookingBugPushRecord = { kind, url, body, attempts: [], delivered: false };
    this.pushes.push(record);
    const delays = this.#options.retryDelaysMs ?? [];
    const scale = this.#options.timeScale ?? 1;
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (attempt > 0) await sleep(delays[attempt - 1]! * scale);
      const result = await send(url, headers, body, this.#options.pushTimeoutMs ?? 10_000);
      record.attempts.push(result);
      if (result.status !== null && result.status >= 200 && result.status < 300) {
        record.delivered = true;
        break;
      }
    }
    return record;
  }

  #connectorConfig(): BookingBugConfig {
    return { basicAuth: { username: this.#options.username ?? '', password: this.#options.password ?? '' } };
  }
}

function isEvent(input: JsonObject | EventEnvelope): input is EventEnvelope {
  return (input as EventEnvelope).specversion === '1.0' && typeof (input as EventEnvelope).type === 'string';
}

async function send(
  url: string,
  headers: Record<string, string>,
  body: JsonObject,
  timeoutMs: number,
): Promise<BookingBugPushAttempt> {
  const at = new Date();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { at, status: res.status, body: await res.text() };
  } catch (error) {
    return { at, status: null, body: '', error: (error as Error).message };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
