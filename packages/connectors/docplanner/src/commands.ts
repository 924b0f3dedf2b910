/**
 * Docplanner commands: the integration API v3 write calls (FACTS.md, "Write API"), with the same
 * OAuth2 client-credentials token as pull (held in process memory, renewed on a 401).
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST …/slots/{start}/book` |
 * | appointment.cancel | `DELETE …/bookings/{id}` |
 * | appointment.reschedule | `POST …/bookings/{id}/move` (a new booking id, aliased to the same appointment) |
 * | appointment.confirm | `PUT …/bookings/{id}/confirm` with `{ confirmed_by }` (confirmBooking) |
 * | appointment.mark_arrived | `POST …/bookings/{id}/presence/patient` (markPatientPresence) |
 * | appointment.mark_no_show | `DELETE …/bookings/{id}/presence/patient` (markPatientAbsence) |
 *
 * `…` is `/api/v3/integration/facilities/{facility}/doctors/{doctor}/addresses/{address}`: for an
 * existing booking the hub's known state of the appointment gives the three ids, or, for a booking
 * a move made through the hub that no notification has named yet, the place the move put it at
 * ({@link movedPlaceKey}). Docplanner's API has no idempotency key, so a repeated call (the hub runs
 * commands at least once) checks first: a cancel whose DELETE is refused re-reads the booking and is
 * done when it is already canceled; a book or move keeps a record of its write
 * ({@link AttemptRecord}) and is never sent again blind once it may have taken effect: a book's next
 * try looks for the booking among the slot's bookings ({@link madeEarlier}), a move's re-reads the
 * booking it moved ({@link checkMove}) (see docs/connectors/docplanner.md#commands).
 */
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  CREATE_SETTLE_MS,
  commandOutcome,
  createdOutcome,
  isJsonObject,
  isRetryableStatus,
  type JsonObject,
  type JsonValue,
  type PullContext,
  provesNotCarriedOut,
  sendNotCarriedOut,
  toRfc3339,
  unchangedWhen,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { accessToken, apiBase, docplannerApi, retryAfterMs } from './pull.ts';

export type Ctx = CommandContext<Config>;

/** The booking's place at Docplanner, from the command or the appointment's last known state. */
export interface Place {
  facility: string;
  doctor: string;
  address: string;
}

function idOf(value: JsonValue | undefined): string | undefined {
  return isJsonObject(value) && typeof value.id === 'string' && value.id !== '' ? value.id : undefined;
}

export function placeOf(source: JsonObject | undefined): Place | undefined {
  const facility = idOf(source?.organization);
  const doctor = idOf(source?.practitioner);
  const address = idOf(source?.location);
  return facility && doctor && address ? { facility, doctor, address } : undefined;
}

export function placePath(config: Config, p: Place): string {
  const e = encodeURIComponent;
  return `${apiBase(config)}/api/v3/integration/facilities/${e(p.facility)}/doctors/${e(p.doctor)}/addresses/${e(p.address)}`;
}

export function api(ctx: Ctx): PullContext<Config> {
  return {
    instanceId: ctx.instanceId,
    config: ctx.config,
    http: ctx.http,
    state: ctx.state,
    logger: ctx.logger,
  };
}

/**
 * 5xx, 408 and 429 are worth another try (Retry-After honoured); other 4xx are Docplanner's refusal.
 * As it is for calls that may be repeated (cancel, presence, a re-read); a book or move answered a
 * 5xx may have been carried out, so it passes {@link unsuccessfulWrite} first.
 */
export function failure(what: string, res: VendorResponse): CommandResult {
  const said =
    !isRetryableStatus(res.status) && isJsonObject(res.body) && typeof res.body.message === 'string'
      ? res.body.message
      : undefined;
  const outcome = commandOutcome(`Docplanner ${what}`, res, said);
  // Docplanner's rate limiter says when to come back in X-RateLimit-Reset, not Retry-After.
  if (outcome.outcome !== 'transient') return outcome;
  const after = retryAfterMs(res);
  return after === undefined ? outcome : { ...outcome, retryAfterMs: after };
}

export const ok = (res: VendorResponse) => res.status >= 200 && res.status < 300;

/**
 * State-store key (instance state) of the place a move made through the hub put its new booking at,
 * by the new booking id: written when Docplanner carried the move out, read by {@link target} until
 * a notification naming the new booking supersedes it, and deleted by the normalization of the
 * move's `booking-moved` (normalize.ts). Only the vendor's notifications update the appointment's
 * known state, so until one arrives the known place is the old booking's: a command sent right
 * after a move to another address went to the old address's path, where Docplanner does not know
 * the new booking (404).
 */
export const movedPlaceKey = (booking: string) => `docplanner:moved-place:${booking}`;

function placeValue(value: JsonValue | undefined): Place | undefined {
  if (
    isJsonObject(value) &&
    typeof value.facility === 'string' &&
    typeof value.doctor === 'string' &&
    typeof value.address === 'string'
  ) {
    return { facility: value.facility, doctor: value.doctor, address: value.address };
  }
  return undefined;
}

const samePlace = (a: Place, b: Place) =>
  a.facility === b.facility && a.doctor === b.doctor && a.address === b.address;

/** The vendor id an appointment's known state says is current (`vendorIds[].current`). */
function knownCurrentId(current: JsonObject | undefined): string | undefined {
  const ids = Array.isArray(current?.vendorIds) ? current.vendorIds.filter(isJsonObject) : [];
  const named = ids.find((v) => v.current === true);
  return typeof named?.value === 'string' ? named.value : undefined;
}

/**
 * State-store key (instance state) of an appointment's move whose new booking id is not known: the
 * move was carried out, but the answer that held the new id was lost (a later try found the old
 * booking canceled by it) or did not hold it. Its value names the old booking (`booking`) and the
 * command (`command`). While the appointment's current booking is that old one, {@link target}
 * answers every command on it transient: the old booking reads `canceled` (the move canceled it),
 * so a cancel was done "already" and the CRM told the appointment was cancelled, while the new
 * booking stayed booked. Docplanner's `booking-moved` notification aliases the new id to the
 * appointment, and the mark no longer applies (the next command deletes it). Kept per appointment,
 * not per booking, so that command finds it; not deleted by that notification's normalization, as
 * a command that read the appointment's vendor ids just before it would find neither the new id
 * nor the mark.
 */
export const movePendingKey = (subject: string) => `docplanner:move-pending:${subject}`;

/**
 * Marks the appointment's move from `booking` as done with its new booking id unknown
 * ({@link movePendingKey}), unless the hub already knows a later booking of it.
 */
async function markMovePending(
  command: CommandRequest,
  ctx: Ctx,
  booking: string | undefined,
): Promise<void> {
  if (booking === undefined || command.subject === undefined) return;
  if (ctx.vendorIds[ctx.vendorIds.length - 1] !== booking) return;
  await ctx.state.set(movePendingKey(command.subject), { booking, command: command.id });
}

