/**
 * The normalize claim reads a bounded part of the queue, whatever one ordering key's backlog.
 *
 * Before migration 14, `claimable_inbound` walked every received message in arrival order until it
 * had found its limit of heads: behind the leased head of one busy key (a Docplanner facility
 * catching up) it read the whole backlog on every claim, so each message cost O(messages waiting).
 * These tests count the rows the claim reads (Postgres' per-transaction table statistics), not time.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import type { Executor } from '../storage/db.ts';
import * as inboundStore from './store.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

/** Queues `count` received messages of `key` (null: no ordering key) after everything queued so far. */
async function enqueue(prefix: string, key: string | null, count: number): Promise<void> {
  await sql`insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key, payload)
    select gen_random_uuid(), 'one-key', 'push', ${prefix} || '-' || i, 'notification', ${key}::text, '{}'::jsonb
    from generate_series(1, ${count}::integer) as i`.execute(store.db);
}

/**
 * Runs `work` in a transaction that is rolled back; returns its result and the rows of
 * inbound_messages it read (heap tuples fetched by index scans and sequential scans: the
 * transaction's own statistics, before and after).
 */
async function probe<T>(work: (trx: Executor) => Promise<T>): Promise<{ result: T; rowsRead: number }> {
  let out: { result: T; rowsRead: number } | undefined;
  const read = async (trx: Executor) => {
    const stats = await sql<{ read: string }>`
      select coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) as read
      from pg_stat_xact_user_tables where schemaname = 'switchyard' and relname = 'inbound_messages'`.execute(
      trx,
    );
    return Number(stats.rows[0]?.read ?? 0);
  };
  await store.db
    .transaction()
    .execute(async (trx) => {
      const before = await read(trx);
      const result = await work(trx);
      out = { result, rowsRead: (await read(trx)) - before };
      throw new Rollback();
    })
    .catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e;
    });
  if (out === undefined) throw new Error('the probe did not run');
  return out;
}

/** A claim under {@link probe}: what it claimed (dedupe keys), its wake-up time and the rows it read. */
async function probeClaim(
  limit: number,
): Promise<{ claimed: string[]; nextDueAt: Date | undefined; rowsRead: number }> {
  const { result, rowsRead } = await probe((trx) => inboundStore.claimInbound(trx, 30_000, limit));
  return { claimed: result.rows.map((r) => r.dedupe_key), nextDueAt: result.nextDueAt, rowsRead };
}

/** When the lease of the message with this dedupe key runs out. */
async function leaseEnd(dedupeKey: string): Promise<Date> {
  const r = await sql<{ at: Date }>`select locked_until as at from switchyard.inbound_messages
    where dedupe_key = ${dedupeKey}`.execute(store.db);
  return r.rows[0]!.at;
}

class Rollback extends Error {}

it('a claim behind the leased head of one busy key reads as many rows with 10,000 queued as with 1,000', {
  timeout: 60_000,
}, async () => {
  await enqueue('busy', 'facility-1', 1_000);
  // The head is being normalized: it blocks its key, and the next claim finds nothing to do.
  const { rows: head } = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(head.map((r) => r.dedupe_key)).toEqual(['busy-1']);

  const small = await probeClaim(16);
  expect(small.claimed).toEqual([]);

  await enqueue('busy-more', 'facility-1', 9_000);
  const large = await probeClaim(16);
  expect(large.claimed).toEqual([]);

  // Migration 10 read every waiting message and probed its key's head for each: ~2,000 rows with
  // 1,000 queued, ~20,000 with 10,000. The bounded walk reads at most 256, then one head per key.
  expect(large.rowsRead).toBeLessThan(1_000);
  expect(large.rowsRead).toBeLessThanOrEqual(small.rowsRead + 50);

  // A claim that takes nothing says when to look again: when the head's lease runs out (a process
  // holding it that died is then taken over), found among the heads it read, not by a min() over
  // the 10,000 waiting messages (migration 15 kept an index on the lease's expiry for that, which
  // no claim could then update HOT: migration 22).
  expect(large.nextDueAt).toEqual(await leaseEnd('busy-1'));

  // Messages of other keys and without a key, queued behind the backlog, are claimed in parallel
  // with it; the busy key still waits for its head.
  await enqueue('other', 'facility-2', 3);
  await enqueue('loose', null, 2);
  // A key whose head waits for its retry stays blocked, past the walk as within it.
  await enqueue('later', 'facility-3', 2);
  await sql`update switchyard.inbound_messages set next_attempt_at = now() + interval '1 hour'
    where dedupe_key = 'later-1'`.execute(store.db);
  const behind = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(behind.rows.map((r) => r.dedupe_key).sort()).toEqual(['loose-1', 'loose-2', 'other-1']);
  // Something claimed: no wake-up time (the loop passes again at once).
  expect(behind.nextDueAt).toBeUndefined();
  // Nothing left to claim: the earliest of the heads' times, the busy head's lease (taken first;
  // the others' leases run out later, later-1's retry an hour away).
  const idle = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(idle.rows).toEqual([]);
  expect(idle.nextDueAt).toEqual(await leaseEnd('busy-1'));
  expect((await leaseEnd('other-1')).getTime()).toBeGreaterThan(idle.nextDueAt!.getTime());

  // Once the head is finished, the key's next message (and only it) is claimable.
  const busy = head[0];
  if (busy?.lock_token == null) throw new Error('the claimed head has no lease');
  expect(
    await inboundStore.finishInbound(store.db, busy.id, busy.lock_token, 'normalized', null, null, 1),
  ).toBe(true);
  const next = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(next.rows.map((r) => r.dedupe_key)).toEqual(['busy-2']);
});

