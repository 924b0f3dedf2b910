import { createHash } from 'node:crypto';
import {
  ConnectorError,
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  type NormalizeContext,
  type NormalizeResult,
  trimmedText,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { APPOINTMENT_TYPE, UNAVAILABLE_BLOCK_TYPE } from './pull.ts';

export const CONNECTOR_NAME = 'cliniko';

/** The mapping table (also shown in the connector's docs). */
export const eventMap: readonly EventMapping[] = [
  {
    vendorType: APPOINTMENT_TYPE,
    normalizedTypes: [
      'appointment.created',
      'appointment.rescheduled',
      'appointment.cancelled',
      'appointment.no_show',
      'appointment.arrived',
      'appointment.updated',
      'appointment.status_reverted',
    ],
    note: 'Cliniko lists what is, not what changed: the type comes from comparing the version with the last one seen (first seen: created; starts_at or ends_at moved: rescheduled; cancelled_at, archived_at or deleted_at set: cancelled; did_not_arrive: no_show; patient_arrived: arrived; either flag cleared: status_reverted; else updated, `changes` naming what moved). A version seen for the first time already cancelled is ignored.',
  },
  {
    vendorType: UNAVAILABLE_BLOCK_TYPE,
    normalizedTypes: ['slot.blocked', 'slot.block_moved', 'slot.unblocked'],
    note: 'kind block, status busy-unavailable. From comparing the version with the last one seen: first seen: blocked; starts_at or ends_at moved: block_moved, `previous` the times seen last; deleted_at or archived_at set: unblocked, the block as it was. A version seen first already removed, or changing only the notes or repeat, is ignored.',
  },
];

/**
 * What the connector remembers of an appointment's last version, per hub id. `fields`: a digest of
 * each other normalized field (the notes are a clinic's words about a patient: only their digest is
 * kept), so that an update can name what changed; absent in a state stored before it was kept.
 */
type Seen = {
  start?: string;
  end?: string;
  status: string;
  updatedAt: string;
  fields?: Record<string, string>;
};

/** The normalized fields `appointment.updated` names in `changes`, besides the time and the status. */
const TRACKED = ['patient', 'practitioner', 'location', 'service', 'comment'] as const;

function digest(value: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(value ?? null))
    .digest('base64url')
    .slice(0, 16);
}

/** The id at the end of a Cliniko link (`{ links: { self: '…/practitioners/1' } }`). */
function linkedId(value: unknown): string | undefined {
  if (!isJsonObject(value) || !isJsonObject(value.links)) return undefined;
  const self = trimmedText(value.links.self);
  return self?.split('/').filter(Boolean).at(-1);
}

/**
 * When the appointment stopped being one: cancelled, or archived (what Cliniko's current API does
 * where it deleted: its schema has `archived_at` beside the older `deleted_at`, and its list
 * filters by `archived_at`).
 */
function endedAt(item: JsonObject): string | undefined {
  return trimmedText(item.cancelled_at) ?? trimmedText(item.archived_at) ?? trimmedText(item.deleted_at);
}

function statusOf(item: JsonObject): string {
  if (endedAt(item)) return 'cancelled';
  if (item.did_not_arrive === true) return 'noshow';
  if (item.patient_arrived === true) return 'arrived';
  return 'booked';
}

const TYPE_OF_STATUS: Record<string, string> = {
  cancelled: 'appointment.cancelled',
  noshow: 'appointment.no_show',
  arrived: 'appointment.arrived',
};

/**
 * One pulled appointment version → the event its change makes. Older versions than the last seen
 * (the poll's overlap brings them back under another key only if Cliniko changed them since) are
 * ignored, so a late page never moves an appointment back.
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  if (notification.type === UNAVAILABLE_BLOCK_TYPE) return blockEvent(notification, ctx);
  if (notification.type !== APPOINTMENT_TYPE) {
    return ignore(`Cliniko ${JSON.stringify(notification.type)} has no normalized counterpart`);
  }
  const item = isJsonObject(notification.payload) ? notification.payload : undefined;
  const vendorId = item === undefined ? undefined : String(item.id ?? '');
  const updatedAt = trimmedText(item?.updated_at);
  if (item === undefined || !vendorId || updatedAt === undefined) {
    throw ConnectorError.permanent('a Cliniko appointment without id or updated_at');
  }
  const hubId = await ctx.aliases.hubId('appointment', vendorId);
  const subject = `appointment/${hubId}`;
  const stateKey = `seen:${subject}`;
  const seen = await ctx.state.get<Seen>(stateKey);
  if (seen && Date.parse(seen.updatedAt) >= Date.parse(updatedAt)) {
    return ignore(`Cliniko appointment ${vendorId} version ${updatedAt} is not newer than ${seen.updatedAt}`);
  }
  const status = statusOf(item);
  if (!seen && status === 'cancelled') {
    return ignore(`Cliniko appointment ${vendorId} was first seen cancelled: nothing to tell subscribers`);
  }
  const start = trimmedText(item.starts_at);
  const end = trimmedText(item.ends_at);
  const data: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: vendorId, current: true }],
    status,
  };
  if (start !== undefined) data.start = start;
  if (end !== undefined) data.end = end;
  const patientName = trimmedText(item.patient_name);
  const patientId = linkedId(item.patient);
  if (patientName !== undefined || patientId !== undefined) {
    data.patient = { ...(patientId ? { id: patientId } : {}), ...(patientName ? { name: patientName } : {}) };
  }
  const practitioner = linkedId(item.practitioner);
  if (practitioner) data.practitioner = { id: practitioner };
  const business = linkedId(item.business);
  if (business) data.location = { id: business };
  const service = linkedId(item.appointment_type);
  if (service) data.service = { id: service };
  const notes = trimmedText(item.notes);
  if (notes) data.comment = notes;
  const bookedAt = trimmedText(item.created_at);
  if (bookedAt) data.bookedAt = bookedAt;
  const cancelledAt = endedAt(item);
  if (status === 'cancelled' && cancelledAt) data.cancelledAt = cancelledAt;
  data.vendor = item;

  const fields = Object.fromEntries(TRACKED.map((field) => [field, digest(data[field])]));
  // What moved since the last version, by the normalized names (`changes`, which
  // appointment.updated requires: without it every Cliniko update failed validation,
  // SY_EVENT_INVALID). A state stored before the digests were kept cannot tell: none named.
  const changed = TRACKED.filter(
    (field) => seen?.fields !== undefined && seen.fields[field] !== fields[field],
  );

  let type: string;
  if (!seen) type = 'appointment.created';
  else if (status !== seen.status && TYPE_OF_STATUS[status]) type = TYPE_OF_STATUS[status]!;
  else if (
    status !== seen.status &&
    status === 'booked' &&
    (seen.status === 'arrived' || seen.status === 'noshow')
  ) {
    // The arrival or the no-show was cleared (Cliniko nulls both flags when either is unset,
    // github.com/redguava/cliniko-api/issues/153): the undo of a workflow status, not an update
    // (docs/events.md, "Undo events").
    type = 'appointment.status_reverted';
    data.changes = ['status', ...changed];
  } else if (start !== seen.start || end !== seen.end) {
    type = 'appointment.rescheduled';
    data.previous = { ...(seen.start ? { start: seen.start } : {}), ...(seen.end ? { end: seen.end } : {}) };
  } else {
    type = 'appointment.updated';
    data.changes = changed;
  }

  const next: Seen = { status, updatedAt, ...(start ? { start } : {}), ...(end ? { end } : {}), fields };
  await ctx.state.set(stateKey, next);
  return emit({ type, subject, time: updatedAt, data });
}

/** What the connector remembers of an unavailable block's last version, per hub id. */
type SeenBlock = { start?: string; end?: string; removed?: boolean; updatedAt: string };

