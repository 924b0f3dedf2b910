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
import type { Config } from './config.ts';
import { SOAP_NOTE_TYPES, type SoapNoteEventType } from './vendor.ts';

/**
 * `default` is the instance URL (secret in a header); `secret` is the same URL with the shared secret
 * as the last path segment, for when the vendor's settings only take a URL.
 */
export const routes: readonly PushRoute[] = [
  { name: 'default', path: '' },
  { name: 'secret', path: ':secret' },
];

/** True for the types this connector maps. */
export function isSoapNoteType(type: string): type is SoapNoteEventType {
  return (SOAP_NOTE_TYPES as readonly string[]).includes(type);
}

function idOf(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  return undefined;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * One webhook body → one notification.
 *
 * The dedupe key is type + note id + note `updated_at` + envelope `created_at`: a vendor retry of the
 * same event repeats all four (one stored row), while a "Send test" of the same note version carries
 * a new envelope `created_at` and so is a new notification that normalize can recognise as a test.
 * Unknown types are kept (normalize stores them as ignored).
 *
 * @example
 * ```ts
 * parse(inboundRequest({ body: { type: 'soap_note.created', created_at: '…', data: { object: { id: 10, … } } } }), config);
 * // [{ type: 'soap_note.created', dedupeKey: 'sha256:…', orderingKey: '10', occurredAt: '…', payload: {…} }]
 * ```
 */
export function parse(request: InboundRequest, _config: Config): VendorNotification[] {
  const body = parseJsonObjectBody(request);
  const type = typeof body.type === 'string' ? body.type.trim() : '';
  if (type === '') throw ConnectorError.badRequest('the Instinctive Notes webhook has no type');
  const data = isJsonObject(body.data) ? body.data : undefined;
  const object: JsonObject | undefined = data && isJsonObject(data.object) ? data.object : undefined;
  const noteId = idOf(object?.id);
  const createdAt = stringOf(body.created_at);

  if (isSoapNoteType(type)) {
    if (object === undefined)
      throw ConnectorError.badRequest(`the Instinctive Notes ${type} webhook has no data.object`);
    if (noteId === undefined) {
      throw ConnectorError.badRequest(
        `the Instinctive Notes ${type} webhook has no data.object.id (a number or a string)`,
      );
    }
  }

  const occurredAt = toRfc3339(createdAt) ?? toRfc3339(stringOf(object?.updated_at));
  const notification: VendorNotification = {
    type,
    dedupeKey: dedupeKeyOf(
      type,
      noteId,
      stringOf(object?.updated_at),
      createdAt,
      // Without any id or time, two different unknown events would otherwise share a key.
      noteId === undefined && createdAt === undefined ? request.rawBody.toString('base64') : undefined,
    ),
    payload: body,
    meta: { route: request.route },
  };
  if (noteId !== undefined) notification.orderingKey = noteId;
  if (occurredAt !== undefined) notification.occurredAt = occurredAt;
  return [notification];
}

/** Milliseconds since the epoch of an RFC 3339 time, or undefined. */
export function millisOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
