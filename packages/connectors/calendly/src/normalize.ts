import {
  ConnectorError,
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  knownStateKey,
  type NormalizeContext,
  type NormalizeResult,
  rememberKnownState,
  trimmedText,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

export const CONNECTOR_NAME = 'calendly';

/** The mapping table (also shown in the connector's docs). */
export const eventMap: readonly EventMapping[] = [
  {
    vendorType: 'invitee.created',
    normalizedTypes: ['appointment.created', 'appointment.rescheduled'],
    note: 'appointment.rescheduled when the invitee replaces an old one (`old_invitee`): the new invitee URI joins the hub id of the old one; previous = the old start/end when the hub knew them.',
  },
  {
    vendorType: 'invitee.canceled',
    normalizedTypes: ['appointment.cancelled'],
    note: "Ignored when `rescheduled` is true: the new invitee's invitee.created announces the move (both URIs are linked to one hub id whichever comes first).",
  },
  {
    vendorType: 'invitee_no_show.created',
    normalizedTypes: ['appointment.no_show'],
    note: 'The host marked the invitee a no-show: status `noshow`.',
  },
  {
    vendorType: 'invitee_no_show.deleted',
    normalizedTypes: ['appointment.status_reverted'],
    note: 'The no-show mark removed: status back to `booked`, `changes: [status]`.',
  },
];

/**
 * Calendly's no-show marks (an InviteeNoShow created or deleted, by the host or through the API),
 * each with the invitee as its payload (the same body as invitee.created, `no_show` set or null): the
 * normalized event and the status it leaves. They were stored as ignored, and a no-show never reached
 * the subscribers.
 */
const NO_SHOW: Readonly<
  Record<string, { type: 'appointment.no_show' | 'appointment.status_reverted'; status: string }>
> = {
  'invitee_no_show.created': { type: 'appointment.no_show', status: 'noshow' },
  'invitee_no_show.deleted': { type: 'appointment.status_reverted', status: 'booked' },
};

type Obj = JsonObject;

function obj(value: unknown): Obj {
  return isJsonObject(value) ? value : {};
}

/**
 * A Calendly webhook → normalized events. An invitee (one person's booking of a scheduled event) is
 * the appointment, its URI the vendor id; a reschedule replaces the invitee, so both URIs are
 * aliases of one hub id. Anything but `invitee.created` / `invitee.canceled` and the no-show marks
 * (`invitee_no_show.created` / `.deleted`) is stored as ignored.
 *
 * @example
 * ```ts
 * await normalize({ type: 'invitee.created', dedupeKey: 'sha256:…', payload }, ctx);
 * // { events: [{ type: 'appointment.created', subject: 'appointment/…', time: '…', data: {…} }] }
 * ```
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const body = obj(notification.payload);
  const invitee = obj(body.payload);
  const noShow = NO_SHOW[notification.type];
  if (notification.type !== 'invitee.created' && notification.type !== 'invitee.canceled' && !noShow) {
    return ignore(`Calendly ${JSON.stringify(notification.type)} has no normalized counterpart`);
  }
  const uri = trimmedText(invitee.uri);
  if (uri === undefined) throw ConnectorError.permanent(`${notification.type} without payload.uri`);
  const time = notification.occurredAt ?? ctx.receivedAt.toISOString();

  if (noShow) {
    // The invitee's own URI: after a reschedule it is the new invitee's, already an alias of the hub id.
    const hubId = await ctx.aliases.hubId('appointment', uri);
    const subject = `appointment/${hubId}`;
    const data = appointment(hubId, [vendorId(ctx, uri, true)], invitee, body, noShow.status);
    if (noShow.type === 'appointment.status_reverted') data.changes = ['status'];
    const known = await rememberKnownState(ctx.state, subject, data);
    return emit({ type: noShow.type, subject, time, data: known });
  }

  if (notification.type === 'invitee.canceled') {
    const next = trimmedText(invitee.new_invitee);
    if (invitee.rescheduled === true && next !== undefined) {
      // Link now so the new invitee finds this hub id even if its invitee.created came first.
      const hubId =
        (await ctx.aliases.find('appointment', uri)) ?? (await ctx.aliases.hubId('appointment', uri));
      const known = await ctx.aliases.find('appointment', next);
      if (known === undefined) await ctx.aliases.link('appointment', next, hubId);
      return ignore("a reschedule: the new invitee's invitee.created announces it (appointment.rescheduled)");
    }
    const hubId = await ctx.aliases.hubId('appointment', uri);
    const subject = `appointment/${hubId}`;
    const data = appointment(hubId, [vendorId(ctx, uri, true)], invitee, body, 'cancelled');
    const cancellation = obj(invitee.cancellation);
    const at = trimmedText(cancellation.created_at);
    if (at !== undefined) data.cancelledAt = at;
    const by = trimmedText(cancellation.canceler_type);
    const byName = trimmedText(cancellation.canceled_by);
    data.cancelledBy = {
      kind: by === 'host' ? 'practitioner' : by === 'invitee' ? 'patient' : 'unknown',
      ...(by !== undefined ? { vendorValue: by } : {}),
      ...(byName !== undefined ? { name: byName } : {}),
    };
    const known = await rememberKnownState(ctx.state, subject, data);
    return emit({ type: 'appointment.cancelled', subject, time, data: known });
  }

  const old = trimmedText(invitee.old_invitee);
  if (old === undefined) {
    const hubId = await ctx.aliases.hubId('appointment', uri);
    const subject = `appointment/${hubId}`;
    const data = appointment(hubId, [vendorId(ctx, uri, true)], invitee, body, 'booked');
    const known = await rememberKnownState(ctx.state, subject, data);
    return emit({ type: 'appointment.created', subject, time, data: known });
  }
  const hubId =
    (await ctx.aliases.find('appointment', old)) ??
    (await ctx.aliases.find('appointment', uri)) ??
    (await ctx.aliases.hubId('appointment', old));
  await ctx.aliases.link('appointment', old, hubId);
  if ((await ctx.aliases.find('appointment', uri)) === undefined) {
    await ctx.aliases.link('appointment', uri, hubId);
  }
  const subject = `appointment/${hubId}`;
  const before = obj(await ctx.state.get<Obj>(knownStateKey(subject)));
  const data = appointment(
    hubId,
    [vendorId(ctx, old, false), vendorId(ctx, uri, true)],
    invitee,
    body,
    'booked',
  );
  data.previous = {
    ...(trimmedText(before.start) !== undefined ? { start: before.start as string } : {}),
    ...(trimmedText(before.end) !== undefined ? { end: before.end as string } : {}),
    vendorId: old,
  };
  const known = await rememberKnownState(ctx.state, subject, data);
  return emit({ type: 'appointment.rescheduled', subject, time, data: known });
}

function vendorId(ctx: NormalizeContext<Config>, value: string, current: boolean): Obj {
  return { system: CONNECTOR_NAME, instance: ctx.instanceId, value, current };
}

/** The Appointment entity from an invitee and its embedded scheduled event. */
function appointment(hubId: string, vendorIds: Obj[], invitee: Obj, body: Obj, status: string): Obj {
  const event = obj(invitee.scheduled_event);
  const data: Obj = { id: hubId, vendorIds, status };
  const start = trimmedText(event.start_time);
  const end = trimmedText(event.end_time);
  if (start !== undefined) data.start = start;
  if (end !== undefined) data.end = end;
  if (start !== undefined && end !== undefined) {
    const minutes = Math.round((Date.parse(end) - Date.parse(start)) / 60_000);
    if (Number.isFinite(minutes) && minutes >= 0) data.durationMinutes = minutes;
  }
  const patient: Obj = {};
  for (const [from, to] of [
    ['name', 'name'],
    ['first_name', 'given'],
    ['last_name', 'family'],
    ['email', 'email'],
    ['text_reminder_number', 'phone'],
  ] as const) {
    const value = trimmedText(invitee[from]);
    if (value !== undefined) patient[to] = value;
  }
  if (Object.keys(patient).length > 0) data.patient = patient;
  const host = Array.isArray(event.event_memberships) ? obj(event.event_memberships[0]) : {};
  const hostUri = trimmedText(host.user);
  if (hostUri !== undefined) {
    const name = trimmedText(host.user_name);
    data.practitioner = { id: hostUri, ...(name !== undefined ? { name } : {}) };
  }
  const eventType = trimmedText(event.event_type);
  if (eventType !== undefined) {
    const name = trimmedText(event.name);
    data.service = { id: eventType, ...(name !== undefined ? { name } : {}) };
  }
  const joinUrl = trimmedText(obj(event.location).join_url);
  if (joinUrl !== undefined) data.videoCallUrl = joinUrl;
  const bookedAt = trimmedText(invitee.created_at);
  if (bookedAt !== undefined) data.bookedAt = bookedAt;
  data.vendor = body;
  return data;
}
