/**
 * The write half of the fake Clockwise.MD REST API (the calls public client code makes, FACTS.md):
 * `POST /appointments/create` (form fields), `PUT /appointments/{id}/remove` and
 * `PUT /appointments/{id}/update` (`custom_fields`). Their real answers are unverified; the
 * simulator answers 200 with the appointment, 404 for an unknown one, 422 for a `remove` of an
 * appointment already removed, and pushes the webhook Clockwise.MD sends after the change
 * (`create`, `remove`, `demographics_update`) when an echo URL is set. 5xx, 429 and slow answers
 * come from the simulator's `failApi` (nothing is done); `loseAnswers` does the write and answers a
 * 5xx instead (the answer lost on its way back).
 */
import type { JsonObject } from '@switchyard/core';

/** One write the API answered (for assertions). */
export interface ClockwiseWrite {
  method: string;
  path: string;
  /** The JSON body, or the form fields of a create. */
  body: JsonObject | Record<string, string> | undefined;
  /** The status the caller got (0: the connection was cut, no answer). */
  status: number;
  /** Set when the write was carried out but its answer lost ({@link ClockwiseWriteApi.loseAnswers}): what it was. */
  lostStatus?: number;
  /** The appointment a create made (also when its answer was lost). */
  id?: string;
}

/** What the simulator lends its write API. */
export interface ClockwiseWriteHost {
  /** Reads a stored appointment record (GET /appointments/{id} serves the same). */
  get(id: string): JsonObject | undefined;
  set(record: JsonObject): void;
  /** Pushes a webhook body to the echo URL. */
  echo(body: JsonObject): void;
}

let nextId = 880_000;

/**
 * Clockwise.MD's appointment write endpoints.
 *
 * @example
 * ```ts
 * cw.writes.echoes = true; // push `remove` after a remove
 * cw.writes.log;           // every write answered
 * ```
 */
export class ClockwiseWriteApi {
  readonly log: ClockwiseWrite[] = [];
  /** Push the webhook after a change (default true; needs the simulator's hookUrl, or {@link hookUrl}). */
  echoes = true;
  /**
   * Where the webhooks after a change go when the simulator was made without a `hookUrl` (a hub
   * started after it). The simulator's own `hookUrl` wins.
   */
  hookUrl: string | undefined;
  readonly #host: ClockwiseWriteHost;
  /** Answers that replace those of the next writes carried out ({@link loseAnswers}). */
  readonly #lost: { status: number; retryAfterSeconds?: number }[] = [];

  constructor(host: ClockwiseWriteHost) {
    this.#host = host;
  }

  /**
   * The next `count` writes carried out (a 2xx) are done (the record changes, the webhook is pushed)
   * but answered `status` instead (default 502), or not at all with `0` (the connection is cut): the
   * answer lost on its way back. `retryAfterSeconds` adds a `Retry-After` (a proxy's 503 after
   * it forwarded the write). A refused write is answered as it is and counts not. For the 5xx
   * the simulator's `failApi` gives, nothing is done.
   *
   * @example
   * ```ts
   * cw.writes.loseAnswers(1, 503, 1); // the next create is made, and answered 503 with Retry-After: 1
   * ```
   */
  loseAnswers(count: number, status = 502, retryAfterSeconds?: number): void {
    for (let i = 0; i < count; i++)
      this.#lost.push({ status, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
  }

  /** Answers a write route below `/v1`; false when the route is not one. */
  handle(
    method: string,
    path: string,
    rawBody: string,
    contentType: string,
    answer: (status: number, body: unknown, headers?: Record<string, string>) => void,
  ): boolean {
    const reply = (status: number, body: unknown, logged: ClockwiseWrite['body']) => {
      const lost = status >= 200 && status < 300 ? this.#lost.shift() : undefined;
      if (lost !== undefined) {
        this.log.push({ method, path, body: logged, status: lost.status, lostStatus: status });
        const after = lost.retryAfterSeconds;
        answer(
          lost.status,
          { error: 'Bad Gateway' },
          after === undefined ? {} : { 'retry-after': String(after) },
        );
        return;
      }
      this.log.push({ method, path, body: logged, status });
      answer(status, body);
    };
    if (method === 'POST' && path === '/v1/appointments/create') {
      const form = Object.fromEntries(
        /json/.test(contentType)
          ? Object.entries(JSON.parse(rawBody || '{}') as Record<string, string>)
          : new URLSearchParams(rawBody),
      ) as Record<string, string>;
      if (!form.hospital_id || !form.apt_time || !form.first_name) {
        reply(422, { error: 'hospital_id, apt_time and first_name are required' }, form);
        return true;
      }
      const record: JsonObject = {
        id: nextId++,
        first_name: form.first_name,
        last_name: form.last_name ?? '',
        apt_time: form.apt_time,
        hospital_id: form.hospital_id,
        // The contact details the create took, as the read serves them.
        ...Object.fromEntries(
          (['phone_number', 'email', 'dob'] as const).flatMap((k) => (form[k] ? [[k, form[k]]] : [])),
        ),
        extra_fields: [],
      };
      this.#host.set(record);
      reply(200, record, form);
      this.log[this.log.length - 1]!.id = String(record.id);
      this.#echo({ appointment_id: record.id as number, event_type: 'create' });
      return true;
    }
    const m = /^\/v1\/appointments\/([^/]+)\/(remove|update)$/.exec(path);
    if (method !== 'PUT' || !m) return false;
    const id = decodeURIComponent(m[1]!);
    let body: JsonObject | undefined;
    try {
      body = rawBody === '' ? undefined : (JSON.parse(rawBody) as JsonObject);
    } catch {
      body = undefined;
    }
    const record = this.#host.get(id);
    if (!record) {
      reply(404, { error: 'Appointment not found' }, body);
      return true;
    }
    if (m[2] === 'remove') {
      if (record.removed === true) {
        reply(422, { error: 'Appointment already removed' }, body);
        return true;
      }
      this.#host.set({ ...record, removed: true });
      reply(200, { ...record, removed: true }, body);
      this.#echo({ appointment_id: Number(id), event_type: 'remove' });
      return true;
    }
    const fields =
      body && typeof body.custom_fields === 'object' && body.custom_fields !== null ? body.custom_fields : {};
    const updated = {
      ...record,
      custom_fields: { ...((record.custom_fields as JsonObject) ?? {}), ...(fields as JsonObject) },
    };
    this.#host.set(updated);
    reply(200, updated, body);
    this.#echo({ appointment_id: Number(id), event_type: 'demographics_update' });
    return true;
  }

  #echo(body: JsonObject): void {
    if (this.echoes) setTimeout(() => this.#host.echo(body), 50).unref();
  }
}
