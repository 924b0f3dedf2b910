/**
 * A vendor's date-time in RFC 3339, the form every event carries, or undefined when the value is not
 * a date-time. One reading for every connector:
 * - `T` or a space between date and time; seconds optional (`11:30` → `11:30:00`), fractions kept;
 * - the vendor's offset kept, written `±HH:MM` (`+0200`, `+02` → `+02:00`; `z` → `Z`);
 * - a value without an offset gets `missingOffset`: an offset (`+01:00`), or a function of the local
 *   time (`2026-03-10T11:30:00`) for a vendor that names a time zone; `Z` (UTC) when not given;
 * - anything else (not a string, another format, an impossible date) gives undefined, so the raw
 *   value stays only in the event's `vendor` part.
 *
 * @example
 * ```ts
 * toRfc3339('2026-03-10 11:30'); // '2026-03-10T11:30:00Z'
 * toRfc3339('2026-03-10T11:30:00+0100'); // '2026-03-10T11:30:00+01:00'
 * toRfc3339('2026-03-10 11:30:00', '+02:00'); // '2026-03-10T11:30:00+02:00'
 * toRfc3339('10/03/2026'); // undefined
 * ```
 */
export function toRfc3339(
  value: unknown,
  missingOffset?: string | ((localTime: string) => string),
): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = DATE_TIME.exec(value.trim());
  if (!match) return undefined;
  const [, date, hoursMinutes, seconds, zone] = match;
  const local = `${date}T${hoursMinutes}${seconds ?? ':00'}`;
  let offset: string;
  if (zone === undefined) {
    offset = (typeof missingOffset === 'function' ? missingOffset(local) : missingOffset) ?? 'Z';
  } else if (zone.toUpperCase() === 'Z') {
    offset = 'Z';
  } else {
    const digits = zone.replace(':', '');
    offset = `${digits.slice(0, 3)}:${digits.length > 3 ? digits.slice(3, 5) : '00'}`;
  }
  const text = `${local}${offset}`;
  return Number.isNaN(Date.parse(text)) ? undefined : text;
}

const DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
