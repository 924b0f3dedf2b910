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

/** Checks filter patterns; returns what is wrong with each bad one. */
export function invalidTypePatterns(patterns: readonly string[]): string[] {
  return patterns.filter((p) => !(p === '*' || /^[a-z_]+\.\*$/.test(p) || /^[a-z_]+\.[a-z_]+$/.test(p)));
}
