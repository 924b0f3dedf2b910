import { ConnectorError, type EncodedNotification, type EventEnvelope, isJsonObject } from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME, eventMap } from './normalize.ts';

const BY_TYPE: Record<string, string> = {
  'appointment.created': 'create',
  'appointment.rescheduled': 'reschedule',
  'appointment.updated': 'demographics_update',
  'appointment.arrived': 'checkin',
  'appointment.checked_in': 'ready',
  'appointment.in_progress': 'callback',
  'appointment.completed': 'discharge',
  'appointment.no_show': 'remove',
  'appointment.cancelled': 'remove',
  'appointment.restored': 'undo_remove',
};

/** A status_reverted event says where the appointment went back to; the undo is the step after it. */
const UNDO_BY_STEP: Record<string, string> = {
  scheduled: 'undo_checkin',
  arrived: 'undo_ready',
  ready: 'undo_callback',
  in_progress: 'undo_discharge',
};

/**
 * The Clockwise.MD webhook that would produce `event`: `{ appointment_id, event_type }` on the
 * default route (the simulator adds the key, in the Authtoken header or as a path segment).
 *
 * @example
 * ```ts
 * encode(arrivedEvent, config); // { route: 'default', body: { appointment_id: 12345, event_type: 'checkin' } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const data = isJsonObject(event.data) ? event.data : {};
  const eventType = vendorTypeOf(
    event,
    typeof data.workflowStep === 'string' ? data.workflowStep : undefined,
  );
  const id = appointmentIdOf(data);
  return {
    route: 'default',
    body: { appointment_id: /^\d+$/.test(id) ? Number(id) : id, event_type: eventType },
  };
}

function vendorTypeOf(event: EventEnvelope, workflowStep: string | undefined): string {
  const row = eventMap.find((r) => r.vendorType === event.vendortype);
  if (row?.normalizedTypes.includes(event.type)) return row.vendorType;
  const byType =
    event.type === 'appointment.status_reverted' ? UNDO_BY_STEP[workflowStep ?? ''] : BY_TYPE[event.type];
  if (byType === undefined) {
    throw ConnectorError.permanent(`Clockwise.MD has no webhook that produces ${event.type}`, {
      details: { type: event.type, workflowStep },
    });
  }
  return byType;
}

function appointmentIdOf(data: Record<string, unknown>): string {
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds : [];
  const mine = ids.filter(
    (v): v is { system: string; value: string; current?: boolean } =>
      isJsonObject(v) && v.system === CONNECTOR_NAME && typeof v.value === 'string',
  );
  const id = (mine.find((v) => v.current !== false) ?? mine[0])?.value;
  if (id === undefined)
    throw ConnectorError.permanent('the event carries no Clockwise.MD appointment id in vendorIds');
  return id;
}
