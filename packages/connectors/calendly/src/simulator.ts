/**
 * A fake Calendly for tests and demos: it POSTs notifications to a hub the way the vendor
 * does, retrying a failed push on the vendor's schedule. Pushes are signed with HMAC-SHA256 over the timestamp and the body, `t=…,v1=…`.
 * Calendly retries a failed delivery "for 24 hours with an exponential back-off" (developer.calendly.com,
 * "Webhook Errors"), without publishing the delays: the simulator doubles from one minute.
 *
 * It also serves the part of the API v2 the connector's commands call (read an event and an
 * invitee, cancel an event, create and delete a no-show; book through the Scheduling API's
 * `POST /invitees`, and the lookups a booking whose answer was lost needs: the current user, the
 * organization's scheduled events, an event's invitees) on 127.0.0.1 once started, answering with
 * the shapes of Calendly's reference (each route cites its page), with a switch to misbehave: a
 * gateway's 503 for the next calls, before or after the write is carried out.
 *
 * Test code imports it as `@switchyard/connector-calendly/simulator` (production code never does); it
 * imports this connector's own modules through `./testing.ts`, never by package name.
 */
import { randomUUID } from 'node:crypto';
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

/** One API call the simulator answered. */
export interface CalendlyApiCall {
  method: string;
  path: string;
  status: number;
  body?: JsonObject;
}

/** A failure the API answers instead of the next call. */
interface Failure {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Carry the write out first, then answer the failure (a gateway that timed out after forwarding). */
  afterWrite: boolean;
}

/** Calendly's error body, `{ title, message }` (developer.calendly.com/api-docs: every "Errors" section). */
const error = (title: string, message: string) => ({ title, message });

/** The token's user and its organization (the fixtures' host). */
export const SIM_USER = 'https://api.calendly.com/users/HOST000000000001';
export const SIM_ORGANIZATION = 'https://api.calendly.com/organizations/ORG0000000000001';

/** An event type the simulator books: what its scheduled events copy. */
export interface SimEventType {
  uri: string;
  name: string;
  durationMinutes: number;
  /** The scheduled event's `location` (`{ type, location }`, as webhooks embed it). */
  location?: JsonObject;
  /** Invitees one event takes (1: one-on-one). */
  limit?: number;
}

