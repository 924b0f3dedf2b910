import { readFileSync } from 'node:fs';
import { ConnectorError, type EventEnvelope, type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import { quableConnector } from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { authorization: 'Bearer qb-test-0123456789abcdef' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

async function eventsOf(body: JsonObject, ctx = memoryNormalizeContext<Config>({ config })) {
  const [notification] = parse(inboundRequest({ body }), config);
  const result = await normalize(notification!, ctx);
  return result.events.map((draft, index) =>
    completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector: quableConnector,
      notification: notification!,
      index,
    }),
  );
}

function handMade(type: string, data: JsonObject): EventEnvelope {
  return {
    specversion: '1.0',
    id: 'evt-42',
    type,
    source: 'catalog',
    subject: 'x/1',
    time: '2026-03-12T11:00:00+01:00',
    datacontenttype: 'application/json',
    data,
    connector: 'quable',
    instance: 'catalog',
    vendortype: 'x',
  };
}

describe('encode', () => {
  it('gives back the very notification an event came from', async () => {
    for (const name of ['doc-example-document-update.json', 'media-delete.json', 'export-finish.json']) {
      const body = fixture(name);
      const [event] = await eventsOf(body);
      expect(encode(event!, config)).toEqual({
        route: 'default',
        headers: { 'content-type': 'application/json' },
        body,
      });
    }
  });

  it('builds a notification from a hand-made asset event, with a stable uuid per event id', async () => {
    const event = handMade('asset.created', {
      id: 'hub-9',
      vendorIds: [{ system: 'quable', value: 'IMG-1', current: true }],
      code: 'IMG-1',
      author: { kind: 'staff', name: 'julie.martin' },
      apiUrl: 'https://acme.quable.com/api/assets/IMG-1',
    });
    expect(validateEvent({ ...event, subject: 'asset/hub-9' })).toEqual({ valid: true });
    const body = encode(event, config).body as JsonObject;
    expect(body).toMatchObject({
      code: 'media.create',
      created_at: '2026-03-12T11:00:00+01:00',
      created_by: 'julie.martin',
      resource: {
        code: 'IMG-1',
        type: 'asset',
        links: [{ rel: 'self', href: 'https://acme.quable.com/api/assets/IMG-1' }],
      },
    });
    expect(body.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((encode(event, config).body as JsonObject).uuid).toBe(body.uuid);
    expect((encode({ ...event, id: 'evt-43' }, config).body as JsonObject).uuid).not.toBe(body.uuid);
    const [back] = await eventsOf(body);
    expect(back).toMatchObject({ type: 'asset.created', data: { code: 'IMG-1' } });
  });

  it('encodes a hand-made process.completed as <kind>.finish', async () => {
    const event = handMade('process.completed', { id: 'imp-1', kind: 'import', correlationId: 'corr-1' });
    const body = encode(event, config).body as JsonObject;
    expect(body).toMatchObject({
      code: 'import.finish',
      process: { type: 'import', id: 'imp-1', correlationId: 'corr-1' },
    });
    const [back] = await eventsOf(body);
    expect(back?.data).toMatchObject({ id: 'imp-1', kind: 'import', correlationId: 'corr-1' });
  });

  it('refuses what Quable cannot send', () => {
    expect(() => encode(handMade('appointment.created', { id: '1' }), config)).toThrow(ConnectorError);
    expect(() => encode(handMade('process.completed', { id: 'p', kind: 'sync' }), config)).toThrow(
      /process kind "sync"/,
    );
    expect(() =>
      encode(handMade('document.updated', { id: 'h', vendorIds: [], domain: 'catalog' }), config),
    ).toThrow(/no code/);
  });
});
