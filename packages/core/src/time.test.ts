import { describe, expect, it } from 'vitest';
import { toRfc3339, writeOffset, zoneOffsetMinutes } from './time.ts';

// The connectors' own tests keep their vendors' cases; these pin the shared reading.
describe('toRfc3339', () => {
  it('keeps RFC 3339 values, offsets and fractions as they are', () => {
    expect(toRfc3339('2026-03-10T11:30:00+01:00')).toBe('2026-03-10T11:30:00+01:00');
    expect(toRfc3339('2026-03-10T11:30:00.250Z')).toBe('2026-03-10T11:30:00.250Z');
    expect(toRfc3339('2026-03-10T11:30:00z')).toBe('2026-03-10T11:30:00Z');
  });

  it('completes seconds, the T and the colon of the offset', () => {
    expect(toRfc3339(' 2026-03-10 11:30 ')).toBe('2026-03-10T11:30:00Z');
    expect(toRfc3339('2026-03-10T11:30:00+0530')).toBe('2026-03-10T11:30:00+05:30');
    expect(toRfc3339('2026-03-10T11:30-05')).toBe('2026-03-10T11:30:00-05:00');
    expect(toRfc3339('2026-03-10 11:30:00 +0100')).toBe('2026-03-10T11:30:00+01:00');
  });

  it('gives a value without an offset the offset asked for, else UTC', () => {
    expect(toRfc3339('2026-03-10 11:30:00')).toBe('2026-03-10T11:30:00Z');
    expect(toRfc3339('2026-03-10 11:30:00', '+02:00')).toBe('2026-03-10T11:30:00+02:00');
    expect(
      toRfc3339('2026-03-10 11:30:00', (local) => (local === '2026-03-10T11:30:00' ? '-04:00' : 'x')),
    ).toBe('2026-03-10T11:30:00-04:00');
    // An offset in the value wins over the one asked for.
    expect(toRfc3339('2026-03-10T11:30:00Z', '+02:00')).toBe('2026-03-10T11:30:00Z');
  });

  it('gives undefined for anything that is not a date-time', () => {
    for (const value of [
      'tomorrow',
      '10/03/2026',
      '2026-13-45T99:00:00Z',
      'null',
      '',
      null,
      undefined,
      1700000000,
    ]) {
      expect(toRfc3339(value), String(value)).toBeUndefined();
    }
  });

  it('gives undefined for a day the month does not have, which JavaScript would roll over', () => {
    // Date.parse takes 29 February of a common year, 30 February and 31 April (as 1 March, …):
    // such a start passed on failed the event's date-time check (SY_EVENT_INVALID) instead of
    // staying only in the vendor part, as this function says.
    for (const value of [
      '2026-02-29T10:00:00Z',
      '2026-02-30 10:00',
      '2026-04-31T10:00:00+02:00',
      '2026-03-10T24:00:00Z',
    ]) {
      expect(toRfc3339(value), value).toBeUndefined();
    }
    expect(toRfc3339('2028-02-29T10:00:00.5+01:00')).toBe('2028-02-29T10:00:00.5+01:00');
    expect(toRfc3339('2026-03-31T23:59:59Z')).toBe('2026-03-31T23:59:59Z');
  });
});

describe('zoneOffsetMinutes', () => {
  it('gives the offset of the instant, on either side of a DST change, and undefined for no zone', () => {
    expect(zoneOffsetMinutes(Date.parse('2026-11-01T05:59:00Z'), 'America/New_York')).toBe(-240);
    expect(zoneOffsetMinutes(Date.parse('2026-11-01T06:00:00Z'), 'America/New_York')).toBe(-300);
    expect(zoneOffsetMinutes(Date.parse('2026-03-29T01:00:00Z'), 'Europe/Warsaw')).toBe(120);
    expect(zoneOffsetMinutes(0, 'UTC')).toBe(0);
    expect(zoneOffsetMinutes(0, 'Mars/Olympus')).toBeUndefined();
    expect([writeOffset(0), writeOffset(-300), writeOffset(330)]).toEqual(['Z', '-05:00', '+05:30']);
  });
});
