import {
  ConnectorError,
  type EventDraft,
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  type NormalizeContext,
  type NormalizeResult,
  toRfc3339,
  toRfc3339InZone,
  type VendorNotification,
  withKnownState,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { jrniCancelled, jrniOf, jrniQueueEntryOf, jrniSnapshot } from './jrni.ts';
import type { BookingBugBooking, BookingBugClient, BookingBugPurchase, JrniWebhook } from './vendor.ts';

export const CONNECTOR_NAME = 'bookingbug';

/**
 * Notification types: BookingBug's legacy push has no event type, so the type says where the
 * purchase came from (`purchase` on the booking URL, `cancellation` on the cancellation URL); a JRNI
 * webhook's type is its trigger (see `jrniTrigger`).
 */
const ANY = [
  'appointment.created',
  'appointment.rescheduled',
  'appointment.updated',
  'appointment.cancelled',
  'appointment.restored',
  'appointment.arrived',
  'appointment.in_progress',
  'appointment.completed',
  'appointment.no_show',
  'appointment.status_reverted',
];

export const eventMap: readonly EventMapping[] = [
  {
    vendorType: 'purchase',
    normalizedTypes: ANY,
    note: 'legacy booking URL: per booking, compared with the last state (new, moved, changed, is_cancelled); unchanged bookings give nothing',
  },
  {
    vendorType: 'cancellation',
    normalizedTypes: ANY,
    note: 'legacy cancellation URL: cancelled for the bookings flagged is_cancelled, or every booking when none is flagged; the others are compared as usual',
  },
  {
    vendorType: 'create',
    normalizedTypes: ANY,
    note: 'JRNI webhook, triggerName create: usually created; a known booking is compared with its last state',
  },
  {
    vendorType: 'modify',
    normalizedTypes: ANY,
    note: 'JRNI webhook, triggerName modify: a new time is a reschedule, a check-in status its workflow event, other changes an update; an unknown booking is created',
  },
  {
    vendorType: 'cancelled',
    normalizedTypes: ANY,
    note: 'JRNI webhook, triggerName cancelled: cancelled',
  },
  {
    vendorType: 'confirmed',
    normalizedTypes: [...ANY, 'appointment.confirmed'],
    note: 'JRNI notification webhook, booking confirmed: confirmed when nothing else changed',
  },
  {
    vendorType: 'reminder',
    normalizedTypes: ANY,
    note: 'JRNI notification webhook, session reminder: no change, stored as ignored (a change it shows is announced)',
  },
  {
    vendorType: 'attendees_added',
    normalizedTypes: ANY,
    note: 'JRNI notification webhook, additional attendees added: updated with changes vendor.additional_attendees',
  },
  {
    vendorType: 'snapshot',
    normalizedTypes: ANY,
    note: 'JRNI webhook without a trigger name we know: decided by comparison with the known state alone',
  },
];

/** The purchase inside a body: the body itself, or wrapped under `purchase` / `data` (read leniently; no vendor source shows a wrapper). */
export function purchaseOf(body: JsonObject): BookingBugPurchase | undefined {
  for (const candidate of [body, body.purchase, body.data]) {
    if (isJsonObject(candidate) && (typeof candidate.id === 'number' || typeof candidate.id === 'string')) {
      return candidate as unknown as BookingBugPurchase;
    }
  }
  return undefined;
}

/** The bookings of a purchase that have an id. */
export function bookingsOf(purchase: BookingBugPurchase): BookingBugBooking[] {
  const list = purchase._embedded?.bookings;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (b): b is BookingBugBooking => isJsonObject(b) && (typeof b.id === 'number' || typeof b.id === 'string'),
  );
}

