import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  type PushRoute,
  parseJsonObjectBody,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/**
 * `default` is the instance URL (key in the Authtoken header); `key` is the same URL with the shared
 * key as a last path segment, as Clockwise.MD's docs suggest for per-vendor routes.
 */
export const routes: readonly PushRoute[] = [
  { name: 'default', path: '' },
  { name: 'key', path: ':key' },
];

/**
 * Width of the receive-time bucket in the dedupe key. Clockwise.MD sends no event id and no
 * timestamp, and the same (appointment, type) pair legitimately repeats (checkin, undo_checkin,
 * checkin), so content alone cannot be the key. One second separates genuine repeats (a human undoes
 * and redoes) while keeping one request's key stable; vendor redeliveries seconds later are caught in
 * normalize instead, by comparing with the appointment's stored state.
 */
export const DEDUPE_BUCKET_MS = 1000;

/** The appointment id as a string, or undefined when the body has none usable. */
export function appointmentIdOf(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  return undefined;
}

/**
 * One webhook body → one notification. The type comes from `event_type`, or `action` for older
 * integrations; unknown types are kept (normalize stores them as ignored).
 *
 * @example
 * ```ts
 * parse(inboundRequest({ body: { appointment_id: 12345, event_type: 'create' } }), config);
 * // [{ type: 'create', dedupeKey: 'sha256:…', orderingKey: 'appointment:12345', payload: {…} }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const appointmentId = appointmentIdOf(body.appointment_id);
  if (appointmentId === undefined) {
    throw ConnectorError.badRequest(
      'the Clockwise.MD webhook has no appointment_id (a number or a non-empty string)',
    );
  }
  const rawType = typeof body.event_type === 'string' ? body.event_type : body.action;
  if (typeof rawType !== 'string' || rawType.trim() === '') {
    throw ConnectorError.badRequest('the Clockwise.MD webhook has no event_type (nor legacy action)');
  }
  const type = rawType.trim().toLowerCase();
  const bucket = Math.floor(request.receivedAt.getTime() / DEDUPE_BUCKET_MS);
  return [
    {
      type,
      dedupeKey: dedupeKeyOf('clockwisemd', appointmentId, type, bucket),
      orderingKey: `appointment:${appointmentId}`,
      // The vendor says nothing about when it happened: the receive time is the best estimate.
      occurredAt: request.receivedAt.toISOString(),
      payload: body,
      meta: { appointmentId, shape: typeof body.event_type === 'string' ? 'event_type' : 'action' },
    },
  ];
}
