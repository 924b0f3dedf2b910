/**
 * The FHIR R4 view of normalized events: pure functions, no I/O. One event (its `data` is the
 * entity's current known state) becomes one FHIR resource for that entity, or nothing when the
 * event has no FHIR meaning (catalog documents, assets, processes, approval requests, commands).
 *
 * The choices made where FHIR offers several ways, and why, are in docs/fhir.md; the mapping table
 * there is checked against {@link FHIR_MAPPINGS} by `docs.test.ts` beside this file.
 */
import type {
  AppointmentParticipant,
  CodeableConcept,
  DocumentReference,
  DocumentReferenceContent,
  Appointment as FhirAppointment,
  Location as FhirLocation,
  Patient as FhirPatient,
  Reference as FhirReference,
  Schedule as FhirSchedule,
  Slot as FhirSlot,
  Identifier,
  Meta,
  Practitioner,
} from '@medplum/fhirtypes';
import type {
  Appointment,
  Document,
  EventEnvelope,
  Location,
  NormalizedEventType,
  Patient,
  Reference,
  Schedule,
  Slot,
  VendorId,
} from '@switchyard/core';

/** A resource the mapping produces. */
export type FhirResource = FhirAppointment | DocumentReference | FhirSchedule | FhirSlot;

/** What {@link toFhir} gives for an event with a FHIR meaning. */
export interface FhirResult {
  /** The resource for the event's entity in its current known state, `meta` from the event. */
  resource: FhirResource;
}

/** The kinds of vendor identifier the mapping names a `system` for (see {@link identifierSystem}). */
export type IdentifierKind =
  | 'appointment'
  | 'document'
  | 'document-type'
  | 'location'
  | 'organization'
  | 'patient'
  | 'patient-external-ref'
  | 'patient-insurance-number'
  | 'patient-national-id'
  | 'practitioner'
  | 'schedule'
  | 'service'
  | 'slot';

/** `meta.tag` system whose code is the CloudEvent type the resource was made from. */
export const EVENT_TYPE_TAG_SYSTEM = 'https://switchyard.dev/fhir/CodeSystem/event-type';

/**
 * The `system` of a vendor identifier: one per connector instance and kind, because an id means
 * something only at the vendor account the instance connects to (two Docplanner accounts may both
 * have a patient 42).
 *
 * @example
 * ```ts
 * identifierSystem('docplanner-main', 'patient'); // 'urn:switchyard:docplanner-main:patient'
 * ```
 */
export function identifierSystem(instance: string, kind: IdentifierKind): string {
  return `urn:switchyard:${instance}:${kind}`;
}

/** One row of the mapping table: which resource an event type becomes, and when. */
export interface FhirMapping {
  type: NormalizedEventType;
  resourceType: FhirResource['resourceType'];
  /** When the event maps to nothing although its type maps (e.g. catalog documents). */
  unless?: string;
  /** What else decides the resource (shown in docs/fhir.md). */
  note?: string;
}

const appointmentTypes = [
  'appointment.created',
  'appointment.confirmed',
  'appointment.rescheduled',
  'appointment.updated',
  'appointment.cancelled',
  'appointment.restored',
  'appointment.arrived',
  'appointment.checked_in',
  'appointment.in_progress',
  'appointment.completed',
  'appointment.no_show',
  'appointment.status_reverted',
] as const satisfies readonly NormalizedEventType[];

/**
 * Every event type that maps to a FHIR resource, and to which. Types not listed map to nothing
 * (approval requests, catalog assets and processes, command outcomes, `hub.test`).
 */
export const FHIR_MAPPINGS: readonly FhirMapping[] = Object.freeze([
  ...appointmentTypes.map(
    (type): FhirMapping => ({ type, resourceType: 'Appointment', note: 'status from data.status' }),
  ),
  { type: 'slot.blocked', resourceType: 'Slot' },
  { type: 'slot.block_moved', resourceType: 'Slot' },
  { type: 'slot.unblocked', resourceType: 'Slot', note: 'status free (the span is free again)' },
  {
    type: 'slot.changed',
    resourceType: 'Slot',
    note: 'a Schedule when the vendor gave no start and end (availability changed, re-read it)',
  },
  { type: 'schedule.activated', resourceType: 'Schedule' },
  { type: 'schedule.updated', resourceType: 'Schedule' },
  { type: 'schedule.deactivated', resourceType: 'Schedule', note: 'active: false' },
  { type: 'document.created', resourceType: 'DocumentReference', unless: 'data.domain is catalog' },
  { type: 'document.updated', resourceType: 'DocumentReference', unless: 'data.domain is catalog' },
  {
    type: 'document.deleted',
    resourceType: 'DocumentReference',
    unless: 'data.domain is catalog',
    note: 'status entered-in-error',
  },
]);

