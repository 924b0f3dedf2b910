/**
 * A Cliniko API simulator over real HTTP (`start()` on 127.0.0.1:0): the individual appointment
 * lists the connector polls (the main one, which leaves cancelled appointments out, and
 * `/individual_appointments/cancelled`; `q[]=updated_at:>=…` and the other DateTime operators,
 * `q[]=id:>…`, `q[]=archived_at:*` (archived ones are left out without it), `sort` on one column or
 * several (ties in no stable order across pages, as Cliniko's; `updated_at` shown to the second,
 * kept to the millisecond), `per_page`, `page`, `links.next`) and the writes its commands make (create, `PATCH …/cancel`, update of
 * the time, `notes` and the presence flags `patient_arrived` / `did_not_arrive`, an attendee's
 * `arrived` through `GET …/{id}/attendees` and `PUT /attendees/{id}`); the unavailable blocks
 * likewise (`/unavailable_blocks` and `/unavailable_blocks/deleted`, the same filters and paging;
 * create, read, update and delete of one), behind Cliniko's Basic auth
 * (the key as user name). Each write that changes something stamps `updated_at` with the simulator's
 * clock, so the next poll lists it; one that changes nothing leaves it (Rails saves nothing then).
 * `presenceWritable: false` makes the update ignore the presence flags, answering 200 with them
 * unchanged, as Rails does with a parameter it does not permit (whether Cliniko's does is not
 * documented). It refuses what Cliniko's documentation rules out: a DateTime
 * filter with `=` or not in UTC, a booking without one of its required fields, a cancellation
 * reason not in Cliniko's list (422 with Rails' `errors`), with `refuseOverlaps` a booking over a live
 * one of the practitioner (which Cliniko itself takes); and answers times in UTC. `failNext`
 * makes the next call answer an error (a 429 with Cliniko's `X-RateLimit-Reset`, a 503), nothing
 * done; `loseAnswers` carries out the next writes and answers a 5xx instead (the answer lost on
 * its way back). Test code only.
 *
 * @example
 * ```ts
 * const sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey });
 * const apiBaseUrl = await sim.start();
 * sim.put({ id: '1', starts_at: '2026-03-10T10:00:00Z', ends_at: '2026-03-10T10:30:00Z' });
 * ```
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isJsonObject, type JsonObject } from '@switchyard/core';
import { closeServer, listenLocal, readBody } from '@switchyard/testing/simulator-kit/server';
import { CANCELLATION_REASONS, clinikoTime } from './config.ts';

/** The individual appointment fields Cliniko filters as DateTime. */
const DATE_TIME_FIELDS = new Set([
  'archived_at',
  'cancelled_at',
  'created_at',
  'ends_at',
  'starts_at',
  'updated_at',
]);

/** A written time as Cliniko answers every time: UTC, whole seconds (`2026-03-10T10:30:00Z`). */
function utc(value: unknown): string | null {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? clinikoTime(value) : null;
}

export interface ClinikoSimulatorOptions {
  apiKey: string;
  /** The clock that stamps `updated_at`; default now (tests pass a stepping one). */
  now?: () => Date;
  /**
   * Whether `PATCH /individual_appointments/{id}` writes `patient_arrived` and `did_not_arrive`;
   * default true. False: they are ignored and the answer shows them unchanged (an attendee's
   * `arrived` still writes them).
   */
  presenceWritable?: boolean;
  /**
   * An update that would change nothing, or a cancel of an appointment already cancelled, answers
   * 422 (`errors.base`) instead of 200 / 204: what Cliniko answers to a repeat is not documented
   * (the cancel's section names only its 204 and the mandatory `cancellation_reason`), and a client
   * must hold either way. Default false.
   */
  refuseRepeats?: boolean;
  /**
   * The length of every appointment type, minutes: the end of an appointment created without
   * `ends_at`, or updated with `ends_at: null` ("it is automatically set based upon the duration of
   * the appointment_type", sections/individual_appointments.md). Default 45, the length of the
   * documented create example (03:45 to 04:30).
   */
  appointmentTypeMinutes?: number;
  /**
   * A booking whose time overlaps a live appointment of the same practitioner answers 422
   * (`{ "errors": { "starts_at": ["is taken"] }, "message": "Validation Failed" }`, Rails' words in
   * the shape of cliniko-api#379's answer), nothing made. Cliniko does not refuse by default ("We
   * don't enforce double bookings because a lot of people that use Cliniko double book",
   * github.com/redguava/cliniko-api/issues/108); this stands for a refusal of a booking sent again
   * while the first send's stands, whatever refused it. Default false.
   */
  refuseOverlaps?: boolean;
}

