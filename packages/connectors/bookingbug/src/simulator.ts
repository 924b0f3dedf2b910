/**
 * A fake BookingBug (JRNI) for tests and demos. It pushes the legacy whole purchase to the booking
 * callback URL, or to the cancellation callback URL for cancellations when one is configured
 * (BookingBug sends everything to the booking URL otherwise), and JRNI's data / notification
 * webhooks (one appointment snapshot, `triggerName` / `triggerTime`) to the webhook URL. It
 * authenticates the way JRNI is set up to: HTTP Basic user and password, a "Basic token", or OAuth2
 * client credentials, fetching a Bearer token from the receiver's `accessTokenUrl` (again when it
 * expires, or once when a push is refused with 401). Whether and how the vendor retries a failed
 * push is not documented: by default it does not, and `retryDelaysMs` makes it.
 *
 * Started (`start()`), it also serves the admin REST API commands call (`writes`: login, booking
 * cancel and move, see simulator-writes.ts) and pushes the vendor's notification of each change it
 * makes.
 *
 * Test code imports it as `@switchyard/connector-bookingbug/simulator` (production code never
 * does); it imports this connector's own modules through `./testing.ts`, never by package name.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type EventEnvelope, isJsonObject, type JsonObject } from '@switchyard/core';
import { type Attempt, isCloudEvent, pushJson } from '@switchyard/testing/simulator-kit/push';
import { closeServer, listenLocal, readBody } from '@switchyard/testing/simulator-kit/server';
import { type BookingBugAdminOptions, BookingBugWriteApi } from './simulator-writes.ts';
import { type Config as BookingBugConfig, basicAuthorization, encode } from './testing.ts';

/** Options of {@link BookingBugSimulator}. */
export interface BookingBugSimulatorOptions {
  /** The booking callback URL (the hub's `/hooks/{instance}`). Can also be given per push. */
  bookingUrl?: string;
  /** The cancellation callback URL (the hub's `/hooks/{instance}/cancellation`); unset: cancellations go to `bookingUrl`. */
  cancellationUrl?: string;
  /** HTTP Basic credentials (shorthand for `auth: { kind: 'basic', … }`). */
  username?: string;
  password?: string;
  /** How pushes authenticate; no Authorization header when neither this nor username/password is set. */
  auth?: BookingBugAuth;
  /** Delays before retries of a failed push. BookingBug's habit is undocumented: default none. */
  retryDelaysMs?: number[];
  /** Multiplies every retry delay (e.g. 0.001 in tests). Default 1. */
  timeScale?: number;
  /** Per-attempt timeout of a push, default 10 s. */
  pushTimeoutMs?: number;
  /** The clock for token expiry. Default: real time. */
  now?: () => Date;
  /** The admin API's App-Id, App-Key and administrator (see {@link BookingBugWriteApi}). */
  admin?: BookingBugAdminOptions;
}

/** JRNI's webhook authentication settings (dev.bookingbug.com "Authentication (data webhooks)"). */
export type BookingBugAuth =
  | { kind: 'basic'; username: string; password: string }
  /** "Basic token": the value is sent as is after `Authorization: Basic `. */
  | { kind: 'basic-token'; token: string }
  /**
   * OAuth2 client credentials: a token from `accessTokenUrl` (the hub's
   * `/hooks/{instance}/oauth/token`), the client id and secret sent in HTTP Basic (`header`, the
   * default) or in the form body (`body`).
   */
  | {
      kind: 'oauth2';
      accessTokenUrl: string;
      clientId: string;
      clientSecret: string;
      clientAuthentication?: 'header' | 'body';
    };

/** One token request the simulator made, and what came back. */
export interface BookingBugTokenRequest {
  at: Date;
  status: number | null;
  /** True when the answer carried an access token. */
  issued: boolean;
}

/** What a push is about: the legacy push picks the URL by it. A JRNI webhook's kind is its trigger. */
export type BookingBugPushKind = 'create' | 'modify' | 'cancelled';

/** One try at delivering a push. */
export type BookingBugPushAttempt = Attempt;

