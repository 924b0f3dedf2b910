/**
 * Cliniko commands, through its REST API (Basic auth, the key as user name;
 * https://github.com/redguava/cliniko-api, sections/individual_appointments.md):
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST /individual_appointments` `{ starts_at, ends_at?, patient_id, practitioner_id, appointment_type_id, business_id, notes? }` |
 * | appointment.cancel | `PATCH /individual_appointments/{id}/cancel` `{ cancellation_reason, cancellation_note? }` (204) |
 * | appointment.reschedule | `PATCH /individual_appointments/{id}` (docs.api.cliniko.com; the 2020 docs' PUT is no longer named) `{ starts_at, ends_at }` (the known length kept unless `durationMinutes` is given) |
 * | appointment.mark_arrived | `PATCH /individual_appointments/{id}` `{ patient_arrived: true, did_not_arrive: false }` (else the attendee's `arrived: true`) |
 * | appointment.mark_no_show | `PATCH /individual_appointments/{id}` `{ patient_arrived: false, did_not_arrive: true }` (else the attendee's `arrived: false`) |
 * | appointment.clear_presence | `PATCH /individual_appointments/{id}` `{ patient_arrived: false, did_not_arrive: false }` (else the attendee's `arrived: null`) |
 * | appointment.update | `PATCH /individual_appointments/{id}` `{ notes }` (`data.comment`) |
 *
 * Cliniko cannot deduplicate a booking: a try marks it in the command's state before the POST, and
 * a later try after an unanswered POST looks the booking up (patient, practitioner, start) instead
 * of posting again, and posts again only once the last POST can no longer land ({@link stillLanding});
 * a POST sent again and refused looks once more (the first may have landed meanwhile). The other writes set a value: sent again after a lost answer, they leave the same
 * state, so they keep no record.
 */
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  commandOutcome,
  createdOutcome,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  nextSendMark,
  provesNotCarriedOut,
  refusedResendLookedUp,
  sendNotCarriedOut,
  sendTimes,
  stillLanding,
  unchangedWhen,
  type VendorResponse,
} from '@switchyard/core';
import { apiBase, apiHeaders, type Config, clinikoTime, DEFAULT_CANCELLATION_REASON } from './config.ts';
import { retryAfterMs } from './pull.ts';

export type Ctx = CommandContext<Config>;

/** Cliniko's error text: `{ "errors": { "starts_at": ["is taken"] } }` or `{ "message": "…" }`. */
function said(res: VendorResponse): string | undefined {
  const body = res.body;
  if (!isJsonObject(body)) return typeof body === 'string' && body !== '' ? body.slice(0, 200) : undefined;
  if (typeof body.message === 'string') return body.message;
  if (isJsonObject(body.errors)) {
    return Object.entries(body.errors)
      .map(
        ([field, problems]) => `${field} ${Array.isArray(problems) ? problems.join(', ') : String(problems)}`,
      )
      .join('; ');
  }
  return undefined;
}

/**
 * {@link commandOutcome} with Cliniko's wait: a 429 says it in `X-RateLimit-Reset`, not Retry-After.
 * With `idOf`, a write whose answer must name what it made ({@link createdOutcome}).
 */
export function outcome(
  what: string,
  res: VendorResponse,
  idOf?: (body: JsonObject) => JsonValue | undefined,
): CommandResult {
  const result = idOf ? createdOutcome(what, res, idOf, said(res)) : commandOutcome(what, res, said(res));
  if (result.outcome !== 'transient') return result;
  const after = retryAfterMs(res);
  return after === undefined ? result : { ...result, retryAfterMs: after };
}

/**
 * The `key` list of a lookup's answer; undefined unless it answered 200 with it. A 200 without the
 * list (a proxy's maintenance page, a body of another shape) was taken as an empty list: nothing
 * found, the lost create was sent again once the wait was over, made twice when it had landed.
 */
export function listed(res: VendorResponse, key: string): JsonValue[] | undefined {
  if (res.status !== 200 || !isJsonObject(res.body)) return undefined;
  const list = res.body[key];
  return Array.isArray(list) ? list : undefined;
}

/** The outcome of a lookup that did not answer its list: never done, nothing is sent blind. */
export function lookupFailed(what: string, res: VendorResponse): CommandResult {
  const result = outcome(what, res);
  return result.outcome === 'done'
    ? {
        outcome: 'transient',
        message: `${what} answered ${res.status} without the list`,
        vendor: result.vendor,
      }
    : result;
}

