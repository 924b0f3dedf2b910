/* Generated from packages/core/schemas/events/*.schema.json by pnpm generate. Do not edit. */

import type { Appointment, ApprovalRequest, Asset, Document, Process, Schedule, Slot } from "./entities.ts";

/**
 * A vendor asks, before it books, whether the proposed appointment may be booked. Nothing is booked yet: subscribers with the approver role answer approve or refuse while the vendor waits, other subscribers are informed. When the vendor goes ahead, an `appointment.created` follows. The event delivered and in the feed (this example) has a `sequence` and no `data.deadline`; the approver's own request (docs/gates.md) has the `deadline` and no `sequence`.
 */
export type AppointmentBookingRequestedData = ApprovalRequest & {
  kind?: "booking";
};

/**
 * A vendor asks, before it moves an appointment, whether the move may happen. `current` is the appointment as it is, `proposed` as it would be. Approvers answer while the vendor waits; when the vendor goes ahead, an `appointment.rescheduled` follows. The event delivered and in the feed (this example) has a `sequence` and no `data.deadline`; the approver's own request (docs/gates.md) has the `deadline` and no `sequence`.
 */
export type AppointmentRescheduleRequestedData = ApprovalRequest & {
  kind?: "reschedule";
  current: NonNullable<ApprovalRequest["current"]>;
};

/**
 * A new appointment exists at the vendor (booked online, by staff, or by an integration: see `bookedBy`). `data` is the appointment as booked.
 */
export type AppointmentCreatedData = Appointment;

/**
 * The patient or the clinic confirmed an existing appointment. Time and place are unchanged.
 */
export type AppointmentConfirmedData = Appointment;

/**
 * The appointment moved to another time (and possibly another place or practitioner). It keeps its hub id even when the vendor gave it a new id (the old one stays in `vendorIds` with `current: false`); `previous` says where and when it was. It is not a cancellation: do not cancel anything on your side.
 */
export type AppointmentRescheduledData = Appointment & {
  previous: NonNullable<Appointment["previous"]>;
};

/**
 * Something other than time, place or status changed (payment status, patient details, service, comment). `changes` names the normalized fields that changed, e.g. `payment.status` or `patient`.
 */
export type AppointmentUpdatedData = Appointment & {
  changes: NonNullable<Appointment["changes"]>;
};

/**
 * The appointment will not take place. `cancelledBy` says who cancelled (`integration` when your own system did it through the vendor API, so you can skip the echo). When the vendor undoes a cancellation, `appointment.restored` follows.
 */
export type AppointmentCancelledData = Appointment & {
  status?: "cancelled";
};

/**
 * A cancellation was undone: the appointment, cancelled before, takes place again, with the status it has now. This is the undo of `appointment.cancelled` only; an undone no-show is `appointment.status_reverted`.
 */
export type AppointmentRestoredData = Appointment;

/**
 * The patient is at the clinic (checked in at the desk, or marked present by the practitioner). Status is `arrived`.
 */
export type AppointmentArrivedData = Appointment & {
  status?: "arrived";
};

/**
 * Registration is done and the visit can begin (Clockwise.MD "ready"). Status is `checked-in` (FHIR: pre-encounter administrative work complete).
 */
export type AppointmentCheckedInData = Appointment & {
  status?: "checked-in";
};

/**
 * The patient was called into the exam room. `workflowStep` is `in_progress`; FHIR has no status for this, so `status` stays as it was.
 */
export type AppointmentInProgressData = Appointment & {
  workflowStep: "in_progress";
};

/**
 * The patient was discharged: the visit took place. Status is `fulfilled`.
 */
export type AppointmentCompletedData = Appointment & {
  status?: "fulfilled";
};

/**
 * The patient did not come (marked absent, or taken off the queue before checking in). Status is `noshow`. A no-show is a workflow outcome: when the vendor undoes it, `appointment.status_reverted` follows.
 */
export type AppointmentNoShowData = Appointment & {
  status?: "noshow";
};

