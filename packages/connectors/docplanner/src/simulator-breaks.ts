/**
 * Calendar breaks in the fake Docplanner (integration API v3, Calendar Breaks, reference version
 * 1.14.0: addCalendarBreak, getCalendarBreaks, getCalendarBreak, moveCalendarBreak,
 * deleteCalendarBreak, under `…/facilities/{f}/doctors/{d}/addresses/{a}/breaks`), with the answers
 * its reference documents:
 * - `POST …/breaks` `{since, till, description?}`: 201 with the CalendarBreak `{id, since, till,
 *   description}` and a `Location` header naming it (the body since 1.4.7, "addCalendarBreak
 *   response not having body" before); 400 `Param "since" is required!` (or `till`); 422
 *   `Invalid date range` (till not after since); 409 `Break for given address, date range and
 *   description exists`;
 * - `PATCH …/breaks/{id}` `{since, till}`: 204; 404 `Invalid break ID` (unknown or removed); 422
 *   `Same Date Range`, and `Till (…) cannot be set before since (…)`;
 * - `DELETE …/breaks/{id}`: 204; 404 `Invalid break ID`;
 * - `GET …/breaks?since=&till=` (both required; else 404 `Invalid date given.`, as the reference
 *   files it): `{ _items: [CalendarBreak] }`, the address's breaks that overlap the range (the
 *   reference does not say overlap or within: a caller looking for one break asks for its own span,
 *   which both include); `GET …/breaks/{id}` the CalendarBreak.
 * A place the simulator's account does not hold (a facility, doctor or address it does not know,
 * or an address that is not that doctor's in that facility: see `DocplannerWriteApi.addAddress`)
 * is answered 404 `Object not found` on every route, before anything else, as the reference
 * documents it (ObjectNotFound): a connector that sends wrong ids sees it.
 * A change through the API is echoed as Docplanner pushes it: `break-created`, `break-moved` (the
 * new times only), `break-removed` (the break as it was), each `data.break {id, since, till}`
 * (FACTS.md). The writes go through {@link DocplannerWriteApi}, so its delays, log and
 * `loseAnswers` apply to them as to the booking writes.
 */

import type { JsonObject } from '@switchyard/core';

/** A break the simulator holds. */
export interface SimBreak {
  id: string;
  facility: string;
  doctor: string;
  address: string;
  since: string;
  till: string;
  description: string | null;
  /** Deleted (deleteCalendarBreak): answered 404 from then on, listed no more. */
  removed?: boolean;
}

type Place = { facility: string; doctor: string; address: string };
type Reply = (status: number, body: JsonObject | null, headers?: Record<string, string>) => void;

/** What the breaks borrow from the write API they are part of. */
export interface DocplannerBreaksHost {
  /** The integration API's base URL (`…/api/v3/integration`), for `Location` headers. */
  apiUrl(): string;
  /** Echoes `name` with `data` (beside facility / doctor / address) as Docplanner would push it. */
  echo(name: string, where: Place, data: JsonObject): void;
  /** Whether the account holds this place: the address, of this doctor, in this facility. */
  placeKnown(where: Place): boolean;
}

/** Docplanner's answer to a path naming a facility, doctor or address it does not know (ObjectNotFound). */
const OBJECT_NOT_FOUND: JsonObject = { errors: [], message: 'Object not found' };

/** A break write route: the action and, for a move or delete, the break id. */
export type BreakRoute = { action: 'add' } | { action: 'move' | 'remove'; id: string };

let nextBreakId = 8_000_000;

const view = (b: SimBreak): JsonObject => ({
  id: b.id,
  since: b.since,
  till: b.till,
  description: b.description,
});

/**
 * Docplanner's calendar breaks.
 *
 * @example
 * ```ts
 * sim.writes.breaks.add({ facility: '90211', doctor: '182733', address: '221304' }, '2026-03-11T13:00:00+01:00', '2026-03-11T14:00:00+01:00');
 * [...sim.writes.breaks.all.values()].filter((b) => !b.removed); // the breaks in place
 * ```
 */
export class DocplannerBreaks {
  /** Every break, by id (removed ones kept, marked). */
  readonly all = new Map<string, SimBreak>();
  readonly #host: DocplannerBreaksHost;

  constructor(host: DocplannerBreaksHost) {
    this.#host = host;
  }

  /** The write route `tail` (the path after the address) names, if it is one. */
  static route(method: string, tail: string): BreakRoute | undefined {
    if (method === 'POST' && tail === '/breaks') return { action: 'add' };
    const m = /^\/breaks\/([^/]+)$/.exec(tail);
    if (!m) return undefined;
    const id = decodeURIComponent(m[1]!);
    if (method === 'PATCH') return { action: 'move', id };
    if (method === 'DELETE') return { action: 'remove', id };
    return undefined;
  }

