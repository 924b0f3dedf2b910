/**
 * A fake Instinctive Notes for tests and demos: it POSTs SOAP note webhooks to a hub the way
 * Instinctive Notes does (JSON Event objects, a shared secret in a header or in the URL path, retries
 * with exponential back-off for up to 12 hours, then the event is marked failed and the endpoint
 * disabled), and offers the vendor's "Send test" (re-send the last saved note of a type, with a new
 * envelope time and no test flag).
 *
 * Test code imports it as `@switchyard/connector-instinctive-notes/simulator` (production code
 * never does); it imports this connector's own modules through `./testing.ts`, never by package
 * name.
 */

import { type EventEnvelope, isJsonObject, type JsonObject, type JsonValue } from '@switchyard/core';
import {
  isSuccess,
  PendingTasks,
  postJson,
  toAttempt,
  withRetries,
} from '@switchyard/testing/simulator-kit/push';
import { encode, type Config as InstinctiveConfig, type SoapNote, type WebhookEvent } from './testing.ts';

const HOUR_MS = 3_600_000;

/** Options of {@link InstinctiveNotesSimulator}. */
export interface InstinctiveNotesSimulatorOptions {
  /** Where webhooks go (the hub's `/hooks/{instance}` URL). Can also be given per push. */
  hookUrl?: string;
  /** The shared secret; nothing is sent when undefined (to test refusals). */
  secret?: string;
  /** `header` (default): in `headerName`; `path`: as the last URL segment (`{hookUrl}/{secret}`). */
  secretIn?: 'header' | 'path';
  /** Default `x-instinctive-secret`. */
  headerName?: string;
  /** Delay before the first retry, default 1 minute; each next delay is `backoffFactor` times longer. */
  firstRetryDelayMs?: number;
  /** Default 2. */
  backoffFactor?: number;
  /** No attempt is made later than this after the first one: default 12 hours (the vendor's). */
  retryWindowMs?: number;
  /** Multiplies every retry delay (e.g. 0.00001 in tests: 12 hours of back-off → ~0.3 s). Default 1. */
  timeScale?: number;
  /** Failed events in a row after which the endpoint is disabled (the vendor disables it "soon after" a failure). Default 1. */
  disableAfterFailedEvents?: number;
  /** The simulator's clock (envelope `created_at` of new events and tests). Default: real time. */
  now?: () => Date;
  /** Per-attempt timeout, default 10 s. */
  pushTimeoutMs?: number;
  /** Connector settings used to encode normalized events into webhooks. */
  connectorConfig?: InstinctiveConfig;
}

/** One try at delivering a webhook. */
export interface InstinctiveAttempt {
  at: Date;
  url: string;
  /** null when the request failed without an answer (refused, timed out). */
  status: number | null;
  body: string;
  error?: string;
}

/** What happened to one webhook event. */
export interface InstinctivePushRecord {
  event: WebhookEvent;
  /** A "Send test" delivery (tried once, even on an inactive or disabled endpoint). */
  test: boolean;
  attempts: InstinctiveAttempt[];
  delivered: boolean;
  /** Every retry within the window failed: the vendor marks the event failed and stops. */
  failed: boolean;
  /** Not sent at all: the endpoint was disabled. */
  skipped: boolean;
}

/** What the vendor would tell the account owner (by email). */
export interface InstinctiveNotice {
  at: Date;
  kind: 'event_failed' | 'endpoint_disabled';
  message: string;
}

/**
 * The back-off schedule: delays before each retry, exponential, keeping every attempt within the
 * retry window.
 *
 * @example
 * ```ts
 * retryDelaysMs({}); // [60000, 120000, 240000, …] (9 retries: the 10th would land after 12 hours)
 * ```
 */
export function retryDelaysMs(
  options: Pick<InstinctiveNotesSimulatorOptions, 'firstRetryDelayMs' | 'backoffFactor' | 'retryWindowMs'>,
): number[] {
  const first = options.firstRetryDelayMs ?? 60_000;
  const factor = options.backoffFactor ?? 2;
  const window = options.retryWindowMs ?? 12 * HOUR_MS;
  const delays: number[] = [];
  let elapsed = 0;
  for (let delay = first; delay > 0 && elapsed + delay <= window && delays.length < 1000; delay *= factor) {
    delays.push(delay);
    elapsed += delay;
  }
  return delays;
}

/**
 * An Instinctive Notes stand-in that speaks real HTTP.
 *
 * @example
 * ```ts
 * const sim = new InstinctiveNotesSimulator({ hookUrl: `${hub}/hooks/notes`, secret: 's3cret-s3cret-s3cret', timeScale: 0.00001 });
 * await sim.push(sim.event('soap_note.created', { id: 10, client_id: 50, state: 'final' }));
 * await sim.sendTest('soap_note.created'); // the same note again, new created_at, no test flag
 * ```
 */
export class InstinctiveNotesSimulator {
  readonly pushes: InstinctivePushRecord[] = [];
  readonly notices: InstinctiveNotice[] = [];
  /** The last saved note of each event type (what "Send test" sends). */
  readonly lastSaved = new Map<string, SoapNote>();
  /** `active` until failed events disable it; see {@link enableEndpoint}. */
  endpointStatus: 'active' | 'disabled' = 'active';

  readonly #options: InstinctiveNotesSimulatorOptions;
  readonly #pending = new PendingTasks();
  #failedInARow = 0;

  constructor(options: InstinctiveNotesSimulatorOptions = {}) {
    this.#options = options;
  }

