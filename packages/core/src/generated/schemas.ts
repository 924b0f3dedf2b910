/* Generated from packages/core/schemas by pnpm generate. Do not edit. */

import type { CommandType } from "./commands.ts";
import type { NormalizedEventType } from "./events.ts";
import commonSchema from "../../schemas/common.schema.json" with { type: "json" };
import envelopeSchema from "../../schemas/envelope.schema.json" with { type: "json" };
import appointmentEntitySchema from "../../schemas/entities/appointment.schema.json" with { type: "json" };
import approvalRequestEntitySchema from "../../schemas/entities/approval-request.schema.json" with { type: "json" };
import assetEntitySchema from "../../schemas/entities/asset.schema.json" with { type: "json" };
import documentEntitySchema from "../../schemas/entities/document.schema.json" with { type: "json" };
import processEntitySchema from "../../schemas/entities/process.schema.json" with { type: "json" };
import scheduleEntitySchema from "../../schemas/entities/schedule.schema.json" with { type: "json" };
import slotEntitySchema from "../../schemas/entities/slot.schema.json" with { type: "json" };
import appointmentBookingRequestedEventSchema from "../../schemas/events/appointment.booking_requested.schema.json" with { type: "json" };
import appointmentRescheduleRequestedEventSchema from "../../schemas/events/appointment.reschedule_requested.schema.json" with { type: "json" };
import appointmentCreatedEventSchema from "../../schemas/events/appointment.created.schema.json" with { type: "json" };
import appointmentConfirmedEventSchema from "../../schemas/events/appointment.confirmed.schema.json" with { type: "json" };
import appointmentRescheduledEventSchema from "../../schemas/events/appointment.rescheduled.schema.json" with { type: "json" };
import appointmentUpdatedEventSchema from "../../schemas/events/appointment.updated.schema.json" with { type: "json" };
import appointmentCancelledEventSchema from "../../schemas/events/appointment.cancelled.schema.json" with { type: "json" };
import appointmentRestoredEventSchema from "../../schemas/events/appointment.restored.schema.json" with { type: "json" };
import appointmentArrivedEventSchema from "../../schemas/events/appointment.arrived.schema.json" with { type: "json" };
import appointmentCheckedInEventSchema from "../../schemas/events/appointment.checked_in.schema.json" with { type: "json" };
import appointmentInProgressEventSchema from "../../schemas/events/appointment.in_progress.schema.json" with { type: "json" };
import appointmentCompletedEventSchema from "../../schemas/events/appointment.completed.schema.json" with { type: "json" };
import appointmentNoShowEventSchema from "../../schemas/events/appointment.no_show.schema.json" with { type: "json" };
import appointmentStatusRevertedEventSchema from "../../schemas/events/appointment.status_reverted.schema.json" with { type: "json" };
import slotBlockedEventSchema from "../../schemas/events/slot.blocked.schema.json" with { type: "json" };
import slotBlockMovedEventSchema from "../../schemas/events/slot.block_moved.schema.json" with { type: "json" };
import slotUnblockedEventSchema from "../../schemas/events/slot.unblocked.schema.json" with { type: "json" };
import slotChangedEventSchema from "../../schemas/events/slot.changed.schema.json" with { type: "json" };
import scheduleUpdatedEventSchema from "../../schemas/events/schedule.updated.schema.json" with { type: "json" };
import scheduleActivatedEventSchema from "../../schemas/events/schedule.activated.schema.json" with { type: "json" };
import scheduleDeactivatedEventSchema from "../../schemas/events/schedule.deactivated.schema.json" with { type: "json" };
import documentCreatedEventSchema from "../../schemas/events/document.created.schema.json" with { type: "json" };
import documentUpdatedEventSchema from "../../schemas/events/document.updated.schema.json" with { type: "json" };
import documentDeletedEventSchema from "../../schemas/events/document.deleted.schema.json" with { type: "json" };
import assetCreatedEventSchema from "../../schemas/events/asset.created.schema.json" with { type: "json" };
import assetUpdatedEventSchema from "../../schemas/events/asset.updated.schema.json" with { type: "json" };
import assetDeletedEventSchema from "../../schemas/events/asset.deleted.schema.json" with { type: "json" };
import processCompletedEventSchema from "../../schemas/events/process.completed.schema.json" with { type: "json" };
import commandSucceededEventSchema from "../../schemas/events/command.succeeded.schema.json" with { type: "json" };
import commandFailedEventSchema from "../../schemas/events/command.failed.schema.json" with { type: "json" };
import hubTestEventSchema from "../../schemas/events/hub.test.schema.json" with { type: "json" };
import appointmentBookCommandSchema from "../../schemas/commands/appointment.book.schema.json" with { type: "json" };
import appointmentCancelCommandSchema from "../../schemas/commands/appointment.cancel.schema.json" with { type: "json" };
import appointmentRescheduleCommandSchema from "../../schemas/commands/appointment.reschedule.schema.json" with { type: "json" };
import appointmentConfirmCommandSchema from "../../schemas/commands/appointment.confirm.schema.json" with { type: "json" };
import appointmentMarkArrivedCommandSchema from "../../schemas/commands/appointment.mark_arrived.schema.json" with { type: "json" };
import appointmentMarkNoShowCommandSchema from "../../schemas/commands/appointment.mark_no_show.schema.json" with { type: "json" };
import appointmentClearPresenceCommandSchema from "../../schemas/commands/appointment.clear_presence.schema.json" with { type: "json" };
import appointmentUpdateCommandSchema from "../../schemas/commands/appointment.update.schema.json" with { type: "json" };
import slotBlockCommandSchema from "../../schemas/commands/slot.block.schema.json" with { type: "json" };
import slotMoveBlockCommandSchema from "../../schemas/commands/slot.move_block.schema.json" with { type: "json" };
import slotUnblockCommandSchema from "../../schemas/commands/slot.unblock.schema.json" with { type: "json" };

