import {
  ConnectorError,
  type EventMapping,
  emit,
  ignore,
  isConnectorError,
  isJsonObject,
  type JsonObject,
  type NormalizeContext,
  type NormalizeResult,
  type VendorNotification,
  vendorReadFailure,
} from '@switchyard/core';
import { appointmentFields, CONNECTOR_NAME, readAppointment } from './appointment.ts';
import type { Config } from './config.ts';

export { CONNECTOR_NAME } from './appointment.ts';

/** The mapping table (also shown in the connector's docs). */
export const eventMap: readonly EventMapping[] = [
  { vendorType: 'scheduled', normalizedTypes: ['appointment.created'], note: 'a new appointment' },
  {
    vendorType: 'rescheduled',
    normalizedTypes: ['appointment.rescheduled'],
    note: 'moved to a new time or calendar; ignored when the read shows no move',
  },
  { vendorType: 'canceled', normalizedTypes: ['appointment.cancelled'] },
  {
    vendorType: 'changed',
    normalizedTypes: [
      'appointment.created',
      'appointment.rescheduled',
      'appointment.cancelled',
      'appointment.updated',
    ],
    note: 'the catch-all: compared with the last state the hub took, as the specific action would be; ignored when nothing changed',
  },
  {
    vendorType: 'order.completed',
    normalizedTypes: [],
    note: 'orders (packages, gift certificates) are not appointments',
  },
];

/** What the hub last took of an appointment (instance state), to tell a move or a repeat. */
interface Seen {
  status: string;
  start?: string;
  practitioner?: string;
  /** Each other normalized field, as JSON, to name what a `changed` changed. */
  other: Record<string, string>;
}

/** The fields `appointment.updated` reports in `changes`. */
const OTHER = ['patient', 'service', 'comment', 'durationMinutes'] as const;

const seenKey = (id: string) => `appointment:${id}`;

/**
 * A webhook → normalized events. Acuity sends ids only, so each notification reads the appointment
 * (`GET /appointments/:id`): a read that fails is retried (transient), and on the final attempt an
 * event is still emitted with what the webhook said (its id, and the action's status). The action
 * says what happened; the read says to what. `changed` is compared with what the hub last took.
 *
 * @example
 * ```ts
 * await normalize({ type: 'scheduled', dedupeKey: 'k', payload: { action: 'scheduled', id: '54321' } }, ctx);
 * // { events: [{ type: 'appointment.created', subject: 'appointment/…', data: { status: 'booked', start: '…' } }] }
 * ```
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const action = notification.type;
  if (!['scheduled', 'rescheduled', 'canceled', 'changed'].includes(action)) {
    return ignore(`Acuity ${action} is not about an appointment`);
  }
  const payload = isJsonObject(notification.payload) ? notification.payload : {};
  const id = typeof payload.id === 'string' ? payload.id : undefined;
  if (id === undefined) throw ConnectorError.permanent(`${action} without an appointment id`);
  const hubId = await ctx.aliases.hubId('appointment', id);
  const base: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: id, current: true }],
  };
  const time = ctx.receivedAt.toISOString();
  const subject = `appointment/${hubId}`;

  // An API that cannot be reached (the client throws a transient ConnectorError) is a failed read
  // like a 503: retried, and on the final attempt the webhook's word is emitted.
  const read = await readAppointment(ctx.http, ctx.config, id).catch((error: unknown) => {
    if (isConnectorError(error) && error.kind === 'transient') return error;
    throw error;
  });
  if (!isConnectorError(read) && read.res.status === 404) {
    return ignore(`Acuity has no appointment ${id} (deleted since)`);
  }
  if (isConnectorError(read) || read.found === undefined) {
    const failure = isConnectorError(read)
      ? read
      : vendorReadFailure(read.res, {
          api: 'the Acuity API',
          entity: `appointment ${id}`,
          credentials: 'the userId/apiKey',
        });
    if (failure.kind !== 'transient' || !ctx.finalAttempt) throw failure;
    // Final attempt: what the webhook says is all there is.
    ctx.logger.warn(
      {
        appointmentId: id,
        status: isConnectorError(read) ? undefined : read.res.status,
        reason: failure.message,
      },
      'Acuity read failed; emitting without it',
    );
    const fallback = { scheduled: 'appointment.created', canceled: 'appointment.cancelled' }[
      action as 'scheduled'
    ];
    if (fallback === undefined) return ignore(`${action} of ${id}: the appointment could not be read`);
    const status = action === 'canceled' ? 'cancelled' : 'booked';
    const data: JsonObject = { ...base, status, enrichment: 'failed', vendor: payload };
    return emit({ type: fallback, subject, time, data });
  }
  const fields = appointmentFields(read.found);
  const data: JsonObject = { ...base, ...fields, vendor: read.found as unknown as JsonObject };
  const now: Seen = {
    status: String(fields.status),
    ...(typeof fields.start === 'string' ? { start: fields.start } : {}),
    ...(isJsonObject(fields.practitioner) ? { practitioner: String(fields.practitioner.id) } : {}),
    other: Object.fromEntries(OTHER.map((name) => [name, JSON.stringify(fields[name] ?? null)])),
  };
  const before = (await ctx.state.get(seenKey(id))) as Seen | undefined;
  await ctx.state.set(seenKey(id), now as unknown as JsonObject);

  const moved =
    before !== undefined &&
    (before.start !== now.start || before.practitioner !== now.practitioner) &&
    now.status !== 'cancelled';
  const previous = (): JsonObject => ({
    ...(before?.start ? { start: before.start } : {}),
    ...(before?.practitioner ? { practitioner: { id: before.practitioner } } : {}),
  });
  let type: string | undefined;
  if (action === 'scheduled') type = before === undefined ? 'appointment.created' : undefined;
  else if (action === 'canceled') type = before?.status === 'cancelled' ? undefined : 'appointment.cancelled';
  else if (action === 'rescheduled')
    type = before === undefined || moved ? 'appointment.rescheduled' : undefined;
  else if (before === undefined)
    type = now.status === 'cancelled' ? 'appointment.cancelled' : 'appointment.created';
  else if (now.status === 'cancelled' && before.status !== 'cancelled') type = 'appointment.cancelled';
  else if (moved) type = 'appointment.rescheduled';
  const changes = OTHER.filter((name) => before?.other?.[name] !== now.other[name]);
  if (type === undefined && action === 'changed' && before !== undefined && !moved && changes.length > 0) {
    type = now.status === before.status ? 'appointment.updated' : undefined;
  }
  if (type === undefined) return ignore(`a repeated ${action} of ${id}: nothing changed since the last one`);
  if (type === 'appointment.cancelled') data.status = 'cancelled';
  if (type === 'appointment.rescheduled') data.previous = previous();
  if (type === 'appointment.updated') data.changes = [...changes];
  return emit({ type, subject, time, data });
}