function current(ctx: Ctx): string | undefined {
  return ctx.vendorIds.at(-1);
}

const noId: CommandResult = {
  outcome: 'permanent',
  message: 'the appointment has no Cliniko id at this instance',
};

/** What `appointment.book` needs that the normalized command makes optional. */
export function bookUnsupported(command: CommandData): string | undefined {
  if (command.type !== 'appointment.book') return undefined;
  const missing = [
    command.data.patient.id === undefined ? 'patient.id (the Cliniko patient)' : undefined,
    command.data.practitioner === undefined ? 'practitioner.id' : undefined,
    command.data.location === undefined ? 'location.id (the Cliniko business)' : undefined,
    command.data.service === undefined ? 'service.id (the Cliniko appointment type)' : undefined,
  ].filter((m) => m !== undefined);
  return missing.length > 0 ? `Cliniko books only with ${missing.join(', ')}` : undefined;
}

function endOf(start: string, minutes: number | undefined): string | undefined {
  return minutes === undefined ? undefined : clinikoTime(Date.parse(start) + minutes * 60_000);
}

/** A live appointment (not cancelled, deleted or archived) starting at `at`. */
function startsLiveAt(item: JsonValue, at: string): item is JsonObject {
  return (
    isJsonObject(item) &&
    typeof item.starts_at === 'string' &&
    Date.parse(item.starts_at) === Date.parse(at) &&
    !item.cancelled_at &&
    !item.deleted_at &&
    !item.archived_at
  );
}

const SENT = 'cliniko:book-sent';

/**
 * How long before an earlier try's first POST a booking found by the lookup may have been made and
 * still be that try's: the hub's and Cliniko's clocks may differ by this much. A live appointment of
 * the same patient, practitioner and start made before that (booked by the front desk, by another
 * integration) is not what the lost POST made: adopted, the command succeeded with a booking it did
 * not make, as Docplanner's and BookingBug's lookups already refused (a docs review).
 */
export const BOOK_CLOCK_SKEW_MS = 5 * 60_000;

/** Whether Cliniko made `item` after an earlier try first sent the booking (less the clocks' skew). */
export function madeSince(item: JsonObject, sentAt: number | undefined): boolean {
  // A mark written before the time was kept (`true`) cannot tell: as before, any live one counts.
  if (sentAt === undefined) return true;
  const created = typeof item.created_at === 'string' ? Date.parse(item.created_at) : Number.NaN;
  return !Number.isNaN(created) && created >= sentAt - BOOK_CLOCK_SKEW_MS;
}

/**
 * The booking an earlier try of this command made (`GET /individual_appointments` by patient,
 * practitioner and start): done with its id (`alreadyDone`); undefined when none is listed; a
 * lookup that did not answer its list is the outcome (nothing is sent blind).
 */
async function madeEarlier(
  ctx: Ctx,
  d: CommandRequest<'appointment.book'>['data'],
  start: string,
  sentAt: number | undefined,
): Promise<CommandResult | undefined> {
  // Cliniko's DateTime filters have no `=` (only >=, >, <=, <): the start is pinned by both ends.
  const query = new URLSearchParams();
  query.append('q[]', `patient_id:=${d.patient.id}`);
  query.append('q[]', `practitioner_id:=${d.practitioner!.id}`);
  query.append('q[]', `starts_at:>=${start}`);
  query.append('q[]', `starts_at:<=${start}`);
  const found = await ctx.http.request({
    url: `${apiBase(ctx.config)}/individual_appointments?${query}`,
    headers: apiHeaders(ctx.config),
  });
  const items = listed(found, 'individual_appointments');
  if (!Array.isArray(items)) return lookupFailed('Cliniko booking lookup', found);
  // Checked again here: a cancelled booking of the same slot is not the one this try made, nor
  // one made before it was first sent.
  const made = items.find((item): item is JsonObject => startsLiveAt(item, start) && madeSince(item, sentAt));
  return made ? { outcome: 'done', alreadyDone: true, vendorIds: [String(made.id)] } : undefined;
}

