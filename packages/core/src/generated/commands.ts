/* Generated from packages/core/schemas/commands/*.schema.json by pnpm generate. Do not edit. */

import type { Actor, Location, Patient, Reference } from "./entities.ts";

/**
 * Books a slot for a patient at the vendor. Names the connector instance (`instance`) instead of a subject: the appointment does not exist yet. The outcome (`command.succeeded`) carries the new appointment's hub id; the vendor's own notification of the booking later arrives as `appointment.created` for the same hub id, with `data.causedBy`. Commands can act on that hub id at once (a reschedule, a cancel), without waiting for the notification: the hub holds the booking's vendor id and place from this command.
 */
export interface AppointmentBookCommandData {
  /**
   * When the visit starts (the slot's start), with its offset.
   */
  start: string;
  /**
   * Length of the visit, when the vendor lets the caller choose. Docplanner requires it (its bookSlot has no default length).
   */
  durationMinutes?: number;
  /**
   * Who the visit is for. The vendor decides which fields it needs (Docplanner: a name and a phone; BookingBug, without `vendor.member_id`: an email and a name; Cliniko: `id`, the Cliniko patient id; Calendly: an email and a name).
   */
  patient: Patient;
  /**
   * The practitioner, by the vendor's id (Docplanner doctor id, BookingBug person id, Cliniko practitioner id).
   */
  practitioner?: Reference;
  /**
   * The place, by the vendor's id (Docplanner address id, Clockwise.MD hospital id, Cliniko business id).
   */
  location?: Location;
  /**
   * The organization, by the vendor's id (Docplanner facility id, BookingBug company id).
   */
  organization?: Reference;
  /**
   * The service booked, by the vendor's id (Docplanner address service id, Clockwise.MD reason id, BookingBug service id, Cliniko appointment type id, Calendly event type URI).
   */
  service?: Reference;
  /**
   * A note for the clinic.
   */
  comment?: string;
  /**
   * Vendor-specific fields the normalized command does not name, passed to the connector as they are (each connector's page lists the ones it reads: Docplanner `insurance_provider_id` / `insurance_plan_id`, BookingBug `resource_id` / `member_id`, Square `service_variation_version`, Calendly `timezone` / `location` / `questions_and_answers`).
   */
  vendor?: {
    [k: string]: unknown;
  };
}

/**
 * Cancels the appointment at the vendor. Refused at once when the hub already knows the appointment as cancelled; a vendor answer saying it is already cancelled counts as success (a retried cancel after a crash).
 */
export interface AppointmentCancelCommandData {
  /**
   * Why, in words the vendor may show to staff or the patient.
   */
  reason?: string;
  /**
   * Who asks for the change, as the vendor should record it (when the vendor records one).
   */
  actor?: Actor;
}

/**
 * Moves the appointment to another start (and optionally another service or place). The appointment keeps its hub id even when the vendor gives the moved booking a new id (Docplanner): the new vendor id becomes another alias of the same appointment.
 */
export interface AppointmentRescheduleCommandData {
  /**
   * The new start, with its offset.
   */
  start: string;
  /**
   * The new length, when the vendor lets the caller choose.
   */
  durationMinutes?: number;
  /**
   * The service at the new time, by the vendor's id; default: the appointment's current service.
   */
  service?: Reference;
  /**
   * Another place, by the vendor's id; default: the current place.
   */
  location?: Location;
  /**
   * Why, in words the vendor may show to staff or the patient.
   */
  reason?: string;
}

/**
 * Records at the vendor that the visit is confirmed (say, the patient confirmed it on the phone to the front desk); Docplanner's confirmBooking (the other shipped connectors publish no confirm call and refuse it at once, `SY_COMMAND_UNSUPPORTED`). Refused at once when the hub already knows the appointment as cancelled; a vendor answer saying it is already confirmed counts as success (confirming twice leaves it confirmed). The vendor's notification of the confirmation arrives as `appointment.confirmed` with `data.causedBy`.
 */
export interface AppointmentConfirmCommandData {
  /**
   * Who confirmed, as the vendor should record it. Docplanner's `confirmed_by`: `patient` is its `user`, any other kind (and none given) its `admin`, the clinic.
   */
  actor?: Actor;
}

/**
 * Records at the vendor that the patient came (Docplanner presence PRESENT, BookingBug check-in status `checked_in`, Cliniko `patient_arrived`; Clockwise.MD publishes no check-in call).
 */