/** True when a purchase delivered to this route / with this trigger cancels `booking`. */
export function isCancelled(
  booking: BookingBugBooking,
  bookings: readonly BookingBugBooking[],
  cancelRequest: boolean,
): boolean {
  if (booking.is_cancelled === true) return true;
  // A cancellation push flags the cancelled bookings when the field is sent; otherwise it is about all of them.
  return cancelRequest && !bookings.some((b) => b.is_cancelled === true);
}

function str(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '' && value.trim() !== 'null') return value.trim();
  return undefined;
}

function phoneOf(number: unknown, prefix: unknown): string | undefined {
  const n = str(number);
  if (n === undefined) return undefined;
  const p = str(prefix);
  if (p === undefined || n.startsWith('+')) return n;
  return `+${p.replace(/^\+/, '')}${n.replace(/^0+/, '').replace(/[\s-]/g, '')}`;
}

function linkId(booking: BookingBugBooking, rel: string): string | undefined {
  const href = booking._links?.[rel]?.href;
  if (typeof href !== 'string') return undefined;
  return /\/(\d+)(?:\{[^}]*\})?$/.exec(href)?.[1];
}

function patientOf(purchase: BookingBugPurchase, booking: BookingBugBooking): JsonObject | undefined {
  const client: BookingBugClient = purchase._embedded?.client ?? purchase._embedded?.member ?? {};
  const member: BookingBugClient = purchase._embedded?.member ?? {};
  const p: JsonObject = {};
  const id = str(client.id ?? member.id);
  const ref = str(client.reference ?? member.comp_ref);
  const given = str(client.first_name ?? member.first_name ?? booking.first_name);
  const family = str(client.last_name ?? member.last_name ?? booking.last_name);
  const name =
    str(purchase.client_name ?? member.name) ?? ([given, family].filter(Boolean).join(' ') || undefined);
  const email = str(client.email ?? member.email ?? booking.email);
  const phone =
    phoneOf(client.mobile, client.mobile_prefix) ??
    phoneOf(member.mobile, member.mobile_prefix) ??
    phoneOf(client.phone, client.phone_prefix);
  if (id !== undefined) p.id = id;
  if (ref !== undefined) p.externalRef = ref;
  if (name !== undefined) p.name = name;
  if (given !== undefined) p.given = given;
  if (family !== undefined) p.family = family;
  if (phone !== undefined) p.phone = phone;
  if (email !== undefined) p.email = email;
  return Object.keys(p).length > 0 ? p : undefined;
}

/**
 * The normalized, comparable state of one booking: what the hub stores between deliveries and what
 * a change is measured on. `attended` is left out: BookingBug sets it to true on fresh bookings
 * (see the vendor sample), so it says nothing about arrival.
 */
