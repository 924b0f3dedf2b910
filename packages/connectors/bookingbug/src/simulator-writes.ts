/**
 * The admin half of the fake BookingBug / JRNI REST API (dev.bookingbug.com, REST API
 * "Authentication" and "Admin Bookings"): `POST /api/v1/login` (an administrator's email and
 * password, `App-Id` / `App-Key` headers) answering an `auth_token`; `GET`, `PUT` (a move:
 * `{ datetime }`, "Update Booking", answered with the admin booking as the docs' sample) and
 * `POST …/cancel` of `/api/v1/admin/{company_id}/bookings/{id}` with the `Auth-Token` header, and
 * the `PUT` of `/api/v3/…` with `{ current_multi_status }` (JRNI v3 "Check-In", answered with the
 * booking and its `current_multi_status`); `PUT …/private_notes` with `{ note }` ("Add Private Note",
 * answered with the booking and its `notes.private[]`; no notification follows, none documented).
 *
 * Failure modes: 401 `{"error":"401 Unauthorized"}` without a valid token (as documented), also for
 * a token made stale by {@link BookingBugWriteApi.expireTokens}; 404 for a booking the company does
 * not have; a cancel of a cancelled booking answers 409 (the vendor's real answer is not documented:
 * the connector does not rely on it, it re-reads the booking). A move answers as JRNI's REST API
 * errors are documented (dev.jrni.com, "Errors"): 403 for a cancelled booking ("Rescheduling
 * cancelled booking error"), 409 for a time already taken ({@link BookingBugWriteApi.occupy}: "the
 * appointment slot ... is fully booked"), 400 without a `datetime` it can read ("Validation error",
 * with `detail`); the bodies' shapes beyond that are not documented.
 * 5xx and 429 with Retry-After on demand
 * (`failNext`); slow answers (`delayMs`). After a cancel the simulator pushes what the vendor would:
 * a JRNI webhook with `triggerName: cancelled` for a booking it last told by JRNI webhook, else the
 * purchase with the booking `is_cancelled` to the cancellation URL. After a move: a JRNI webhook with
 * `triggerName: modify` and the new times, else the purchase with the booking's new `datetime` and
 * `end_datetime` to the booking URL. After a check-in status: the JRNI `modify` webhook with its
 * `checkInStatus` ("Checked in", "No show"), else the purchase with the booking's
 * `current_multi_status`.
 *
 * The bookings it knows are those the simulator pushed (a vendor acts on bookings it notified), or
 * added with {@link BookingBugWriteApi.addBooking}.
 */
import { randomBytes } from 'node:crypto';
import { isJsonObject, type JsonObject } from '@switchyard/core';
import { checkInOf } from './normalize.ts';

/** One admin API request answered (for assertions). */
export interface BookingBugApiCall {
  method: string;
  path: string;
  body: JsonObject | undefined;
  status: number;
  appId: string | undefined;
  appKey: string | undefined;
  authToken: string | undefined;
}

/** What the vendor knows of one booking, and how it last told about it. */
interface KnownBooking {
  company: string;
  cancelled: boolean;
  /** When it starts (as BookingBug writes it, with an offset), and its length in minutes. */
  datetime: string | undefined;
  duration: number;
  /** Its check-in status (`checked_in`, `no_show`, ...), once set through the API. */
  checkIn?: string;
  /** The last push that told about it: the echo is built from it. */
  told: { shape: 'purchase'; purchase: JsonObject } | { shape: 'jrni'; webhook: JsonObject };
  /** The admin booking's ids and client, as far as known (`service_id`, `person_id`, `member_id`, `client_email`, `created_at`, …). */
  fields?: JsonObject;
}

/** The admin booking fields a push's booking lends the simulator's {@link KnownBooking.fields}. */
const BOOKING_FIELDS = [
  'service_id',
  'person_id',
  'resource_id',
  'member_id',
  'client_id',
  'created_at',
] as const;

/** What the simulator lends its admin API. */
export interface BookingBugWriteHost {
  now(): Date;
  /**
   * Pushes an echo (a purchase to the cancellation URL, or a JRNI webhook) the way the simulator
   * pushes; to `hookUrl` when given instead of the booking URL.
   */
  echo(body: JsonObject, kind: 'create' | 'cancelled' | 'modify', hookUrl: string | undefined): void;
}

