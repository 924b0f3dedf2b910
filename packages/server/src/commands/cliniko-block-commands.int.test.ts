/**
 * Cliniko's unavailable blocks end to end through a started hub process: a block made at Cliniko
 * is polled and delivered as `slot.blocked`; the calendar-block commands (`slot.block`,
 * `slot.move_block`, `slot.unblock`) go to the Cliniko simulator's API over real HTTP, end in
 * `command.*`, and the next poll's slot event carries `data.causedBy`. Real Postgres, real HTTP.
 */
import type { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { fixtureSettings } from '@switchyard/connector-cliniko/testing';
import { type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClinikoHub, causedBy, nextSecond, startClinikoHub } from './cliniko-hub.test-support.ts';

const db = useTestDatabase();
let c: ClinikoHub;
let sim: ClinikoSimulator;
let subscriber: RecordingSubscriber;
const api: ClinikoHub['api'] = (method, path, body) => c.api(method, path, body);
const finished = (id: string) => c.finished(id);

beforeAll(async () => {
  c = await startClinikoHub(db.url(), ['slot.*', 'command.*']);
  ({ sim, subscriber } = c);
});

afterAll(async () => {
  await c?.stop();
});

const dataOf = (r: { json?: unknown }) => (r.json as { data: Record<string, unknown> }).data;
const link = (kind: string, id: string) => ({ links: { self: `${sim.url}/${kind}/${id}` } });

describe('Cliniko unavailable blocks through the hub', () => {
  it('a block made at Cliniko is polled and delivered as slot.blocked, a calendar block of the practitioner at the business', async () => {
    sim.putBlock({
      id: '8001',
      created_at: '2026-03-01T09:00:00Z',
      starts_at: '2026-03-12T08:00:00Z',
      ends_at: '2026-03-12T09:00:00Z',
      notes: 'Lunch',
      practitioner: link('practitioners', '7'),
      business: link('businesses', '3'),
    });
    const blocked = await subscriber.waitFor(
      (r) => r.type === 'slot.blocked' && r.text.includes('"value":"8001"'),
    );
    expect(dataOf(blocked)).toMatchObject({
      vendorIds: [{ system: 'cliniko', instance: 'cl', value: '8001', current: true }],
      kind: 'block',
      status: 'busy-unavailable',
      start: '2026-03-12T08:00:00Z',
      end: '2026-03-12T09:00:00Z',
      practitioner: { id: '7' },
      location: { id: '3' },
    });
    expect(blocked.subject).toBe(`slot/${dataOf(blocked).id}`);
    expect(causedBy(blocked)).toBeUndefined();
  });

  it('slot.block, slot.move_block and slot.unblock act at Cliniko, each echoed by the next poll with causedBy', async () => {
    const sent = await api('POST', '/v1/commands', {
      type: 'slot.block',
      instance: 'cl',
      data: {
        start: '2026-03-13T14:00:00+01:00',
        end: '2026-03-13T15:00:00+01:00',
        practitioner: { id: '7' },
        location: { id: '3' },
        reason: 'Team meeting',
      },
    });
    expect(sent.status).toBe(202);
    const done = await finished(sent.json.id);
    expect(done).toMatchObject({ status: 'succeeded' });
    const made = [...sim.requests]
      .reverse()
      .find((r) => r.method === 'POST' && r.url === '/v1/unavailable_blocks');
    expect(made?.status).toBe(201);
    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.text.includes(sent.json.id),
    );
    const slotId = (dataOf(outcome).result as { slotId: string }).slotId;
    const subject = `slot/${slotId}`;
    const blockId = (dataOf(outcome).result as { vendorIds: string[] }).vendorIds[0]!;
    expect(sim.getBlock(blockId)).toMatchObject({
      starts_at: '2026-03-13T13:00:00Z',
      ends_at: '2026-03-13T14:00:00Z',
      notes: 'Team meeting',
    });
    const blocked = await subscriber.waitFor((r) => r.subject === subject && r.type === 'slot.blocked');
    expect(causedBy(blocked)).toEqual({ commandId: sent.json.id });
    await nextSecond();

    const move = await api('POST', '/v1/commands', {
      type: 'slot.move_block',
      subject,
      data: { start: '2026-03-13T16:00:00+01:00', end: '2026-03-13T17:30:00+01:00' },
    });
    expect(await finished(move.json.id)).toMatchObject({ status: 'succeeded' });
    const moved = await subscriber.waitFor((r) => r.subject === subject && r.type === 'slot.block_moved');
    expect(dataOf(moved)).toMatchObject({
      start: '2026-03-13T15:00:00Z',
      end: '2026-03-13T16:30:00Z',
      previous: { start: '2026-03-13T13:00:00Z', end: '2026-03-13T14:00:00Z' },
    });
    expect(causedBy(moved)).toEqual({ commandId: move.json.id });
    await nextSecond();

    const unblock = await api('POST', '/v1/commands', { type: 'slot.unblock', subject, data: {} });
    expect(await finished(unblock.json.id)).toMatchObject({ status: 'succeeded' });
    const unblocked = await subscriber.waitFor((r) => r.subject === subject && r.type === 'slot.unblocked');
    expect(causedBy(unblocked)).toEqual({ commandId: unblock.json.id });
    // Known removed: a second unblock is refused at once (409), nothing sent.
    const again = await api('POST', '/v1/commands', { type: 'slot.unblock', subject, data: {} });
    expect(again.status).toBe(409);
    expect(sim.requests.filter((r) => r.method === 'DELETE').map((r) => r.status)).toEqual([204]);
  });

  it('a block whose answer was lost is found by the retry, not made twice; a refusal fails with Cliniko’s words, the key scrubbed; one without a business is refused at once', async () => {
    const data = {
      start: '2026-03-14T10:00:00+01:00',
      end: '2026-03-14T11:00:00+01:00',
      practitioner: { id: '8' },
      location: { id: '3' },
    };
    sim.loseAnswers(1, 502);
    const sent = await api('POST', '/v1/commands', { type: 'slot.block', instance: 'cl', data });
    expect(await finished(sent.json.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
    const posts = sim.requests.filter((r) => r.method === 'POST' && r.url === '/v1/unavailable_blocks');
    expect(posts.at(-1)).toMatchObject({ status: 502, lostStatus: 201 });
    const outcome = await subscriber.waitFor(
      (r) => r.type === 'command.succeeded' && r.text.includes(sent.json.id),
    );
    expect(dataOf(outcome).result).toMatchObject({ alreadyDone: true });

    sim.failNextWrite(403, { message: `API key ${fixtureSettings.apiKey} may not block time` });
    const refused = await api('POST', '/v1/commands', {
      type: 'slot.block',
      instance: 'cl',
      data: { ...data, start: '2026-03-15T10:00:00+01:00', end: '2026-03-15T11:00:00+01:00' },
    });
    const failed = await finished(refused.json.id);
    expect(failed).toMatchObject({
      status: 'failed',
      error: {
        kind: 'permanent',
        message: 'Cliniko unavailable block answered 403: API key [redacted] may not block time',
      },
    });
    expect(JSON.stringify(failed)).not.toContain(fixtureSettings.apiKey);

    const { location: _l, ...bare } = data;
    const unsupported = await api('POST', '/v1/commands', { type: 'slot.block', instance: 'cl', data: bare });
    expect([unsupported.status, unsupported.json.code]).toEqual([422, 'SY_COMMAND_UNSUPPORTED']);
  });
});