/**
 * The booking the command is about: its current vendor id and place, or why it cannot be addressed
 * (yet: the new id of a move whose answer was lost, {@link movePendingKey}). The place is the known
 * state's once a notification named the booking (the vendor's word is the latest); before that, for
 * a booking a move through the hub made, where that move put it.
 */
async function target(
  command: CommandRequest,
  ctx: Ctx,
): Promise<{ booking: string; place: Place } | CommandResult> {
  const booking = ctx.vendorIds[ctx.vendorIds.length - 1];
  if (booking && command.subject !== undefined) {
    const key = movePendingKey(command.subject);
    const pending = await ctx.state.get<JsonValue>(key);
    if (isJsonObject(pending) && pending.booking === booking) {
      return {
        outcome: 'transient',
        message: `booking ${booking} was moved at Docplanner (command ${String(pending.command)}) and the hub did not get the new booking's id (its answer was lost or held none): waiting for Docplanner's booking-moved notification to name it (the old booking reads canceled because of the move, which says nothing of the appointment)`,
      };
    }
    // The move's notification named the new booking since: the mark has done its work.
    if (pending !== undefined) await ctx.state.delete(key);
  }
  let place = placeOf(ctx.current);
  if (booking && knownCurrentId(ctx.current) !== booking) {
    place = placeValue(await ctx.state.get<JsonValue>(movedPlaceKey(booking))) ?? place;
  }
  if (!booking || !place) {
    return {
      outcome: 'permanent',
      message:
        'the hub does not know this booking’s facility, doctor and address (no Docplanner notification about it carried them)',
    };
  }
  return { booking, place };
}

/**
 * Re-reads a booking with its move chain (`with=booking.moving`, getBooking's extension: `moving`
 * names the chain's `origin_booking_id` and `newest_booking_id`, equal to the booking's own id when
 * it was not moved; `null` for bookings created before 2 April 2025). See {@link newestOf}.
 */
async function readBooking(ctx: Ctx, place: Place, booking: string): Promise<VendorResponse> {
  return docplannerApi(api(ctx), {
    method: 'GET',
    url: `${placePath(ctx.config, place)}/bookings/${encodeURIComponent(booking)}?with=booking.moving`,
  });
}

/**
 * The newest booking of a re-read booking's move chain (`moving.newest_booking_id`), or undefined
 * when Docplanner did not say (`moving: null`, an older booking). A canceled booking whose newest is
 * itself was canceled, not moved; another id is the booking a move made of it.
 */
function newestOf(read: JsonObject): string | undefined {
  return isJsonObject(read.moving) ? vendorId(read.moving.newest_booking_id) : undefined;
}

/**
 * What became of a book or move, the writes Docplanner cannot deduplicate (a repeated book books
 * twice), kept in the command's own state (`ctx.commandState`, deleted with the command by the
 * hub's retention purge) under {@link attemptKey} (the command id in it: records written to the
 * instance state before migration 33 moved there under the same key) so that every later try of the same
 * command knows:
 * - absent: nothing went out, or Docplanner's answer proved it was not made (a 4xx refusal, a 408 or a
 *   429; Docplanner documents no maintenance answer to its writes, so no 5xx proves it:
 *   {@link provesNotCarriedOut}): sending it (again) is safe;
 * - `{ sent }`: the request went out and no answer says what became of it (no answer, a timeout, a
 *   crash, any 5xx, `Retry-After` or not, which a proxy may give after the work was done):
 *   never sent again blind. A move is checked by re-reading the booking it moved (`sent` names it,
 *   its place and start: by the next try, Docplanner's notification of the move may have made
 *   another booking the appointment's current one); a booking by listing the slot's bookings
 *   ({@link madeEarlier}; `sent.at` says when the request went out, `sent.first` when the first
 *   one did). A bare `'sent'` (what earlier versions wrote) reads as `{ sent: {} }`;
 * - `{ done }`: Docplanner carried it out; a later try answers the same result without a call. A
 *   move's record also names the new booking's place when it is not the old one's (`place`, which
 *   a later try writes to the instance state again: see {@link movedPlaceKey}).
 *
 * Why the connector keeps the done result, and the hub does not record it instead: the hub's work
 * after a `done` (aliasing the new booking id, storing the outcome) may fail and make it try the
 * command again, and only this record can stop that try from booking twice. It replaces the `sent`
 * mark in one write, so there is no moment at which neither says what happened (with the hub
 * recording the result, the connector would end its mark and the hub record the result in two
 * writes: a failure between them leaves neither, and the next try books again); and when that
 * write itself fails, the `sent` mark stays and the next try refuses or checks rather than repeats.
 * One record, one place that decides whether a write may go out.
 */
type AttemptRecord = { sent: SentWrite } | { done: DoneWrite };

/** A carried-out write's result, as its record keeps it. */
interface DoneWrite {
  vendorIds: string[];
  alreadyDone?: boolean;
  /** A move's new booking's place, when it is not the old booking's. */
  place?: Place;
  /** A move done without its new id: the booking it moved ({@link movePendingKey}). */
  movedFrom?: string;
}

/**
 * What a `sent` mark names: when the request went out (`at`), for a book the first send's time when
 * it was sent again (`first`), and for a move the booking it moves, where it is and when it starts.
 */
export interface SentWrite {
  booking?: string;
  place?: Place;
  start?: string;
  at?: string;
  first?: string;
}

/** State-store key of a book or move's {@link AttemptRecord}. */
const attemptKey = (command: CommandRequest) => `docplanner:command:${command.id}`;

export async function attemptOf(command: CommandRequest, ctx: Ctx): Promise<AttemptRecord | undefined> {
  const value = await ctx.commandState.get<JsonValue>(attemptKey(command));
  if (value === 'sent') return { sent: {} };
  if (!isJsonObject(value)) return undefined;
  if (isJsonObject(value.done) && Array.isArray(value.done.vendorIds)) {
    const vendorIds = value.done.vendorIds.filter((v): v is string => typeof v === 'string');
    const place = placeValue(value.done.place);
    const movedFrom = value.done.movedFrom;
    return {
      done: {
        vendorIds,
        ...(value.done.alreadyDone === true ? { alreadyDone: true } : {}),
        ...(place ? { place } : {}),
        ...(typeof movedFrom === 'string' ? { movedFrom } : {}),
      },
    };
  }
  if (isJsonObject(value.sent)) {
    const sent: SentWrite = {};
    if (typeof value.sent.booking === 'string') sent.booking = value.sent.booking;
    const place = placeValue(value.sent.place);
    if (place) sent.place = place;
    if (typeof value.sent.start === 'string') sent.start = value.sent.start;
    if (typeof value.sent.at === 'string') sent.at = value.sent.at;
    if (typeof value.sent.first === 'string') sent.first = value.sent.first;
    return { sent };
  }
  return undefined;
}

