/**
 * Stores of one ordering key, one after the other (`storeInbound`'s key locks). The normalize
 * claim takes a key's first `received` message when it is not leased; it sees only committed rows.
 * Had a later-numbered message of a key committed before an earlier one (two ingest statements in
 * flight, two processes, a pull beside a push), it was claimed, and the earlier one, committed
 * while it was being normalized, became the key's unleased head and was claimed too: two messages
 * of one entity normalized at once.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { advisoryLockWaiters, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { newInbound } from './fixtures.test-support.ts';
import { claimInbound, type NewInbound, storeInbound } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 4, planStable: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(database.db);
});
afterAll(async () => {
  await database?.close();
});
afterEach(async () => {
  for (const commit of stillOpen.splice(0)) await commit();
  await sql`delete from switchyard.inbound_messages`.execute(database.db);
});

function message(orderingKey: string | null): NewInbound {
  return newInbound({ orderingKey });
}

/** Open transactions of {@link holdOpen}, committed after each test. */
const stillOpen: (() => Promise<void>)[] = [];

/** Stores `items` in a transaction left open until the returned `commit` (a pull's transaction). */
async function holdOpen(items: NewInbound[]): Promise<{ commit: () => Promise<void> }> {
  let release!: () => void;
  const open = new Promise<void>((r) => {
    release = r;
  });
  let stored = false;
  const done = database.db.transaction().execute(async (trx) => {
    await storeInbound(trx, items, [], []);
    stored = true;
    await open;
  });
  const commit = async () => {
    release();
    await done;
  };
  stillOpen.push(commit);
  await until(() => stored);
  return { commit };
}

const waitingForAdvisoryLock = () => advisoryLockWaiters(database.db);

/** How many messages of `key` are leased right now (being normalized). */
async function leasedOf(key: string): Promise<number> {
  const r = await sql<{ n: number }>`select count(*)::int as n from switchyard.inbound_messages
    where ordering_key = ${key} and status = 'received' and lock_token is not null`.execute(database.db);
  return r.rows[0]!.n;
}

it('a second store of a key waits for the first one’s commit: never two messages of one key leased at once', async () => {
  const earlier = message('booking/1');
  const later = message('booking/1');
  const held = await holdOpen([earlier]);
  let stored = false;
  const racing = storeInbound(database.db, [later], [], []).then(() => {
    stored = true;
  });
  // Either it waits for the key (the lock) or it has committed (no lock): decide after either.
  await until(async () => stored || (await waitingForAdvisoryLock()) === 1);
  const during = await claimInbound(database.db, 30_000, 10);
  expect(during.rows.map((r) => r.id)).toEqual([]);
  await held.commit();
  await racing;
  const after = await claimInbound(database.db, 30_000, 10);
  expect(after.rows.map((r) => r.id)).toEqual([earlier.id]);
  expect(await leasedOf('booking/1')).toBe(1);
  // Arrival order is commit order: the earlier message has the smaller seq.
  const seqs = await sql<{
    id: string;
    seq: string;
  }>`select id, seq from switchyard.inbound_messages order by seq`.execute(database.db);
  expect(seqs.rows.map((r) => r.id)).toEqual([earlier.id, later.id]);
});

it('stores of other keys and of messages without a key do not wait', async () => {
  const held = await holdOpen([message('booking/1'), message('booking/2')]);
  // Other keys (one shared with nothing held), none at all, and a batch mixing them.
  await storeInbound(database.db, [message('booking/3')], [], []);
  await storeInbound(database.db, [message(null), message(null)], [], []);
  await storeInbound(database.db, [message('booking/4'), message(null), message('booking/3')], [], []);
  expect(await waitingForAdvisoryLock()).toBe(0);
  await held.commit();
  const r = await sql<{ n: number }>`select count(*)::int as n from switchyard.inbound_messages`.execute(
    database.db,
  );
  expect(r.rows[0]!.n).toBe(8);
});

it('two statements sharing keys in opposite orders do not deadlock', async () => {
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      storeInbound(
        database.db,
        i % 2 === 0 ? [message('a'), message('b'), message('c')] : [message('c'), message('b'), message('a')],
        [],
        [],
      ),
    ),
  );
  expect(results.flat()).toHaveLength(60);
});

it('a lease waits for another statement storing its key, and sees its message once it commits: not leased', async () => {
  const earlier = message('booking/5');
  const later = message('booking/5');
  const held = await holdOpen([earlier]);
  let stored: Awaited<ReturnType<typeof storeInbound>> | undefined;
  const racing = storeInbound(database.db, [later], [], [], { ms: 30_000, ids: new Set([later.id]) }).then(
    (r) => {
      stored = r;
    },
  );
  await until(async () => stored !== undefined || (await waitingForAdvisoryLock()) === 1);
  await held.commit();
  await racing;
  // Read after the lock, past the statement's snapshot (migration 24): the earlier message waits.
  expect(stored!.map((s) => [s.id, s.lock_token])).toEqual([[later.id, null]]);
  expect(await leasedOf('booking/5')).toBe(0);
});

it('leases what it was asked to when nothing of the key waits, as the claim leases', async () => {
  const first = message('booking/6');
  const keyless = message(null);
  const second = message('booking/6');
  const stored = await storeInbound(database.db, [first, keyless, second], [], [], {
    ms: 30_000,
    ids: new Set([first.id, keyless.id]),
  });
  expect(stored.map((s) => [s.id, s.lock_token !== null])).toEqual([
    [first.id, true],
    [keyless.id, true],
    [second.id, false],
  ]);
  const r = await sql<{ id: string; attempts: number; lease_s: number }>`
    select id, attempts, extract(epoch from locked_until - now())::float8 as lease_s
    from switchyard.inbound_messages where lock_token is not null order by seq`.execute(database.db);
  expect(r.rows.map((x) => [x.id, x.attempts])).toEqual([
    [first.id, 1],
    [keyless.id, 1],
  ]);
  for (const x of r.rows) expect(x.lease_s).toBeGreaterThan(25);
  // The claim takes neither leased message, nor the second of the key behind the first.
  expect((await claimInbound(database.db, 30_000, 10)).rows).toEqual([]);
});
