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
import { type Attempt, isCloudEvent, pushJson } from './shared/push.ts';

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
export type BookingBugPushAttempt = Attempt;

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
    if (isCloudEvent(input)) {
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
    // The vendor's retry habit is undocumented: none unless the options ask for one.
    record.delivered = await pushJson(url, headers, body, this.#options, record.attempts);
    return record;
  }

  #connectorConfig(): BookingBugConfig {
    return { basicAuth: { username: this.#options.username ?? '', password: this.#options.password ?? '' } };
  }
}
