import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME } from './normalize.ts';

/** The webhook action of each normalized type Acuity announces. */
const ACTIONS: Record<string, string> = {
  'appointment.created': 'scheduled',
  'appointment.rescheduled': 'rescheduled',
  'appointment.cancelled': 'canceled',
  'appointment.updated': 'changed',
};

/**
 * A normalized event → the webhook Acuity would have sent: a form of `action`, `id`, `calendarID`
 * and `appointmentTypeID` (the simulator signs it). The content type is the form's, so the
 * conformance kit and the simulator send the fields as a form.
 *
 * @example
 * ```ts
 * encode(appointmentCreated, config);
 * // { route: 'default', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: { action: 'scheduled', id: '54321', … } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const action = ACTIONS[event.type];
  if (action === undefined) throw ConnectorError.permanent(`Acuity has no webhook for ${event.type}`);
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  const ours = ids.find((v) => v.system === CONNECTOR_NAME && v.current !== false);
  if (typeof ours?.value !== 'string')
    throw ConnectorError.permanent('the event has no Acuity appointment id');
  const body: JsonObject = { action, id: ours.value };
  if (isJsonObject(data.practitioner) && typeof data.practitioner.id === 'string')
    body.calendarID = data.practitioner.id;
  if (isJsonObject(data.service) && typeof data.service.id === 'string')
    body.appointmentTypeID = data.service.id;
  return { route: 'default', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
}
