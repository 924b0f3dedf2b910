/**
 * The normalize commit leasing what it fans out (`commitNormalized` with `lease`,
 * `fanOutStoredEvents`): a delivery the delivery claim would take at once is created in flight
 * for the committing process; everything the claim must judge (ordering, numbering, rate tokens)
 * is created pending, as before.
 */
import { randomUUID } from 'node:crypto';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimDeliveryWork, type DeliveryRow, leasedDeliveryWork } from '../deliveries/store.ts';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { claimInbound, storeInbound } from '../inbound/store.ts';
import { type Database, type Executor, openDatabase } from '../storage/db.ts';
import { advisoryLockWaiters, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { storeHubEvents } from './emit.ts';
import { commitNormalized, type FanOutLease } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const MARGIN_MS = 2000;
const LEASE: FanOutLease = { limit: 8, marginMs: MARGIN_MS };

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 4 });
  await migrate(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(database.db);
});
afterAll(async () => {
  await database?.close();
});
beforeEach(async () => {
  await sql`delete from switchyard.deliveries`.execute(database.db);
  await sql`delete from switchyard.subscriptions`.execute(database.db);
});

/** A subscription to every event type (columns not given keep their defaults). */
async function subscription(
  id: string,
  extra: {
    kind?: string;
    format?: string;
    disabled?: boolean;
    rateLimit?: unknown;
    ordering?: string;
  } = {},
): Promise<void> {
  await sql`insert into switchyard.subscriptions (id, kind, url, format, rate_limit, disabled_at, ordering, timeout_ms)
    values (${id}, ${extra.kind ?? 'webhook'}, 'http://example.test/hook', ${extra.format ?? 'cloudevents'},
      ${extra.rateLimit === undefined ? null : JSON.stringify(extra.rateLimit)}::jsonb,
      ${extra.disabled ? new Date() : null}, ${extra.ordering ?? 'hold'}, 5000)`.execute(database.db);
}

/**
 * Stores one message per event (`subject`s) and claims them: what {@link commitPrepared} commits.
 */
async function prepare(subjects: readonly string[]) {
  const bodyId = randomUUID();
  const items = subjects.map((_, i) => newInbound({ payload: { n: i }, bodyId }));
  await storeInbound(
    database.db,
    items,
    [{ id: bodyId, body: Buffer.from('{}'), receivedAt: new Date() }],
    ['inst-1'],
  );
  const { rows: claimed } = await claimInbound(database.db, 30_000, subjects.length);
  expect(claimed).toHaveLength(subjects.length);
  const byId = new Map<string, string>(items.map((item, i) => [item.id, subjects[i]!]));
  const ordered = [...claimed].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
  return {
    messages: ordered.map((m) => ({
      id: m.id,
      lockToken: m.lock_token!,
      status: 'normalized' as const,
      reason: null,
      eventCount: 1,
    })),
    events: ordered.map((m) => {
      const id = randomUUID();
      const subject = byId.get(m.id)!;
      return {
        id,
        type: 'appointment.cancelled',
        source: 'inst-1',
        subject,
        time: new Date().toISOString(),
        envelope: { id, type: 'appointment.cancelled', subject, data: { z: 1, a: [1.5, 'x'] } },
        inboundMessageId: m.id,
        traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
        tracestate: 'vendor=abc',
      };
    }),
  };
}

/** Commits what {@link prepare} claimed, on `db`; `lease` null: as a caller without a deliver worker. */
async function commitPrepared(
  db: Executor,
  { messages, events }: Awaited<ReturnType<typeof prepare>>,
  lease: FanOutLease | null = LEASE,
  stateKey?: string,
) {
  // `stateKey`: each message also writes that connector state key (as a connector's `state.set`).
  const states = stateKey
    ? messages.map((m) => ({ inboundMessageId: m.id, instanceId: 'inst-1', key: stateKey, value: '1' }))
    : [];
  const r = await commitNormalized(db, messages, events, states, lease ?? undefined);
  return { ...r, leased: r.leased.map(leasedDeliveryWork) };
}