/** The result of a write Docplanner carried out, recorded (ending its `sent` mark), then returned. */
export async function carriedOut(
  command: CommandRequest,
  ctx: Ctx,
  done: DoneWrite,
  res: VendorResponse,
): Promise<CommandResult> {
  await ctx.commandState.set(attemptKey(command), { done } as unknown as JsonValue);
  await noteMove(command, ctx, done);
  return { ...answerOf(done), vendor: { status: res.status, body: res.body } };
}

function answerOf(done: DoneWrite): Extract<CommandResult, { outcome: 'done' }> {
  return { outcome: 'done', vendorIds: done.vendorIds, ...(done.alreadyDone ? { alreadyDone: true } : {}) };
}

/**
 * What a carried-out move leaves in the instance state for the commands that follow it: its new
 * booking's place ({@link movedPlaceKey}), or that its new id is not known
 * ({@link movePendingKey}). Written after the done record, and again by a later try that answers
 * that record, so a failure between the two writes loses neither.
 */
async function noteMove(command: CommandRequest, ctx: Ctx, done: DoneWrite): Promise<void> {
  const booking = done.vendorIds[0];
  if (booking !== undefined && done.place) {
    await ctx.state.set(movedPlaceKey(booking), done.place as unknown as JsonValue);
  }
  await markMovePending(command, ctx, done.movedFrom);
}

/** A recorded done result, answered again (the hub's work after it failed; no vendor call). */
export async function replayed(
  command: CommandRequest,
  ctx: Ctx,
  record: AttemptRecord | undefined,
): Promise<CommandResult | undefined> {
  if (record === undefined || !('done' in record)) return undefined;
  await noteMove(command, ctx, record.done);
  return answerOf(record.done);
}

/**
 * Takes back the `sent` mark of a send whose answer proved it did nothing: to `earlier`, the mark
 * of an earlier try whose outcome is still unknown (this try sent it again after its check), else
 * gone. Deleted after a send again, the next try sent once more with no check: a 408 or 429 to the
 * second send says nothing of the first.
 */
async function takeBack(command: CommandRequest, ctx: Ctx, earlier: SentWrite | undefined): Promise<void> {
  const previous = earlier === undefined ? undefined : ({ sent: earlier } as unknown as JsonValue);
  await sendNotCarriedOut(ctx.commandState, attemptKey(command), previous);
}

/**
 * Sends a book or move. The token comes first: a token endpoint that fails is a failure before
 * anything went out, so the write is marked `sent` only once the request itself is about to go
 * (else the next try would refuse a write that was never sent). A 401 is a refusal (nothing was
 * done): the mark is taken back (to `earlier`'s, an earlier try's whose outcome is unknown), the
 * token renewed, and the request sent once more. Throws when no answer comes (the mark stays).
 */
export async function sendWrite(
  command: CommandRequest,
  ctx: Ctx,
  request: Omit<VendorRequest, 'headers'>,
  sent: SentWrite,
  earlier?: SentWrite,
): Promise<VendorResponse> {
  const send = async (token: string) => {
    const mark: SentWrite = { ...sent, at: new Date().toISOString() };
    await ctx.commandState.set(attemptKey(command), { sent: mark } as unknown as JsonValue);
    return ctx.http.request({
      ...request,
      headers: { accept: 'application/json', authorization: `Bearer ${token}` },
    });
  };
  const token = await accessToken(api(ctx));
  const res = await send(token);
  if (res.status !== 401) return res;
  await takeBack(command, ctx, earlier);
  // The refused token only: another command refused with it may have renewed it already.
  return send(await accessToken(api(ctx), { refused: token }));
}

/**
 * A book or move that Docplanner did not answer with success. A 408, 429 or 5xx does not say the
 * write was not carried out (a proxy in front of Docplanner answers so after forwarding it, 429 and
 * 503 with `Retry-After` too; Docplanner documents no turn-away answer of its own for its writes:
 * {@link provesNotCarriedOut}): its mark stays and the result is transient, so the next try decides
 * (`then` says how). A refusal (any other 4xx) proved this send did nothing: the mark is cleared,
 * or put back to `earlier`'s when an earlier try's send is still unknown ({@link takeBack}).
 */
export async function unsuccessfulWrite(
  command: CommandRequest,
  ctx: Ctx,
  what: string,
  res: VendorResponse,
  then: string,
  earlier?: SentWrite,
): Promise<CommandResult> {
  if (isRetryableStatus(res.status) && !provesNotCarriedOut(res)) {
    // The wait it asks for is still honoured; only the mark's fate differs from failure's.
    const asked = failure(what, res);
    return {
      outcome: 'transient',
      message: `Docplanner ${what} answered ${res.status}, which does not say whether it was carried out: ${then}`,
      vendor: { status: res.status, body: res.body },
      ...(asked.outcome === 'transient' && asked.retryAfterMs !== undefined
        ? { retryAfterMs: asked.retryAfterMs }
        : {}),
    };
  }
  await takeBack(command, ctx, earlier);
  return failure(what, res);
}

/** Whether two RFC 3339 times are the same instant (offsets may differ). */
export function sameInstant(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return typeof a === 'string' && typeof b === 'string' && Date.parse(a) === Date.parse(b);
}

const UNKNOWN_MOVE = 'an earlier try of this move went out and its outcome is unknown';

/**
 * After a move whose outcome is unknown: re-reads the booking it moved (named by its `sent` mark;
 * else the appointment's current one). Still booked at the start it had: the move did not happen,
 * undefined (moving is safe). Canceled, not by the patient or the doctor: the move happened (it
 * cancels the old booking), done with the new id its move chain names when the move stayed at its
 * address ({@link newestOf}), else without it (Docplanner's `booking-moved` notification brings it,
 * aliased to the same appointment); unless the chain says it was canceled, not moved. Anything else
 * cannot be told apart: a permanent failure saying so, or transient when the re-read itself got no
 * clear answer (a 5xx, or a 2xx without the booking).
 */
