/**
 * Square Bookings webhook payloads (`booking.created`, `booking.updated`), as Square documents them
 * (https://developer.squareup.com/reference/square/bookings-api/webhooks/booking.updated). Lenient:
 * fields Square does not always send are optional.
 */

/** One service segment of a booking. */
export interface VendorAppointmentSegment {
  duration_minutes?: number;
  service_variation_id?: string;
  service_variation_version?: number;
  team_member_id?: string;
  [key: string]: unknown;
}

/** `data.object.booking`. */
export interface VendorBooking {
  id: string;
  /** Incremented on each change: the order of a booking's notifications. */
  version?: number;
  /** `PENDING`, `ACCEPTED`, `CANCELLED_BY_CUSTOMER`, `CANCELLED_BY_SELLER`, `DECLINED`, `NO_SHOW`. */
  status?: string;
  /** RFC 3339, UTC. */
  start_at?: string;
  created_at?: string;
  updated_at?: string;
  location_id?: string;
  customer_id?: string;
  customer_note?: string;
  seller_note?: string;
  appointment_segments?: VendorAppointmentSegment[];
  [key: string]: unknown;
}

/** What Square POSTs: one event per request. */
export interface VendorEvent {
  merchant_id?: string;
  location_id?: string;
  /** `booking.created` or `booking.updated`. */
  type: string;
  /** Unique per event, the same on Square's retries: the dedupe key. */
  event_id: string;
  /** RFC 3339. */
  created_at?: string;
  data?: { type?: string; id?: string; object?: { booking?: VendorBooking } };
  [key: string]: unknown;
}