/** An attendee's `arrived` from its appointment's flags (cliniko-api#153: one field for both). */
function arrivedOf(a: JsonObject): boolean | null {
  if (a.patient_arrived === true) return true;
  if (a.did_not_arrive === true) return false;
  return null;
}

export class ClinikoSimulator {
  readonly #options: ClinikoSimulatorOptions;
  readonly #appointments = new Map<string, JsonObject>();
  /** Unavailable blocks by id (their own ids: an appointment and a block may share one). */
  readonly #blocks = new Map<string, JsonObject>();
  /** Each stored version's `updated_at` to the millisecond, as filters and sorting see it. */
  readonly #updatedMs = new WeakMap<JsonObject, number>();
  #server: Server | undefined;
  #url = '';
  #nextId = 1000;
  #failures: Array<{ status: number; headers: Record<string, string> }> = [];
  /** Refusals of the next writes, nothing done ({@link failNextWrite}). */
  #writeFailures: Array<{ status: number; body: JsonObject }> = [];
  /** Statuses that replace the answers of the next writes carried out ({@link loseAnswers}). */
  #lost: number[] = [];
  /** The requests of this moment that are writes (a lost answer replaces only theirs). */
  readonly #writes = new WeakMap<ServerResponse, { lostStatus?: number }>();
  /** Attendee id → appointment id (each individual appointment has one attendee, its patient). */
  readonly #attendees = new Map<string, string>();
  /**
   * Every request the simulator answered: method, path and query, status (what the client got),
   * and `lostStatus`, the status of a write carried out whose answer was lost.
   */
  readonly requests: Array<{ method: string; url: string; status: number; lostStatus?: number }> = [];

  constructor(options: ClinikoSimulatorOptions) {
    this.#options = options;
  }

  /** The API base (`…/v1`), once started. */
  get url(): string {
    return this.#url;
  }

  async start(): Promise<string> {
    const local = await listenLocal(
      (req, res) => this.#handle(req, res),
      (error, _req, res) => this.#answer(res, 500, { message: error.message }),
    );
    this.#server = local.server;
    this.#url = `${local.url}/v1`;
    return this.#url;
  }