/** Every core schema (draft 2020-12), each with its `$id`: common, envelope, entities, events, commands. */
export const CORE_SCHEMAS: readonly { readonly $id: string }[] = [
  commonSchema,
  envelopeSchema,
  appointmentEntitySchema,
  approvalRequestEntitySchema,
  assetEntitySchema,
  documentEntitySchema,
  processEntitySchema,
  scheduleEntitySchema,
  slotEntitySchema,
  appointmentBookingRequestedEventSchema,
  appointmentRescheduleRequestedEventSchema,
  appointmentCreatedEventSchema,
  appointmentConfirmedEventSchema,
  appointmentRescheduledEventSchema,
  appointmentUpdatedEventSchema,
  appointmentCancelledEventSchema,
  appointmentRestoredEventSchema,
  appointmentArrivedEventSchema,
  appointmentCheckedInEventSchema,
  appointmentInProgressEventSchema,
  appointmentCompletedEventSchema,
  appointmentNoShowEventSchema,
  appointmentStatusRevertedEventSchema,
  slotBlockedEventSchema,
  slotBlockMovedEventSchema,
  slotUnblockedEventSchema,
  slotChangedEventSchema,
  scheduleUpdatedEventSchema,
  scheduleActivatedEventSchema,
  scheduleDeactivatedEventSchema,
  documentCreatedEventSchema,
  documentUpdatedEventSchema,
  documentDeletedEventSchema,
  assetCreatedEventSchema,
  assetUpdatedEventSchema,
  assetDeletedEventSchema,
  processCompletedEventSchema,
  commandSucceededEventSchema,
  commandFailedEventSchema,
  hubTestEventSchema,
  appointmentBookCommandSchema,
  appointmentCancelCommandSchema,
  appointmentRescheduleCommandSchema,
  appointmentConfirmCommandSchema,
  appointmentMarkArrivedCommandSchema,
  appointmentMarkNoShowCommandSchema,
  appointmentClearPresenceCommandSchema,
  appointmentUpdateCommandSchema,
  slotBlockCommandSchema,
  slotMoveBlockCommandSchema,
  slotUnblockCommandSchema,
];

/** The `$id` of the envelope schema. */
export const ENVELOPE_SCHEMA_ID = "https://switchyard.dev/schemas/envelope.json";

/** The `$id` of the shared definitions. */
export const COMMON_SCHEMA_ID = "https://switchyard.dev/schemas/common.json";

/** The `$id` of each entity schema. */
export const ENTITY_SCHEMA_IDS = {
  appointment: "https://switchyard.dev/schemas/entities/appointment.json",
  approval_request: "https://switchyard.dev/schemas/entities/approval-request.json",
  asset: "https://switchyard.dev/schemas/entities/asset.json",
  document: "https://switchyard.dev/schemas/entities/document.json",
  process: "https://switchyard.dev/schemas/entities/process.json",
  schedule: "https://switchyard.dev/schemas/entities/schedule.json",
  slot: "https://switchyard.dev/schemas/entities/slot.json",
} as const;