export interface AppointmentMarkArrivedCommandData {
  /**
   * A note for the audit trail; not sent to vendors that have no field for it.
   */
  note?: string;
}

/**
 * Records at the vendor that the patient did not come (Docplanner DELETE presence, its markPatientAbsence; BookingBug check-in status `no_show`, Cliniko `did_not_arrive`, Calendly `POST /invitee_no_shows`).
 */
export interface AppointmentMarkNoShowCommandData {
  /**
   * A note for the audit trail; not sent to vendors that have no field for it.
   */
  note?: string;
}

/**
 * Removes a recorded arrival or no-show at the vendor: Cliniko sets both presence flags back (docs/connectors/cliniko.md), its next poll telling `appointment.status_reverted` with `data.causedBy`; Calendly deletes the invitee's no-show (`DELETE /invitee_no_shows/{uuid}`, docs/connectors/calendly.md), its `invitee_no_show.deleted` webhook telling the same. The other shipped connectors refuse it at once, `SY_COMMAND_UNSUPPORTED` (Docplanner's presence calls mark present or absent, none clears a mark; JRNI documents setting a check-in status, not clearing one).
 */
export interface AppointmentClearPresenceCommandData {
  /**
   * A note for the audit trail; not sent to vendors that have no field for it.
   */
  note?: string;
}

/**
 * Writes fields the vendor lets a partner change on an existing appointment (Clockwise.MD custom fields; BookingBug a private note and Cliniko the appointment's notes, `comment`). Each connector's page lists what it writes; a field it cannot write is refused at once (422 SY_COMMAND_UNSUPPORTED, naming the field) where the connector can tell when the command is sent, else the command fails permanently, naming it.
 */
export interface AppointmentUpdateCommandData {
  /**
   * A new note for the clinic, where the vendor has one.
   */
  comment?: string;
  /**
   * Vendor custom fields by the vendor's field id (Clockwise.MD `custom_fields`).
   */
  customFields?: {
    [k: string]: string | number | boolean | null;
  };
}

/**
 * Blocks a span of a practitioner's calendar at the vendor (a Docplanner break, a Cliniko unavailable block): nothing can be booked between `start` and `end` (a leave, a meeting). Names the connector instance (`instance`) instead of a subject: the block does not exist yet. The outcome (`command.succeeded`) carries the new block's hub id (`result.slotId`); the vendor's own notification of the block later arrives as `slot.blocked` for the same hub id, with `data.causedBy`. The block can be moved or removed through that hub id at once, without waiting for the notification (which may be lost): the hub holds its vendor id and place from this command.
 */
export interface SlotBlockCommandData {
  /**
   * When the block starts, with its offset.
   */
  start: string;
  /**
   * When the block ends, with its offset; after `start` (a block that ends when or before it starts is refused, `SY_COMMAND_INVALID` at `/data/end`).
   */
  end: string;
  /**
   * Whose calendar, by the vendor's id (Docplanner doctor id, Cliniko practitioner id).
   */
  practitioner?: Reference;
  /**
   * The place whose calendar it is, by the vendor's id (Docplanner address id, Cliniko business id).
   */
  location?: Location;
  /**
   * The organization, by the vendor's id (Docplanner facility id; Cliniko has none).
   */
  organization?: Reference;
  /**
   * Why the time is blocked, as the vendor may show it to staff (Docplanner: the break's `description`; Cliniko: the block's `notes`).
   */
  reason?: string;
}

/**
 * Moves a calendar block (`slot/<hub id>`: one `slot.blocked` announced, or one a `slot.block` made, at once, before or without the vendor's notification of it) to a new `start` and `end`; it keeps its hub id. Refused at once when the hub already knows the block as removed (`slot.unblocked`), or knows the slot as no calendar block (a Docplanner availability, `slot.changed`, `kind: availability`: 409 `SY_COMMAND_TARGET_STATE`, `details.kind`). The vendor's notification of the move arrives as `slot.block_moved`, with `data.causedBy`.
 */
export interface SlotMoveBlockCommandData {
  /**
   * The new start, with its offset.
   */
  start: string;
  /**
   * The new end, with its offset; after `start` (else refused, `SY_COMMAND_INVALID` at `/data/end`).
   */
  end: string;
}

