import {
  ConnectorError,
  type EventDraft,
  type EventMapping,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  knownStateKey,
  type NormalizeContext,
  type NormalizeResult,
  rememberKnownState,
  toRfc3339,
  type VendorNotification,
  withKnownState,
} from '@switchyard/core';
import { movedPlaceKey } from './commands.ts';
import type { Config } from './config.ts';
import { offsetOf, requestMatchKey } from './parse.ts';
import type {
  DpActor,
  DpAddress,
  DpAddressService,
  DpBooking,
  DpBookingRequest,
  DpData,
  DpDoctor,
  DpNotification,
  DpPatient,
} from './vendor.ts';

/** The connector name, also the `system` of every vendor id it reports. */
export const SYSTEM = 'docplanner';

/**
 * Prefix of the alias under which a gate request's provisional appointment id is kept, keyed by
 * {@link requestMatchKey}: the booking that follows an approved `slot-booking` adopts that id.
 */
export const GATE_ALIAS_PREFIX = 'gate:';

/** Vendor name → normalized types (rendered into docs/connectors/docplanner.md). */
export const eventMap: readonly EventMapping[] = [
  {
    vendorType: 'slot-booking',
    normalizedTypes: ['appointment.booking_requested'],
    note: 'Gate: data is an ApprovalRequest (kind booking, proposed appointment with a provisional id).',
  },
  { vendorType: 'slot-booked', normalizedTypes: ['appointment.created'] },
  {
    vendorType: 'slot-overbooked',
    normalizedTypes: ['appointment.created'],
    note: 'Legacy; same data as slot-booked.',
  },
  { vendorType: 'booking-confirmed', normalizedTypes: ['appointment.confirmed'] },
  {
    vendorType: 'booking-canceled',
    normalizedTypes: ['appointment.cancelled'],
    note: 'cancelledBy from canceled_by (user → patient, doctor → practitioner, integration → integration).',
  },
  {
    vendorType: 'booking-moved',
    normalizedTypes: ['appointment.rescheduled'],
    note: 'The new booking id is linked to the hub id of the old one; previous = old start/end (and place).',
  },
  {
    vendorType: 'booking-moving',
    normalizedTypes: ['appointment.reschedule_requested'],
    note: 'Gate: data is an ApprovalRequest (kind reschedule, current and proposed).',
  },
  {
    vendorType: 'booking-payment-status-changed',
    normalizedTypes: ['appointment.updated'],
    note: 'changes: ["payment.status"]; not-paid becomes not_paid.',
  },
  {
    vendorType: 'presence-marked',
    normalizedTypes: ['appointment.arrived', 'appointment.no_show'],
    note: 'PRESENT → arrived; ABSENT → no_show (status noshow).',
  },
  { vendorType: 'break-created', normalizedTypes: ['slot.blocked'], note: 'status busy-unavailable.' },
  {
    vendorType: 'break-moved',
    normalizedTypes: ['slot.block_moved'],
    note: 'Carries only the new times; previous comes from the last known times of the break.',
  },
  { vendorType: 'break-removed', normalizedTypes: ['slot.unblocked'], note: 'data is the block as it was.' },
  {
    vendorType: 'slot-changed',
    normalizedTypes: ['slot.changed'],
    note: 'Legacy; no slot data: kind availability, reloadRequired true.',
  },
  {
    vendorType: 'address-service-created',
    normalizedTypes: ['schedule.updated'],
    note: 'change service_added.',
  },
  {
    vendorType: 'address-service-changed',
    normalizedTypes: ['schedule.updated'],
    note: 'change service_changed.',
  },
  {
    vendorType: 'address-service-deleted',
    normalizedTypes: ['schedule.updated'],
    note: 'change service_removed.',
  },
  {
    vendorType: 'address-commercial-type-changed',
    normalizedTypes: ['schedule.updated'],
    note: 'change location_kind_changed; location.kind = commercial_type.',
  },
  { vendorType: 'address-assigned', normalizedTypes: ['schedule.activated'], note: 'active true.' },
  { vendorType: 'address-unassigned', normalizedTypes: ['schedule.deactivated'], note: 'active false.' },
];

type Ctx = NormalizeContext<Config>;

function str(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return undefined;
}