  /** The simulator's current time. */
  now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  /**
   * A webhook Event object for a note, created now (as the vendor does when a note is saved).
   * `updated_at` / `created_at` default to now too.
   */
  event(type: string, note: Partial<SoapNote> & { id: number | string }): WebhookEvent {
    const now = this.now()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    const object: SoapNote = { created_at: now, updated_at: now, ...note };
    return { created_at: now, data: { object }, type };
  }

  /** A webhook Event from a body, or from a normalized event through the connector's `encode`. */
  toEvent(input: WebhookEvent | EventEnvelope | JsonObject): WebhookEvent {
    if (isJsonObject(input as JsonValue) && 'specversion' in input) {
      const config = this.#options.connectorConfig ?? { auth: { secret: this.#options.secret ?? '' } };
      return encode(input as EventEnvelope, config).body as unknown as WebhookEvent;
    }
    return input as WebhookEvent;
  }

  /** Records a note as the last saved one of its type without sending anything (for "Send test"). */
  save(type: string, note: SoapNote): void {
    this.lastSaved.set(type, structuredClone(note));
  }

  /**
   * Sends one webhook event, retrying with exponential back-off while the answer is not 2xx, for up
   * to the retry window; then marks it failed (and, after enough failures, disables the endpoint).
   */
  push(
    input: WebhookEvent | EventEnvelope | JsonObject,
    options: { hookUrl?: string; headers?: Record<string, string> } = {},
  ): Promise<InstinctivePushRecord> {
    const event = this.toEvent(input);
    const object = event.data?.object;
    if (event.type.startsWith('soap_note.') && isJsonObject(object as JsonValue))
      this.save(event.type, object as SoapNote);
    return this.#track(this.#deliver(event, false, options));
  }

  /**
   * The vendor's "Send test": sends the last saved note of `type` in a new Event object created now.
   * Tried once; allowed on an inactive or disabled endpoint (that is what testing is for).
   */
  sendTest(
    type = 'soap_note.created',
    options: { hookUrl?: string; headers?: Record<string, string> } = {},
  ): Promise<InstinctivePushRecord> {
    const note = this.lastSaved.get(type);
    if (!note)
      throw new Error(`InstinctiveNotesSimulator has no saved note for ${type}: push or save() one first`);
    const now = this.now()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    const event: WebhookEvent = { created_at: now, data: { object: structuredClone(note) }, type };
    return this.#track(this.#deliver(event, true, options));
  }

  /** Re-enables a disabled endpoint (the owner fixed it). */
  enableEndpoint(): void {
    this.endpointStatus = 'active';
    this.#failedInARow = 0;
  }

  /** Resolves when every push started so far has finished. */
  async idle(): Promise<void> {
    await this.#pending.idle();
  }

  async #deliver(
    event: WebhookEvent,
    test: boolean,
    options: { hookUrl?: string; headers?: Record<string, string> },
  ): Promise<InstinctivePushRecord> {
    const hookUrl = options.hookUrl ?? this.#options.hookUrl;
    if (!hookUrl)
      throw new Error('InstinctiveNotesSimulator needs a hookUrl (in the options or the constructor)');
    const record: InstinctivePushRecord = {
      event,
      test,
      attempts: [],
      delivered: false,
      failed: false,
      skipped: false,
    };
    this.pushes.push(record);
    if (!test && this.endpointStatus === 'disabled') {
      record.skipped = true;
      return record;
    }
    // "Send test" is tried once; a real event backs off for up to the retry window.
    const habit = {
      delaysMs: test ? [] : retryDelaysMs(this.#options),
      timeScale: this.#options.timeScale ?? 1,
    };
    record.delivered = await withRetries(
      habit,
      record.attempts,
      () => this.#send(hookUrl, event, options.headers),
      (a) => isSuccess(a.status),
    );
    if (test) return record;
    if (record.delivered) {
      this.#failedInARow = 0;
      return record;
    }
    record.failed = true;
    this.#failedInARow++;
    this.notices.push({
      at: this.now(),
      kind: 'event_failed',
      message: `${event.type} could not be delivered to ${redactUrl(hookUrl, this.#options)} after ${record.attempts.length} attempts`,
    });
    if (
      this.endpointStatus === 'active' &&
      this.#failedInARow >= (this.#options.disableAfterFailedEvents ?? 1)
    ) {
      this.endpointStatus = 'disabled';
      this.notices.push({
        at: this.now(),
        kind: 'endpoint_disabled',
        message: 'the webhook endpoint was disabled',
      });
    }
    return record;
  }

  async #send(
    hookUrl: string,
    event: WebhookEvent,
    extra?: Record<string, string>,
  ): Promise<InstinctiveAttempt> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
    const secret = this.#options.secret;
    let url = hookUrl.replace(/\/+$/, '');
    if (secret !== undefined) {
      if (this.#options.secretIn === 'path') url = `${url}/${encodeURIComponent(secret)}`;
      else headers[this.#options.headerName ?? 'x-instinctive-secret'] = secret;
    }
    const at = this.now();
    const result = await postJson(url, headers, event, this.#options.pushTimeoutMs ?? 10_000);
    return { ...toAttempt(at, result), url: redactUrl(url, this.#options) };
  }

  #track<T>(task: Promise<T>): Promise<T> {
    return this.#pending.track(task);
  }
}

/** The URL without the secret, for records and notices. */
function redactUrl(url: string, options: InstinctiveNotesSimulatorOptions): string {
  const secret = options.secret;
  if (secret === undefined || secret === '') return url;
  return url.split(encodeURIComponent(secret)).join('***');
}