async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const refused = bookUnsupported(command);
  if (refused) return { outcome: 'permanent', message: refused };
  const d = command.data;
  const start = clinikoTime(d.start);
  const mark = await ctx.commandState.get(SENT);
  const { first: sentAt, last } = sendTimes(mark);
  if (mark !== undefined) {
    // An earlier try's POST went out and its answer was lost: look for the booking it made.
    const made = await madeEarlier(ctx, d, start, sentAt);
    if (made) return made;
    // Not listed yet while the last POST may still land: posted again at once, it booked twice.
    const landing = stillLanding('booking', last);
    if (landing) return landing;
  }
  // The first send's time stays: a later try that sends again must still find what the first made.
  await ctx.commandState.set(SENT, nextSendMark(mark));
  const json: JsonObject = {
    starts_at: start,
    patient_id: d.patient.id!,
    practitioner_id: d.practitioner!.id,
    appointment_type_id: d.service!.id,
    business_id: d.location!.id,
  };
  const ends = endOf(d.start, d.durationMinutes);
  if (ends) json.ends_at = ends;
  if (d.comment) json.notes = d.comment;
  const res = await ctx.http.request({
    method: 'POST',
    url: `${apiBase(ctx.config)}/individual_appointments`,
    headers: apiHeaders(ctx.config),
    json,
  });
  // A 2xx without the appointment's id (a proxy's HTML page) is transient, not done: the mark
  // stays, and the next try looks the booking up before posting again.
  const result = outcome('Cliniko book', res, (body) => body.id);
  if (result.outcome === 'permanent' && mark !== undefined) {
    // Sent again and refused (422, `starts_at` taken): by the earlier try's POST, landed after the
    // lookup above? Looked for once more before the command fails, as Acuity's, BookingBug's and
    // Docplanner's books do; it failed at once before, reported refused while its own earlier
    // booking stood at Cliniko.
    // A lookup that does not answer its list keeps the earlier POST's mark (refusedResendLookedUp).
    const made = await madeEarlier(ctx, d, start, sentAt);
    const settled = await refusedResendLookedUp(ctx.commandState, SENT, mark, made);
    if (settled) return settled;
  }
  // A refusal or a 408/429 says this POST made nothing (a 5xx may have made it: the mark stays for
  // the next try); an earlier POST's unknown outcome keeps its mark all the same.
  if (result.outcome === 'permanent' || provesNotCarriedOut(res)) {
    await sendNotCarriedOut(ctx.commandState, SENT, mark);
  }
  return result;
}

async function cancel(command: CommandRequest<'appointment.cancel'>, ctx: Ctx): Promise<CommandResult> {
  const id = current(ctx);
  if (id === undefined) return noId;
  if (ctx.current?.status === 'cancelled') return { outcome: 'done', alreadyDone: true };
  const json: JsonObject = {
    cancellation_reason: ctx.config.cancellationReason ?? DEFAULT_CANCELLATION_REASON,
  };
  if (command.data.reason) json.cancellation_note = command.data.reason;
  const appointment = `${apiBase(ctx.config)}/individual_appointments/${encodeURIComponent(id)}`;
  const res = await ctx.http.request({
    method: 'PATCH',
    url: `${appointment}/cancel`,
    headers: apiHeaders(ctx.config),
    json,
  });
  // A repeat after a lost answer (the hub does not know it cancelled yet) may be refused: Cliniko
  // documents only the cancel's 204. Refused, the appointment is read, and a cancelled one is done
  // (it failed for good before, the appointment cancelled).
  return unlessAlreadyShown(
    outcome('Cliniko cancel', res),
    res,
    ctx,
    appointment,
    (b) => typeof b.cancelled_at === 'string' && b.cancelled_at !== '',
  );
}

/**
 * The end that keeps the appointment's known length (`current.start` to `current.end`, as the last
 * poll saw it; for one booked through the hub and not polled yet, its book's `durationMinutes`) at
 * the new start; `null` when the hub knows no length, which Cliniko fills from the
 * appointment type ("If ends_at is specified and its value is null, it is automatically set based
 * upon the duration of the appointment_type", sections/individual_appointments.md, "Update
 * Individual Appointment"). Always `null` before: a move without `durationMinutes` cut an
 * appointment the front desk had lengthened (a 60-minute visit of a 30-minute type) back to its
 * type's 30 minutes, freeing the rest of its time for another booking. `ends_at` cannot be left
 * out instead: the update would keep the old end, before or long after the new start.
 */