/** Stores, claims and commits one event per subject in one statement; `lease` null: every delivery pending. */
async function commit(subjects: readonly string[], lease: FanOutLease | null = LEASE) {
  return commitPrepared(database.db, await prepare(subjects), lease);
}

/** Backends of this database waiting for an advisory lock (the subject lock, `lockSubjects`). */
const waitingForSubjectLock = () => advisoryLockWaiters(database.db);

/**
 * Runs `commitPrepared` of `first` in a transaction left open until the returned `release` is
 * called (the first commit of a subject whose second commit races it).
 */
async function holdOpen(first: Awaited<ReturnType<typeof prepare>>, lease: FanOutLease | null = LEASE) {
  let release!: () => void;
  const open = new Promise<void>((r) => {
    release = r;
  });
  let result: Awaited<ReturnType<typeof commitPrepared>> | undefined;
  const done = database.db.transaction().execute(async (trx) => {
    result = await commitPrepared(trx, first, lease);
    await open;
  });
  const commit = async () => {
    release();
    await done;
  };
  stillOpen.push(commit);
  await until(() => result !== undefined);
  return { result: result!, commit };
}

/** {@link holdOpen}'s transactions, committed after each test (a failed one leaves its own open). */
const stillOpen: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const commit of stillOpen.splice(0)) await commit();
});

/** The first example of an event type's schema (packages/core), without its sequence. */
function example(type: string): EventEnvelope {
  const schema = getSchemas().find((x) => x.$id.endsWith(`/events/${type}.json`)) as unknown as {
    examples: EventEnvelope[];
  };
  const { sequence: _, ...event } = structuredClone(schema.examples[0]!) as EventEnvelope & {
    sequence?: string;
  };
  return event;
}

async function deliveries(): Promise<DeliveryRow[]> {
  const r = await sql<DeliveryRow>`select * from switchyard.deliveries order by seq`.execute(database.db);
  return r.rows;
}

