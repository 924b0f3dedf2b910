/**
 * Zz Scaffold Check With A Rather Long Nm push payloads, as the vendor documents them. Fields the vendor does not always send
 * are optional.
 */

/** The booking a notification is about. */
export interface VendorBooking {
  id: string;
  /** ISO 8601 with offset, e.g. `2026-03-10T11:30:00+01:00`. */
  start?: string;
  end?: string;
  patient?: { name?: string; email?: string; phone?: string };
  [key: string]: unknown;
}

/** What the vendor POSTs: one event per request. */
export interface VendorEvent {
  /** The vendor's event id: the dedupe key. */
  id: string;
  /** e.g. `booking.created`. */
  type: string;
  /** When it happened, ISO 8601 with offset. */
  occurred_at?: string;
  booking?: VendorBooking;
  [key: string]: unknown;
}