export function bookingSnapshot(
  purchase: BookingBugPurchase,
  booking: BookingBugBooking,
  cancelled: boolean,
): JsonObject {
  const s: JsonObject = { cancelled };
  // A datetime without an offset is wall time in the booking's own zone (its `time_zone`), UTC
  // only when it names none: it was read as UTC, an hour or more off for a clinic elsewhere.
  const timeZone = str(booking.time_zone);
  const start = toRfc3339InZone(booking.datetime, timeZone);
  const end = toRfc3339InZone(booking.end_datetime, timeZone);
  if (start !== undefined) s.start = start;
  if (end !== undefined) s.end = end;
  if (typeof booking.duration === 'number') s.durationMinutes = booking.duration;
  if (timeZone !== undefined) s.timeZone = timeZone;
  const patient = patientOf(purchase, booking);
  if (patient !== undefined) s.patient = patient;
  const personName = str(booking.person_name);
  const personId = linkId(booking, 'person') ?? str(booking.person_id);
  if (personId !== undefined || personName !== undefined) {
    s.practitioner = {
      id: personId ?? `name:${personName}`,
      ...(personName === undefined ? {} : { name: personName }),
    };
  }
  const address = booking.address;
  if (isJsonObject(address) && str(address.id) !== undefined) {
    const line = [address.address1, address.address2, address.address3, address.address4, address.address5]
      .map(str)
      .filter((l): l is string => l !== undefined && l !== '.');
    const postal: JsonObject = {};
    if (line.length > 0) postal.line = line;
    if (str(address.postcode) !== undefined) postal.postalCode = str(address.postcode)!;
    if (str(address.country) !== undefined) postal.country = str(address.country)!;
    const location: JsonObject = { id: str(address.id)! };
    if (str(address.name) !== undefined) location.name = str(address.name)!;
    if (Object.keys(postal).length > 0) location.address = postal;
    s.location = location;
  }
  const companyId = str(booking.company_id);
  if (companyId !== undefined) s.organization = { id: companyId };
  const serviceId = str(booking.service_id);
  if (serviceId !== undefined) {
    const service: JsonObject = { id: serviceId };
    if (str(booking.service_name) !== undefined) service.name = str(booking.service_name)!;
    // BookingBug prices are integers in the currency's minor unit (1500 = 15.00); the currency is not sent.
    if (typeof booking.price === 'number') service.price = { amount: booking.price, unit: 'minor' };
    s.service = service;
  }
  const resource = str(booking.resource_name);
  if (resource !== undefined) s.resource = resource;
  if (typeof booking.quantity === 'number') s.quantity = booking.quantity;
  if (typeof booking.on_waitlist === 'boolean') s.onWaitlist = booking.on_waitlist;
  const checkIn = checkInOf(booking.current_multi_status ?? booking.multi_status);
  if (checkIn !== undefined) s.checkIn = checkIn;
  return s;
}

/**
 * A check-in status in one spelling: JRNI's webhook says `Checked in`, its admin API and the legacy
 * booking's `multi_status` say `checked_in`; both become `checked_in`. Empty is `none`.
 *
 * @example
 * ```ts
 * checkInOf('No show'); // 'no_show'
 * ```
 */
export function checkInOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return (
    value
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'none'
  );
}

interface CheckInState {
  /** The event that announces reaching this status. */
  type?: string;
  status: 'booked' | 'arrived' | 'checked-in' | 'fulfilled' | 'noshow';
  step?: string;
  /** Order along the visit: a lower rank after a higher one is an undo. */
  rank: number;
}

/** JRNI's default check-in statuses (configurable at the vendor; others are vendor-only changes). */
const CHECK_IN: Record<string, CheckInState> = {
  none: { status: 'booked', step: 'scheduled', rank: 0 },
  checked_in: { type: 'appointment.arrived', status: 'arrived', step: 'arrived', rank: 1 },
  being_seen: { type: 'appointment.in_progress', status: 'checked-in', step: 'in_progress', rank: 2 },
  completed: { type: 'appointment.completed', status: 'fulfilled', step: 'completed', rank: 3 },
  no_show: { type: 'appointment.no_show', status: 'noshow', rank: -1 },
};

/**
 * The workflow event of a check-in status change, or undefined when there is none (no change, or a
 * custom status). A no-show is a workflow outcome: clearing it, or stepping back along the visit,
 * is `appointment.status_reverted` (docs/events.md, "Undo events"); a status set after a no-show is
 * a new observation (the patient came after all).
 */
function checkInEvent(before: unknown, now: unknown): string | undefined {
  if (typeof now !== 'string') return undefined;
  const from = typeof before === 'string' ? before : 'none';
  if (from === now) return undefined;
  const to = CHECK_IN[now];
  if (to === undefined) return undefined;
  if (now === 'no_show') return to.type;
  if (now === 'none') return 'appointment.status_reverted';
  const was = CHECK_IN[from];
  if (was === undefined || from === 'no_show' || to.rank > was.rank) return to.type;
  return 'appointment.status_reverted';
}