type Reply = (status: number, body: JsonObject, headers?: Record<string, string>) => void;

/** Options of {@link BookingBugWriteApi}. */
export interface BookingBugAdminOptions {
  /** The App-Id every call must carry. Default `sim-app-id`. */
  appId?: string;
  /** The App-Key every call must carry, when set (accounts set up later need none). Default `sim-app-key`; null: none. */
  appKey?: string | null;
  /** The administrator who may log in. Default `admin@clinic.example` / `sim-admin-password`. */
  email?: string;
  password?: string;
}

/**
 * BookingBug's admin login and booking cancel.
 *
 * @example
 * ```ts
 * bb.writes.failNext(1, 429, 7);  // the next API call: 429 with Retry-After: 7
 * bb.writes.expireTokens();       // every issued Auth-Token is now refused (401)
 * bb.writes.log;                  // every admin API call answered
 * ```
 */
export class BookingBugWriteApi {
  /** Every admin API call answered, in order. */
  readonly log: BookingBugApiCall[] = [];
  /** Delay before every answer, ms (a slow vendor). */
  delayMs = 0;
  /** Push the echo after a cancel or a move (default true). */
  echoes = true;
  /** How long after its answer the echo is pushed, ms. Default 50. */
  echoDelayMs = 50;
  /** Where echoes go; default: the simulator's booking (and cancellation) URL. */
  hookUrl: string | undefined;
  /** Called when an API request arrives, before anything else (benchmarks time the hub's calls). */
  onRequest: ((method: string, path: string) => void) | undefined;
  readonly #host: BookingBugWriteHost;
  readonly #options: Required<Omit<BookingBugAdminOptions, 'appKey'>> & { appKey: string | null };
  readonly #bookings = new Map<string, KnownBooking>();
  readonly #tokens = new Set<string>();
  readonly #failures: Array<{ status: number; retryAfterSeconds?: number }> = [];
  readonly #occupied = new Set<number>();
  /** Private notes by booking id (kept across the pushes that re-tell a booking). */
  readonly #notes = new Map<string, Array<{ id: number; note: string }>>();
  #noteIds = 0;
  /** Ids of the bookings and purchases `POST …/bookings` makes. */
  #bookingIds = 20_000_000;
  /**
   * Serve no `/api/v3/` path (404), as a legacy BookingBug host that does not run JRNI's v3 admin
   * API: the check-in status cannot be set there. Default false.
   */
  legacyHost = false;

