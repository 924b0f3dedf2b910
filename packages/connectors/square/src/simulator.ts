/**
 * A fake Square Appointments for tests and demos: it POSTs notifications to a hub the way the vendor
 * does (signed over the notification URL and the body, `x-square-hmacsha256-signature`), retrying a
 * failed push, and serves the part of the Bookings API the connector's commands call (create,
 * retrieve, update, cancel), with Square's idempotency keys and booking versions, and failures
 * chosen per call, before or after the write is carried out.
 *
 * Test code imports it as `@switchyard/connector-square/simulator` (production code never does); it
 * imports this connector's own modules through `./testing.ts`, never by package name.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import {
  type Attempt,
  isSuccess,
  PendingTasks,
  postJson,
  toAttempt,
  withRetries,
} from '@switchyard/testing/simulator-kit/push';
import {
  closeServer,
  type LocalServer,
  listenLocal,
  readBody,
} from '@switchyard/testing/simulator-kit/server';
import { type Config, credentialHeaders, encode, type VendorBooking, type VendorEvent } from './testing.ts';

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

/** One Bookings API call the simulator answered. */
export interface SquareApiCall {
  method: string;
  path: string;
  /** The JSON body sent (`{}` when none). */
  body: JsonObject;
  status: number;
}

/** A failure the API answers instead of the next call. */
interface Failure {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Carry the write out first, then answer the failure. */
  afterWrite: boolean;
  /** Let reads pass: the failure is the next write's. */
  writes: boolean;
}

/** Square's error answer, `{ errors: [{ category, code, detail, field }] }` (Handling Errors guide). */
function error(status: number, category: string, code: string, detail: string, field?: string) {
  return { status, body: { errors: [{ category, code, detail, ...(field ? { field } : {}) }] } };
}