/** Drops undefined values (JSON has none) and empty objects. */
function compact(obj: Record<string, JsonValue | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (isJsonObject(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out;
}

function nonEmpty(obj: JsonObject): JsonObject | undefined {
  return Object.keys(obj).length === 0 ? undefined : obj;
}

/** Docplanner's actor words: `user` is the patient; `integration` is the partner itself (skip echoes). */
export function actorOf(value: DpActor | undefined | null): JsonObject | undefined {
  const word = str(value);
  if (word === undefined) return undefined;
  const kind =
    word === 'user'
      ? 'patient'
      : word === 'doctor'
        ? 'practitioner'
        : word === 'integration'
          ? 'integration'
          : 'unknown';
  return { kind, vendorValue: word };
}

function practitionerOf(doctor: DpDoctor | undefined): JsonObject | undefined {
  const id = str(doctor?.id);
  if (!doctor || id === undefined) return undefined;
  const full = [str(doctor.name), str(doctor.surname)].filter(Boolean).join(' ');
  return compact({
    id,
    name: full || undefined,
    display: full || undefined,
    given: str(doctor.name),
    family: str(doctor.surname),
  });
}

function locationOf(address: DpAddress | undefined): JsonObject | undefined {
  const id = str(address?.id);
  if (!address || id === undefined) return undefined;
  const street = str(address.street);
  return compact({
    id,
    name: str(address.name),
    address: compact({
      line: street ? [street] : undefined,
      postalCode: str(address.post_code),
      city: str(address.city_name),
    }),
    kind: str(address.commercial_type),
  });
}

function organizationOf(data: DpData): JsonObject | undefined {
  const id = str(data.facility?.id);
  return id === undefined ? undefined : compact({ id, name: str(data.facility?.name) });
}

function serviceOf(service: DpAddressService | null | undefined, removed?: boolean): JsonObject | undefined {
  const id = str(service?.id);
  if (!service || id === undefined) return undefined;
  const amount = num(service.price);
  return compact({
    id,
    name: str(service.name),
    // Docplanner prices are in the currency's major unit (150 = 150 PLN); the currency is the site's.
    price:
      amount === undefined
        ? undefined
        : compact({
            amount,
            unit: 'major',
            isFrom: typeof service.is_price_from === 'boolean' ? service.is_price_from : undefined,
          }),
    visible: typeof service.is_visible === 'boolean' ? service.is_visible : undefined,
    removed,
  });
}

function patientOf(patient: DpPatient | null | undefined): JsonObject | undefined {
  if (!patient || !isJsonObject(patient)) return undefined;
  const given = str(patient.name);
  const family = str(patient.surname);
  const birth = str(patient.birth_date);
  const gender = patient.gender === 'm' ? 'male' : patient.gender === 'f' ? 'female' : undefined;
  return nonEmpty(
    compact({
      name: [given, family].filter(Boolean).join(' ') || undefined,
      given,
      family,
      phone: str(patient.phone),
      email: str(patient.email),
      birthDate: birth && /^\d{4}-\d{2}-\d{2}$/.test(birth) ? birth : undefined,
      gender,
      nationalId: str(patient.nin),
      insuranceNumber: str(patient.insurance_number),
      isReturning: typeof patient.is_returning === 'boolean' ? patient.is_returning : undefined,
    }),
  );
}

const PAYMENT: Record<string, string> = {
  paid: 'paid',
  waiting_for_confirmation: 'waiting_for_confirmation',
  'not-paid': 'not_paid',
  not_paid: 'not_paid',
  refunded: 'refunded',
  charged_back: 'charged_back',
};

function paymentStatusOf(value: unknown): string | undefined {
  const word = str(value);
  return word === undefined ? undefined : (PAYMENT[word] ?? 'unknown');
}

interface AppointmentInput {
  id: string;
  vendorIds: JsonObject[];
  status: string;
  data: DpData;
  booking: (DpBooking | DpBookingRequest) & { canceling_by?: DpActor };
  /** Offset for vendor times without one (the notification's created_at offset). */
  offset: string | undefined;
  doctor?: DpDoctor | undefined;
  address?: DpAddress | undefined;
  vendor?: JsonObject;
}

/** A Docplanner booking (or booking request) as the Appointment entity. */
function appointmentOf(input: AppointmentInput): JsonObject {
  const { booking, data, offset } = input;
  const b = booking as DpBooking & DpBookingRequest & { canceling_by?: DpActor };
  const insurance = b.insurance && isJsonObject(b.insurance) ? b.insurance : undefined;
  const cancelledBy = actorOf(b.canceled_by ?? b.canceling_by);
  return compact({
    id: input.id,
    vendorIds: input.vendorIds,
    status: input.status,
    start: toRfc3339(b.start_at, offset),
    end: toRfc3339(b.end_at, offset),
    durationMinutes: num(b.duration),
    patient: patientOf(b.patient),
    practitioner: practitionerOf(input.doctor ?? b.doctor ?? data.doctor),
    location: locationOf(input.address ?? b.address ?? data.address),
    organization: organizationOf(data),
    service: serviceOf(b.address_service),
    insurance: insurance
      ? compact({
          id: str(insurance.id),
          name: str(insurance.name),
          plan: str(insurance.plan),
          planId: str(insurance.plan_id),
        })
      : undefined,
    payment: typeof b.visit_payment === 'boolean' ? { required: b.visit_payment } : undefined,
    comment: str(b.comment),
    videoCallUrl: str(b.videocall_url),
    bookedAt: toRfc3339(b.booked_at ?? b.booking_at, offset),
    bookedBy: actorOf(b.booked_by ?? b.booking_by),
    cancelledAt: toRfc3339(b.canceled_at, offset),
    cancelledBy,
    vendor: input.vendor ?? (data as unknown as JsonObject),
  });
}

/**
 * The Appointment fields a booking object says are now empty: Docplanner sends a whole booking with
 * explicit `null` / `""` for what it lacks, while a field it leaves out is unknown (kept from the
 * known state).
 */
function clearedBy(booking: object): string[] {
  const b = booking as Record<string, unknown>;
  const empty = (key: string) => key in b && (b[key] === null || b[key] === '');
  const cleared: string[] = [];
  const fields: Array<[string, string]> = [
    ['insurance', 'insurance'],
    ['videocall_url', 'videoCallUrl'],
    ['comment', 'comment'],
    ['address_service', 'service'],
    ['patient', 'patient'],
    ['canceled_at', 'cancelledAt'],
    ['canceled_by', 'cancelledBy'],
  ];
  for (const [vendorKey, field] of fields) if (empty(vendorKey)) cleared.push(field);
  return cleared;
}

function vendorIdOf(ctx: Ctx, value: string, current: boolean): JsonObject {
  return { system: SYSTEM, instance: ctx.instanceId, value, current };
}

/** Every vendor id the appointment has had (gate aliases left out); only `currentId` is current. */
async function appointmentVendorIds(ctx: Ctx, hubId: string, currentId: string): Promise<JsonObject[]> {
  const known = (await ctx.aliases.vendorIds('appointment', hubId)).filter(
    (v) => !v.startsWith(GATE_ALIAS_PREFIX),
  );
  if (!known.includes(currentId)) known.push(currentId);
  return known.map((v) => vendorIdOf(ctx, v, v === currentId));
}

/**
 * The booking id that replaced `bookingId` when a move gave the appointment a new one, undefined
 * when `bookingId` is still the appointment's current booking (or nothing is known of it).
 */
async function replacingBookingId(ctx: Ctx, hubId: string, bookingId: string): Promise<string | undefined> {
  const known = await ctx.state.get<JsonObject>(knownStateKey(`appointment/${hubId}`));
  if (!known || !Array.isArray(known.vendorIds)) return undefined;
  const current = known.vendorIds.find((v) => isJsonObject(v) && v.current === true && v.system === SYSTEM);
  const currentId = isJsonObject(current) ? str(current.value) : undefined;
  return currentId !== undefined && currentId !== bookingId ? currentId : undefined;
}

/**
 * Where the vendor time of an appointment's last event (other than its creation) is kept: the known
 * state says what the appointment is, not since when, and a move that arrives after its new booking
 * id's later notifications needs that to tell which is later (see {@link laterStateEvent}).
 */
function eventTimeKey(hubId: string): string {
  return `event-time:appointment/${hubId}`;
}

function requireBooking(n: VendorNotification, booking: DpBooking | undefined, field: string): DpBooking {
  if (
    !booking ||
    !isJsonObject(booking) ||
    str(booking.id) === undefined ||
    str(booking.start_at) === undefined
  ) {
    throw ConnectorError.permanent(`Docplanner ${n.type} without ${field}.id / ${field}.start_at`);
  }
  return booking;
}

/**
 * The hub id of a booking. A booking that follows an approved `slot-booking` adopts the gate
 * request's provisional id, but only while that id names no booking yet (a later booking of the same
 * slot by the same patient is a new appointment).
 */
async function bookingHubId(ctx: Ctx, data: DpData, booking: DpBooking): Promise<string> {
  const bookingId = String(booking.id);
  const key = requestMatchKey(data, booking);
  if (!key) return ctx.aliases.hubId('appointment', bookingId);
  // One round trip for a booking seen before or with no gate request (the usual cases): its hub
  // id, created unless the request's provisional id exists (that is what find of both and then
  // hubId, two in a row, answered).
  const r = await ctx.aliases.hubIdUnless('appointment', bookingId, `${GATE_ALIAS_PREFIX}${key}`);
  if ('hubId' in r) return r.hubId;
  const ids = await ctx.aliases.vendorIds('appointment', r.other);
  if (ids.every((v) => v.startsWith(GATE_ALIAS_PREFIX))) {
    await ctx.aliases.link('appointment', bookingId, r.other);
    return r.other;
  }
  return ctx.aliases.hubId('appointment', bookingId);
}

function occurred(n: VendorNotification, env: DpNotification): string {
  const time = n.occurredAt ?? toRfc3339(env.created_at);
  if (time === undefined) throw ConnectorError.permanent(`Docplanner ${n.type} without a valid created_at`);
  return time;
}

async function bookingEvent(
  n: VendorNotification,
  env: DpNotification,
  ctx: Ctx,
  type: string,
  status: string | typeof STANDING,
  extra?: (appointment: JsonObject) => void,
): Promise<NormalizeResult> {
  const data = env.data;
  const booking = requireBooking(n, data.visit_booking, 'visit_booking');
  const hubId = await bookingHubId(ctx, data, booking);
  if (status === STANDING) status = await standingStatus(ctx, hubId, booking);
  if (type === 'appointment.cancelled') {
    const replacedBy = await replacingBookingId(ctx, hubId, String(booking.id));
    if (replacedBy !== undefined) {
      // A move cancels the old booking at Docplanner (booking-moved's old_visit_booking is
      // `canceled`); a cancellation naming that old id is the move's, not the appointment's.
      return ignore(
        `Docplanner canceled booking ${String(booking.id)}, which a move replaced with ${replacedBy}: the appointment goes on under the new booking`,
      );
    }
  }
  const time = occurred(n, env);
  // The time of the appointment's latest notification applied: the late checks below compare with
  // it, and a notification applied moves it on (read once).
  const laterAt = await ctx.state.get<string>(eventTimeKey(hubId));
  if (
    type !== 'appointment.cancelled' &&
    type !== 'appointment.created' &&
    typeof laterAt === 'string' &&
    Date.parse(laterAt) >= Date.parse(time)
  ) {
    // Likewise a confirmation, payment change or presence mark of a booking a move replaced, told
    // no later than the move (a push retried or released after it): applied, it set the appointment
    // back to the old booking's time and made the old booking id current again.
    const replacedBy = await replacingBookingId(ctx, hubId, String(booking.id));
    if (replacedBy !== undefined) {
      return ignore(
        `Docplanner ${n.type} of booking ${String(booking.id)} at ${time}, which a move replaced with ${replacedBy} (notification of ${laterAt}): a late notification, which would set the appointment back to the old booking`,
      );
    }
  }
  if (type === 'appointment.created') {
    // A booking is created before anything else happens to it, so a creation told no later than
    // the appointment's last event arrived late (a push Docplanner retried minutes later, or
    // re-sent by release, after the cancellation or move that followed it): applied, it would set
    // the appointment back to booked at its first time and booking id, downstream and in the
    // known state. That later event already carried the booking.
    if (typeof laterAt === 'string' && Date.parse(laterAt) >= Date.parse(time)) {
      return ignore(
        `Docplanner ${n.type} of booking ${String(booking.id)} at ${time} arrived after the appointment's notification of ${laterAt}: a late creation, which would set the appointment back to booked`,
      );
    }
  }
  if (type === 'appointment.arrived' || type === 'appointment.no_show') {
    // A presence mark told before the appointment's last event, once its status is one a later
    // notification set (a cancellation, another presence mark), arrived late (retried or released
    // pushes): applied, it set a cancelled appointment arrived again (Docplanner has no un-cancel).
    // After a later confirmation or payment change only, it is still news. A cancellation is always
    // applied: nothing comes after it.
    const known = await ctx.state.get<JsonObject>(knownStateKey(`appointment/${hubId}`));
    const settled =
      known?.status === 'cancelled' || known?.status === 'arrived' || known?.status === 'noshow';
    if (settled && typeof laterAt === 'string' && Date.parse(laterAt) > Date.parse(time)) {
      return ignore(
        `Docplanner ${n.type} of booking ${String(booking.id)} at ${time} arrived after the appointment's notification of ${laterAt}: a late presence mark, which would set it back`,
      );
    }
  }
  if (n.type === 'booking-payment-status-changed') {
    // Payment changes may arrive out of order too (retried and released pushes): one that happened
    // before the payment status already known (its changed_at) would set it back, e.g. `paid`
    // arriving after the `refunded` that followed it.
    const change = data.visit_payment_status;
    const changedAt = toRfc3339(change?.changed_at, offsetOf(time)) ?? time;
    const known = await ctx.state.get<JsonObject>(knownStateKey(`appointment/${hubId}`));
    const knownAt = isJsonObject(known?.payment) ? known.payment.changedAt : undefined;
    if (typeof knownAt === 'string' && Date.parse(knownAt) > Date.parse(changedAt)) {
      return ignore(
        `Docplanner ${n.type} of booking ${String(booking.id)} changed at ${changedAt}, before the payment status ${JSON.stringify(isJsonObject(known?.payment) ? (known.payment.status ?? null) : null)} of ${knownAt} already known: a late notification, which would set it back`,
      );
    }
  }
  const appointment = appointmentOf({
    id: hubId,
    vendorIds: await appointmentVendorIds(ctx, hubId, String(booking.id)),
    status,
    data,
    booking,
    offset: offsetOf(time),
  });
  extra?.(appointment);
  // The event carries the appointment's known state, not only what this notification repeated
  // (docs/events.md): e.g. a payment-status change whose booking object lacks patient and service.
  const subject = `appointment/${hubId}`;
  const known = await rememberKnownState(ctx.state, subject, appointment, {
    cleared: clearedBy(booking),
    nested: ['payment'],
  });
  // A creation is not recorded: it is the state a move itself reports, so never the later one.
  // Nor does an older notification applied after a newer one (a presence mark after a later
  // payment change) move the time back: the late checks above compare with the latest.
  if (
    type !== 'appointment.created' &&
    !(typeof laterAt === 'string' && Date.parse(laterAt) > Date.parse(time))
  )
    await ctx.state.set(eventTimeKey(hubId), time);
  return emit({ type, subject, time, data: known });
}

/**
 * The status of a notification that reports something other than a status change (a confirmation, a
 * payment change): the booking's own `status` when it says `canceled`, else the status already
 * known (a cancellation, arrival or no-show stays what it is: Docplanner has no un-cancel, and a
 * payment change is not a visit), else `booked`. A refund after a cancellation, the usual order,
 * announced the appointment booked again when these notifications set `booked` outright.
 */
const STANDING = Symbol('the standing status');

async function standingStatus(ctx: Ctx, hubId: string, booking: DpBooking): Promise<string> {
  if (booking.status === 'canceled') return 'cancelled';
  const known = await ctx.state.get<JsonObject>(knownStateKey(`appointment/${hubId}`));
  const was = known?.status;
  return was === 'cancelled' || was === 'arrived' || was === 'noshow' ? was : 'booked';
}

/** The event that announces an appointment reaching a status it can have after a move. */
const STATUS_EVENT: Record<string, string> = {
  cancelled: 'appointment.cancelled',
  arrived: 'appointment.arrived',
  noshow: 'appointment.no_show',
};

/**
 * After a move reported on the old booking's hub id while its new booking id already has another
 * one (`otherHubId`: the new id's notifications arrived before the move), the event that brings the
 * old identity to the state the new id's notifications left on the other, when that state is later
 * than the move and differs from what the move says: e.g. the new booking's cancellation,
 * re-addressed to the old identity, so downstream does not keep it booked forever. The other hub id
 * keeps its events (they are out already). Undefined when there is nothing to catch up.
 */
async function laterStateEvent(
  ctx: Ctx,
  hubId: string,
  otherHubId: string,
  newId: string,
  afterMove: JsonObject,
  movedAt: string,
): Promise<EventDraft | undefined> {
  const [later, laterAt] = await Promise.all([
    ctx.state.get<JsonObject>(knownStateKey(`appointment/${otherHubId}`)),
    ctx.state.get<string>(eventTimeKey(otherHubId)),
  ]);
  if (later === undefined || typeof laterAt !== 'string') return undefined;
  if (!(Date.parse(laterAt) > Date.parse(movedAt))) return undefined;
  let type: string | undefined;
  const changes: string[] = [];
  if (later.status !== afterMove.status) type = STATUS_EVENT[String(later.status)];
  else if (paymentStatus(later) !== paymentStatus(afterMove)) {
    type = 'appointment.updated';
    changes.push('payment.status');
  }
  if (type === undefined) return undefined;
  const { id: _otherId, vendorIds: _otherIds, ...fields } = later;
  const subject = `appointment/${hubId}`;
  const appointment: JsonObject = {
    ...fields,
    id: hubId,
    vendorIds: await appointmentVendorIds(ctx, hubId, newId),
  };
  if (changes.length > 0) appointment.changes = changes;
  const data = await rememberKnownState(ctx.state, subject, appointment, { nested: ['payment'] });
  await ctx.state.set(eventTimeKey(hubId), laterAt);
  return { type, subject, time: laterAt, data };
}

function paymentStatus(appointment: JsonObject): unknown {
  return isJsonObject(appointment.payment) ? appointment.payment.status : undefined;
}

async function moved(n: VendorNotification, env: DpNotification, ctx: Ctx): Promise<NormalizeResult> {
  const data = env.data;
  const oldBooking = requireBooking(n, data.old_visit_booking, 'old_visit_booking');
  const newBooking = requireBooking(n, data.new_visit_booking, 'new_visit_booking');
  const oldId = String(oldBooking.id);
  const newId = String(newBooking.id);
  // One hub identity across the vendor's new booking id, even when the old id was never seen.
  const hubId =
    (await ctx.aliases.find('appointment', oldId)) ??
    (await ctx.aliases.find('appointment', newId)) ??
    (await ctx.aliases.hubId('appointment', oldId));
  await ctx.aliases.link('appointment', oldId, hubId);
  const newKnown = await ctx.aliases.find('appointment', newId);
  const otherHubId = newKnown === undefined || newKnown === hubId ? undefined : newKnown;
  if (otherHubId === undefined) await ctx.aliases.link('appointment', newId, hubId);
  else {
    // The new id was seen before the move (notifications out of order): two hub ids cannot be
    // merged, so the move is reported on the old booking's identity and the conflict logged.
    ctx.logger.warn(
      { oldBookingId: oldId, newBookingId: newId, hubId, otherHubId: newKnown },
      'Docplanner booking-moved: the new booking id already has another hub id',
    );
  }
  const time = occurred(n, env);
  if (otherHubId === undefined) {
    // A move whose appointment already went on under another booking id, told later than the move
    // (the new id's cancellation, or a further move, pushed before this one was retried or
    // released), arrived late: applied, it set a cancelled appointment booked again, or a moved one
    // back to the earlier booking. Its ids are linked above; what followed already carried the rest.
    const [laterAt, currentId] = await Promise.all([
      ctx.state.get<string>(eventTimeKey(hubId)),
      replacingBookingId(ctx, hubId, oldId),
    ]);
    if (currentId !== undefined && typeof laterAt === 'string' && Date.parse(laterAt) > Date.parse(time)) {
      return ignore(
        `Docplanner ${n.type} of booking ${oldId} to ${newId} at ${time} arrived after the appointment's notification of ${laterAt} (booking ${currentId}): a late move, which would set the appointment back`,
      );
    }
  }
  const offset = offsetOf(time);
  const newDoctor = newBooking.doctor ?? data.new_doctor ?? data.doctor;
  const newAddress = newBooking.address ?? data.new_address ?? data.address;
  const oldDoctor = oldBooking.doctor ?? data.old_doctor ?? (data.new_doctor ? data.doctor : undefined);
  const oldAddress = oldBooking.address ?? data.old_address ?? (data.new_address ? data.address : undefined);
  const appointment = appointmentOf({
    id: hubId,
    vendorIds: await appointmentVendorIds(ctx, hubId, newId),
    status: 'booked',
    data,
    booking: newBooking,
    offset,
    doctor: newDoctor,
    address: newAddress,
  });
  const changes = ['start', 'end'];
  const addressChanged = oldAddress?.id !== undefined && String(oldAddress.id) !== String(newAddress?.id);
  const doctorChanged = oldDoctor?.id !== undefined && String(oldDoctor.id) !== String(newDoctor?.id);
  if (addressChanged) changes.push('location');
  if (doctorChanged) changes.push('practitioner');
  appointment.previous = compact({
    start: toRfc3339(oldBooking.start_at, offset),
    end: toRfc3339(oldBooking.end_at, offset),
    location: addressChanged ? locationOf(oldAddress) : undefined,
    practitioner: doctorChanged ? practitionerOf(oldDoctor) : undefined,
    vendorId: oldId,
  });
  appointment.changes = changes;
  const subject = `appointment/${hubId}`;
  const known = await rememberKnownState(ctx.state, subject, appointment, {
    cleared: clearedBy(newBooking),
    nested: ['payment'],
  });
  await ctx.state.set(eventTimeKey(hubId), time);
  // The place a move through the hub noted for the new booking: the known state says it now.
  await ctx.state.delete(movedPlaceKey(newId));
  const rescheduled: EventDraft = { type: 'appointment.rescheduled', subject, time, data: known };
  const later =
    otherHubId === undefined ? undefined : await laterStateEvent(ctx, hubId, otherHubId, newId, known, time);
  return later === undefined ? emit(rescheduled) : emit(rescheduled, later);
}

async function bookingRequested(
  n: VendorNotification,
  env: DpNotification,
  ctx: Ctx,
): Promise<NormalizeResult> {
  const data = env.data;
  const request = data.visit_booking_request;
  if (!request || !isJsonObject(request) || str(request.start_at) === undefined) {
    throw ConnectorError.permanent('Docplanner slot-booking without visit_booking_request.start_at');
  }
  const key = requestMatchKey(data, request) ?? n.dedupeKey;
  const provisionalId = await ctx.aliases.hubId('appointment', `${GATE_ALIAS_PREFIX}${key}`);
  const requestId = await ctx.aliases.hubId('approval_request', n.dedupeKey);
  const time = occurred(n, env);
  const proposed = appointmentOf({
    id: provisionalId,
    vendorIds: [],
    status: 'proposed',
    data,
    booking: request,
    offset: offsetOf(time),
  });
  delete proposed.vendor;
  return emit({
    type: 'appointment.booking_requested',
    subject: `approval_request/${requestId}`,
    time,
    data: { id: requestId, kind: 'booking', proposed, vendor: data as unknown as JsonObject },
  });
}

async function rescheduleRequested(
  n: VendorNotification,
  env: DpNotification,
  ctx: Ctx,
): Promise<NormalizeResult> {
  const data = env.data;
  const current = requireBooking(n, data.canceling_booking, 'canceling_booking');
  const request = data.creating_booking;
  if (!request || !isJsonObject(request) || str(request.start_at) === undefined) {
    throw ConnectorError.permanent('Docplanner booking-moving without creating_booking.start_at');
  }
  const currentId = String(current.id);
  const hubId = await bookingHubId(ctx, data, current);
  const requestId = await ctx.aliases.hubId('approval_request', n.dedupeKey);
  const time = occurred(n, env);
  const offset = offsetOf(time);
  const vendorIds = await appointmentVendorIds(ctx, hubId, currentId);
  // The booking as known (not stored: a request changes nothing until the move happens); the
  // published examples carry no patient in either booking object.
  const known = await ctx.state.get<JsonObject>(knownStateKey(`appointment/${hubId}`));
  const currentRequest = appointmentOf({
    id: hubId,
    vendorIds,
    status: 'booked',
    data,
    booking: { ...current, canceled_by: undefined, canceling_by: undefined, canceled_at: undefined },
    offset,
    doctor: current.doctor ?? data.old_doctor ?? data.doctor,
    address: current.address ?? data.old_address ?? data.address,
  });
  const currentAppointment = withKnownState(currentRequest, known, { cleared: clearedBy(current) });
  // A move keeps the patient, and published examples leave it out of creating_booking.
  const proposed = appointmentOf({
    id: hubId,
    vendorIds,
    status: 'proposed',
    data,
    booking: { ...request, patient: request.patient ?? current.patient },
    offset,
    doctor: request.doctor ?? data.new_doctor ?? data.doctor,
    address: request.address ?? data.new_address ?? data.address,
  });
  if (proposed.patient === undefined && currentAppointment.patient !== undefined) {
    proposed.patient = currentAppointment.patient;
  }
  delete currentAppointment.vendor;
  delete proposed.vendor;
  return emit({
    type: 'appointment.reschedule_requested',
    subject: `approval_request/${requestId}`,
    time,
    data: {
      id: requestId,
      kind: 'reschedule',
      proposed,
      current: currentAppointment,
      vendor: data as unknown as JsonObject,
    },
  });
}

async function breakEvent(
  n: VendorNotification,
  env: DpNotification,
  ctx: Ctx,
  type: string,
): Promise<NormalizeResult> {
  const data = env.data;
  const brk = data.break;
  const breakId = str(brk?.id);
  if (!brk || breakId === undefined) throw ConnectorError.permanent(`Docplanner ${n.type} without break.id`);
  const hubId = await ctx.aliases.hubId('slot', breakId);
  const time = occurred(n, env);
  const offset = offsetOf(time);
  const start = toRfc3339(brk.since, offset);
  const end = toRfc3339(brk.till, offset);
  const stateKey = `break:${breakId}`;
  const last = await ctx.state.get<{ start?: string; end?: string; at?: string; removed?: boolean }>(
    stateKey,
  );
  // Docplanner retries a failed push minutes later and release re-sends it later still, so a
  // break's notifications may arrive out of order: one older than the last applied (nothing follows
  // a removal, so not one of the same time either) would bring a removed break back, or move it
  // back to its old times. The removal is kept (`removed`) to tell; the removal itself told again
  // (a message normalized again) is no news but undoes nothing.
  const lastAt = typeof last?.at === 'string' ? Date.parse(last.at) : Number.NaN;
  const at = Date.parse(time);
  if (at < lastAt || (last?.removed === true && type !== 'slot.unblocked' && at <= lastAt)) {
    return ignore(
      `Docplanner ${n.type} of break ${breakId} at ${time} arrived after its ${last?.removed === true ? 'removal' : 'notification'} of ${last!.at}: a late notification, which would undo it`,
    );
  }
  const slot = compact({
    id: hubId,
    vendorIds: [vendorIdOf(ctx, breakId, true)],
    kind: 'block',
    // slot.unblocked carries the block as it was.
    status: 'busy-unavailable',
    start,
    end,
    practitioner: practitionerOf(data.doctor),
    location: locationOf(data.address),
    organization: organizationOf(data),
    // break-moved carries only the new times: the old ones are what we saw last.
    previous:
      type === 'slot.block_moved' && last && last.removed !== true
        ? nonEmpty(compact({ start: last.start, end: last.end }))
        : undefined,
    vendor: data as unknown as JsonObject,
  });
  await ctx.state.set(
    stateKey,
    compact({ start, end, at: time, removed: type === 'slot.unblocked' ? true : undefined }),
  );
  return emit({ type, subject: `slot/${hubId}`, time, data: slot });
}

async function slotChanged(n: VendorNotification, env: DpNotification, ctx: Ctx): Promise<NormalizeResult> {
  const data = env.data;
  const doctorId = str(data.doctor?.id);
  const addressId = str(data.address?.id);
  if (doctorId === undefined || addressId === undefined) {
    throw ConnectorError.permanent('Docplanner slot-changed without doctor.id / address.id');
  }
  const vendorId = `${doctorId}:${addressId}`;
  // The calendar whose availability changed is the schedule the address-* notifications name: its
  // id travels with the slot, so a FHIR receiver gets one Schedule for both, not two with one
  // identifier (FHIR audit).
  const [hubId, scheduleId] = await Promise.all([
    ctx.aliases.hubId('slot', `availability:${vendorId}`),
    ctx.aliases.hubId('schedule', vendorId),
  ]);
  const slot = compact({
    id: hubId,
    vendorIds: [vendorIdOf(ctx, vendorId, true)],
    kind: 'availability',
    // The notification says availability changed, not how: `free` with reloadRequired.
    status: 'free',
    practitioner: practitionerOf(data.doctor),
    location: locationOf(data.address),
    organization: organizationOf(data),
    scheduleId,
    reloadRequired: true,
    vendor: data as unknown as JsonObject,
  });
  return emit({ type: 'slot.changed', subject: `slot/${hubId}`, time: occurred(n, env), data: slot });
}

const SCHEDULE: Record<string, { type: string; change: string; active?: boolean }> = {
  'address-service-created': { type: 'schedule.updated', change: 'service_added' },
  'address-service-changed': { type: 'schedule.updated', change: 'service_changed' },
  'address-service-deleted': { type: 'schedule.updated', change: 'service_removed' },
  'address-commercial-type-changed': { type: 'schedule.updated', change: 'location_kind_changed' },
  'address-assigned': { type: 'schedule.activated', change: 'assigned', active: true },
  'address-unassigned': { type: 'schedule.deactivated', change: 'unassigned', active: false },
};

async function scheduleEvent(n: VendorNotification, env: DpNotification, ctx: Ctx): Promise<NormalizeResult> {
  const spec = SCHEDULE[n.type]!;
  const data = env.data;
  const doctorId = str(data.doctor?.id);
  const addressId = str(data.address?.id);
  if (doctorId === undefined || addressId === undefined) {
    throw ConnectorError.permanent(`Docplanner ${n.type} without doctor.id / address.id`);
  }
  const vendorId = `${doctorId}:${addressId}`;
  const service = (data.address_service ?? data.service) as DpAddressService | undefined;
  // Retried and released pushes arrive out of order here too: an assignment older than the
  // unassignment already applied reactivated the schedule, a service's creation or change older
  // than its deletion announced it again. The time last applied is kept per thing a notification
  // is about (the assignment, each service, the commercial type), so a late one about another
  // service still applies.
  const aspect = n.type.startsWith('address-service-')
    ? `service:${str(service?.id) ?? ''}`
    : n.type === 'address-commercial-type-changed'
      ? 'commercial-type'
      : 'assignment';
  const time = occurred(n, env);
  const stateKey = `schedule:${vendorId}:${aspect}`;
  const lastAt = await ctx.state.get<string>(stateKey);
  if (typeof lastAt === 'string' && Date.parse(time) < Date.parse(lastAt)) {
    return ignore(
      `Docplanner ${n.type} of doctor ${doctorId} at address ${addressId} at ${time} arrived after the notification of ${lastAt} about the same ${aspect}: a late notification, which would undo it`,
    );
  }
  const hubId = await ctx.aliases.hubId('schedule', vendorId);
  const schedule = compact({
    id: hubId,
    vendorIds: [vendorIdOf(ctx, vendorId, true)],
    active: spec.active,
    practitioner: practitionerOf(data.doctor),
    location: locationOf(data.address),
    organization: organizationOf(data),
    service: serviceOf(service, spec.change === 'service_removed' ? true : undefined),
    change: spec.change,
    vendor: data as unknown as JsonObject,
  });
  await ctx.state.set(stateKey, time);
  return emit({ type: spec.type, subject: `schedule/${hubId}`, time, data: schedule });
}

/**
 * Docplanner notification → normalized events (see {@link eventMap}).
 *
 * @example
 * ```ts
 * const result = await normalize(notification, ctx); // { events: [{ type: 'appointment.created', ... }] }
 * ```
 */
export async function normalize(n: VendorNotification, ctx: Ctx): Promise<NormalizeResult> {
  if (!isJsonObject(n.payload) || !isJsonObject(n.payload.data)) {
    throw ConnectorError.permanent(`Docplanner ${n.type}: the stored payload has no data object`);
  }
  const env = n.payload as unknown as DpNotification;
  switch (n.type) {
    case 'slot-booked':
    case 'slot-overbooked':
      return bookingEvent(n, env, ctx, 'appointment.created', 'booked');
    case 'booking-confirmed':
      return bookingEvent(n, env, ctx, 'appointment.confirmed', STANDING);
    case 'booking-canceled':
      return bookingEvent(n, env, ctx, 'appointment.cancelled', 'cancelled', (a) => {
        if (a.cancelledBy === undefined) a.cancelledBy = { kind: 'unknown' };
      });
    case 'booking-payment-status-changed': {
      const change = env.data.visit_payment_status;
      const time = occurred(n, env);
      return bookingEvent(n, env, ctx, 'appointment.updated', STANDING, (a) => {
        const required = isJsonObject(a.payment) ? a.payment.required : undefined;
        a.payment = compact({
          required,
          status: paymentStatusOf(change?.status_to) ?? 'unknown',
          previousStatus: paymentStatusOf(change?.status_from),
          changedAt: toRfc3339(change?.changed_at, offsetOf(time)),
        });
        a.changes = ['payment.status'];
      });
    }
    case 'presence-marked': {
      const presence = str(env.data.presence)?.toUpperCase();
      if (presence === 'PRESENT') {
        return bookingEvent(n, env, ctx, 'appointment.arrived', 'arrived', (a) => {
          a.workflowStep = 'arrived';
        });
      }
      if (presence === 'ABSENT') return bookingEvent(n, env, ctx, 'appointment.no_show', 'noshow');
      return ignore(
        `Docplanner presence-marked with presence ${JSON.stringify(env.data.presence)} has no mapping`,
      );
    }
    case 'booking-moved':
      return moved(n, env, ctx);
    case 'slot-booking':
      return bookingRequested(n, env, ctx);
    case 'booking-moving':
      return rescheduleRequested(n, env, ctx);
    case 'break-created':
      return breakEvent(n, env, ctx, 'slot.blocked');
    case 'break-moved':
      return breakEvent(n, env, ctx, 'slot.block_moved');
    case 'break-removed':
      return breakEvent(n, env, ctx, 'slot.unblocked');
    case 'slot-changed':
      return slotChanged(n, env, ctx);
    default:
      if (n.type in SCHEDULE) return scheduleEvent(n, env, ctx);
      return ignore(`Docplanner notification ${JSON.stringify(n.type)} has no normalized counterpart`);
  }
}