function keptLength(start: string, current: JsonObject | undefined): string | null {
  const from = typeof current?.start === 'string' ? Date.parse(current.start) : Number.NaN;
  const to = typeof current?.end === 'string' ? Date.parse(current.end) : Number.NaN;
  if (to > from) return clinikoTime(Date.parse(start) + (to - from));
  // Booked through the hub and not polled yet: the known state is the booking command's data.
  const minutes = current?.durationMinutes;
  return typeof minutes === 'number' && minutes > 0 ? (endOf(start, minutes) ?? null) : null;
}

async function reschedule(
  command: CommandRequest<'appointment.reschedule'>,
  ctx: Ctx,
): Promise<CommandResult> {
  const id = current(ctx);
  if (id === undefined) return noId;
  const appointment = `${apiBase(ctx.config)}/individual_appointments/${encodeURIComponent(id)}`;
  const already = await movedBefore(ctx, appointment, command.data.start);
  if (already) return already;
  const json: JsonObject = { starts_at: clinikoTime(command.data.start) };
  json.ends_at =
    endOf(command.data.start, command.data.durationMinutes) ?? keptLength(command.data.start, ctx.current);
  const res = await ctx.http.request({
    method: 'PATCH',
    url: appointment,
    headers: apiHeaders(ctx.config),
    json,
  });
  return outcome('Cliniko reschedule', res);
}

/** Set in the command's state before the move's PATCH goes out: a later try reads first. */
const MOVE_SENT = 'cliniko:move-sent';

/**
 * After an earlier try of this move sent its PATCH (the {@link MOVE_SENT} mark, set before it;
 * the mark, not the attempt number, tells a later try: a manual retry counts from 1 again), whether
 * the appointment already starts at `start` (`GET /individual_appointments/{id}`): done, nothing
 * sent again. Sent again unread, a PATCH whose answer was lost wrote its `ends_at` over a length
 * staff set in between (and its start over a move they made after it landed). A read that fails
 * is the outcome (never done: a 200 without the appointment is transient); a 404 or other refusal
 * leaves the answer to the PATCH. Undefined: not known to be there, send.
 */
async function movedBefore(ctx: Ctx, appointment: string, start: string): Promise<CommandResult | undefined> {
  if ((await ctx.commandState.get(MOVE_SENT)) === undefined) {
    await ctx.commandState.set(MOVE_SENT, true);
    return undefined;
  }
  const read = await ctx.http.request({ url: appointment, headers: apiHeaders(ctx.config) });
  const result = outcome('Cliniko appointment read', read, (body) => body.id);
  if (result.outcome === 'transient') return result;
  if (result.outcome === 'permanent') return undefined;
  const startsAt = (read.body as JsonObject).starts_at;
  return typeof startsAt === 'string' && Date.parse(startsAt) === Date.parse(start)
    ? { outcome: 'done', alreadyDone: true, vendor: { status: read.status, body: read.body } }
    : undefined;
}

/**
 * The presence flags each presence command leaves on the appointment, and the same as an attendee's
 * `arrived`, the one field Cliniko documents for both ("a combination of both patient_arrived and
 * did_not_arrive", github.com/redguava/cliniko-api/issues/153; `PUT /attendees/{id}` with
 * `{ "arrived": true }`, sections/attendees.md). Each sets both flags: Cliniko keeps two, and a
 * no-show left set beside a new arrival would still read as a no-show.
 */
const PRESENCE = {
  'appointment.mark_arrived': {
    what: 'arrival',
    flags: { patient_arrived: true, did_not_arrive: false },
    arrived: true,
    status: 'arrived',
  },
  'appointment.mark_no_show': {
    what: 'no-show',
    flags: { patient_arrived: false, did_not_arrive: true },
    arrived: false,
    status: 'noshow',
  },
  'appointment.clear_presence': {
    what: 'presence clearing',
    flags: { patient_arrived: false, did_not_arrive: false },
    arrived: null,
    status: 'booked',
  },
} as const;

type PresenceCommand = keyof typeof PRESENCE;

/**
 * Whether an answered appointment shows `flags` (`false` read as not `true`: Cliniko also nulls
 * them). A flag the answer leaves out cannot tell otherwise: counted as shown.
 */
function showsFlags(body: JsonObject, flags: Readonly<Record<string, boolean>>): boolean {
  return Object.entries(flags).every(([flag, wanted]) => !(flag in body) || (body[flag] === true) === wanted);
}