async function checkMove(
  command: CommandRequest,
  ctx: Ctx,
  t: { booking: string; place: Place },
  sent: SentWrite,
  address: string | undefined,
): Promise<CommandResult | undefined> {
  const booking = sent.booking ?? t.booking;
  const from = sent.place ?? t.place;
  const res = await readBooking(ctx, from, booking);
  const vendor = { status: res.status, body: res.body };
  if (!ok(res)) {
    const retry = failure('re-read', res);
    if (retry.outcome === 'transient') {
      return {
        ...retry,
        message: `${UNKNOWN_MOVE}, and re-reading booking ${booking} to check answered ${res.status}: checked again on the next try`,
      };
    }
    return {
      outcome: 'permanent',
      message: `${UNKNOWN_MOVE}, and re-reading booking ${booking} answered ${res.status}: not moved again, as it cannot be told whether the move took effect; Docplanner's notification will show it`,
      vendor,
    };
  }
  if (!isJsonObject(res.body) || typeof res.body.status !== 'string') {
    // A 2xx without the booking (a proxy's or a maintenance page's HTML 200): no answer on the
    // move, nor a reason to fail it. It failed for good before ("reads as null"), the move maybe
    // made; now it is checked again on the next try.
    return {
      outcome: 'transient',
      message: `${UNKNOWN_MOVE}, and re-reading booking ${booking} to check answered ${res.status} without the booking: checked again on the next try`,
      vendor,
    };
  }
  const read = res.body;
  if (read.status === 'booked') {
    const before = sent.start ?? ctx.current?.start;
    if (before === undefined || sameInstant(read.start_at, before)) return undefined;
    return {
      outcome: 'permanent',
      message: `${UNKNOWN_MOVE}, and booking ${booking} is booked at ${String(read.start_at)}, not at its start when the move was sent (${String(before)}): not moved again, as it cannot be told whether the move took effect`,
      vendor,
    };
  }
  if (read.status === 'canceled') {
    const by = read.canceled_by;
    if (by === 'user' || by === 'doctor') {
      return {
        outcome: 'permanent',
        message: `booking ${booking} was canceled at Docplanner by the ${by}, so the earlier try did not move it: not moved`,
        vendor,
      };
    }
    const newest = newestOf(read);
    // The move chain ends at the booking itself: it was canceled, not moved (by this hub's cancel,
    // another integration's), so the earlier try did not move it.
    if (newest === booking) {
      return {
        outcome: 'permanent',
        message: `booking ${booking} was canceled at Docplanner, not moved (its move chain ends at it), so the earlier try did not move it: not moved`,
        vendor,
      };
    }
    // The move chain names the new booking: when the move stayed at its address, that is where the
    // new booking is, and the appointment goes on under it at once. A move to another address may
    // have changed the doctor too, which only the notification tells: done without the id, as
    // without a chain.
    if (newest !== undefined && (address === undefined || address === from.address)) {
      return carriedOut(command, ctx, { vendorIds: [newest], alreadyDone: true }, res);
    }
    return carriedOut(command, ctx, { vendorIds: [], alreadyDone: true, movedFrom: booking }, res);
  }
  return {
    outcome: 'permanent',
    message: `${UNKNOWN_MOVE}, and booking ${booking} reads as ${JSON.stringify(read.status ?? null)}: not moved again, as it cannot be told whether the move took effect`,
    vendor,
  };
}

const DP_GENDER: Record<string, string> = { male: 'm', female: 'f' };

/**
 * What a book lacks that Docplanner's bookSlot requires (BookSlotRequest: `address_service_id`,
 * `patient`, `duration`; its Patient: `name`, `phone`), besides the place of the path: the fields
 * named, or undefined when nothing is missing. Docplanner answers 400 to a book without them, and
 * has no default length for a visit.
 */
function bookLacks(d: CommandRequest<'appointment.book'>['data']): string | undefined {
  const missing: string[] = [];
  if (!d.organization?.id) missing.push('organization.id (facility)');
  if (!d.practitioner?.id) missing.push('practitioner.id (doctor)');
  if (!d.location?.id) missing.push('location.id (address)');
  if (!d.service?.id) missing.push('service.id (address service)');
  if (d.durationMinutes === undefined) missing.push('durationMinutes (duration)');
  if ((d.patient.given ?? d.patient.name) === undefined) missing.push('patient.given or patient.name (name)');
  if (d.patient.phone === undefined) missing.push('patient.phone (phone)');
  if (missing.length === 0) return undefined;
  return `Docplanner books a slot only with ${missing.join(', ')}`;
}

/**
 * A command's start as Docplanner takes it, ISO 8601 with its offset (FACTS.md, "Write API"): the
 * catalog's schema takes any RFC 3339 date-time, whose space or lowercase `t` / `z` ISO 8601 does
 * not allow, and those went into the slot's path and the move's body as sent (a commands audit:
 * `2026-03-10 11:30:00+01:00` was booked as `…/slots/2026-03-10%2011%3A30%3A00%2B01%3A00/book`).
 */
export function vendorTime(start: string): string {
  return toRfc3339(start) ?? start;
}

/**
 * Why this instance cannot carry out a command as sent (the contract's `commandUnsupported`): a
 * book without what Docplanner's bookSlot requires is refused when it is sent, not accepted and
 * then failed on Docplanner's 400.
 *
 * @example
 * ```ts
 * commandUnsupported({ type: 'appointment.book', data: { start, patient: { name: 'Jan' } } });
 * // 'Docplanner books a slot only with organization.id (facility), …, patient.phone (phone)'
 * ```
 */
export function commandUnsupported(command: CommandData): string | undefined {
  return command.type === 'appointment.book' ? bookLacks(command.data) : undefined;
}

/**
 * How long after a book went out a list of the slot's bookings without it proves it was not made,
 * ms: core's {@link CREATE_SETTLE_MS}, the one wait every connector's lookup keeps. A request whose
 * answer the hub lost may still be under way at Docplanner: the hub stops waiting after its 10 s
 * request timeout, a gateway answers 502 / 504 after its own (commonly 60 s), while the booking may
 * land after either; before then, a list without the booking says only "not yet", and the next try
 * looks again instead of booking.
 */
export const BOOK_SETTLE_MS = CREATE_SETTLE_MS;

/**
 * How long before the first send a booking found at the slot may have been made (the two clocks
 * differ): one made earlier is not this command's.
 */
const BOOK_CLOCK_SKEW_MS = 5 * 60_000;

