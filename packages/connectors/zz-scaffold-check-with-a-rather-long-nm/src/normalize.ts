import {
  ConnectorError,
  emit,
  type EventMapping,
  ignore,
  isJsonObject,
  type JsonObject,
  type NormalizeContext,
  type NormalizeResult,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

export const CONNECTOR_NAME = 'zz-scaffold-check-with-a-rather-long-nm';

/** The mapping table (also shown in the connector's docs). */
export const eventMap: readonly EventMapping[] = [
  { vendorType: 'booking.created', normalizedTypes: ['appointment.created'], note: 'a new booking' },
];

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * A vendor notification → normalized events. `booking.created` becomes `appointment.created`;
 * anything else is stored as ignored.
 *
 * @example
 * ```ts
 * await normalize({ type: 'booking.created', dedupeKey: 'evt_1', payload }, ctx);
 * // { events: [{ type: 'appointment.created', subject: 'appointment/…', time: '…', data: {…} }] }
 * ```
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  if (notification.type !== 'booking.created') {
    return ignore(`${notification.type} has no normalized counterpart`);
  }
  const body = isJsonObject(notification.payload) ? notification.payload : {};
  const booking = isJsonObject(body.booking) ? body.booking : {};
  const bookingId = text(booking.id);
  if (bookingId === undefined) throw ConnectorError.permanent('booking.created without booking.id');
  const hubId = await ctx.aliases.hubId('appointment', bookingId);
  const data: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: bookingId, current: true }],
    status: 'booked',
  };
  const start = text(booking.start);
  const end = text(booking.end);
  if (start !== undefined) data.start = start;
  if (end !== undefined) data.end = end;
  const patient = isJsonObject(booking.patient) ? booking.patient : {};
  const patientName = text(patient.name);
  if (patientName !== undefined) data.patient = { name: patientName };
  data.vendor = body;
  return emit({
    type: 'appointment.created',
    subject: `appointment/${hubId}`,
    time: notification.occurredAt ?? ctx.receivedAt.toISOString(),
    data,
  });
}