/**
 * Sets the appointment's presence flags by `PATCH /individual_appointments/{id}`. Cliniko's
 * reference lists both flags on the appointment but does not say the update writes them; a Rails
 * API answers 200 leaving a parameter it does not permit as it was. So the answer is read: when it
 * shows the flags otherwise, they are set through the appointment's attendee instead (`GET
 * …/{id}/attendees`, then `PUT /attendees/{attendee id}` with `arrived`), the documented write.
 */
/**
 * Answers by which Cliniko might refuse a write that finds its value already there (a repeat after
 * a lost answer). Its documentation does not say what a repeat answers; Rails' update answers 200.
 */
const MAY_REFUSE_REPEAT = new Set([400, 409, 422]);

/**
 * After a refusal that may be a repeat's ({@link MAY_REFUSE_REPEAT}): reads the appointment, and the
 * write counts as done when it already shows what was asked; else the refusal stands, its words kept.
 */
async function unlessAlreadyShown(
  refused: CommandResult,
  res: VendorResponse,
  ctx: Ctx,
  appointment: string,
  shows: (body: JsonObject) => boolean,
): Promise<CommandResult> {
  if (refused.outcome !== 'permanent' || !MAY_REFUSE_REPEAT.has(res.status)) return refused;
  const read = await ctx.http.request({ url: appointment, headers: apiHeaders(ctx.config) });
  return read.status === 200 && isJsonObject(read.body) && shows(read.body)
    ? { outcome: 'done', alreadyDone: true }
    : refused;
}

/** `showsFlags` of a full appointment (a read): every flag there and as asked. */
function holdsFlags(flags: Readonly<Record<string, boolean>>): (body: JsonObject) => boolean {
  return (body) => Object.keys(flags).every((flag) => flag in body) && showsFlags(body, flags);
}

/**
 * Sets the appointment's presence flags, `unchanged` (no echo taken) when the hub already knows
 * the appointment in the status they give (`PRESENCE[type].status`, as the poll normalizes it)
 * before the call: Cliniko saves nothing for a write that changes nothing, and a version polled all
 * the same normalizes to no presence event, the status being the one last seen. Without it the
 * command took the next presence event of its type within the echo window, staff's.
 */
async function setPresence(type: PresenceCommand, ctx: Ctx): Promise<CommandResult> {
  const already = ctx.current?.status === PRESENCE[type].status;
  return unchangedWhen(await writePresence(type, ctx), already);
}

/** Whether a refusal's Rails `errors` name one of `flags` (`{ "errors": { "did_not_arrive": [...] } }`). */
function namesFlag(body: JsonValue | undefined, flags: Readonly<Record<string, boolean>>): boolean {
  const errors = isJsonObject(body) ? body.errors : undefined;
  return isJsonObject(errors) && Object.keys(flags).some((f) => f in errors);
}

/**
 * The PATCH, then the attendee when Cliniko did not take the flags: its 2xx answer shows them
 * otherwise (it ignored them), or it refused the PATCH ({@link MAY_REFUSE_REPEAT}) and a read shows
 * them otherwise. The refusal is what a Cliniko that ignores the flags and refuses an update that
 * changes nothing answers (the update of ignored flags changes nothing); before, the command failed
 * on it without trying the attendee, the documented write. A refusal that names a flag in its
 * `errors` (Rails' validation of that field) shows Cliniko took the flags: it stands. Any other
 * refusal gets the attendee's own answer too, and the command fails with both.
 */
async function writePresence(type: PresenceCommand, ctx: Ctx): Promise<CommandResult> {
  const id = current(ctx);
  if (id === undefined) return noId;
  const { what, flags } = PRESENCE[type];
  const headers = apiHeaders(ctx.config);
  const appointment = `${apiBase(ctx.config)}/individual_appointments/${encodeURIComponent(id)}`;
  const res = await ctx.http.request({ method: 'PATCH', url: appointment, headers, json: { ...flags } });
  const result = outcome(`Cliniko ${what}`, res);
  if (result.outcome === 'permanent') {
    if (!MAY_REFUSE_REPEAT.has(res.status)) return result;
    const read = await ctx.http.request({ url: appointment, headers });
    if (read.status !== 200 || !isJsonObject(read.body)) return result;
    if (holdsFlags(flags)(read.body)) return { outcome: 'done', alreadyDone: true };
    // A refusal naming a flag shows Cliniko read the flags: it stands.
    if (namesFlag(res.body, flags)) return result;
    return viaAttendee(type, ctx, id, appointment, result);
  }
  // A 2xx without the appointment (no JSON) cannot tell: done, as any other write's.
  if (result.outcome !== 'done' || !isJsonObject(res.body) || showsFlags(res.body, flags)) return result;
  return viaAttendee(type, ctx, id, appointment);
}

