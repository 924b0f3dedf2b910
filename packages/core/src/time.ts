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
  // Date.parse rolls a day the month does not have over (2026-02-30 is 2 March) and takes 24:00:
  // check that the fields name a real date and time.
  const [year, month, day] = date!.split('-').map(Number) as [number, number, number];
  const [hours, minutes] = hoursMinutes!.split(':').map(Number) as [number, number];
  const fields = new Date(Date.UTC(year, month - 1, day, hours, minutes));
  if (fields.getUTCDate() !== day || fields.getUTCMonth() !== month - 1 || fields.getUTCHours() !== hours)
    return undefined;
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

/**
 * The UTC offset in minutes (east positive) the IANA `timeZone` has at the instant `at` (epoch ms),
 * or undefined when the zone is not one. A time the hub works out itself (an end from a start and
 * a length, a vendor's wall time) gets the offset of its own instant: across a DST change it is not
 * the start's.
 *
 * @example
 * ```ts
 * zoneOffsetMinutes(Date.parse('2026-11-01T06:00:00Z'), 'America/New_York'); // -300
 * zoneOffsetMinutes(0, 'Mars/Olympus'); // undefined
 * ```
 */
export function zoneOffsetMinutes(at: number, timeZone: string): number | undefined {
  const format = offsetFormat(timeZone);
  if (format === undefined) return undefined;
  const name = format.formatToParts(new Date(at)).find((p) => p.type === 'timeZoneName')?.value;
  // `GMT` alone is UTC itself.
  const m = /GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name ?? '');
  if (!m) return undefined;
  return m[1] === undefined ? 0 : (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/** One formatter per zone (null: not a zone): making one costs tens of microseconds, a call far less. */
const OFFSET_FORMATS = new Map<string, Intl.DateTimeFormat | null>();

function offsetFormat(timeZone: string): Intl.DateTimeFormat | undefined {
  let format = OFFSET_FORMATS.get(timeZone);
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    } catch {
      format = null;
    }
    // Zones are few (the vendors' clinics); bounded all the same against a vendor sending junk.
    if (OFFSET_FORMATS.size < 1000) OFFSET_FORMATS.set(timeZone, format);
  }
  return format ?? undefined;
}

/** An offset in minutes as RFC 3339 writes it: `Z` for none, else `±HH:MM` (`-300` → `-05:00`). */
export function writeOffset(minutes: number): string {
  if (minutes === 0) return 'Z';
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * RFC 3339 with the vendor's offset kept ({@link toRfc3339}). A time without an offset is read as
 * wall time in `timeZone` when the vendor's record names one (Clockwise.MD's appointment, a
 * BookingBug booking's `time_zone`), else as UTC, as is a `timeZone` that is not an IANA zone.
 *
 * @example
 * ```ts
 * toRfc3339InZone('2026-03-10 11:30:00', 'Europe/Paris'); // '2026-03-10T11:30:00+01:00'
 * ```
 */
export function toRfc3339InZone(value: unknown, timeZone?: string): string | undefined {
  return toRfc3339(value, timeZone === undefined ? undefined : (local) => offsetAt(local, timeZone));
}

/**
 * The UTC offset (`+01:00`) `timeZone` has at the wall-clock time `local`. Around a DST change, the
 * same in every zone: a repeated wall time is its first pass (the offset before the change), a
 * skipped one is read at the offset before the change too (an hour later on the clock after it).
 * Guessing from the offset at `local` read as UTC took the second pass and moved a skipped time
 * forward east of Greenwich, and the opposite west of it.
 */
function offsetAt(local: string, timeZone: string): string {
  const wall = Date.parse(`${local}Z`);
  const zoneOffset = (instant: number): number => zoneOffsetMinutes(instant, timeZone) ?? 0;
  // The zone's offsets a day either side: no zone changes twice within two days.
  const before = zoneOffset(wall - 86_400_000);
  const after = zoneOffset(wall + 86_400_000);
  const fits = (minutes: number) => zoneOffset(wall - minutes * 60_000) === minutes;
  return writeOffset(fits(before) || !fits(after) ? before : after);
}