describe('the normalize commit leasing its fan-out', () => {
  it('creates a delivery its line lets go at once in flight (attempt 1, a claim’s lease), with its subscription and event', async () => {
    await subscription('plain');
    const before = Date.now();
    const { leased, fanned } = await commit(['appointment/1']);
    expect(fanned).toBe(1);
    expect(leased).toHaveLength(1);
    const [row] = await deliveries();
    // Leased by the commit itself: no claim statement has run.
    expect(row).toMatchObject({ status: 'in_flight', attempts: 1, subscription_id: 'plain' });
    expect(row!.lock_token).not.toBeNull();
    const work = leased[0]!;
    expect(work.delivery).toMatchObject({
      id: row!.id,
      status: 'in_flight',
      attempts: 1,
      lock_token: row!.lock_token,
      seq: row!.seq,
      event_sequence: row!.event_sequence,
    });
    expect(work.delivery.created_at).toBeInstanceOf(Date);
    // The lease of a claim: the subscription's timeout plus the margin.
    const leaseMs = row!.locked_until!.getTime() - before;
    expect(leaseMs).toBeGreaterThan(5000 + MARGIN_MS - 1000);
    expect(leaseMs).toBeLessThan(5000 + MARGIN_MS + 5000);
    expect(work.delivery.locked_until!.getTime()).toBe(row!.locked_until!.getTime());
    expect(work.subscription).toMatchObject({ id: 'plain', format: 'cloudevents', timeout_ms: 5000 });
    expect(work.subscription.created_at).toBeInstanceOf(Date);
    // The event as stored (jsonb's key order), as the claim returns it.
    const stored = await sql<{
      envelope: unknown;
      sequence: string;
      traceparent: string;
      tracestate: string;
    }>`
      select envelope, sequence::text, traceparent, tracestate from switchyard.events where id = ${row!.event_id}`.execute(
      database.db,
    );
    expect(work.event).toMatchObject({
      id: row!.event_id,
      sequence: stored.rows[0]!.sequence,
      traceparent: stored.rows[0]!.traceparent,
      // The trace state is stored beside it (migration 48) and handed to the deliverer with it.
      tracestate: 'vendor=abc',
    });
    expect(stored.rows[0]!.tracestate).toBe('vendor=abc');
    expect(JSON.stringify(work.event!.envelope)).toBe(JSON.stringify(stored.rows[0]!.envelope));
    // Nothing is left for the claim.
    expect(await claimDeliveryWork(database.db, MARGIN_MS, 10)).toEqual([]);
  });

  it('leases nothing without a lease or with no slot', async () => {
    await subscription('plain');
    expect((await commit(['appointment/1'], null)).leased).toEqual([]);
    expect((await commit(['appointment/2'], { limit: 0, marginMs: MARGIN_MS })).leased).toEqual([]);
    expect((await deliveries()).map((d) => [d.status, d.attempts, d.lock_token])).toEqual([
      ['pending', 0, null],
      ['pending', 0, null],
    ]);
  });

  it('leases at most the slots given, in event order', async () => {
    await subscription('plain');
    const { leased } = await commit(['appointment/1', 'appointment/2', 'appointment/3'], {
      limit: 2,
      marginMs: MARGIN_MS,
    });
    expect(leased.map((w) => w.delivery.subject)).toEqual(['appointment/1', 'appointment/2']);
    expect((await deliveries()).map((d) => d.status)).toEqual(['in_flight', 'in_flight', 'pending']);
  });

  it('leaves a delivery pending behind an unfinished earlier one of its subject (pending or in flight)', async () => {
    await subscription('plain');
    await commit(['appointment/1'], null); // pending
    expect((await commit(['appointment/1'])).leased).toEqual([]);
    await commit(['appointment/2']); // in flight
    expect((await commit(['appointment/2'])).leased).toEqual([]);
    expect((await deliveries()).map((d) => `${d.subject} ${d.status}`)).toEqual([
      'appointment/1 pending',
      'appointment/1 pending',
      'appointment/2 in_flight',
      'appointment/2 pending',
    ]);
  });

  it('leases only the first delivery of a subject in one commit', async () => {
    await subscription('plain');
    const { leased } = await commit(['appointment/1', 'appointment/1', 'appointment/2']);
    expect(leased.map((w) => w.delivery.subject)).toEqual(['appointment/1', 'appointment/2']);
    expect((await deliveries()).map((d) => `${d.subject} ${d.status}`)).toEqual([
      'appointment/1 in_flight',
      'appointment/1 pending',
      'appointment/2 in_flight',
    ]);
  });

  it('behind a dead delivery: held under `hold`, leased under `release`, leased once the dead one is replayed', async () => {
    await subscription('hold', { ordering: 'hold' });
    await subscription('release', { ordering: 'release' });
    await commit(['appointment/1'], null);
    await sql`update switchyard.deliveries set status = 'dead'`.execute(database.db);
    const { leased } = await commit(['appointment/1']);
    expect(leased.map((w) => w.subscription.id)).toEqual(['release']);
    expect(
      (await deliveries()).filter((d) => d.status !== 'dead').map((d) => `${d.subscription_id} ${d.status}`),
    ).toEqual(['hold held', 'release in_flight']);
    // Replayed (superseded): it no longer holds its line.
    await sql`delete from switchyard.deliveries where status <> 'dead'`.execute(database.db);
    await sql`update switchyard.deliveries set superseded_by = gen_random_uuid()`.execute(database.db);
    expect((await commit(['appointment/1'])).leased.map((w) => w.subscription.id).sort()).toEqual([
      'hold',
      'release',
    ]);
  });

  it('leaves to the claim a notification subscription (numbered at the claim) and a rate-limited one; a disabled or pull subscription gets nothing', async () => {
    await subscription('notify', { format: 'fhir-r4-notification' });
    await subscription('limited', { rateLimit: { perSecond: 5 } });
    await subscription('off', { disabled: true });
    await subscription('feed', { kind: 'pull' });
    await subscription('plain', { rateLimit: null });
    const { leased, fanned } = await commit(['appointment/1']);
    expect(fanned).toBe(3);
    expect(leased.map((w) => w.subscription.id)).toEqual(['plain']);
    expect((await deliveries()).map((d) => `${d.subscription_id} ${d.status}`).sort()).toEqual([
      'limited pending',
      'notify pending',
      'plain in_flight',
    ]);
    // The claim numbers the notification as before.
    const claimed = await claimDeliveryWork(database.db, MARGIN_MS, 10);
    expect(claimed.find((w) => w.subscription.id === 'notify')!.delivery.notification_number).toBe('1');
  });
});

