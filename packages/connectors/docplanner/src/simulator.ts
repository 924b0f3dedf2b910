/**
 * A fake Docplanner for tests and demos: it pushes notifications to a hub the way Docplanner does
 * (static API key header, two retries after 5 and 10 minutes, then the notification is "buried"),
 * and serves what Docplanner's integration API offers around notifications: the OAuth2 token
 * endpoint, the FIFO pull queue (72-hour expiry), `/notifications/multiple`, `/notifications/release`
 * (once an hour) and the booking re-read endpoint.
 *
 * Test code imports it as `@switchyard/connector-docplanner/simulator` (production code never
 * does); it imports this connector's own modules through `./testing.ts`, never by package name.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type EventEnvelope, isJsonObject, type JsonObject, type JsonValue } from '@switchyard/core';
import {
  isSuccess,
  PendingTasks,
  postJson,
  toAttempt,
  withRetries,
} from '@switchyard/testing/simulator-kit/push';
import { closeServer, listenLocal, readBody } from '@switchyard/testing/simulator-kit/server';
import { DocplannerWriteApi } from './simulator-writes.ts';
import { type Config as DocplannerConfig, type DpNotification, encode } from './testing.ts';

const GATE_NAMES = new Set(['slot-booking', 'booking-moving']);
const HOUR_MS = 3_600_000;

/** Options of {@link DocplannerSimulator}. */
export interface DocplannerSimulatorOptions {
  /** Where pushes go (the hub's `/hooks/{instance}` URL). Can also be given per push. */
  hookUrl?: string;
  /** The static API key sent with every push; omitted when undefined. */
  apiKey?: string;
  /** Default `x-api-key`. */
  apiKeyHeader?: string;
  /** OAuth2 client credentials the token endpoint accepts. Defaults: `sim-client` / `sim-secret`. */
  clientId?: string;
  clientSecret?: string;
  /** Lifetime of issued tokens, default 3600 s (Docplanner's). */
  tokenTtlSeconds?: number;
  /** Delays before the retries of a failed push; default Docplanner's [5 min, 10 min]. */
  retryDelaysMs?: number[];
  /** Multiplies every retry delay (e.g. 0.0001 in tests: 5 min → 30 ms). Default 1. */
  timeScale?: number;
  /** The simulator's clock (queue expiry, token expiry, release rate limit). Default: real time. */
  now?: () => Date;
  /** Per-attempt timeout of a push, default 10 s. */
  pushTimeoutMs?: number;
  /** Connector settings used to encode normalized events into pushes. */
  connectorConfig?: DocplannerConfig;
}

/** One try at delivering a push. */
export interface PushAttempt {
  at: Date;
  /** null when the request failed without an answer (refused, timed out). */
  status: number | null;
  contentType?: string;
  body: string;
  error?: string;
}

/** What happened to one pushed notification. */
export interface PushRecord {
  notification: DpNotification;
  hookUrl: string;
  gate: boolean;
  attempts: PushAttempt[];
  delivered: boolean;
  /** Failed every try: Docplanner keeps it only for a manual re-trigger (`release`). */
  buried: boolean;
}

/** A gate (slot-booking / booking-moving) and the answer the hub gave. */
export interface GateAnswer {
  notification: DpNotification;
  status: number | null;
  contentType?: string;
  body: string;
  /** Parsed JSON body, when it was JSON. */
  json?: JsonValue;
  approved: boolean;
}

/** One request the simulator's API answered. */
export interface ServedRequest {
  method: string;
  path: string;
  status: number;
}

interface Queued {
  notification: DpNotification;
  enqueuedAt: number;
}

interface Token {
  expiresAt: number;
  revoked: boolean;
}

/**
 * A Docplanner stand-in that speaks real HTTP.
 *
 * @example
 * ```ts
 * const sim = new DocplannerSimulator({ hookUrl: `${hub}/hooks/dp`, apiKey: 'k3y-k3y-k3y', timeScale: 0.0001 });
 * const record = await sim.push(slotBookedBody);        // POST with the API-key header, retried like Docplanner
 * const url = await sim.start();                         // pull queue + OAuth + booking API on 127.0.0.1
 * sim.enqueue(slotBookedBody);                           // now GET {url}/api/v3/integration/notifications returns it
 * await sim.close();
 * ```
 */
