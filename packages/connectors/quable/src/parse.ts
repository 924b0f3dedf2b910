import {
  ConnectorError,
  dedupeKeyOf,
  type InboundRequest,
  isJsonObject,
  type PushRoute,
  parseJsonObjectBody,
  toRfc3339,
  trimmedText,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

/** Quable calls one URL per webhook: the instance URL. */
export const routes: readonly PushRoute[] = [{ name: 'default', path: '' }];

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
  const type = trimmedText(body.code);
  if (type === undefined)
    throw ConnectorError.badRequest('the Quable notification has no code (the event code)');
  const uuid = trimmedText(body.uuid);
  const resource = isJsonObject(body.resource) ? body.resource : undefined;
  const process = isJsonObject(body.process) ? body.process : undefined;
  const orderingKey =
    trimmedText(resource?.code) ?? trimmedText(process?.id) ?? trimmedText(process?.correlationId);
  const occurredAt = toRfc3339(trimmedText(body.created_at));
  const notification: VendorNotification = {
    type,
    dedupeKey: uuid ?? dedupeKeyOf('quable-without-uuid', type, request.rawBody.toString('base64')),
    payload: body,
  };
  if (orderingKey !== undefined) notification.orderingKey = orderingKey;
  if (occurredAt !== undefined) notification.occurredAt = occurredAt;
  return [notification];
}