  constructor(host: BookingBugWriteHost, options: BookingBugAdminOptions = {}) {
    this.#host = host;
    this.#options = {
      appId: options.appId ?? 'sim-app-id',
      appKey: options.appKey === undefined ? 'sim-app-key' : options.appKey,
      email: options.email ?? 'admin@clinic.example',
      password: options.password ?? 'sim-admin-password',
    };
  }

  /** The next `count` API calls (login included) answer `status`, with Retry-After when given. */
  failNext(count: number, status = 503, retryAfterSeconds?: number): void {
    for (let i = 0; i < count; i++)
      this.#failures.push(retryAfterSeconds === undefined ? { status } : { status, retryAfterSeconds });
  }

  /** A move to this time (the same instant, any offset) is refused with 409: the slot is taken. */
  occupy(datetime: string): void {
    this.#occupied.add(Date.parse(datetime));
  }

  /** Every Auth-Token issued so far is refused from now on (expired, or logged out elsewhere). */
  expireTokens(): void {
    this.#tokens.clear();
  }

  /** The private notes of a booking, oldest first. */
  privateNotes(bookingId: string | number): string[] {
    return (this.#notes.get(String(bookingId)) ?? []).map((n) => n.note);
  }

  /** When the vendor holds the booking to start (undefined: unknown booking). */
  startOf(bookingId: string | number): string | undefined {
    return this.#bookings.get(String(bookingId))?.datetime;
  }

  /** Whether the vendor holds the booking as cancelled (undefined: unknown booking). */
  isCancelled(bookingId: string | number): boolean | undefined {
    return this.#bookings.get(String(bookingId))?.cancelled;
  }

  /**
   * Remembers the bookings of a push the simulator made (a purchase's `_embedded.bookings[]`, a
   * JRNI webhook's `appointment`): the vendor can then act on them.
   */
  remember(body: JsonObject): void {
    const appointment = body.appointment;
    if (isJsonObject(appointment) && appointment.bookingId !== undefined) {
      const company = isJsonObject(body.company) ? body.company.jrniId : undefined;
      const trigger = typeof body.triggerName === 'string' ? body.triggerName.toLowerCase() : '';
      const start = appointment.companyStartTime ?? appointment.customerStartTime;
      this.#bookings.set(String(appointment.bookingId), {
        company: String(company ?? ''),
        cancelled: trigger.includes('cancel'),
        datetime: typeof start === 'string' ? start : undefined,
        duration: typeof appointment.duration === 'number' ? appointment.duration : 0,
        // "Checked in" as the admin API writes it, checked_in; empty is none.
        ...(typeof appointment.checkInStatus === 'string' && appointment.checkInStatus !== ''
          ? { checkIn: checkInOf(appointment.checkInStatus)! }
          : {}),
        told: { shape: 'jrni', webhook: structuredClone(body) },
      });
      return;
    }
    const embedded = isJsonObject(body._embedded) ? body._embedded : {};
    const bookings = Array.isArray(embedded.bookings) ? embedded.bookings.filter(isJsonObject) : [];
    for (const b of bookings) {
      const fields: JsonObject = { ...(this.#bookings.get(String(b.id))?.fields ?? {}) };
      for (const key of BOOKING_FIELDS) if (b[key] !== undefined) fields[key] = b[key]!;
      if (typeof b.email === 'string') fields.client_email = b.email;
      this.#bookings.set(String(b.id), {
        fields,
        company: String(b.company_id ?? ''),
        cancelled: b.is_cancelled === true,
        datetime: typeof b.datetime === 'string' ? b.datetime : undefined,
        duration: typeof b.duration === 'number' ? b.duration : 0,
        ...(typeof b.current_multi_status === 'string' ? { checkIn: b.current_multi_status } : {}),
        told: { shape: 'purchase', purchase: structuredClone(body) },
      });
    }
  }

  /** Adds a booking as a legacy purchase of one booking (tests that push nothing first). */
  addBooking(purchase: JsonObject): void {
    this.remember(purchase);
  }

  /** Answers an admin API route (`path` starts with `/api/v1/`); false when it is not one. */
  async handle(
    method: string,
    path: string,
    headers: Record<string, string | undefined>,
    rawBody: string,
    reply: Reply,
    query: URLSearchParams = new URLSearchParams(),
  ): Promise<boolean> {
    const isLogin = method === 'POST' && path === '/api/v1/login';
    // v1 (the BookingBug docs' admin API) and v3 (JRNI's, where the check-in status is documented).
    const booking = /^\/api\/v[13]\/admin\/([^/]+)\/bookings\/([^/]+)(\/cancel|\/private_notes)?$/.exec(path);
    // The company's bookings: "List Bookings" (GET) and "New Booking" (POST).
    const all = /^\/api\/v1\/admin\/([^/]+)\/bookings$/.exec(path);
    if (!isLogin && !booking && !all) return false;
    let body: JsonObject | undefined;
    try {
      const parsed: unknown = rawBody === '' ? undefined : JSON.parse(rawBody);
      body = isJsonObject(parsed as JsonObject) ? (parsed as JsonObject) : undefined;
    } catch {
      body = undefined;
    }
    const call = {
      method,
      path,
      body,
      appId: headers['app-id'],
      appKey: headers['app-key'],
      authToken: headers['auth-token'],
    };
    const answer: Reply = (status, json, extra) => {
      this.log.push({ ...call, status });
      reply(status, json, extra);
    };
    if (this.legacyHost && path.startsWith('/api/v3/')) {
      answer(404, { error: 'Not Found' });
      return true;
    }
    this.onRequest?.(method, path);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (
      call.appId !== this.#options.appId ||
      (this.#options.appKey !== null && call.appKey !== this.#options.appKey)
    ) {
      answer(401, { error: 'Invalid App-Id or App-Key' });
      return true;
    }
    const failure = this.#failures.shift();
    if (failure) {
      answer(
        failure.status,
        { error: failure.status === 429 ? 'Too Many Requests' : 'Service Unavailable' },
        failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) },
      );
      return true;
    }
    if (isLogin) {
      if (body?.email !== this.#options.email || body?.password !== this.#options.password) {
        answer(401, { error: 'Invalid email or password' });
        return true;
      }
      const token = randomBytes(16).toString('base64url');
      this.#tokens.add(token);
      const company = typeof body.id === 'number' ? body.id : 37000;
      answer(201, {
        email: this.#options.email,
        auth_token: token,
        company_id: company,
        path: '/api/v1',
        _embedded: { members: [], administrators: [] },
      });
      return true;
    }
    if (call.authToken === undefined || !this.#tokens.has(call.authToken)) {
      answer(401, { error: '401 Unauthorized' });
      return true;
    }
    if (all) {
      const company = decodeURIComponent(all[1]!);
      if (method === 'GET') answer(200, this.#list(company, query));
      else if (method === 'POST') this.#create(company, body, answer);
      else answer(405, { error: 'Method Not Allowed' });
      return true;
    }
    const [company, id] = [decodeURIComponent(booking![1]!), decodeURIComponent(booking![2]!)];
    const known = this.#bookings.get(id);
    if (!known || known.company !== company) {
      answer(404, { error: 'Booking not found' });
      return true;
    }
    if (booking![3] === '/private_notes') {
      if (method !== 'PUT') {
        answer(405, { error: 'Method Not Allowed' });
        return true;
      }
      if (typeof body?.note !== 'string' || body.note === '') {
        answer(400, { error: 'Validation error', detail: 'note is missing' });
        return true;
      }
      const notes = this.#notes.get(id) ?? [];
      notes.push({ id: 1_000_000 + this.#noteIds++, note: body.note });
      this.#notes.set(id, notes);
      // Whether BookingBug notifies a private note (a webhook) is not documented: no echo.
      answer(200, this.#adminBooking(id, known));
      return true;
    }
    const cancelling = booking![3] !== undefined;
    if (cancelling && method !== 'POST') {
      answer(405, { error: 'Method Not Allowed' });
      return true;
    }
    if (!cancelling && method !== 'GET' && method !== 'PUT') {
      answer(405, { error: 'Method Not Allowed' });
      return true;
    }
    if (method === 'GET') {
      answer(200, this.#adminBooking(id, known));
      return true;
    }
    if (method === 'PUT' && typeof body?.current_multi_status === 'string' && body.datetime === undefined) {
      known.checkIn = body.current_multi_status;
      answer(200, this.#adminBooking(id, known));
      this.#echo(id, known, 'check-in');
      return true;
    }
    if (method === 'PUT') {
      const datetime = body?.datetime;
      if (typeof datetime !== 'string' || Number.isNaN(Date.parse(datetime))) {
        answer(400, { error: 'Validation error', detail: 'datetime is missing or invalid' });
        return true;
      }
      if (known.cancelled) {
        answer(403, { error: 'Rescheduling cancelled booking' });
        return true;
      }
      if (this.#occupied.has(Date.parse(datetime))) {
        answer(409, { error: 'Conflict: the slot is fully booked' });
        return true;
      }
      known.datetime = datetime;
      answer(200, this.#adminBooking(id, known));
      this.#echo(id, known, 'modify');
      return true;
    }
    if (known.cancelled) {
      answer(409, { error: 'Booking is already cancelled' });
      return true;
    }
    known.cancelled = true;
    answer(200, this.#adminBooking(id, known));
    this.#echo(id, known, 'cancelled');
    return true;
  }

  /**
   * "List Bookings": the company's bookings whose start falls on `start_date`..`end_date` (UTC days
   * here; BookingBug reads them in the company's time zone), not cancelled unless
   * `include_cancelled=true`, filtered by `person_id`, `client_id`, `email` and `service_id`, a
   * `page` of `per_page` at a time.
   */
  #list(company: string, query: URLSearchParams): JsonObject {
    const from = query.get('start_date');
    const to = query.get('end_date');
    const bookings: JsonObject[] = [];
    for (const [id, known] of this.#bookings) {
      if (known.company !== company || known.datetime === undefined) continue;
      if (known.cancelled && query.get('include_cancelled') !== 'true') continue;
      const day = new Date(Date.parse(known.datetime)).toISOString().slice(0, 10);
      if ((from !== null && day < from) || (to !== null && day > to)) continue;
      const f = known.fields ?? {};
      const person = query.get('person_id');
      if (person !== null && String(f.person_id) !== person) continue;
      const client = query.get('client_id');
      if (client !== null && String(f.member_id ?? f.client_id) !== client) continue;
      const email = query.get('email');
      if (email !== null && f.client_email !== email) continue;
      const service = query.get('service_id');
      if (service !== null && String(f.service_id) !== service) continue;
      bookings.push(this.#adminBooking(id, known));
    }
    // Paged as the docs' `page` and `per_page` (default 100) say; `total_entries` counts them all.
    const perPage = Number(query.get('per_page') ?? 100) || 100;
    const page = Math.max(1, Number(query.get('page') ?? 1) || 1);
    const shown = bookings.slice((page - 1) * perPage, page * perPage);
    return { total_entries: bookings.length, _embedded: { bookings: shown } };
  }

  /**
   * "New Booking": `{ datetime, service_id, person_id?, resource_id?, member_id | client }`, answered
   * 201 with the admin booking; 400 ("Validation error", with `detail`) without a readable
   * `datetime`, a `service_id`, or a client; 409 for a time {@link occupy} took, in the shape the
   * docs show for a taken space (Basket, "No Space Left"). Then it pushes the booking as BookingBug
   * notifies a new one: the purchase, to the booking URL (or `hookUrl`).
   */
  #create(company: string, body: JsonObject | undefined, answer: Reply): void {
    const datetime = body?.datetime;
    const client = isJsonObject(body?.client) ? body.client : undefined;
    const problem =
      typeof datetime !== 'string' || Number.isNaN(Date.parse(datetime))
        ? 'datetime is missing or invalid'
        : body?.service_id === undefined
          ? 'service_id is missing'
          : body.member_id === undefined && typeof client?.email !== 'string'
            ? 'member_id or client[email] is required'
            : undefined;
    if (problem !== undefined) {
      answer(400, { error: 'Validation error', detail: problem });
      return;
    }
    if (this.#occupied.has(Date.parse(datetime as string))) {
      answer(409, {
        status: 409,
        message: 'NoSpaceLeftError',
        error: 'No Space Left',
        data: { service_id: body!.service_id! },
      });
      return;
    }
    const id = String(this.#bookingIds++);
    const fields: JsonObject = { created_at: this.#host.now().toISOString() };
    for (const key of ['service_id', 'person_id', 'resource_id', 'member_id'] as const) {
      if (body![key] !== undefined) fields[key] = body![key]!;
    }
    if (client !== undefined) {
      fields.client_email = client.email!;
      // BookingBug makes the client ("New Booking With Client Creation"): it gets a member id.
      fields.member_id = Number(id) + 1_000_000;
    }
    const booking: JsonObject = {
      id: Number(id),
      company_id: Number(company),
      datetime: datetime as string,
      end_datetime: shifted(datetime as string, 30),
      duration: 30,
      service_id: fields.service_id!,
      ...(fields.person_id !== undefined ? { person_id: fields.person_id } : {}),
      ...(fields.resource_id !== undefined ? { resource_id: fields.resource_id } : {}),
      member_id: fields.member_id ?? null,
      is_cancelled: false,
      created_at: fields.created_at!,
      purchase_id: Number(id),
      ...(client !== undefined
        ? {
            first_name: client.first_name ?? '',
            last_name: client.last_name ?? '',
            email: client.email!,
          }
        : {}),
    };
    const purchase: JsonObject = {
      id: Number(id),
      created_at: fields.created_at!,
      client_name: client
        ? `${String(client.first_name ?? '')} ${String(client.last_name ?? '')}`.trim()
        : '',
      _embedded: { bookings: [booking] },
    };
    const known: KnownBooking = {
      company,
      cancelled: false,
      datetime: datetime as string,
      duration: 30,
      fields,
      told: { shape: 'purchase', purchase },
    };
    this.#bookings.set(id, known);
    answer(201, this.#adminBooking(id, known));
    if (this.echoes) {
      setTimeout(
        () => this.#host.echo(structuredClone(purchase), 'create', this.hookUrl),
        this.echoDelayMs,
      ).unref();
    }
  }

  /** The admin booking JSON (a subset of the documented fields). */
  #adminBooking(id: string, known: KnownBooking): JsonObject {
    return {
      id: Number(id),
      company_id: Number(known.company),
      ...(known.fields ?? {}),
      ...(known.datetime !== undefined
        ? {
            datetime: known.datetime,
            end_datetime: shifted(known.datetime, known.duration),
            duration: known.duration,
          }
        : {}),
      is_cancelled: known.cancelled,
      ...(known.checkIn !== undefined ? { current_multi_status: known.checkIn } : {}),
      multi_status: {},
      notes: { public: [], private: structuredClone(this.#notes.get(id) ?? []) },
      booking_updated: this.#host.now().toISOString(),
    };
  }

  #echo(id: string, known: KnownBooking, change: 'cancelled' | 'modify' | 'check-in'): void {
    const kind = change === 'cancelled' ? 'cancelled' : 'modify';
    if (!this.echoes) return;
    const at = this.#host
      .now()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    let body: JsonObject;
    if (known.told.shape === 'jrni') {
      const webhook = structuredClone(known.told.webhook);
      webhook.triggerName = kind;
      webhook.triggerTime = at;
      const appointment = webhook.appointment;
      if (isJsonObject(appointment) && kind === 'cancelled') appointment.status = 'cancelled';
      if (isJsonObject(appointment) && change === 'check-in' && known.checkIn !== undefined) {
        // JRNI's webhook names the status as its admin shows it: `checked_in` is "Checked in".
        const words = known.checkIn.replace(/_/g, ' ');
        appointment.checkInStatus = words.charAt(0).toUpperCase() + words.slice(1);
      }
      if (isJsonObject(appointment) && change === 'modify' && known.datetime !== undefined) {
        // The company's and the customer's local times: both written here in the offset asked.
        const end = shifted(known.datetime, known.duration);
        appointment.companyStartTime = known.datetime;
        appointment.companyEndTime = end;
        appointment.customerStartTime = known.datetime;
        appointment.customerEndTime = end;
      }
      known.told = { shape: 'jrni', webhook };
      body = webhook;
    } else {
      const purchase = structuredClone(known.told.purchase);
      const embedded = isJsonObject(purchase._embedded) ? purchase._embedded : {};
      for (const b of Array.isArray(embedded.bookings) ? embedded.bookings.filter(isJsonObject) : []) {
        if (String(b.id) !== id) continue;
        if (kind === 'cancelled') b.is_cancelled = true;
        else if (change === 'check-in' && known.checkIn !== undefined) b.current_multi_status = known.checkIn;
        else if (known.datetime !== undefined) {
          b.datetime = known.datetime;
          b.end_datetime = shifted(known.datetime, known.duration);
        }
      }
      known.told = { shape: 'purchase', purchase };
      body = purchase;
    }
    setTimeout(() => this.#host.echo(body, kind, this.hookUrl), this.echoDelayMs).unref();
  }
}

/**
 * `minutes` after an RFC 3339 time, written in the same offset without fractions
 * (`2017-03-10T11:30:00+01:00`, 30: `2017-03-10T12:00:00+01:00`).
 */
function shifted(time: string, minutes: number): string {
  const offset = /(Z|[+-]\d{2}:\d{2})$/.exec(time)?.[1] ?? 'Z';
  const sign = offset.startsWith('-') ? -1 : 1;
  const offsetMs =
    offset === 'Z' ? 0 : sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6))) * 60_000;
  const local = new Date(Date.parse(time) + minutes * 60_000 + offsetMs).toISOString().slice(0, 19);
  return `${local}${offset === 'Z' ? '+00:00' : offset}`;
}