/** What happened to one push. */
export interface BookingBugPushRecord {
  kind: BookingBugPushKind;
  /** `purchase` (legacy push) or `jrni` (data / notification webhook). */
  shape: 'purchase' | 'jrni';
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
 * const jrni = new BookingBugSimulator({
 *   bookingUrl: `${hub}/hooks/bb-main`,
 *   auth: { kind: 'oauth2', accessTokenUrl: `${hub}/hooks/bb-main/oauth/token`, clientId: 'jrni', clientSecret: 's'.repeat(32) },
 * });
 * await jrni.push(jrniWebhook);                     // a Bearer token is fetched first
 * ```
 */
export class BookingBugSimulator {
  readonly pushes: BookingBugPushRecord[] = [];
  readonly tokenRequests: BookingBugTokenRequest[] = [];
  readonly #options: BookingBugSimulatorOptions;
  #token: { value: string; expiresAt: number } | undefined;
  #server: Server | undefined;
  #url: string | undefined;
  /** The admin API (login, booking cancel and move) and the notifications that follow them. */
  readonly writes: BookingBugWriteApi;

  constructor(options: BookingBugSimulatorOptions = {}) {
    this.#options = options;
    this.writes = new BookingBugWriteApi(
      {
        now: () => this.#options.now?.() ?? new Date(),
        echo: (body, kind, hookUrl) => {
          if (hookUrl !== undefined) this.push(body, { kind, bookingUrl: hookUrl }).catch(() => {});
          else if (this.#options.bookingUrl !== undefined) this.push(body, { kind }).catch(() => {});
        },
      },
      options.admin,
    );
  }

  /** The admin API's base URL once started (the connector's `adminApi.baseUrl`). */
  get url(): string {
    if (this.#url === undefined) throw new Error('BookingBugSimulator is not started: call start()');
    return this.#url;
  }

  /** Serves the admin API on 127.0.0.1 (a random port). */
  async start(): Promise<void> {
    if (this.#server) return;
    const { server, url } = await listenLocal(
      (req, res) => this.#handle(req, res),
      (error, _req, res) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: error.message }));
      },
    );
    this.#server = server;
    this.#url = url;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await closeServer(server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      headers[name] = Array.isArray(value) ? value[0] : value;
    }
    const raw = await readBody(req);
    const reply = (status: number, body: JsonObject, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify(body));
    };
    if (await this.writes.handle(req.method ?? 'GET', path, headers, raw, reply, url.searchParams)) return;
    reply(404, { error: 'Not Found' });
  }

  /**
   * POSTs a purchase or a JRNI webhook (as is), or a normalized event turned into one by the
   * connector's `encode` (a JRNI webhook when the event came from one). `kind` picks the URL for a
   * raw purchase (default `create`; an event's kind follows its type); a JRNI webhook always goes
   * to the booking (webhook) URL, its kind read from `triggerName`.
   */
  async push(
    input: JsonObject | EventEnvelope,
    options: {
      kind?: BookingBugPushKind;
      bookingUrl?: string;
      cancellationUrl?: string;
    } = {},
  ): Promise<BookingBugPushRecord> {
    let body: JsonObject;
    let kind: BookingBugPushKind;
    if (isCloudEvent(input)) {
      const encoded = encode(input, this.#connectorConfig());
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
    const shape =
      isJsonObject(body.appointment) && body.appointment.bookingId !== undefined ? 'jrni' : 'purchase';
    if (shape === 'jrni') kind = options.kind ?? jrniKind(body.triggerName);
    const bookingUrl = options.bookingUrl ?? this.#options.bookingUrl;
    if (bookingUrl === undefined) throw new Error('BookingBugSimulator.push: no bookingUrl');
    const cancellationUrl = options.cancellationUrl ?? this.#options.cancellationUrl;
    const url =
      shape === 'purchase' && kind === 'cancelled' && cancellationUrl !== undefined
        ? cancellationUrl
        : bookingUrl;
    const record: BookingBugPushRecord = { kind, shape, url, body, attempts: [], delivered: false };
    this.pushes.push(record);
    // The vendor acts (admin API) on the bookings it notified.
    this.writes.remember(body);
    // The vendor's retry habit is undocumented: none unless the options ask for one.
    record.delivered = await pushJson(url, await this.#headers(), body, this.#options, record.attempts);
    const last = record.attempts[record.attempts.length - 1];
    if (!record.delivered && last?.status === 401 && this.#auth()?.kind === 'oauth2') {
      // A refused token (expired at the receiver, or its secret changed): fetch a new one, once.
      this.#token = undefined;
      record.delivered = await pushJson(url, await this.#headers(), body, this.#options, record.attempts);
    }
    return record;
  }

  #auth(): BookingBugAuth | undefined {
    const { auth, username, password } = this.#options;
    if (auth !== undefined) return auth;
    return username !== undefined && password !== undefined
      ? { kind: 'basic', username, password }
      : undefined;
  }

  async #headers(): Promise<Record<string, string>> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const auth = this.#auth();
    if (auth?.kind === 'basic') headers.authorization = basicAuthorization(auth.username, auth.password);
    if (auth?.kind === 'basic-token') headers.authorization = `Basic ${auth.token}`;
    if (auth?.kind === 'oauth2') {
      const token = await this.#accessToken(auth);
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
    }
    return headers;
  }

  /** A valid token from the cache, else from the token URL; undefined when none was issued. */
  async #accessToken(auth: Extract<BookingBugAuth, { kind: 'oauth2' }>): Promise<string | undefined> {
    const now = (this.#options.now?.() ?? new Date()).getTime();
    if (this.#token !== undefined && this.#token.expiresAt > now) return this.#token.value;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth.clientAuthentication === 'body') {
      form.set('client_id', auth.clientId);
      form.set('client_secret', auth.clientSecret);
    } else {
      const encode = (v: string) => encodeURIComponent(v).replaceAll('%20', '+');
      headers.authorization = basicAuthorization(encode(auth.clientId), encode(auth.clientSecret));
    }
    const at = new Date(now);
    try {
      const res = await fetch(auth.accessTokenUrl, {
        method: 'POST',
        headers,
        body: form.toString(),
        signal: AbortSignal.timeout(this.#options.pushTimeoutMs ?? 10_000),
      });
      const answer = (await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown };
      const issued = res.ok && typeof answer.access_token === 'string';
      this.tokenRequests.push({ at, status: res.status, issued });
      if (!issued) return undefined;
      const seconds = typeof answer.expires_in === 'number' ? answer.expires_in : 3600;
      // Renewed a little before it runs out, as a careful client does.
      this.#token = {
        value: answer.access_token as string,
        expiresAt: now + Math.max(0, seconds - 30) * 1000,
      };
      return this.#token.value;
    } catch {
      this.tokenRequests.push({ at, status: null, issued: false });
      return undefined;
    }
  }

  #connectorConfig(): BookingBugConfig {
    return { basicAuth: { username: this.#options.username ?? '', password: this.#options.password ?? '' } };
  }
}

/** The legacy push kind a JRNI trigger corresponds to. */
function jrniKind(triggerName: unknown): BookingBugPushKind {
  const word = typeof triggerName === 'string' ? triggerName.toLowerCase() : '';
  if (word.includes('cancel')) return 'cancelled';
  if (word.includes('creat')) return 'create';
  return 'modify';
}