it('a run claim takes consecutive due messages of each key, and nothing of a key while its run is leased', {
  timeout: 60_000,
}, async () => {
  await enqueue('run-a', 'run-key-a', 50);
  await enqueue('run-b', 'run-key-b', 4);
  // run-b-3 waits for a retry: the run of key b must stop before it, not skip over it.
  await sql`update switchyard.inbound_messages set next_attempt_at = now() + interval '1 hour'
    where dedupe_key = 'run-b-3'`.execute(store.db);
  await enqueue('run-c', null, 2);
  const drain = async () => {
    // What the first test left queued (one-key, other keys) is not this test's business.
    await sql`update switchyard.inbound_messages set status = 'failed'
      where status = 'received' and dedupe_key not like 'run-%'`.execute(store.db);
  };
  await drain();

  const { result, rowsRead } = await probe((trx) => inboundStore.claimInbound(trx, 60_000, 16, 32));
  const claimed = result.rows;
  const keys = claimed.map((r) => r.dedupe_key);
  const ofKey = (prefix: string) =>
    claimed
      .filter((r) => r.dedupe_key.startsWith(prefix))
      .sort((x, y) => Number(BigInt(x.seq) - BigInt(y.seq)))
      .map((r) => r.dedupe_key);
  expect(ofKey('run-a-')).toEqual(Array.from({ length: 32 }, (_, i) => `run-a-${i + 1}`));
  expect(ofKey('run-b-')).toEqual(['run-b-1', 'run-b-2']);
  expect(ofKey('run-c-').sort()).toEqual(['run-c-1', 'run-c-2']);
  expect(keys).toHaveLength(36);
  // One walk for the heads, then at most `run` rows of each key: O(limit × run), not O(backlog).
  expect(rowsRead).toBeLessThan(400);

  // For real this time: while a run is leased, no other claim takes anything of its key (not the
  // messages behind the run either), and a message given back untried keeps its attempt count.
  const { rows: first } = await inboundStore.claimInbound(store.db, 60_000, 16, 32);
  expect(first).toHaveLength(36);
  const again = await inboundStore.claimInbound(store.db, 60_000, 16, 32);
  expect(again.rows).toEqual([]);
  // Every head is leased by that claim, so it falls due when their (common) lease runs out;
  // run-b-3's retry an hour away waits behind its key's head and does not count.
  expect(again.nextDueAt).toEqual(await leaseEnd('run-a-1'));

  const a = first.filter((r) => r.dedupe_key.startsWith('run-a-'));
  const a1 = a.find((r) => r.dedupe_key === 'run-a-1')!;
  expect(await inboundStore.finishInbound(store.db, a1.id, a1.lock_token!, 'normalized', null, null, 1)).toBe(
    true,
  );
  const untried = a.filter((r) => r.dedupe_key !== 'run-a-1');
  await inboundStore.unclaimInbound(
    store.db,
    untried.map((r) => ({ id: r.id, lockToken: r.lock_token! })),
  );
  const attempts = await sql<{ attempts: number; lock_token: string | null }>`
    select attempts, lock_token from switchyard.inbound_messages where dedupe_key like 'run-a-%' and status = 'received'`.execute(
    store.db,
  );
  expect(attempts.rows).toHaveLength(49);
  expect(attempts.rows.every((r) => r.attempts === 0 && r.lock_token === null)).toBe(true);

  // The key's next run starts where the first one was given back.
  const { rows: next } = await inboundStore.claimInbound(store.db, 60_000, 16, 32);
  expect(next.sort((x, y) => Number(BigInt(x.seq) - BigInt(y.seq))).map((r) => r.dedupe_key)).toEqual(
    Array.from({ length: 32 }, (_, i) => `run-a-${i + 2}`),
  );
});

