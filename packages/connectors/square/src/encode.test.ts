import { readFileSync } from 'node:fs';
import type { JsonObject } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import connector from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { signatureKey: 'test-signature-key-0123456789' };
const body = JSON.parse(
  readFileSync(new URL('../fixtures/booking-created.json', import.meta.url), 'utf8'),
) as JsonObject;

describe('encode', () => {
  it('gives back the push an event came from', async () => {
    const ctx = memoryNormalizeContext<Config>({ config });
    const [notification] = parse(inboundRequest({ body }), config);
    const [draft] = (await normalize(notification!, ctx)).events;
    const event = completeEvent(draft!, {
      instanceId: ctx.instanceId,
      connector,
      notification: notification!,
      index: 0,
    });
    expect(encode(event, config)).toEqual({
      route: 'default',
      headers: { 'content-type': 'application/json' },
      body,
    });
  });

  it('refuses types the vendor cannot send', async () => {
    const ctx = memoryNormalizeContext<Config>({ config });
    const [notification] = parse(inboundRequest({ body }), config);
    const [draft] = (await normalize(notification!, ctx)).events;
    const event = completeEvent(draft!, {
      instanceId: ctx.instanceId,
      connector,
      notification: notification!,
      index: 0,
    });
    // A type no booking vendor pushes: the appointment types are the ones you add (cancelled first).
    expect(() => encode({ ...event, type: 'document.created' }, config)).toThrow(/no notification/);
  });
});