/** `iso` (with its offset) `minutes` later, written with the same offset. */
function later(iso: string, minutes: number): string {
  const offset = /(Z|[+-]\d{2}:\d{2})$/i.exec(iso)?.[1] ?? 'Z';
  const shift =
    offset.toUpperCase() === 'Z'
      ? 0
      : (offset[0] === '-' ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(Date.parse(iso) + (minutes + shift) * 60_000).toISOString().slice(0, 19);
  return `${local}${offset.toUpperCase() === 'Z' ? 'Z' : offset}`;
}

const lower = (v: JsonValue | undefined) =>
  typeof v === 'string' || typeof v === 'number'
    ? String(v).normalize('NFC').trim().toLowerCase()
    : undefined;

/**
 * Whether two phone numbers are the same: the same digits, or the one written without its
 * country code (at most three digits more in front; the shorter keeps at least seven). Docplanner
 * may store `+48 500 100 200` as `48500100200` (its examples write the phone as a number).
 */
function samePhone(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  const [x, y] = [a, b].map((v) =>
    typeof v === 'string' || typeof v === 'number' ? String(v).replace(/\D/g, '') : '',
  );
  const [short, long] = x!.length <= y!.length ? [x!, y!] : [y!, x!];
  return short.length >= 7 && long.endsWith(short) && long.length - short.length <= 3;
}

/**
 * Whether a listed booking's patient is the one this book sent: the same name, phone and, when
 * sent, surname and email (case and spacing aside). Strict: a booking of another patient at the
 * slot, or one the list names no patient for, is not this command's.
 */
function samePatient(listed: JsonValue | undefined, sent: JsonObject): boolean {
  if (!isJsonObject(listed)) return false;
  if (lower(listed.name) === undefined || lower(listed.name) !== lower(sent.name)) return false;
  if (!samePhone(listed.phone, sent.phone)) return false;
  for (const key of ['surname', 'email'] as const) {
    if (sent[key] !== undefined && lower(listed[key]) !== lower(sent[key])) return false;
  }
  return true;
}

const UNKNOWN_BOOK = 'an earlier try of this booking went out and its outcome is unknown';

/**
 * What a write of unknown outcome is looked for in, for the messages of {@link lookupList} and
 * {@link notListedYet}: a book among the slot's bookings, a block among the address's breaks.
 */
export interface Lookup {
  /** The command's outcome so far (`an earlier try of this booking went out and its outcome is unknown`). */
  unknown: string;
  /** The list's name in a failure (`booking list`). */
  list: string;
  /** What is listed (`the slot's bookings`). */
  listed: string;
  /** What is not done, as a verb phrase (`booked`: "not booked twice", "booked again"). */
  done: string;
  /** The notification that will tell (`the vendor's notification (slot-booked)`). */
  notification: string;
}

/** A book's lookup ({@link madeEarlier}). */
const BOOK_LOOKUP: Lookup = {
  unknown: UNKNOWN_BOOK,
  list: 'booking list',
  listed: "the slot's bookings",
  done: 'booked',
  notification: "the vendor's notification (slot-booked)",
};

/**
 * Lists, for the lookup of a write whose outcome is unknown, what it may have made (`GET url`,
 * Docplanner's `{ "_items": [...] }`). Not answered (a 5xx, or a 2xx without `_items`): transient,
 * looked up again on the next try. Refused: permanent, and the write is not sent again, so nothing
 * is made twice; the vendor's notification will show whether it happened.
 *
 * @example
 * ```ts
 * const listed = await lookupList(ctx, `${placePath(ctx.config, place)}/breaks?${query}`, BLOCK_LOOKUP);
 * if (!('items' in listed)) return listed; // the command's outcome
 * ```
 */
export async function lookupList(
  ctx: Ctx,
  url: string,
  l: Lookup,
): Promise<{ items: JsonValue[]; res: VendorResponse } | CommandResult> {
  const res = await docplannerApi(api(ctx), { method: 'GET', url });
  const items = ok(res) && isJsonObject(res.body) ? res.body._items : undefined;
  if (Array.isArray(items)) return { items, res };
  const result = ok(res)
    ? { outcome: 'transient' as const, message: `Docplanner ${l.list} answered ${res.status} without _items` }
    : failure(l.list, res);
  if (result.outcome === 'transient') {
    return {
      ...result,
      message: `${l.unknown}, and listing ${l.listed} to find it did not answer (${result.message}): looked up again on the next try`,
    };
  }
  return {
    outcome: 'permanent',
    message: `${l.unknown}, and listing ${l.listed} to find it was refused (${res.status}): not sent again, so nothing is ${l.done} twice; ${l.notification} will show whether it happened`,
    vendor: { status: res.status, body: res.body },
  };
}

/**
 * A write not listed (yet) while its earlier try may still land: transient, on the command retry
 * schedule. No `retryAfterMs` for the rest of the wait: the hub takes one as the vendor asking it
 * to wait, and would hold every other command of the instance in this process until then.
 */
export function notListedYet(l: Lookup, wait: number): CommandResult {
  return {
    outcome: 'transient',
    message: `${l.unknown}, and ${l.listed} do not list it yet: it may still land at Docplanner, so it is looked for again on the next try, and ${l.done} again only when still not there ${BOOK_SETTLE_MS / 1000} s after it went out (${Math.ceil(wait / 1000)} s from now)`,
  };
}

/**
 * After a book whose outcome is unknown (no answer, a 5xx that does not say, a 2xx without the
 * booking): lists the address's bookings at the slot (getBookings, `GET …/bookings?start=&end=
 * &with=booking.patient`, the slot's start to its end) and looks for the one the earlier try made:
 * the same start instant, booked through the API (`booked_by: integration`), for the patient as
 * sent ({@link samePatient}), not made before the first try went out. Found: done with its id
 * (`alreadyDone`; canceled since, it is still the one this command made, and is not booked again).
 * Not found: undefined (book again) once the earlier try has surely ended at Docplanner
 * ({@link BOOK_SETTLE_MS} after it went out), else transient until then. A list that did not answer
 * is transient, one refused permanent: nothing is booked blind.
 */
async function madeEarlier(
  command: CommandRequest<'appointment.book'>,
  ctx: Ctx,
  place: Place,
  patient: JsonObject,
  sent: SentWrite,
): Promise<CommandResult | undefined> {
  const d = command.data;
  const start = vendorTime(d.start);
  const query = new URLSearchParams({
    start,
    end: later(start, d.durationMinutes!),
    with: 'booking.patient',
  });
  const listed = await lookupList(ctx, `${placePath(ctx.config, place)}/bookings?${query}`, BOOK_LOOKUP);
  if (!('items' in listed)) return listed;
  const { items, res } = listed;
  const first = sent.first ?? sent.at;
  const since = first === undefined ? undefined : Date.parse(first) - BOOK_CLOCK_SKEW_MS;
  const mine = (b: JsonValue): b is JsonObject =>
    isJsonObject(b) &&
    vendorId(b.id) !== undefined &&
    sameInstant(b.start_at, start) &&
    b.booked_by === 'integration' &&
    samePatient(b.patient, patient) &&
    (since === undefined || typeof b.booked_at !== 'string' || Date.parse(b.booked_at) >= since);
  const found = items.filter(mine);
  const made = found.find((b) => b.status === 'booked') ?? found[0];
  if (made) return carriedOut(command, ctx, { vendorIds: [vendorId(made.id)!], alreadyDone: true }, res);
  const sentAt = sent.at === undefined ? Number.NaN : Date.parse(sent.at);
  if (Number.isNaN(sentAt)) {
    // A mark without its time (an earlier version's): the wait starts now.
    await ctx.commandState.set(attemptKey(command), {
      sent: { ...sent, at: new Date().toISOString() },
    } as unknown as JsonValue);
    return notListedYet(BOOK_LOOKUP, BOOK_SETTLE_MS);
  }
  const wait = sentAt + BOOK_SETTLE_MS - Date.now();
  return wait > 0 ? notListedYet(BOOK_LOOKUP, wait) : undefined;
}

async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const d = command.data;
  // Also here: a command the hub accepted before the connector refused it up front.
  const lacks = bookLacks(d);
  if (lacks !== undefined) return { outcome: 'permanent', message: lacks };
  // bookLacks checked the three ids and the service (and, below, the patient's name and phone and
  // the duration).
  const place = placeOf(d as unknown as JsonObject)!;
  const service = d.service!.id;
  const earlier = await attemptOf(command, ctx);
  const again = await replayed(command, ctx, earlier);
  if (again) return again;
  const p = d.patient;
  const patient: JsonObject = { name: (p.given ?? p.name)!, phone: p.phone! };
  if (p.family !== undefined) patient.surname = p.family;
  if (p.email !== undefined) patient.email = p.email;
  if (p.birthDate !== undefined) patient.birth_date = p.birthDate;
  if (p.nationalId !== undefined) patient.nin = p.nationalId;
  if (p.gender !== undefined && DP_GENDER[p.gender]) patient.gender = DP_GENDER[p.gender]!;
  const body: JsonObject = {
    address_service_id: service,
    duration: d.durationMinutes!,
    is_returning: p.isReturning ?? false,
    patient,
  };
  if (d.comment !== undefined) body.comment = d.comment;
  const vendor = isJsonObject(d.vendor as JsonValue) ? (d.vendor as JsonObject) : {};
  for (const key of ['insurance_provider_id', 'insurance_plan_id'] as const) {
    // Strings in Docplanner's BookSlotRequest, whichever the sender gave.
    if (typeof vendor[key] === 'string' || typeof vendor[key] === 'number') body[key] = String(vendor[key]);
  }
  const unknown = earlier && 'sent' in earlier ? earlier.sent : undefined;
  if (unknown) {
    const checked = await madeEarlier(command, ctx, place, patient, unknown);
    if (checked) return checked;
  }
  // Sent again: the first send's time stays, so the booking it may still have made is not left
  // out as made before this command.
  const first = unknown?.first ?? unknown?.at;
  const res = await sendWrite(
    command,
    ctx,
    {
      method: 'POST',
      url: `${placePath(ctx.config, place)}/slots/${encodeURIComponent(vendorTime(d.start))}/book`,
      json: body,
    },
    first === undefined ? {} : { first },
    unknown,
  );
  if (!ok(res)) {
    if (unknown && (res.status === 404 || res.status === 422)) {
      // The slot is taken (bookSlot's 404, or FACTS.md's "422 when the slot cannot be booked"): by
      // the earlier try, landed after the wait ({@link BOOK_SETTLE_MS})? Looked for once more, the
      // wait over, before the command fails on the refusal (on a 422 it failed at once, its own
      // booking left at Docplanner).
      const found = await madeEarlier(command, ctx, place, patient, { first, at: new Date(0).toISOString() });
      if (found) return found;
    }
    return unsuccessfulWrite(
      command,
      ctx,
      'book',
      res,
      "the next try looks for the booking among the slot's bookings before it books again",
      unknown,
    );
  }
  const result = createdOutcome('Docplanner book', res, (body) => body.id);
  if (result.outcome !== 'done') {
    // A 2xx without the booking's id (a proxy's HTML page, an answer without `id`) says neither that
    // it booked nor that it did not: transient, as a 5xx that does not say; the `sent` mark stays,
    // so the next try looks for the booking before it books again.
    return result;
  }
  return carriedOut(command, ctx, { vendorIds: result.vendorIds ?? [] }, res);
}