/**
 * The event types that can map to a FHIR resource. A subscription filter that can match none of
 * them can never deliver a FHIR resource.
 *
 * @example
 * ```ts
 * FHIR_EVENT_TYPES.includes('appointment.cancelled'); // true
 * FHIR_EVENT_TYPES.includes('asset.created'); // false
 * ```
 */
export const FHIR_EVENT_TYPES: readonly NormalizedEventType[] = Object.freeze(
  FHIR_MAPPINGS.map((m) => m.type),
);

const mappedTypes: ReadonlySet<string> = new Set(FHIR_EVENT_TYPES);

/**
 * Whether {@link toFhir} gives the event a resource, decided without building it (the type, and for
 * documents the domain: only clinical notes are DocumentReferences). The fan-out asks this of every
 * stored event, so it must cost next to nothing.
 *
 * @example
 * ```ts
 * mapsToFhir(appointmentCreated); // true
 * mapsToFhir(quableDocumentCreated); // false (catalog domain)
 * ```
 */
export function mapsToFhir(event: Pick<EventEnvelope, 'type' | 'data'>): boolean {
  if (!mappedTypes.has(event.type)) return false;
  return !event.type.startsWith('document.') || (event.data as unknown as Document).domain === 'clinical';
}

/**
 * The FHIR R4 resource for an event's entity in its current known state, or undefined when the event
 * has no FHIR meaning. The event is a stored, schema-valid envelope; `meta` carries its id
 * (`versionId`), time (`lastUpdated`, as an instant) and type (a `meta.tag` in
 * {@link EVENT_TYPE_TAG_SYSTEM}).
 *
 * @example
 * ```ts
 * const result = toFhir(event); // event.type 'appointment.cancelled'
 * result?.resource.resourceType; // 'Appointment'
 * (result?.resource as Appointment).status; // 'cancelled'
 * toFhir(assetEvent); // undefined
 * ```
 */
export function toFhir(event: EventEnvelope): FhirResult | undefined {
  if (!mapsToFhir(event)) return undefined;
  const resource = resourceOf(event);
  if (resource === undefined) return undefined;
  // Looked for first: a resource has none as a rule, and the look costs a fifth of the copy.
  return { resource: hasEmptyElement(resource) ? withoutEmptyElements(resource) : resource };
}

function resourceOf(event: EventEnvelope): FhirResource | undefined {
  const entity = event.type.slice(0, event.type.indexOf('.'));
  const meta = metaOf(event);
  switch (entity) {
    case 'appointment':
      return appointmentResource(event.data as unknown as Appointment, event.instance, meta);
    case 'slot':
      return slotResource(event.data as unknown as Slot, event.instance, meta, event.type);
    case 'schedule':
      return scheduleResource(event.data as unknown as Schedule, event.instance, meta, event.type);
    case 'document':
      return documentResource(event.data as unknown as Document, event.instance, meta, event.type);
    default:
      return undefined;
  }
}

/**
 * The resource without empty arrays and objects, at any depth: FHIR's JSON form has none ("an
 * array SHALL NOT be empty", an element has a value or children). A record the vendor gave no id
 * made `identifier: []` (a practitioner, a location, an appointment without vendor ids), which the
 * validators the hub uses let through and a strict FHIR server refuses. One pass here, rather than
 * a check at every element that may come out empty.
 */
function withoutEmptyElements<T>(value: T): T {
  if (Array.isArray(value)) {
    const items = value.map(withoutEmptyElements).filter((v) => !isEmptyElement(v));
    return items as T;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      const kept = withoutEmptyElements(child);
      if (!isEmptyElement(kept)) out[key] = kept;
    }
    return out as T;
  }
  return value;
}

function hasEmptyElement(value: unknown): boolean {
  if (Array.isArray(value)) {
    if (value.length === 0) return true;
    for (const item of value) if (hasEmptyElement(item)) return true;
    return false;
  }
  if (typeof value !== 'object' || value === null) return false;
  let keys = 0;
  for (const key in value) {
    keys++;
    if (hasEmptyElement((value as Record<string, unknown>)[key])) return true;
  }
  return keys === 0;
}

