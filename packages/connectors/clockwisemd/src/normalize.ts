import {
  ConnectorError,
  type EventMapping,
  emit,
  ignore,
  isConnectorError,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type NormalizeContext,
  type NormalizeResult,
  toRfc3339InZone,
  type VendorNotification,
  vendorReadFailure,
  withKnownState,
} from '@switchyard/core';
import { type Config, resolveConfig } from './config.ts';
import { appointmentIdOf } from './parse.ts';
import type { ClockwiseAppointment } from './vendor.ts';

export const CONNECTOR_NAME = 'clockwisemd';

/** The Appointment entity's `workflowStep` values Clockwise.MD's clinic workflow uses. */
export type WorkflowStep = 'scheduled' | 'arrived' | 'ready' | 'in_progress' | 'completed' | 'removed';
type Status = 'booked' | 'arrived' | 'checked-in' | 'fulfilled' | 'cancelled' | 'noshow';
export type Enrichment = 'none' | 'enriched' | 'failed';

/** Vendor type → normalized types (also rendered into docs/connectors/clockwisemd.md). */
export const eventMap: readonly EventMapping[] = [
  {
    vendorType: 'create',
    normalizedTypes: ['appointment.created'],
    note: 'status booked, workflowStep scheduled',
  },
  {
    vendorType: 'reschedule',
    normalizedTypes: ['appointment.rescheduled'],
    note: 'new times from the REST API; previous start/end from the stored state',
  },
  { vendorType: 'demographics_update', normalizedTypes: ['appointment.updated'], note: 'changes: [patient]' },
  {
    vendorType: 'checkin',
    normalizedTypes: ['appointment.arrived'],
    note: 'status arrived, workflowStep arrived',
  },
  {
    vendorType: 'ready',
    normalizedTypes: ['appointment.checked_in'],
    note: 'status checked-in, workflowStep ready',
  },
  {
    vendorType: 'callback',
    normalizedTypes: ['appointment.in_progress'],
    note: 'status checked-in, workflowStep in_progress',
  },
  {
    vendorType: 'discharge',
    normalizedTypes: ['appointment.completed'],
    note: 'status fulfilled, workflowStep completed',
  },
  {
    vendorType: 'remove',
    normalizedTypes: ['appointment.no_show', 'appointment.cancelled'],
    note: 'no_show (noshow) when the patient had not checked in, else cancelled; workflowStep removed',
  },
  {
    vendorType: 'undo_remove',
    normalizedTypes: ['appointment.restored', 'appointment.status_reverted'],
    note: 'back to the state before remove: restored when the remove was a cancellation, status_reverted when it was a no-show',
  },
  {
    vendorType: 'undo_checkin',
    normalizedTypes: ['appointment.status_reverted'],
    note: 'back to booked / scheduled',
  },
  {
    vendorType: 'undo_ready',
    normalizedTypes: ['appointment.status_reverted'],
    note: 'back to arrived / arrived',
  },
  {
    vendorType: 'undo_callback',
    normalizedTypes: ['appointment.status_reverted'],
    note: 'back to checked-in / ready',
  },
  {
    vendorType: 'undo_discharge',
    normalizedTypes: ['appointment.status_reverted'],
    note: 'back to checked-in / in_progress',
  },
];

interface Transition {
  type: string;
  status: Status;
  step: WorkflowStep;
}

/** The workflow steps whose target does not depend on what happened before. */
const FIXED: Record<string, Transition> = {
  create: { type: 'appointment.created', status: 'booked', step: 'scheduled' },
  checkin: { type: 'appointment.arrived', status: 'arrived', step: 'arrived' },
  ready: { type: 'appointment.checked_in', status: 'checked-in', step: 'ready' },
  callback: { type: 'appointment.in_progress', status: 'checked-in', step: 'in_progress' },
  discharge: { type: 'appointment.completed', status: 'fulfilled', step: 'completed' },
  undo_checkin: { type: 'appointment.status_reverted', status: 'booked', step: 'scheduled' },
  undo_ready: { type: 'appointment.status_reverted', status: 'arrived', step: 'arrived' },
  undo_callback: { type: 'appointment.status_reverted', status: 'checked-in', step: 'ready' },
  undo_discharge: { type: 'appointment.status_reverted', status: 'checked-in', step: 'in_progress' },
};

