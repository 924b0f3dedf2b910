/**
 * Matching an event type against a subscription's type patterns (the syntax: EVENT_TYPE_PATTERN in
 * ./schema.ts; the SQL form of the same match: `typeMatchesAny` in storage/queries.ts).
 */

/**
 * True when an event type matches one subscription pattern: the exact type, `entity.*`, or `*`.
 *
 * @example
 * ```ts
 * typeMatches('appointment.*', 'appointment.created'); // true
 * typeMatches('slot.*', 'appointment.created');        // false
 * ```
 */
export function typeMatches(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === type) return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return false;
}
