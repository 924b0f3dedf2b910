/* Generated from packages/core/schemas/common.schema.json and entities/*.schema.json by pnpm generate. Do not edit. */

/**
 * An identifier an entity has (or had) at a vendor. An appointment moved at Docplanner gets a new booking id; both stay listed.
 */
export interface VendorId {
  /**
   * The connector that knows this id, e.g. docplanner.
   */
  system: string;
  /**
   * The connector instance the id was seen on.
   */
  instance?: string;
  /**
   * The vendor's id, always as a string.
   */
  value: string;
  /**
   * False for ids the entity no longer has at the vendor.
   */
  current?: boolean;
}

/**
 * A vendor-side party or place (practitioner, location, organization, service) with what the vendor said about it.
 */
export interface Reference {
  /**
   * The vendor's id, as a string.
   */
  id: string;
  name?: string;
  /**
   * A human-readable label (e.g. given and family name together).
   */
  display?: string;
  [k: string]: unknown;
}

export interface Address {
  line?: string[];
  postalCode?: string;
  city?: string;
  country?: string;
}

export interface Location {
  id: string;
  name?: string;
  address?: Address;
  /**
   * The vendor's classification of the place (e.g. Docplanner commercial_type).
   */
  kind?: string;
}

/**
 * The person the appointment or document is about. Only what the vendor sent is present.
 */
export interface Patient {
  /**
   * The vendor's patient or client id, when it has one.
   */
  id?: string;
  /**
   * The id the patient has in the clinic's own system, when the vendor carries it.
   */
  externalRef?: string;
  /**
   * The full name as the vendor gave it.
   */
  name?: string;
  given?: string;
  family?: string;
  phone?: string;
  email?: string;
  birthDate?: string;
  gender?: "male" | "female" | "other" | "unknown";
  nationalId?: string;
  insuranceNumber?: string;
  isReturning?: boolean;
}

/**
 * Who made a change. `integration` means the partner system itself did it through the vendor's API: a subscriber that is that system can skip the echo.
 */
export interface Actor {
  kind: "patient" | "practitioner" | "staff" | "integration" | "system" | "unknown";
  name?: string;
  /**
   * The vendor's own word for the actor, e.g. Docplanner `user`.
   */
  vendorValue?: string;
}

export interface Money {
  /**
   * In the currency's minor or major unit as the vendor sent it; see `unit`.
   */
  amount: number;
  unit?: "major" | "minor";
  currency?: string;
  /**
   * The price is a lower bound ("from 100").
   */
  isFrom?: boolean;
}

/**
 * A booked visit, as a snapshot after the change the event announces. Status uses the FHIR R4 Appointment.status value set.
 */