it("a vendor's API down: claims stop reading the messages waiting for a retry, and what is due behind one goes after it", {
  timeout: 120_000,
}, async () => {
  await sql`truncate switchyard.inbound_messages cascade`.execute(store.db);
  /**
   * `count` keys of one instance, each a head waiting for its retry `retryIn` from now (its
   * enrichment call failed) and a later message received since (due, never tried): the oldest
   * rows of the queue, none claimable.
   */
  const outage = (prefix: string, count: number, retryIn: string) =>
    sql`insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key,
        payload, attempts, next_attempt_at)
      select gen_random_uuid(), 'vendor-down', 'push', ${prefix} || i || case when j = 1 then '-head' else '-next' end,
        'notification', ${prefix} || i, '{}'::jsonb, case when j = 1 then 1 else 0 end,
        case when j = 1 then now() + ${retryIn}::interval else now() - interval '1 minute' end
      from generate_series(1, 2) as j, generate_series(1, ${count}::integer) as i
      order by j, i`.execute(store.db);
  /** Claims as the normalize workers do until the walk has met every waiting message once. */
  const settle = async (keys: number) => {
    for (let i = 0; i <= Math.ceil(keys / 256); i++) {
      expect((await inboundStore.claimInbound(store.db, 60_000, 16)).rows).toEqual([]);
    }
  };
  const timesOf = async (prefix: string): Promise<{ head: number; next: number }> => {
    const r = await sql<{ key: string; at: Date }>`select dedupe_key as key, next_attempt_at as at
      from switchyard.inbound_messages where ordering_key = ${prefix}`.execute(store.db);
    const at = (suffix: string) => r.rows.find((x) => x.key === `${prefix}${suffix}`)!.at.getTime();
    return { head: at('-head'), next: at('-next') };
  };

  await outage('appointment:', 5_000, '1 hour');
  await settle(5_000);
  // Another vendor's messages, with and without a key, behind the outage's in arrival order.
  await sql`insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key, payload)
    values (gen_random_uuid(), 'vendor-up', 'push', 'fresh-keyed', 'notification', 'facility-9', '{}'::jsonb),
      (gen_random_uuid(), 'vendor-up', 'push', 'fresh-loose', 'notification', null, '{}'::jsonb)`.execute(
    store.db,
  );
  await sql`analyze switchyard.inbound_messages`.execute(store.db);
  const fresh = await probeClaim(16);
  expect(fresh.claimed.sort()).toEqual(['fresh-keyed', 'fresh-loose']);
  // Walked in arrival order, the 10,000 waiting messages filled the walk's 256 rows and sent every
  // claim through the head of every key: ~15,000 rows read per claim.
  expect(fresh.rowsRead).toBeLessThan(100);
  // Put off to its head's retry, not later: it cannot go before the head, and goes right after it.
  const seven = await timesOf('appointment:7');
  expect(seven.next).toBe(seven.head);
  // Nothing claimable once they are done: the claim says when to look again, the earliest retry.
  for (const r of (await inboundStore.claimInbound(store.db, 60_000, 16)).rows) {
    await inboundStore.finishInbound(store.db, r.id, r.lock_token!, 'normalized', null, null, 1);
  }
  const idle = await probeClaim(16);
  expect(idle.claimed).toEqual([]);
  const earliest = await sql<{ at: Date }>`select min(next_attempt_at) as at from switchyard.inbound_messages
    where status = 'received'`.execute(store.db);
  expect(idle.nextDueAt).toEqual(earliest.rows[0]!.at);
  expect(idle.rowsRead).toBeLessThan(100);

  // Once a head's retry is due, it is claimed first, alone, and what waits behind it after it.
  await sql`truncate switchyard.inbound_messages cascade`.execute(store.db);
  await outage('soon:', 1, '1 second');
  await settle(1);
  const soon = await timesOf('soon:1');
  expect(soon.next).toBe(soon.head);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, soon.head - Date.now() + 50)));
  const { rows: head } = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(head.map((r) => r.dedupe_key)).toEqual(['soon:1-head']);
  expect((await inboundStore.claimInbound(store.db, 60_000, 16)).rows).toEqual([]);
  expect(
    await inboundStore.finishInbound(
      store.db,
      head[0]!.id,
      head[0]!.lock_token!,
      'normalized',
      null,
      null,
      1,
    ),
  ).toBe(true);
  const next = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(next.rows.map((r) => r.dedupe_key)).toEqual(['soon:1-next']);

  // A head whose retry fell due after the arrival of the message behind it comes later in due
  // order, right after that message: the walk, passing over the next messages of a key just found
  // blocked, must not pass over it.
  await sql`truncate switchyard.inbound_messages cascade`.execute(store.db);
  await outage('late:', 1, '-1 second');
  const late = await inboundStore.claimInbound(store.db, 60_000, 16);
  expect(late.rows.map((r) => r.dedupe_key)).toEqual(['late:1-head']);
});

it('a claim looks its messages up by key, not by reading the table (migration 29)', async () => {
  // A few thousand normalized messages (kept until retention) and one due: estimated at the run
  // function's 64 rows, the claim's update was planned as a hash join over a sequential scan of the
  // whole table, on every claim, while the table was this small (a clinic's week of traffic).
  await sql`truncate switchyard.inbound_messages cascade`.execute(store.db);
  await enqueue('done', 'facility-done', 3_000);
  await sql`update switchyard.inbound_messages set status = 'normalized', processed_at = now()`.execute(
    store.db,
  );
  await enqueue('due', 'facility-due', 1);
  await sql`analyze switchyard.inbound_messages`.execute(store.db);
  const { claimed, rowsRead } = await probeClaim(16);
  expect(claimed).toEqual(['due-1']);
  expect(rowsRead).toBeLessThan(50);
});
