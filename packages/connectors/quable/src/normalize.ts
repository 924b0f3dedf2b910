import {
  ConnectorError,
  type EntityKind,
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type NormalizeContext,
  type NormalizeResult,
  toRfc3339,
  trimmedText,
  type VendorNotification,
} from '@switchyard/core';
import type { Config } from './config.ts';

export const CONNECTOR_NAME = 'quable';

const ACTIONS = { create: 'created', update: 'updated', delete: 'deleted' } as const;
type Action = keyof typeof ACTIONS;

/** Process kinds whose `<kind>.finish` event becomes `process.completed`. */
export const PROCESS_KINDS = ['bulk_edit', 'import', 'export'] as const;

/**
 * Why each unmapped resource family is stored as ignored. None has a sound target: the normalized
 * model has no variant, relation, taxonomy or value-list entity, and the notification names only the
 * changed record, not the product it belongs to, so it cannot honestly become a `document.updated`.
 */
export const IGNORED_FAMILIES: Readonly<Record<string, string>> = {
  variant:
    'Quable variant (SKU) events are not mapped: the notification names the variant but not the document it belongs to, and the normalized model has no variant entity',
  link: 'Quable link events (relations between documents) are not mapped: the normalized model has no relation entity, and the notification does not say which documents were linked',
  classification:
    'Quable classification events (the catalogue tree) are not mapped: the normalized model has no classification entity',
  value:
    'Quable value events (predefined attribute values) are not mapped: the normalized model has no value-list entity',
};

/** The mapping table (also rendered into docs/connectors/quable.md). */
export const eventMap: readonly EventMapping[] = [
  ...(['create', 'update', 'delete'] as const).map((action) => ({
    vendorType: `document.${action}`,
    normalizedTypes: [`document.${ACTIONS[action]}`],
    note: 'catalog document (a product record), keyed by resource.code',
  })),
  ...(['create', 'update', 'delete'] as const).map((action) => ({
    vendorType: `media.${action}`,
    normalizedTypes: [`asset.${ACTIONS[action]}`],
    note: 'media file, keyed by resource.code',
  })),
  ...PROCESS_KINDS.map((kind) => ({
    vendorType: `${kind}.finish`,
    normalizedTypes: ['process.completed'],
    note: `data.kind ${kind}; data.id is process.id (or the correlation id)`,
  })),
  ...Object.entries(IGNORED_FAMILIES).flatMap(([family, reason]) =>
    (['create', 'update', 'delete'] as const).map((action) => ({
      vendorType: `${family}.${action}`,
      normalizedTypes: [],
      note: `stored as ignored. ${reason}`,
    })),
  ),
];

/** The `self` link's href (or the first href) of a Quable `links` array. */
function selfHref(links: JsonValue | undefined): string | undefined {
  if (!Array.isArray(links)) return undefined;
  const objects = links.filter(isJsonObject);
  return trimmedText((objects.find((l) => l.rel === 'self') ?? objects[0])?.href);
}

function stringList(value: JsonValue | undefined): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

/** The fields documents and assets share: code, author, locales, changed items, API URL, vendor record. */
function catalogFields(body: JsonObject, resource: JsonObject): JsonObject {
  const fields: JsonObject = {};
  const author = trimmedText(body.created_by);
  // created_by is a Quable user account: the catalogue team, or an API user (Quable does not say).
  if (author !== undefined) fields.author = { kind: 'staff', name: author };
  // The page's field table puts locales and updated_items at the top level, its example under
  // resource: read both.
  const localesValue = isJsonObject(resource.locales) ? resource.locales : body.locales;
  if (isJsonObject(localesValue)) {
    const locales: JsonObject = {};
    const updated = stringList(localesValue.updated);
    const inherited = stringList(localesValue.inherited);
    if (updated !== undefined) locales.updated = updated;
    if (inherited !== undefined) locales.inherited = inherited;
    fields.locales = locales;
  }
  const itemsValue = Array.isArray(resource.updated_items) ? resource.updated_items : body.updated_items;
  if (Array.isArray(itemsValue)) {
    fields.changedItems = itemsValue
      .filter(isJsonObject)
      .filter((item) => typeof item.type === 'string' && typeof item.code === 'string')
      .map((item) => ({ type: item.type as string, code: item.code as string }));
  }
  const apiUrl = selfHref(resource.links);
  if (apiUrl !== undefined) fields.apiUrl = apiUrl;
  return fields;
}

