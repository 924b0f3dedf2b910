import { createHash } from 'node:crypto';
import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
  type JsonValue,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME, PROCESS_KINDS } from './normalize.ts';

const codeOf: Readonly<Record<string, { code: string; resourceType: string }>> = {
  'document.created': { code: 'document.create', resourceType: 'document' },
  'document.updated': { code: 'document.update', resourceType: 'document' },
  'document.deleted': { code: 'document.delete', resourceType: 'document' },
  'asset.created': { code: 'media.create', resourceType: 'asset' },
  'asset.updated': { code: 'media.update', resourceType: 'asset' },
  'asset.deleted': { code: 'media.delete', resourceType: 'asset' },
};

function text(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A UUID derived from the event id, so encoding one event twice gives one Quable event. */
function uuidOf(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A normalized event → the Quable notification that would produce it. The payload starts from
 * `data.vendor` when the event came from this connector (nothing lost), then takes the normalized
 * fields, so a hand-made event encodes too. The simulator adds the Authorization header.
 *
 * @example
 * ```ts
 * encode(documentUpdatedEvent, config); // { route: 'default', body: { uuid: '…', code: 'document.update', resource: { code: 'product_blue_pant', … }, … } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const vendor = isJsonObject(data.vendor) ? data.vendor : {};
  const body: JsonObject = structuredClone(vendor);
  const uuid = text(vendor.uuid) ?? uuidOf(event.id);
  body.uuid = uuid;
  if (!Array.isArray(body.links)) body.links = [{ rel: 'self', href: `/events/${uuid}` }];
  body.created_at = event.time;
  const author = isJsonObject(data.author) ? text(data.author.name) : undefined;
  if (author !== undefined) body.created_by = author;
  else if (text(body.created_by) === undefined) body.created_by = 'switchyard-simulator';

  if (event.type === 'process.completed') {
    const kind = text(data.kind);
    if (kind === undefined || !(PROCESS_KINDS as readonly string[]).includes(kind)) {
      throw ConnectorError.permanent(`Quable has no finish event for process kind ${JSON.stringify(kind)}`);
    }
    body.code = `${kind}.finish`;
    const process: JsonObject = isJsonObject(body.process) ? { ...body.process } : { type: kind };
    if (text(data.id) !== undefined) process.id = text(data.id)!;
    process.correlationId = text(data.correlationId) ?? text(process.correlationId) ?? uuid;
    body.process = process;
    if (!isJsonObject(body.resource)) body.resource = { code: text(data.id) ?? uuid, type: kind };
    return { route: 'default', headers: { 'content-type': 'application/json' }, body };
  }

  const target = codeOf[event.type];
  if (target === undefined) throw ConnectorError.permanent(`Quable has no notification for ${event.type}`);
  body.code = target.code;
  const vendorIds = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  const ours = vendorIds.filter((v) => v.system === CONNECTOR_NAME);
  const code = text(data.code) ?? text((ours.find((v) => v.current !== false) ?? ours[0])?.value);
  if (code === undefined) throw ConnectorError.permanent(`the ${event.type} event has no code to encode`);
  const resource: JsonObject = isJsonObject(body.resource) ? { ...body.resource } : {};
  resource.code = code;
  resource.type = text(data.resourceType) ?? text(resource.type) ?? target.resourceType;
  if (text(data.documentType) !== undefined) resource.document_type_code = text(data.documentType)!;
  const apiUrl = text(data.apiUrl);
  if (apiUrl !== undefined && !Array.isArray(resource.links))
    resource.links = [{ rel: 'self', href: apiUrl }];
  if (isJsonObject(data.locales)) resource.locales = data.locales;
  if (Array.isArray(data.changedItems)) resource.updated_items = data.changedItems;
  body.resource = resource;
  if (!isJsonObject(body.process)) body.process = { correlationId: uuid };
  return { route: 'default', headers: { 'content-type': 'application/json' }, body };
}
