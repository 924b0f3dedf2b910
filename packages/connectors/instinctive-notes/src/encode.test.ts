import { readFileSync } from 'node:fs';
import { ConnectorError, type EventEnvelope, type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import { instinctiveNotesConnector } from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { auth: { secret: 'in-test-secret-0123456789abcdef' } };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

async function eventsOf(body: JsonObject, ctx = memoryNormalizeContext<Config>({ config })) {
  const [notification] = parse(inboundRequest({ body }), config);
  const result = await normalize(notification!, ctx);
  return result.events.map((draft, index) =>
    completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector: instinctiveNotesConnector,
      notification: notification!,
      index,
    }),
  );
}

function handMade(type: string, data: JsonObject): EventEnvelope {
  return {
    specversion: '1.0',
    id: 'evt-1',
    type,
    source: 'notes',
    subject: `document/${data.id as string}`,
    time: '2026-03-10T10:05:12-05:00',
    datacontenttype: 'application/json',
    data,
    connector: 'instinctive-notes',
    instance: 'notes',
    vendortype: 'soap_note.created',
  };
}

describe('encode', () => {
  it('re-creates the vendor webhook exactly from an event this connector made', async () => {
    for (const name of ['soap-note-created.json', 'soap-note-updated.json', 'soap-note-draft.json']) {
      const body = fixture(name);
      const [event] = await eventsOf(body);
      expect(encode(event!, config)).toEqual({
        route: 'default',
        headers: { 'content-type': 'application/json' },
        body,
      });
    }
  });

  it('round-trips: the encoded push normalizes to the same type and subject', async () => {
    // Each encoded before the next version is known: a note's older version is refused as late.
    const ctx = memoryNormalizeContext<Config>({ config });
    for (const file of ['soap-note-created.json', 'soap-note-updated.json']) {
      const [event] = await eventsOf(fixture(file), ctx);
      const [back] = await eventsOf(encode(event!, config).body as JsonObject, ctx);
      expect([back?.type, back?.subject], file).toEqual([event!.type, event!.subject]);
    }
  });

  it('builds a note from a hand-made event (no vendor record)', async () => {
    const event = handMade('document.created', {
      id: 'hub-1',
      vendorIds: [
        { system: 'instinctive-notes', value: '77', current: false },
        { system: 'instinctive-notes', value: '78', current: true },
      ],
      domain: 'clinical',
      docStatus: 'preliminary',
      title: 'Review',
      patient: { id: '50', externalRef: 'PMS-1' },
      author: { kind: 'practitioner', name: 'Dr. Sam Patel' },
      createdAt: '2026-03-10T10:00:00-05:00',
      updatedAt: '2026-03-10T10:05:00-05:00',
      encounterAt: '2026-03-10T09:30:00-05:00',
      content: { subjective: 'Itching', recommendations: 'Rest' },
    });
    expect(validateEvent(event)).toEqual({ valid: true });
    const encoded = encode(event, config);
    expect(encoded.body).toEqual({
      created_at: '2026-03-10T10:05:12-05:00',
      type: 'soap_note.created',
      data: {
        object: {
          subjective: 'Itching',
          recommendations: 'Rest',
          id: 78,
          client_id: 50,
          client_external_ref: 'PMS-1',
          created_by: 'Dr. Sam Patel',
          created_at: '2026-03-10T10:00:00-05:00',
          updated_at: '2026-03-10T10:05:00-05:00',
          seen_at: '2026-03-10T09:30:00-05:00',
          name: 'Review',
          state: 'draft',
        },
      },
    });
    const [back] = await eventsOf(encoded.body as JsonObject);
    expect(back?.data).toMatchObject({
      docStatus: 'preliminary',
      patient: { id: '50', externalRef: 'PMS-1' },
    });
  });

  it('refuses types Instinctive Notes cannot send', () => {
    const event = handMade('document.deleted', { id: 'hub-1', vendorIds: [], domain: 'clinical' });
    expect(() => encode(event, config)).toThrow(ConnectorError);
    expect(() => encode(event, config)).toThrow(/no webhook for document.deleted/);
  });
});