/** Steps at which the patient has checked in: a `remove` then is a cancellation, not a no-show. */
const CHECKED_IN_STEPS: ReadonlySet<string> = new Set(['arrived', 'ready', 'in_progress', 'completed']);

/** What the hub remembers about one Clockwise.MD appointment between notifications. */
export interface StoredAppointment {
  status: Status;
  step: WorkflowStep;
  /** The last vendor type applied, to recognise a redelivery of the same webhook. */
  lastType: string;
  /** Where `remove` found the appointment, for `undo_remove`. */
  beforeRemove?: { status: Status; step: WorkflowStep };
  /** Normalized details last read from the REST API (start, end, patient, ...). */
  details?: JsonObject;
}

export function stateKey(appointmentId: string): string {
  return `appointment:${appointmentId}`;
}

/**
 * State-store key of a cancellation asked through the hub (`appointment.cancel`, which Clockwise.MD
 * carries out as `remove`): `{ command, at }`, written by the command before its call. The `remove`
 * that follows is then the cancellation it was, not the no-show a `remove` before check-in means
 * otherwise (FACTS.md). Its own key, not a field of {@link StoredAppointment}: the command writes it
 * while normalization may be rewriting that record.
 */
export function cancelIntentKey(appointmentId: string): string {
  return `appointment:${appointmentId}:cancel-asked`;
}

/**
 * State-store key of the bookings asked through the hub at one hospital and start instant for one
 * patient name (`appointment.book`, Clockwise.MD's `create`): `{ <command id>: CreateAsked }`,
 * written by the command before its call. Clockwise.MD has no idempotency key and no call to list
 * or search appointments, so a create whose answer was lost (a proxy's 502, or its 503 with
 * `Retry-After` after forwarding it) can only be found through the `create` webhook that follows
 * it: its normalization names the appointment in the command's entry ({@link noteCreated}), and the
 * command's next try answers with it instead of booking again. Keyed by what the webhook's
 * appointment names (its `hospital_id`, `apt_time` and the patient's names, as sent: a name not
 * sent is empty), not by command. Why the names are in the key: the entry is read, changed and
 * written whole (the state store has get, set and delete), so two bookings of one slot asked at
 * once under one key lost each other's part, and the booking whose part was lost ended "outcome
 * unknown" although Clockwise.MD had made it (commands/clockwise-intent-race.int.test.ts); two
 * bookings of one slot for the same name at once still share one.
 *
 * @example
 * ```ts
 * createIntentKey('42', '2026-03-10T10:30:00-05:00', 'Maria', 'Lopez'); // 'create-asked:42:2026-03-10T15:30:00.000Z:maria:lopez'
 * ```
 */
export function createIntentKey(hospitalId: string, start: string, given?: string, family?: string): string {
  const at = Date.parse(start);
  const name = (n: string | undefined) => encodeURIComponent((n ?? '').trim().toLowerCase());
  return `create-asked:${hospitalId}:${Number.isNaN(at) ? start : new Date(at).toISOString()}:${name(given)}:${name(family)}`;
}

/**
 * The key earlier versions wrote a booking's entry under, before the patient's names were in
 * {@link createIntentKey}: the hospital and start instant alone, with entries of the same shape
 * ({@link CreateAsked}). Read, never written: a booking whose create went out under an earlier
 * version and whose next try (or `create` webhook) runs under this one finds its entry there, and
 * does not end "outcome unknown" for a key it was not written under. Once no earlier version's
 * create can still be in flight (a try waits at most `CREATE_SETTLE_MS`, commands.ts, after its create),
 * reading it finds nothing.
 *
 * @example
 * ```ts
 * slotOnlyIntentKey('42', '2026-03-10T10:30:00-05:00'); // 'create-asked:42:2026-03-10T15:30:00.000Z'
 * ```
 */
export function slotOnlyIntentKey(hospitalId: string, start: string): string {
  const at = Date.parse(start);
  return `create-asked:${hospitalId}:${Number.isNaN(at) ? start : new Date(at).toISOString()}`;
}

