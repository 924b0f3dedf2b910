/**
 * BookingBug (JRNI) push payloads: the legacy push's whole purchase, as in the vendor's sample
 * (fields the sample does not show, like `is_cancelled` and `multi_status`, are optional), and JRNI's
 * newer appointment snapshot ({@link JrniWebhook}).
 */

/** A link in the HAL `_links` map. */
export interface BookingBugLink {
  href: string;
  templated?: boolean;
}

/** `_embedded.client` / `_embedded.member`: the customer. `"null"` strings mean absent. */
export interface BookingBugClient {
  id?: number;
  name?: string;
  first_name?: string;
  last_name?: string;
  email?: string;
  mobile?: string;
  mobile_prefix?: string;
  phone?: string;
  phone_prefix?: string;
  reference?: string;
  comp_ref?: string;
  company_id?: number;
  [key: string]: unknown;
}

/** `booking.address`: the place. */
export interface BookingBugAddress {
  id?: number;
  name?: string;
  address1?: string;
  address2?: string;
  address3?: string;
  address4?: string;
  address5?: string;
  postcode?: string;
  country?: string;
  [key: string]: unknown;
}

/** One booking of the purchase (`_embedded.bookings[]`). */
export interface BookingBugBooking {
  id: number;
  datetime?: string;
  end_datetime?: string;
  duration?: number;
  person_name?: string;
  resource_name?: string;
  service_id?: number;
  service_name?: string;
  company_id?: number;
  time_zone?: string;
  address?: BookingBugAddress;
  attended?: boolean;
  /** *Unverified* in the legacy push. */
  is_cancelled?: boolean;
  /** The check-in status as the admin API has it (`checked_in`, …), when the push carries it. */
  multi_status?: string;
  current_multi_status?: string;
  price?: number;
  quantity?: number;
  slot_id?: number;
  first_name?: string;
  last_name?: string;
  email?: string;
  on_waitlist?: boolean;
  _links?: Record<string, BookingBugLink>;
  [key: string]: unknown;
}

/** The legacy push body: a purchase. */
export interface BookingBugPurchase {
  id: number;
  long_id?: string;
  created_at?: string;
  client_name?: string;
  total_price?: number;
  _embedded?: {
    client?: BookingBugClient;
    member?: BookingBugClient;
    bookings?: BookingBugBooking[];
    [key: string]: unknown;
  };
  _links?: Record<string, BookingBugLink>;
  [key: string]: unknown;
}

/**
 * JRNI's data and notification webhooks (dev.jrni.com "Data Webhook Payload" and "Webhook Field
 * definitions"; dev.bookingbug.com "Notification Webhooks"): a snapshot of one appointment, not a
 * purchase. JRNI lets clients customise the payload, so every block and field is optional here
 * except `appointment.bookingId`.
 */
export interface JrniWebhook {
  appointment: JrniAppointment;
  queuing?: Record<string, unknown>;
  /** JRNI: "Appointment location" (a JRNI company is one place). */
  company?: JrniParty & { address?: string; timezone?: string; phoneNumber?: string };
  service?: JrniParty & { category?: string; categoryId?: number; method?: string; methodId?: number };
  staff?: JrniParty & { email?: string; phoneNumber?: string };
  resource?: JrniParty & { address?: string };
  customer?: JrniCustomer;
  additionalAttendeeCustomers?: unknown[];
  additionalAttendeeStaff?: unknown[];
  /** `create | modify | cancelled` (data webhooks); notification webhooks fire on more events. */
  triggerName?: string;
  /** When the trigger fired (UTC). */
  triggerTime?: string;
  [key: string]: unknown;
}

/** The `appointment` block of a JRNI webhook. */
export interface JrniAppointment {
  /** `booking` or `queuer`. */
  origin?: string;
  /** The JRNI appointment id: the same number as the legacy push's booking `id`. */
  bookingId: number | string;
  /** The purchase reference (customer modify links). */
  longId?: string;
  /** Start/end in the customer's time zone (the location's for in-person appointments). */
  customerStartTime?: string;
  customerEndTime?: string;
  /** Start/end in the location's time zone. */
  companyStartTime?: string;
  companyEndTime?: string;
  duration?: number;
  bookedBy?: string;
  channel?: string;
  /** The booking status (e.g. `Booking`). */
  status?: string;
  /** The current check-in status: `Checked in`, `Being seen`, `Completed`, `No show` by default. */
  checkInStatus?: string;
  checkInStatusList?: unknown[];
  joinVideoURL?: string;
  customerModifyURL?: string;
  adminModifyURL?: string;
  customBookingFields?: Array<{ ref?: string; value?: unknown }>;
  [key: string]: unknown;
}

/** A company, service, staff member or resource block. */
export interface JrniParty {
  name?: string;
  jrniId?: number | string;
  externalId?: string;
  [key: string]: unknown;
}

/** The `customer` block. */
export interface JrniCustomer {
  firstName?: string;
  lastName?: string;
  email?: string;
  mobile?: string;
  homePhone?: string;
  jrniId?: number | string;
  externalId?: string;
  [key: string]: unknown;
}