/** Snapshot keys that are not Appointment fields, with the name they get in `changes`. */
const VENDOR_ONLY: Record<string, string> = {
  resource: 'vendor.resource_name',
  quantity: 'vendor.quantity',
  onWaitlist: 'vendor.on_waitlist',
  additionalAttendees: 'vendor.additional_attendees',
  customBookingFields: 'vendor.custom_booking_fields',
  checkIn: 'vendor.check_in_status',
};

/**
 * Snapshot keys compared on their own (times, cancellation, check-in), not as plain changes;
 * `shapes` is bookkeeping (see {@link shapesOf}), never a change.
 */
const OWN_RULES = new Set(['start', 'end', 'cancelled', 'checkIn', 'shapes']);

/** The two payload shapes a booking is told in. */
type Shape = 'purchase' | 'jrni';

/** Keys only JRNI's webhook fills. */
const JRNI_ONLY = ['bookedBy', 'videoCallUrl', 'additionalAttendees', 'customBookingFields'];

/**
 * JRNI keys the hub began keeping after snapshots were already stored: a known snapshot without one
 * is not "no answers", so its first sight is knowledge, not a change.
 */
const KEPT_SINCE = new Set(['customBookingFields']);

/**
 * The shapes that have described a booking so far, kept in its snapshot under `shapes`: the first
 * push of one shape carries details the other never does, and only this tells that apart from a
 * change. A snapshot stored before `shapes` was recorded is taken as JRNI's when it holds a field
 * only JRNI fills, else as the legacy push's.
 */
function shapesOf(snap: JsonObject): Shape[] {
  if (Array.isArray(snap.shapes))
    return snap.shapes.filter((s): s is Shape => s === 'purchase' || s === 'jrni');
  return JRNI_ONLY.some((k) => snap[k] !== undefined) ? ['jrni'] : ['purchase'];
}

/**
 * What the hub keeps per purchase between deliveries: the ids of its bookings (each booking's
 * snapshot is kept under {@link bookingKey}, where a JRNI webhook about it finds it too). Before
 * JRNI's webhooks were supported the snapshots were kept here, under `bookings`: still read.
 */
interface StoredPurchase {
  bookingIds?: string[];
  bookings?: Record<string, JsonObject>;
}

export function stateKey(purchaseId: string): string {
  return `purchase:${purchaseId}`;
}

/** The state key of one booking's last snapshot, shared by the legacy push and JRNI's webhooks. */
export function bookingKey(bookingId: string): string {
  return `booking:${bookingId}`;
}

/** State-store key of the `triggerTime` of the latest JRNI snapshot applied to a booking. */
function triggerTimeKey(bookingId: string): string {
  return `booking:${bookingId}:triggered`;
}

// Key order is not data: the hub's state store is Postgres jsonb, which hands objects back with
// their keys reordered, so a plain JSON.stringify comparison saw every stored snapshot as changed.
const canonical = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(canonical)
    : value !== null && typeof value === 'object'
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
        )
      : value;
const same = (a: unknown, b: unknown): boolean =>
  JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

/**
 * Start and end compare as instants: the legacy push writes `+00:00`, JRNI `Z` or the company's
 * local offset, and one instant spelled two ways is no move.
 */
function sameTime(a: unknown, b: unknown): boolean {
  if (typeof a === 'string' && typeof b === 'string') {
    const x = Date.parse(a);
    const y = Date.parse(b);
    if (!Number.isNaN(x) && !Number.isNaN(y)) return x === y;
  }
  return same(a, b);
}

/**
 * True when `now` contradicts nothing `before` says: a field (or a party's detail) only one of them
 * has is not compared. Used for the first push of a shape, which fills what the other shape never
 * carries (JRNI: who booked, a video link, attendees, the company's name; the legacy push: the client
 * id, the price, the address).
 */
function agrees(before: unknown, now: unknown): boolean {
  if (before === undefined || now === undefined) return true;
  if (isJsonObject(before) && isJsonObject(now)) {
    return Object.keys(before).every((k) => agrees(before[k], now[k]));
  }
  return same(before, now);
}

