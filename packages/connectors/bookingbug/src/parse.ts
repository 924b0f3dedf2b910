import { createHash } from 'node:crypto';
import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  isJsonObject,
  type JsonObject,
  type PushRoute,
  parseJsonObjectBody,
  toRfc3339,
  type VendorNotification,
} from '@switchyard/core';
import { TOKEN_ROUTE, tokenRequestFields } from './auth.ts';
import type { Config } from './config.ts';
import { jrniOf, jrniQueueEntryOf, jrniTrigger } from './jrni.ts';
import { bookingSnapshot, bookingsOf, isCancelled, purchaseOf } from './normalize.ts';

/**
 * The booking callback URL is the instance URL; the cancellation callback URL is `…/cancellation`.
 * With only the booking URL configured in BookingBug, cancellations arrive there too. JRNI's data
 * and notification webhooks use the instance URL; with OAuth2, JRNI's `accessTokenUrl` is
 * `…/oauth/token`.
 */
export const routes: readonly PushRoute[] = [
  { name: 'default', path: '' },
  { name: 'cancellation', path: 'cancellation' },
  { name: TOKEN_ROUTE, path: 'oauth/token' },
];

/**
 * One notification per push: a legacy purchase (normalize emits one event per booking), or a JRNI
 * appointment snapshot (one booking). Neither carries an event id, so the dedupe key is the purchase
 * or booking id, the vendor type, JRNI's trigger time, and a hash of the content: an identical
 * redelivery dedupes, an amendment does not, and a re-sent purchase that differs only in fields the
 * hub does not compare (payment log, `attended`) is still stored, then ignored by normalize as "no
 * change" instead of vanishing as a duplicate. A token request stores nothing: the route's
 * acknowledgement is the token.
 *
 * @example
 * ```ts
 * parse(inboundRequest({ route: 'cancellation', body: purchase }), config);
 * // [{ type: 'cancellation', dedupeKey: 'sha256:…', orderingKey: 'company:50666', … }]
 * parse(inboundRequest({ body: jrniWebhook }), config);
 * // [{ type: 'modify', dedupeKey: 'sha256:…', orderingKey: 'company:37011', … }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  if (request.route === TOKEN_ROUTE) {
    const grant = tokenRequestFields(request).grant_type;
    if (grant !== undefined && grant !== 'client_credentials') {
      throw ConnectorError.badRequest(
        `unsupported grant_type ${JSON.stringify(grant.slice(0, 40))}: only client_credentials`,
      );
    }
    return [];
  }
  const body = parseJsonObjectBody(request);
  const jrni = jrniOf(body);
  if (jrni !== undefined) {
    const trigger = jrniTrigger(jrni.triggerName);
    const bookingId = String(jrni.appointment.bookingId);
    const triggerTime = toRfc3339(jrni.triggerTime);
    return [
      {
        type: trigger,
        dedupeKey: dedupeKeyOf('jrni', bookingId, trigger, triggerTime, hashOf(canonical(body))),
        orderingKey: orderingKeyOf(jrni.company?.jrniId, `booking:${bookingId}`),
        occurredAt: triggerTime ?? request.receivedAt.toISOString(),
        payload: body,
        meta: { route: request.route, shape: 'jrni' },
      },
    ];
  }
  if (jrniQueueEntryOf(body)) {
    // A queue entry without a booking: acknowledged (JRNI retries anything else) and stored, then
    // ignored by normalize. Deduped on its content, ordered with its company's bookings.
    const trigger = jrniTrigger(body.triggerName);
    const triggerTime = toRfc3339(body.triggerTime);
    const company = isJsonObject(body.company) ? body.company.jrniId : undefined;
    return [
      {
        type: trigger,
        dedupeKey: dedupeKeyOf('jrni-queue', 'queuer', trigger, triggerTime, hashOf(canonical(body))),
        orderingKey: orderingKeyOf(company, 'queue'),
        occurredAt: triggerTime ?? request.receivedAt.toISOString(),
        payload: body,
        meta: { route: request.route, shape: 'jrni-queue' },
      },
    ];
  }
  const purchase = purchaseOf(body);
  if (purchase === undefined) {
    throw ConnectorError.badRequest(
      'the push is neither a BookingBug purchase (no id) nor a JRNI webhook (no appointment.bookingId)',
    );
  }
  const bookings = purchase._embedded?.bookings;
  if (bookings !== undefined && !Array.isArray(bookings)) {
    throw ConnectorError.badRequest('the BookingBug purchase has _embedded.bookings that is not an array');
  }
  const type = request.route === 'cancellation' ? 'cancellation' : 'purchase';
  const list = bookingsOf(purchase);
  const state = list
    .map(
      (b) =>
        [String(b.id), bookingSnapshot(purchase, b, isCancelled(b, list, type === 'cancellation'))] as const,
    )
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    {
      type,
      dedupeKey: dedupeKeyOf('bookingbug', String(purchase.id), type, null, hashOf([state, canonical(body)])),
      orderingKey: orderingKeyOf(list[0]?.company_id, `purchase:${purchase.id}`),
      occurredAt: request.receivedAt.toISOString(),
      payload: body,
      meta: { route: request.route },
    },
  ];
}

/**
 * One ordering key per BookingBug company (the place: a JRNI company is one location), the same for
 * both shapes: a legacy purchase names it on its bookings (`company_id`), a JRNI webhook as
 * `company.jrniId`, the id the admin API takes for either (commands.ts). While an instance receives
 * both (a migration from the legacy push to JRNI's webhooks), one change of a booking arrives twice
 * at once, once in each shape; with a key per purchase and one per booking the two were normalized
 * side by side, each finding no earlier state of the booking, and the booking was announced as
 * created twice. A company's notifications are few (its bookings' changes) against what one ordering
 * key sustains (docs/benchmarks.md, "One ordering key"). Without a company id, the purchase or the
 * booking orders its own notifications as before.
 */
function orderingKeyOf(company: unknown, fallback: string): string {
  if (typeof company === 'number' || (typeof company === 'string' && company !== '')) {
    return `company:${company}`;
  }
  return fallback;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/** JSON with object keys sorted, so a re-serialized but identical body hashes the same. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as JsonObject)[k])]),
    );
  }
  return value;
}