export class DocplannerSimulator {
  readonly pushes: PushRecord[] = [];
  readonly gateAnswers: GateAnswer[] = [];
  /** Every request the API answered, in order. */
  readonly served: ServedRequest[] = [];
  /** Notifications dropped from the queue after 72 hours unpulled. */
  readonly expired: DpNotification[] = [];
  /** Bookings the re-read endpoint knows, by booking id (filled from every pushed or queued booking). */
  readonly bookings = new Map<
    string,
    { facility: string; doctor: string; address: string; booking: JsonObject }
  >();
  /** How many tokens the token endpoint issued. */
  tokensIssued = 0;
  /**
   * The empty queue's 404 message: Docplanner's English words by default; set others for a
   * country domain that localizes them (its sites are in many languages).
   */
  emptyQueueMessage = 'No notifications found';
  /**
   * Called with the notifications a pull takes off the queue, after they left it and before the
   * answer goes out: a test cuts the hub's database there, so the only copy is in the hub's hands.
   */
  onPulled: ((notifications: DpNotification[]) => void) | undefined;
  /** The booking write endpoints (book, cancel, move, presence) and their echo pushes. */
  readonly writes: DocplannerWriteApi = new DocplannerWriteApi({
    bookings: this.bookings,
    now: () => this.now(),
    apiUrl: () => `${this.url}/api/v3/integration`,
    echo: async (n, hookUrl) => {
      const url = hookUrl ?? this.#options.hookUrl;
      if (url) await this.push(n, { hookUrl: url }).catch(() => {});
    },
  });