/**
 * True when the known place was only the JRNI company standing in for it and `now` names a legacy
 * address of the same company: the same place told more precisely (see {@link fillSnapshot}).
 */
function placeRefined(before: JsonObject, now: JsonObject): boolean {
  const { location: was, organization: org } = before;
  const { location: is, organization: nowOrg } = now;
  return (
    isJsonObject(was) &&
    isJsonObject(org) &&
    isJsonObject(is) &&
    isJsonObject(nowOrg) &&
    was.id === org.id &&
    nowOrg.id === org.id &&
    is.id !== was.id
  );
}

/**
 * A booking's snapshot from this push, completed from its known one (docs/events.md, "What data
 * carries"): a block the push leaves out keeps its known value, and the same party described with
 * fewer details keeps the known details (a JRNI service has no price, a purchase without
 * `_links.person` names the practitioner only by name). A JRNI company stands for the place; a
 * place known by a legacy address id is more precise and is kept. `shapes` gains this push's shape.
 */
export function fillSnapshot(fresh: JsonObject, known: JsonObject | undefined, shape: Shape): JsonObject {
  const shapes = [...new Set([...(known === undefined ? [] : shapesOf(known)), shape])].sort();
  if (known === undefined) return { ...fresh, shapes };
  const f: JsonObject = { ...fresh, shapes };
  const p = f.practitioner;
  const kp = known.practitioner;
  if (
    isJsonObject(p) &&
    isJsonObject(kp) &&
    typeof p.id === 'string' &&
    p.id.startsWith('name:') &&
    p.name === kp.name
  ) {
    f.practitioner = kp;
  }
  const organizationId = isJsonObject(f.organization) ? f.organization.id : undefined;
  if (
    shape === 'jrni' &&
    isJsonObject(known.location) &&
    isJsonObject(f.location) &&
    f.location.id === organizationId &&
    known.location.id !== organizationId
  ) {
    f.location = known.location;
  }
  for (const key of ['practitioner', 'service', 'organization', 'location', 'patient']) {
    const now = f[key];
    const before = known[key];
    // A party without an id (a JRNI customer) is the known one described again.
    if (isJsonObject(now) && isJsonObject(before) && (now.id === undefined || now.id === before.id)) {
      f[key] = { ...before, ...now };
    }
  }
  return withKnownState(f, known);
}

/**
 * One event per booking of the pushed purchase, or for the booking of a JRNI webhook, decided by
 * comparing each booking (completed from its known state) with its stored state: new → created,
 * cancelled → cancelled, back from cancelled → restored, moved → rescheduled, a check-in status →
 * its workflow event, otherwise changed → updated, unchanged → nothing.
 *
 * @example
 * ```ts
 * const result = await normalize(notification, ctx); // { events: [{ type: 'appointment.created', ... }] }
 * ```
 */
