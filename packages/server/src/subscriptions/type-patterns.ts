/**
 * Matching an event type against a subscription's type patterns (the syntax: EVENT_TYPE_PATTERN in
 * ./schema.ts; the SQL form of the same match: `typeMatchesAny` in events/store.ts).
 */
import { eventTypeMatches } from '@switchyard/core';

/**
 * True when an event type matches one subscription pattern: the exact type, `entity.*`, or `*`
 * (`eventTypeMatches` of @switchyard/core, where the rule lives so the config loader and the FHIR
 * subscription rule use it too).
 *
 * @example
 * ```ts
 * typeMatches('appointment.*', 'appointment.created'); // true
 * typeMatches('slot.*', 'appointment.created');        // false
 * ```
 */
export const typeMatches: (pattern: string, type: string) => boolean = eventTypeMatches;
