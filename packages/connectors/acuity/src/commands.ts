/**
 * Acuity Scheduling commands, through its v1 API (HTTP Basic: userId and API key).
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST /appointments` `{ datetime, appointmentTypeID, calendarID?, firstName, lastName, email?, phone? }` (with `bookAs: admin`: `?admin=true`, `calendarID` required, `notes`); 200 the appointment |
 * | appointment.cancel | `PUT /appointments/{id}/cancel?admin=true` `{ cancelNote? }` (as the client when the patient asks); 200 the appointment, `canceled: true` |
 * | appointment.reschedule | `PUT /appointments/{id}/reschedule` `{ datetime, calendarID? }` (with `bookAs: admin`: `?admin=true`); 200 the appointment |
 *
 * Acuity takes no idempotency key and documents no answer to a repeated call. A booking is marked in
 * the command's state before the POST and, on a later try after an answer that proved nothing,
 * looked up (`GET /appointments` by type, day and client) before it is sent again, and sent again
 * only once the last POST can no longer land
 * (docs/writing-a-connector.md, "Creates whose answer was lost"). A cancel or a move tried again
 * reads the appointment first and is done (`alreadyDone`) when it is already so; a refused cancel
 * reads it too, and is done when it is cancelled (a second cancel may be refused).
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
  nextSendMark,
  provesNotCarriedOut,
  refusedResendLookedUp,
  sendNotCarriedOut,
  sendTimes,
  stillLanding,
  type VendorResponse,
} from '@switchyard/core';
import { readAppointment, rfc3339 } from './appointment.ts';
import { apiBase, apiHeaders, type Config, DEFAULT_BOOK_AS } from './config.ts';
import type { AcuityAppointment } from './vendor.ts';

type Ctx = CommandContext<Config>;

/** Acuity's error text: `{ status_code, message, error }` → `error: message`. */
function said(res: VendorResponse): string | undefined {
  if (!isJsonObject(res.body)) return undefined;
  const { error, message } = res.body;
  const parts = [error, message].filter((p): p is string => typeof p === 'string' && p !== '');
  return parts.length > 0 ? parts.join(': ').slice(0, 300) : undefined;
}

/** The client's names, from `given`/`family` or split from `name`. */
function names(patient: JsonObject): { firstName?: string; lastName?: string } {
  const given = typeof patient.given === 'string' ? patient.given.trim() : '';
  const family = typeof patient.family === 'string' ? patient.family.trim() : '';
  if (given && family) return { firstName: given, lastName: family };
  const name = typeof patient.name === 'string' ? patient.name.trim() : '';
  const cut = name.lastIndexOf(' ');
  return cut > 0 ? { firstName: name.slice(0, cut), lastName: name.slice(cut + 1) } : {};
}

/** Whether the instance books as the clinic's staff ({@link Config.bookAs}). */
function booksAsAdmin(config: Config | undefined): boolean {
  return (config?.bookAs ?? DEFAULT_BOOK_AS) === 'admin';
}

/**
 * What the v1 API cannot do with a command's data: a booking needs the appointment type
 * (`service.id`) and the client's first and last names, and one made as an admin the calendar
 * (`practitioner.id`: "This also requires a valid calendarID"); a move changes the time only.
 * Refused when the command is sent.
 */
export function commandUnsupported(command: CommandData, config?: Config): string | undefined {
  if (command.type === 'appointment.reschedule') {
    const { service, location, durationMinutes } = command.data;
    return service || location || durationMinutes !== undefined
      ? 'Acuity moves an appointment in time only (PUT /appointments/{id}/reschedule takes a datetime): book anew to change its type, place or length'
      : undefined;
  }
  if (command.type !== 'appointment.book') return undefined;
  const missing: string[] = [];
  if (!command.data.service?.id) missing.push('service.id (the appointment type)');
  const { firstName, lastName } = names(command.data.patient as JsonObject);
  if (!firstName || !lastName) missing.push("the patient's first and last names");
  if (booksAsAdmin(config) && !command.data.practitioner?.id) {
    missing.push('practitioner.id (the calendar, which a booking made as an admin needs)');
  }
  return missing.length > 0 ? `Acuity books only with ${missing.join(' and ')}` : undefined;
}

const SENT = 'acuity:book-sent';
/** How far Acuity's clock may be behind the hub's when it stamps the booking a lost POST made. */
export const BOOK_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The dates around an RFC 3339 start, for the list's `minDate`/`maxDate`: Acuity dates an
 * appointment by the account's day (its `datetime` is in the calendar's time, whatever offset the
 * booking was sent with), which is the start's UTC date or the one before or after. The start's own
 * date alone missed a booking sent in UTC or another zone (`…T03:30:00Z`, the 10th at a US
 * account): not found, it was sent again. `isOurs` then holds each listed one to the exact instant.
 */
