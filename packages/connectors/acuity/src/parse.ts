import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  type PushRoute,
  parseFormBody,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/** Acuity calls one URL: the instance URL. */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

/** Actions that happen once per appointment: the action and the id name the delivery. */
const ONCE = new Set(['scheduled', 'canceled', 'order.completed']);

/**
 * One webhook → one notification. Acuity sends a form (`action=scheduled&id=…&calendarID=…&
 * appointmentTypeID=…`) with no event id and no time. `scheduled` and `canceled` happen once per
 * appointment, so `action` + `id` is the dedupe key (a retry, or a replay, is stored once);
 * `rescheduled` and `changed` repeat for one appointment with the same body, so their key adds the
 * receive time, and normalize drops one that changes nothing (it reads the appointment from the
 * API, so a replay can only repeat the current state). The appointment id orders its story.
 *
 * @example
 * ```ts
 * parse(inboundRequest({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'action=scheduled&id=54321' }), config);
 * // [{ type: 'scheduled', dedupeKey: 'sha256:…', orderingKey: 'appointment:54321', payload: { action: 'scheduled', id: '54321' } }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const form = parseFormBody(request);
  const action = form.action?.trim();
  const id = form.id?.trim();
  if (!action) throw ConnectorError.badRequest('the webhook has no action');
  if (!id || !/^\d{1,20}$/.test(id)) throw ConnectorError.badRequest('the webhook has no numeric id');
  const payload: Record<string, string> = { action, id };
  for (const name of ['calendarID', 'appointmentTypeID']) {
    const value = form[name]?.trim();
    if (value) payload[name] = value;
  }
  const dedupeKey = ONCE.has(action)
    ? dedupeKeyOf(action, id)
    : dedupeKeyOf(action, id, request.receivedAt.toISOString());
  return [{ type: action, dedupeKey, orderingKey: `appointment:${id}`, payload }];
}
