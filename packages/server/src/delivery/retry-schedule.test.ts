import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE_MS } from '../config/units.ts';
import { jittered, nextAttemptDelay, parseDuration, validateSchedule } from './retry-schedule.ts';

const fixed = (value: number) => () => value;

describe('DEFAULT_RETRY_SCHEDULE_MS', () => {
  it('is the documented 8 attempts and cannot be mutated', () => {
    expect(DEFAULT_RETRY_SCHEDULE_MS).toEqual([
      0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
    expect(Object.isFrozen(DEFAULT_RETRY_SCHEDULE_MS)).toBe(true);
  });
});

describe('nextAttemptDelay', () => {
  const schedule = DEFAULT_RETRY_SCHEDULE_MS;

  it('follows the schedule without jitter and ends after the last attempt', () => {
    const delays: Array<number | null> = [];
    for (let attempt = 1; attempt <= 8; attempt += 1)
      delays.push(nextAttemptDelay({ schedule, attempt, jitter: 0 }));
    expect(delays).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, null]);
    expect(nextAttemptDelay({ schedule, attempt: 9 })).toBeNull();
  });

  it('applies ±20% jitter at the extremes of the random draw', () => {
    expect(nextAttemptDelay({ schedule, attempt: 1, random: fixed(0) })).toBe(4_000);
    expect(nextAttemptDelay({ schedule, attempt: 1, random: fixed(0.5) })).toBe(5_000);
    expect(nextAttemptDelay({ schedule, attempt: 1, random: fixed(0.999999) })).toBe(6_000);
    expect(nextAttemptDelay({ schedule, attempt: 2, random: fixed(0), jitter: 0.5 })).toBe(150_000);
  });

  it('keeps every delay within jitter bounds (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const delay = nextAttemptDelay({ schedule, attempt, random: () => r })!;
          const base = schedule[attempt]!;
          return delay >= Math.floor(base * 0.8) && delay <= Math.ceil(base * 1.2);
        },
      ),
    );
  });

  it('honours Retry-After between the scheduled delay and the cap', () => {
    const opts = { schedule, random: fixed(0.5) };
    // longer than scheduled: waits as asked
    expect(nextAttemptDelay({ ...opts, attempt: 1, retryAfterMs: 60_000 })).toBe(60_000);
    // shorter than scheduled: never earlier than the schedule
    expect(nextAttemptDelay({ ...opts, attempt: 3, retryAfterMs: 1_000 })).toBe(1_800_000);
    // beyond the cap: capped
    expect(
      nextAttemptDelay({ ...opts, attempt: 1, retryAfterMs: 10_000_000, maxRetryAfterMs: 600_000 }),
    ).toBe(600_000);
    // default cap: the schedule's largest delay
    expect(nextAttemptDelay({ ...opts, attempt: 1, retryAfterMs: 99 * 36_000_000 })).toBe(36_000_000);
    // a cap under the scheduled delay does not shorten the schedule
    expect(nextAttemptDelay({ ...opts, attempt: 4, retryAfterMs: 10_000_000, maxRetryAfterMs: 1_000 })).toBe(
      7_200_000,
    );
    // never revives an exhausted schedule
    expect(nextAttemptDelay({ ...opts, attempt: 8, retryAfterMs: 1_000 })).toBeNull();
    // nonsense Retry-After is ignored
    expect(nextAttemptDelay({ ...opts, attempt: 1, retryAfterMs: Number.NaN })).toBe(5_000);
  });

  it('refuses bad attempts and jitter', () => {
    expect(() => nextAttemptDelay({ schedule, attempt: 0 })).toThrow(RangeError);
    expect(() => nextAttemptDelay({ schedule, attempt: 1.5 })).toThrow(RangeError);
    expect(() => nextAttemptDelay({ schedule, attempt: 1, jitter: 1 })).toThrow(RangeError);
    expect(() => nextAttemptDelay({ schedule, attempt: 1, jitter: -0.1 })).toThrow(RangeError);
  });
});

describe('jittered', () => {
  it('spreads a delay over [1 − jitter, 1 + jitter), keeps 0 at 0 and never goes negative', () => {
    expect(jittered(5_000, 0.2, () => 0)).toBe(4_000);
    expect(jittered(5_000, 0.2, () => 0.5)).toBe(5_000);
    expect(jittered(5_000, 0.2, () => 0.999_999)).toBe(6_000);
    expect(jittered(5_000, 0, () => 0.9)).toBe(5_000);
    expect(jittered(0, 0.5, () => 0)).toBe(0);
    expect(jittered(-10, 0.5, () => 1)).toBe(0);
    // Out-of-range draws are clamped, as a custom random might give them.
    expect(jittered(1_000, 0.5, () => 7)).toBe(1_500);
  });

  it('is the rule nextAttemptDelay applies', () => {
    const draws = [0, 0.25, 0.75];
    for (const d of draws)
      expect(nextAttemptDelay({ schedule: [0, 10_000], attempt: 1, random: () => d })).toBe(
        jittered(10_000, 0.2, () => d),
      );
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5h', 5_400_000],
    ['1h30m', 5_400_000],
    [' 10 s ', 10_000],
    ['5M', 300_000],
    [0, 0],
    [1234.4, 1234],
  ] as Array<[string | number, number]>)('%j is %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each(['5', '', 'soon', '5 minutes', '-5s', '5x', 'h', '1h-30m'])('refuses %j', (input) => {
    expect(() => parseDuration(input)).toThrow(
      expect.objectContaining({ code: 'SY_DELIVERY_DURATION_INVALID' }),
    );
  });

  it('says to add a unit to a bare number string, and refuses negative or infinite numbers', () => {
    expect(() => parseDuration('5')).toThrow(/give a unit/);
    expect(() => parseDuration(-1)).toThrow(/non-negative/);
    expect(() => parseDuration(Number.POSITIVE_INFINITY)).toThrow(/non-negative/);
  });
});

describe('validateSchedule', () => {
  it('normalizes mixed entries to milliseconds', () => {
    expect(validateSchedule([0, '5s', '5m', 1_800_000])).toEqual([0, 5_000, 300_000, 1_800_000]);
    expect(validateSchedule([...DEFAULT_RETRY_SCHEDULE_MS])).toEqual([...DEFAULT_RETRY_SCHEDULE_MS]);
  });

  it('names the offending entry', () => {
    let caught: unknown;
    try {
      validateSchedule(['0s', '5s', 'later']);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'SY_DELIVERY_SCHEDULE_INVALID', details: { index: 2 } });
    expect((caught as Error).message).toMatch(/entry 2/);
  });

  it.each([
    ['not a list', '5s', /list/],
    ['empty', [], /at least one/],
    ['too long', new Array(101).fill(0), /at most 100/],
    ['too long a delay', ['8d'], /7 day/],
    ['negative', [-1], /entry 0/],
  ])('refuses %s', (_label, input, message) => {
    expect(() => validateSchedule(input)).toThrow(message);
  });

  it('names a too-long entry as the file wrote it', () => {
    expect(() => validateSchedule(['1s', '8d'])).toThrow(
      'retry schedule entry 1: 8d is longer than the 7 day maximum (7d)',
    );
  });
});