export async function normalize(
  n: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const body = isJsonObject(n.payload) ? n.payload : {};
  const jrni = jrniOf(body);
  if (jrni !== undefined) return normalizeJrni(n, jrni, ctx);
  if (jrniQueueEntryOf(body))
    return ignore(
      'a JRNI queue entry (appointment.origin queuer) that names no booking: JRNI documents no identifier for a queue entry, so its create, modify and cancel cannot be tied to one appointment, nor reached by a command; the push that books it (with appointment.bookingId) is announced',
    );
  const purchase = purchaseOf(body);
  if (purchase === undefined)
    throw ConnectorError.permanent('the stored BookingBug notification has no purchase id');
  const purchaseId = String(purchase.id);
  const bookings = bookingsOf(purchase);
  if (bookings.length === 0) return ignore('the purchase has no bookings');
  const cancelRequest = n.type === 'cancellation';

  const stored = (await ctx.state.get<JsonObject>(stateKey(purchaseId))) as unknown as
    | StoredPurchase
    | undefined;
  const knownIds = [
    ...new Set([
      ...(stored?.bookingIds ?? Object.keys(stored?.bookings ?? {})),
      ...bookings.map((b) => String(b.id)),
    ]),
  ];
  const previous: Record<string, JsonObject> = {};
  const snapshots = await Promise.all(knownIds.map((id) => ctx.state.get<JsonObject>(bookingKey(id))));
  knownIds.forEach((id, i) => {
    const snap = snapshots[i] ?? stored?.bookings?.[id];
    if (snap !== undefined) previous[id] = snap;
  });
  const current = bookings.map((b) => ({
    booking: b,
    id: String(b.id),
    fresh: bookingSnapshot(purchase, b, isCancelled(b, bookings, cancelRequest)),
  }));

  // Whether a moved booking keeps its id is unverified: a booking id that disappeared from the
  // purchase while a new one appeared at another time is taken as the same appointment, moved.
  const currentIds = new Set(current.map((c) => c.id));
  const purchaseIds = stored?.bookingIds ?? Object.keys(stored?.bookings ?? {});
  const vanished = purchaseIds.filter((id) => !currentIds.has(id) && previous[id]?.cancelled !== true);
  const movedFrom = new Map<string, string>();
  for (const c of current) {
    if (previous[c.id] !== undefined || c.fresh.cancelled === true) continue;
    const match =
      vanished.find(
        (id) => !sameTime(previous[id]?.start, c.fresh.start) && same(previous[id]?.service, c.fresh.service),
      ) ?? vanished.find((id) => !sameTime(previous[id]?.start, c.fresh.start));
    if (match === undefined) continue;
    movedFrom.set(c.id, match);
    vanished.splice(vanished.indexOf(match), 1);
  }

  const created = toRfc3339(purchase.created_at);
  const time = n.occurredAt ?? ctx.receivedAt.toISOString();
  const events: EventDraft[] = [];
  const ids = new Set(purchaseIds);
  for (const c of current) {
    const oldId = movedFrom.get(c.id);
    const before = previous[c.id] ?? (oldId === undefined ? undefined : previous[oldId]);
    let hubId: string;
    if (oldId !== undefined) {
      hubId = await ctx.aliases.hubId('appointment', oldId);
      await ctx.aliases.link('appointment', c.id, hubId);
      await ctx.state.delete(bookingKey(oldId));
      ids.delete(oldId);
    } else {
      hubId = await ctx.aliases.hubId('appointment', c.id);
    }
    ids.add(c.id);
    const snap = fillSnapshot(c.fresh, before, 'purchase');
    await ctx.state.set(bookingKey(c.id), snap);

    const decided = decide(before, snap, n.type, 'purchase');
    if (decided === undefined) continue;
    const data = entityOf(snap, decided, hubId, c.id, oldId, ctx.instanceId, before, {
      purchase: purchaseRecord(purchase),
      booking: c.booking as unknown as JsonObject,
    });
    if (created !== undefined) data.bookedAt = created;
    const eventTime =
      decided.type === 'appointment.created' && stored === undefined ? (created ?? time) : time;
    events.push({ type: decided.type, subject: `appointment/${hubId}`, time: eventTime, data });
    if (decided.also !== undefined) {
      const also = entityOf(snap, decided.also, hubId, c.id, oldId, ctx.instanceId, before, {
        purchase: purchaseRecord(purchase),
        booking: c.booking as unknown as JsonObject,
      });
      if (created !== undefined) also.bookedAt = created;
      events.push({ type: decided.also.type, subject: `appointment/${hubId}`, time: eventTime, data: also });
    }
  }

  await ctx.state.set(stateKey(purchaseId), { bookingIds: [...ids] });
  if (events.length === 0) return ignore('no change since the last delivery');
  return emit(...events);
}