/** JSON with object keys sorted: equal for equal content whatever the keys' order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
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
  /** Every Bookings API call answered, in order, with the body sent. */
  readonly calls: SquareApiCall[] = [];
  /** The bookings, by id, as RetrieveBooking answers them. */
  readonly bookings = new Map<string, VendorBooking>();
  readonly #options: SquareSimulatorOptions;
  readonly #pending = new PendingTasks();
  readonly #failures: Failure[] = [];
  /** Idempotency keys seen: the request they came with and the first successful answer. */
  readonly #keys = new Map<string, { request: string; status: number; body: unknown }>();
  /** Staff changes to make to a booking just before the next write reaches it. */
  readonly #changes: ((booking: VendorBooking) => void)[] = [];
  #server: LocalServer | undefined;

  constructor(options: SquareSimulatorOptions) {
    this.#options = options;
  }

  /** The API's base URL (`apiBaseUrl` for the connector), once started. */
  get apiBaseUrl(): string {
    if (!this.#server) throw new Error('start() the simulator first');
    return `${this.#server.url}/v2`;
  }

  /** Serves the Bookings API on a free loopback port. */
  async start(): Promise<void> {
    this.#server = await listenLocal(
      (req, res) => this.#handle(req, res),
      (error, _req, res) =>
        this.#send(res, 500, {
          errors: [{ category: 'API_ERROR', code: 'INTERNAL_SERVER_ERROR', detail: error.message }],
        }),
    );
  }

  /** Waits for pushes under way and stops the API. */
  async close(): Promise<void> {
    await this.idle();
    if (this.#server) await closeServer(this.#server.server);
  }

  /** Adds a booking as RetrieveBooking answers it. */
  add(booking: VendorBooking): void {
    this.bookings.set(booking.id, structuredClone(booking));
  }

  /**
   * The next `count` API calls get `status` (default a gateway's 503 with `Retry-After`), before
   * the call is carried out, or after it with `afterWrite` (a gateway that timed out after
   * forwarding: the answer is lost, the write made). With `writes`, reads pass and the failure
   * waits for the next write (a cancel's or a move's, after their read).
   */
  failNext(
    options: {
      status?: number;
      afterWrite?: boolean;
      count?: number;
      retryAfter?: string;
      writes?: boolean;
    } = {},
  ): void {
    for (let i = 0; i < (options.count ?? 1); i++) {
      this.#failures.push({
        status: options.status ?? 503,
        headers: { 'retry-after': options.retryAfter ?? '7', 'content-type': 'text/plain' },
        body: 'upstream connect error or disconnect/reset before headers',
        afterWrite: options.afterWrite ?? false,
        writes: options.writes ?? false,
      });
    }
  }

  /**
   * The notification Square sends for a booking as it is now, in the shape of its documented
   * `booking.updated` example (fixtures/booking-updated-accepted.json): `data.id` is
   * `<booking id>:<version>`, `event_id` new for each notification.
   *
   * @example
   * ```ts
   * await sim.push(sim.notification(bookingId, 'booking.created'), { hookUrl });
   * ```
   */
  notification(bookingId: string, type: 'booking.created' | 'booking.updated'): VendorEvent {
    const booking = this.bookings.get(bookingId);
    if (!booking) throw new Error(`no booking ${bookingId} at the simulator`);
    return {
      merchant_id: 'GQQWA3J6A3AEZ',
      location_id: booking.location_id,
      type,
      event_id: randomUUID(),
      created_at: booking.updated_at ?? new Date().toISOString(),
      data: {
        type: 'booking',
        id: `${booking.id}:${booking.version ?? 0}`,
        object: { booking: structuredClone(booking) },
      },
    };
  }

  /**
   * Changes the booking a write reaches just before it is carried out, as staff would in the
   * Square dashboard between the connector's read and its write (its `version` goes up).
   */
  changeBeforeNextWrite(change: (booking: VendorBooking) => void): void {
    this.#changes.push(change);
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

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const text = await readBody(req);
    const json = text ? (JSON.parse(text) as JsonObject) : {};
    const record = (status: number) => this.calls.push({ method, path: url.pathname, body: json, status });
    if (req.headers.authorization !== `Bearer ${this.#options.config.accessToken}`) {
      record(401);
      return this.#send(res, 401, {
        errors: [
          {
            category: 'AUTHENTICATION_ERROR',
            code: 'UNAUTHORIZED',
            detail: 'This request could not be authorized.',
          },
        ],
      });
    }
    const failure =
      this.#failures[0] && (method !== 'GET' || !this.#failures[0].writes)
        ? this.#failures.shift()
        : undefined;
    if (failure && !failure.afterWrite) return this.#fail(res, record, failure);
    const answer = this.#idempotent(method, url.pathname, json);
    if (failure) return this.#fail(res, record, failure);
    record(answer.status);
    this.#send(res, answer.status, answer.body);
  }

  /**
   * Square's idempotency (https://developer.squareup.com/docs/working-with-apis/idempotency): a
   * request repeated with the same key gets the first successful answer, the write not made again;
   * the same key with another request is refused. Errors are not kept: a refused request may be
   * sent again under its key.
   */
  #idempotent(method: string, path: string, json: JsonObject): { status: number; body: unknown } {
    const key = typeof json.idempotency_key === 'string' ? json.idempotency_key : undefined;
    // The same request by its content: a body kept in the hub's database (jsonb) comes back with
    // its keys in another order, and is still the same request.
    const request = canonical([method, path, json]);
    const seen = key === undefined ? undefined : this.#keys.get(key);
    if (seen && seen.request === request) return { status: seen.status, body: seen.body };
    if (seen) {
      return error(
        400,
        'INVALID_REQUEST_ERROR',
        'IDEMPOTENCY_KEY_REUSED',
        'The idempotency key can only be retried with the same request data.',
        'idempotency_key',
      );
    }
    const answer = this.#route(method, path, json);
    if (key !== undefined && answer.status === 200) this.#keys.set(key, { request, ...answer });
    return answer;
  }

  #route(method: string, path: string, json: JsonObject): { status: number; body: unknown } {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (method === 'POST' && path === '/v2/bookings') {
      const sent = (json.booking ?? {}) as JsonObject;
      const id = randomBytes(7).toString('hex');
      const booking: VendorBooking = {
        id,
        version: 0,
        status: 'ACCEPTED',
        created_at: now,
        updated_at: now,
        location_id: String(sent.location_id ?? ''),
        customer_id: String(sent.customer_id ?? ''),
        customer_note: String(sent.customer_note ?? ''),
        seller_note: '',
        start_at: new Date(Date.parse(String(sent.start_at))).toISOString().replace(/\.\d+Z$/, 'Z'),
        appointment_segments: structuredClone((sent.appointment_segments ?? []) as JsonObject[]),
      };
      this.bookings.set(id, booking);
      return { status: 200, body: { booking, errors: [] } };
    }
    const m = /^\/v2\/bookings\/([^/]+)(\/cancel)?$/.exec(path);
    const booking = m ? this.bookings.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m)
      return error(404, 'INVALID_REQUEST_ERROR', 'NOT_FOUND', `${method} ${path} is not a Bookings API call`);
    if (!booking)
      return error(
        404,
        'INVALID_REQUEST_ERROR',
        'NOT_FOUND',
        'Specified booking was not found.',
        'booking_id',
      );
    if (method === 'GET' && !m[2]) return { status: 200, body: { booking, errors: [] } };
    const change = this.#changes.shift();
    if (change) {
      change(booking);
      booking.version = (booking.version ?? 0) + 1;
      booking.updated_at = now;
    }
    // Optimistic concurrency (https://developer.squareup.com/docs/working-with-apis/optimistic-concurrency):
    // a write naming another version than the booking's is refused; none named, the latest is assumed.
    const given = m[2] ? json.booking_version : (json.booking as JsonObject | undefined)?.version;
    if (typeof given === 'number' && given !== booking.version) {
      return error(
        409,
        'INVALID_REQUEST_ERROR',
        'VERSION_MISMATCH',
        `Booking version ${given} does not match the current version ${booking.version}.`,
      );
    }
    if (method === 'POST' && m[2]) {
      if (booking.status !== 'ACCEPTED' && booking.status !== 'PENDING') {
        return error(
          400,
          'INVALID_REQUEST_ERROR',
          'BAD_REQUEST',
          `Booking with status ${booking.status} cannot be cancelled.`,
        );
      }
      booking.status = 'CANCELLED_BY_SELLER';
    } else if (method === 'PUT' && !m[2]) {
      const sent = (json.booking ?? {}) as JsonObject;
      if (typeof sent.start_at === 'string')
        booking.start_at = new Date(Date.parse(sent.start_at)).toISOString().replace(/\.\d+Z$/, 'Z');
      if (typeof sent.customer_note === 'string') booking.customer_note = sent.customer_note;
    } else {
      return error(405, 'INVALID_REQUEST_ERROR', 'METHOD_NOT_ALLOWED', `${method} ${path}`);
    }
    booking.version = (booking.version ?? 0) + 1;
    booking.updated_at = now;
    return { status: 200, body: { booking, errors: [] } };
  }

  #fail(res: ServerResponse, record: (status: number) => void, failure: Failure): void {
    record(failure.status);
    res.writeHead(failure.status, failure.headers).end(failure.body);
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
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
