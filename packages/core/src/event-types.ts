import { COMMAND_TYPES, type CommandType, type CommandTypeInfo } from './generated/commands.ts';
import { EVENT_TYPES, type EventTypeInfo, type NormalizedEventType } from './generated/events.ts';

const byType: ReadonlyMap<string, EventTypeInfo> = new Map(EVENT_TYPES.map((info) => [info.type, info]));

/**
 * What an event type means, which entity it carries and which vendor events produce it; undefined
 * for a type the core schemas do not define.
 *
 * @example
 * ```ts
 * eventTypeInfo('appointment.rescheduled')?.vendorEvents; // ['Docplanner booking-moved', ...]
 * ```
 */
export function eventTypeInfo(type: string): EventTypeInfo | undefined {
  return byType.get(type);
}

/**
 * The event types that carry a given entity, in catalog order (e.g. for subscription filters such as
 * `appointment.*`).
 *
 * @example
 * ```ts
 * eventTypesOf('slot'); // ['slot.blocked', 'slot.block_moved', 'slot.unblocked', 'slot.changed']
 * ```
 */
export function eventTypesOf(entity: EventTypeInfo['entity']): NormalizedEventType[] {
  return EVENT_TYPES.filter((info) => info.entity === entity).map((info) => info.type);
}

/**
 * True when an event type matches one subscription filter pattern: the exact type, a family
 * (`entity.*`, matched on the type's prefix) or `*`. The one in-memory form of the rule; the hub's
 * SQL form is `typeMatchesAny` (server events/store.ts).
 *
 * @example
 * ```ts
 * eventTypeMatches('appointment.*', 'appointment.created'); // true
 * eventTypeMatches('slot.*', 'appointment.created');        // false
 * ```
 */
export function eventTypeMatches(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === type) return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return false;
}

const commandsByType: ReadonlyMap<string, CommandTypeInfo> = new Map(
  COMMAND_TYPES.map((info) => [info.type, info]),
);

/**
 * What a command type does and how it names its target; undefined for a type the core schemas do
 * not define.
 *
 * @example
 * ```ts
 * commandTypeInfo('appointment.book')?.target; // 'instance'
 * ```
 */
export function commandTypeInfo(type: string): CommandTypeInfo | undefined {
  return commandsByType.get(type);
}

/** Every command type, in catalog order. */
export const commandTypes: readonly CommandType[] = COMMAND_TYPES.map((info) => info.type);
