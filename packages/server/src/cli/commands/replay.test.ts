import { describe, expect, it } from 'vitest';
import { parseSince } from './replay.ts';

describe('replay --since', () => {
  it('takes a duration ago or an ISO date, and refuses anything else', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    expect(parseSince('2h', now).toISOString()).toBe('2026-03-01T10:00:00.000Z');
    expect(parseSince('2026-02-28T08:00:00Z', now).toISOString()).toBe('2026-02-28T08:00:00.000Z');
    expect(() => parseSince('yesterday', now)).toThrow(/--since must be/);
  });
});