/**
 * A workflow status was undone: an arrival, check-in, call-in, completion or no-show (the undo of `appointment.arrived`, `appointment.checked_in`, `appointment.in_progress`, `appointment.completed` or `appointment.no_show`). `status` and `workflowStep` hold the state the appointment is back in, `changes` names them; `vendortype` names the vendor's undo. An undone cancellation is `appointment.restored`.
 */
export type AppointmentStatusRevertedData = Appointment;

/**
 * The practitioner blocked a span of the calendar (a break): nothing can be booked between `start` and `end`. Status is `busy-unavailable`.
 */
export type SlotBlockedData = Slot & {
  status?: "busy-unavailable";
  start: NonNullable<Slot["start"]>;
  end: NonNullable<Slot["end"]>;
};

/**
 * A calendar block now spans `start` to `end`. `previous` has the old span when the hub knew it (Docplanner sends only the new times).
 */
export type SlotBlockMovedData = Slot & {
  start: NonNullable<Slot["start"]>;
  end: NonNullable<Slot["end"]>;
};

/**
 * A calendar block was removed: the span is bookable again. `data` is the block as it was.
 */
export type SlotUnblockedData = Slot;

/**
 * Availability changed for a practitioner at a place without the vendor saying how. When `reloadRequired` is true, re-read the availability from the vendor.
 */
export type SlotChangedData = Slot;

/**
 * What a practitioner offers at a place changed: a service added, changed or removed, or the kind of place changed. `change` says which; `service` is the service concerned.
 */
export type ScheduleUpdatedData = Schedule & {
  change: NonNullable<Schedule["change"]>;
};

/**
 * A practitioner was assigned to a place: their calendar there can take bookings. `active` is true.
 */
export type ScheduleActivatedData = Schedule & {
  active: true;
};

/**
 * A practitioner was unassigned from a place: their calendar there takes no more bookings. `active` is false.
 */
export type ScheduleDeactivatedData = Schedule & {
  active: false;
};

/**
 * A new document: a clinical note about a patient's visit (`domain: clinical`, shaped after FHIR DocumentReference) or a product record in a catalogue (`domain: catalog`).
 */
export type DocumentCreatedData = Document;

/**
 * A document changed. `data` is the document after the change; for catalogue records `locales` and `changedItems` say what changed when the vendor tells.
 */
export type DocumentUpdatedData = Document;

/**
 * A document was deleted at the vendor. `data` identifies it; it can no longer be read there.
 */
export type DocumentDeletedData = Document;

/**
 * A media file (image, PDF, video) was added to a catalogue.
 */
export type AssetCreatedData = Asset;

/**
 * A media file or its metadata changed; `locales` and `changedItems` say what, when the vendor tells.
 */
export type AssetUpdatedData = Asset;

/**
 * A media file was removed from the catalogue.
 */
export type AssetDeletedData = Asset;

/**
 * A vendor-side batch job (import, export, bulk edit) finished. Re-read what it touched from the vendor if you mirror it.
 */
export type ProcessCompletedData = Process;

/**
 * The vendor did what a command asked. Its subject is `command/<command id>`. For `appointment.book`, `target` and `result.appointmentId` name the new appointment; for `slot.block`, `target` and `result.slotId` the new block. The vendor's own notification of the change may follow as a normal event carrying `data.causedBy.commandId`.
 */
export interface CommandSucceededData {
  /**
   * The command's id (`POST /v1/commands` answered it).
   */
  commandId: string;
  /**
   * The command type, e.g. `appointment.cancel`.
   */
  commandType: string;
  /**
   * The command's subject (`appointment/<hub id>`, `slot/<hub id>`); for `appointment.book` / `slot.block`, the new appointment / block once made.
   */
  target?: string;
  /**
   * The connector instance the command went to.
   */
  instance: string;
  /**
   * How many times the hub called the vendor for it.
   */
  attempts: number;
  /**
   * Who sent the command: `admin` or `subscription:<id>`.
   */
  sentBy: string;
  /**
   * The sender's Idempotency-Key, when it gave one.
   */
  idempotencyKey?: string;
  /**
   * What the vendor answered that matters: `appointmentId` (the hub id, for a booking), `slotId` (the hub id, for a calendar block made by `slot.block`), `vendorIds` (new vendor ids aliased to the target), `alreadyDone` (the vendor said it was already in the requested state: a repeat after a lost answer, whose first call's notification may still come), `unchanged` (the target was already in the requested state before the call: nothing changed at the vendor, no notification of this command will come, and none is marked with its `causedBy`).
   */
  result: {
    appointmentId?: string;
    slotId?: string;
    vendorIds?: string[];
    alreadyDone?: boolean;
    unchanged?: boolean;
  };
}

