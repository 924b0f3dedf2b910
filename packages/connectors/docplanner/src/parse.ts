import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type PushRoute,
  parseJsonBody,
  toRfc3339,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { type DpBookingRequest, type DpData, type DpPatient, GATE_NAMES } from './vendor.ts';

/** Docplanner pushes every notification, gates included, to the one URL agreed per client. */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

/** The offset part of an RFC 3339 value (`+01:00`, `Z`), to lend to offset-less vendor times. */
export function offsetOf(rfc3339: string | undefined): string | undefined {
  return rfc3339 ? /(Z|[+-]\d{2}:\d{2})$/.exec(rfc3339)?.[1] : undefined;
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Patient identity for matching: phone digits (last 9, so `+48 600…` equals `600…`), else the name. */
export function patientKey(patient: DpPatient | null | undefined): string | undefined {
  if (!patient) return undefined;
  const digits = (str(patient.phone) ?? '').replace(/\D/g, '');
  if (digits.length >= 6) return `tel:${digits.slice(-9)}`;
  const name = [str(patient.name), str(patient.surname)]
    .filter(Boolean)
    .join(' ')
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
  return name === '' ? undefined : `name:${name}`;
}

/** A start time as a UTC instant, so `11:30+01:00` and `10:30Z` match. */
export function instantOf(value: unknown): string | undefined {
  const rfc = toRfc3339(value);
  return rfc === undefined ? undefined : new Date(rfc).toISOString();
}

/**
 * The key a gate request and the booking that follows it share: doctor, address, start instant and
 * patient. For `booking-moving` the patient may be missing from `creating_booking` (published
 * examples vary): the booking being moved has the same patient.
 */
export function requestMatchKey(
  data: DpData,
  request: DpBookingRequest | undefined,
  fallbackPatient?: DpPatient | null,
): string | undefined {
  if (!request) return undefined;
  const doctor = str(request.doctor?.id) ?? str(data.new_doctor?.id) ?? str(data.doctor?.id);
  const address = str(request.address?.id) ?? str(data.new_address?.id) ?? str(data.address?.id);
  const start = instantOf(request.start_at);
  const patient = patientKey(request.patient) ?? patientKey(fallbackPatient);
  if (!doctor || !address || !start || !patient) return undefined;
  return `docplanner:${doctor}:${address}:${start}:${patient}`;
}

/** The ids that tell two notifications of one name apart (besides `created_at`). */
function entityParts(name: string, data: DpData): Array<string | undefined> {
  const booking = data.visit_booking;
  switch (name) {
    case 'slot-booking': {
      const r = data.visit_booking_request;
      return [data.doctor?.id, data.address?.id, instantOf(r?.start_at), patientKey(r?.patient)];
    }
    case 'booking-moving': {
      const r = data.creating_booking;
      return [str(data.canceling_booking?.id), instantOf(r?.start_at)];
    }
    case 'booking-moved':
      return [str(data.old_visit_booking?.id), str(data.new_visit_booking?.id)];
    case 'booking-payment-status-changed':
      return [
        str(booking?.id),
        str(data.visit_payment_status?.status_from),
        str(data.visit_payment_status?.status_to),
        str(data.visit_payment_status?.changed_at),
      ];
    case 'presence-marked':
      return [str(booking?.id), str(data.presence)];
    case 'break-created':
    case 'break-moved':
    case 'break-removed':
      return [str(data.break?.id), str(data.break?.since), str(data.break?.till)];
    case 'address-service-created':
    case 'address-service-changed':
    case 'address-service-deleted':
      return [data.doctor?.id, data.address?.id, str(data.address_service?.id)];
    case 'address-commercial-type-changed':
      return [data.doctor?.id, data.address?.id, str(data.address?.commercial_type)];
    case 'address-assigned':
    case 'address-unassigned':
    case 'slot-changed':
      return [data.facility?.id, data.doctor?.id, data.address?.id];
    default:
      if (booking) return [str(booking.id)];
      // Unknown names: the whole data object is the identity (a redelivery repeats it verbatim).
      return [JSON.stringify(data)];
  }
}

/**
 * Serializes what must be normalized in order. Booking notifications are keyed per facility, not
 * per booking id: a move gives the booking a new id (and may change doctor and address within the
 * facility), and the `booking-canceled` of the new id must wait for the `booking-moved` that links it.
 */
function orderingKeyOf(name: string, data: DpData): string | undefined {
  const facility = data.facility?.id;
  if (name.startsWith('break-') && data.break?.id) return `break/${data.break.id}`;
  if (name.startsWith('address-') || name === 'slot-changed') {
    return `schedule/${data.doctor?.id ?? ''}/${data.address?.id ?? ''}`;
  }
  if (facility) return `facility/${facility}/bookings`;
  const booking = data.visit_booking?.id ?? data.old_visit_booking?.id ?? data.canceling_booking?.id;
  return booking ? `booking/${booking}` : undefined;
}

/**
 * Reads one `{ name, data, created_at }` envelope (from a push body or a pulled batch) into a
 * {@link VendorNotification}. Gates are only gates when pushed: nobody waits for a pulled one.
 *
 * @example
 * ```ts
 * toVendorNotification({ name: 'slot-booked', data: {...}, created_at: '2026-03-10T11:30:00+01:00' }, 'pull');
 * ```
 */
export function toVendorNotification(value: JsonValue, source: 'push' | 'pull'): VendorNotification {
  if (!isJsonObject(value))
    throw ConnectorError.badRequest('a Docplanner notification must be a JSON object');
  const { name, data, created_at: createdAt } = value;
  if (typeof name !== 'string' || name === '') {
    throw ConnectorError.badRequest('a Docplanner notification needs a string "name"');
  }
  if (!isJsonObject(data)) throw ConnectorError.badRequest(`Docplanner ${name}: "data" must be an object`);
  const occurredAt = toRfc3339(createdAt);
  if (occurredAt === undefined) {
    throw ConnectorError.badRequest(`Docplanner ${name}: "created_at" must be an ISO 8601 date-time`, {
      createdAt: typeof createdAt === 'string' ? createdAt.slice(0, 40) : typeof createdAt,
    });
  }
  const dpData = data as unknown as DpData;
  const notification: VendorNotification = {
    type: name,
    dedupeKey: dedupeKeyOf(name, ...entityParts(name, dpData), occurredAt),
    occurredAt,
    payload: value as JsonObject,
    meta: { source },
  };
  const orderingKey = orderingKeyOf(name, dpData);
  if (orderingKey) notification.orderingKey = orderingKey;
  if (source === 'push' && GATE_NAMES.has(name)) notification.gate = true;
  return notification;
}

/**
 * Parses a push: one notification envelope (an array of them is accepted too).
 *
 * @example
 * ```ts
 * const [n] = parse(request, config); // n.type === 'slot-booked', n.dedupeKey === 'sha256:...'
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonBody(request);
  const items = Array.isArray(body) ? body : [body];
  return items.map((item) => toVendorNotification(item, 'push'));
}
