/**
 * A fake Acuity Scheduling for tests and demos, over real HTTP: it POSTs signed form webhooks to a
 * hub (retrying a failed one), and serves the part of the v1 API the connector calls (read, list,
 * book, cancel, reschedule) on 127.0.0.1, with switches to misbehave: a gateway's 503 for the next
 * calls, before or after the write is carried out.
 *
 * Test code imports it as `@switchyard/connector-acuity/simulator`; production code never does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import {
  type Attempt,
  isSuccess,
  PendingTasks,
  postBody,
  toAttempt,
  withRetries,
} from '@switchyard/testing/simulator-kit/push';
import {
  closeServer,
  type LocalServer,
  listenLocal,
  readBody,
} from '@switchyard/testing/simulator-kit/server';
import { rfc3339 } from './appointment.ts';
import { type AcuityAppointment, type Config, credentialHeaders, encode } from './testing.ts';

/**
 * Retry delays after a failed webhook, ms. Acuity documents none: two retries, a minute and five
 * minutes later, stand in for it (an assumption, said in docs/connectors/acuity.md).
 */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [60_000, 300_000];

/** Options of {@link AcuitySimulator}. */
export interface AcuitySimulatorOptions {
  /** Where webhooks go (the hub's `/hooks/{instance}` URL). */
  hookUrl?: string;
  /** The settings Acuity and the hub share: the API key signs, userId and key open the API. */
  config: Config;
  retryDelaysMs?: readonly number[];
  /** Multiplies every retry delay (e.g. 0.0001 in tests). Default 1. */
  timeScale?: number;
  /**
   * The account's rules for a client's cancellation, which Acuity applies to a cancel sent without
   * `admin=true` ("By default appointments are canceled as a client"): `allowed: false` answers it
   * 400 `cancel_not_allowed`, `minHoursBefore` answers one closer than that to the start 400
   * `cancel_too_close` (the errors of the cancel reference). Default: none, every cancel is taken.
   */
  clientCancel?: { allowed?: boolean; minHoursBefore?: number };
  /**
   * The account's minimum notice for a client's booking, which Acuity applies to a booking sent
   * without `admin=true` ("By default appointments are created as if they are being booked by a
   * client. Booking as an admin disables availability and attribute validations", the
   * post-appointments reference): one starting sooner than `minHoursBefore` from now answers 400
   * `not_available_min_hours_in_advance` with the reference's words. Default: none.
   */
  clientBooking?: { minHoursBefore?: number };
  /**
   * The account's minimum notice for a client's reschedule, which Acuity applies to a reschedule sent
   * without `admin=true` (it reschedules "as if by a client"; `admin` "bypasses availability
   * checks"): one of an appointment starting sooner than `minHoursBefore` from now answers 400
   * `reschedule_too_close` (the error the reschedule reference lists; the words are the
   * simulator's own). Default: none.
   */
  clientReschedule?: { minHoursBefore?: number };
  /**
   * How a cancel of an appointment already cancelled is answered, which Acuity's cancel reference
   * does not say (it lists only `cancel_not_allowed` and `cancel_too_close`): `'taken'` (the
   * default) answers it as the first, 200 with the appointment; `'refused'` answers 400 (an error
   * and words of the simulator's own, `already_canceled`), as the real API may.
   */
  repeatedCancel?: 'taken' | 'refused';
  /**
   * The account's UTC offset (`-07:00`): Acuity writes an appointment's `datetime` in the
   * calendar's time, whatever offset the booking was sent with (its example: `-0700` for a client
   * in `America/New_York`), and `minDate`/`maxDate` are dates of that time. Default: the offset sent.
   */
  accountOffset?: string;
}

/** What happened to one webhook. */
export interface AcuityPushRecord {
  body: string;
  attempts: Attempt[];
  delivered: boolean;
}

/** One API call the simulator answered. */
export interface AcuityApiCall {
  method: string;
  path: string;
  status: number;
}

/** A failure the API answers instead of the next calls. */
interface Failure {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Carry the write out first, then answer the failure (a gateway that timed out after forwarding). */
  afterWrite: boolean;
}

/**
 * An Acuity Scheduling stand-in.
 *
 * @example
 * ```ts
 * const sim = new AcuitySimulator({ hookUrl, config });
 * await sim.start(); // the API at sim.url + '/api/v1'
 * sim.failNext({ status: 503, afterWrite: true }); // the next call is made, then answered 503
 * await sim.push('action=scheduled&id=54321&calendarID=27238&appointmentTypeID=1');
 * ```
 */
export class AcuitySimulator {
  readonly pushes: AcuityPushRecord[] = [];
  readonly calls: AcuityApiCall[] = [];
  readonly appointments = new Map<number, AcuityAppointment>();
  readonly #options: AcuitySimulatorOptions;
  readonly #pending = new PendingTasks();
  readonly #failures: Failure[] = [];
  #server: LocalServer | undefined;
  #nextId = 9_000_001;

