import type { ConnectorError } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { parse } from './parse.ts';

const config = { apiKey: 'test-api-key-0123456789abcdef' };

describe('parse', () => {
  it('keys a notification by its event id and orders it by booking', () => {
    const body = { id: 'evt_1', type: 'booking.created', occurred_at: '2026-03-10T09:15:00+01:00', booking: { id: 'b_1' } };
    expect(parse(inboundRequest({ body }), config)).toEqual([
      { type: 'booking.created', dedupeKey: 'evt_1', orderingKey: 'b_1', occurredAt: '2026-03-10T09:15:00+01:00', payload: body },
    ]);
  });

  it('refuses a body without id or type', () => {
    const kind = (body: Record<string, string>) => {
      try {
        parse(inboundRequest({ body }), config);
        return 'parsed';
      } catch (error) {
        return (error as ConnectorError).kind;
      }
    };
    expect(kind({ type: 'booking.created' })).toBe('bad_request');
    expect(kind({ id: 'evt_1' })).toBe('bad_request');
  });
});