function isEmptyElement(value: unknown): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function metaOf(event: EventEnvelope): Meta {
  return {
    versionId: event.id,
    lastUpdated: toInstant(event.time),
    tag: [{ system: EVENT_TYPE_TAG_SYSTEM, code: event.type }],
  };
}

/**
 * A FHIR `instant` (seconds and a zone required, at most 9 fraction digits) from an RFC 3339 time;
 * the vendor's offset is kept, as FHIR allows, so the time reads as the vendor wrote it.
 */
function toInstant(time: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.exec(time);
  if (!match) return new Date(time).toISOString();
  const [, base, fraction, zone] = match;
  return `${base}${fraction ? fraction.slice(0, 10) : ''}${zone!.toUpperCase()}`;
}

/**
 * Whether a vendor's text can be a FHIR string: FHIR refuses a blank one ("String must contain
 * non-whitespace content"), and a single whitespace-only field (a patient name or comment of "  ")
 * made the whole resource fail validation, so its delivery went dead and, under `ordering: hold`,
 * held every later event of the appointment. Such a field is left out, as an empty one always was.
 */
function hasText(value: string | null | undefined): value is string {
  return typeof value === 'string' && /\S/.test(value);
}

function identifiersOf(
  vendorIds: readonly VendorId[] | undefined,
  instance: string,
  kind: IdentifierKind,
): Identifier[] {
  return (vendorIds ?? [])
    .filter((v) => hasText(v.value))
    .map((v) => ({
      // An id the entity no longer has (a Docplanner booking moved to a new id) stays findable.
      use: v.current === false ? 'old' : 'usual',
      system: identifierSystem(v.instance ?? instance, kind),
      value: v.value,
    }));
}

function vendorIdentifier(instance: string, kind: IdentifierKind, value: string | undefined): Identifier[] {
  return hasText(value) ? [{ system: identifierSystem(instance, kind), value }] : [];
}

function referenceName(ref: Reference): string | undefined {
  return hasText(ref.display) ? ref.display : hasText(ref.name) ? ref.name : undefined;
}

/** A local reference to a contained resource, with the vendor identifier and name beside it. */
function containedReference<T extends FhirPatient | Practitioner | FhirLocation>(
  id: string,
  type: T['resourceType'],
  identifier: Identifier[],
  display: string | undefined,
): FhirReference<T> {
  return {
    reference: `#${id}`,
    type,
    ...(identifier[0] ? { identifier: identifier[0] } : {}),
    ...(hasText(display) ? { display } : {}),
  };
}

function patientResource(patient: Patient, instance: string): FhirPatient | undefined {
  const identifier = [
    ...vendorIdentifier(instance, 'patient', patient.id),
    ...vendorIdentifier(instance, 'patient-external-ref', patient.externalRef),
    ...vendorIdentifier(instance, 'patient-national-id', patient.nationalId),
    ...vendorIdentifier(instance, 'patient-insurance-number', patient.insuranceNumber),
  ];
  const name =
    hasText(patient.name) || hasText(patient.given) || hasText(patient.family)
      ? [
          {
            ...(hasText(patient.name) ? { text: patient.name } : {}),
            ...(hasText(patient.family) ? { family: patient.family } : {}),
            ...(hasText(patient.given) ? { given: [patient.given] } : {}),
          },
        ]
      : [];
  const telecom = [
    ...(hasText(patient.phone) ? [{ system: 'phone' as const, value: patient.phone }] : []),
    ...(hasText(patient.email) ? [{ system: 'email' as const, value: patient.email }] : []),
  ];
  const resource: FhirPatient = {
    resourceType: 'Patient',
    id: 'patient',
    ...(identifier.length > 0 ? { identifier } : {}),
    ...(name.length > 0 ? { name } : {}),
    ...(telecom.length > 0 ? { telecom } : {}),
    ...(patient.gender ? { gender: patient.gender } : {}),
    ...(patient.birthDate ? { birthDate: patient.birthDate } : {}),
  };
  return Object.keys(resource).length > 2 ? resource : undefined;
}

function practitionerResource(ref: Reference, instance: string): Practitioner {
  const name = referenceName(ref);
  return {
    resourceType: 'Practitioner',
    id: 'practitioner',
    identifier: vendorIdentifier(instance, 'practitioner', ref.id),
    ...(name ? { name: [{ text: name }] } : {}),
  };
}