async function cancel(command: CommandRequest<'appointment.cancel'>, ctx: Ctx): Promise<CommandResult> {
  const t = await target(command, ctx);
  if ('outcome' in t) return t;
  const res = await docplannerApi(api(ctx), {
    method: 'DELETE',
    url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}`,
    ...(command.data.reason !== undefined ? { json: { reason: command.data.reason } } : {}),
  });
  // A 2xx is done, unless it is a proxy's or a maintenance page (transient: commandOutcome).
  const result = failure('cancel', res);
  if (result.outcome === 'permanent') {
    // A repeated cancel (after a crash, or the patient cancelled meanwhile): done if it is canceled.
    const now = await readBooking(ctx, t.place, t.booking);
    if (ok(now) && isJsonObject(now.body) && now.body.status === 'canceled') {
      // Canceled through the API (this command's earlier try, another integration), or a
      // cancellation the hub has heard of: done. Canceled by the patient or the doctor and not
      // heard of yet, it may be a move's: a booking moved in Docplanner reads canceled by its
      // mover, and the appointment goes on under the new booking that Docplanner's booking-moved
      // names. Done "already" here, the CRM was told the appointment was cancelled while the new
      // booking stayed booked (vendor-realism audit). Waiting for the notification tells which:
      // a cancellation makes it done, a move points the next try at the new booking.
      // Not from the move chain (readBooking): that a booking canceled by the patient was not moved
      // would make this cancel done before Docplanner's notification of the patient's cancellation,
      // which the hub would then take for this command's echo (data.causedBy) and subscribers skip.
      if (now.body.canceled_by === 'integration' || ctx.current?.status === 'cancelled') {
        return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
      }
      const by =
        typeof now.body.canceled_by === 'string' && now.body.canceled_by !== ''
          ? now.body.canceled_by
          : 'someone';
      return {
        outcome: 'transient',
        message: `booking ${t.booking} reads canceled at Docplanner (by the ${by}) and the hub has no notification of it yet: a cancellation, or a move that canceled it for a new booking; waiting for Docplanner's notification to tell which (a cancellation makes this cancel done, a move sends it to the new booking)`,
        vendor: { status: res.status, body: res.body },
      };
    }
  }
  return result;
}