/**
 * Sets the presence through the appointment's attendee (`GET …/{id}/attendees`, `PUT
 * /attendees/{attendee id}` with `arrived`). `refused`: the PATCH's refusal, kept in the message
 * when the attendee cannot be set either.
 */
async function viaAttendee(
  type: PresenceCommand,
  ctx: Ctx,
  id: string,
  appointment: string,
  refused?: CommandResult,
): Promise<CommandResult> {
  const { what, arrived } = PRESENCE[type];
  const headers = apiHeaders(ctx.config);
  const also = (r: CommandResult): CommandResult =>
    refused !== undefined && r.outcome === 'permanent' && refused.outcome === 'permanent'
      ? { ...r, message: `${refused.message}; set through the attendee instead: ${r.message}` }
      : r;
  const res = await ctx.http.request({ url: `${appointment}/attendees`, headers });
  const attendees = listed(res, 'attendees');
  if (!Array.isArray(attendees)) return also(lookupFailed(`Cliniko attendee lookup for the ${what}`, res));
  const attendee = attendees.find(
    (a): a is JsonObject =>
      isJsonObject(a) && a.id != null && !a.cancelled_at && !a.deleted_at && !a.archived_at,
  );
  if (attendee === undefined) {
    return also({
      outcome: 'permanent',
      message: `Cliniko took the ${what} PATCH without setting patient_arrived / did_not_arrive, and lists no attendee of appointment ${id} to set it on`,
    });
  }
  const put = await ctx.http.request({
    method: 'PUT',
    url: `${apiBase(ctx.config)}/attendees/${encodeURIComponent(String(attendee.id))}`,
    headers,
    json: { arrived },
  });
  return also(outcome(`Cliniko attendee ${what}`, put));
}

/** `data.comment` as the appointment's notes (what `appointment.book` writes it to). */
async function update(command: CommandRequest<'appointment.update'>, ctx: Ctx): Promise<CommandResult> {
  // Also here: a command the hub accepted before the connector refused it up front.
  const unsupported = commandUnsupported(command);
  if (unsupported !== undefined) return { outcome: 'permanent', message: unsupported };
  const id = current(ctx);
  if (id === undefined) return noId;
  const appointment = `${apiBase(ctx.config)}/individual_appointments/${encodeURIComponent(id)}`;
  // The schema's minProperties and the refusal above leave the comment as the one field.
  const notes = command.data.comment!;
  // Notes the hub already knows (the poll's `comment`) save nothing: no version, no echo.
  const already = ctx.current !== undefined && (ctx.current.comment ?? '') === notes;
  const res = await ctx.http.request({
    method: 'PATCH',
    url: appointment,
    headers: apiHeaders(ctx.config),
    json: { notes },
  });
  const result = await unlessAlreadyShown(
    outcome('Cliniko notes update', res),
    res,
    ctx,
    appointment,
    (b) => b.notes === notes,
  );
  return unchangedWhen(result, already);
}

/** The Cliniko command handlers. */
export const commands: CommandSpec<Config> = {
  'appointment.book': book,
  'appointment.cancel': cancel,
  'appointment.reschedule': reschedule,
  'appointment.mark_arrived': (_command, ctx) => setPresence('appointment.mark_arrived', ctx),
  'appointment.mark_no_show': (_command, ctx) => setPresence('appointment.mark_no_show', ctx),
  'appointment.clear_presence': (_command, ctx) => setPresence('appointment.clear_presence', ctx),
  'appointment.update': update,
};

/** Data Cliniko has no place for, refused when the command is accepted. */
export function commandUnsupported(command: CommandData): string | undefined {
  if (command.type === 'appointment.reschedule' && (command.data.location || command.data.service)) {
    return 'Cliniko moves an appointment in time only: create a new booking to change its business or type';
  }
  if (command.type === 'appointment.update' && command.data.customFields !== undefined) {
    return 'Cliniko has no custom fields on an appointment: only data.comment (its notes) can be written';
  }
  return bookUnsupported(command);
}