/** The purchase without its bookings array: each event carries its own booking in full. */
function purchaseRecord(purchase: BookingBugPurchase): JsonObject {
  const { _embedded, ...fields } = purchase;
  const { bookings: _others, ...embedded } = _embedded ?? {};
  return { ...fields, _embedded: embedded } as unknown as JsonObject;
}

/** A JRNI data or notification webhook: one booking, compared with its known state. */
async function normalizeJrni(
  n: VendorNotification,
  webhook: JrniWebhook,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const bookingId = String(webhook.appointment.bookingId);
  // Each snapshot is the whole booking at its triggerTime, and nothing orders their arrival: one
  // older than the snapshot last applied is stale, and applying it would undo what came since (a
  // late modify after the cancellation restored the appointment at its old time).
  const triggeredAt = toRfc3339(webhook.triggerTime);
  const [before, lastTriggered] = await Promise.all([
    ctx.state.get<JsonObject>(bookingKey(bookingId)),
    ctx.state.get<string>(triggerTimeKey(bookingId)),
  ]);
  if (triggeredAt !== undefined && typeof lastTriggered === 'string') {
    if (Date.parse(triggeredAt) < Date.parse(lastTriggered)) {
      return ignore(
        `a JRNI ${n.type} snapshot of ${triggeredAt}, older than the one of ${lastTriggered} already applied to booking ${bookingId}`,
      );
    }
  }
  if (triggeredAt !== undefined) await ctx.state.set(triggerTimeKey(bookingId), triggeredAt);
  const fresh = jrniSnapshot(webhook, jrniCancelled(webhook, n.type));
  const snap = fillSnapshot(fresh, before, 'jrni');
  await ctx.state.set(bookingKey(bookingId), snap);
  const decided = decide(before, snap, n.type, 'jrni');
  if (decided === undefined) {
    return ignore(
      n.type === 'reminder'
        ? 'a JRNI reminder: nothing changed since the last delivery'
        : 'no change since the last delivery',
    );
  }
  const hubId = await ctx.aliases.hubId('appointment', bookingId);
  const data = entityOf(snap, decided, hubId, bookingId, undefined, ctx.instanceId, before, {
    webhook: webhook as unknown as JsonObject,
  });
  const time = toRfc3339(webhook.triggerTime) ?? n.occurredAt ?? ctx.receivedAt.toISOString();
  if (decided.type === 'appointment.cancelled' && webhook.triggerTime !== undefined) {
    const at = toRfc3339(webhook.triggerTime);
    if (at !== undefined) data.cancelledAt = at;
  }
  const subject = `appointment/${hubId}`;
  if (decided.also === undefined) return emit({ type: decided.type, subject, time, data });
  const also = entityOf(snap, decided.also, hubId, bookingId, undefined, ctx.instanceId, before, {
    webhook: webhook as unknown as JsonObject,
  });
  return emit(
    { type: decided.type, subject, time, data },
    { type: decided.also.type, subject, time, data: also },
  );
}

interface Decision {
  type: string;
  changes: string[];
  /**
   * A second event the same snapshot announces: the check-in workflow event of a snapshot that
   * also moved the booking (one event could not say both, and the arrival was lost downstream).
   */
  also?: Decision;
}

/** The appointment's status and workflow step in a snapshot. */
function statusOf(snap: JsonObject): { status: string; step?: string } {
  if (snap.cancelled === true) return { status: 'cancelled' };
  const checkIn = typeof snap.checkIn === 'string' ? CHECK_IN[snap.checkIn] : undefined;
  if (checkIn === undefined) return { status: 'booked' };
  return checkIn.step === undefined
    ? { status: checkIn.status }
    : { status: checkIn.status, step: checkIn.step };
}

