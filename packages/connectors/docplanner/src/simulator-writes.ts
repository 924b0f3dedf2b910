/**
 * The write half of the fake Docplanner (integration API v3, FACTS.md "Write API"): book a slot,
 * cancel, move, confirm and mark presence or absence, with Docplanner's failure modes (a book without
 * its required fields: 400; a taken slot: 404; a cancel of a canceled booking: 400, a move of one:
 * 409; a move to an address outside the facility: 403; a confirm without a valid `confirmed_by`:
 * 400, of a canceled, past or already confirmed visit: 409), an optional delay on every answer (before the
 * write, or between the write and its answer), and the echo Docplanner pushes after a change made
 * through the API (`booked_by` / `canceled_by: integration`). The 5xx / 429-with-Retry-After modes
 * come from the simulator's `failNext`, which applies to these routes as to every API route
 * (nothing is done); `loseAnswers` does the write and answers a 5xx instead (the answer lost on its
 * way back).
 */

import type { JsonObject } from '@switchyard/core';
import { sleep } from '@switchyard/testing/simulator-kit/push';
import { DocplannerBreaks } from './simulator-breaks.ts';
import type { DpNotification } from './testing.ts';

/** One write the API carried out (for assertions). */
export interface DocplannerWrite {
  method: string;
  path: string;
  body: JsonObject | undefined;
  /** The status the caller got. */
  status: number;
  /** Set when the write was carried out but its answer lost ({@link DocplannerWriteApi.loseAnswers}): what it was. */
  lostStatus?: number;
}

/** What the simulator lends its write API. */
export interface DocplannerWriteHost {
  readonly bookings: Map<string, { facility: string; doctor: string; address: string; booking: JsonObject }>;
  now(): number;
  /** The integration API's base URL (`…/api/v3/integration`), for `Location` headers. */
  apiUrl(): string;
  /** Pushes a notification to `hookUrl`, else to the simulator's configured hook URL (a no-op without one). */
  /** Pushes `notification` to the hub; settles once the hub answered (or the push failed). */
  echo(notification: DpNotification, hookUrl: string | undefined): Promise<void>;
}

type Reply = (status: number, body: JsonObject | null, headers?: Record<string, string>) => void;

/**
 * The place the simulated account holds from the start (facility, doctor, address: the one the
 * tests use); {@link DocplannerWriteApi.addAddress} registers more.
 */
export const SIM_PLACE = { facility: '90211', doctor: '182733', address: '221304' } as const;

let nextBookingId = 3_000_000_000;

function isoOffset(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', '+00:00');
}

/**
 * Docplanner's booking write endpoints.
 *
 * @example
 * ```ts
 * sim.writes.delayMs = 200;            // slow answers
 * sim.writes.answerDelayMs = 500;      // the echo overtakes the answer
 * sim.writes.takeSlot('182733', '221304', '2026-03-10T11:30:00+01:00');
 * sim.writes.log;                      // every write answered
 * ```
 */