function locationResource(location: Location, instance: string): FhirLocation {
  const a = location.address;
  const line = a?.line?.filter(hasText);
  const address =
    a && (line?.length || hasText(a.city) || hasText(a.postalCode) || hasText(a.country))
      ? {
          ...(line?.length ? { line } : {}),
          ...(hasText(a.city) ? { city: a.city } : {}),
          ...(hasText(a.postalCode) ? { postalCode: a.postalCode } : {}),
          ...(hasText(a.country) ? { country: a.country } : {}),
        }
      : undefined;
  return {
    resourceType: 'Location',
    id: 'location',
    identifier: vendorIdentifier(instance, 'location', location.id),
    ...(hasText(location.name) ? { name: location.name } : {}),
    ...(address ? { address } : {}),
  };
}

function serviceConcept(service: { id: string; name?: string }, instance: string): CodeableConcept {
  return {
    coding: [
      {
        system: identifierSystem(instance, 'service'),
        code: service.id,
        ...(hasText(service.name) ? { display: service.name } : {}),
      },
    ],
    ...(hasText(service.name) ? { text: service.name } : {}),
  };
}

/** Patient, practitioner and location as contained resources plus the references to them. */
interface Parties {
  contained: Array<FhirPatient | Practitioner | FhirLocation>;
  patient?: FhirReference<FhirPatient>;
  practitioner?: FhirReference<Practitioner>;
  location?: FhirReference<FhirLocation>;
}

function partiesOf(
  data: { patient?: Patient; practitioner?: Reference; location?: Location },
  instance: string,
): Parties {
  const parties: Parties = { contained: [] };
  const patient = data.patient ? patientResource(data.patient, instance) : undefined;
  if (patient) {
    parties.contained.push(patient);
    parties.patient = containedReference<FhirPatient>(
      'patient',
      'Patient',
      patient.identifier ?? [],
      data.patient?.name,
    );
  }
  if (data.practitioner) {
    const practitioner = practitionerResource(data.practitioner, instance);
    parties.contained.push(practitioner);
    parties.practitioner = containedReference<Practitioner>(
      'practitioner',
      'Practitioner',
      practitioner.identifier ?? [],
      referenceName(data.practitioner),
    );
  }
  if (data.location) {
    const location = locationResource(data.location, instance);
    parties.contained.push(location);
    parties.location = containedReference<FhirLocation>(
      'location',
      'Location',
      location.identifier ?? [],
      data.location.name,
    );
  }
  return parties;
}

const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const CANCELLATION_REASON = 'http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason';

function appointmentResource(data: Appointment, instance: string, meta: Meta): FhirAppointment {
  const parties = partiesOf(data, instance);
  // The participants' answer: a proposed or pending appointment still waits for it.
  const answer = data.status === 'proposed' || data.status === 'pending' ? 'needs-action' : 'accepted';
  const participant: AppointmentParticipant[] = [];
  if (parties.patient) participant.push({ actor: parties.patient, status: answer });
  if (parties.practitioner) {
    participant.push({
      type: [{ coding: [{ system: PARTICIPATION_TYPE, code: 'ATND', display: 'attender' }] }],
      actor: parties.practitioner,
      status: answer,
    });
  }
  if (parties.location) participant.push({ actor: parties.location, status: answer });
  // R4 wants at least one participant, and app-1 allows one with a type and no actor. A vendor that
  // names no party (a Clockwise.MD appointment the API did not enrich) still had a patient: the
  // subject, whose identity it did not give.
  if (participant.length === 0) {
    participant.push({
      type: [{ coding: [{ system: PARTICIPATION_TYPE, code: 'SBJ', display: 'subject' }] }],
      status: answer,
    });
  }
  const minutes = data.durationMinutes;
  const { start, end } = appointmentTimes(data);
  return {
    resourceType: 'Appointment',
    id: data.id,
    meta,
    ...(parties.contained.length > 0 ? { contained: parties.contained } : {}),
    identifier: identifiersOf(data.vendorIds, instance, 'appointment'),
    status: data.status,
    ...(data.status === 'cancelled' && data.cancelledBy ? { cancelationReason: cancelation(data) } : {}),
    ...(data.service ? { serviceType: [serviceConcept(data.service, instance)] } : {}),
    ...(start
      ? { start, end }
      : TIMELESS_STATUSES.has(data.status)
        ? {}
        : { _start: unknown, _end: unknown }),
    ...(minutes !== undefined && Number.isInteger(minutes) && minutes > 0
      ? { minutesDuration: minutes }
      : {}),
    ...(data.bookedAt ? { created: data.bookedAt } : {}),
    ...(hasText(data.comment) ? { comment: data.comment } : {}),
    participant,
  };
}

