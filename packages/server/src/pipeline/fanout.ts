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

/** Checks filter patterns; returns what is wrong with each bad one. */
export function invalidTypePatterns(patterns: readonly string[]): string[] {
  return patterns.filter((p) => !(p === '*' || /^[a-z_]+\.\*$/.test(p) || /^[a-z_]+\.[a-z_]+$/.test(p)));
}
