/**
 * JRNI's data and notification webhooks: one appointment snapshot per push, with top-level blocks
 * (`appointment`, `company`, `service`, `staff`, `resource`, `customer`, …) instead of a purchase.
 * This file turns one into the same per-booking snapshot a legacy purchase gives, so both shapes
 * share one state, one comparison and one hub identity per booking (`appointment.bookingId` is the
 * legacy booking `id`).
 */
import { isJsonObject, type JsonObject, type JsonValue, toRfc3339 } from '@switchyard/core';
import { checkInOf } from './normalize.ts';
import type { JrniWebhook } from './vendor.ts';

/** The JRNI webhook in a body, when the body is one (an `appointment` block with a `bookingId`). */
export function jrniOf(body: JsonObject): JrniWebhook | undefined {
  const appointment = body.appointment;
  if (!isJsonObject(appointment)) return undefined;
  const id = appointment.bookingId;
  if (typeof id === 'number' || (typeof id === 'string' && id.trim() !== '')) {
    return body as unknown as JrniWebhook;
  }
  return undefined;
}

/**
 * Whether a body is a JRNI webhook about a queue entry (`appointment.origin` `queuer`) that names no
 * booking: a walk-in queue's customer, which JRNI tells in the same shape. JRNI documents no id for
 * a queue entry (only `bookingId`), so its pushes cannot be tied to one appointment: such a push is
 * acknowledged and stored as ignored; refused (400, no `bookingId`), JRNI sent it again and again.
 *
 * @example
 * ```ts
 * jrniQueueEntryOf({ appointment: { origin: 'queuer' }, triggerName: 'create' }); // true
 * ```
 */
export function jrniQueueEntryOf(body: JsonObject): boolean {
  const appointment = body.appointment;
  return isJsonObject(appointment) && appointment.origin === 'queuer' && jrniOf(body) === undefined;
}

/**
 * The vendor type of a JRNI push: the data webhook's `triggerName` (`create`, `modify`,
 * `cancelled`), the notification webhook's further events (`confirmed`, `reminder`,
 * `attendees_added`; their exact words are unverified, so common spellings are accepted), or
 * `snapshot` when the (customisable) payload names no trigger we know: then the comparison with the
 * known state alone decides.
 *
 * @example
 * ```ts
 * jrniTrigger('Cancelled'); // 'cancelled'
 * jrniTrigger('booking_created'); // 'create'
 * ```
 */
export function jrniTrigger(name: unknown): string {
  if (typeof name !== 'string') return 'snapshot';
  const word = name.toLowerCase().replace(/[^a-z]/g, '');
  if (word.includes('attendee')) return 'attendees_added';
  if (word.includes('reminder')) return 'reminder';
  if (word.includes('cancel')) return 'cancelled';
  if (word.includes('confirm')) return 'confirmed';
  if (word.includes('creat')) return 'create';
  if (/modif|amend|updat|move|reschedul/.test(word)) return 'modify';
  return 'snapshot';
}

function str(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '' && value.trim() !== 'null') return value.trim();
  return undefined;
}

/** `+1 1234567890` → `+11234567890`: the legacy push's phone form, so both shapes compare equal. */
function phoneOf(value: unknown): string | undefined {
  const text = str(value);
  return text === undefined ? undefined : text.replace(/[\s().-]/g, '');
}

function party(block: unknown): JsonObject | undefined {
  if (!isJsonObject(block)) return undefined;
  const id = str(block.jrniId);
  if (id === undefined) return undefined;
  const name = str(block.name);
  const out: JsonObject = { id };
  if (name !== undefined) out.name = name;
  const externalId = str(block.externalId);
  if (externalId !== undefined) out.externalId = externalId;
  return out;
}

/**
 * Who booked: JRNI's `bookedBy` (a name) and `channel` (where the booking came from, e.g.
 * `Administrator`), as an Actor.
 */
function bookedByOf(bookedBy: unknown, channel: unknown): JsonObject | undefined {
  const name = str(bookedBy);
  const via = str(channel);
  if (name === undefined && via === undefined) return undefined;
  const word = (via ?? '').toLowerCase();
  const kind = /admin|staff|studio|concierge/.test(word)
    ? 'staff'
    : /customer|online|public|web|mobile/.test(word)
      ? 'patient'
      : /api|integration/.test(word)
        ? 'integration'
        : 'unknown';
  const actor: JsonObject = { kind };
  if (name !== undefined) actor.name = name;
  if (via !== undefined) actor.vendorValue = via;
  return actor;
}