/**
 * One pulled unavailable block version → the slot event its change makes, with the slot fields
 * Docplanner's breaks fill (kind `block`, status `busy-unavailable`, start, end, practitioner,
 * location: the business). Cliniko's `notes`, like Docplanner's break `description`, have no slot
 * field: they stay in `vendor`. A block is removed by `DELETE` (`deleted_at`, the deleted list) or
 * archived (`archived_at`, what Cliniko's current API does where it deleted).
 */
async function blockEvent(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const item = isJsonObject(notification.payload) ? notification.payload : undefined;
  const vendorId = item === undefined ? undefined : String(item.id ?? '');
  const updatedAt = trimmedText(item?.updated_at);
  if (item === undefined || !vendorId || updatedAt === undefined) {
    throw ConnectorError.permanent('a Cliniko unavailable block without id or updated_at');
  }
  const hubId = await ctx.aliases.hubId('slot', vendorId);
  const subject = `slot/${hubId}`;
  const stateKey = `seen:${subject}`;
  const seen = await ctx.state.get<SeenBlock>(stateKey);
  if (seen && Date.parse(seen.updatedAt) >= Date.parse(updatedAt)) {
    return ignore(
      `Cliniko unavailable block ${vendorId} version ${updatedAt} is not newer than ${seen.updatedAt}`,
    );
  }
  const removed = trimmedText(item.deleted_at) !== undefined || trimmedText(item.archived_at) !== undefined;
  const start = trimmedText(item.starts_at);
  const end = trimmedText(item.ends_at);
  const next: SeenBlock = {
    updatedAt,
    ...(start ? { start } : {}),
    ...(end ? { end } : {}),
    ...(removed ? { removed } : {}),
  };
  // A removed block stays removed until a newer version says otherwise (a restored block is
  // blocked again): nothing said twice, nothing undone by the overlap bringing an old version back.
  const known = seen !== undefined && seen.removed !== true;
  let type: string;
  if (removed) {
    if (!known) {
      await ctx.state.set(stateKey, next);
      return ignore(
        `Cliniko unavailable block ${vendorId} was ${seen ? 'already removed' : 'first seen removed'}: nothing to tell subscribers`,
      );
    }
    type = 'slot.unblocked';
  } else if (!known) type = 'slot.blocked';
  else if (start !== seen.start || end !== seen.end) type = 'slot.block_moved';
  else {
    await ctx.state.set(stateKey, next);
    return ignore(
      `Cliniko unavailable block ${vendorId} changed neither its times nor whether it stands (its notes or repeat): no slot event says so`,
    );
  }
  const data: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: vendorId, current: true }],
    kind: 'block',
    status: 'busy-unavailable',
  };
  // slot.unblocked carries the times as they stood (a removed version may show other ones).
  const shown =
    type === 'slot.unblocked' ? { start: seen?.start ?? start, end: seen?.end ?? end } : { start, end };
  if (shown.start !== undefined) data.start = shown.start;
  if (shown.end !== undefined) data.end = shown.end;
  const practitioner = linkedId(item.practitioner);
  if (practitioner) data.practitioner = { id: practitioner };
  const business = linkedId(item.business);
  if (business) data.location = { id: business };
  if (type === 'slot.block_moved') {
    data.previous = {
      ...(seen?.start ? { start: seen.start } : {}),
      ...(seen?.end ? { end: seen.end } : {}),
    };
  }
  data.vendor = item;
  await ctx.state.set(stateKey, next);
  return emit({ type, subject, time: updatedAt, data });
}