/**
 * The vendor refused a command (a 4xx, passed through in `error.vendor`), or it kept failing temporarily until the hub's retries ran out. Nothing will be retried unless someone calls `POST /v1/commands/{id}/retry`.
 */
export interface CommandFailedData {
  /**
   * The command's id (`POST /v1/commands` answered it).
   */
  commandId: string;
  /**
   * The command type, e.g. `appointment.cancel`.
   */
  commandType: string;
  /**
   * The command's subject (`appointment/<hub id>`, `slot/<hub id>`); for `appointment.book` / `slot.block`, the new appointment / block once made.
   */
  target?: string;
  /**
   * The connector instance the command went to.
   */
  instance: string;
  /**
   * How many times the hub called the vendor for it.
   */
  attempts: number;
  /**
   * Who sent the command: `admin` or `subscription:<id>`.
   */
  sentBy: string;
  /**
   * The sender's Idempotency-Key, when it gave one.
   */
  idempotencyKey?: string;
  error: {
    /**
     * `permanent`: the vendor refused; `exhausted`: temporary failures until the retries ran out.
     */
    kind: "permanent" | "exhausted";
    message: string;
    /**
     * The vendor's answer: HTTP status and body (truncated).
     */
    vendor?: {
      status?: number;
      body?: unknown;
    };
  };
}

/**
 * Sent by the hub itself when an operator asks to send a test event to a subscription, to check the endpoint, its signature verification and its answer. It describes nothing that happened at a vendor: acknowledge it and do nothing else.
 */
export interface HubTestData {
  /**
   * A human-readable note saying who asked for the test.
   */
  message: string;
}

/** Every normalized event type. */
export type NormalizedEventType =
  | "appointment.booking_requested"
  | "appointment.reschedule_requested"
  | "appointment.created"
  | "appointment.confirmed"
  | "appointment.rescheduled"
  | "appointment.updated"
  | "appointment.cancelled"
  | "appointment.restored"
  | "appointment.arrived"
  | "appointment.checked_in"
  | "appointment.in_progress"
  | "appointment.completed"
  | "appointment.no_show"
  | "appointment.status_reverted"
  | "slot.blocked"
  | "slot.block_moved"
  | "slot.unblocked"
  | "slot.changed"
  | "schedule.updated"
  | "schedule.activated"
  | "schedule.deactivated"
  | "document.created"
  | "document.updated"
  | "document.deleted"
  | "asset.created"
  | "asset.updated"
  | "asset.deleted"
  | "process.completed"
  | "command.succeeded"
  | "command.failed"
  | "hub.test";

/** What an event is about (the `<entity>` part of its `subject`). */
export type EventEntity = "approval_request" | "appointment" | "slot" | "schedule" | "document" | "asset" | "process" | "command" | "hub";