export interface Appointment {
  /**
   * The hub's id for this appointment: stable across vendor id changes (a Docplanner move creates a new booking id).
   */
  id: string;
  vendorIds: VendorId[];
  status:
    | "proposed"
    | "pending"
    | "booked"
    | "arrived"
    | "fulfilled"
    | "cancelled"
    | "noshow"
    | "entered-in-error"
    | "checked-in"
    | "waitlist";
  /**
   * Finer clinic-workflow state than FHIR status where the vendor has one (Clockwise.MD: ready = registration done, in_progress = called into the exam room).
   */
  workflowStep?: "scheduled" | "arrived" | "ready" | "in_progress" | "completed" | "removed";
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  start?: string;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  end?: string;
  durationMinutes?: number;
  /**
   * IANA time zone of the place, when the vendor gives it.
   */
  timeZone?: string;
  patient?: Patient;
  practitioner?: Reference;
  location?: Location;
  organization?: Reference;
  service?: {
    id: string;
    name?: string;
    price?: Money;
    visible?: boolean;
  };
  insurance?: {
    id?: string;
    name?: string;
    plan?: string;
    planId?: string;
  };
  payment?: {
    /**
     * The visit is paid online.
     */
    required?: boolean;
    status?: "paid" | "waiting_for_confirmation" | "not_paid" | "refunded" | "charged_back" | "unknown";
    previousStatus?: "paid" | "waiting_for_confirmation" | "not_paid" | "refunded" | "charged_back" | "unknown";
    /**
     * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
     */
    changedAt?: string;
    amount?: Money;
  };
  comment?: string;
  videoCallUrl?: string;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  bookedAt?: string;
  bookedBy?: Actor;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  cancelledAt?: string;
  cancelledBy?: Actor;
  /**
   * Where and when the appointment was before a move.
   */
  previous?: {
    /**
     * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
     */
    start?: string;
    /**
     * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
     */
    end?: string;
    location?: Location;
    practitioner?: Reference;
    vendorId?: string;
  };
  /**
   * Names of the normalized fields this event changed (e.g. payment.status, patient), when known.
   */
  changes?: string[];
  /**
   * Whether details were fetched from the vendor's API. `failed` means the API could not be reached after every retry and the event carries only what the webhook said.
   */
  enrichment?: "none" | "enriched" | "failed";
  /**
   * Set when this change was made by a hub command (the vendor's echo of it): a subscriber that sent the command can skip the event.
   */
  causedBy?: {
    commandId: string;
  };
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * A vendor asks, synchronously, whether a booking or a move may happen (Docplanner slot-booking / booking-moving). The proposed appointment has no vendor booking id yet.
 */
export interface ApprovalRequest {
  /**
   * The hub's id for this approval request (the gate request).
   */
  id: string;
  kind: "booking" | "reschedule";
  /**
   * The appointment as it would be. Its `id` is a provisional hub id; status is `proposed`.
   */
  proposed: Appointment;
  /**
   * For a reschedule: the appointment as it is now.
   */
  current?: Appointment;
  /**
   * When the hub will answer the vendor with its default if approvers have not decided.
   */
  deadline?: string;
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * A media file in a catalogue (Quable media).
 */
export interface Asset {
  /**
   * The hub's id for this asset.
   */
  id: string;
  vendorIds: VendorId[];
  code?: string;
  author?: Actor;
  locales?: {
    updated?: string[];
    inherited?: string[];
  };
  changedItems?: {
    type: string;
    code: string;
  }[];
  apiUrl?: string;
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * A clinical note (domain clinical, shaped after FHIR DocumentReference) or a product record in a catalogue (domain catalog, e.g. a Quable document).
 */
export interface Document {
  /**
   * The hub's id for this document.
   */
  id: string;
  vendorIds: VendorId[];
  domain: "clinical" | "catalog";
  /**
   * FHIR DocumentReference.status.
   */
  status?: "current" | "superseded" | "entered-in-error";
  /**
   * FHIR DocumentReference.docStatus.
   */
  docStatus?: "preliminary" | "final" | "amended" | "entered-in-error";
  title?: string;
  /**
   * Clinical: the note kind (e.g. soap-note). Catalog: the vendor's document type code.
   */
  documentType?: string;
  /**
   * Catalog: the record's code at the vendor.
   */
  code?: string;
  patient?: Patient;
  author?: Actor;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  createdAt?: string;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  updatedAt?: string;
  /**
   * Clinical: when the patient was seen.
   */
  encounterAt?: string;
  /**
   * The document's content in the vendor's structure (clinical: the note's sections, prescriptions and recommendations).
   */
  content?: {
    [k: string]: unknown;
  };
  locales?: {
    updated?: string[];
    inherited?: string[];
  };
  changedItems?: {
    type: string;
    code: string;
  }[];
  /**
   * Catalog: the kind of record the vendor event was about (document, variant, link, classification, value).
   */
  resourceType?: string;
  /**
   * Where the vendor serves the full record.
   */
  apiUrl?: string;
  /**
   * The vendor sent this as a test delivery (e.g. Instinctive Notes "Send test").
   */
  test?: boolean;
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * A vendor-side batch job (Quable import, export, bulk edit) that finished.
 */
export interface Process {
  /**
   * The vendor's process id (or correlation id when there is none).
   */
  id: string;
  /**
   * import, export, bulk_edit, or the vendor's word.
   */
  kind: string;
  correlationId?: string;
  author?: Actor;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  finishedAt?: string;
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * Where and what a practitioner offers: a practitioner's calendar at one location with its services.
 */
export interface Schedule {
  /**
   * The hub's id for this schedule (practitioner at location).
   */
  id: string;
  vendorIds: VendorId[];
  active?: boolean;
  practitioner?: Reference;
  location?: Location;
  organization?: Reference;
  service?: {
    id: string;
    name?: string;
    price?: Money;
    visible?: boolean;
    removed?: boolean;
  };
  /**
   * What changed on the schedule.
   */
  change?:
    "service_added" | "service_changed" | "service_removed" | "location_kind_changed" | "assigned" | "unassigned";
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * A span of a practitioner's calendar: a break (calendar block) or a change of availability. Status uses the FHIR R4 Slot.status value set (a break is busy-unavailable).
 */
export interface Slot {
  /**
   * The hub's id for this slot or block.
   */
  id: string;
  vendorIds: VendorId[];
  kind?: "block" | "availability";
  status: "busy" | "free" | "busy-unavailable" | "busy-tentative" | "entered-in-error";
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  start?: string;
  /**
   * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
   */
  end?: string;
  practitioner?: Reference;
  location?: Location;
  organization?: Reference;
  /**
   * The hub's id of the schedule this slot belongs to (a practitioner's calendar at a place), when the connector knows it: that calendar's schedule.* events have the subject schedule/<scheduleId>, and a FHIR Schedule made from this slot has this id.
   */
  scheduleId?: string;
  previous?: {
    /**
     * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
     */
    start?: string;
    /**
     * An RFC 3339 date-time that keeps the offset the vendor gave (e.g. 2026-03-10T11:30:00+01:00).
     */
    end?: string;
  };
  /**
   * The vendor said availability changed without saying how (Docplanner slot-changed): re-read it from the vendor.
   */
  reloadRequired?: boolean;
  /**
   * Set when this change was made by a hub command (the vendor's echo of it): a subscriber that sent the command can skip the event.
   */
  causedBy?: {
    commandId: string;
  };
  /**
   * The vendor's own record as received, so that fields the normalized model does not name are not lost.
   */
  vendor?: {
    [k: string]: unknown;
  };
}
