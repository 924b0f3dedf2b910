import { readFileSync } from 'node:fs';
import type { JsonObject } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import connector from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { signingKey: 'test-signing-secret-0123456789abcdef' };
const body = JSON.parse(
  readFileSync(new URL('../fixtures/invitee-created.json', import.meta.url), 'utf8'),
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

  it('gives back the reschedule and the cancellation of a rescheduled booking', async () => {
    const ctx = memoryNormalizeContext<Config>({ config });
    for (const file of [
      'invitee-created.json',
      'invitee-canceled-rescheduled.json',
      'invitee-created-rescheduled.json',
      'invitee-canceled.json',
    ]) {
      const sent = JSON.parse(
        readFileSync(new URL(`../fixtures/${file}`, import.meta.url), 'utf8'),
      ) as JsonObject;
      const [notification] = parse(inboundRequest({ body: sent }), config);
      const [draft] = (await normalize(notification!, ctx)).events;
      if (draft === undefined) continue; // the old invitee's cancellation is ignored
      const event = completeEvent(draft, {
        instanceId: ctx.instanceId,
        connector,
        notification: notification!,
        index: 0,
      });
      expect(encode(event, config).body, file).toEqual(sent);
    }
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
    expect(() => encode({ ...event, type: 'document.created' }, config)).toThrow(/no webhook/);
  });
});