  async close(): Promise<void> {
    if (this.#server) await closeServer(this.#server);
  }

  /**
   * Adds or replaces an appointment (as Cliniko lists it), stamped `updated_at` now: shown to the
   * second, as Cliniko shows it, while filters and sorting use the clock's milliseconds, as a
   * database keeps finer times than the API prints.
   */
  put(appointment: JsonObject): JsonObject {
    const id = String(appointment.id ?? this.#nextId++);
    const ms = (this.#options.now?.() ?? new Date()).getTime();
    const stored = { ...this.#appointments.get(id), ...appointment, id, updated_at: clinikoTime(ms) };
    this.#appointments.set(id, stored);
    this.#updatedMs.set(stored, ms);
    return stored;
  }

  /**
   * Adds or replaces an unavailable block (as Cliniko lists it: sections/unavailable_blocks.md),
   * stamped `updated_at` now as {@link put} stamps an appointment.
   */
  putBlock(block: JsonObject): JsonObject {
    const id = String(block.id ?? this.#nextId++);
    const ms = (this.#options.now?.() ?? new Date()).getTime();
    const stored: JsonObject = {
      notes: null,
      repeat_rule: {},
      repeats: null,
      deleted_at: null,
      ...this.#blocks.get(id),
      ...block,
      id,
      updated_at: clinikoTime(ms),
    };
    stored.conflicts = { links: { self: `${this.#url}/unavailable_blocks/${id}/conflicts` } };
    stored.links = { self: `${this.#url}/unavailable_blocks/${id}` };
    this.#blocks.set(id, stored);
    this.#updatedMs.set(stored, ms);
    return stored;
  }

  getBlock(id: string): JsonObject | undefined {
    return this.#blocks.get(id);
  }

  /** A time field as filters and sorting see it: `updated_at` to the millisecond. */
  #timeOf(a: JsonObject, field: string): number {
    if (field === 'updated_at') return this.#updatedMs.get(a) ?? Date.parse(String(a.updated_at));
    return Date.parse(String(a[field] ?? ''));
  }

  get(id: string): JsonObject | undefined {
    return this.#appointments.get(id);
  }

  /** The next call answers `status` (with `headers`, e.g. a Retry-After) instead. */
  failNext(status: number, headers: Record<string, string> = {}): void {
    this.#failures.push({ status, headers });
  }

  /**
   * The next write (not a poll's GET, which a hub polling meanwhile may send first) answers `status`
   * with `body` and does nothing.
   */
  failNextWrite(status: number, body: JsonObject = { message: 'simulated failure' }): void {
    this.#writeFailures.push({ status, body });
  }

  /** The next `count` writes are carried out and answered `status` (a 502 from a proxy) instead. */
  loseAnswers(count: number, status = 502): void {
    for (let i = 0; i < count; i++) this.#lost.push(status);
  }

  /**
   * Writes `changes` to appointment `id` as Rails' update does: stamped (a new version the next poll
   * lists) only when a value differs; the appointment as it is now.
   */
  #update(id: string, changes: JsonObject): JsonObject {
    const existing = this.#appointments.get(id)!;
    const differs = Object.entries(changes).some(
      ([key, value]) => JSON.stringify(existing[key] ?? null) !== JSON.stringify(value ?? null),
    );
    return differs ? this.put({ ...changes, id }) : existing;
  }

  #attendeeOf(id: string): JsonObject {
    let attendee = [...this.#attendees].find(([, of]) => of === id)?.[0];
    if (attendee === undefined) {
      attendee = String(this.#nextId++);
      this.#attendees.set(attendee, id);
    }
    const a = this.#appointments.get(id)!;
    return {
      id: attendee,
      arrived: arrivedOf(a),
      cancelled_at: a.cancelled_at ?? null,
      deleted_at: a.deleted_at ?? null,
      notes: null,
      booking: { links: { self: `${this.#url}/bookings/${id}` } },
      patient: a.patient ?? null,
      links: { self: `${this.#url}/attendees/${attendee}` },
    };
  }

  /** `starts_at` plus the appointment type's length ({@link ClinikoSimulatorOptions.appointmentTypeMinutes}), in UTC. */
  #typeEnd(startsAt: unknown): string | null {
    const start = utc(startsAt);
    const minutes = this.#options.appointmentTypeMinutes ?? 45;
    return start === null ? null : clinikoTime(Date.parse(start) + minutes * 60_000);
  }
  /** Whether a live appointment of `practitioner` overlaps `starts`..`ends` ({@link ClinikoSimulatorOptions.refuseOverlaps}). */
  #overlapsLive(starts: string, ends: string, practitioner: unknown): boolean {
    const [from, to] = [Date.parse(starts), Date.parse(ends)];
    return [...this.#appointments.values()].some((a) => {
      const by =
        isJsonObject(a.practitioner) && isJsonObject(a.practitioner.links) ? a.practitioner.links.self : '';
      return (
        !a.cancelled_at &&
        !a.deleted_at &&
        String(by).endsWith(`/practitioners/${String(practitioner)}`) &&
        Date.parse(String(a.starts_at)) < to &&
        Date.parse(String(a.ends_at ?? a.starts_at)) > from
      );
    });
  }

  #now(): string {
    return clinikoTime((this.#options.now?.() ?? new Date()).getTime());
  }

  #answer(res: ServerResponse, status: number, body?: JsonObject, headers: Record<string, string> = {}) {
    const write = this.#writes.get(res);
    if (write && status < 300 && this.#lost.length > 0) {
      // Carried out; the answer lost on its way back.
      write.lostStatus = status;
      status = this.#lost.shift()!;
      body = { message: 'simulated lost answer' };
      headers = {};
    }
    if (body === undefined) res.writeHead(status, headers).end();
    else res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    if (method !== 'GET') this.#writes.set(res, {});
    const routed = await this.#route(method, url, req, res);
    const lostStatus = this.#writes.get(res)?.lostStatus;
    const status = lostStatus === undefined ? routed : res.statusCode;
    this.requests.push({
      method,
      url: `${url.pathname}${url.search}`,
      status,
      ...(lostStatus === undefined ? {} : { lostStatus }),
    });
  }

  async #route(method: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<number> {
    const expected = `Basic ${Buffer.from(`${this.#options.apiKey}:`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      this.#answer(res, 401, { message: 'Unauthorized' });
      return 401;
    }
    if (!req.headers['user-agent']) {
      this.#answer(res, 400, { message: 'a User-Agent is required' });
      return 400;
    }
    const failure = this.#failures.shift();
    if (failure) {
      this.#answer(res, failure.status, { message: 'simulated failure' }, failure.headers);
      return failure.status;
    }
    const writeFailure = method === 'GET' ? undefined : this.#writeFailures.shift();
    if (writeFailure) {
      this.#writes.delete(res);
      this.#answer(res, writeFailure.status, writeFailure.body);
      return writeFailure.status;
    }
    const path = url.pathname.replace(/^\/v1/, '');
    const body = method === 'GET' ? {} : (JSON.parse((await readBody(req)) || '{}') as JsonObject);
    // The main list leaves cancelled and deleted appointments out; each has its own list
    // (Cliniko, github.com/redguava/cliniko-api/issues/139).
    if (method === 'GET' && path === '/individual_appointments')
      return this.#list(
        url,
        res,
        this.#appointments,
        'individual_appointments',
        (a) => !a.cancelled_at && !a.deleted_at,
      );
    if (method === 'GET' && path === '/individual_appointments/cancelled')
      return this.#list(
        url,
        res,
        this.#appointments,
        'individual_appointments',
        (a) => Boolean(a.cancelled_at) && !a.deleted_at,
      );
    // Unavailable blocks: the deleted ones only on their own list ("Get Deleted Unavailable Blocks").
    if (path === '/unavailable_blocks' || path.startsWith('/unavailable_blocks/'))
      return this.#routeBlocks(method, path, url, body, res);
    if (method === 'POST' && path === '/individual_appointments') {
      // What Cliniko's create requires (its documented request); the error words are Rails' own.
      const missing = [
        'starts_at',
        'patient_id',
        'practitioner_id',
        'appointment_type_id',
        'business_id',
      ].filter((field) => body[field] === undefined || body[field] === null || body[field] === '');
      if (missing.length > 0) {
        this.#answer(res, 422, { errors: Object.fromEntries(missing.map((f) => [f, ["can't be blank"]])) });
        return 422;
      }
      const startsAt = utc(body.starts_at);
      const endsAt = utc(body.ends_at) ?? this.#typeEnd(body.starts_at);
      if (this.#options.refuseOverlaps && this.#overlapsLive(startsAt!, endsAt!, body.practitioner_id)) {
        this.#answer(res, 422, { errors: { starts_at: ['is taken'] }, message: 'Validation Failed' });
        return 422;
      }
      const created = this.put({
        starts_at: startsAt,
        ends_at: endsAt,
        notes: body.notes ?? null,
        cancelled_at: null,
        deleted_at: null,
        did_not_arrive: false,
        patient_arrived: false,
        created_at: this.#now(),
        patient: { links: { self: `${this.#url}/patients/${body.patient_id}` } },
        practitioner: { links: { self: `${this.#url}/practitioners/${body.practitioner_id}` } },
        business: { links: { self: `${this.#url}/businesses/${body.business_id}` } },
        appointment_type: { links: { self: `${this.#url}/appointment_types/${body.appointment_type_id}` } },
      });
      this.#answer(res, 201, created, { location: `${this.#url}/individual_appointments/${created.id}` });
      return 201;
    }
    const attendee = /^\/attendees\/([^/]+)$/.exec(path);
    if (attendee && (method === 'PUT' || method === 'PATCH')) {
      const of = this.#attendees.get(decodeURIComponent(attendee[1]!));
      if (of === undefined || !this.#appointments.has(of)) {
        this.#answer(res, 404, { message: 'Not found' });
        return 404;
      }
      if (body.arrived !== undefined) {
        if (body.arrived !== true && body.arrived !== false && body.arrived !== null) {
          this.#answer(res, 422, { errors: { arrived: ['is not included in the list'] } });
          return 422;
        }
        // One field for both flags (cliniko-api#153): unset, both are null.
        const arrived = body.arrived;
        this.#update(of, {
          patient_arrived: arrived === null ? null : arrived,
          did_not_arrive: arrived === null ? null : !arrived,
        });
      }
      this.#answer(res, 200, this.#attendeeOf(of));
      return 200;
    }
    const one = /^\/individual_appointments\/([^/]+)(\/cancel|\/attendees)?$/.exec(path);
    const existing = one ? this.#appointments.get(decodeURIComponent(one[1]!)) : undefined;
    if (!one || !existing) {
      this.#answer(res, 404, { message: 'Not found' });
      return 404;
    }
    if (method === 'GET' && one[2] === undefined) {
      this.#answer(res, 200, existing);
      return 200;
    }
    if (method === 'GET' && one[2] === '/attendees') {
      const listed = this.#attendeeOf(String(existing.id));
      this.#answer(res, 200, {
        attendees: [listed],
        total_entries: 1,
        links: { self: `${this.#url}${path}` },
      });
      return 200;
    }
    if (method === 'PATCH' && one[2] === '/cancel') {
      if (typeof body.cancellation_reason !== 'number') {
        this.#answer(res, 422, { errors: { cancellation_reason: ["can't be blank"] } });
        return 422;
      }
      // Cliniko's codes only ("Cancellation Reason Codes").
      if (!(CANCELLATION_REASONS as readonly number[]).includes(body.cancellation_reason)) {
        this.#answer(res, 422, { errors: { cancellation_reason: ['is not included in the list'] } });
        return 422;
      }
      if (this.#options.refuseRepeats && existing.cancelled_at) {
        this.#answer(res, 422, { errors: { base: ['appointment is already cancelled'] } });
        return 422;
      }
      this.put({
        id: existing.id ?? null,
        cancelled_at: this.#now(),
        cancellation_reason: body.cancellation_reason,
        cancellation_note: body.cancellation_note ?? null,
      });
      this.#answer(res, 204);
      return 204;
    }
    if ((method === 'PATCH' || method === 'PUT') && one[2] === undefined) {
      const changes: JsonObject = {};
      if (body.starts_at !== undefined) changes.starts_at = utc(body.starts_at);
      if (body.ends_at !== undefined) {
        changes.ends_at = utc(body.ends_at) ?? this.#typeEnd(changes.starts_at ?? existing.starts_at);
      }
      if (body.notes !== undefined) changes.notes = body.notes;
      for (const flag of ['patient_arrived', 'did_not_arrive']) {
        if (body[flag] === undefined || this.#options.presenceWritable === false) continue;
        if (body[flag] !== true && body[flag] !== false && body[flag] !== null) {
          this.#answer(res, 422, { errors: { [flag]: ['is not included in the list'] } });
          return 422;
        }
        changes[flag] = body[flag]!;
      }
      const before = existing.updated_at;
      const updated = this.#update(String(existing.id), changes);
      if (this.#options.refuseRepeats && updated.updated_at === before) {
        this.#answer(res, 422, { errors: { base: ['nothing to change'] } });
        return 422;
      }
      this.#answer(res, 200, updated);
      return 200;
    }
    this.#answer(res, 405, { message: `${method} is not allowed here` });
    return 405;
  }

  /**
   * `/unavailable_blocks`: the list (deleted ones left out) and `/deleted`, `GET`, `POST`, `PUT` /
   * `PATCH` and `DELETE` of one (sections/unavailable_blocks.md). A deletion stamps `deleted_at`;
   * the block is then on the deleted list only, and every call on it answers 404.
   */
  #routeBlocks(method: string, path: string, url: URL, body: JsonObject, res: ServerResponse): number {
    if (method === 'GET' && path === '/unavailable_blocks')
      return this.#list(url, res, this.#blocks, 'unavailable_blocks', (b) => !b.deleted_at);
    if (method === 'GET' && path === '/unavailable_blocks/deleted')
      return this.#list(url, res, this.#blocks, 'unavailable_blocks', (b) => Boolean(b.deleted_at));
    if (method === 'POST' && path === '/unavailable_blocks') {
      // The documented request's fields ("Create Unavailable Block"); the error words are Rails'.
      const missing = ['starts_at', 'practitioner_id', 'business_id'].filter(
        (field) => body[field] === undefined || body[field] === null || body[field] === '',
      );
      if (missing.length > 0) {
        this.#answer(res, 422, { errors: Object.fromEntries(missing.map((f) => [f, ["can't be blank"]])) });
        return 422;
      }
      const created = this.putBlock({
        created_at: this.#now(),
        starts_at: utc(body.starts_at),
        ends_at: utc(body.ends_at ?? body.starts_at),
        notes: body.notes ?? null,
        practitioner: { links: { self: `${this.#url}/practitioners/${body.practitioner_id}` } },
        business: { links: { self: `${this.#url}/businesses/${body.business_id}` } },
      });
      this.#answer(res, 201, created, { location: `${this.#url}/unavailable_blocks/${created.id}` });
      return 201;
    }
    const one = /^\/unavailable_blocks\/([^/]+)$/.exec(path);
    const existing = one ? this.#blocks.get(decodeURIComponent(one[1]!)) : undefined;
    if (!existing || existing.deleted_at) {
      this.#answer(res, 404, { message: 'Not found' });
      return 404;
    }
    const id = String(existing.id);
    if (method === 'GET') {
      this.#answer(res, 200, existing);
      return 200;
    }
    if (method === 'PUT' || method === 'PATCH') {
      const changes: JsonObject = {};
      if (body.starts_at !== undefined) changes.starts_at = utc(body.starts_at);
      if (body.ends_at !== undefined) changes.ends_at = utc(body.ends_at);
      if (body.notes !== undefined) changes.notes = body.notes;
      const differs = Object.entries(changes).some(
        ([key, value]) => JSON.stringify(existing[key] ?? null) !== JSON.stringify(value ?? null),
      );
      this.#answer(res, 200, differs ? this.putBlock({ ...changes, id }) : existing);
      return 200;
    }
    if (method === 'DELETE') {
      this.putBlock({ id, deleted_at: this.#now() });
      this.#answer(res, 204);
      return 204;
    }
    this.#answer(res, 405, { message: `${method} is not allowed here` });
    return 405;
  }

  #list(
    url: URL,
    res: ServerResponse,
    table: Map<string, JsonObject>,
    key: string,
    listed: (item: JsonObject) => boolean,
  ): number {
    const perPage = Number(url.searchParams.get('per_page') ?? 50);
    const page = Number(url.searchParams.get('page') ?? 1);
    const filters = url.searchParams.getAll('q[]');
    // Archived appointments are left out unless asked for with `archived_at:*` (docs.api.cliniko.com,
    // Filtering Results: "All records including archived").
    const archived = filters.includes('archived_at:*');
    let items = [...table.values()].filter((a) => listed(a) && (archived || !a.archived_at));
    for (const filter of filters) {
      const m = /^(\w+):(>=|<=|!=|=|>|<|\*)(.*)$/.exec(filter);
      if (!m) continue;
      const [, field, op, value] = m;
      if (op === '*') continue; // any value
      if (DATE_TIME_FIELDS.has(field!)) {
        // Cliniko's DateTime operators are >=, >, <=, < only, the value in UTC (API readme,
        // "Filtering Results"). What it answers otherwise is not documented: here a 400.
        if (op === '=' || op === '!=' || !/Z$/.test(value!) || Number.isNaN(Date.parse(value!))) {
          this.#answer(res, 400, { message: `the filter ${filter} is not a DateTime filter Cliniko takes` });
          return 400;
        }
      }
      items = items.filter((a) => {
        if (field === 'id' && op !== '=' && op !== '!=') {
          // A numeric filter ("Numeric Filter Operators"): ids are int64, compared by value.
          const [x, y] = [BigInt(String(a.id)), BigInt(value!)];
          return op === '>=' ? x >= y : op === '>' ? x > y : op === '<=' ? x <= y : x < y;
        }
        // `patient_id` and the like filter by the linked record (`patient.links.self`).
        const linked = a[field!.replace(/_id$/, '')];
        const v =
          field!.endsWith('_id') && isJsonObject(linked) && isJsonObject(linked.links)
            ? String(linked.links.self ?? '')
            : String(a[field!] ?? '');
        if (DATE_TIME_FIELDS.has(field!)) {
          const [x, y] = [this.#timeOf(a, field!), Date.parse(value!)];
          return op === '>=' ? x >= y : op === '>' ? x > y : op === '<=' ? x <= y : x < y;
        }
        const matches = v === value || v.endsWith(`/${value}`);
        return op === '=' ? matches : op === '!=' && !matches;
      });
    }
    items.sort(this.#order(url, page));
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const self = `${this.#url}${url.pathname.replace(/^\/v1/, '')}`;
    const links: JsonObject = { self: `${self}?page=${page}` };
    if (page * perPage < items.length) links.next = `${self}?page=${page + 1}`;
    this.#answer(res, 200, { [key]: slice, total_entries: items.length, links });
    return 200;
  }

  /**
   * Cliniko's ordering (docs.api.cliniko.com, "Ordering"): `sort` names one column or several
   * (`sort=updated_at,id`), each ascending unless `order=desc` or `<column>:desc`; by default
   * `created_at` ascending. Rows equal on every column come in no guaranteed order, as from
   * Postgres under LIMIT/OFFSET: here an order that differs from one page to the next, so a reader
   * that pages through equal `updated_at`s without a tie-breaker meets some twice and misses others.
   */
  #order(url: URL, page: number): (a: JsonObject, b: JsonObject) => number {
    const direction = url.searchParams.get('order') === 'desc' ? -1 : 1;
    const keys = (url.searchParams.get('sort') ?? 'created_at').split(',').map((key) => {
      const [field = '', dir] = key.split(':');
      return { field, sign: dir === 'desc' ? -1 : dir === 'asc' ? 1 : direction };
    });
    const compare = (field: string, a: JsonObject, b: JsonObject): number => {
      if (field === 'id') {
        const [x, y] = [BigInt(String(a.id)), BigInt(String(b.id))];
        return x < y ? -1 : x > y ? 1 : 0;
      }
      if (DATE_TIME_FIELDS.has(field)) return (this.#timeOf(a, field) || 0) - (this.#timeOf(b, field) || 0);
      return String(a[field] ?? '').localeCompare(String(b[field] ?? ''));
    };
    const scramble = (a: JsonObject) => {
      let h = page * 2654435761;
      for (const c of String(a.id)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
      return h >>> 0;
    };
    return (a, b) => {
      for (const { field, sign } of keys) {
        const c = compare(field, a, b);
        if (c !== 0) return sign * Math.sign(c);
      }
      return scramble(a) - scramble(b);
    };
  }
}