export class DocplannerWriteApi {
  /** Every write answered, in order. */
  readonly log: DocplannerWrite[] = [];
  /** Delay before every write answer, ms (a slow vendor). */
  delayMs = 0;
  /**
   * Delay between carrying a write out and answering it, ms: the echo (pushed `echoDelayMs` after
   * the write) can then reach the hub before the answer does, as Docplanner's can.
   */
  answerDelayMs = 0;
  /** Push the echo notification after a change (default true). */
  echoes = true;
  /** How long after its answer the echo is pushed, ms (Docplanner notifies asynchronously). Default 100. */
  echoDelayMs = 100;
  /** Where echoes go; default: the simulator's `hookUrl`. */
  hookUrl: string | undefined;
  /** Keep echoes until {@link releaseEchoes} (tests that need the echo after something else). */
  holdEchoes = false;
  readonly #held: DpNotification[] = [];
  /**
   * Called when a write request arrives, before anything else (benchmarks time the hub's calls). A
   * returned promise holds the answer until it settles (a test keeps one vendor call open).
   */
  onRequest: ((method: string, path: string) => void | Promise<void>) | undefined;
  /**
   * What a book of a taken slot answers: 404 (bookSlot's UnableToPerformBookingWithSlot, "Requested
   * target slot (…) not found"; the default) or 422 "Slot is not available" (FACTS.md: "422 when
   * the slot cannot be booked", the words the move of a taken target answers).
   */
  takenSlotStatus: 404 | 422 = 404;
  /** Statuses that replace the answers of the next writes carried out ({@link loseAnswers}), each for the paths it matches. */
  readonly #lost: { status: number; only: RegExp | undefined }[] = [];
  /** Patient presence per booking id, as the last presence call marked it. */
  readonly presence = new Map<string, 'PRESENT' | 'ABSENT'>();
  /**
   * Who confirmed each confirmed booking (`confirmed_by` of its confirm), by booking id. getBookings
   * tells it with `with=booking.confirmation` (`confirmed`). A move makes a new booking, not
   * confirmed: whether Docplanner carries a confirmation over is not documented.
   */
  readonly confirmed = new Map<string, 'user' | 'admin'>();
  /**
   * The words of confirmBooking's 409s, by the reference's example (ConfirmBookingAlreadyConfirmed,
   * ConfirmBookingVisitCanceled, ConfirmBookingPastVisit); unset, the reference's English. A test
   * sets others for a Docplanner that rewords or localizes them (its sites are in many languages),
   * e.g. `{ alreadyConfirmed: 'Wizyta została już potwierdzona' }`.
   */
  confirmWords: { alreadyConfirmed?: string; canceled?: string; past?: string } = {};
  readonly #host: DocplannerWriteHost;
  readonly #taken = new Set<string>();
  /** Calendar breaks (simulator-breaks.ts): their writes go through {@link handle} as the booking writes do. */
  readonly breaks = new DocplannerBreaks({
    apiUrl: () => this.#host.apiUrl(),
    echo: (name, where, data) => this.#echo(this.#notification(name, where, data)),
    placeKnown: (where) => {
      const owner = this.#addresses.get(where.address);
      return owner?.facility === where.facility && owner.doctor === where.doctor;
    },
  });

  constructor(host: DocplannerWriteHost) {
    this.#host = host;
  }

  /**
   * The next `count` writes that Docplanner carries out (a 2xx) are done (the booking changes, the
   * echo is pushed) but answered `status` instead (default 502): a gateway that lost the answer, or
   * a vendor that failed after the work. A refused write (4xx) is answered as it is and counts not.
   * For the 5xx the simulator's `failNext` gives, nothing is done. `only` limits it to the writes
   * whose path (after the integration API's base) it matches: another command's write, a straggler
   * of an earlier test under load, does not take it.
   */
  loseAnswers(count: number, status = 502, only?: RegExp): void {
    for (let i = 0; i < count; i++) this.#lost.push({ status, only });
  }