/** The pagination of a List answer with one page (developer.calendly.com/api-docs: every List endpoint). */
const onePage = (count: number) => ({
  count,
  next_page: null,
  previous_page: null,
  next_page_token: null,
  previous_page_token: null,
});

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
  /** The API calls answered, in order. */
  readonly calls: CalendlyApiCall[] = [];
  /** Invitees by URI, as webhooks carry them (with `scheduled_event` embedded). */
  readonly invitees = new Map<string, JsonObject>();
  /** Event types by URI: those of the invitees added, and {@link addEventType}'s. */
  readonly eventTypes = new Map<string, SimEventType>();
  readonly #options: CalendlySimulatorOptions;
  readonly #pending = new PendingTasks();
  readonly #failures: Failure[] = [];
  #server: LocalServer | undefined;

  constructor(options: CalendlySimulatorOptions) {
    this.#options = options;
  }

  /** The API's base URL (`apiBaseUrl` for the connector), once started. */
  get apiBaseUrl(): string {
    if (!this.#server) throw new Error('start() the simulator first');
    return this.#server.url;
  }

  /** Starts the API on 127.0.0.1 (pushes need no start). */
  async start(): Promise<void> {
    this.#server = await listenLocal(
      (req, res) => this.#handle(req, res),
      (err, _req, res) => this.#send(res, 500, error('Internal Server Error', err.message)),
    );
  }

  /** Waits for pending pushes and stops the API. */
  async close(): Promise<void> {
    await this.idle();
    if (this.#server) await closeServer(this.#server.server);
  }

  /**
   * Adds an invitee as a webhook carries it (an `invitee.created` fixture's `payload`): the API
   * then serves it and its scheduled event.
   */
  add(invitee: JsonObject): void {
    this.invitees.set(String(invitee.uri), structuredClone(invitee));
    const event = invitee.scheduled_event as JsonObject | undefined;
    const type = typeof event?.event_type === 'string' ? event.event_type : undefined;
    if (event && type && !this.eventTypes.has(type)) {
      const minutes = (Date.parse(String(event.end_time)) - Date.parse(String(event.start_time))) / 60_000;
      const counter = event.invitees_counter as JsonObject | undefined;
      this.eventTypes.set(type, {
        uri: type,
        name: String(event.name),
        durationMinutes: Number.isFinite(minutes) ? minutes : 30,
        ...(event.location ? { location: structuredClone(event.location as JsonObject) } : {}),
        limit: typeof counter?.limit === 'number' ? counter.limit : 1,
      });
    }
  }

  /** An event type `POST /invitees` books. */
  addEventType(type: SimEventType): void {
    this.eventTypes.set(type.uri, structuredClone(type));
  }

  /**
   * The webhook Calendly sends for an invitee now: `{ event, created_at, created_by, payload }`, the
   * payload the invitee as stored (its no-show, its cancellation).
   */
  webhook(event: string, uri: string): JsonObject {
    const invitee = this.invitees.get(uri);
    if (!invitee) throw new Error(`no invitee ${uri}`);
    return {
      created_at: new Date().toISOString(),
      created_by: 'https://api.calendly.com/users/HOST000000000001',
      event,
      payload: structuredClone(invitee),
    };
  }

  /**
   * The next `count` API calls get a gateway's 503 (with `Retry-After`); with `afterWrite`, the next
   * writes (POST, DELETE), each carried out first.
   */
  failNext(
    options: { status?: number; afterWrite?: boolean; count?: number; retryAfter?: string } = {},
  ): void {
    for (let i = 0; i < (options.count ?? 1); i++) {
      this.#failures.push({
        status: options.status ?? 503,
        headers: { 'retry-after': options.retryAfter ?? '7', 'content-type': 'text/plain' },
        body: 'upstream connect error or disconnect/reset before headers',
        afterWrite: options.afterWrite ?? false,
      });
    }
  }

  /**
   * The next API call is turned away by Calendly's rate limit: 429 with `X-RateLimit-Limit`,
   * `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` (seconds), no `Retry-After`
   * (developer.calendly.com/api-docs/overview/rate-limits), nothing carried out.
   */
  rateLimitNext(resetSeconds = 60): void {
    this.#failures.push({
      status: 429,
      headers: {
        'content-type': 'application/json',
        'x-ratelimit-limit': '10',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(resetSeconds),
      },
      body: JSON.stringify(error('Too Many Requests', 'Rate limit exceeded')),
      afterWrite: false,
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const text = await readBody(req);
    const json = text ? (JSON.parse(text) as JsonObject) : undefined;
    const record = (status: number) =>
      this.calls.push({ method, path: url.pathname, status, ...(json ? { body: json } : {}) });
    const token = this.#options.config.apiToken;
    if (!token || req.headers.authorization !== `Bearer ${token}`) {
      record(401);
      return this.#send(res, 401, error('Unauthenticated', 'The access token is invalid'));
    }
    // A failure after the write waits for a write (the reads before it are answered).
    const failure = method === 'GET' && this.#failures[0]?.afterWrite ? undefined : this.#failures.shift();
    if (failure && !failure.afterWrite) {
      record(failure.status);
      return void res.writeHead(failure.status, failure.headers).end(failure.body);
    }
    const result = this.#route(method, url.pathname, json ?? {}, url.searchParams);
    if (failure) {
      record(failure.status);
      return void res.writeHead(failure.status, failure.headers).end(failure.body);
    }
    record(result.status);
    this.#send(res, result.status, result.body);
  }

  /** The invitees of one scheduled event. */
  #ofEvent(uuid: string): JsonObject[] {
    return [...this.invitees.values()].filter((i) => String(i.uri).includes(`/scheduled_events/${uuid}/`));
  }

  /** The event as `GET /scheduled_events/{uuid}` answers it, its counter from its invitees. */
  #event(uuid: string): JsonObject | undefined {
    const invitees = this.#ofEvent(uuid);
    if (invitees.length === 0) return undefined;
    const event = structuredClone(invitees[0]!.scheduled_event as JsonObject);
    const active = invitees.filter((i) => i.status === 'active').length;
    const counter = (event.invitees_counter as JsonObject | undefined) ?? {};
    event.invitees_counter = { ...counter, total: invitees.length, active };
    return event;
  }

  /** An invitee as the API answers it: `event` (its URI) instead of the webhook's embedded `scheduled_event`. */
  #resource(invitee: JsonObject): JsonObject {
    const { scheduled_event: _embedded, ...resource } = structuredClone(invitee);
    return resource;
  }

  #route(
    method: string,
    path: string,
    json: JsonObject,
    query: URLSearchParams,
  ): { status: number; body?: unknown } {
    const notFound = {
      status: 404,
      body: error('Resource Not Found', 'The server could not find the requested resource.'),
    };
    if (path === '/users/me' && method === 'GET') {
      // Get Current User (…/users/get-current-user; "How to find the organization or user URI":
      // the user's `uri` and its `current_organization`): 200 { resource: User }.
      return {
        status: 200,
        body: {
          resource: {
            uri: SIM_USER,
            name: 'Dr Jane Host',
            slug: 'jane-host',
            email: 'host@example.com',
            scheduling_url: 'https://calendly.com/jane-host',
            timezone: 'Europe/Paris',
            avatar_url: null,
            created_at: '2025-01-02T03:04:05.678123Z',
            updated_at: '2025-01-02T03:04:05.678123Z',
            current_organization: SIM_ORGANIZATION,
            resource_type: 'User',
          },
        },
      };
    }
    if (path === '/scheduled_events' && method === 'GET') return this.#listEvents(query);
    let m = /^\/scheduled_events\/([^/]+)\/invitees$/.exec(path);
    if (m && method === 'GET') {
      // List Event Invitees (…/scheduled-events/list-event-invitees): `status`, `email` filters;
      // 200 { collection: [Invitee], pagination }.
      if (!this.#event(m[1]!)) return notFound;
      const email = query.get('email')?.toLowerCase();
      const status = query.get('status');
      const collection = this.#ofEvent(m[1]!)
        .filter((i) => (email ? String(i.email).toLowerCase() === email : true))
        .filter((i) => (status ? i.status === status : true))
        .map((i) => this.#resource(i));
      return { status: 200, body: { collection, pagination: onePage(collection.length) } };
    }
    if (path === '/invitees' && method === 'POST') return this.#book(json);
    m = /^\/scheduled_events\/([^/]+)(\/cancellation)?$/.exec(path);
    if (m) {
      // Get Event (…/scheduled-events/get-event): 200 { resource: Event }.
      const event = this.#event(m[1]!);
      if (!event) return notFound;
      if (method === 'GET' && !m[2]) return { status: 200, body: { resource: event } };
      if (method !== 'POST' || !m[2]) return notFound;
      // Cancel Event (…/scheduled-events/create-scheduled-event-cancellation): 201 { resource: Cancellation }.
      // What it answers for an event already canceled the reference does not say: the simulator
      // answers 403 with words of its own, as a refusal the connector must look behind.
      if (event.status === 'canceled') {
        return { status: 403, body: error('Permission Denied', 'Event is already canceled') };
      }
      const cancellation: JsonObject = {
        canceled_by: 'Dr Jane Host',
        reason: typeof json.reason === 'string' ? json.reason : null,
        canceler_type: 'host',
        created_at: new Date().toISOString(),
      };
      for (const invitee of this.#ofEvent(m[1]!)) {
        const embedded = invitee.scheduled_event as JsonObject;
        embedded.status = 'canceled';
        embedded.cancellation = cancellation;
        if (invitee.status === 'active') {
          invitee.status = 'canceled';
          invitee.cancellation = cancellation;
        }
      }
      return { status: 201, body: { resource: cancellation } };
    }
    m = /^\/scheduled_events\/([^/]+)\/invitees\/([^/]+)$/.exec(path);
    if (m && method === 'GET') {
      // Get Event Invitee (…/scheduled-events/get-event-invitee): 200 { resource: Invitee }, with
      // `event` (its URI) instead of the webhook's embedded `scheduled_event`.
      const invitee = [...this.invitees.values()].find((i) =>
        String(i.uri).endsWith(`/scheduled_events/${m![1]}/invitees/${m![2]}`),
      );
      if (!invitee) return notFound;
      return { status: 200, body: { resource: this.#resource(invitee) } };
    }
    if (path === '/invitee_no_shows' && method === 'POST') {
      // Create Invitee No Show (…/scheduled-events/create-invitee-no-show): 201 { resource: { uri, invitee, created_at } }.
      const invitee = this.invitees.get(String(json.invitee));
      if (!invitee) return notFound;
      // A second mark: the reference does not say; a refusal of the simulator's own words.
      if (invitee.no_show)
        return { status: 400, body: error('Invalid Argument', 'Invitee is already marked as no show') };
      const resource = {
        uri: `https://api.calendly.com/invitee_no_shows/${randomUUID()}`,
        invitee: invitee.uri,
        created_at: new Date().toISOString(),
      };
      invitee.no_show = { uri: resource.uri, created_at: resource.created_at };
      return { status: 201, body: { resource } };
    }
    m = /^\/invitee_no_shows\/([^/]+)$/.exec(path);
    if (m && method === 'DELETE') {
      // Delete Invitee No Show (…/scheduled-events/delete-invitee-no-show): 204, 404 when there is none.
      const invitee = [...this.invitees.values()].find(
        (i) =>
          typeof i.no_show === 'object' &&
          i.no_show !== null &&
          String((i.no_show as JsonObject).uri).endsWith(`/${m![1]}`),
      );
      if (!invitee) return notFound;
      invitee.no_show = null;
      return { status: 204 };
    }
    return notFound;
  }

  /**
   * List Events (…/scheduled-events/list-scheduled-events): `organization` (an admin's or owner's)
   * or `user`, and the filters `invitee_email`, `min_start_time`, `max_start_time`, `status`;
   * 200 { collection: [Event], pagination }.
   */
  #listEvents(query: URLSearchParams): { status: number; body?: unknown } {
    const organization = query.get('organization');
    const user = query.get('user');
    if (!organization && !user) {
      return {
        status: 400,
        body: {
          ...error('Invalid Argument', 'The supplied parameters are invalid.'),
          details: [{ parameter: 'organization', message: 'organization or user is required' }],
        },
      };
    }
    if ((organization && organization !== SIM_ORGANIZATION) || (user && user !== SIM_USER)) {
      return {
        status: 403,
        body: error('Permission Denied', 'You do not have permission to access this resource.'),
      };
    }
    const email = query.get('invitee_email')?.toLowerCase();
    const min = query.get('min_start_time');
    const max = query.get('max_start_time');
    const status = query.get('status');
    const uuids = new Set(
      [...this.invitees.values()].map((i) => /\/scheduled_events\/([^/]+)\//.exec(String(i.uri))?.[1]),
    );
    const collection = [...uuids]
      .filter((uuid): uuid is string => uuid !== undefined)
      .map((uuid) => this.#event(uuid)!)
      .filter((event) => {
        const at = Date.parse(String(event.start_time));
        if (min && at < Date.parse(min)) return false;
        if (max && at >= Date.parse(max)) return false;
        if (status && event.status !== status) return false;
        const uuid = String(event.uri).split('/').at(-1)!;
        return email ? this.#ofEvent(uuid).some((i) => String(i.email).toLowerCase() === email) : true;
      });
    return { status: 200, body: { collection, pagination: onePage(collection.length) } };
  }

  /**
   * Create Event Invitee (the Scheduling API, `POST /invitees`: `event_type`, `start_time`, `invitee
   * { email, timezone, name or first_name }` required; 201 { resource: Invitee }, its fields as
   * https://calendly-preview.mintlify.app/api-reference/v2/scheduling/create-event-invitee lists
   * them, the stored invitee as the fixtures' `invitee.created` payload). A start another
   * active booking of a one-on-one event type holds is refused 400 with `details[].code:
   * already_filled` (the code integrations read; the reference shows no example of the refusal).
   */
  #book(json: JsonObject): { status: number; body?: unknown } {
    const invitee = (
      typeof json.invitee === 'object' && json.invitee !== null ? json.invitee : {}
    ) as JsonObject;
    const invalid = (parameter: string, message: string, code?: string) => ({
      status: 400,
      body: {
        ...error('Invalid Argument', 'The supplied parameters are invalid.'),
        details: [{ parameter, message, ...(code ? { code } : {}) }],
      },
    });
    if (typeof json.event_type !== 'string') return invalid('event_type', 'is required');
    if (typeof json.start_time !== 'string' || Number.isNaN(Date.parse(json.start_time)))
      return invalid('start_time', 'is required');
    if (typeof invitee.email !== 'string' || !invitee.email.includes('@'))
      return invalid('invitee.email', 'is invalid');
    if (typeof invitee.timezone !== 'string') return invalid('invitee.timezone', 'is required');
    if (typeof invitee.name !== 'string' && typeof invitee.first_name !== 'string')
      return invalid('invitee.name', 'is required if invitee.first_name is not provided');
    const type = this.eventTypes.get(json.event_type);
    if (!type) {
      return {
        status: 404,
        body: error('Resource Not Found', 'The server could not find the requested resource.'),
      };
    }
    const start = new Date(Date.parse(json.start_time));
    const taken = [...this.invitees.values()].filter((i) => {
      const event = i.scheduled_event as JsonObject;
      return (
        i.status === 'active' &&
        event.event_type === type.uri &&
        Date.parse(String(event.start_time)) === start.getTime()
      );
    });
    if (taken.length >= (type.limit ?? 1)) {
      return invalid('start_time', 'The selected time is no longer available.', 'already_filled');
    }
    const now = new Date().toISOString();
    const eventUri =
      (taken[0]?.scheduled_event as JsonObject | undefined)?.uri ??
      `https://api.calendly.com/scheduled_events/${randomUUID()}`;
    const uuid = randomUUID();
    const first = typeof invitee.first_name === 'string' ? invitee.first_name : null;
    const last = typeof invitee.last_name === 'string' ? invitee.last_name : null;
    const made: JsonObject = {
      cancel_url: `https://calendly.com/cancellations/${uuid}`,
      created_at: now,
      email: invitee.email,
      event: eventUri,
      first_name: first,
      last_name: last,
      name: typeof invitee.name === 'string' ? invitee.name : [first, last].filter(Boolean).join(' '),
      new_invitee: null,
      no_show: null,
      old_invitee: null,
      payment: null,
      questions_and_answers: Array.isArray(json.questions_and_answers) ? json.questions_and_answers : [],
      reconfirmation: null,
      reschedule_url: `https://calendly.com/reschedulings/${uuid}`,
      rescheduled: false,
      routing_form_submission: null,
      scheduled_event: {
        uri: eventUri,
        name: type.name,
        meeting_notes_plain: null,
        meeting_notes_html: null,
        status: 'active',
        start_time: start.toISOString(),
        end_time: new Date(start.getTime() + type.durationMinutes * 60_000).toISOString(),
        event_type: type.uri,
        location:
          typeof json.location === 'object' && json.location !== null
            ? (json.location as JsonObject)
            : (type.location ?? null),
        invitees_counter: { total: 1, active: 1, limit: type.limit ?? 1 },
        created_at: now,
        updated_at: now,
        event_memberships: [{ user: SIM_USER, user_email: 'host@example.com', user_name: 'Dr Jane Host' }],
        event_guests: [],
      },
      scheduling_method: 'instant_book',
      status: 'active',
      text_reminder_number:
        typeof invitee.text_reminder_number === 'string' ? invitee.text_reminder_number : null,
      timezone: invitee.timezone,
      tracking: {
        utm_campaign: null,
        utm_source: null,
        utm_medium: null,
        utm_content: null,
        utm_term: null,
        salesforce_uuid: null,
      },
      updated_at: now,
      uri: `${eventUri}/invitees/${uuid}`,
    };
    this.invitees.set(String(made.uri), made);
    return { status: 201, body: { resource: this.#resource(made) } };
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    if (body === undefined) return void res.writeHead(status).end();
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
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