/** One booking's entry under {@link createIntentKey} (or, written by an earlier version, {@link slotOnlyIntentKey}). */
export interface CreateAsked {
  /** The patient's names as sent (`first_name`, `last_name`), to tell two bookings of a slot apart. */
  given?: string;
  family?: string;
  /**
   * The contact details as sent (`phone_number`, `email`, `dob`): a create whose appointment shows
   * other ones is another patient's, whatever its name (two Marias at one slot, or someone booking
   * a lost booking's slot under its patient's name to have the hub take theirs for it).
   */
  phone?: string;
  email?: string;
  birthDate?: string;
  /** When the create went out. */
  at: string;
  /** The appointment a `create` webhook for it named, once one did. */
  found?: string;
}

const sameName = (asked: string | undefined, read: JsonValue | undefined) =>
  asked === undefined ||
  (typeof read === 'string' && read.trim().toLowerCase() === asked.trim().toLowerCase());

/**
 * Whether a contact detail sent is the one the appointment shows, when it shows one (the read's
 * fields beyond `id` and `first_name` are unverified: FACTS.md). Phone numbers by their digits,
 * one ending with the other (a country code or a trunk prefix given on one side only).
 */
function sameContact(
  field: 'phone' | 'email' | 'birthDate',
  asked: string | undefined,
  read: JsonValue | undefined,
) {
  if (asked === undefined || typeof read !== 'string' || read.trim() === '') return true;
  if (field === 'phone') {
    const [a, b] = [asked.replace(/\D/g, ''), read.replace(/\D/g, '')];
    const [short, long] = a.length <= b.length ? [a, b] : [b, a];
    return short.length >= 7 && long.endsWith(short);
  }
  return asked.trim().toLowerCase() === read.trim().toLowerCase();
}

/** Whether a contact detail was sent and the appointment shows one (then {@link sameContact} compared them). */
const shown = (asked: string | undefined, read: JsonValue | undefined) =>
  asked !== undefined && typeof read === 'string' && read.trim() !== '';

/**
 * Whether the appointment a `create` named can be the booking `e` asked: its names, and its contact
 * details where shown; and something sent is seen on it (a name, or a contact detail it shows). A
 * booking sent with neither (no name, no contact detail, or only ones the read does not show) is
 * told apart by nothing: any create at that hospital and time matched it, and a walk-in booked by
 * the front desk was taken for its lost create (`alreadyDone`), which a cancel through the hub
 * would then remove. Such a booking ends "outcome unknown" instead.
 */
const isAsked = (e: CreateAsked, patient: JsonObject) =>
  sameName(e.given, patient.given) &&
  sameName(e.family, patient.family) &&
  sameContact('phone', e.phone, patient.phone) &&
  sameContact('email', e.email, patient.email) &&
  sameContact('birthDate', e.birthDate, patient.birthDate) &&
  (e.given !== undefined ||
    e.family !== undefined ||
    shown(e.phone, patient.phone) ||
    shown(e.email, patient.email) ||
    shown(e.birthDate, patient.birthDate));

/**
 * On a `create` webhook: names the appointment in the entry of the booking asked through the hub
 * that it is ({@link createIntentKey}): the same hospital and start instant, the same patient names
 * where sent, the same contact details where sent and shown ({@link isAsked}), not yet found. Up to five reads per `create` (its names
 * and the booking's, each sent or not: {@link createIntentKey}; then the key an earlier version
 * wrote, {@link slotOnlyIntentKey}), a write only when one matches.
 */