describe('commits of one subject, one after the other', () => {
  // Two messages of different ordering keys (a BookingBug purchase's cancellation and one of its
  // bookings' changes) can be normalized at once, their events about one subject.
  it('a second commit waits for the first one’s commit, then sees its delivery: one in flight per line', async () => {
    await subscription('plain');
    const first = await prepare(['appointment/1']);
    const second = await prepare(['appointment/1']);
    const held = await holdOpen(first);
    expect(held.result.leased).toHaveLength(1);
    const racing = commitPrepared(database.db, second);
    await until(async () => (await waitingForSubjectLock()) === 1);
    await held.commit();
    const after = await racing;
    expect(after.fanned).toBe(1);
    expect(after.leased).toEqual([]);
    const rows = await deliveries();
    expect(rows.map((d) => d.status)).toEqual(['in_flight', 'pending']);
    // Numbered in commit order: the line's order is the order its events committed in.
    expect(BigInt(rows[0]!.event_sequence)).toBeLessThan(BigInt(rows[1]!.event_sequence));
  });

  it('without a lease too: the claim never finds the later event committed before the earlier one', async () => {
    await subscription('plain');
    const first = await prepare(['appointment/1']);
    const second = await prepare(['appointment/1']);
    const held = await holdOpen(first, null);
    const racing = commitPrepared(database.db, second, null);
    await until(async () => (await waitingForSubjectLock()) === 1);
    // While the first is uncommitted the second has not drawn its number nor stored anything.
    expect(await claimDeliveryWork(database.db, MARGIN_MS, 10)).toEqual([]);
    await held.commit();
    await racing;
    const claimed = await claimDeliveryWork(database.db, MARGIN_MS, 10);
    expect(claimed.map((w) => w.event?.id)).toEqual([first.events[0]!.id]);
  });

  it('takes the subject lock before any row lock: no deadlock with a transaction writing the same state', async () => {
    await subscription('plain');
    const first = await prepare(['appointment/1']);
    const second = await prepare(['appointment/1']);
    let release!: () => void;
    const open = new Promise<void>((r) => {
      release = r;
    });
    let firstDone = false;
    // The first holds the subject, then (while the second waits for it) writes the state key the
    // second writes too: had the second locked that row before waiting, the two would deadlock.
    const held = database.db.transaction().execute(async (trx) => {
      await commitPrepared(trx, first);
      firstDone = true;
      await open;
      await sql`insert into switchyard.entity_state (instance_id, key, value) values ('inst-1', 'shared', '2')
        on conflict (instance_id, key) do update set value = excluded.value`.execute(trx);
    });
    await until(() => firstDone);
    const racing = commitPrepared(database.db, second, LEASE, 'shared');
    await until(async () => (await waitingForSubjectLock()) === 1);
    release();
    await held;
    await racing;
    const state = await sql<{ value: unknown }>`select value from switchyard.entity_state
      where instance_id = 'inst-1' and key = 'shared'`.execute(database.db);
    expect(state.rows[0]!.value).toBe(1); // the second commit's write, after the first's
  });

  it('other subjects do not wait; a hub-made event of the subject waits like a normalized one', async () => {
    await subscription('plain');
    const held = await holdOpen(await prepare(['appointment/1']));
    // Another subject commits (and leases) while the first is open.
    expect((await commit(['appointment/2'])).leased).toHaveLength(1);
    const id = randomUUID();
    const hubEvent = storeHubEvents(database.db, [
      { ...example('appointment.cancelled'), id, subject: 'appointment/1' },
    ]);
    await until(async () => (await waitingForSubjectLock()) === 1);
    await held.commit();
    expect(await hubEvent).toBe(1);
    const rows = await deliveries();
    expect(rows.map((d) => `${d.subject} ${d.status}`).sort()).toEqual([
      'appointment/1 in_flight',
      'appointment/1 pending',
      'appointment/2 in_flight',
    ]);
  });
});