/**
 * Removes a calendar block (`slot/<hub id>`, also one a `slot.block` made, at once, before or without the vendor's notification of it): its time can be booked again. Refused at once when the hub already knows the block as removed (`slot.unblocked`), or knows the slot as no calendar block (a Docplanner availability, `slot.changed`, `kind: availability`: 409 `SY_COMMAND_TARGET_STATE`, `details.kind`); a vendor answer saying the block is no longer there counts as success (removed by staff meanwhile, or a retried unblock after a crash). The vendor's notification of the removal arrives as `slot.unblocked`, with `data.causedBy`.
 */
export interface SlotUnblockCommandData {}

/** Every command type. */
export type CommandType =
  | "appointment.book"
  | "appointment.cancel"
  | "appointment.reschedule"
  | "appointment.confirm"
  | "appointment.mark_arrived"
  | "appointment.mark_no_show"
  | "appointment.clear_presence"
  | "appointment.update"
  | "slot.block"
  | "slot.move_block"
  | "slot.unblock";

/** The `data` type of each command type. */
export interface CommandDataMap {
  "appointment.book": AppointmentBookCommandData;
  "appointment.cancel": AppointmentCancelCommandData;
  "appointment.reschedule": AppointmentRescheduleCommandData;
  "appointment.confirm": AppointmentConfirmCommandData;
  "appointment.mark_arrived": AppointmentMarkArrivedCommandData;
  "appointment.mark_no_show": AppointmentMarkNoShowCommandData;
  "appointment.clear_presence": AppointmentClearPresenceCommandData;
  "appointment.update": AppointmentUpdateCommandData;
  "slot.block": SlotBlockCommandData;
  "slot.move_block": SlotMoveBlockCommandData;
  "slot.unblock": SlotUnblockCommandData;
}

/** One row of {@link COMMAND_TYPES}. */
export interface CommandTypeInfo {
  readonly type: CommandType;
  /** What the command acts on (the `<entity>` of its subject). */
  readonly entity: string;
  /** `subject`: acts on an existing entity named by `subject`; `instance`: creates one at the named connector instance. */
  readonly target: 'subject' | 'instance';
  /** A short human title. */
  readonly title: string;
  /** What the command does. */
  readonly description: string;
  /** The `$id` of the schema of the command's `data`. */
  readonly schemaId: string;
}

