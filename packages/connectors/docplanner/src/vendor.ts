/**
 * Docplanner's notification payloads (integration API v3), written from the published field lists.
 * Everything is optional where the vendor's examples disagree or a field is sometimes absent: the
 * connector reads leniently and keeps the whole `data` object on every normalized entity.
 */

/** The envelope of every notification, pushed or pulled. There is no notification id. */
export interface DpNotification {
  name: string;
  data: DpData;
  /** ISO 8601 with offset, e.g. `2026-03-10T11:30:00+01:00` (sometimes `+0100`). */
  created_at: string;
}

export interface DpFacility {
  id: string;
  name?: string;
}

export interface DpDoctor {
  id: string;
  name?: string;
  surname?: string;
}

export interface DpAddress {
  id: string;
  name?: string;
  street?: string;
  post_code?: string;
  city_name?: string;
  commercial_type?: string;
}

export interface DpAddressService {
  id: string;
  name?: string;
  price?: number | string | null;
  is_price_from?: boolean;
  is_visible?: boolean;
  [key: string]: unknown;
}

export interface DpPatient {
  name?: string;
  surname?: string;
  phone?: string;
  email?: string;
  /** YYYY-MM-DD */
  birth_date?: string;
  nin?: string;
  gender?: 'm' | 'f' | string;
  insurance_number?: string;
  is_returning?: boolean;
}

export interface DpInsurance {
  id?: string;
  name?: string;
  plan?: string;
  plan_id?: string;
}

/** Who booked or cancelled: `user` is the patient; `integration` is the partner itself through the API. */
export type DpActor = 'user' | 'doctor' | 'integration' | '' | string;

/** `visit_booking`, `old_visit_booking`, `new_visit_booking`, `canceling_booking`. */
export interface DpBooking {
  id: string;
  status?: 'booked' | 'canceled' | string;
  start_at: string;
  end_at?: string;
  duration?: number | string;
  booked_by?: DpActor;
  canceled_by?: DpActor;
  booked_at?: string;
  canceled_at?: string | null;
  address_service?: DpAddressService | null;
  patient?: DpPatient | null;
  comment?: string | null;
  insurance?: DpInsurance | null;
  visit_payment?: boolean;
  videocall_url?: string | null;
  signature?: string;
  /** Not in the published list; accepted when a move to another address carries it per booking. */
  address?: DpAddress;
  doctor?: DpDoctor;
}

/** `visit_booking_request`, `creating_booking`: a booking that does not exist yet (no id). */
export interface DpBookingRequest {
  booking_at?: string;
  booking_by?: DpActor;
  duration?: number | string;
  start_at: string;
  end_at?: string;
  address_service?: DpAddressService | null;
  patient?: DpPatient | null;
  comment?: string | null;
  signature?: string;
  visit_payment?: boolean;
  address?: DpAddress;
  doctor?: DpDoctor;
}

export interface DpBreak {
  id: string;
  since: string;
  till: string;
}

export type DpPaymentStatus =
  | 'paid'
  | 'waiting_for_confirmation'
  | 'not-paid'
  | 'refunded'
  | 'charged_back'
  | string;

export interface DpData {
  facility?: DpFacility;
  doctor?: DpDoctor;
  address?: DpAddress;
  visit_booking?: DpBooking;
  visit_booking_request?: DpBookingRequest;
  old_visit_booking?: DpBooking;
  new_visit_booking?: DpBooking;
  /** On a move to another address: where the booking was (the top-level doctor/address is the new place). */
  old_doctor?: DpDoctor;
  old_address?: DpAddress;
  /** Also accepted for the place a move goes to (the published examples do not settle it). */
  new_doctor?: DpDoctor;
  new_address?: DpAddress;
  canceling_booking?: DpBooking & { canceling_by?: DpActor };
  creating_booking?: DpBookingRequest;
  presence?: 'PRESENT' | 'ABSENT' | string;
  break?: DpBreak;
  visit_payment_status?: { status_from?: DpPaymentStatus; status_to?: DpPaymentStatus; changed_at?: string };
  address_service?: DpAddressService;
  [key: string]: unknown;
}

/** `GET .../notifications/multiple` */
export interface DpMultipleResponse {
  notifications: DpNotification[];
  remaining: number;
}

/** Every notification name the connector knows (current spec plus the legacy ones still seen). */
export const DOCPLANNER_NAMES = [
  'slot-booking',
  'slot-booked',
  'slot-overbooked',
  'booking-canceled',
  'booking-moved',
  'booking-moving',
  'booking-confirmed',
  'booking-payment-status-changed',
  'break-created',
  'break-moved',
  'break-removed',
  'presence-marked',
  'address-service-created',
  'address-service-changed',
  'address-service-deleted',
  'address-commercial-type-changed',
  'address-assigned',
  'address-unassigned',
  'slot-changed',
] as const;

/** The names that are synchronous approval requests (push only). */
export const GATE_NAMES: ReadonlySet<string> = new Set(['slot-booking', 'booking-moving']);
