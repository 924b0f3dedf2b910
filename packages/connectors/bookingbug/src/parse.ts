import { createHash } from 'node:crypto';
import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  type PushRoute,
  parseJsonObjectBody,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { bookingSnapshot, bookingsOf, isCancelled, purchaseOf, toRfc3339 } from './normalize.ts';

/**
 * The booking callback URL is the instance URL; the cancellation callback URL is `…/cancellation`.
 * With only the booking URL configured in BookingBug, cancellations arrive there too.
 */
export const routes: readonly PushRoute[] = [
  { name: 'default', path: '' },
  { name: 'cancellation', path: 'cancellation' },
];

const TRIGGERS = new Set(['create', 'modify', 'cancelled']);

/**
 * One notification per pushed purchase (normalize emits one event per booking). BookingBug sends no
 * event id, so the dedupe key is the purchase id, the route, JRNI's trigger name and time when
 * present, and a hash of the bookings' normalized state and of the whole canonical body: an identical
 * redelivery dedupes, an amendment does not, and a re-sent purchase that differs only in fields the
 * hub does not compare (payment log, `attended`) is still stored, then ignored by normalize as "no
 * change" instead of vanishing as a duplicate.
 *
 * @example
 * ```ts
 * parse(inboundRequest({ route: 'cancellation', body: purchase }), config);
 * // [{ type: 'cancellation', dedupeKey: 'sha256:…', orderingKey: 'purchase:11610441', … }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const purchase = purchaseOf(body);
  if (purchase === undefined)
    throw ConnectorError.badRequest('the BookingBug push is not a purchase (no id)');
  const bookings = purchase._embedded?.bookings;
  if (bookings !== undefined && !Array.isArray(bookings)) {
    throw ConnectorError.badRequest('the BookingBug purchase has _embedded.bookings that is not an array');
  }
  const trigger =
    typeof purchase.triggerName === 'string' ? purchase.triggerName.trim().toLowerCase() : undefined;
  if (trigger !== undefined && !TRIGGERS.has(trigger)) {
    throw ConnectorError.badRequest(
      `unknown JRNI triggerName ${JSON.stringify(purchase.triggerName).slice(0, 60)}`,
    );
  }
  const cancelRoute = request.route === 'cancellation';
  const type = cancelRoute && trigger !== 'cancelled' ? 'cancellation' : (trigger ?? 'purchase');
  const cancelRequest = type === 'cancellation' || type === 'cancelled';
  const list = bookingsOf(purchase);
  const state = list
    .map((b) => [String(b.id), bookingSnapshot(purchase, b, isCancelled(b, list, cancelRequest))] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const contentHash = createHash('sha256')
    .update(JSON.stringify([state, canonical(body)]))
    .digest('hex');
  const triggerTime = toRfc3339(purchase.triggerTime);
  return [
    {
      type,
      dedupeKey: dedupeKeyOf('bookingbug', String(purchase.id), type, triggerTime, contentHash),
      orderingKey: `purchase:${purchase.id}`,
      occurredAt: triggerTime ?? request.receivedAt.toISOString(),
      payload: body,
      meta: { route: request.route },
    },
  ];
}

/** JSON with object keys sorted, so a re-serialized but identical body hashes the same. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
