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
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';
import type { BookingBugBooking, BookingBugClient, BookingBugPurchase } from './vendor.ts';

export const CONNECTOR_NAME = 'bookingbug';

/**
 * Notification types: BookingBug's legacy push has no event type, so the type says where the
 * purchase came from (`purchase` on the booking URL, `cancellation` on the cancellation URL), or
 * JRNI's `triggerName` when present.
 */
const ANY = [
  'appointment.created',
  'appointment.rescheduled',
  'appointment.updated',
  'appointment.cancelled',
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
    note: 'JRNI triggerName create: usually created; a known booking is compared with its last state',
  },
  {
    vendorType: 'modify',
    normalizedTypes: ANY,
    note: 'JRNI triggerName modify: a new time is a reschedule, other changes an update; an unknown booking is created',
  },
  {
    vendorType: 'cancelled',
    normalizedTypes: ANY,
    note: 'JRNI triggerName cancelled: cancelled for the flagged bookings (all when none is flagged)',
  },
];

/** The purchase inside a body: the body itself, or JRNI-style under `purchase` / `data`. */
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

/** `2017-03-10T11:30:00+00:00` kept as is; a missing offset is read as UTC; a space separator becomes T. */
export function toRfc3339(value: unknown): string | undefined {
  const text = str(value);
  if (text === undefined) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(text);
  if (!m) return undefined;
  let offset = m[4] ?? 'Z';
  if (offset.toUpperCase() === 'Z') offset = 'Z';
  else if (!offset.includes(':')) offset = `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const result = `${m[1]}T${m[2]}${m[3] ?? ':00'}${offset}`;
  return Number.isNaN(Date.parse(result)) ? undefined : result;
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
  const start = toRfc3339(booking.datetime);
  const end = toRfc3339(booking.end_datetime);
  if (start !== undefined) s.start = start;
  if (end !== undefined) s.end = end;
  if (typeof booking.duration === 'number') s.durationMinutes = booking.duration;
  const timeZone = str(booking.time_zone);
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
  return s;
}

/** Snapshot keys that are not Appointment fields, with the name they get in `changes`. */
const VENDOR_ONLY: Record<string, string> = {
  resource: 'vendor.resource_name',
  quantity: 'vendor.quantity',
  onWaitlist: 'vendor.on_waitlist',
};

/** What the hub keeps per purchase between deliveries. */
interface StoredPurchase {
  /** booking id → its last snapshot. */
  bookings: Record<string, JsonObject>;
}

export function stateKey(purchaseId: string): string {
  return `purchase:${purchaseId}`;
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
 * One event per booking of the pushed purchase, decided by comparing each booking with its stored
 * state: new → created, cancelled → cancelled, moved → rescheduled, otherwise changed → updated,
 * unchanged → nothing.
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
  const purchase = purchaseOf(body);
  if (purchase === undefined)
    throw ConnectorError.permanent('the stored BookingBug notification has no purchase id');
  const purchaseId = String(purchase.id);
  const bookings = bookingsOf(purchase);
  if (bookings.length === 0) return ignore('the purchase has no bookings');
  const cancelRequest = n.type === 'cancellation' || n.type === 'cancelled';

  const stored = (await ctx.state.get<JsonObject>(stateKey(purchaseId))) as unknown as
    | StoredPurchase
    | undefined;
  const previous: Record<string, JsonObject> = { ...(stored?.bookings ?? {}) };
  const current = bookings.map((b) => ({
    booking: b,
    id: String(b.id),
    snap: bookingSnapshot(purchase, b, isCancelled(b, bookings, cancelRequest)),
  }));

  // Whether a moved booking keeps its id is unverified: a booking id that disappeared from the
  // purchase while a new one appeared at another time is taken as the same appointment, moved.
  const currentIds = new Set(current.map((c) => c.id));
  const vanished = Object.keys(previous).filter(
    (id) => !currentIds.has(id) && previous[id]?.cancelled !== true,
  );
  const movedFrom = new Map<string, string>();
  for (const c of current) {
    if (previous[c.id] !== undefined || c.snap.cancelled === true) continue;
    const match =
      vanished.find(
        (id) => !same(previous[id]?.start, c.snap.start) && same(previous[id]?.service, c.snap.service),
      ) ?? vanished.find((id) => !same(previous[id]?.start, c.snap.start));
    if (match === undefined) continue;
    movedFrom.set(c.id, match);
    vanished.splice(vanished.indexOf(match), 1);
  }

  const time = toRfc3339(purchase.triggerTime) ?? n.occurredAt ?? ctx.receivedAt.toISOString();
  const events: EventDraft[] = [];
  const nextState: Record<string, JsonObject> = { ...previous };
  for (const c of current) {
    const oldId = movedFrom.get(c.id);
    const before = previous[c.id] ?? (oldId === undefined ? undefined : previous[oldId]);
    let hubId: string;
    if (oldId !== undefined) {
      hubId = await ctx.aliases.hubId('appointment', oldId);
      await ctx.aliases.link('appointment', c.id, hubId);
      delete nextState[oldId];
    } else {
      hubId = await ctx.aliases.hubId('appointment', c.id);
    }
    nextState[c.id] = c.snap;

    const decided = decide(before, c.snap);
    if (decided === undefined) continue;
    const data = entityOf(c.snap, decided.status, hubId, c.id, oldId, ctx.instanceId, purchase, c.booking);
    if (decided.type === 'appointment.rescheduled') {
      data.previous = {
        ...(before?.start === undefined ? {} : { start: before.start }),
        ...(before?.end === undefined ? {} : { end: before.end }),
        ...(oldId === undefined ? {} : { vendorId: oldId }),
      };
      if (decided.changes.length > 0) data.changes = decided.changes;
    }
    if (decided.type === 'appointment.updated') data.changes = decided.changes;
    const created = toRfc3339(purchase.created_at);
    if (created !== undefined) data.bookedAt = created;
    if (decided.type === 'appointment.cancelled' && purchase.triggerTime !== undefined) {
      const at = toRfc3339(purchase.triggerTime);
      if (at !== undefined) data.cancelledAt = at;
    }
    const eventTime =
      decided.type === 'appointment.created' && purchase.triggerTime === undefined && stored === undefined
        ? (created ?? time)
        : time;
    events.push({ type: decided.type, subject: `appointment/${hubId}`, time: eventTime, data });
  }

  await ctx.state.set(stateKey(purchaseId), { bookings: nextState } as unknown as JsonObject);
  if (events.length === 0) return ignore('no change since the last delivery');
  return emit(...events);
}

interface Decision {
  type: string;
  status: 'booked' | 'cancelled';
  changes: string[];
}

function decide(before: JsonObject | undefined, now: JsonObject): Decision | undefined {
  const cancelled = now.cancelled === true;
  if (cancelled) {
    return before?.cancelled === true
      ? undefined
      : { type: 'appointment.cancelled', status: 'cancelled', changes: [] };
  }
  if (before === undefined) return { type: 'appointment.created', status: 'booked', changes: [] };
  const changes: string[] = [];
  const keys = new Set([...Object.keys(before), ...Object.keys(now)]);
  for (const key of keys) {
    if (key === 'start' || key === 'end') continue;
    if (key === 'cancelled') {
      if (before.cancelled !== now.cancelled) changes.push('status');
      continue;
    }
    if (!same(before[key], now[key])) changes.push(VENDOR_ONLY[key] ?? key);
  }
  changes.sort();
  if (!same(before.start, now.start) || !same(before.end, now.end)) {
    const moved = ['start', 'end'].filter((k) => !same(before[k], now[k]));
    return { type: 'appointment.rescheduled', status: 'booked', changes: [...moved, ...changes] };
  }
  if (changes.length === 0) return undefined;
  return { type: 'appointment.updated', status: 'booked', changes };
}

function entityOf(
  snap: JsonObject,
  status: 'booked' | 'cancelled',
  hubId: string,
  bookingId: string,
  oldId: string | undefined,
  instanceId: string,
  purchase: BookingBugPurchase,
  booking: BookingBugBooking,
): JsonObject {
  const vendorIds: JsonObject[] = [];
  if (oldId !== undefined)
    vendorIds.push({ system: CONNECTOR_NAME, instance: instanceId, value: oldId, current: false });
  vendorIds.push({ system: CONNECTOR_NAME, instance: instanceId, value: bookingId, current: true });
  const data: JsonObject = { id: hubId, vendorIds, status };
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
  ]) {
    if (snap[key] !== undefined) data[key] = snap[key]!;
  }
  // The purchase without its other bookings: each event carries its own booking in full.
  const { _embedded, ...purchaseFields } = purchase;
  const { bookings: _others, ...embedded } = _embedded ?? {};
  data.vendor = {
    purchase: { ...purchaseFields, _embedded: embedded } as unknown as JsonObject,
    booking: booking as unknown as JsonObject,
  };
  return data;
}