async function noteCreated(appointmentId: string, details: JsonObject, ctx: NormalizeContext<Config>) {
  const start = details.start;
  const hospital = isJsonObject(details.location) ? details.location.id : undefined;
  if (typeof start !== 'string' || typeof hospital !== 'string') return;
  const patient = isJsonObject(details.patient) ? details.patient : {};
  const name = (n: JsonValue | undefined) => (typeof n === 'string' ? n : undefined);
  // The keys a booking of this appointment was asked under: with each name it shows, or without
  // it (a booking sent without a family name matches whatever the appointment shows).
  const keys = new Set<string>();
  for (const given of [name(patient.given), undefined])
    for (const family of [name(patient.family), undefined])
      keys.add(createIntentKey(hospital, start, given, family));
  keys.add(slotOnlyIntentKey(hospital, start));
  for (const key of keys) {
    const asked = await ctx.state.get<JsonObject>(key);
    if (!isJsonObject(asked)) continue;
    const entries = Object.entries(asked) as unknown as [string, CreateAsked][];
    if (entries.some(([, e]) => e.found === appointmentId)) return;
    const mine = entries.find(([, e]) => e.found === undefined && isAsked(e, patient));
    if (!mine) continue;
    await ctx.state.set(key, {
      ...asked,
      [mine[0]]: { ...mine[1], found: appointmentId },
    } as unknown as JsonObject);
    return;
  }
}

/** How long a cancellation asked through the hub explains the next `remove` (the commands' echo window and more). */
export const CANCEL_INTENT_MS = 30 * 60_000;

/**
 * Turns a Clockwise.MD webhook into one appointment event, using the appointment's stored state to
 * decide what `remove` and `undo_*` mean and to fill in the snapshot when the REST API cannot be read.
 *
 * @example
 * ```ts
 * const result = await normalize(notification, ctx); // { events: [{ type: 'appointment.arrived', ... }] }
 * ```
 */
export async function normalize(
  n: VendorNotification,
  ctx: NormalizeContext<Config>,
): Promise<NormalizeResult> {
  const payload = isJsonObject(n.payload) ? n.payload : {};
  const appointmentId = appointmentIdOf(payload.appointment_id);
  if (appointmentId === undefined)
    throw ConnectorError.permanent('the stored notification has no appointment_id');
  const known = n.type in FIXED || n.type === 'remove' || n.type === 'undo_remove' || n.type === 'reschedule';
  if (!known && n.type !== 'demographics_update') {
    return ignore(`Clockwise.MD event type ${JSON.stringify(n.type)} has no normalized counterpart`);
  }

  const stored = (await ctx.state.get<JsonObject>(stateKey(appointmentId))) as StoredAppointment | undefined;
  const repeat = redeliveryReason(n.type, stored);
  if (repeat !== undefined) return ignore(repeat);

  // Read the vendor API before touching any state: a transient failure retries the whole job.
  const { record, enrichment } = await fetchAppointment(appointmentId, ctx);
  const fresh = record === undefined ? undefined : detailsOf(record);
  const before = stored?.details ?? {};
  // The event carries the appointment's known state (docs/events.md): what the API said last,
  // with what it says now on top. `details` is this connector's known state of the appointment.
  const details = withKnownState(fresh ?? {}, before);

  let transition: Transition;
  let beforeRemove = stored?.beforeRemove;
  let previous: JsonObject | undefined;
  let changes: string[] | undefined;
  const current: Transition = {
    type: '',
    status: stored?.status ?? 'booked',
    step: stored?.step ?? 'scheduled',
  };
  switch (n.type) {
    case 'remove': {
      const checkedIn = CHECKED_IN_STEPS.has(current.step);
      const asked = await ctx.state.get<JsonObject>(cancelIntentKey(appointmentId));
      const askedAt = typeof asked?.at === 'string' ? Date.parse(asked.at) : Number.NaN;
      const cancelAsked = ctx.receivedAt.getTime() - askedAt <= CANCEL_INTENT_MS;
      if (asked !== undefined) await ctx.state.delete(cancelIntentKey(appointmentId));
      transition =
        checkedIn || cancelAsked
          ? { type: 'appointment.cancelled', status: 'cancelled', step: 'removed' }
          : { type: 'appointment.no_show', status: 'noshow', step: 'removed' };
      beforeRemove = { status: current.status, step: current.step };
      break;
    }
    case 'undo_remove': {
      const back = stored?.beforeRemove ?? { status: 'booked', step: 'scheduled' };
      // The catalog's rule (docs/events.md): restored undoes a cancellation only; an undone no-show
      // is a workflow status undone, like undo_checkin. When the hub never saw the remove, restored.
      transition = {
        type: current.status === 'noshow' ? 'appointment.status_reverted' : 'appointment.restored',
        ...back,
      };
      beforeRemove = undefined;
      changes = ['status', 'workflowStep'];
      break;
    }
    case 'reschedule': {
      transition = { ...current, type: 'appointment.rescheduled' };
      previous = pick(before, ['start', 'end']);
      changes = ['start', 'end'];
      break;
    }
    case 'demographics_update': {
      transition = { ...current, type: 'appointment.updated' };
      changes = ['patient'];
      break;
    }
    default: {
      transition = FIXED[n.type]!;
      if (transition.type === 'appointment.status_reverted') changes = ['status', 'workflowStep'];
    }
  }

  const hubId = await ctx.aliases.hubId('appointment', appointmentId);
  const data: JsonObject = {
    id: hubId,
    vendorIds: [{ system: CONNECTOR_NAME, instance: ctx.instanceId, value: appointmentId, current: true }],
    status: transition.status,
    workflowStep: transition.step,
    ...details,
    enrichment,
    vendor:
      record === undefined ? { webhook: payload } : { webhook: payload, appointment: record as JsonObject },
  };
  // Always present on a reschedule (the event schema requires it), empty when the old time was never read.
  if (previous !== undefined) data.previous = previous;
  if (changes !== undefined) data.changes = changes;

  const next: StoredAppointment = {
    status: transition.status,
    step: transition.step,
    lastType: n.type,
    details,
  };
  if (beforeRemove !== undefined) next.beforeRemove = beforeRemove;
  await ctx.state.set(stateKey(appointmentId), next as unknown as JsonObject);
  if (n.type === 'create') await noteCreated(appointmentId, details, ctx);

  return emit({
    type: transition.type,
    subject: `appointment/${hubId}`,
    time: n.occurredAt ?? ctx.receivedAt.toISOString(),
    data,
  });
}

