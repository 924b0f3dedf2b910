import { readFileSync } from 'node:fs';
import { type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { instinctiveNotesConnector } from './index.ts';
import { eventMap, normalize } from './normalize.ts';
import { parse } from './parse.ts';

const SECRET = 'in-test-secret-0123456789abcdef';
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

function contextFor(config: Config = { auth: { secret: SECRET } }) {
  return memoryNormalizeContext<Config>({ instanceId: 'notes', config });
}

/** Parses a body and normalizes it in `ctx`; returns the result and the completed, validated events. */
async function run(body: JsonObject, ctx = contextFor()) {
  const [notification] = parse(inboundRequest({ body }), ctx.config);
  const result = await normalize(notification!, ctx);
  const events = result.events.map((draft, index) =>
    completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector: instinctiveNotesConnector,
      notification: notification!,
      index,
    }),
  );
  for (const event of events) expect(validateEvent(event)).toEqual({ valid: true });
  return { result, events, data: events[0]?.data as JsonObject | undefined };
}

/** The same note re-sent by "Send test": same record, new envelope time. */
function resent(body: JsonObject, createdAt: string): JsonObject {
  return { ...structuredClone(body), created_at: createdAt };
}

describe('normalize', () => {
  it('maps the vendor sample to a clinical document.created shaped after DocumentReference', async () => {
    const ctx = contextFor();
    const body = fixture('soap-note-created.json');
    const { events, data } = await run(body, ctx);
    const hubId = await ctx.aliases.hubId('document', '10');
    expect(events.map((e) => [e.type, e.subject, e.time])).toEqual([
      ['document.created', `document/${hubId}`, '2018-03-26T14:20:00Z'],
    ]);
    const note = (body.data as JsonObject).object as JsonObject;
    expect(data).toEqual({
      id: hubId,
      vendorIds: [{ system: 'instinctive-notes', instance: 'notes', value: '10', current: true }],
      domain: 'clinical',
      status: 'current',
      docStatus: 'final',
      documentType: 'soap-note',
      title: 'Standard Treatment',
      patient: { id: '50', externalRef: '123456' },
      author: { kind: 'practitioner', name: 'Simon Jones' },
      createdAt: '2018-03-26T14:18:00Z',
      updatedAt: '2018-03-26T14:18:00Z',
      encounterAt: '2018-03-26T14:15:00Z',
      content: {
        exercise_prescriptions: note.exercise_prescriptions,
        product_prescriptions: note.product_prescriptions,
        recommendations: 'Get more sleep, Elevate injury, Weight bearing exercise',
      },
      vendor: body,
    });
  });

  it('keeps SOAP sections and unknown fields in content', async () => {
    const body = fixture('soap-note-created.json');
    const note = (body.data as JsonObject).object as JsonObject;
    note.subjective = 'Sore hip after running';
    note.plan = { next_visit_weeks: 2 };
    const { data } = await run(body);
    expect(data?.content).toMatchObject({
      subjective: 'Sore hip after running',
      plan: { next_visit_weeks: 2 },
    });
  });

  it('maps a draft to docStatus preliminary', async () => {
    const { events, data } = await run(fixture('soap-note-draft.json'));
    expect(events[0]?.type).toBe('document.created');
    expect(data).toMatchObject({
      docStatus: 'preliminary',
      title: 'Initial Assessment',
      patient: { id: '51' },
    });
  });

  it('omits absent parts: no exercise prescriptions, empty external ref', async () => {
    const { data } = await run(fixture('soap-note-without-exercises.json'));
    expect(data?.content).not.toHaveProperty('exercise_prescriptions');
    expect(data?.patient).toEqual({ id: '52' });
  });

  it('marks an update of a note already announced as final as amended, and keeps one hub id', async () => {
    const ctx = contextFor();
    const first = await run(fixture('soap-note-created.json'), ctx);
    const second = await run(fixture('soap-note-updated.json'), ctx);
    expect(second.events[0]?.type).toBe('document.updated');
    expect(second.events[0]?.subject).toBe(first.events[0]?.subject);
    expect(second.data).toMatchObject({ docStatus: 'amended', updatedAt: '2018-03-27T09:05:00Z' });
    expect(second.data).not.toHaveProperty('test');
  });

  it('keeps docStatus final for an update of a note the hub had not seen, or one that was a draft', async () => {
    expect((await run(fixture('soap-note-updated.json'))).data?.docStatus).toBe('final');
    const ctx = contextFor();
    const draft = fixture('soap-note-draft.json');
    await run(draft, ctx);
    const finalised = structuredClone(draft);
    finalised.type = 'soap_note.updated';
    finalised.created_at = '2018-03-28T10:20:05Z';
    Object.assign((finalised.data as JsonObject).object as JsonObject, {
      state: 'final',
      updated_at: '2018-03-28T10:20:00Z',
    });
    expect((await run(finalised, ctx)).data?.docStatus).toBe('final');
  });

  it('stores a late redelivery of an older version as ignored, before writing anything', async () => {
    // The vendor retries for hours: the note's creation (version 14:18) and an update (09:05 next
    // day, then 10:00) delivered after the 10:00 update. Announced, each rolled the note back
    // downstream and in the hub's current state (the late update passed for a "Send test").
    const ctx = contextFor();
    const updated = fixture('soap-note-updated.json');
    const latest = structuredClone(updated);
    latest.created_at = '2018-03-27T10:00:30Z';
    ((latest.data as JsonObject).object as JsonObject).updated_at = '2018-03-27T10:00:00Z';
    expect((await run(latest, ctx)).events.map((e) => e.type)).toEqual(['document.updated']);
    const known = await ctx.state.get('note/10');
    for (const late of [fixture('soap-note-created.json'), updated]) {
      const { result } = await run(late, ctx);
      expect(result.events).toEqual([]);
      expect(result.ignored).toMatch(
        /^Instinctive Notes soap_note\.(created|updated) of note 10 version 2018-03-2\dT[\d:]+Z arrived after version 2018-03-27T10:00:00Z: a late redelivery/,
      );
    }
    expect(await ctx.state.get('note/10')).toEqual(known);
    // The same version again is not late (a "Send test", marked as before).
    expect((await run(resent(latest, '2018-03-27T11:00:00Z'), ctx)).data?.test).toBe(true);
  });

  it('ignores unknown types with a reason', async () => {
    const { result } = await run(fixture('invoice-created-unknown.json'));
    expect(result).toEqual({
      events: [],
      ignored: expect.stringContaining('invoice.created has no normalized counterpart'),
    });
  });
});