  /**
   * Addresses the simulator knows the facility and doctor of, by address id ({@link addAddress}): a
   * move to one of them goes to its doctor (another doctor's address in the same facility reassigns
   * the booking), and to one in another facility is refused 403, as Docplanner does. A move to an
   * address not registered here stays with the booking's doctor. Calendar breaks are taken only at
   * a registered address, of its doctor in its facility (else 404, simulator-breaks.ts). Holds
   * {@link SIM_PLACE} from the start.
   */
  readonly #addresses = new Map<string, { facility: string; doctor: string }>([
    [SIM_PLACE.address, { facility: SIM_PLACE.facility, doctor: SIM_PLACE.doctor }],
  ]);

  /** Each moved booking's successor, by booking id (a move through the API). */
  readonly #movedTo = new Map<string, string>();
  /** Each booking a move made, its predecessor. */
  readonly #movedFrom = new Map<string, string>();

  /**
   * Whether getBooking's `booking.moving` extension answers a chain (default true); false answers
   * `moving: null`, as Docplanner does for bookings created before 2 April 2025.
   */
  movingChains = true;

  /**
   * A booking's move chain as getBooking's `booking.moving` extension tells it: the chain's first
   * and newest booking ids (the booking's own id for both when it was not moved); null when
   * {@link movingChains} is off.
   */
  moving(id: string): { origin_booking_id: string; newest_booking_id: string } | null {
    if (!this.movingChains) return null;
    let origin = id;
    while (this.#movedFrom.has(origin)) origin = this.#movedFrom.get(origin)!;
    let newest = id;
    while (this.#movedTo.has(newest)) newest = this.#movedTo.get(newest)!;
    return { origin_booking_id: origin, newest_booking_id: newest };
  }

  /** Registers an address of a doctor in a facility (see {@link #addresses}). */
  addAddress(place: { facility: string; doctor: string; address: string }): void {
    this.#addresses.set(place.address, { facility: place.facility, doctor: place.doctor });
  }

  /** Marks a slot as taken: booking it answers 404 (Docplanner: "Requested target slot (…) not found"). */
  takeSlot(doctor: string, address: string, start: string): void {
    this.#taken.add(`${doctor}|${address}|${Date.parse(start)}`);
  }

  /** Adds a booked booking the API can act on (as if Docplanner had notified it). */
  addBooking(place: { facility: string; doctor: string; address: string }, booking: JsonObject): void {
    this.#host.bookings.set(String(booking.id), { ...place, booking });
  }

  /**
   * Answers a write route below `/api/v3/integration` (`rest` is the path after it); false when
   * the route is not a write route.
   */
  async handle(method: string, rest: string, rawBody: string, reply: Reply): Promise<boolean> {
    const place = /^\/facilities\/([^/]+)\/doctors\/([^/]+)\/addresses\/([^/]+)(\/.*)$/.exec(rest);
    if (!place) return false;
    const [facility, doctor, address] = place.slice(1, 4).map((p) => decodeURIComponent(p!)) as [
      string,
      string,
      string,
    ];
    const tail = place[4]!;
    let body: JsonObject | undefined;
    try {
      body = rawBody === '' ? undefined : (JSON.parse(rawBody) as JsonObject);
    } catch {
      body = undefined;
    }
    let answered: (() => void) | undefined;
    const answer: Reply = (status, json, headers) => {
      const at =
        status >= 200 && status < 300
          ? this.#lost.findIndex((l) => l.only === undefined || l.only.test(rest))
          : -1;
      const lost = at === -1 ? undefined : this.#lost.splice(at, 1)[0]!.status;
      if (lost !== undefined) {
        this.log.push({ method, path: rest, body, status: lost, lostStatus: status });
        answered = () => reply(lost, { errors: [], message: 'Bad Gateway' });
        return;
      }
      this.log.push({ method, path: rest, body, status });
      answered = () => reply(status, json, headers);
    };
    const slot = /^\/slots\/([^/]+)\/book$/.exec(tail);
    const booking = /^\/bookings\/([^/]+)(\/move|\/presence\/patient|\/confirm)?$/.exec(tail);
    const confirming = booking?.[2] === '/confirm' && method === 'PUT';
    const breakRoute = DocplannerBreaks.route(method, tail);
    if (
      !(method === 'POST' && slot) &&
      !(booking && (method === 'DELETE' || method === 'POST' || confirming)) &&
      !breakRoute
    )
      return false;
    await this.onRequest?.(method, rest);
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (breakRoute) this.breaks.write(breakRoute, { facility, doctor, address }, body, answer);
    else this.#write(method, { facility, doctor, address }, slot?.[1], booking, body, answer);
    if (this.answerDelayMs > 0) await sleep(this.answerDelayMs);
    answered?.();
    return true;
  }

  /** Carries out one write route (the answer is given to `answer`, sent by the caller). */
  #write(
    method: string,
    where: { facility: string; doctor: string; address: string },
    slot: string | undefined,
    booking: RegExpExecArray | null,
    body: JsonObject | undefined,
    answer: Reply,
  ): void {
    if (slot !== undefined) {
      this.#book(where, decodeURIComponent(slot), body ?? {}, answer);
      return;
    }
    const id = decodeURIComponent(booking![1]!);
    const known = this.#host.bookings.get(id);
    if (
      !known ||
      known.facility !== where.facility ||
      known.doctor !== where.doctor ||
      known.address !== where.address
    ) {
      answer(404, { errors: [], message: 'Object not found' });
      return;
    }
    const action = booking![2];
    if (known.booking.status === 'canceled') {
      // Docplanner's answers (its reference's examples): cancelBooking 400 DeleteBookingValidationError,
      // moveBooking 409 VisitAlreadyMovedOrDeleted, confirmBooking 409 ConfirmBookingVisitCanceled;
      // for presence none is published.
      if (action === undefined && method === 'DELETE') {
        answer(400, { errors: [], message: `Visit ${id} cannot be canceled because it is not booked` });
      } else if (action === '/move') {
        answer(409, { errors: [], message: 'The visit has already been canceled or moved' });
      } else if (action === '/confirm') {
        answer(409, { errors: [], message: this.confirmWords.canceled ?? 'Visit has been canceled' });
      } else answer(409, { errors: [], message: 'Booking is already canceled' });
      return;
    }
    if (action === undefined && method === 'DELETE') this.#cancel(known, id, answer);
    else if (action === '/move' && method === 'POST') this.#move(known, id, body ?? {}, answer);
    else if (action === '/presence/patient') this.#presence(known, id, method, answer);
    else if (action === '/confirm' && method === 'PUT') this.#confirm(known, id, body ?? {}, answer);
    else answer(405, { message: 'Method Not Allowed' });
  }

  #notification(
    name: string,
    where: { facility: string; doctor: string; address: string },
    data: JsonObject,
  ): DpNotification {
    return {
      name,
      data: {
        facility: { id: where.facility },
        doctor: { id: where.doctor },
        address: { id: where.address },
        ...data,
      },
      created_at: isoOffset(this.#host.now()),
    } as unknown as DpNotification;
  }

  #echo(n: DpNotification): void {
    if (!this.echoes) return;
    if (this.holdEchoes) this.#held.push(n);
    else setTimeout(() => void this.#host.echo(n, this.hookUrl), this.echoDelayMs).unref();
  }

  /**
   * Pushes the held echoes now, in order, each once the hub has answered the one before (sent all
   * at once they could arrive in any order: a cancel of a moved booking's new id before the move
   * that names it, which a test then waited for in vain); returns how many.
   */
  releaseEchoes(): number {
    const held = this.#held.splice(0);
    let previous: Promise<void> = Promise.resolve();
    for (const n of held) previous = previous.then(() => this.#host.echo(n, this.hookUrl));
    return held.length;
  }

  #book(
    where: { facility: string; doctor: string; address: string },
    start: string,
    body: JsonObject,
    answer: Reply,
  ): void {
    const startMs = Date.parse(start);
    // Docplanner's BookSlotRequest requires address_service_id, patient and duration, its Patient
    // name and phone; a missing one is answered 400 with the field named, as in its examples
    // (`{"errors": {"<field>": ["…"]}, "message": "Invalid arguments"}`).
    const patient =
      typeof body.patient === 'object' && body.patient !== null ? (body.patient as JsonObject) : {};
    const invalid: Record<string, string[]> = {};
    if (Number.isNaN(startMs)) invalid.start = ['This value is not a valid datetime.'];
    if (typeof body.address_service_id !== 'string')
      invalid.address_service_id = ['This value should not be blank.'];
    if (typeof body.duration !== 'number') invalid.duration = ['This value should not be blank.'];
    if (typeof patient.name !== 'string') invalid['patient.name'] = ['This value should not be blank.'];
    if (typeof patient.phone !== 'string') invalid['patient.phone'] = ['This value should not be blank.'];
    if (Object.keys(invalid).length > 0) {
      answer(400, { errors: invalid, message: 'Invalid arguments' });
      return;
    }
    const key = `${where.doctor}|${where.address}|${startMs}`;
    if (this.#taken.has(key)) {
      if (this.takenSlotStatus === 422) answer(422, { errors: [], message: 'Slot is not available' });
      // Docplanner's UnableToPerformBookingWithSlot (bookSlot's 404).
      else
        answer(404, {
          errors: [],
          message: `Unable to perform booking. Requested target slot (${start}) not found`,
        });
      return;
    }
    this.#taken.add(key);
    const duration = body.duration as number;
    const service = body.address_service_id as string;
    const booking: JsonObject = {
      id: String(nextBookingId++),
      status: 'booked',
      start_at: start,
      end_at: isoOffset(startMs + duration * 60_000),
      duration,
      booked_by: 'integration',
      canceled_by: '',
      booked_at: isoOffset(this.#host.now()),
      canceled_at: null,
      address_service: { id: service },
      patient,
      comment: typeof body.comment === 'string' ? body.comment : null,
    };
    this.#host.bookings.set(String(booking.id), { ...where, booking });
    // bookSlot answers 200 with the Booking.
    answer(200, booking);
    this.#echo(this.#notification('slot-booked', where, { visit_booking: booking }));
  }

  #cancel(
    known: { facility: string; doctor: string; address: string; booking: JsonObject },
    id: string,
    answer: Reply,
  ): void {
    known.booking = {
      ...known.booking,
      status: 'canceled',
      canceled_by: 'integration',
      canceled_at: isoOffset(this.#host.now()),
    };
    this.#host.bookings.set(id, known);
    answer(204, null);
    this.#echo(this.#notification('booking-canceled', known, { visit_booking: known.booking }));
  }

  #move(
    known: { facility: string; doctor: string; address: string; booking: JsonObject },
    id: string,
    body: JsonObject,
    answer: Reply,
  ): void {
    const start = typeof body.start === 'string' ? body.start : '';
    const startMs = Date.parse(start);
    if (Number.isNaN(startMs) || typeof body.address_service_id !== 'string') {
      answer(400, { errors: [{ field: 'start', message: 'invalid' }], message: 'Bad Request' });
      return;
    }
    const address = typeof body.address_id === 'string' ? body.address_id : known.address;
    const owner = this.#addresses.get(address);
    if (owner && owner.facility !== known.facility) {
      answer(403, { errors: [], message: 'This address does not belong to this facility' });
      return;
    }
    // moveBooking (API 1.13.0): an address of another doctor in the facility reassigns the booking.
    const doctor = owner?.doctor ?? known.doctor;
    if (this.#taken.has(`${doctor}|${address}|${startMs}`)) {
      answer(422, { errors: [], message: 'Slot is not available' });
      return;
    }
    const duration = typeof body.duration === 'number' ? body.duration : Number(known.booking.duration ?? 30);
    const old = {
      ...known.booking,
      status: 'canceled',
      canceled_by: 'integration',
      canceled_at: isoOffset(this.#host.now()),
    };
    const moved: JsonObject = {
      ...known.booking,
      id: String(nextBookingId++),
      status: 'booked',
      start_at: start,
      end_at: isoOffset(startMs + duration * 60_000),
      duration,
      booked_by: 'integration',
      booked_at: isoOffset(this.#host.now()),
      address_service: { id: body.address_service_id },
    };
    this.#host.bookings.set(id, { ...known, booking: old });
    const place = { facility: known.facility, doctor, address };
    this.#host.bookings.set(String(moved.id), { ...place, booking: moved });
    this.#movedTo.set(id, String(moved.id));
    this.#movedFrom.set(String(moved.id), id);
    // moveBooking answers 201 with the new Booking, and `Location` names the new booking's resource
    // (so its doctor: the Booking object names neither doctor nor address).
    const e = encodeURIComponent;
    answer(201, moved, {
      location: `${this.#host.apiUrl()}/facilities/${e(place.facility)}/doctors/${e(doctor)}/addresses/${e(address)}/bookings/${e(String(moved.id))}`,
    });
    this.#echo(
      this.#notification('booking-moved', place, { old_visit_booking: old, new_visit_booking: moved }),
    );
  }

  /**
   * `PUT …/confirm` (confirmBooking, API reference 1.9.0): its body's required `confirmed_by` is
   * `user` or `admin` (else 400, ConfirmBookingValidationError); a visit confirmed before, or one
   * whose start has passed, is refused 409 with the reference's words (ConfirmBookingAlreadyConfirmed,
   * ConfirmBookingPastVisit; a canceled one is refused before, in {@link #write}). Which of the two a
   * past visit confirmed before gets is not documented: here "already confirmed". Answered 204 and
   * notified as `booking-confirmed`, the booking as its `visit_booking`.
   */
  #confirm(
    known: { facility: string; doctor: string; address: string; booking: JsonObject },
    id: string,
    body: JsonObject,
    answer: Reply,
  ): void {
    const by = body.confirmed_by;
    if (by !== 'user' && by !== 'admin') {
      answer(400, { errors: [], message: 'confirmed_by value is invalid' });
      return;
    }
    if (this.confirmed.has(id)) {
      answer(409, {
        errors: [],
        message: this.confirmWords.alreadyConfirmed ?? 'Visit has already been confirmed',
      });
      return;
    }
    if (Date.parse(String(known.booking.start_at)) < this.#host.now()) {
      answer(409, { errors: [], message: this.confirmWords.past ?? 'Visit is in the past' });
      return;
    }
    this.confirmed.set(id, by);
    answer(204, null);
    this.#echo(this.#notification('booking-confirmed', known, { visit_booking: known.booking }));
  }

  /**
   * `POST …/presence/patient` marks the patient present, `DELETE` absent (a no-show), as Docplanner's
   * markPatientPresence / markPatientAbsence do; each is notified as `presence-marked`.
   */
  #presence(
    known: { facility: string; doctor: string; address: string; booking: JsonObject },
    id: string,
    method: string,
    answer: Reply,
  ): void {
    const presence = method === 'POST' ? 'PRESENT' : 'ABSENT';
    this.presence.set(id, presence);
    answer(204, null);
    this.#echo(this.#notification('presence-marked', known, { visit_booking: known.booking, presence }));
  }
}
