/**
 * The normalized model as TypeScript types. Everything here is generated from the JSON Schemas in
 * `packages/core/schemas` (`pnpm generate`), except {@link NormalizedEvent}, which ties an envelope's
 * `type` to its `data`.
 */
import type { EventEnvelope } from './generated/envelope.ts';
import type { EventDataMap, NormalizedEventType } from './generated/events.ts';

export type * from './generated/commands.ts';
export { COMMAND_TYPES } from './generated/commands.ts';
export type {
  Actor,
  Address,
  Appointment,
  ApprovalRequest,
  Asset,
  Document,
  Location,
  Money,
  Patient,
  Process,
  Reference,
  Schedule,
  Slot,
  VendorId,
} from './generated/entities.ts';
export type { EventEnvelope } from './generated/envelope.ts';
export type * from './generated/events.ts';
export { EVENT_TYPES } from './generated/events.ts';

/**
 * A validated event whose `data` type follows from its `type`: a discriminated union over all types
 * by default, or one type's event when `T` is given.
 *
 * @example
 * ```ts
 * function onEvent(event: NormalizedEvent) {
 *   if (event.type === 'appointment.rescheduled') console.log(event.data.previous.start);
 * }
 * ```
 */
export type NormalizedEvent<T extends NormalizedEventType = NormalizedEventType> = {
  [K in T]: Omit<EventEnvelope, 'type' | 'data'> & { type: K; data: EventDataMap[K] };
}[T];