async function reschedule(
  command: CommandRequest<'appointment.reschedule'>,
  ctx: Ctx,
): Promise<CommandResult> {
  // Its own recorded result first: a move done without its new id marks the appointment
  // (movePendingKey), and that mark must not hold back the command that wrote it.
  const earlier = await attemptOf(command, ctx);
  const again = await replayed(command, ctx, earlier);
  if (again) return again;
  const t = await target(command, ctx);
  if ('outcome' in t) return t;
  const d = command.data;
  const service = d.service?.id ?? idOf(ctx.current?.service);
  if (!service) {
    return {
      outcome: 'permanent',
      message: 'Docplanner needs the address service of the move (data.service.id)',
    };
  }
  if (earlier && 'sent' in earlier) {
    const checked = await checkMove(command, ctx, t, earlier.sent, d.location?.id);
    if (checked) return checked;
  }
  const body: JsonObject = { start: vendorTime(d.start), address_service_id: service };
  if (d.location?.id !== undefined) body.address_id = d.location.id;
  if (d.durationMinutes !== undefined) body.duration = d.durationMinutes;
  const res = await sendWrite(
    command,
    ctx,
    {
      method: 'POST',
      url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}/move`,
      json: body,
    },
    {
      booking: t.booking,
      place: t.place,
      ...(typeof ctx.current?.start === 'string' ? { start: ctx.current.start } : {}),
    },
    earlier && 'sent' in earlier ? earlier.sent : undefined,
  );
  if (!ok(res)) {
    const failed = await unsuccessfulWrite(
      command,
      ctx,
      'move',
      res,
      'the next try re-reads the booking before moving it again',
      earlier && 'sent' in earlier ? earlier.sent : undefined,
    );
    return unlessMovedMeanwhile(ctx, t, failed);
  }
  const located = locatedBooking(res.headers.location);
  if (!isJsonObject(res.body) && located === undefined) {
    // Neither a Booking nor a Location: a proxy's or a maintenance page's 2xx, no proof that
    // Docplanner moved anything, nor that it did not. Transient, as for a book (core's
    // createdOutcome); the `sent` mark stays, so the next try re-reads the booking (its move chain
    // names the new booking if it moved) before it moves anything. Failed for good before, as
    // "moved but answered without its new id", and the appointment waited for a notification
    // that no move would send.
    return createdOutcome('Docplanner move', res, (body) => body.id);
  }
  const answer = isJsonObject(res.body) ? res.body : {};
  const id = vendorId(answer.id) ?? located?.booking;
  if (id === undefined) {
    // Moved, new id unknown: the `sent` mark stays, so a retry checks the old booking, never moves
    // blind; and the appointment waits for the move's notification, as after a lost answer.
    await markMovePending(command, ctx, t.booking);
    return {
      outcome: 'permanent',
      message: 'Docplanner moved the booking but answered without its new id',
      vendor: { status: res.status, body: res.body },
    };
  }
  const place = movedTo(t.place, answer, d.location?.id, located);
  return carriedOut(command, ctx, { vendorIds: [id], ...(samePlace(place, t.place) ? {} : { place }) }, res);
}

/**
 * A write on a booking Docplanner refused (a 4xx): when the booking's move chain names a newer
 * booking, it was moved at Docplanner (by staff, by the patient) before the hub heard of the move,
 * and the refusal says nothing of the appointment, which goes on under the new booking. The command
 * then waits for Docplanner's booking-moved notification, whose alias sends its next try to the new
 * booking, as a cancel does; it failed for good with Docplanner's "already canceled or moved" (a
 * commands audit). Any other refusal stands.
 */
async function unlessMovedMeanwhile(
  ctx: Ctx,
  t: { booking: string; place: Place },
  refused: CommandResult,
): Promise<CommandResult> {
  if (refused.outcome !== 'permanent') return refused;
  const now = await readBooking(ctx, t.place, t.booking);
  const newest = ok(now) && isJsonObject(now.body) ? newestOf(now.body) : undefined;
  if (newest === undefined || newest === t.booking) return refused;
  return {
    outcome: 'transient',
    message: `booking ${t.booking} was moved at Docplanner to booking ${newest}, which the hub has no notification of yet: waiting for Docplanner's booking-moved notification to send this to the new booking`,
    ...(refused.vendor ? { vendor: refused.vendor } : {}),
  };
}

