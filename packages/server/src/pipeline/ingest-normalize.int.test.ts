import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventIdFor } from '../events/ids.ts';
import { openDatabase } from '../storage/db.ts';
import { migrate, migrations } from '../storage/migrations.ts';
import {
  API_KEY,
  behaviour,
  eventually,
  makeHub,
  push,
  resetBehaviour,
  setupInstance,
} from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});
beforeEach(() => resetBehaviour());

async function inboundStatus(id: string, status: string) {
  return eventually(async () => {
    const m = await hub.inbound.get(id);
    return m.status === status ? m : undefined;
  });
}

describe('storage', () => {
  it('migrations are recorded, idempotent and safe when run concurrently', async () => {
    const a = openDatabase(database.url());
    const b = openDatabase(database.url());
    try {
      const [x, y] = await Promise.all([migrate(a.db), migrate(b.db)]);
      expect([...x, ...y]).toEqual([]); // the hub already migrated
      const rows = await sql<{ version: number }>`select version from switchyard.migrations`.execute(a.db);
      expect(rows.rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('stores instance settings encrypted and shows secrets redacted', async () => {
    const view = await hub.instances.get('acme-1');
    expect(view.settings).toEqual({ apiKey: '[redacted]', region: 'eu' });
    const raw = await sql<{
      settings_sealed: string;
    }>`select settings_sealed from switchyard.connector_instances`.execute(hub.host.db);
    expect(raw.rows[0]!.settings_sealed).not.toContain(API_KEY);
  });
});

describe('ingest', () => {
  it('refuses bad credentials with 401 and stores nothing', async () => {
    const before = (await hub.inbound.list({})).items.length;
    const r = await hub.ingest('acme-1', push({ id: 'x1', type: 'created' }, 'wrong'));
    expect(r.ok).toBe(false);
    expect(r.status).toBe(401);
    expect((await hub.inbound.list({})).items.length).toBe(before);
  });

  it('answers 400 for a body the connector cannot parse, 404 for an unknown instance, 413 when too large', async () => {
    expect((await hub.ingest('acme-1', push('not json'))).status).toBe(400);
    expect((await hub.ingest('nope', push({ id: 'x', type: 'created' }))).status).toBe(404);
    const big = push({ id: 'big', type: 'created', pad: 'x'.repeat(hub.options.maxBodyBytes) });
    expect((await hub.ingest('acme-1', big)).status).toBe(413);
  });

  it('acknowledges after storing, and a duplicate is acknowledged but not processed twice', async () => {
    const first = await hub.ingest('acme-1', push({ id: 'dup-1', type: 'created', booking: 'b-dup' }));
    expect(first).toMatchObject({ ok: true, status: 200, body: { status: 'accepted' }, duplicates: 0 });
    if (!first.ok) throw new Error('unreachable');
    expect(first.stored).toHaveLength(1);
    const second = await hub.ingest('acme-1', push({ id: 'dup-1', type: 'created', booking: 'b-dup' }));
    expect(second).toMatchObject({ ok: true, status: 200, stored: [], duplicates: 1 });
    const message = await inboundStatus(first.stored[0]!, 'normalized');
    expect(message.headers?.['x-api-key']).toBe('[redacted]');
    expect(message.events).toHaveLength(1);
    expect(behaviour.seen.filter((s) => s.key === 'dup-1')).toHaveLength(1);
  });

  it('groups concurrent requests and keeps every one durable', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => hub.ingest('acme-1', push({ id: `many-${i}`, type: 'noop' }))),
    );
    expect(results.every((r) => r.ok && r.stored.length === 1)).toBe(true);
    const ids = results.flatMap((r) => (r.ok ? r.stored : []));
    for (const id of ids) await inboundStatus(id, 'ignored');
  });

  it('returns a gate marker for gate notifications and still stores them', async () => {
    const r = await hub.ingest('acme-1', push({ id: 'gate-1', type: 'noop', gate: true }));
    expect(r.ok && r.gate?.messageIds).toHaveLength(1);
  });

  it('answers 503 when Postgres is unreachable', async () => {
    const down = await makeHub(database.url());
    await setupInstance(down, 'acme-down');
    // Warm the instance cache is off (instanceCacheMs 0), so the lookup itself hits the dead pool.
    await down.host.db.destroy();
    const r = await down.ingest('acme-down', push({ id: 'down-1', type: 'created' }));
    expect(r.status).toBe(503);
    await down.stop({ graceful: false });
  });
});

describe('normalize', () => {
  it('stores an ignored notification with its reason', async () => {
    const r = await hub.ingest('acme-1', push({ id: 'noop-1', type: 'noop' }));
    const m = await inboundStatus(r.ok ? r.stored[0]! : '', 'ignored');
    expect(m.reason).toMatch(/no normalized counterpart/);
  });

  it('gives events stable ids derived from the inbound message', async () => {
    const r = await hub.ingest('acme-1', push({ id: 'stable-1', type: 'created', booking: 'b-stable' }));
    const id = r.ok ? r.stored[0]! : '';
    const m = await inboundStatus(id, 'normalized');
    expect(m.events[0]!.id).toBe(eventIdFor(id, 0));
    expect(m.events[0]).toMatchObject({ type: 'appointment.created', source: 'acme-1', connector: 'acme' });
  });

  it('marks invalid normalized output failed with the validation errors', async () => {
    const r = await hub.ingest('acme-1', push({ id: 'invalid-1', type: 'invalid' }));
    const m = await inboundStatus(r.ok ? r.stored[0]! : '', 'failed');
    expect(m.reason).toMatch(/invalid normalized event/);
    expect(JSON.stringify(m.error)).toContain('/time');
    expect(m.events).toHaveLength(0);
  });

  it('retries transient connector errors with backoff, then succeeds', async () => {
    behaviour.flaky.set('flaky-1', 2);
    const r = await hub.ingest('acme-1', push({ id: 'flaky-1', type: 'created', booking: 'b-flaky' }));
    const m = await inboundStatus(r.ok ? r.stored[0]! : '', 'normalized');
    expect(m.attempts).toBe(3);
    expect(behaviour.seen.filter((s) => s.key === 'flaky-1').map((s) => [s.attempt, s.finalAttempt])).toEqual(
      [
        [1, false],
        [2, false],
        [3, true],
      ],
    );
    // While it waited for its retries, the instance showed why (the vendor was failing), once per
    // 5 s per process: the first retry, not the second right after it.
    const health = await hub.instances.health('acme-1');
    expect(health.lastError).toMatch(/^normalization retried \(attempt 1 of 3\): /);
    expect(health.lastErrorAt).not.toBeNull();
  });

  it('fails after the last transient retry, and fails permanent errors at once', async () => {
    behaviour.flaky.set('flaky-2', 10);
    const r1 = await hub.ingest('acme-1', push({ id: 'flaky-2', type: 'created' }));
    const m1 = await inboundStatus(r1.ok ? r1.stored[0]! : '', 'failed');
    expect(m1.attempts).toBe(3);
    behaviour.broken.add('cancelled');
    const r2 = await hub.ingest('acme-1', push({ id: 'perm-1', type: 'cancelled' }));
    const m2 = await inboundStatus(r2.ok ? r2.stored[0]! : '', 'failed');
    expect(m2.attempts).toBe(1);
    expect(m2.reason).toBe('cannot handle cancelled');
    expect((await hub.instances.health('acme-1')).lastError).toMatch(/cannot handle cancelled/);
  });

  it('renormalizes a failed message after a fix, with the same event id', async () => {
    behaviour.broken.add('rescheduled');
    const r = await hub.ingest('acme-1', push({ id: 'fixme-1', type: 'rescheduled', booking: 'b-fix' }));
    const id = r.ok ? r.stored[0]! : '';
    await inboundStatus(id, 'failed');
    behaviour.broken.delete('rescheduled');
    await hub.inbound.renormalize(id);
    const m = await inboundStatus(id, 'normalized');
    expect(m.events.map((e) => e.id)).toEqual([eventIdFor(id, 0)]);
    await expect(hub.inbound.renormalize(id)).rejects.toMatchObject({ code: 'SY_PIPELINE_CONFLICT' });
  });

  it('normalizes notifications with one ordering key in arrival order, even across a retry', async () => {
    behaviour.flaky.set('ord-1', 1);
    const r = await hub.ingest('acme-1', {
      ...push({
        items: [
          { id: 'ord-1', type: 'created', booking: 'b-ord', seq: 1 },
          { id: 'ord-2', type: 'rescheduled', booking: 'b-ord', seq: 2 },
          { id: 'ord-3', type: 'cancelled', booking: 'b-ord', seq: 3 },
        ],
      }),
    });
    const ids = r.ok ? r.stored : [];
    expect(ids).toHaveLength(3);
    for (const id of ids) await inboundStatus(id, 'normalized');
    const order = behaviour.seen.filter((s) => s.key.startsWith('ord-')).map((s) => s.key);
    expect(order).toEqual(['ord-1', 'ord-1', 'ord-2', 'ord-3']);
    const events = await hub.events.list({ subject: (await hub.inbound.get(ids[0]!)).events[0]!.subject });
    expect(events.items.map((e) => e.type).reverse()).toEqual([
      'appointment.created',
      'appointment.rescheduled',
      'appointment.cancelled',
    ]);
  });

  it('a retry in the middle of a run of one key holds the rest back, untried, until it succeeds', async () => {
    // The four messages are claimed as one run (one ordering key, all due) and normalized one after
    // another; the second fails transiently. The run must stop there: the third and fourth wait
    // behind it, are given back with no attempt counted, and follow it in order once it succeeds.
    behaviour.flaky.set('mid-2', 1);
    const r = await hub.ingest('acme-1', {
      ...push({
        items: ['created', 'rescheduled', 'rescheduled', 'cancelled'].map((type, i) => ({
          id: `mid-${i + 1}`,
          type,
          booking: 'b-mid',
          seq: i + 1,
        })),
      }),
    });
    const ids = r.ok ? r.stored : [];
    expect(ids).toHaveLength(4);
    for (const id of ids) await inboundStatus(id, 'normalized');
    const seen = behaviour.seen.filter((s) => s.key.startsWith('mid-'));
    expect(seen.map((s) => `${s.key}#${s.attempt}`)).toEqual([
      'mid-1#1',
      'mid-2#1',
      'mid-2#2',
      'mid-3#1',
      'mid-4#1',
    ]);
    const attempts = await Promise.all(ids.map(async (id) => (await hub.inbound.get(id)).attempts));
    expect(attempts).toEqual([1, 2, 1, 1]);
    const events = await hub.events.list({ subject: (await hub.inbound.get(ids[0]!)).events[0]!.subject });
    expect(events.items.map((e) => e.type).reverse()).toEqual([
      'appointment.created',
      'appointment.rescheduled',
      'appointment.rescheduled',
      'appointment.cancelled',
    ]);
  });
});

describe('connector state during normalization', () => {
  const comments = async (ids: readonly string[]) =>
    (
      await sql<{ comment: string }>`
        select e.envelope -> 'data' ->> 'comment' as comment from switchyard.events e
        join unnest(${ids as string[]}::uuid[]) with ordinality as m(id, n) on e.inbound_message_id = m.id
        order by m.n`.execute(hub.host.db)
    ).rows.map((r) => r.comment);
  const stored = async (key: string) =>
    (
      await sql<{ value: unknown }>`
        select value from switchyard.entity_state where instance_id = 'acme-1' and key = ${key}`.execute(
        hub.host.db,
      )
    ).rows.map((r) => r.value);

  it('each message of a run reads the writes of the ones before it, stored with their results', async () => {
    const r = await hub.ingest('acme-1', {
      ...push({
        items: [1, 2, 3].map((i) => ({ id: `tally-${i}`, type: 'tally', booking: 'b-tally' })),
      }),
    });
    const ids = r.ok ? r.stored : [];
    expect(ids).toHaveLength(3);
    for (const id of ids) await inboundStatus(id, 'normalized');
    expect(await comments(ids)).toEqual(['tally-1:1', 'tally-2:2', 'tally-3:3']);
    expect(await stored('tally/b-tally')).toEqual([3]);
  });

  it('a message that is retried leaves no state change behind; a deletion is stored like a write', async () => {
    const first = await hub.ingest(
      'acme-1',
      push({ id: 'tr-1', type: 'tally', booking: 'b-tr', failOnce: true }),
    );
    const [id1] = first.ok ? first.stored : [];
    await inboundStatus(id1!, 'normalized');
    // The first try wrote 1 and failed: the retry read nothing and counted 1 again.
    expect((await hub.inbound.get(id1!)).attempts).toBe(2);
    expect(await comments([id1!])).toEqual(['tr-1:1']);
    expect(await stored('tally/b-tr')).toEqual([1]);
    const second = await hub.ingest(
      'acme-1',
      push({ id: 'tr-2', type: 'tally', booking: 'b-tr', reset: true }),
    );
    const [id2] = second.ok ? second.stored : [];
    await inboundStatus(id2!, 'normalized');
    expect(await comments([id2!])).toEqual(['tr-2:2']);
    expect(await stored('tally/b-tr')).toEqual([]);
    const third = await hub.ingest('acme-1', push({ id: 'tr-3', type: 'tally', booking: 'b-tr' }));
    const [id3] = third.ok ? third.stored : [];
    await inboundStatus(id3!, 'normalized');
    expect(await comments([id3!])).toEqual(['tr-3:1']);
  });
});
