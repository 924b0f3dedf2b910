import {
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  type NormalizeContext,
  type NormalizeResult,
  toRfc3339,
  type VendorNotification,
} from '@switchyard/core';
import { type Config, resolveConfig } from './config.ts';
import { isSoapNoteType, millisOf } from './parse.ts';
import type { SoapNoteEventType } from './vendor.ts';

export const CONNECTOR_NAME = 'instinctive-notes';

/** The mapping table (also rendered into docs/connectors/instinctive-notes.md). */
export const eventMap: readonly EventMapping[] = [
  {
    vendorType: 'soap_note.created',
    normalizedTypes: ['document.created'],
    note: 'clinical document (FHIR DocumentReference shape); a "Send test" re-send is marked data.test (or ignored, per config)',
  },
  {
    vendorType: 'soap_note.updated',
    normalizedTypes: ['document.updated'],
    note: 'docStatus amended when the note was already announced as final',
  },
];

/** The normalized type of each mapped vendor type. */
export const normalizedTypeOf: Readonly<Record<SoapNoteEventType, string>> = {
  'soap_note.created': 'document.created',
  'soap_note.updated': 'document.updated',
};

/**
 * Fields of the note record that become top-level document properties; everything else (the SOAP
 * sections, prescriptions, recommendations and whatever the vendor adds) is the document `content`.
 */
const METADATA_KEYS = new Set([
  'id',
  'client_id',
  'client_external_ref',
  'created_by',
  'created_at',
  'updated_at',
  'seen_at',
  'state',
  'name',
]);

/**
 * What the hub remembers about a note (a JSON object in the state store), to recognise re-sends and
 * amendments: `created` / `updated` hold `{ version, envelopeAt }` last announced for that vendor
 * type; `lastVersion` / `lastState` the newest version announced under any type and its `state`.
 */
type NoteState = JsonObject;