/** The `data` type of each normalized event type. */
export interface EventDataMap {
  "appointment.booking_requested": AppointmentBookingRequestedData;
  "appointment.reschedule_requested": AppointmentRescheduleRequestedData;
  "appointment.created": AppointmentCreatedData;
  "appointment.confirmed": AppointmentConfirmedData;
  "appointment.rescheduled": AppointmentRescheduledData;
  "appointment.updated": AppointmentUpdatedData;
  "appointment.cancelled": AppointmentCancelledData;
  "appointment.restored": AppointmentRestoredData;
  "appointment.arrived": AppointmentArrivedData;
  "appointment.checked_in": AppointmentCheckedInData;
  "appointment.in_progress": AppointmentInProgressData;
  "appointment.completed": AppointmentCompletedData;
  "appointment.no_show": AppointmentNoShowData;
  "appointment.status_reverted": AppointmentStatusRevertedData;
  "slot.blocked": SlotBlockedData;
  "slot.block_moved": SlotBlockMovedData;
  "slot.unblocked": SlotUnblockedData;
  "slot.changed": SlotChangedData;
  "schedule.updated": ScheduleUpdatedData;
  "schedule.activated": ScheduleActivatedData;
  "schedule.deactivated": ScheduleDeactivatedData;
  "document.created": DocumentCreatedData;
  "document.updated": DocumentUpdatedData;
  "document.deleted": DocumentDeletedData;
  "asset.created": AssetCreatedData;
  "asset.updated": AssetUpdatedData;
  "asset.deleted": AssetDeletedData;
  "process.completed": ProcessCompletedData;
  "command.succeeded": CommandSucceededData;
  "command.failed": CommandFailedData;
  "hub.test": HubTestData;
}

/** One row of {@link EVENT_TYPES}. */
export interface EventTypeInfo {
  readonly type: NormalizedEventType;
  readonly entity: EventEntity;
  /** A short human title. */
  readonly title: string;
  /** What the event means for a subscriber. */
  readonly description: string;
  /** The vendor events that produce it, e.g. "Docplanner booking-moved". */
  readonly vendorEvents: readonly string[];
  /** The `$id` of the schema of the event's `data`. */
  readonly schemaId: string;
}