/**
 * Start and end as instants. R4 wants both or neither (app-2), and both once an appointment is booked
 * (app-3). A vendor that gives a start and no end (a Clockwise.MD walk-in queue) gets the end from the
 * duration when it has one, else the end is the start: the length is unknown, and `minutesDuration`
 * is then left out. Without a start, see {@link unknown} (docs/fhir.md).
 */
function appointmentTimes(data: Appointment): { start?: string; end?: string } {
  if (!data.start) return {};
  const start = toInstant(data.start);
  if (data.end) return { start, end: toInstant(data.end) };
  const minutes = data.durationMinutes;
  if (minutes !== undefined && minutes > 0) return { start, end: addMinutes(start, minutes) };
  return { start, end: start };
}

/** The statuses R4 lets go without start and end (app-3). */
const TIMELESS_STATUSES: ReadonlySet<string> = new Set(['proposed', 'cancelled', 'waitlist']);

/**
 * Start and end of an appointment whose time the vendor never told (a Clockwise.MD queue entry
 * removed before check-in): R4 requires them from a booked appointment on, so they are present but
 * marked with the standard data-absent-reason `unknown`, never made up.
 */
const unknown = {
  extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }],
};

/** `instant` plus some minutes, written in the instant's own offset. */
function addMinutes(instant: string, minutes: number): string {
  const zone = /(Z|[+-]\d{2}:\d{2})$/.exec(instant)?.[1] ?? 'Z';
  const offsetMinutes =
    zone === 'Z'
      ? 0
      : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const local = new Date(Date.parse(instant) + (minutes + offsetMinutes) * 60_000).toISOString().slice(0, 19);
  return `${local}${zone}`;
}

/** Who cancelled, on the R4 example value set where it has a code (patient, provider). */
function cancelation(data: Appointment): CodeableConcept {
  const kind = data.cancelledBy?.kind ?? 'unknown';
  const code = kind === 'patient' ? 'pat' : kind === 'practitioner' ? 'prov' : undefined;
  return {
    ...(code
      ? { coding: [{ system: CANCELLATION_REASON, code, display: code === 'pat' ? 'Patient' : 'Provider' }] }
      : {}),
    text: `cancelled by ${kind}`,
  };
}

type ScheduleActor = FhirReference<Practitioner | FhirLocation>;

function scheduleActors(parties: Parties, organization: Reference | undefined): ScheduleActor[] {
  const actors: ScheduleActor[] = [];
  if (parties.practitioner) actors.push(parties.practitioner);
  if (parties.location) actors.push(parties.location);
  if (actors.length === 0 && organization) {
    actors.push({ display: referenceName(organization) ?? `organization ${organization.id}` });
  }
  return actors;
}

function scheduleResource(data: Schedule, instance: string, meta: Meta, type: string): FhirSchedule {
  const parties = partiesOf(data, instance);
  const service = data.service && !data.service.removed ? data.service : undefined;
  return {
    resourceType: 'Schedule',
    id: data.id,
    meta,
    ...(parties.contained.length > 0 ? { contained: parties.contained } : {}),
    identifier: identifiersOf(data.vendorIds, instance, 'schedule'),
    active: type === 'schedule.deactivated' ? false : (data.active ?? true),
    ...(service ? { serviceType: [serviceConcept(service, instance)] } : {}),
    actor: scheduleActors(parties, data.organization),
    ...(data.change ? { comment: scheduleComment(data) } : {}),
  };
}

function scheduleComment(data: Schedule): string {
  const what = (data.change ?? '').replace(/_/g, ' ');
  const service = data.service ? ` (${data.service.name ?? data.service.id})` : '';
  return `${what}${service}`;
}