describe('"Send test" deliveries', () => {
  it('marks a re-sent creation of an announced note as a test, same subject', async () => {
    const ctx = contextFor();
    const original = await run(fixture('soap-note-created.json'), ctx);
    const test = await run(resent(fixture('soap-note-created.json'), '2018-03-26T14:30:00Z'), ctx);
    expect(test.events[0]?.type).toBe('document.created');
    expect(test.events[0]?.subject).toBe(original.events[0]?.subject);
    expect(test.data?.test).toBe(true);
    expect(original.data).not.toHaveProperty('test');
  });

  it('marks a re-sent update of an announced version, but not a newer update', async () => {
    const ctx = contextFor();
    const updated = fixture('soap-note-updated.json');
    await run(updated, ctx);
    expect((await run(resent(updated, '2018-03-27T09:06:00Z'), ctx)).data?.test).toBe(true);
    const newer = resent(updated, '2018-03-27T10:00:30Z');
    ((newer.data as JsonObject).object as JsonObject).updated_at = '2018-03-27T10:00:00Z';
    expect((await run(newer, ctx)).data).not.toHaveProperty('test');
  });

  it('does not take a vendor redelivery (same envelope time) for a test', async () => {
    const ctx = contextFor();
    await run(fixture('soap-note-created.json'), ctx);
    expect((await run(fixture('soap-note-created.json'), ctx)).data).not.toHaveProperty('test');
  });

  it('marks a note whose envelope is much newer than its last save (the hub never saw it)', async () => {
    const { data } = await run(fixture('send-test-soap-note-created.json'));
    expect(data?.test).toBe(true);
  });

  it('honours staleAfterSeconds (0 turns the age check off)', async () => {
    const body = fixture('send-test-soap-note-created.json');
    const off = contextFor({ auth: { secret: SECRET }, testDeliveries: { staleAfterSeconds: 0 } });
    expect((await run(body, off)).data).not.toHaveProperty('test');
    // The sample's own envelope is 120 s after the save.
    const strict = contextFor({ auth: { secret: SECRET }, testDeliveries: { staleAfterSeconds: 60 } });
    expect((await run(fixture('soap-note-created.json'), strict)).data?.test).toBe(true);
  });

  it('stores tests as ignored when handling is ignore, without touching what the hub knows', async () => {
    const ctx = contextFor({ auth: { secret: SECRET }, testDeliveries: { handling: 'ignore' } });
    const { result } = await run(fixture('send-test-soap-note-created.json'), ctx);
    expect(result.events).toEqual([]);
    expect(result.ignored).toMatch(
      /^Instinctive Notes "Send test" delivery of note 12: the event was created \d+ s after/,
    );
    expect(await ctx.state.get('note/12')).toBeUndefined();
    const first = await run(fixture('soap-note-created.json'), ctx);
    expect(first.events).toHaveLength(1);
    const again = await run(resent(fixture('soap-note-created.json'), '2018-03-26T14:25:00Z'), ctx);
    expect(again.result.ignored).toContain('already announced as soap_note.created');
  });
});

describe('eventMap', () => {
  it('declares both SOAP note types and is what the connector exposes', () => {
    expect(eventMap.map((r) => [r.vendorType, r.normalizedTypes])).toEqual([
      ['soap_note.created', ['document.created']],
      ['soap_note.updated', ['document.updated']],
    ]);
    expect(instinctiveNotesConnector.eventMap).toEqual(eventMap);
  });

  it('is documented: every vendor type appears in docs/connectors/instinctive-notes.md', () => {
    const doc = readFileSync(
      new URL('../../../../docs/connectors/instinctive-notes.md', import.meta.url),
      'utf8',
    );
    for (const row of eventMap) {
      expect(doc, row.vendorType).toContain(`\`${row.vendorType}\``);
      for (const type of row.normalizedTypes) expect(doc, type).toContain(`\`${type}\``);
    }
  });
});