/**
 * The normalized, comparable state of the booking a JRNI webhook describes, in the same form as a
 * legacy booking's ({@link bookingSnapshot} in normalize.ts). Blocks the payload leaves out stay
 * out (the known state fills them); `checkIn` is `none` when JRNI sends the field empty.
 */
export function jrniSnapshot(webhook: JrniWebhook, cancelled: boolean): JsonObject {
  const a = webhook.appointment;
  const s: JsonObject = { cancelled };
  const start = toRfc3339(a.companyStartTime) ?? toRfc3339(a.customerStartTime);
  const end = toRfc3339(a.companyEndTime) ?? toRfc3339(a.customerEndTime);
  if (start !== undefined) s.start = start;
  if (end !== undefined) s.end = end;
  if (typeof a.duration === 'number') s.durationMinutes = a.duration;
  const company = isJsonObject(webhook.company) ? webhook.company : undefined;
  const timeZone = str(company?.timezone);
  if (timeZone !== undefined) s.timeZone = timeZone;

  const customer = isJsonObject(webhook.customer) ? webhook.customer : undefined;
  if (customer !== undefined) {
    const p: JsonObject = {};
    const id = str(customer.jrniId);
    const ref = str(customer.externalId);
    const given = str(customer.firstName);
    const family = str(customer.lastName);
    const email = str(customer.email);
    const phone = phoneOf(customer.mobile) ?? phoneOf(customer.homePhone);
    if (id !== undefined) p.id = id;
    if (ref !== undefined) p.externalRef = ref;
    const name = [given, family].filter(Boolean).join(' ');
    if (name !== '') p.name = name;
    if (given !== undefined) p.given = given;
    if (family !== undefined) p.family = family;
    if (phone !== undefined) p.phone = phone;
    if (email !== undefined) p.email = email;
    if (Object.keys(p).length > 0) s.patient = p;
  }
  const staff = party(webhook.staff);
  if (staff !== undefined) {
    const email = str(webhook.staff?.email);
    const phone = str(webhook.staff?.phoneNumber);
    if (email !== undefined) staff.email = email;
    if (phone !== undefined) staff.phone = phone;
    s.practitioner = staff;
  }
  const organization = party(company);
  if (organization !== undefined) {
    s.organization = organization;
    // JRNI's company is the appointment's place; a legacy purchase names the place by its address
    // id instead, which the merge with the known state keeps (normalize.ts, fillSnapshot).
    const location: JsonObject = { id: organization.id as string };
    if (organization.name !== undefined) location.name = organization.name;
    const line = str(company?.address);
    if (line !== undefined) location.address = { line: [line] };
    s.location = location;
  }
  const service = party(webhook.service);
  if (service !== undefined) {
    delete service.externalId;
    s.service = service;
  }
  const resource = str(webhook.resource?.name);
  if (resource !== undefined) s.resource = resource;
  if ('checkInStatus' in a) s.checkIn = checkInOf(a.checkInStatus) ?? 'none';
  const bookedBy = bookedByOf(a.bookedBy, a.channel);
  if (bookedBy !== undefined) s.bookedBy = bookedBy;
  const video = str(a.joinVideoURL);
  if (video !== undefined) s.videoCallUrl = video;
  // The answers to the company's custom booking questions, as JRNI lists them: compared as a whole,
  // so a modify that changes only an answer is announced (changes: vendor.custom_booking_fields).
  if (Array.isArray(a.customBookingFields)) s.customBookingFields = a.customBookingFields as JsonValue[];
  const attendees = [
    ...(Array.isArray(webhook.additionalAttendeeCustomers) ? webhook.additionalAttendeeCustomers : []),
    ...(Array.isArray(webhook.additionalAttendeeStaff) ? webhook.additionalAttendeeStaff : []),
  ] as JsonValue[];
  if ('additionalAttendeeCustomers' in webhook || 'additionalAttendeeStaff' in webhook) {
    s.additionalAttendees = attendees;
  }
  return s;
}

/** True when the JRNI push cancels the booking: the trigger says so, or the booking status does. */
export function jrniCancelled(webhook: JrniWebhook, trigger: string): boolean {
  return trigger === 'cancelled' || /cancel/i.test(str(webhook.appointment.status) ?? '');
}