function slotResource(data: Slot, instance: string, meta: Meta, type: string): FhirSlot | FhirSchedule {
  const parties = partiesOf(data, instance);
  if (!data.start || !data.end) {
    // Availability changed without the vendor saying which span (Docplanner slot-changed): what
    // changed is the practitioner's schedule at the place; its slots must be read again.
    return {
      resourceType: 'Schedule',
      // The calendar's own id when the connector gave it: the same Schedule its schedule.* events make.
      id: data.scheduleId ?? data.id,
      meta,
      ...(parties.contained.length > 0 ? { contained: parties.contained } : {}),
      identifier: identifiersOf(data.vendorIds, instance, 'schedule'),
      actor: scheduleActors(parties, data.organization),
      comment: data.reloadRequired
        ? 'availability changed; re-read it from the vendor'
        : 'availability changed',
    };
  }
  // A removed block's event carries the block as it was (Docplanner break-removed: busy-unavailable);
  // the span is free again, and this Slot replaces the receiver's blocked one.
  const unblocked = type === 'slot.unblocked';
  // A Slot needs its Schedule: the practitioner's calendar at the place, contained here because the
  // slot's event does not name the hub's schedule.
  const schedule: FhirSchedule = {
    resourceType: 'Schedule',
    id: 'schedule',
    actor: scheduleActors(parties, data.organization),
  };
  return {
    resourceType: 'Slot',
    id: data.id,
    meta,
    contained: [schedule, ...parties.contained],
    identifier: identifiersOf(data.vendorIds, instance, 'slot'),
    schedule: { reference: '#schedule', type: 'Schedule' },
    status: unblocked ? 'free' : data.status,
    start: toInstant(data.start),
    end: toInstant(data.end),
    ...(data.kind === 'block' && !unblocked ? { comment: 'calendar block' } : {}),
  };
}

function documentResource(data: Document, instance: string, meta: Meta, type: string): DocumentReference {
  const parties = partiesOf({ ...(data.patient ? { patient: data.patient } : {}) }, instance);
  const date = data.updatedAt ?? data.createdAt;
  return {
    resourceType: 'DocumentReference',
    id: data.id,
    meta,
    ...(parties.contained.length > 0 ? { contained: parties.contained } : {}),
    identifier: identifiersOf(data.vendorIds, instance, 'document'),
    // A note deleted at the vendor is withdrawn: R4 has no "deleted" status.
    status: type === 'document.deleted' ? 'entered-in-error' : (data.status ?? 'current'),
    ...(data.docStatus ? { docStatus: data.docStatus } : {}),
    ...(hasText(data.documentType)
      ? {
          type: {
            coding: [{ system: identifierSystem(instance, 'document-type'), code: data.documentType }],
            text: data.documentType,
          },
        }
      : {}),
    ...(parties.patient ? { subject: parties.patient } : {}),
    ...(date ? { date: toInstant(date) } : {}),
    ...(data.author ? { author: [authorReference(data.author)] } : {}),
    ...(hasText(data.title) ? { description: data.title } : {}),
    content: noteContent(data),
    ...(data.encounterAt ? { context: { period: { start: data.encounterAt } } } : {}),
  };
}

function authorReference(author: NonNullable<Document['author']>): FhirReference<Practitioner | FhirPatient> {
  const type =
    author.kind === 'practitioner' ? 'Practitioner' : author.kind === 'patient' ? 'Patient' : undefined;
  return {
    ...(type ? { type } : {}),
    display: [author.name, author.vendorValue].find(hasText) ?? author.kind,
  };
}

/**
 * The note as two attachments: readable text (each section as a heading and its value) and the
 * sections as the vendor structured them (JSON), so nothing is lost to the rendering.
 */
function noteContent(data: Document): DocumentReferenceContent[] {
  const sections = data.content ?? {};
  const title = hasText(data.title) ? data.title : undefined;
  const text = noteText(sections) || (title ?? '(empty note)');
  return [
    {
      attachment: {
        contentType: 'text/plain; charset=utf-8',
        data: Buffer.from(text, 'utf8').toString('base64'),
        ...(title ? { title } : {}),
      },
    },
    {
      attachment: {
        contentType: 'application/json',
        data: Buffer.from(JSON.stringify(sections), 'utf8').toString('base64'),
        ...(title ? { title } : {}),
      },
    },
  ];
}

function noteText(sections: Record<string, unknown>): string {
  return Object.entries(sections)
    .filter(([, value]) => value !== null && value !== undefined && value !== '')
    .map(([key, value]) => {
      const heading = key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
      return `${heading}:\n${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}`;
    })
    .join('\n\n');
}