/** Every command type with what it does, in catalog order. */
export const COMMAND_TYPES = [
  {
    type: "appointment.book",
    entity: "appointment",
    target: "instance",
    title: "Book an appointment",
    description:
      "Books a slot for a patient at the vendor. Names the connector instance (`instance`) instead of a subject: the appointment does not exist yet. The outcome (`command.succeeded`) carries the new appointment's hub id; the vendor's own notification of the booking later arrives as `appointment.created` for the same hub id, with `data.causedBy`. Commands can act on that hub id at once (a reschedule, a cancel), without waiting for the notification: the hub holds the booking's vendor id and place from this command.",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.book.json",
  },
  {
    type: "appointment.cancel",
    entity: "appointment",
    target: "subject",
    title: "Cancel an appointment",
    description:
      "Cancels the appointment at the vendor. Refused at once when the hub already knows the appointment as cancelled; a vendor answer saying it is already cancelled counts as success (a retried cancel after a crash).",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.cancel.json",
  },
  {
    type: "appointment.reschedule",
    entity: "appointment",
    target: "subject",
    title: "Reschedule an appointment",
    description:
      "Moves the appointment to another start (and optionally another service or place). The appointment keeps its hub id even when the vendor gives the moved booking a new id (Docplanner): the new vendor id becomes another alias of the same appointment.",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.reschedule.json",
  },
  {
    type: "appointment.confirm",
    entity: "appointment",
    target: "subject",
    title: "Confirm an appointment",
    description:
      "Records at the vendor that the visit is confirmed (say, the patient confirmed it on the phone to the front desk); Docplanner's confirmBooking (the other shipped connectors publish no confirm call and refuse it at once, `SY_COMMAND_UNSUPPORTED`). Refused at once when the hub already knows the appointment as cancelled; a vendor answer saying it is already confirmed counts as success (confirming twice leaves it confirmed). The vendor's notification of the confirmation arrives as `appointment.confirmed` with `data.causedBy`.",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.confirm.json",
  },
  {
    type: "appointment.mark_arrived",
    entity: "appointment",
    target: "subject",
    title: "Mark the patient arrived",
    description:
      "Records at the vendor that the patient came (Docplanner presence PRESENT, BookingBug check-in status `checked_in`, Cliniko `patient_arrived`; Clockwise.MD publishes no check-in call).",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.mark_arrived.json",
  },
  {
    type: "appointment.mark_no_show",
    entity: "appointment",
    target: "subject",
    title: "Mark a no-show",
    description:
      "Records at the vendor that the patient did not come (Docplanner DELETE presence, its markPatientAbsence; BookingBug check-in status `no_show`, Cliniko `did_not_arrive`, Calendly `POST /invitee_no_shows`).",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.mark_no_show.json",
  },
  {
    type: "appointment.clear_presence",
    entity: "appointment",
    target: "subject",
    title: "Clear presence",
    description:
      "Removes a recorded arrival or no-show at the vendor: Cliniko sets both presence flags back (docs/connectors/cliniko.md), its next poll telling `appointment.status_reverted` with `data.causedBy`; Calendly deletes the invitee's no-show (`DELETE /invitee_no_shows/{uuid}`, docs/connectors/calendly.md), its `invitee_no_show.deleted` webhook telling the same. The other shipped connectors refuse it at once, `SY_COMMAND_UNSUPPORTED` (Docplanner's presence calls mark present or absent, none clears a mark; JRNI documents setting a check-in status, not clearing one).",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.clear_presence.json",
  },
  {
    type: "appointment.update",
    entity: "appointment",
    target: "subject",
    title: "Update appointment fields",
    description:
      "Writes fields the vendor lets a partner change on an existing appointment (Clockwise.MD custom fields; BookingBug a private note and Cliniko the appointment's notes, `comment`). Each connector's page lists what it writes; a field it cannot write is refused at once (422 SY_COMMAND_UNSUPPORTED, naming the field) where the connector can tell when the command is sent, else the command fails permanently, naming it.",
    schemaId: "https://switchyard.dev/schemas/commands/appointment.update.json",
  },
  {
    type: "slot.block",
    entity: "slot",
    target: "instance",
    title: "Block calendar time",
    description:
      "Blocks a span of a practitioner's calendar at the vendor (a Docplanner break, a Cliniko unavailable block): nothing can be booked between `start` and `end` (a leave, a meeting). Names the connector instance (`instance`) instead of a subject: the block does not exist yet. The outcome (`command.succeeded`) carries the new block's hub id (`result.slotId`); the vendor's own notification of the block later arrives as `slot.blocked` for the same hub id, with `data.causedBy`. The block can be moved or removed through that hub id at once, without waiting for the notification (which may be lost): the hub holds its vendor id and place from this command.",
    schemaId: "https://switchyard.dev/schemas/commands/slot.block.json",
  },
  {
    type: "slot.move_block",
    entity: "slot",
    target: "subject",
    title: "Move a calendar block",
    description:
      "Moves a calendar block (`slot/<hub id>`: one `slot.blocked` announced, or one a `slot.block` made, at once, before or without the vendor's notification of it) to a new `start` and `end`; it keeps its hub id. Refused at once when the hub already knows the block as removed (`slot.unblocked`), or knows the slot as no calendar block (a Docplanner availability, `slot.changed`, `kind: availability`: 409 `SY_COMMAND_TARGET_STATE`, `details.kind`). The vendor's notification of the move arrives as `slot.block_moved`, with `data.causedBy`.",
    schemaId: "https://switchyard.dev/schemas/commands/slot.move_block.json",
  },
  {
    type: "slot.unblock",
    entity: "slot",
    target: "subject",
    title: "Remove a calendar block",
    description:
      "Removes a calendar block (`slot/<hub id>`, also one a `slot.block` made, at once, before or without the vendor's notification of it): its time can be booked again. Refused at once when the hub already knows the block as removed (`slot.unblocked`), or knows the slot as no calendar block (a Docplanner availability, `slot.changed`, `kind: availability`: 409 `SY_COMMAND_TARGET_STATE`, `details.kind`); a vendor answer saying the block is no longer there counts as success (removed by staff meanwhile, or a retried unblock after a crash). The vendor's notification of the removal arrives as `slot.unblocked`, with `data.causedBy`.",
    schemaId: "https://switchyard.dev/schemas/commands/slot.unblock.json",
  },
] as const satisfies readonly CommandTypeInfo[];