  readonly #options: DocplannerSimulatorOptions;
  readonly #queue: Queued[] = [];
  readonly #tokens = new Map<string, Token>();
  readonly #pending = new PendingTasks();
  #failures: Array<{
    status: number;
    retryAfterSeconds?: number;
    rateLimitResetSeconds?: number;
    /** Only requests whose path this matches use the failure up. */
    only?: RegExp;
  }> = [];
  #lastReleaseAt: number | undefined;
  #clockOffsetMs = 0;
  #server: Server | undefined;
  #url: string | undefined;

  constructor(options: DocplannerSimulatorOptions = {}) {
    this.#options = options;
  }

  /** The simulator's current time (its clock plus {@link advanceClock}). */
  now(): number {
    return (this.#options.now?.() ?? new Date()).getTime() + this.#clockOffsetMs;
  }

  /** Moves the simulator's clock forward (queue expiry, token expiry, release rate limit). */
  advanceClock(ms: number): void {
    this.#clockOffsetMs += ms;
  }

  /**
   * A Docplanner notification from a push body, or from a normalized event through the connector's
   * `encode`.
   */
  toNotification(input: DpNotification | EventEnvelope | JsonObject): DpNotification {
    if (isJsonObject(input as JsonValue) && 'specversion' in input) {
      const encoded = encode(input as EventEnvelope, this.#options.connectorConfig ?? {});
      return encoded.body as unknown as DpNotification;
    }
    return input as DpNotification;
  }

  /**
   * Pushes one notification to the hub with the API-key header. A gate is tried once (the patient is
   * waiting) and its answer recorded in {@link gateAnswers}; anything else is retried after the
   * configured delays when the answer is not 2xx, then buried.
   */
  push(
    input: DpNotification | EventEnvelope | JsonObject,
    options: { hookUrl?: string; headers?: Record<string, string> } = {},
  ): Promise<PushRecord> {
    const task = this.#push(this.toNotification(input), options);
    this.#track(task);
    return task;
  }

  async #push(
    notification: DpNotification,
    options: { hookUrl?: string; headers?: Record<string, string> },
  ): Promise<PushRecord> {
    const hookUrl = options.hookUrl ?? this.#options.hookUrl;
    if (!hookUrl)
      throw new Error('DocplannerSimulator.push needs a hookUrl (in the options or the constructor)');
    this.#remember(notification);
    const gate = GATE_NAMES.has(notification.name);
    const record: PushRecord = { notification, hookUrl, gate, attempts: [], delivered: false, buried: false };
    this.pushes.push(record);
    // A gate is asked once: the patient is waiting, there is nothing to retry.
    const habit = {
      delaysMs: gate ? [] : (this.#options.retryDelaysMs ?? [5 * 60_000, 10 * 60_000]),
      timeScale: this.#options.timeScale ?? 1,
    };
    record.delivered = await withRetries(
      habit,
      record.attempts,
      () => this.#send(hookUrl, notification, options.headers),
      (a) => isSuccess(a.status),
    );
    if (gate) {
      const last = record.attempts[0]!;
      const answer: GateAnswer = {
        notification,
        status: last.status,
        body: last.body,
        approved: record.delivered,
      };
      if (last.contentType !== undefined) answer.contentType = last.contentType;
      try {
        answer.json = JSON.parse(last.body) as JsonValue;
      } catch {
        // not JSON: keep the text only
      }
      this.gateAnswers.push(answer);
    } else if (!record.delivered) {
      record.buried = true;
    }
    return record;
  }

  async #send(
    hookUrl: string,
    notification: DpNotification,
    extra?: Record<string, string>,
  ): Promise<PushAttempt> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
    if (this.#options.apiKey !== undefined)
      headers[this.#options.apiKeyHeader ?? 'x-api-key'] = this.#options.apiKey;
    const at = new Date(this.now());
    const result = await postJson(hookUrl, headers, notification, this.#options.pushTimeoutMs ?? 10_000);
    const attempt: PushAttempt = toAttempt(at, result);
    if (result.contentType !== undefined) attempt.contentType = result.contentType;
    return attempt;
  }

  /** Notifications whose push failed every try. */
  get buried(): DpNotification[] {
    return this.pushes.filter((p) => p.buried).map((p) => p.notification);
  }

  /** Resolves when every push (and release re-push) started so far has finished. */
  async idle(): Promise<void> {
    await this.#pending.idle();
  }

  #track(task: Promise<unknown>): void {
    this.#pending.track(task);
  }

  /** Puts notifications on the pull queue (FIFO), as Docplanner does when it generates them. */
  enqueue(...inputs: Array<DpNotification | EventEnvelope | JsonObject>): void {
    for (const input of inputs) {
      const notification = this.toNotification(input);
      this.#remember(notification);
      this.#queue.push({ notification, enqueuedAt: this.now() });
    }
  }

  /** Notifications waiting on the pull queue (expired ones dropped). */
  get queueLength(): number {
    this.#expire();
    return this.#queue.length;
  }

  /**
   * The next `count` API requests (after the token endpoint) answer `status` (default 503); with
   * `only`, the next `count` whose path it matches (a test's own calls, not a stray one of an
   * earlier test's command still retrying).
   */
  failNext(count: number, status = 503, retryAfterSeconds?: number, only?: RegExp): void {
    for (let i = 0; i < count; i++) {
      this.#failures.push({
        status,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        ...(only === undefined ? {} : { only }),
      });
    }
  }

  /**
   * The next `count` API requests (after the token endpoint) answer as Docplanner's rate limiter
   * does when a quota is used up: 429 with the `X-RateLimit-*` headers, the reset `resetInSeconds`
   * from now as an ISO 8601 date, and no Retry-After
   * (integrations.docplanner.com/guide/fundamentals/rate-limits.html). Nothing is done.
   */
  rateLimitNext(count: number, resetInSeconds: number): void {
    for (let i = 0; i < count; i++)
      this.#failures.push({ status: 429, rateLimitResetSeconds: resetInSeconds });
  }

  /** Makes every issued token expired now (the API answers 401 until a new one is fetched). */
  expireTokens(): void {
    for (const token of this.#tokens.values()) token.expiresAt = Math.min(token.expiresAt, this.now() - 1);
  }

  /** Revokes every issued token. */
  revokeTokens(): void {
    for (const token of this.#tokens.values()) token.revoked = true;
  }

  /** The API base URL once {@link start}ed (use it as the connector's `apiBaseUrl`). */
  get url(): string {
    if (!this.#url) throw new Error('DocplannerSimulator is not started');
    return this.#url;
  }

  /** Serves the API on 127.0.0.1 (a free port); resolves to the base URL. */
  async start(): Promise<string> {
    if (this.#url) return this.#url;
    const { server, url } = await listenLocal(
      (req, res) => this.#handle(req, res),
      (error, req, res) => {
        if (!res.headersSent) this.#json(req, res, 500, { message: error.message });
        else res.end();
      },
    );
    this.#server = server;
    this.#url = url;
    return this.#url;
  }

  /** Stops the API server and waits for pushes in flight. */
  async close(): Promise<void> {
    await this.idle();
    const server = this.#server;
    this.#server = undefined;
    this.#url = undefined;
    if (server) await closeServer(server);
  }

  #remember(notification: DpNotification): void {
    const data = notification.data;
    if (!isJsonObject(data as unknown as JsonValue)) return;
    const facility = data.facility?.id;
    const doctor = data.doctor?.id;
    const address = data.address?.id;
    if (!facility || !doctor || !address) return;
    for (const key of ['visit_booking', 'old_visit_booking', 'new_visit_booking'] as const) {
      const booking = data[key];
      if (booking && typeof booking.id === 'string') {
        this.bookings.set(booking.id, {
          facility: String(facility),
          doctor: String(doctor),
          address: String(address),
          booking: booking as unknown as JsonObject,
        });
      }
    }
  }

  #expire(): void {
    const cutoff = this.now() - 72 * HOUR_MS;
    while (this.#queue.length > 0 && this.#queue[0]!.enqueuedAt < cutoff) {
      this.expired.push(this.#queue.shift()!.notification);
    }
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (this.#queue[i]!.enqueuedAt < cutoff)
        this.expired.push(...this.#queue.splice(i, 1).map((q) => q.notification));
    }
  }

  #json(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: JsonValue,
    headers: Record<string, string> = {},
  ): void {
    this.served.push({ method: req.method ?? 'GET', path: req.url ?? '/', status });
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const body = await readBody(req);
    if (req.method === 'POST' && path === '/oauth/v2/token') return this.#token(req, res, body);

    const base = '/api/v3/integration';
    if (!path.startsWith(`${base}/`)) return this.#json(req, res, 404, { message: 'Not Found' });
    if (!this.#authorized(req)) {
      return this.#json(req, res, 401, {
        error: 'invalid_grant',
        error_description: 'The access token provided is invalid.',
      });
    }
    const at = this.#failures.findIndex((f) => f.only === undefined || f.only.test(path));
    const failure = at < 0 ? undefined : this.#failures.splice(at, 1)[0];
    if (failure) {
      const headers: Record<string, string> =
        failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) };
      if (failure.rateLimitResetSeconds !== undefined) {
        const reset = new Date(this.now() + failure.rateLimitResetSeconds * 1000);
        return this.#json(
          req,
          res,
          429,
          { errors: [], message: 'Too Many Requests' },
          {
            'x-ratelimit-limit': '600',
            'x-ratelimit-used': '600',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': reset.toISOString().replace(/\.\d{3}Z$/, '+00:00'),
          },
        );
      }
      return this.#json(req, res, failure.status, { message: 'Service Unavailable' }, headers);
    }
    const rest = path.slice(base.length);
    if (req.method === 'GET' && rest === '/notifications') {
      this.#expire();
      const next = this.#queue.shift();
      if (!next) return this.#json(req, res, 404, { errors: [], message: this.emptyQueueMessage });
      this.onPulled?.([next.notification]);
      return this.#json(req, res, 200, next.notification as unknown as JsonObject);
    }
    if (req.method === 'GET' && rest === '/notifications/multiple') {
      this.#expire();
      const limitText = url.searchParams.get('limit') ?? '10';
      const limit = Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
        return this.#json(req, res, 400, {
          errors: [{ field: 'limit', message: 'must be between 1 and 100' }],
        });
      }
      const taken = this.#queue.splice(0, limit).map((q) => q.notification as unknown as JsonObject);
      if (taken.length > 0) this.onPulled?.(taken as unknown as DpNotification[]);
      return this.#json(req, res, 200, { notifications: taken, remaining: this.#queue.length });
    }
    if (req.method === 'GET' && rest === '/facilities') {
      // getFacilities: the facilities the integration may act for (the ids its bookings name).
      const ids = new Set([...this.bookings.values()].map((b) => b.facility));
      return this.#json(req, res, 200, { _items: [...ids].map((id) => ({ id, name: `Facility ${id}` })) });
    }
    if (req.method === 'POST' && rest === '/notifications/release') {
      const now = this.now();
      if (this.#lastReleaseAt !== undefined && now - this.#lastReleaseAt < HOUR_MS) {
        const wait = Math.ceil((this.#lastReleaseAt + HOUR_MS - now) / 1000);
        return this.#json(req, res, 429, { message: 'Too Many Requests' }, { 'retry-after': String(wait) });
      }
      this.#lastReleaseAt = now;
      const again = this.pushes.filter((p) => p.buried);
      for (const record of again) {
        record.buried = false;
        this.push(record.notification, { hookUrl: record.hookUrl }).catch(() => {});
      }
      return this.#json(req, res, 202, { released: again.length });
    }
    const write = await this.writes.handle(req.method ?? 'GET', rest, body, (status, json, headers) => {
      if (json === null) {
        this.served.push({ method: req.method ?? 'GET', path: req.url ?? '/', status });
        res.writeHead(status, headers).end();
      } else this.#json(req, res, status, json, headers);
    });
    if (write) return;
    const breaks = /^\/facilities\/([^/]+)\/doctors\/([^/]+)\/addresses\/([^/]+)(\/breaks(?:\/[^/]+)?)$/.exec(
      rest,
    );
    const breakRead =
      req.method === 'GET' && breaks
        ? this.writes.breaks.read(
            {
              facility: decodeURIComponent(breaks[1]!),
              doctor: decodeURIComponent(breaks[2]!),
              address: decodeURIComponent(breaks[3]!),
            },
            breaks[4]!,
            url,
          )
        : undefined;
    if (breakRead) return this.#json(req, res, ...breakRead);
    const list = /^\/facilities\/([^/]+)\/doctors\/([^/]+)\/addresses\/([^/]+)\/bookings$/.exec(rest);
    if (req.method === 'GET' && list) {
      const [, facility, doctor, address] = list.map((p) => decodeURIComponent(p));
      return this.#json(
        req,
        res,
        ...this.#listBookings({ facility: facility!, doctor: doctor!, address: address! }, url),
      );
    }
    const m = /^\/facilities\/([^/]+)\/doctors\/([^/]+)\/addresses\/([^/]+)\/bookings\/([^/]+)$/.exec(rest);
    if (req.method === 'GET' && m) {
      const [, facility, doctor, address, id] = m.map((p) => decodeURIComponent(p));
      const known = this.bookings.get(id!);
      if (!known || known.facility !== facility || known.doctor !== doctor || known.address !== address) {
        return this.#json(req, res, 404, { errors: [], message: 'Object not found' });
      }
      // getBooking's `with=booking.moving` extension adds the booking's move chain.
      const scopes = (url.searchParams.get('with') ?? '').split(',');
      const booking = scopes.includes('booking.moving')
        ? { ...known.booking, moving: this.writes.moving(id!) }
        : known.booking;
      return this.#json(req, res, 200, booking);
    }
    return this.#json(req, res, 404, { message: 'Not Found' });
  }

  /**
   * getBookings (`GET …/bookings?start=&end=`, both required, ISO 8601 with offset): the address's
   * bookings starting from `start` up to `end`, booked or canceled, as `{ _items: [...] }` without
   * pagination; each booking's `patient` only with `with=booking.patient`, and whether it was
   * confirmed (`confirmed`) only with `with=booking.confirmation` (API reference, Bookings,
   * getBookings, its examples `Bookings`, `BookingsWithPatient` and `BookingsWithConfirmation`).
   */
  #listBookings(
    where: { facility: string; doctor: string; address: string },
    url: URL,
  ): [number, JsonObject] {
    const from = Date.parse(url.searchParams.get('start') ?? '');
    const to = Date.parse(url.searchParams.get('end') ?? '');
    if (Number.isNaN(from) || Number.isNaN(to)) {
      return [400, { errors: [], message: 'Invalid arguments' }];
    }
    const scopes = (url.searchParams.get('with') ?? '').split(',');
    const items: JsonObject[] = [];
    for (const known of this.bookings.values()) {
      if (
        known.facility !== where.facility ||
        known.doctor !== where.doctor ||
        known.address !== where.address
      )
        continue;
      const at = Date.parse(String(known.booking.start_at));
      if (at < from || at > to) continue;
      const { patient, ...booking } = known.booking;
      const item: JsonObject =
        scopes.includes('booking.patient') && patient !== undefined ? { ...booking, patient } : booking;
      if (scopes.includes('booking.confirmation'))
        item.confirmed = this.writes.confirmed.has(String(booking.id));
      items.push(item);
    }
    return [200, { _items: items }];
  }

  #authorized(req: IncomingMessage): boolean {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    const token = match ? this.#tokens.get(match[1]!.trim()) : undefined;
    return token !== undefined && !token.revoked && token.expiresAt > this.now();
  }

  #token(req: IncomingMessage, res: ServerResponse, body: string): void {
    const match = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    const [id, ...secret] = match ? Buffer.from(match[1]!, 'base64').toString('utf8').split(':') : [];
    const form = new URLSearchParams(body);
    const clientId = this.#options.clientId ?? 'sim-client';
    const clientSecret = this.#options.clientSecret ?? 'sim-secret';
    if (id !== clientId || secret.join(':') !== clientSecret) {
      this.#json(req, res, 401, {
        error: 'invalid_client',
        error_description: 'Client authentication failed',
      });
      return;
    }
    if (form.get('grant_type') !== 'client_credentials') {
      this.#json(req, res, 400, { error: 'unsupported_grant_type' });
      return;
    }
    const ttl = this.#options.tokenTtlSeconds ?? 3600;
    const token = randomBytes(24).toString('hex');
    this.#tokens.set(token, { expiresAt: this.now() + ttl * 1000, revoked: false });
    this.tokensIssued++;
    this.#json(req, res, 200, {
      access_token: token,
      expires_in: ttl,
      token_type: 'bearer',
      scope: form.get('scope') ?? 'integration',
    });
    return;
  }
}
