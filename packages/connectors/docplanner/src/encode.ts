import {
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  SwitchyardError,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { SYSTEM } from './normalize.ts';

type Obj = JsonObject;

function obj(value: JsonValue | undefined): Obj | undefined {
  return isJsonObject(value) ? value : undefined;
}

function s(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function compact(o: Record<string, JsonValue | undefined>): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** `derived` wins; objects merge so the vendor fields the model does not name survive. */
function deepMerge(base: JsonValue | undefined, derived: JsonValue): JsonValue {
  if (!isJsonObject(base) || !isJsonObject(derived)) return derived;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(derived)) out[k] = deepMerge(base[k], v);
  return out;
}

const ACTOR: Record<string, string> = { patient: 'user', practitioner: 'doctor', integration: 'integration' };

function actorWord(actor: JsonValue | undefined): string | undefined {
  const a = obj(actor);
  if (!a) return undefined;
  return s(a.vendorValue) ?? ACTOR[s(a.kind) ?? ''] ?? 'user';
}

const PAYMENT: Record<string, string> = { not_paid: 'not-paid' };

function paymentWord(value: JsonValue | undefined): string | undefined {
  const word = s(value);
  return word === undefined || word === 'unknown' ? undefined : (PAYMENT[word] ?? word);
}

/** The current Docplanner id of an entity (the last current one; moves append ids). */
function currentVendorId(entity: Obj): string | undefined {
  const ids = (Array.isArray(entity.vendorIds) ? entity.vendorIds : [])
    .map(obj)
    .filter((v) => v !== undefined);
  const mine = ids.filter((v) => v.system === undefined || v.system === SYSTEM);
  const current = mine.filter((v) => v.current !== false);
  return s((current.at(-1) ?? mine.at(-1))?.value);
}

function doctorOf(practitioner: JsonValue | undefined): Obj | undefined {
  const p = obj(practitioner);
  if (!p) return undefined;
  let given = s(p.given);
  let family = s(p.family);
  if (given === undefined && family === undefined) {
    const parts = (s(p.name) ?? s(p.display) ?? '').split(' ');
    given = parts[0] || undefined;
    family = parts.slice(1).join(' ') || undefined;
  }
  return compact({ id: s(p.id), name: given, surname: family });
}

function addressOf(location: JsonValue | undefined): Obj | undefined {
  const l = obj(location);
  if (!l) return undefined;
  const a = obj(l.address) ?? {};
  const lines = Array.isArray(a.line) ? a.line.filter((x) => typeof x === 'string') : [];
  return compact({
    id: s(l.id),
    name: s(l.name),
    street: lines.length > 0 ? lines.join(', ') : undefined,
    post_code: s(a.postalCode),
    city_name: s(a.city),
    commercial_type: s(l.kind),
  });
}

function serviceOf(service: JsonValue | undefined): Obj | null {
  const sv = obj(service);
  if (!sv) return null;
  const price = obj(sv.price);
  return compact({
    id: s(sv.id),
    name: s(sv.name),
    price: price ? (price.amount as number) : null,
    is_price_from: typeof price?.isFrom === 'boolean' ? price.isFrom : undefined,
    is_visible: typeof sv.visible === 'boolean' ? sv.visible : undefined,
  });
}

function patientOf(patient: JsonValue | undefined): Obj | undefined {
  const p = obj(patient);
  if (!p) return undefined;
  let given = s(p.given);
  let family = s(p.family);
  if (given === undefined && family === undefined && s(p.name)) {
    const parts = s(p.name)!.split(' ');
    given = parts[0];
    family = parts.slice(1).join(' ') || undefined;
  }
  return compact({
    name: given ?? '',
    surname: family,
    phone: s(p.phone) ?? '',
    email: s(p.email),
    birth_date: s(p.birthDate),
    nin: s(p.nationalId),
    gender: p.gender === 'male' ? 'm' : p.gender === 'female' ? 'f' : undefined,
    insurance_number: s(p.insuranceNumber),
    is_returning: typeof p.isReturning === 'boolean' ? p.isReturning : undefined,
  });
}

/** The common part of a booking and a booking request. */
function visitOf(a: Obj): Obj {
  const insurance = obj(a.insurance);
  const payment = obj(a.payment);
  return compact({
    start_at: s(a.start),
    end_at: s(a.end),
    duration: typeof a.durationMinutes === 'number' ? a.durationMinutes : undefined,
    address_service: serviceOf(a.service),
    patient: patientOf(a.patient),
    comment: s(a.comment) ?? '',
    insurance: insurance
      ? compact({
          id: s(insurance.id),
          name: s(insurance.name),
          plan: s(insurance.plan),
          plan_id: s(insurance.planId),
        })
      : null,
    visit_payment: typeof payment?.required === 'boolean' ? payment.required : false,
    videocall_url: s(a.videoCallUrl),
  });
}

function bookingOf(a: Obj, id: string | undefined): Obj {
  const cancelled = a.status === 'cancelled';
  return compact({
    id,
    status: cancelled ? 'canceled' : 'booked',
    ...visitOf(a),
    booked_by: actorWord(a.bookedBy) ?? 'user',
    canceled_by: cancelled ? (actorWord(a.cancelledBy) ?? 'user') : '',
    booked_at: s(a.bookedAt),
    canceled_at: cancelled ? (s(a.cancelledAt) ?? null) : null,
  });
}

function requestOf(a: Obj): Obj {
  return compact({ ...visitOf(a), booking_at: s(a.bookedAt), booking_by: actorWord(a.bookedBy) ?? 'user' });
}

/** facility / doctor / address, the part almost every notification's data has. */
function placeOf(entity: Obj): Obj {
  const org = obj(entity.organization);
  return compact({
    facility: org ? compact({ id: s(org.id), name: s(org.name) }) : undefined,
    doctor: doctorOf(entity.practitioner),
    address: addressOf(entity.location),
  });
}

function unknownType(event: EventEnvelope): never {
  throw new SwitchyardError('SY_EVENT_UNKNOWN_TYPE', `the Docplanner connector cannot encode ${event.type}`);
}

function appointmentData(event: EventEnvelope, a: Obj): { name: string; data: Obj } {
  const id = currentVendorId(a);
  const base = { ...placeOf(a), visit_booking: bookingOf(a, id) };
  switch (event.type) {
    case 'appointment.created':
      return { name: event.vendortype === 'slot-overbooked' ? 'slot-overbooked' : 'slot-booked', data: base };
    case 'appointment.confirmed':
      return { name: 'booking-confirmed', data: base };
    case 'appointment.cancelled':
      return { name: 'booking-canceled', data: base };
    case 'appointment.arrived':
      return { name: 'presence-marked', data: { ...base, presence: 'PRESENT' } };
    case 'appointment.no_show':
      return { name: 'presence-marked', data: { ...base, presence: 'ABSENT' } };
    case 'appointment.updated': {
      const payment = obj(a.payment) ?? {};
      return {
        name: 'booking-payment-status-changed',
        data: {
          ...base,
          visit_payment_status: compact({
            status_from: paymentWord(payment.previousStatus),
            status_to: paymentWord(payment.status) ?? 'paid',
            changed_at: s(payment.changedAt) ?? event.time,
          }),
        },
      };
    }
    case 'appointment.rescheduled': {
      const previous = obj(a.previous) ?? {};
      const ids = (Array.isArray(a.vendorIds) ? a.vendorIds : []).map(obj);
      const oldId = s(previous.vendorId) ?? s(ids.find((v) => v?.current === false)?.value);
      const old = bookingOf(
        {
          ...a,
          status: 'cancelled',
          start: previous.start ?? null,
          end: previous.end ?? null,
          cancelledAt: event.time,
        },
        oldId,
      );
      const moved: Obj = { ...placeOf(a), old_visit_booking: old, new_visit_booking: bookingOf(a, id) };
      if (previous.location) moved.old_address = addressOf(previous.location)!;
      if (previous.practitioner) moved.old_doctor = doctorOf(previous.practitioner)!;
      return { name: 'booking-moved', data: moved };
    }
    default:
      return unknownType(event);
  }
}

function approvalData(event: EventEnvelope, r: Obj): { name: string; data: Obj } {
  const proposed = obj(r.proposed) ?? {};
  if (event.type === 'appointment.booking_requested') {
    return {
      name: 'slot-booking',
      data: { ...placeOf(proposed), visit_booking_request: requestOf(proposed) },
    };
  }
  const current = obj(r.current) ?? {};
  const canceling = bookingOf({ ...current, status: 'booked' }, currentVendorId(current));
  return {
    name: 'booking-moving',
    data: { ...placeOf(current), canceling_booking: canceling, creating_booking: requestOf(proposed) },
  };
}

const SLOT_NAMES: Record<string, string> = {
  'slot.blocked': 'break-created',
  'slot.block_moved': 'break-moved',
  'slot.unblocked': 'break-removed',
};

const SCHEDULE_NAMES: Record<string, string> = {
  service_added: 'address-service-created',
  service_changed: 'address-service-changed',
  service_removed: 'address-service-deleted',
  location_kind_changed: 'address-commercial-type-changed',
};

/**
 * A normalized event → the Docplanner push that would have produced it (for the simulator and
 * round-trip tests). Fields the event does not carry come from `data.vendor`, Docplanner's original
 * `data`, when present.
 *
 * @example
 * ```ts
 * const { body } = encode(event, config); // { name: 'slot-booked', data: {...}, created_at: event.time }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const entity = obj(event.data as JsonValue) ?? {};
  let encoded: { name: string; data: Obj };
  if (event.type === 'appointment.booking_requested' || event.type === 'appointment.reschedule_requested') {
    encoded = approvalData(event, entity);
  } else if (event.type.startsWith('appointment.')) {
    encoded = appointmentData(event, entity);
  } else if (event.type in SLOT_NAMES) {
    encoded = {
      name: SLOT_NAMES[event.type]!,
      data: {
        ...placeOf(entity),
        break: compact({ id: currentVendorId(entity), since: s(entity.start), till: s(entity.end) }),
      },
    };
  } else if (event.type === 'slot.changed') {
    encoded = { name: 'slot-changed', data: placeOf(entity) };
  } else if (event.type.startsWith('schedule.')) {
    const name =
      event.type === 'schedule.activated'
        ? 'address-assigned'
        : event.type === 'schedule.deactivated'
          ? 'address-unassigned'
          : event.type === 'schedule.updated'
            ? (SCHEDULE_NAMES[s(entity.change) ?? ''] ?? 'address-service-changed')
            : unknownType(event);
    const data: Obj = placeOf(entity);
    const service = serviceOf(entity.service);
    if (service && name.startsWith('address-service-')) data.address_service = service;
    encoded = { name, data };
  } else {
    return unknownType(event);
  }
  const vendor = obj(entity.vendor);
  const data = vendor ? (deepMerge(vendor, encoded.data) as Obj) : encoded.data;
  return {
    route: 'default',
    headers: { 'content-type': 'application/json' },
    body: { name: encoded.name, data, created_at: event.time },
  };
}
