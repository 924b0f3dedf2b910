import { readFileSync } from 'node:fs';
import type { ConnectorError, JsonObject } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { parse } from './parse.ts';

const config: Config = { signatureKey: 'test-signature-key-0123456789' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));

describe('parse', () => {
  it("keys Square's documented booking.updated on event_id, orders it by the booking id, dates it by created_at", () => {
    const [n] = parse(inboundRequest({ body: fixture('booking-updated-accepted.json') }), config);
    expect(n).toMatchObject({
      type: 'booking.updated',
      dedupeKey: 'd954ea4e-a393-52d4-bda6-bfd10cbd571f',
      orderingKey: 'i2id2g3enyspi7',
      occurredAt: '2020-12-08T20:05:00Z',
    });
  });

  it('orders by data.id without its :version when the booking object is missing', () => {
    const [n] = parse(
      inboundRequest({
        body: { event_id: 'e9', type: 'booking.updated', data: { type: 'booking', id: 'bk1:7' } },
      }),
      config,
    );
    expect(n?.orderingKey).toBe('bk1');
  });

  it('refuses a body without event_id or type (400)', () => {
    const kind = (body: JsonObject) => {
      try {
        parse(inboundRequest({ body }), config);
      } catch (error) {
        return (error as ConnectorError).kind;
      }
      return undefined;
    };
    expect(kind({ type: 'booking.created' })).toBe('bad_request');
    expect(kind({ event_id: 'e1' })).toBe('bad_request');
  });
});
