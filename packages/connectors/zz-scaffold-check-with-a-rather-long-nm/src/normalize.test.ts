import { readFileSync } from 'node:fs';
import { type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import connector from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { apiKey: 'test-api-key-0123456789abcdef' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

describe('normalize', () => {
  it('maps booking.created to a valid appointment.created', async () => {
    const ctx = memoryNormalizeContext<Config>({ instanceId: 'main', config });
    const body = fixture('booking-created.json');
    const [notification] = parse(inboundRequest({ body }), config);
    const result = await normalize(notification!, ctx);
    const hubId = await ctx.aliases.hubId('appointment', 'b_1001');
    expect(result.events).toEqual([
      {
        type: 'appointment.created',
        subject: `appointment/${hubId}`,
        time: '2026-03-10T09:15:00+01:00',
        data: {
          id: hubId,
          vendorIds: [{ system: connector.name, instance: 'main', value: 'b_1001', current: true }],
          status: 'booked',
          start: '2026-03-10T11:30:00+01:00',
          end: '2026-03-10T12:00:00+01:00',
          patient: { name: 'Ada Lovelace' },
          vendor: body,
        },
      },
    ]);
    const event = completeEvent(result.events[0]!, { instanceId: 'main', connector, notification: notification!, index: 0 });
    expect(validateEvent(event)).toEqual({ valid: true });
  });

  it('stores unknown types as ignored', async () => {
    const ctx = memoryNormalizeContext<Config>({ config });
    const result = await normalize({ type: 'booking.archived', dedupeKey: 'evt_2', payload: {} }, ctx);
    expect(result).toEqual({ events: [], ignored: 'booking.archived has no normalized counterpart' });
  });
});