/** The step a forward workflow webhook takes the appointment to. */
const FORWARD_STEP: Readonly<Record<string, WorkflowStep>> = {
  checkin: 'arrived',
  ready: 'ready',
  callback: 'in_progress',
  discharge: 'completed',
  remove: 'removed',
};

/**
 * Clockwise.MD's webhook has no id, so a vendor redelivery a few seconds later gets a new dedupe key.
 * A forward step (checkin, ready, callback, discharge, remove) to the step the appointment is already
 * at is such a redelivery, whatever came between (a `demographics_update` or `reschedule` does not
 * move the workflow): a genuine repeat (checkin, undo_checkin, checkin) has the undo between, which
 * moved it back. An undo applied twice in a row is one too.
 */
function redeliveryReason(type: string, stored: StoredAppointment | undefined): string | undefined {
  if (stored === undefined) return undefined;
  if (type === 'create') return 'the appointment is already known: a repeated create';
  if (type === 'reschedule' || type === 'demographics_update') return undefined;
  const repeated =
    FORWARD_STEP[type] !== undefined ? stored.step === FORWARD_STEP[type] : stored.lastType === type;
  return repeated ? `a repeated ${type}: the appointment is already ${stored.step}` : undefined;
}

async function fetchAppointment(
  appointmentId: string,
  ctx: NormalizeContext<Config>,
): Promise<{ record: ClockwiseAppointment | undefined; enrichment: Enrichment }> {
  const config = resolveConfig(ctx.config);
  if (!config.enrich || config.apiKey === undefined || config.apiKey === '') {
    return { record: undefined, enrichment: 'none' };
  }
  const giveUpOrRetry = (message: string, retryAfterMs?: number, cause?: unknown) => {
    if (ctx.finalAttempt) {
      ctx.logger.warn({ appointmentId, attempt: ctx.attempt }, `${message}; emitting without enrichment`);
      return { record: undefined, enrichment: 'failed' as const };
    }
    throw ConnectorError.transient(message, { retryAfterMs, cause, details: { appointmentId } });
  };
  let res: Awaited<ReturnType<typeof ctx.http.request>>;
  try {
    res = await ctx.http.request({
      url: `${config.apiBaseUrl}/appointments/${encodeURIComponent(appointmentId)}`,
      headers: { Authtoken: config.apiKey, Accept: 'application/json' },
    });
  } catch (error) {
    if (isConnectorError(error) && error.kind !== 'transient') throw error;
    return giveUpOrRetry(
      `the Clockwise.MD API could not be reached: ${(error as Error).message}`,
      undefined,
      error,
    );
  }
  if (res.status === 404) {
    ctx.logger.warn(
      { appointmentId },
      'Clockwise.MD API has no such appointment; emitting without enrichment',
    );
    return { record: undefined, enrichment: 'failed' };
  }
  const record = res.status >= 200 && res.status < 300 ? unwrap(res.body) : undefined;
  if (record === undefined) {
    const failure = vendorReadFailure(res, {
      api: 'the Clockwise.MD API',
      entity: `appointment ${appointmentId}`,
      credentials: 'the API key',
      details: { appointmentId },
    });
    if (failure.kind !== 'transient') throw failure;
    return giveUpOrRetry(failure.message, failure.retryAfterMs);
  }
  return { record, enrichment: 'enriched' };
}