function decide(
  before: JsonObject | undefined,
  now: JsonObject,
  trigger: string,
  shape: Shape,
): Decision | undefined {
  if (now.cancelled === true) {
    return before?.cancelled === true ? undefined : { type: 'appointment.cancelled', changes: [] };
  }
  if (before === undefined) return { type: 'appointment.created', changes: [] };
  // The first push of this shape about a booking the other shape told: what it adds is knowledge the
  // other shape never carried, not a change; only what both say and differ on is.
  // A JRNI "attendees added" names its change, so the attendees it brings count even then.
  const firstOfShape = !shapesOf(before).includes(shape);
  const named = trigger === 'attendees_added' ? 'additionalAttendees' : undefined;
  const changes: string[] = [];
  const keys = new Set([...Object.keys(before), ...Object.keys(now)]);
  for (const key of keys) {
    if (OWN_RULES.has(key)) continue;
    if (key === 'location' && placeRefined(before, now)) continue;
    if (KEPT_SINCE.has(key) && before[key] === undefined) continue;
    const differs =
      firstOfShape && key !== named ? !agrees(before[key], now[key]) : !same(before[key], now[key]);
    if (differs) changes.push(VENDOR_ONLY[key] ?? key);
  }
  const checkInType = checkInEvent(before.checkIn, now.checkIn);
  if (checkInType === undefined && !same(before.checkIn ?? 'none', now.checkIn ?? before.checkIn ?? 'none')) {
    changes.push(VENDOR_ONLY.checkIn!); // a custom check-in status: no workflow event of its own
  }
  changes.sort();
  const moved = ['start', 'end'].filter((k) => !sameTime(before[k], now[k]));
  const statusChanges = ['status', 'workflowStep'];
  // A cancelled booking back: the undo of a cancellation (docs/events.md, "Undo events").
  if (before.cancelled === true)
    return { type: 'appointment.restored', changes: [...statusChanges, ...moved, ...changes] };
  const checkIn =
    checkInType === undefined
      ? undefined
      : {
          type: checkInType,
          changes: checkInType === 'appointment.status_reverted' ? [...statusChanges, ...changes] : changes,
        };
  if (moved.length > 0) {
    const rescheduled = { type: 'appointment.rescheduled', changes: [...moved, ...changes] };
    return checkIn === undefined
      ? rescheduled
      : {
          ...rescheduled,
          also: { ...checkIn, changes: checkIn.type === 'appointment.status_reverted' ? statusChanges : [] },
        };
  }
  if (checkIn !== undefined) return checkIn;
  if (changes.length === 0) {
    return trigger === 'confirmed' ? { type: 'appointment.confirmed', changes: [] } : undefined;
  }
  return { type: 'appointment.updated', changes };
}

function entityOf(
  snap: JsonObject,
  decided: Decision,
  hubId: string,
  bookingId: string,
  oldId: string | undefined,
  instanceId: string,
  before: JsonObject | undefined,
  vendor: JsonObject,
): JsonObject {
  const vendorIds: JsonObject[] = [];
  if (oldId !== undefined)
    vendorIds.push({ system: CONNECTOR_NAME, instance: instanceId, value: oldId, current: false });
  vendorIds.push({ system: CONNECTOR_NAME, instance: instanceId, value: bookingId, current: true });
  const { status, step } = statusOf(snap);
  const data: JsonObject = { id: hubId, vendorIds, status };
  if (step !== undefined) data.workflowStep = step;
  for (const key of [
    'start',
    'end',
    'durationMinutes',
    'timeZone',
    'patient',
    'practitioner',
    'location',
    'organization',
    'service',
    'videoCallUrl',
    'bookedBy',
  ]) {
    if (snap[key] !== undefined) data[key] = snap[key]!;
  }
  if (decided.type === 'appointment.rescheduled') {
    data.previous = {
      ...(before?.start === undefined ? {} : { start: before.start }),
      ...(before?.end === undefined ? {} : { end: before.end }),
      ...(oldId === undefined ? {} : { vendorId: oldId }),
    };
  }
  if (decided.changes.length > 0 || decided.type === 'appointment.updated') data.changes = decided.changes;
  data.vendor = vendor;
  return data;
}
