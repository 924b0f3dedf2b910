import { createHash } from 'node:crypto';
import type { EventDraft, EventEnvelope, VendorNotification } from '@switchyard/core';

/** What {@link completeEvent} needs besides the draft. */
export interface CompleteEventContext {
  /** The connector instance id (the event's `source` and `instance`). */
  instanceId: string;
  /** The connector (or its name). */
  connector: string | { readonly name: string };
  /** The notification the draft was normalized from. */
  notification: Pick<VendorNotification, 'type' | 'dedupeKey'>;
  /** The draft's position among the notification's events (0-based). */
  index: number;
}

/**
 * Completes a connector's {@link EventDraft} into a full CloudEvent the way the hub does: a
 * deterministic `id` (from instance, dedupe key and index, so the same notification always yields
 * the same ids), `specversion` 1.0, `source` = instance, `datacontenttype` application/json,
 * `dataschema`, and the `connector` / `instance` / `vendortype` extensions.
 *
 * @example
 * ```ts
 * const event = completeEvent(draft, { instanceId: 'dp-main', connector, notification, index: 0 });
 * expect(validateEvent(event)).toEqual({ valid: true });
 * ```
 */
export function completeEvent(draft: EventDraft, context: CompleteEventContext): EventEnvelope {
  const connector = typeof context.connector === 'string' ? context.connector : context.connector.name;
  return {
    specversion: '1.0',
    id: eventId(context.instanceId, context.notification.dedupeKey, context.index),
    type: draft.type,
    source: context.instanceId,
    subject: draft.subject,
    time: draft.time,
    datacontenttype: 'application/json',
    dataschema: `https://switchyard.dev/schemas/events/${draft.type}.json`,
    data: draft.data,
    connector,
    instance: context.instanceId,
    vendortype: draft.vendorType ?? context.notification.type,
  };
}

/** A UUID-shaped id derived from the parts (version nibble 8: custom, RFC 9562). */
function eventId(instanceId: string, dedupeKey: string, index: number): string {
  const hex = createHash('sha256')
    .update(JSON.stringify([instanceId, dedupeKey, index]))
    .digest('hex');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
