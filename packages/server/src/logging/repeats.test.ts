import { describe, expect, it } from 'vitest';
import { RepeatedWarning, suppressedNote } from './repeats.ts';

describe('RepeatedWarning', () => {
  it('says the first occurrence per key, then one a minute with how many were left unsaid', () => {
    let now = 0;
    const warning = new RepeatedWarning(60_000, () => now);
    expect(warning.take('a')).toBe(0);
    expect(warning.take('b')).toBe(0);
    now = 10_000;
    expect(warning.take('a')).toBeUndefined();
    now = 59_999;
    expect(warning.take('a')).toBeUndefined();
    now = 60_000;
    expect(warning.take('a')).toBe(2);
    expect(warning.take('a')).toBeUndefined();
    now = 200_000;
    expect(warning.take('a')).toBe(1);
    expect(warning.take('b')).toBe(0);
  });

  it('notes the count in the message', () => {
    expect(suppressedNote(0)).toBe(' (said at most once a minute)');
    expect(suppressedNote(16)).toBe(' (16 more since the last warning, at debug; at most one a minute)');
  });
});
