import {
  ConnectorError,
  type EncodedNotification,
  type EventEnvelope,
  isJsonObject,
  type JsonObject,
  type JsonValue,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { CONNECTOR_NAME } from './normalize.ts';

const vendorTypeOf: Readonly<Record<string, string>> = {
  'document.created': 'soap_note.created',
  'document.updated': 'soap_note.updated',
};

function text(value: JsonValue | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Instinctive Notes ids are numbers; keep a numeric-looking id numeric, as the vendor sends it. */
function vendorNumber(value: string): number | string {
  return /^[1-9]\d{0,14}$/.test(value) ? Number(value) : value;
}

/**
 * A `document.created` / `document.updated` event → the Instinctive Notes webhook that would produce
 * it. The note record starts from `data.vendor` when the event came from this connector (so nothing
 * is lost), then takes the normalized fields, so a hand-made event encodes too. Authentication is
 * left to the caller (the simulator adds the secret).
 *
 * @example
 * ```ts
 * encode(event, config); // { route: 'default', headers: { 'content-type': 'application/json' }, body: { type: 'soap_note.created', created_at: event.time, data: { object: {…} } } }
 * ```
 */
export function encode(event: EventEnvelope, _config: Config): EncodedNotification {
  const type = vendorTypeOf[event.type];
  if (type === undefined) {
    throw ConnectorError.permanent(
      `Instinctive Notes has no webhook for ${event.type} (only document.created and document.updated)`,
    );
  }
  const data = (isJsonObject(event.data) ? event.data : {}) as JsonObject;
  const vendorBody = isJsonObject(data.vendor) ? data.vendor : undefined;
  const vendorData = vendorBody && isJsonObject(vendorBody.data) ? vendorBody.data : undefined;
  const vendorNote = vendorData && isJsonObject(vendorData.object) ? vendorData.object : undefined;

  const vendorIds = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  const ours = vendorIds.filter((v) => v.system === CONNECTOR_NAME);
  const noteId =
    text((ours.find((v) => v.current !== false) ?? ours[0])?.value) ??
    (vendorNote?.id !== undefined ? String(vendorNote.id) : undefined) ??
    text(data.id);
  if (noteId === undefined) throw ConnectorError.permanent('the document event has no id to encode');

  const note: JsonObject = { ...(isJsonObject(data.content) ? data.content : {}), ...(vendorNote ?? {}) };
  note.id = vendorNumber(noteId);
  const patient = isJsonObject(data.patient) ? data.patient : {};
  if (text(patient.id) !== undefined) note.client_id = vendorNumber(text(patient.id)!);
  if (text(patient.externalRef) !== undefined) note.client_external_ref = text(patient.externalRef)!;
  const author = isJsonObject(data.author) ? data.author : {};
  if (text(author.name) !== undefined) note.created_by = text(author.name)!;
  if (text(data.createdAt) !== undefined) note.created_at = text(data.createdAt)!;
  if (text(data.updatedAt) !== undefined) note.updated_at = text(data.updatedAt)!;
  if (text(data.encounterAt) !== undefined) note.seen_at = text(data.encounterAt)!;
  if (text(data.title) !== undefined) note.name = text(data.title)!;
  const docStatus = text(data.docStatus);
  if (docStatus === 'preliminary') note.state = 'draft';
  else if (docStatus !== undefined) note.state = 'final';

  return {
    route: 'default',
    headers: { 'content-type': 'application/json' },
    body: { created_at: event.time, data: { object: note }, type },
  };
}
