import { createHash } from 'node:crypto';
import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  isJsonObject,
  type PushRoute,
  parseJsonObjectBody,
  trimmedText,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/** Calendly calls one URL per subscription: the instance URL. */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

/**
 * One request → one notification. Calendly sends no delivery id, so the dedupe key is the event
 * name and the invitee's URI: an invitee is created once and cancelled once (a reschedule makes a
 * new invitee), so a retry is stored once and two changes never share a key. Other events are
 * keyed by their resource URI and Calendly's `created_at`.
 *
 * The ordering key is the invitee's e-mail address, hashed: a reschedule spreads one appointment
 * over two invitees (the old one's `invitee.canceled`, the new one's `invitee.created`), and a
 * second reschedule over a third; all of them share the person, so normalize sees them in arrival
 * order and the alias links it makes.
 *
 * @example
 * ```ts
 * parse(inboundRequest({ body: { event: 'invitee.created', created_at: '…', payload: { uri: 'https://api.calendly.com/scheduled_events/E/invitees/I', … } } }), config);
 * // [{ type: 'invitee.created', dedupeKey: 'sha256:…', orderingKey: 'invitee:…', occurredAt: '…', payload: {…} }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const type = trimmedText(body.event);
  if (type === undefined) throw ConnectorError.badRequest('the webhook has no event name');
  const payload = isJsonObject(body.payload) ? body.payload : undefined;
  if (payload === undefined) throw ConnectorError.badRequest(`${type}: the webhook has no payload object`);
  const uri = trimmedText(payload.uri);
  const createdAt = trimmedText(body.created_at);
  const occurredAt = createdAt !== undefined && !Number.isNaN(Date.parse(createdAt)) ? createdAt : undefined;
  const invitee = type.startsWith('invitee.');
  // A no-show mark's payload is the invitee too; it can be made, removed and made again, so its key
  // also takes Calendly's created_at (below), and it is ordered with the invitee's other webhooks.
  const aboutInvitee = invitee || type.startsWith('invitee_no_show.');
  if (aboutInvitee && uri === undefined)
    throw ConnectorError.badRequest(`${type}: payload.uri (the invitee) is missing`);
  if (!invitee && uri === undefined && occurredAt === undefined) {
    throw ConnectorError.badRequest(`${type}: neither payload.uri nor created_at identifies the webhook`);
  }
  const notification: VendorNotification = {
    type,
    dedupeKey: invitee ? dedupeKeyOf(type, uri) : dedupeKeyOf(type, uri, occurredAt),
    payload: body,
  };
  if (occurredAt !== undefined) notification.occurredAt = occurredAt;
  const email = trimmedText(payload.email)?.toLowerCase();
  if (aboutInvitee) {
    notification.orderingKey =
      email !== undefined ? `invitee:${createHash('sha256').update(email).digest('hex').slice(0, 32)}` : uri;
  }
  return [notification];
}