function daysAround(start: string): { minDate: string; maxDate: string } {
  const at = Date.parse(start);
  const day = (offset: number) => new Date(at + offset * 86_400_000).toISOString().slice(0, 10);
  return { minDate: day(-1), maxDate: day(1) };
}

/** Whether `item` is a live booking of this command's slot and client, made since the first send. */
function isOurs(item: AcuityAppointment, data: CommandRequest<'appointment.book'>['data'], sentAt?: number) {
  const start = rfc3339(item.datetime);
  if (start === undefined || Date.parse(start) !== Date.parse(data.start) || item.canceled === true)
    return false;
  if (String(item.appointmentTypeID) !== data.service?.id) return false;
  // Acuity's documented record dates its creation by day only (`dateCreated`); a record that
  // carries `datetimeCreated` is held to the first send, less the clocks' skew.
  const created = typeof item.datetimeCreated === 'string' ? Date.parse(item.datetimeCreated) : Number.NaN;
  return sentAt === undefined || Number.isNaN(created) || created >= sentAt - BOOK_CLOCK_SKEW_MS;
}

/**
 * The booking an earlier try of this command made (`GET /appointments` by the start's day, the
 * type, the client's names and the calendar): done with its id (`alreadyDone`); undefined when none
 * is listed; a lookup that did not answer with the list is the outcome (nothing is sent blind).
 */
async function madeEarlier(
  ctx: Ctx,
  d: CommandRequest<'appointment.book'>['data'],
  sentAt: number | undefined,
): Promise<CommandResult | undefined> {
  const { firstName, lastName } = names(d.patient as JsonObject);
  const query = new URLSearchParams({
    ...daysAround(d.start),
    appointmentTypeID: d.service!.id,
    firstName: firstName!,
    lastName: lastName!,
  });
  if (d.practitioner?.id) query.set('calendarID', d.practitioner.id);
  const found = await ctx.http.request({
    url: `${apiBase(ctx.config)}/appointments?${query}`,
    headers: apiHeaders(ctx.config),
  });
  if (found.status !== 200 || !Array.isArray(found.body)) {
    const result = commandOutcome('Acuity booking lookup', found, said(found));
    // A 200 that is not the list (a proxy's page): not known, so not sent.
    return result.outcome === 'done'
      ? {
          outcome: 'transient',
          message: 'Acuity booking lookup answered 200 without a list',
          vendor: result.vendor,
        }
      : result;
  }
  const made = (found.body as unknown as AcuityAppointment[]).find(
    (item) => isJsonObject(item as never) && isOurs(item, d, sentAt),
  );
  return made ? { outcome: 'done', alreadyDone: true, vendorIds: [String(made.id)] } : undefined;
}

async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const refused = commandUnsupported(command, ctx.config);
  if (refused) return { outcome: 'permanent', message: refused };
  const d = command.data;
  const { firstName, lastName } = names(d.patient as JsonObject);
  const admin = booksAsAdmin(ctx.config);
  const base = apiBase(ctx.config);
  const headers = apiHeaders(ctx.config);
  const mark = await ctx.commandState.get(SENT);
  const { first: sentAt, last } = sendTimes(mark);
  if (mark !== undefined) {
    // An earlier try's POST went out and its answer proved nothing: look before sending again.
    const made = await madeEarlier(ctx, d, sentAt);
    if (made) return made;
    // Not listed yet while the last POST may still land: posted again at once, it booked twice.
    const landing = stillLanding('booking', last);
    if (landing) return landing;
  }
  // The first send's time stays: a later send must still find what the first one made.
  await ctx.commandState.set(SENT, nextSendMark(mark));
  const json: JsonObject = {
    datetime: d.start,
    appointmentTypeID: Number(d.service!.id),
    firstName: firstName!,
    lastName: lastName!,
  };
  if (d.practitioner?.id) json.calendarID = Number(d.practitioner.id);
  if (d.patient.email) json.email = d.patient.email;
  if (d.patient.phone) json.phone = d.patient.phone;
  // Acuity takes `notes` only on a booking made as an admin ("allows setting the notes attribute").
  if (admin && d.comment) json.notes = d.comment;
  // As an admin, Acuity's client scheduling rules (availability, minimum notice) do not apply: the
  // clinic's own system books what its staff could book in Acuity ({@link Config.bookAs}).
  const url = `${base}/appointments${admin ? '?admin=true' : ''}`;
  const res = await ctx.http.request({ method: 'POST', url, headers, json });
  const result = createdOutcome('Acuity book', res, (body) => body.id, said(res));
  if (result.outcome === 'permanent' && mark !== undefined) {
    // Sent again and refused (400 not_available: the time is taken): by the earlier try, landed
    // after the wait? Looked for once more before the command fails, as Docplanner's book does; it
    // failed at once before, its own earlier booking left at Acuity.
    // A lookup that does not answer its list keeps the earlier POST's mark (refusedResendLookedUp).
    const settled = await refusedResendLookedUp(
      ctx.commandState,
      SENT,
      mark,
      await madeEarlier(ctx, d, sentAt),
    );
    if (settled) return settled;
  }
  // A refusal (Acuity's 400 not_available, …) or a 408/429 proves this POST made nothing: the mark
  // goes, unless an earlier POST's outcome is still unknown (then it stays, with that POST's times).
  if (result.outcome === 'permanent' || provesNotCarriedOut(res)) {
    await sendNotCarriedOut(ctx.commandState, SENT, mark);
  }
  return result;
}