async function entityEvent(
  entity: Extract<EntityKind, 'document' | 'asset'>,
  action: Action,
  notification: VendorNotification,
  body: JsonObject,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const resource = isJsonObject(body.resource) ? body.resource : {};
  const code = trimmedText(resource.code);
  if (code === undefined) {
    throw ConnectorError.permanent(
      `Quable ${notification.type} has no resource.code: the ${entity} cannot be identified`,
    );
  }
  const at = toRfc3339(trimmedText(body.created_at));
  // Quable retries a failed (or slower than 5 s) notification twice, five minutes apart, so one
  // resource's events may arrive out of order: an update older than the last event applied would
  // undo it downstream (a product deleted at 11:50 came back with the 11:48 update retried after).
  // The last applied event's time is kept per resource, with whether it was a deletion.
  const stateKey = `${entity}:${code}`;
  if (at !== undefined) {
    const last = await ctx.state.get<JsonObject>(stateKey);
    const lastAt = typeof last?.at === 'string' ? Date.parse(last.at) : Number.NaN;
    const ms = Date.parse(at);
    if (ms < lastAt || (last?.deleted === true && action === 'update' && ms <= lastAt)) {
      return ignore(
        `Quable ${notification.type} of ${code} at ${at} arrived after its ${last?.deleted === true ? 'deletion' : 'event'} of ${String(last?.at)}: a late notification, which would undo it`,
      );
    }
  }
  const hubId = await ctx.aliases.hubId(entity, code);
  const data: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: code, current: true }],
  };
  if (entity === 'document') {
    data.domain = 'catalog';
    data.resourceType = trimmedText(resource.type) ?? 'document';
  }
  data.code = code;
  if (entity === 'document') {
    const documentType = trimmedText(resource.document_type_code);
    if (documentType !== undefined) data.documentType = documentType;
  }
  Object.assign(data, catalogFields(body, resource));
  if (at !== undefined) await ctx.state.set(stateKey, action === 'delete' ? { at, deleted: true } : { at });
  if (entity === 'document' && at !== undefined) {
    if (action === 'create') data.createdAt = at;
    if (action !== 'delete') data.updatedAt = at;
  }
  data.vendor = body;
  return emit({
    type: `${entity}.${ACTIONS[action]}`,
    subject: `${entity}/${hubId}`,
    time: notification.occurredAt ?? at ?? ctx.receivedAt.toISOString(),
    data,
  });
}

async function processEvent(
  kind: string,
  notification: VendorNotification,
  body: JsonObject,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const process = isJsonObject(body.process) ? body.process : {};
  const resource = isJsonObject(body.resource) ? body.resource : {};
  const correlationId = trimmedText(process.correlationId);
  const processId =
    trimmedText(process.id) ?? correlationId ?? trimmedText(resource.code) ?? trimmedText(body.uuid);
  if (processId === undefined) {
    throw ConnectorError.permanent(
      `Quable ${notification.type} names no process (process.id, correlationId, resource.code)`,
    );
  }
  const hubId = await ctx.aliases.hubId('process', processId);
  const data: JsonObject = { id: processId, kind };
  if (correlationId !== undefined) data.correlationId = correlationId;
  const author = trimmedText(body.created_by);
  if (author !== undefined) data.author = { kind: 'staff', name: author };
  const finishedAt = toRfc3339(trimmedText(body.created_at));
  if (finishedAt !== undefined) data.finishedAt = finishedAt;
  data.vendor = body;
  return emit({
    type: 'process.completed',
    subject: `process/${hubId}`,
    time: notification.occurredAt ?? finishedAt ?? ctx.receivedAt.toISOString(),
    data,
  });
}

/**
 * A Quable notification → `document.*` (catalog), `asset.*`, `process.completed`, or ignored.
 *
 * @example
 * ```ts
 * await normalize({ type: 'document.update', dedupeKey: 'ce6c…', payload }, ctx);
 * // { events: [{ type: 'document.updated', subject: 'document/…', data: { domain: 'catalog', code: 'product_blue_pant', … } }] }
 * ```
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const body = isJsonObject(notification.payload) ? notification.payload : {};
  const dot = notification.type.indexOf('.');
  const family = dot < 0 ? notification.type : notification.type.slice(0, dot);
  const action = dot < 0 ? '' : notification.type.slice(dot + 1);
  if (family === 'document' || family === 'media') {
    if (!(action in ACTIONS)) return ignore(`Quable ${notification.type}: unknown ${family} action`);
    return entityEvent(
      family === 'document' ? 'document' : 'asset',
      action as Action,
      notification,
      body,
      ctx,
    );
  }
  if ((PROCESS_KINDS as readonly string[]).includes(family)) {
    if (action !== 'finish') return ignore(`Quable ${notification.type}: only ${family}.finish is mapped`);
    return processEvent(family, notification, body, ctx);
  }
  const reason = IGNORED_FAMILIES[family];
  if (reason !== undefined) return ignore(`${reason} (${notification.type})`);
  return ignore(`Quable ${notification.type} has no normalized counterpart`);
}
