import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME } from './normalize.ts';

/** The webhook each normalized event comes from (normalize.ts's eventMap, read backwards). */
const WEBHOOK: Readonly<Record<string, string>> = {
  'appointment.created': 'invitee.created',
  'appointment.rescheduled': 'invitee.created',
  'appointment.cancelled': 'invitee.canceled',
  'appointment.no_show': 'invitee_no_show.created',
  // Calendly's one workflow status is the no-show: an undone status is its mark removed.
  'appointment.status_reverted': 'invitee_no_show.deleted',
};

/**
 * A normalized event → the webhook Calendly would have sent. Starts from `data.vendor` when the
 * event came from this connector, so nothing is lost; the invitee URIs come from `vendorIds`. The
 * simulator adds the signature.
 *
 * @example
 * ```ts
 * encode(appointmentCreated, config); // { route: 'default', body: { event: 'invitee.created', payload: { uri: '…', … } } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const name = WEBHOOK[event.type];
  if (name === undefined) throw ConnectorError.permanent(`Calendly has no webhook for ${event.type}`);
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const body: JsonObject = isJsonObject(data.vendor) ? structuredClone(data.vendor) : {};
  const ids = Array.isArray(data.vendorIds)
    ? data.vendorIds.filter(isJsonObject).filter((v) => v.system === CONNECTOR_NAME)
    : [];
  const current = ids.find((v) => v.current !== false)?.value;
  if (typeof current !== 'string') throw ConnectorError.permanent('the event has no Calendly invitee URI');
  const payload: JsonObject = isJsonObject(body.payload) ? body.payload : {};
  payload.uri = current;
  const scheduled: JsonObject = isJsonObject(payload.scheduled_event) ? payload.scheduled_event : {};
  if (typeof data.start === 'string') scheduled.start_time = data.start;
  if (typeof data.end === 'string') scheduled.end_time = data.end;
  payload.scheduled_event = scheduled;
  if (event.type === 'appointment.rescheduled') {
    const previous = isJsonObject(data.previous) ? data.previous : {};
    const old =
      typeof previous.vendorId === 'string' ? previous.vendorId : ids.find((v) => v.current === false)?.value;
    if (typeof old !== 'string')
      throw ConnectorError.permanent('the reschedule has no previous Calendly invitee URI');
    payload.old_invitee = old;
  }
  if (event.type === 'appointment.cancelled') {
    payload.status = 'canceled';
    payload.rescheduled = false;
  } else {
    payload.status = 'active';
  }
  if (event.type === 'appointment.no_show' && !isJsonObject(payload.no_show)) {
    payload.no_show = { created_at: event.time };
  }
  if (event.type === 'appointment.status_reverted') payload.no_show = null;
  body.event = name;
  body.created_at = event.time;
  body.payload = payload;
  return { route: 'default', headers: { 'content-type': 'application/json' }, body };
}