  /** Adds a break as if staff had made it in Docplanner's calendar (no echo). */
  add(where: Place, since: string, till: string, description: string | null = null): SimBreak {
    const b: SimBreak = { id: String(nextBreakId++), ...where, since, till, description };
    this.all.set(b.id, b);
    return b;
  }

  /** The break `id` at this address, unless unknown there or removed. */
  #at(where: Place, id: string): SimBreak | undefined {
    const b = this.all.get(id);
    return b &&
      !b.removed &&
      b.facility === where.facility &&
      b.doctor === where.doctor &&
      b.address === where.address
      ? b
      : undefined;
  }

  /** Carries out a write route (its answer goes to `answer`). */
  write(route: BreakRoute, where: Place, body: JsonObject | undefined, answer: Reply): void {
    if (!this.#host.placeKnown(where)) return void answer(404, OBJECT_NOT_FOUND);
    if (route.action === 'remove') {
      const b = this.#at(where, route.id);
      if (!b) return void answer(404, { errors: [], message: 'Invalid break ID' });
      b.removed = true;
      answer(204, null);
      this.#host.echo('break-removed', where, { break: { id: b.id, since: b.since, till: b.till } });
      return;
    }
    const since = typeof body?.since === 'string' ? body.since : undefined;
    const till = typeof body?.till === 'string' ? body.till : undefined;
    if (since === undefined) return void answer(400, { errors: [], message: 'Param "since" is required!' });
    if (till === undefined) return void answer(400, { errors: [], message: 'Param "till" is required!' });
    const [from, to] = [Date.parse(since), Date.parse(till)];
    if (route.action === 'move') {
      const b = this.#at(where, route.id);
      if (!b) return void answer(404, { errors: [], message: 'Invalid break ID' });
      if (!(to > from)) {
        return void answer(422, {
          errors: [],
          message: `Till (${till}) cannot be set before since (${since})`,
        });
      }
      if (from === Date.parse(b.since) && to === Date.parse(b.till)) {
        return void answer(422, { errors: [], message: 'Same Date Range' });
      }
      b.since = since;
      b.till = till;
      answer(204, null);
      this.#host.echo('break-moved', where, { break: { id: b.id, since, till } });
      return;
    }
    if (Number.isNaN(from) || Number.isNaN(to) || !(to > from)) {
      return void answer(422, { errors: [], message: 'Invalid date range' });
    }
    const description = typeof body?.description === 'string' ? body.description : null;
    const same = [...this.all.values()].some(
      (b) =>
        this.#at(where, b.id) !== undefined &&
        Date.parse(b.since) === from &&
        Date.parse(b.till) === to &&
        b.description === description,
    );
    if (same) {
      return void answer(409, {
        errors: [],
        message: 'Break for given address, date range and description exists',
      });
    }
    const b = this.add(where, since, till, description);
    const e = encodeURIComponent;
    answer(201, view(b), {
      location: `${this.#host.apiUrl()}/facilities/${e(where.facility)}/doctors/${e(where.doctor)}/addresses/${e(where.address)}/breaks/${e(b.id)}`,
    });
    this.#host.echo('break-created', where, { break: { id: b.id, since, till } });
  }

  /**
   * Answers a read route (`GET …/breaks?since=&till=`, `GET …/breaks/{id}`); undefined when `tail`
   * is not one.
   */
  read(where: Place, tail: string, url: URL): [number, JsonObject] | undefined {
    if (tail !== '/breaks' && !/^\/breaks\/[^/]+$/.test(tail)) return undefined;
    if (!this.#host.placeKnown(where)) return [404, OBJECT_NOT_FOUND];
    if (tail === '/breaks') {
      const from = Date.parse(url.searchParams.get('since') ?? '');
      const to = Date.parse(url.searchParams.get('till') ?? '');
      if (Number.isNaN(from) || Number.isNaN(to))
        return [404, { errors: [], message: 'Invalid date given.' }];
      const items = [...this.all.values()]
        .filter((b) => this.#at(where, b.id) && Date.parse(b.since) < to && Date.parse(b.till) > from)
        .map(view);
      return [200, { _items: items }];
    }
    const m = /^\/breaks\/([^/]+)$/.exec(tail);
    if (!m) return undefined;
    const b = this.#at(where, decodeURIComponent(m[1]!));
    return b ? [200, view(b)] : [404, { errors: [], message: 'Invalid break ID' }];
  }
}
