import type { EventEnvelope, InboundRequest, JsonObject } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import {
  type HookReceiver,
  type ReceivedPush,
  startHookReceiver,
} from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InstinctiveNotesSimulator, retryDelaysMs } from './simulator.ts';
import { instinctiveNotesConnector } from './testing.ts';

const SECRET = 'in-sim-secret/0123456789abcdef';

/** What the hub would hand the connector for a received request on `/hooks/notes[/:secret]`. */
function asInbound(r: ReceivedPush): InboundRequest {
  const [, , , segment] = r.url.split('/');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(r.headers)) if (typeof value === 'string') headers[name] = value;
  return inboundRequest({
    route: segment === undefined ? 'default' : 'secret',
    params: segment === undefined ? {} : { secret: decodeURIComponent(segment) },
    headers,
    body: Buffer.from(r.body),
  });
}

const note = {
  id: 10,
  client_id: 50,
  client_external_ref: '123456',
  created_by: 'Simon Jones',
  seen_at: '2026-03-10T09:00:00Z',
  state: 'final',
  name: 'Standard Treatment',
  recommendations: 'Rest',
};

let receiver: HookReceiver;
beforeEach(async () => {
  receiver = await startHookReceiver();
});
afterEach(async () => {
  await receiver.close();
});

describe('InstinctiveNotesSimulator', () => {
  it('posts the Event object with the secret in the header, accepted by the connector', async () => {
    const sim = new InstinctiveNotesSimulator({ hookUrl: `${receiver.url}/hooks/notes`, secret: SECRET });
    const record = await sim.push(sim.event('soap_note.created', note));
    expect(record).toMatchObject({ delivered: true, failed: false, test: false });
    expect(record.attempts.map((a) => a.status)).toEqual([200]);
    const [request] = receiver.received;
    expect(request?.url).toBe('/hooks/notes');
    expect(request?.headers['x-instinctive-secret']).toBe(SECRET);
    const config = { auth: { mode: 'header' as const, secret: SECRET } };
    const inbound = asInbound(request!);
    expect(() => instinctiveNotesConnector.push!.authenticate(inbound, config)).not.toThrow();
    expect(instinctiveNotesConnector.push!.parse(inbound, config)).toMatchObject([
      { type: 'soap_note.created', orderingKey: '10' },
    ]);
  });

  it('puts the secret in the path when asked, and keeps it out of its records', async () => {
    const sim = new InstinctiveNotesSimulator({
      hookUrl: `${receiver.url}/hooks/notes/`,
      secret: SECRET,
      secretIn: 'path',
    });
    const record = await sim.push(sim.event('soap_note.updated', note));
    const [request] = receiver.received;
    expect(request?.url).toBe(`/hooks/notes/${encodeURIComponent(SECRET)}`);
    expect(request?.headers['x-instinctive-secret']).toBeUndefined();
    expect(record.attempts[0]?.url).toBe(`${receiver.url}/hooks/notes/***`);
    const config = { auth: { mode: 'path' as const, secret: SECRET } };
    expect(() => instinctiveNotesConnector.push!.authenticate(asInbound(request!), config)).not.toThrow();
  });

  it('retries a failed delivery with exponential back-off until it is accepted', async () => {
    receiver.answers.push(500, 503, 302);
    const sim = new InstinctiveNotesSimulator({
      hookUrl: `${receiver.url}/hooks/notes`,
      secret: SECRET,
      timeScale: 1e-5,
    });
    const record = await sim.push(sim.event('soap_note.created', note));
    expect(record.attempts.map((a) => a.status)).toEqual([500, 503, 302, 200]);
    expect(record.delivered).toBe(true);
    expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1);
  });

  it('gives up after 12 hours of back-off, tells the owner, disables the endpoint; tests still go out', async () => {
    receiver.answers.push(...Array.from({ length: 10 }, () => 500));
    const sim = new InstinctiveNotesSimulator({
      hookUrl: `${receiver.url}/hooks/notes`,
      secret: SECRET,
      timeScale: 1e-6,
    });
    const failed = await sim.push(sim.event('soap_note.created', note));
    expect(failed.attempts).toHaveLength(retryDelaysMs({}).length + 1);
    expect(failed).toMatchObject({ delivered: false, failed: true });
    expect(sim.endpointStatus).toBe('disabled');
    expect(sim.notices.map((n) => n.kind)).toEqual(['event_failed', 'endpoint_disabled']);
    expect(JSON.stringify(sim.notices)).not.toContain(SECRET);

    const skipped = await sim.push(sim.event('soap_note.updated', { ...note, state: 'draft' }));
    expect(skipped).toMatchObject({ skipped: true, attempts: [] });
    const test = await sim.sendTest('soap_note.created');
    expect(test).toMatchObject({ test: true, delivered: true });

    sim.enableEndpoint();
    expect((await sim.push(sim.event('soap_note.updated', note))).delivered).toBe(true);
  });

  it('does not retry a "Send test"', async () => {
    const sim = new InstinctiveNotesSimulator({
      hookUrl: `${receiver.url}/hooks/notes`,
      secret: SECRET,
      timeScale: 1e-6,
    });
    sim.save('soap_note.created', {
      ...note,
      created_at: '2026-03-10T09:30:00Z',
      updated_at: '2026-03-10T09:30:00Z',
    });
    receiver.answers.push(500);
    const record = await sim.sendTest();
    expect(record.attempts.map((a) => a.status)).toEqual([500]);
    expect(record).toMatchObject({ delivered: false, failed: false });
    expect(sim.endpointStatus).toBe('active');
  });

  it('"Send test" re-sends the last saved note in a new Event, which the connector recognises', async () => {
    let clock = new Date('2026-03-10T09:30:00Z');
    const sim = new InstinctiveNotesSimulator({
      hookUrl: `${receiver.url}/hooks/notes`,
      secret: SECRET,
      now: () => clock,
    });
    await sim.push(sim.event('soap_note.created', note));
    clock = new Date('2026-03-10T09:31:00Z');
    await sim.push(sim.event('soap_note.created', { ...note, id: 11 }));
    clock = new Date('2026-03-10T09:40:00Z');
    await sim.sendTest('soap_note.created');
    expect(() => sim.sendTest('soap_note.updated')).toThrow(/no saved note for soap_note.updated/);

    const bodies = receiver.received.map((r) => JSON.parse(r.body) as JsonObject);
    expect(bodies[2]).toEqual({ ...bodies[1], created_at: '2026-03-10T09:40:00Z' });

    const config = { auth: { secret: SECRET } };
    const ctx = memoryNormalizeContext({ instanceId: 'notes', config });
    const tests: unknown[] = [];
    for (const request of receiver.received) {
      const [notification] = instinctiveNotesConnector.push!.parse(asInbound(request), config);
      const result = await instinctiveNotesConnector.normalize(notification!, ctx);
      tests.push((result.events[0]?.data as JsonObject | undefined)?.test);
    }
    expect(tests).toEqual([undefined, undefined, true]);
  });

  it('pushes a normalized event through the connector encode', async () => {
    const sim = new InstinctiveNotesSimulator({ hookUrl: `${receiver.url}/hooks/notes`, secret: SECRET });
    const event: EventEnvelope = {
      specversion: '1.0',
      id: 'e1',
      type: 'document.updated',
      source: 'notes',
      subject: 'document/h1',
      time: '2026-03-10T10:00:00Z',
      datacontenttype: 'application/json',
      data: {
        id: 'h1',
        vendorIds: [{ system: 'instinctive-notes', value: '42' }],
        domain: 'clinical',
        docStatus: 'final',
      },
      connector: 'instinctive-notes',
      instance: 'notes',
      vendortype: 'soap_note.updated',
    };
    await sim.push(event);
    expect(JSON.parse(receiver.received[0]!.body)).toEqual({
      created_at: '2026-03-10T10:00:00Z',
      type: 'soap_note.updated',
      data: { object: { id: 42, state: 'final' } },
    });
    expect(sim.lastSaved.get('soap_note.updated')).toEqual({ id: 42, state: 'final' });
  });
});

describe('retryDelaysMs', () => {
  it('doubles from one minute and keeps every attempt within 12 hours', () => {
    const delays = retryDelaysMs({});
    expect(delays.slice(0, 3)).toEqual([60_000, 120_000, 240_000]);
    const total = delays.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(12 * 3_600_000);
    expect(total + delays.at(-1)! * 2).toBeGreaterThan(12 * 3_600_000);
    expect(retryDelaysMs({ firstRetryDelayMs: 1000, backoffFactor: 3, retryWindowMs: 13_000 })).toEqual([
      1000, 3000, 9000,
    ]);
  });
});