/** Every normalized event type with what it means, in catalog order. */
export const EVENT_TYPES = [
  {
    type: "appointment.booking_requested",
    entity: "approval_request",
    title: "Booking requested (approval gate)",
    description:
      "A vendor asks, before it books, whether the proposed appointment may be booked. Nothing is booked yet: subscribers with the approver role answer approve or refuse while the vendor waits, other subscribers are informed. When the vendor goes ahead, an `appointment.created` follows. The event delivered and in the feed (this example) has a `sequence` and no `data.deadline`; the approver's own request (docs/gates.md) has the `deadline` and no `sequence`.",
    vendorEvents: [
      "Docplanner slot-booking",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.booking_requested.json",
  },
  {
    type: "appointment.reschedule_requested",
    entity: "approval_request",
    title: "Reschedule requested (approval gate)",
    description:
      "A vendor asks, before it moves an appointment, whether the move may happen. `current` is the appointment as it is, `proposed` as it would be. Approvers answer while the vendor waits; when the vendor goes ahead, an `appointment.rescheduled` follows. The event delivered and in the feed (this example) has a `sequence` and no `data.deadline`; the approver's own request (docs/gates.md) has the `deadline` and no `sequence`.",
    vendorEvents: [
      "Docplanner booking-moving",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.reschedule_requested.json",
  },
  {
    type: "appointment.created",
    entity: "appointment",
    title: "Appointment created",
    description:
      "A new appointment exists at the vendor (booked online, by staff, or by an integration: see `bookedBy`). `data` is the appointment as booked.",
    vendorEvents: [
      "Docplanner slot-booked",
      "Docplanner slot-overbooked",
      "Clockwise.MD create",
      "BookingBug booking created",
      "Cliniko individual_appointment (first seen)",
      "Acuity scheduled",
      "Acuity changed (first seen)",
      "Calendly invitee.created",
      "Square booking.created",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.created.json",
  },
  {
    type: "appointment.confirmed",
    entity: "appointment",
    title: "Appointment confirmed",
    description:
      "The patient or the clinic confirmed an existing appointment. Time and place are unchanged.",
    vendorEvents: [
      "Docplanner booking-confirmed",
      "JRNI notification webhook confirmed",
      "Square booking.updated (PENDING → ACCEPTED)",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.confirmed.json",
  },
  {
    type: "appointment.rescheduled",
    entity: "appointment",
    title: "Appointment rescheduled",
    description:
      "The appointment moved to another time (and possibly another place or practitioner). It keeps its hub id even when the vendor gave it a new id (the old one stays in `vendorIds` with `current: false`); `previous` says where and when it was. It is not a cancellation: do not cancel anything on your side.",
    vendorEvents: [
      "Docplanner booking-moved",
      "Clockwise.MD reschedule",
      "BookingBug amendment with a new time",
      "Cliniko individual_appointment (starts_at moved)",
      "Acuity rescheduled",
      "Acuity changed (time or calendar moved)",
      "Calendly invitee.created (old_invitee set)",
      "Square booking.updated (new start_at)",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.rescheduled.json",
  },
  {
    type: "appointment.updated",
    entity: "appointment",
    title: "Appointment updated",
    description:
      "Something other than time, place or status changed (payment status, patient details, service, comment). `changes` names the normalized fields that changed, e.g. `payment.status` or `patient`.",
    vendorEvents: [
      "Docplanner booking-payment-status-changed",
      "Clockwise.MD demographics_update",
      "BookingBug other amendment",
      "Cliniko individual_appointment (other change)",
      "Acuity changed (client, type, notes or length)",
      "Square booking.updated (other changes)",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.updated.json",
  },
  {
    type: "appointment.cancelled",
    entity: "appointment",
    title: "Appointment cancelled",
    description:
      "The appointment will not take place. `cancelledBy` says who cancelled (`integration` when your own system did it through the vendor API, so you can skip the echo). When the vendor undoes a cancellation, `appointment.restored` follows.",
    vendorEvents: [
      "Docplanner booking-canceled",
      "BookingBug cancellation",
      "Clockwise.MD remove (after check-in)",
      "Cliniko individual_appointment (cancelled_at, archived_at or deleted_at set)",
      "Acuity canceled",
      "Acuity changed (cancelled)",
      "Calendly invitee.canceled",
      "Square booking.updated (CANCELLED_BY_CUSTOMER, CANCELLED_BY_SELLER, DECLINED)",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.cancelled.json",
  },
  {
    type: "appointment.restored",
    entity: "appointment",
    title: "Appointment restored",
    description:
      "A cancellation was undone: the appointment, cancelled before, takes place again, with the status it has now. This is the undo of `appointment.cancelled` only; an undone no-show is `appointment.status_reverted`.",
    vendorEvents: [
      "Clockwise.MD undo_remove (after a cancellation)",
      "BookingBug booking no longer cancelled",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.restored.json",
  },
  {
    type: "appointment.arrived",
    entity: "appointment",
    title: "Patient arrived",
    description:
      "The patient is at the clinic (checked in at the desk, or marked present by the practitioner). Status is `arrived`.",
    vendorEvents: [
      "Docplanner presence-marked (PRESENT)",
      "Clockwise.MD checkin",
      "BookingBug check-in status Checked in",
      "Cliniko individual_appointment (patient_arrived)",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.arrived.json",
  },
  {
    type: "appointment.checked_in",
    entity: "appointment",
    title: "Patient checked in",
    description:
      "Registration is done and the visit can begin (Clockwise.MD \"ready\"). Status is `checked-in` (FHIR: pre-encounter administrative work complete).",
    vendorEvents: [
      "Clockwise.MD ready",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.checked_in.json",
  },
  {
    type: "appointment.in_progress",
    entity: "appointment",
    title: "Visit in progress",
    description:
      "The patient was called into the exam room. `workflowStep` is `in_progress`; FHIR has no status for this, so `status` stays as it was.",
    vendorEvents: [
      "Clockwise.MD callback",
      "BookingBug check-in status Being seen",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.in_progress.json",
  },
  {
    type: "appointment.completed",
    entity: "appointment",
    title: "Visit completed",
    description:
      "The patient was discharged: the visit took place. Status is `fulfilled`.",
    vendorEvents: [
      "Clockwise.MD discharge",
      "BookingBug check-in status Completed",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.completed.json",
  },
  {
    type: "appointment.no_show",
    entity: "appointment",
    title: "Patient did not come",
    description:
      "The patient did not come (marked absent, or taken off the queue before checking in). Status is `noshow`. A no-show is a workflow outcome: when the vendor undoes it, `appointment.status_reverted` follows.",
    vendorEvents: [
      "Docplanner presence-marked (ABSENT)",
      "Clockwise.MD remove (before check-in)",
      "BookingBug check-in status No show",
      "Cliniko individual_appointment (did_not_arrive)",
      "Calendly invitee_no_show.created",
      "Square booking.updated (NO_SHOW)",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.no_show.json",
  },
  {
    type: "appointment.status_reverted",
    entity: "appointment",
    title: "Status change undone",
    description:
      "A workflow status was undone: an arrival, check-in, call-in, completion or no-show (the undo of `appointment.arrived`, `appointment.checked_in`, `appointment.in_progress`, `appointment.completed` or `appointment.no_show`). `status` and `workflowStep` hold the state the appointment is back in, `changes` names them; `vendortype` names the vendor's undo. An undone cancellation is `appointment.restored`.",
    vendorEvents: [
      "Clockwise.MD undo_checkin",
      "Clockwise.MD undo_ready",
      "Clockwise.MD undo_callback",
      "Clockwise.MD undo_discharge",
      "Clockwise.MD undo_remove (after a no-show)",
      "BookingBug check-in status cleared or set back",
      "Cliniko individual_appointment (patient_arrived or did_not_arrive cleared)",
      "Calendly invitee_no_show.deleted",
    ],
    schemaId: "https://switchyard.dev/schemas/events/appointment.status_reverted.json",
  },
  {
    type: "slot.blocked",
    entity: "slot",
    title: "Calendar blocked",
    description:
      "The practitioner blocked a span of the calendar (a break): nothing can be booked between `start` and `end`. Status is `busy-unavailable`.",
    vendorEvents: [
      "Docplanner break-created",
      "Cliniko unavailable_block",
    ],
    schemaId: "https://switchyard.dev/schemas/events/slot.blocked.json",
  },
  {
    type: "slot.block_moved",
    entity: "slot",
    title: "Calendar block moved",
    description:
      "A calendar block now spans `start` to `end`. `previous` has the old span when the hub knew it (Docplanner sends only the new times).",
    vendorEvents: [
      "Docplanner break-moved",
      "Cliniko unavailable_block",
    ],
    schemaId: "https://switchyard.dev/schemas/events/slot.block_moved.json",
  },
  {
    type: "slot.unblocked",
    entity: "slot",
    title: "Calendar block removed",
    description:
      "A calendar block was removed: the span is bookable again. `data` is the block as it was.",
    vendorEvents: [
      "Docplanner break-removed",
      "Cliniko unavailable_block",
    ],
    schemaId: "https://switchyard.dev/schemas/events/slot.unblocked.json",
  },
  {
    type: "slot.changed",
    entity: "slot",
    title: "Availability changed",
    description:
      "Availability changed for a practitioner at a place without the vendor saying how. When `reloadRequired` is true, re-read the availability from the vendor.",
    vendorEvents: [
      "Docplanner slot-changed",
    ],
    schemaId: "https://switchyard.dev/schemas/events/slot.changed.json",
  },
  {
    type: "schedule.updated",
    entity: "schedule",
    title: "Schedule updated",
    description:
      "What a practitioner offers at a place changed: a service added, changed or removed, or the kind of place changed. `change` says which; `service` is the service concerned.",
    vendorEvents: [
      "Docplanner address-service-created",
      "Docplanner address-service-changed",
      "Docplanner address-service-deleted",
      "Docplanner address-commercial-type-changed",
    ],
    schemaId: "https://switchyard.dev/schemas/events/schedule.updated.json",
  },
  {
    type: "schedule.activated",
    entity: "schedule",
    title: "Schedule activated",
    description:
      "A practitioner was assigned to a place: their calendar there can take bookings. `active` is true.",
    vendorEvents: [
      "Docplanner address-assigned",
    ],
    schemaId: "https://switchyard.dev/schemas/events/schedule.activated.json",
  },
  {
    type: "schedule.deactivated",
    entity: "schedule",
    title: "Schedule deactivated",
    description:
      "A practitioner was unassigned from a place: their calendar there takes no more bookings. `active` is false.",
    vendorEvents: [
      "Docplanner address-unassigned",
    ],
    schemaId: "https://switchyard.dev/schemas/events/schedule.deactivated.json",
  },
  {
    type: "document.created",
    entity: "document",
    title: "Document created",
    description:
      "A new document: a clinical note about a patient's visit (`domain: clinical`, shaped after FHIR DocumentReference) or a product record in a catalogue (`domain: catalog`).",
    vendorEvents: [
      "Instinctive Notes soap_note.created",
      "Quable document.create",
    ],
    schemaId: "https://switchyard.dev/schemas/events/document.created.json",
  },
  {
    type: "document.updated",
    entity: "document",
    title: "Document updated",
    description:
      "A document changed. `data` is the document after the change; for catalogue records `locales` and `changedItems` say what changed when the vendor tells.",
    vendorEvents: [
      "Instinctive Notes soap_note.updated",
      "Quable document.update",
    ],
    schemaId: "https://switchyard.dev/schemas/events/document.updated.json",
  },
  {
    type: "document.deleted",
    entity: "document",
    title: "Document deleted",
    description:
      "A document was deleted at the vendor. `data` identifies it; it can no longer be read there.",
    vendorEvents: [
      "Quable document.delete",
    ],
    schemaId: "https://switchyard.dev/schemas/events/document.deleted.json",
  },
  {
    type: "asset.created",
    entity: "asset",
    title: "Asset created",
    description:
      "A media file (image, PDF, video) was added to a catalogue.",
    vendorEvents: [
      "Quable media.create",
    ],
    schemaId: "https://switchyard.dev/schemas/events/asset.created.json",
  },
  {
    type: "asset.updated",
    entity: "asset",
    title: "Asset updated",
    description:
      "A media file or its metadata changed; `locales` and `changedItems` say what, when the vendor tells.",
    vendorEvents: [
      "Quable media.update",
    ],
    schemaId: "https://switchyard.dev/schemas/events/asset.updated.json",
  },
  {
    type: "asset.deleted",
    entity: "asset",
    title: "Asset deleted",
    description:
      "A media file was removed from the catalogue.",
    vendorEvents: [
      "Quable media.delete",
    ],
    schemaId: "https://switchyard.dev/schemas/events/asset.deleted.json",
  },
  {
    type: "process.completed",
    entity: "process",
    title: "Batch process completed",
    description:
      "A vendor-side batch job (import, export, bulk edit) finished. Re-read what it touched from the vendor if you mirror it.",
    vendorEvents: [
      "Quable import.finish",
      "Quable export.finish",
      "Quable bulk_edit.finish",
    ],
    schemaId: "https://switchyard.dev/schemas/events/process.completed.json",
  },
  {
    type: "command.succeeded",
    entity: "command",
    title: "Command succeeded",
    description:
      "The vendor did what a command asked. Its subject is `command/<command id>`. For `appointment.book`, `target` and `result.appointmentId` name the new appointment; for `slot.block`, `target` and `result.slotId` the new block. The vendor's own notification of the change may follow as a normal event carrying `data.causedBy.commandId`.",
    vendorEvents: [],
    schemaId: "https://switchyard.dev/schemas/events/command.succeeded.json",
  },
  {
    type: "command.failed",
    entity: "command",
    title: "Command failed",
    description:
      "The vendor refused a command (a 4xx, passed through in `error.vendor`), or it kept failing temporarily until the hub's retries ran out. Nothing will be retried unless someone calls `POST /v1/commands/{id}/retry`.",
    vendorEvents: [],
    schemaId: "https://switchyard.dev/schemas/events/command.failed.json",
  },
  {
    type: "hub.test",
    entity: "hub",
    title: "Test event",
    description:
      "Sent by the hub itself when an operator asks to send a test event to a subscription, to check the endpoint, its signature verification and its answer. It describes nothing that happened at a vendor: acknowledge it and do nothing else.",
    vendorEvents: [],
    schemaId: "https://switchyard.dev/schemas/events/hub.test.json",
  },
] as const satisfies readonly EventTypeInfo[];