/** The record itself, or inside an `appointment` wrapper (the response envelope is unverified). */
function unwrap(body: unknown): ClockwiseAppointment | undefined {
  if (!isJsonObject(body)) return undefined;
  if (isJsonObject(body.appointment) && body.id === undefined)
    return body.appointment as ClockwiseAppointment;
  return body as ClockwiseAppointment;
}

function str(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.trim() !== '' && value !== 'null') return value.trim();
  return undefined;
}

/** The normalized fields the REST record gives (only those present). */
export function detailsOf(record: ClockwiseAppointment): JsonObject {
  const out: JsonObject = {};
  const timeZone = str(record.time_zone);
  if (timeZone !== undefined && isTimeZone(timeZone)) out.timeZone = timeZone;
  const start = toRfc3339InZone(
    record.apt_time ?? record.start_time ?? record.appointment_time,
    out.timeZone as string,
  );
  const end = toRfc3339InZone(record.end_time, out.timeZone as string);
  if (start !== undefined) out.start = start;
  if (end !== undefined) out.end = end;
  if (start !== undefined && end !== undefined) {
    const minutes = (Date.parse(end) - Date.parse(start)) / 60000;
    if (minutes >= 0) out.durationMinutes = minutes;
  }
  const patient: JsonObject = {};
  const given = str(record.first_name);
  const family = str(record.last_name);
  const patientId = str(record.patient_id);
  if (patientId !== undefined) patient.id = patientId;
  if (given !== undefined) patient.given = given;
  if (family !== undefined) patient.family = family;
  if (given !== undefined || family !== undefined) patient.name = [given, family].filter(Boolean).join(' ');
  const phone = str(record.phone ?? record.phone_number ?? record.mobile_phone);
  if (phone !== undefined) patient.phone = phone;
  const email = str(record.email);
  if (email !== undefined) patient.email = email;
  const birthDate = toDate(record.dob ?? record.date_of_birth ?? record.birth_date);
  if (birthDate !== undefined) patient.birthDate = birthDate;
  if (Object.keys(patient).length > 0) out.patient = patient;
  const hospitalId = str(record.hospital_id);
  if (hospitalId !== undefined) {
    const name = str(record.hospital_name);
    out.location = name === undefined ? { id: hospitalId } : { id: hospitalId, name };
  }
  const providerId = str(record.provider_id);
  if (providerId !== undefined) {
    const name = str(record.provider_name);
    out.practitioner = name === undefined ? { id: providerId } : { id: providerId, name };
  }
  const reasonId = str(record.reason_id);
  if (reasonId !== undefined) {
    const name = str(record.reason_description);
    out.service = name === undefined ? { id: reasonId } : { id: reasonId, name };
  }
  return out;
}

function pick(source: JsonObject, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/** `YYYY-MM-DD` from an ISO date, an ISO date-time or a US `MM/DD/YYYY`; undefined otherwise. */
export function toDate(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const iso = /^(\d{4})-(\d{2})-(\d{2})/.exec(value.trim());
  if (iso) return `${iso[1]}-${iso[2]}-${iso[3]}`;
  const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(value.trim());
  if (us) return `${us[3]}-${us[1]!.padStart(2, '0')}-${us[2]!.padStart(2, '0')}`;
  return undefined;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