const noId: CommandResult = {
  outcome: 'permanent',
  message: 'the appointment has no Acuity id at this instance',
};

/**
 * After an earlier try of this command sent its write (`sent`, a mark in the command's state set
 * before the PUT), whether the appointment is already as requested (a read; its failure is the
 * outcome). `undefined`: not known to be, send. The mark, not the attempt number, tells a later
 * try: a manual retry counts its tries from 1 again, and a try the hub's database cut short keeps
 * its number; either sent the PUT again unread.
 */
async function alreadyDone(
  ctx: Ctx,
  sent: string,
  id: string,
  done: (record: AcuityAppointment) => boolean,
): Promise<CommandResult | undefined> {
  if ((await ctx.commandState.get(sent)) === undefined) {
    await ctx.commandState.set(sent, true);
    return undefined;
  }
  const { found, res } = await readAppointment(ctx.http, ctx.config, id);
  if (found === undefined) {
    const result = commandOutcome('Acuity read', res, said(res));
    return result.outcome === 'done'
      ? {
          outcome: 'transient',
          message: 'Acuity read answered 200 without the appointment',
          vendor: result.vendor,
        }
      : result;
  }
  return done(found)
    ? { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } }
    : undefined;
}

/**
 * The cancel's query: `?admin=true` unless the patient asks. Acuity cancels "as a client" by
 * default, under the account's client rules (`cancel_not_allowed`, `cancel_too_close`: "Clients
 * are not allowed to cancel this close to the time of the appointment"), and "as an admin ...
 * disables cancellation rules" (developers.acuityscheduling.com/reference/put-appointments-id-cancel).
 * The command comes from the clinic's system, which may cancel when its clients may not (the front
 * desk an hour before the visit: refused before, the command failed for good); only a command that
 * says the patient asks (`actor.kind: patient`, say a patient portal) is held to the client's
 * rules, as Docplanner's confirm records the patient only when the sender says so.
 */
function asAdmin(actor: CommandRequest<'appointment.cancel'>['data']['actor']): string {
  return actor?.kind === 'patient' ? '' : '?admin=true';
}

export const commands: CommandSpec<Config> = {
  'appointment.book': book,

  async 'appointment.cancel'(command, ctx) {
    const id = ctx.vendorIds.at(-1);
    if (id === undefined) return noId;
    const already = await alreadyDone(ctx, 'acuity:cancel-sent', id, (record) => record.canceled === true);
    if (already) return already;
    const json: JsonObject = {};
    if (command.data.reason) json.cancelNote = command.data.reason;
    const res = await ctx.http.request({
      method: 'PUT',
      url: `${apiBase(ctx.config)}/appointments/${encodeURIComponent(id)}/cancel${asAdmin(command.data.actor)}`,
      headers: apiHeaders(ctx.config),
      json,
    });
    const result = commandOutcome('Acuity cancel', res, said(res));
    if (result.outcome !== 'permanent') return result;
    // Refused: a repeat of a cancel that was carried out (the read above saw it before it landed,
    // or someone cancelled it meanwhile)? Acuity's cancel reference does not say what a second
    // cancel answers; a refusal of one failed the command for good, the appointment cancelled.
    const { found } = await readAppointment(ctx.http, ctx.config, id);
    return found?.canceled === true ? { outcome: 'done', alreadyDone: true } : result;
  },

  async 'appointment.reschedule'(command, ctx) {
    const id = ctx.vendorIds.at(-1);
    if (id === undefined) return noId;
    const to = Date.parse(command.data.start);
    const already = await alreadyDone(ctx, 'acuity:move-sent', id, (record) => {
      const start = rfc3339(record.datetime);
      return start !== undefined && Date.parse(start) === to;
    });
    if (already) return already;
    const refused = commandUnsupported(command);
    if (refused) return { outcome: 'permanent', message: refused };
    const json: JsonObject = { datetime: command.data.start };
    // As the booking: the clinic's staff move what they booked past the client's rules ({@link
    // Config.bookAs}; the reschedule's `admin` "bypasses availability checks").
    const admin = booksAsAdmin(ctx.config) ? '?admin=true' : '';
    const res = await ctx.http.request({
      method: 'PUT',
      url: `${apiBase(ctx.config)}/appointments/${encodeURIComponent(id)}/reschedule${admin}`,
      headers: apiHeaders(ctx.config),
      json,
    });
    return commandOutcome('Acuity reschedule', res, said(res));
  },
};