/** A vendor id Docplanner may write as a number, as a string. */
export function vendorId(value: JsonValue | undefined): string | undefined {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The booking a `Location` header names (`…/facilities/{f}/doctors/{d}/addresses/{a}/bookings/{id}`,
 * absolute or not): moveBooking answers 201 with one, the resource URL of the new booking, which
 * "names the doctor the booking now belongs to" (API 1.13.0).
 */
function locatedBooking(location: string | undefined): (Place & { booking: string }) | undefined {
  const m =
    location === undefined
      ? null
      : /\/facilities\/([^/?#]+)\/doctors\/([^/?#]+)\/addresses\/([^/?#]+)\/bookings\/([^/?#]+)/.exec(
          location,
        );
  if (!m) return undefined;
  try {
    const [facility, doctor, address, booking] = m.slice(1, 5).map((p) => decodeURIComponent(p!)) as [
      string,
      string,
      string,
      string,
    ];
    return { facility, doctor, address, booking };
  } catch {
    return undefined; // a malformed escape: the header says nothing usable
  }
}

/**
 * Where a move put the new booking. Since API 1.13.0 a move's `address_id` may be an address of
 * another doctor in the facility, which reassigns the booking to that doctor; the answer's
 * `Location` header (the new booking's resource URL) names the doctor and address, and is taken
 * first: keeping the old doctor, the next command on the booking went to a path Docplanner refuses
 * (403, "This address does not belong to this doctor"). Without the header, an answer that names
 * them (`doctor` / `address` objects as in the notifications' booking objects, or `doctor_id` /
 * `address_id`) is taken; else the address the move asked for (`address_id`, else the old one) with
 * the old booking's doctor, which the move's notification corrects. The facility is the path's
 * (Docplanner refuses an address outside it, 403).
 */
function movedTo(
  from: Place,
  answer: JsonObject,
  address: string | undefined,
  located: Place | undefined,
): Place {
  if (located) return { facility: from.facility, doctor: located.doctor, address: located.address };
  const doctor = isJsonObject(answer.doctor) ? vendorId(answer.doctor.id) : vendorId(answer.doctor_id);
  const at = isJsonObject(answer.address) ? vendorId(answer.address.id) : vendorId(answer.address_id);
  return { facility: from.facility, doctor: doctor ?? from.doctor, address: at ?? address ?? from.address };
}

/**
 * The status a presence mark leaves (`presence-marked` PRESENT is `arrived`, ABSENT `noshow`): when
 * the hub already knows the appointment so before the call, the mark changes nothing and the command
 * is `unchanged` (no echo taken). Docplanner's answer (204) does not tell a repeat from a change; if
 * it notifies the repeat all the same (not documented), its `appointment.arrived` comes unmarked,
 * saying what the sender asked: nothing lost, where taking the next notification (staff marking the
 * patient absent, then present again) as the echo lost the staff's change for a sender skipping echoes.
 */
const PRESENCE_STATUS = { POST: 'arrived', DELETE: 'noshow' } as const;

function presence(method: 'POST' | 'DELETE') {
  return async (command: CommandRequest, ctx: Ctx): Promise<CommandResult> => {
    const t = await target(command, ctx);
    if ('outcome' in t) return t;
    const already = ctx.current?.status === PRESENCE_STATUS[method];
    const res = await docplannerApi(api(ctx), {
      method,
      url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}/presence/patient`,
    });
    // Marking present (or absent) twice leaves the same state: both calls are idempotent.
    const result = failure(method === 'POST' ? 'presence' : 'absence', res);
    if (result.outcome === 'done') return unchangedWhen(result, already);
    return unlessMovedMeanwhile(ctx, t, result);
  };
}

/**
 * Docplanner's `confirmed_by` for a confirm's actor: `user` (Docplanner's word for the patient, as
 * in `booked_by`) when the patient confirmed; `admin` (the clinic) for any other actor, and when none
 * is given: the command comes from the clinic's system, so "the clinic confirmed" is true of every
 * confirm, "the patient did" only when the sender says so.
 */
function confirmedBy(data: CommandRequest<'appointment.confirm'>['data']): 'user' | 'admin' {
  return data.actor?.kind === 'patient' ? 'user' : 'admin';
}

/**
 * Docplanner's 409 for a booking confirmed before, by its reference's English words
 * (ConfirmBookingAlreadyConfirmed: "Visit has already been confirmed"): the fast path. confirmBooking
 * answers 409 for three other conflicts too ("Visit has been canceled", "… deleted", "… is in the
 * past"), and its sites are in many languages, so any other 409 is decided by the booking's data
 * ({@link afterConfirmConflict}), not by words.
 */
function alreadyConfirmed(res: VendorResponse): boolean {
  return (
    res.status === 409 &&
    isJsonObject(res.body) &&
    typeof res.body.message === 'string' &&
    /\balready\b.*\bconfirmed\b/i.test(res.body.message)
  );
}

/**
 * A confirm answered 409 in words other than {@link alreadyConfirmed}'s (reworded, localized, or
 * another conflict): the booking's data decides. getBooking tells no confirmation (its extensions
 * are `booking.moving` and `address_service.public_insurance_flow`, API reference 1.14.0);
 * getBookings does, with `with=booking.confirmation` (API 1.4.1: `confirmed` per booking). So the
 * booking is re-read ({@link readBooking}: its status, start and move chain) and then listed at its
 * start:
 * - moved at Docplanner (its chain names a newer booking): transient, waiting for the move's
 *   notification, as {@link unlessMovedMeanwhile};
 * - not `booked` (canceled, deleted: a 404): the refusal stands, the status named;
 * - listed `confirmed: true`: done (`alreadyDone`), whatever the 409 said;
 * - listed `confirmed: false`: the refusal stands (a visit in the past, say), its words kept;
 * - anything else cannot tell, and says which read could not: a read that did not answer (5xx,
 *   408, 429) is transient, tried again; one refused, or a list that leaves the booking or its
 *   `confirmed` out, fails the command permanently, naming what was missing.
 */
async function afterConfirmConflict(
  ctx: Ctx,
  t: { booking: string; place: Place },
  res: VendorResponse,
): Promise<CommandResult> {
  const refused = failure('confirm', res);
  if (refused.outcome !== 'permanent') return refused;
  const vendor = { status: res.status, body: res.body };
  const words =
    isJsonObject(res.body) && typeof res.body.message === 'string' ? ` "${res.body.message}"` : '';
  const unknown = `Docplanner refused the confirm (409${words}) in words the hub does not take for "already confirmed"`;
  const stands = (why: string): CommandResult => ({ ...refused, message: `${refused.message} (${why})` });
  const cannotTell = (why: string, answer: VendorResponse): CommandResult => {
    const retry = failure('read', answer);
    if (retry.outcome === 'transient') {
      return {
        ...retry,
        message: `${unknown}, and ${why} answered ${answer.status}: checked again on the next try`,
        vendor,
      };
    }
    return {
      outcome: 'permanent',
      message: `${unknown}, and ${why}${ok(answer) ? '' : ` answered ${answer.status}`}: whether it is confirmed cannot be told, so the confirm is not taken as done`,
      vendor,
    };
  };
  const now = await readBooking(ctx, t.place, t.booking);
  if (now.status === 404) return stands(`booking ${t.booking} reads as not found`);
  if (!ok(now) || !isJsonObject(now.body)) {
    return cannotTell(`re-reading booking ${t.booking} to tell whether it is confirmed`, now);
  }
  const read = now.body;
  const newest = newestOf(read);
  if (newest !== undefined && newest !== t.booking) {
    return {
      outcome: 'transient',
      message: `booking ${t.booking} was moved at Docplanner to booking ${newest}, which the hub has no notification of yet: waiting for Docplanner's booking-moved notification to send this to the new booking`,
      vendor,
    };
  }
  if (read.status !== 'booked') {
    return stands(
      `booking ${t.booking} reads ${typeof read.status === 'string' ? read.status : 'without a status'}`,
    );
  }
  const start = typeof read.start_at === 'string' ? read.start_at : undefined;
  if (start === undefined) {
    return cannotTell(`booking ${t.booking} reads without its start (start_at), so it cannot be listed`, now);
  }
  const end =
    typeof read.end_at === 'string'
      ? read.end_at
      : later(start, typeof read.duration === 'number' ? read.duration : 0);
  const query = new URLSearchParams({ start, end, with: 'booking.confirmation' });
  const listed = await docplannerApi(api(ctx), {
    method: 'GET',
    url: `${placePath(ctx.config, t.place)}/bookings?${query}`,
  });
  const items = ok(listed) && isJsonObject(listed.body) ? listed.body._items : undefined;
  if (!Array.isArray(items)) {
    return cannotTell(
      ok(listed)
        ? 'its booking list (getBookings with=booking.confirmation) answered without _items'
        : 'listing the booking to tell whether it is confirmed',
      listed,
    );
  }
  const item = items.find((b): b is JsonObject => isJsonObject(b) && vendorId(b.id) === t.booking);
  if (item?.confirmed === true) return { outcome: 'done', alreadyDone: true, vendor };
  if (item?.confirmed === false) return stands(`booking ${t.booking} reads booked and not confirmed`);
  return cannotTell(
    `its booking list (getBookings with=booking.confirmation) ${item ? `lists booking ${t.booking} without \`confirmed\`` : `does not list booking ${t.booking} at its start`}`,
    listed,
  );
}

/**
 * `PUT …/bookings/{id}/confirm` (confirmBooking, API 1.9.0) with its one, required field
 * `confirmed_by`. Confirming is idempotent in effect and Docplanner tells a repeat apart (409: by
 * its English words at once, {@link alreadyConfirmed}, else by the booking's data,
 * {@link afterConfirmConflict}), so a try whose answer was lost is simply sent again: the next
 * answer is either 204 or "already confirmed", both done. No record of the attempt is kept, unlike
 * book and move, whose repeat would book or move twice.
 */
async function confirm(command: CommandRequest<'appointment.confirm'>, ctx: Ctx): Promise<CommandResult> {
  const t = await target(command, ctx);
  if ('outcome' in t) return t;
  const res = await docplannerApi(api(ctx), {
    method: 'PUT',
    url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}/confirm`,
    json: { confirmed_by: confirmedBy(command.data) },
  });
  const result = failure('confirm', res);
  if (result.outcome !== 'permanent') return result; // done, or a 5xx / a maintenance page: transient
  if (alreadyConfirmed(res)) {
    return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
  }
  if (res.status === 409) return afterConfirmConflict(ctx, t, res);
  // A 400 or 403 on a booking moved at Docplanner the hub has not heard of yet: the confirm then
  // waits for the move's notification and goes to the new booking.
  return unlessMovedMeanwhile(ctx, t, result);
}

/**
 * The Docplanner command handlers. `appointment.clear_presence`: Docplanner's API has no call that
 * removes a presence or absence mark (see {@link presence}).
 */
export const commands: CommandSpec<Config> = {
  'appointment.book': book,
  'appointment.cancel': cancel,
  'appointment.reschedule': reschedule,
  'appointment.confirm': confirm,
  'appointment.mark_arrived': presence('POST'),
  'appointment.mark_no_show': presence('DELETE'),
};