function announcement(known: NoteState | undefined, type: SoapNoteEventType): JsonObject | undefined {
  const value = known?.[type === 'soap_note.created' ? 'created' : 'updated'];
  return isJsonObject(value) ? value : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function idText(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return text(value);
}

function newer(a: string | undefined, b: string | undefined): boolean {
  const ma = millisOf(a);
  const mb = millisOf(b);
  return ma !== undefined && (mb === undefined || ma > mb);
}

/**
 * Why this delivery looks like a "Send test" (a re-send of the last saved note of its type), or
 * undefined for a genuine event. Instinctive Notes puts no test flag in the payload, so two signs
 * count: this type was already announced for this note version under a different envelope time (a
 * vendor retry repeats the envelope time; a test makes a new one), or the envelope is much newer than
 * the note's last save (a genuine event is created when the note is saved).
 */
function testReasonOf(
  type: SoapNoteEventType,
  known: NoteState | undefined,
  version: string | undefined,
  envelopeAt: string | undefined,
  staleAfterSeconds: number,
): string | undefined {
  const previous = announcement(known, type);
  if (previous !== undefined && envelopeAt !== undefined && previous.envelopeAt !== envelopeAt) {
    const previousVersion = text(previous.version);
    // A note is created once: any second creation is a re-send. An update is a re-send when the same
    // or a newer version was already announced as an update.
    if (type === 'soap_note.created' || (previousVersion !== undefined && !newer(version, previousVersion))) {
      return `this note version was already announced as ${type} (event of ${text(previous.envelopeAt) ?? 'unknown time'})`;
    }
  }
  const envelopeMs = millisOf(envelopeAt);
  const versionMs = millisOf(version);
  if (staleAfterSeconds > 0 && envelopeMs !== undefined && versionMs !== undefined) {
    const lagSeconds = (envelopeMs - versionMs) / 1000;
    if (lagSeconds > staleAfterSeconds) {
      return `the event was created ${Math.round(lagSeconds)} s after the note was last saved (more than ${staleAfterSeconds} s)`;
    }
  }
  return undefined;
}

/**
 * A SOAP note event → `document.created` / `document.updated` (domain clinical). Unknown types are
 * stored as ignored. "Send test" deliveries are marked `data.test = true` or ignored, per config.
 *
 * @example
 * ```ts
 * const result = await normalize(notification, ctx);
 * // { events: [{ type: 'document.created', subject: 'document/…', time: '2018-03-26T14:20:00Z', data: { domain: 'clinical', … } }] }
 * ```
 */
export async function normalize(
  notification: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const { type } = notification;
  if (!isSoapNoteType(type)) {
    return ignore(
      `Instinctive Notes ${type} has no normalized counterpart (only soap_note.created and soap_note.updated are mapped)`,
    );
  }
  const body = isJsonObject(notification.payload) ? notification.payload : {};
  const data = isJsonObject(body.data) ? body.data : {};
  const note: JsonObject = isJsonObject(data.object) ? data.object : {};
  const noteId = idText(note.id);
  if (noteId === undefined)
    return ignore(`Instinctive Notes ${type} without data.object.id cannot be identified`);

  const { testDeliveries } = resolveConfig(ctx.config);
  const stateKey = `note/${noteId}`;
  const known = await ctx.state.get<NoteState>(stateKey);
  const version = toRfc3339(text(note.updated_at));
  const envelopeAt = toRfc3339(text(body.created_at));
  // A version older than one already announced is a late redelivery (the vendor retries for up to
  // 12 hours), not news and not a "Send test" (which re-sends the note as last saved): announced, it
  // rolled the note back for every subscriber that keeps the last event (a FHIR delivery is a whole
  // DocumentReference) and in the hub's current state, which follows the hub's order of the note's
  // events, not their times (entities/current.ts). Stored as ignored before anything is written, as
  // the other connectors do with a stale notification.
  const lastVersion = text(known?.lastVersion);
  if (version !== undefined && newer(lastVersion, version)) {
    return ignore(
      `Instinctive Notes ${type} of note ${noteId} version ${version} arrived after version ${lastVersion}: a late redelivery, which would roll the note back`,
    );
  }
  const testReason = testReasonOf(type, known, version, envelopeAt, testDeliveries.staleAfterSeconds);
  if (testReason !== undefined && testDeliveries.handling === 'ignore') {
    return ignore(`Instinctive Notes "Send test" delivery of note ${noteId}: ${testReason}`);
  }

  const hubId = await ctx.aliases.hubId('document', noteId);
  const state = text(note.state)?.toLowerCase();
  let docStatus: string | undefined;
  if (state === 'draft') docStatus = 'preliminary';
  else if (state === 'final') {
    // FHIR "amended": modified after being released. Only the hub's memory can tell that the note was
    // final before this update; an update of a note first seen now stays "final".
    docStatus = type === 'soap_note.updated' && text(known?.lastState) === 'final' ? 'amended' : 'final';
  }

  const document: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: noteId, current: true }],
    domain: 'clinical',
    status: 'current',
    documentType: 'soap-note',
  };
  if (docStatus !== undefined) document.docStatus = docStatus;
  const title = text(note.name);
  if (title !== undefined) document.title = title;
  const patient: JsonObject = {};
  const clientId = idText(note.client_id);
  const externalRef = idText(note.client_external_ref);
  if (clientId !== undefined) patient.id = clientId;
  if (externalRef !== undefined) patient.externalRef = externalRef;
  if (Object.keys(patient).length > 0) document.patient = patient;
  const author = text(note.created_by);
  // A SOAP note is written by the treating practitioner; Instinctive Notes gives only a display name.
  if (author !== undefined) document.author = { kind: 'practitioner', name: author };
  const createdAt = toRfc3339(text(note.created_at));
  const encounterAt = toRfc3339(text(note.seen_at));
  if (createdAt !== undefined) document.createdAt = createdAt;
  if (version !== undefined) document.updatedAt = version;
  if (encounterAt !== undefined) document.encounterAt = encounterAt;
  const content: JsonObject = {};
  for (const [key, value] of Object.entries(note)) if (!METADATA_KEYS.has(key)) content[key] = value;
  document.content = content;
  if (testReason !== undefined) document.test = true;
  document.vendor = body;

  const next: NoteState = { ...(known ?? {}) };
  next[type === 'soap_note.created' ? 'created' : 'updated'] = {
    version: version ?? '',
    envelopeAt: envelopeAt ?? '',
  };
  // Versions only move forward (older ones were refused above): a note without `updated_at` leaves
  // the known version and state as they are.
  if (lastVersion === undefined || !newer(lastVersion, version)) {
    if (version !== undefined) next.lastVersion = version;
    if (state !== undefined) next.lastState = state;
  }
  await ctx.state.set(stateKey, next);

  return emit({
    type: normalizedTypeOf[type],
    subject: `document/${hubId}`,
    time: notification.occurredAt ?? envelopeAt ?? version ?? ctx.receivedAt.toISOString(),
    data: document,
  });
}
