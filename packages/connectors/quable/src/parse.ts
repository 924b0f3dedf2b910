import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  isJsonObject,
  type PushRoute,
  parseJsonObjectBody,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/** Quable calls one URL per webhook: the instance URL. */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * One notification per request. `uuid` is the dedupe key (Quable's event id, repeated on its
 * retries); the ordering key is the resource code, so the events of one product or media are
 * normalized in arrival order.
 *
 * A body that is not a JSON object, or has no `code`, gets a 400: nothing in it says what happened.
 * Anything else is stored, because Quable disables a webhook after three failed answers in a row: a
 * notification without its (mandatory) `uuid` is keyed by its content instead, and one missing the
 * resource fails visibly in normalize rather than costing the whole subscription.
 *
 * @example
 * ```ts
 * parse(inboundRequest({ body: { uuid: 'ce6c…', code: 'document.update', resource: { code: 'product_blue_pant' } } }), config);
 * // [{ type: 'document.update', dedupeKey: 'ce6c…', orderingKey: 'product_blue_pant', occurredAt: '…', payload: {…} }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const type = text(body.code);
  if (type === undefined)
    throw ConnectorError.badRequest('the Quable notification has no code (the event code)');
  const uuid = text(body.uuid);
  const resource = isJsonObject(body.resource) ? body.resource : undefined;
  const process = isJsonObject(body.process) ? body.process : undefined;
  const orderingKey = text(resource?.code) ?? text(process?.id) ?? text(process?.correlationId);
  const occurredAt = toRfc3339(text(body.created_at));
  const notification: VendorNotification = {
    type,
    dedupeKey: uuid ?? dedupeKeyOf('quable-without-uuid', type, request.rawBody.toString('base64')),
    payload: body,
  };
  if (orderingKey !== undefined) notification.orderingKey = orderingKey;
  if (occurredAt !== undefined) notification.occurredAt = occurredAt;
  return [notification];
}

/**
 * Vendor timestamps → RFC 3339. Quable sends ISO 8601 with an offset (`2020-06-18T11:48:17+00:00`),
 * kept as is. A time without an offset (`2020-06-18 11:48:17`) is taken as UTC, the offset of every
 * timestamp Quable documents; anything unreadable gives undefined (the raw value stays in `vendor`).
 *
 * @example
 * ```ts
 * toRfc3339('2020-06-18 11:48:17'); // '2020-06-18T11:48:17Z'
 * toRfc3339('2020-06-18T11:48:17+0200'); // '2020-06-18T11:48:17+02:00'
 * ```
 */
export function toRfc3339(value: string | undefined | null): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|z|[+-]\d{2}:?\d{2})?$/.exec(
    value.trim(),
  );
  if (!match) return undefined;
  const [, date, clock, zone] = match;
  const time = clock!.length === 5 ? `${clock}:00` : clock!;
  let offset = zone === undefined || zone === 'z' ? 'Z' : zone;
  if (/^[+-]\d{4}$/.test(offset)) offset = `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const result = `${date}T${time}${offset}`;
  return Number.isNaN(Date.parse(result)) ? undefined : result;
}