/** The `$id` of each event type's data schema. */
export const EVENT_SCHEMA_IDS: { readonly [T in NormalizedEventType]: string } = {
  "appointment.booking_requested": "https://switchyard.dev/schemas/events/appointment.booking_requested.json",
  "appointment.reschedule_requested": "https://switchyard.dev/schemas/events/appointment.reschedule_requested.json",
  "appointment.created": "https://switchyard.dev/schemas/events/appointment.created.json",
  "appointment.confirmed": "https://switchyard.dev/schemas/events/appointment.confirmed.json",
  "appointment.rescheduled": "https://switchyard.dev/schemas/events/appointment.rescheduled.json",
  "appointment.updated": "https://switchyard.dev/schemas/events/appointment.updated.json",
  "appointment.cancelled": "https://switchyard.dev/schemas/events/appointment.cancelled.json",
  "appointment.restored": "https://switchyard.dev/schemas/events/appointment.restored.json",
  "appointment.arrived": "https://switchyard.dev/schemas/events/appointment.arrived.json",
  "appointment.checked_in": "https://switchyard.dev/schemas/events/appointment.checked_in.json",
  "appointment.in_progress": "https://switchyard.dev/schemas/events/appointment.in_progress.json",
  "appointment.completed": "https://switchyard.dev/schemas/events/appointment.completed.json",
  "appointment.no_show": "https://switchyard.dev/schemas/events/appointment.no_show.json",
  "appointment.status_reverted": "https://switchyard.dev/schemas/events/appointment.status_reverted.json",
  "slot.blocked": "https://switchyard.dev/schemas/events/slot.blocked.json",
  "slot.block_moved": "https://switchyard.dev/schemas/events/slot.block_moved.json",
  "slot.unblocked": "https://switchyard.dev/schemas/events/slot.unblocked.json",
  "slot.changed": "https://switchyard.dev/schemas/events/slot.changed.json",
  "schedule.updated": "https://switchyard.dev/schemas/events/schedule.updated.json",
  "schedule.activated": "https://switchyard.dev/schemas/events/schedule.activated.json",
  "schedule.deactivated": "https://switchyard.dev/schemas/events/schedule.deactivated.json",
  "document.created": "https://switchyard.dev/schemas/events/document.created.json",
  "document.updated": "https://switchyard.dev/schemas/events/document.updated.json",
  "document.deleted": "https://switchyard.dev/schemas/events/document.deleted.json",
  "asset.created": "https://switchyard.dev/schemas/events/asset.created.json",
  "asset.updated": "https://switchyard.dev/schemas/events/asset.updated.json",
  "asset.deleted": "https://switchyard.dev/schemas/events/asset.deleted.json",
  "process.completed": "https://switchyard.dev/schemas/events/process.completed.json",
  "command.succeeded": "https://switchyard.dev/schemas/events/command.succeeded.json",
  "command.failed": "https://switchyard.dev/schemas/events/command.failed.json",
  "hub.test": "https://switchyard.dev/schemas/events/hub.test.json",
};

/** The `$id` of each command type's data schema. */
export const COMMAND_SCHEMA_IDS: { readonly [T in CommandType]: string } = {
  "appointment.book": "https://switchyard.dev/schemas/commands/appointment.book.json",
  "appointment.cancel": "https://switchyard.dev/schemas/commands/appointment.cancel.json",
  "appointment.reschedule": "https://switchyard.dev/schemas/commands/appointment.reschedule.json",
  "appointment.confirm": "https://switchyard.dev/schemas/commands/appointment.confirm.json",
  "appointment.mark_arrived": "https://switchyard.dev/schemas/commands/appointment.mark_arrived.json",
  "appointment.mark_no_show": "https://switchyard.dev/schemas/commands/appointment.mark_no_show.json",
  "appointment.clear_presence": "https://switchyard.dev/schemas/commands/appointment.clear_presence.json",
  "appointment.update": "https://switchyard.dev/schemas/commands/appointment.update.json",
  "slot.block": "https://switchyard.dev/schemas/commands/slot.block.json",
  "slot.move_block": "https://switchyard.dev/schemas/commands/slot.move_block.json",
  "slot.unblock": "https://switchyard.dev/schemas/commands/slot.unblock.json",
};