  constructor(options: AcuitySimulatorOptions) {
    this.#options = options;
  }

  /** The API's base URL (`apiBaseUrl` for the connector). */
  get apiBaseUrl(): string {
    if (!this.#server) throw new Error('start() the simulator first');
    return `${this.#server.url}/api/v1`;
  }

  async start(): Promise<void> {
    this.#server = await listenLocal(
      (req, res) => this.#handle(req, res),
      (error, _req, res) =>
        this.#send(res, 500, { status_code: 500, message: error.message, error: 'simulator' }),
    );
  }

  async close(): Promise<void> {
    await this.idle();
    if (this.#server) await closeServer(this.#server.server);
  }

  /** Adds an appointment as the API returns it. */
  add(appointment: AcuityAppointment): void {
    this.appointments.set(appointment.id, structuredClone(appointment));
  }

  /** The next `count` API calls get `status` (default a gateway's 503 with `Retry-After`). */
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

  /** The form of a webhook, from a form or from a normalized event (through `encode`). */
  toBody(input: string | EventEnvelope): string {
    if (typeof input === 'string') return input;
    const encoded = encode(input, this.#options.config).body as JsonObject;
    return new URLSearchParams(
      Object.entries(encoded).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
  }

  /** POSTs one webhook, signed, with the retry habit. */
  push(input: string | EventEnvelope, options: { hookUrl?: string } = {}): Promise<AcuityPushRecord> {
    return this.#pending.track(this.#deliver(this.toBody(input), options.hookUrl ?? this.#options.hookUrl));
  }

  async idle(): Promise<void> {
    await this.#pending.idle();
  }

  async #deliver(body: string, hookUrl: string | undefined): Promise<AcuityPushRecord> {
    if (!hookUrl) throw new Error('the simulator needs a hookUrl');
    const record: AcuityPushRecord = { body, attempts: [], delivered: false };
    this.pushes.push(record);
    record.delivered = await withRetries(
      {
        delaysMs: this.#options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
        timeScale: this.#options.timeScale ?? 1,
      },
      record.attempts,
      async () => {
        const at = new Date();
        const headers = {
          'content-type': 'application/x-www-form-urlencoded',
          ...credentialHeaders(this.#options.config, body, at),
        };
        return toAttempt(at, await postBody(hookUrl, headers, body, 10_000));
      },
      (attempt) => isSuccess(attempt.status),
    );
    return record;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const text = await readBody(req);
    const answer = (status: number, body: unknown) => {
      this.calls.push({ method, path: url.pathname, status });
      this.#send(res, status, body);
    };
    const { userId, apiKey } = this.#options.config;
    if (req.headers.authorization !== `Basic ${Buffer.from(`${userId}:${apiKey}`).toString('base64')}`) {
      return answer(401, { status_code: 401, message: 'Unauthorized', error: 'unauthorized' });
    }
    const failure = this.#failures.shift();
    if (failure && !failure.afterWrite) return this.#fail(res, method, url.pathname, failure);
    const json = text ? (JSON.parse(text) as JsonObject) : {};
    const result = this.#route(method, url, json);
    if (failure) return this.#fail(res, method, url.pathname, failure);
    answer(result.status, result.body);
  }

  #route(method: string, url: URL, json: JsonObject): { status: number; body: unknown } {
    const path = url.pathname.replace(/^\/api\/v1/, '');
    const notFound = {
      status: 404,
      body: { status_code: 404, message: 'Appointment not found.', error: 'not_found' },
    };
    if (method === 'GET' && path === '/appointments') {
      const q = url.searchParams;
      const list = [...this.appointments.values()].filter(
        (a) =>
          a.canceled !== true &&
          (!q.get('appointmentTypeID') || String(a.appointmentTypeID) === q.get('appointmentTypeID')) &&
          (!q.get('calendarID') || String(a.calendarID) === q.get('calendarID')) &&
          (!q.get('firstName') || a.firstName === q.get('firstName')) &&
          (!q.get('lastName') || a.lastName === q.get('lastName')) &&
          (!q.get('minDate') || (a.datetime ?? '').slice(0, 10) >= q.get('minDate')!) &&
          (!q.get('maxDate') || (a.datetime ?? '').slice(0, 10) <= q.get('maxDate')!),
      );
      return { status: 200, body: list };
    }
    if (method === 'POST' && path === '/appointments') {
      const notice = this.#options.clientBooking?.minHoursBefore;
      const start = Date.parse(String(json.datetime));
      if (
        url.searchParams.get('admin') !== 'true' &&
        notice !== undefined &&
        !(start - Date.now() >= notice * 3_600_000)
      ) {
        return {
          status: 400,
          body: {
            status_code: 400,
            message: `The time "${compactOffset(String(json.datetime))}" is not far enough in advance.`,
            error: 'not_available_min_hours_in_advance',
          },
        };
      }
      const id = this.#nextId++;
      const made: AcuityAppointment = {
        id,
        firstName: String(json.firstName ?? ''),
        lastName: String(json.lastName ?? ''),
        email: String(json.email ?? ''),
        phone: String(json.phone ?? ''),
        datetime: this.#accountTime(String(json.datetime)),
        duration: '60',
        appointmentTypeID: Number(json.appointmentTypeID),
        calendarID: Number(json.calendarID ?? 27238),
        datetimeCreated: compactOffset(new Date().toISOString().replace(/\.\d+Z$/, '+00:00')),
        canceled: false,
      };
      // Notes are written only on a booking made as an admin ("allows setting the notes attribute").
      if (url.searchParams.get('admin') === 'true' && typeof json.notes === 'string') made.notes = json.notes;
      this.appointments.set(id, made);
      return { status: 200, body: made };
    }
    const m = /^\/appointments\/(\d+)(\/cancel|\/reschedule)?$/.exec(path);
    const appointment = m ? this.appointments.get(Number(m[1])) : undefined;
    if (!m) return { status: 404, body: { status_code: 404, message: 'Not found', error: 'not_found' } };
    if (!appointment) return notFound;
    if (method === 'GET' && !m[2]) return { status: 200, body: appointment };
    if (method === 'PUT' && m[2] === '/cancel') {
      const refused =
        url.searchParams.get('admin') === 'true' ? undefined : this.#clientMayNotCancel(appointment);
      if (refused) return { status: 400, body: { status_code: 400, ...refused } };
      // Undocumented: what Acuity answers to a second cancel (`repeatedCancel`).
      if (appointment.canceled === true && this.#options.repeatedCancel === 'refused') {
        return {
          status: 400,
          body: {
            status_code: 400,
            message: 'This appointment has already been canceled.',
            error: 'already_canceled',
          },
        };
      }
      appointment.canceled = true;
      appointment.noShow = false;
      return { status: 200, body: appointment };
    }
    if (method === 'PUT' && m[2] === '/reschedule') {
      if (appointment.canceled) {
        return {
          status: 400,
          body: {
            status_code: 400,
            message: 'Canceled appointments may not be rescheduled.',
            error: 'reschedule_canceled',
          },
        };
      }
      const notice = this.#options.clientReschedule?.minHoursBefore;
      const start = Date.parse(rfc3339(appointment.datetime) ?? '');
      if (
        url.searchParams.get('admin') !== 'true' &&
        notice !== undefined &&
        !(start - Date.now() >= notice * 3_600_000)
      ) {
        return {
          status: 400,
          body: {
            status_code: 400,
            message: 'Clients are not allowed to reschedule this close to the time of the appointment.',
            error: 'reschedule_too_close',
          },
        };
      }
      appointment.datetime = this.#accountTime(String(json.datetime));
      return { status: 200, body: appointment };
    }
    return { status: 405, body: { status_code: 405, message: 'Method not allowed', error: 'method' } };
  }

  /**
   * Why a client may not cancel `appointment` under the account's rules ({@link
   * AcuitySimulatorOptions.clientCancel}), in the words of Acuity's cancel reference; undefined when
   * it may.
   */
  #clientMayNotCancel(appointment: AcuityAppointment): { message: string; error: string } | undefined {
    const rules = this.#options.clientCancel;
    if (rules?.allowed === false)
      return { message: 'Clients are not allowed to cancel.', error: 'cancel_not_allowed' };
    const start = Date.parse(rfc3339(appointment.datetime) ?? '');
    if (rules?.minHoursBefore !== undefined && !(start - Date.now() >= rules.minHoursBefore * 3_600_000)) {
      return {
        message: 'Clients are not allowed to cancel this close to the time of the appointment.',
        error: 'cancel_too_close',
      };
    }
    return undefined;
  }

  /** A sent datetime as Acuity writes it: in the account's offset when one is set. */
  #accountTime(sent: string): string {
    const offset = this.#options.accountOffset;
    const at = Date.parse(sent);
    if (offset === undefined || Number.isNaN(at)) return compactOffset(sent);
    const m = /^([+-])(\d{2}):(\d{2})$/.exec(offset)!;
    const minutes = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
    const local = new Date(at + minutes * 60_000).toISOString().slice(0, 19);
    return compactOffset(`${local}${offset}`);
  }

  #fail(res: ServerResponse, method: string, path: string, failure: Failure): void {
    this.calls.push({ method, path, status: failure.status });
    res.writeHead(failure.status, failure.headers).end(failure.body);
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
}

/** `…T10:15:00-07:00` → `…T10:15:00-0700`, Acuity's way of writing an offset. */
function compactOffset(datetime: string): string {
  return datetime.replace(/([+-]\d{2}):(\d{2})$/, '$1$2');
}
