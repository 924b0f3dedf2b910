import {
  ConnectorError,
  type EventDraft,
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  knownStateKey,
  type NormalizeContext,
  type NormalizeResult,
  rememberKnownState,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

export const CONNECTOR_NAME = 'square';

/** The mapping table (also shown in the connector's docs). */
export const eventMap: readonly EventMapping[] = [
  {
    vendorType: 'booking.created',
    normalizedTypes: ['appointment.created'],
    note: 'a new booking: status `booked` (ACCEPTED) or `pending` (PENDING, awaiting the seller)',
  },
  {
    vendorType: 'booking.updated',
    normalizedTypes: [
      'appointment.cancelled',
      'appointment.no_show',
      'appointment.confirmed',
      'appointment.rescheduled',
      'appointment.updated',
    ],
    note: 'by the new status and what changed since the last version seen: CANCELLED_BY_CUSTOMER, CANCELLED_BY_SELLER, DECLINED → cancelled; NO_SHOW → no_show; PENDING → ACCEPTED → confirmed; a new start_at → rescheduled; else updated. A version not newer than the last one seen is ignored',
  },
];

/** Square booking status → the normalized status, and who cancelled. */
const STATUS: Record<string, { status: string; cancelledBy?: 'patient' | 'staff' }> = {
  PENDING: { status: 'pending' },
  ACCEPTED: { status: 'booked' },
  CANCELLED_BY_CUSTOMER: { status: 'cancelled', cancelledBy: 'patient' },
  CANCELLED_BY_SELLER: { status: 'cancelled', cancelledBy: 'staff' },
  DECLINED: { status: 'cancelled', cancelledBy: 'staff' },
  NO_SHOW: { status: 'noshow' },
};

/** The fields whose change an `appointment.updated` names. */
const COMPARED = [
  'status',
  'start',
  'end',
  'durationMinutes',
  'location',
  'patient',
  'practitioner',
  'service',
  'comment',
];

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The booking as normalized appointment fields (no id, vendorIds, vendor). */
function appointmentOf(booking: JsonObject): JsonObject {
  const out: JsonObject = {};
  const vendorStatus = text(booking.status);
  const mapped = vendorStatus === undefined ? undefined : STATUS[vendorStatus];
  if (mapped === undefined)
    throw ConnectorError.permanent(`unknown Square booking status ${JSON.stringify(vendorStatus)}`);
  out.status = mapped.status;
  const segments = Array.isArray(booking.appointment_segments)
    ? booking.appointment_segments.filter(isJsonObject)
    : [];
  const minutes = segments.reduce(
    (sum, s) => sum + (typeof s.duration_minutes === 'number' ? s.duration_minutes : 0),
    0,
  );
  const start = text(booking.start_at);
  if (start !== undefined && !Number.isNaN(Date.parse(start))) {
    out.start = start;
    if (minutes > 0)
      out.end = new Date(Date.parse(start) + minutes * 60_000).toISOString().replace('.000Z', 'Z');
  }
  if (minutes > 0) out.durationMinutes = minutes;
  const locationId = text(booking.location_id);
  if (locationId !== undefined) out.location = { id: locationId };
  const customerId = text(booking.customer_id);
  if (customerId !== undefined) out.patient = { id: customerId };
  const teamMember = text(segments[0]?.team_member_id);
  if (teamMember !== undefined) out.practitioner = { id: teamMember };
  const service = text(segments[0]?.service_variation_id);
  if (service !== undefined) out.service = { id: service };
  const note = text(booking.customer_note);
  if (note !== undefined) out.comment = note;
  return out;
}

/**
 * A Square booking notification → normalized events. Each booking's `version` orders its story: a
 * notification whose version is not newer than the last one applied is ignored (Square may deliver
 * out of order and retries). `booking.created` → `appointment.created`; `booking.updated` → by what
 * changed against the booking's known state (see {@link eventMap}).
 *
 * @example
 * ```ts
 * await normalize({ type: 'booking.updated', dedupeKey: 'e2', payload }, ctx);
 * // { events: [{ type: 'appointment.cancelled', subject: 'appointment/…', … }] }
 * ```
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  if (notification.type !== 'booking.created' && notification.type !== 'booking.updated') {
    return ignore(`${notification.type} has no normalized counterpart`);
  }
  const body = isJsonObject(notification.payload) ? notification.payload : {};
  const data = isJsonObject(body.data) ? body.data : {};
  const object = isJsonObject(data.object) ? data.object : {};
  const booking = isJsonObject(object.booking) ? object.booking : {};
  const bookingId = text(booking.id);
  if (bookingId === undefined)
    throw ConnectorError.permanent(`${notification.type} without data.object.booking.id`);
  const version = typeof booking.version === 'number' ? booking.version : undefined;
  const hubId = await ctx.aliases.hubId('appointment', bookingId);
  const subject = `appointment/${hubId}`;
  const versionKey = `version:${subject}`;
  const seen = await ctx.state.get<number>(versionKey);
  if (version !== undefined && seen !== undefined && version <= seen) {
    return ignore(
      `booking ${bookingId} version ${version} is not newer than version ${seen}, already applied`,
    );
  }
  const known = await ctx.state.get<JsonObject>(knownStateKey(subject));
  const fresh = appointmentOf(booking);
  const vendorStatus = text(booking.status) ?? '';
  const cancelledBy = STATUS[vendorStatus]?.cancelledBy;
  const draft: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: bookingId, current: true }],
    ...fresh,
  };
  let type: string;
  if (notification.type === 'booking.created') type = 'appointment.created';
  else if (fresh.status === 'cancelled' && known?.status !== 'cancelled') {
    type = 'appointment.cancelled';
    if (cancelledBy !== undefined) draft.cancelledBy = { kind: cancelledBy, vendorValue: vendorStatus };
  } else if (fresh.status === 'noshow' && known?.status !== 'noshow') type = 'appointment.no_show';
  else if (fresh.status === 'booked' && known?.status === 'pending') type = 'appointment.confirmed';
  else if (
    known !== undefined &&
    typeof known.start === 'string' &&
    fresh.start !== undefined &&
    fresh.start !== known.start
  ) {
    type = 'appointment.rescheduled';
    const previous: JsonObject = { start: known.start };
    if (typeof known.end === 'string') previous.end = known.end;
    draft.previous = previous;
  } else {
    type = 'appointment.updated';
    draft.changes = COMPARED.filter((f) => JSON.stringify(fresh[f]) !== JSON.stringify(known?.[f]));
  }
  draft.vendor = body;
  const filled = await rememberKnownState(ctx.state, subject, draft);
  if (version !== undefined) await ctx.state.set(versionKey, version);
  const event: EventDraft = {
    type,
    subject,
    time: notification.occurredAt ?? text(booking.updated_at) ?? ctx.receivedAt.toISOString(),
    data: filled,
  };
  return emit(event);
}
