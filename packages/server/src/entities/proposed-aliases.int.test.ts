/**
 * The aliases a normalization made up without a statement of its own, stored by the normalize
 * commit (`storeProposedAliases` through `commitNormalized`): a chunk whose proposals all stand is
 * stored with them; a chunk with one refused (the key holds another hub id, its `unless` vendor id
 * has an alias, another transaction stored the key first) finishes none of its messages and stores
 * nothing it saw refused, while the other chunks of the commit are stored.
 */
import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { commitNormalized } from '../events/store.ts';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { claimInbound, storeInbound } from '../inbound/store.ts';
import { type Database, type Executor, openDatabase } from '../storage/db.ts';
import { lockWaiters, until } from '../storage/locks.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import type { ProposedAlias } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;

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
  await sql`delete from switchyard.aliases`.execute(database.db);
});

/** Stores and claims `n` messages; each is its own chunk (chunk i: message i, one event). */
async function claimed(n: number) {
  const bodyId = randomUUID();
  const items = Array.from({ length: n }, (_, i) => newInbound({ payload: { n: i }, bodyId }));
  await storeInbound(
    database.db,
    items,
    [{ id: bodyId, body: Buffer.from('{}'), receivedAt: new Date() }],
    ['inst-1'],
  );
  const { rows } = await claimInbound(database.db, 30_000, n);
  expect(rows).toHaveLength(n);
  return [...rows].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
}

/** Commits the claimed messages, chunk i being message i with one event naming `subjects[i]`. */
async function commit(
  rows: Awaited<ReturnType<typeof claimed>>,
  aliases: readonly ProposedAlias[],
  subjects: readonly string[],
) {
  return commitNormalized(
    database.db,
    rows.map((m, chunk) => ({
      id: m.id,
      lockToken: m.lock_token!,
      status: 'normalized' as const,
      reason: null,
      eventCount: 1,
      chunk,
    })),
    rows.map((m, i) => {
      const id = randomUUID();
      return {
        id,
        type: 'appointment.booked',
        source: 'inst-1',
        subject: subjects[i]!,
        time: new Date().toISOString(),
        envelope: { id, subject: subjects[i]!, data: {} },
        inboundMessageId: m.id,
      };
    }),
    [],
    undefined,
    aliases,
  );
}

const proposal = (chunk: number, vendorId: string, hubId: string, unless: string | null = null) => ({
  chunk,
  instanceId: 'inst-1',
  entity: 'appointment',
  vendorId,
  hubId,
  unless,
});

/** Stores an alias of the test instance's appointments, as another statement would. */
async function storeAlias(db: Executor, vendorId: string, hubId: string): Promise<void> {
  await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
    values ('inst-1', 'appointment', ${vendorId}, ${hubId})`.execute(db);
}

async function aliasRows(): Promise<{ vendor_id: string; hub_id: string }[]> {
  const r = await sql<{ vendor_id: string; hub_id: string }>`select vendor_id, hub_id from switchyard.aliases
    order by vendor_id`.execute(database.db);
  return r.rows;
}

async function eventsOf(inboundIds: readonly string[]): Promise<string[]> {
  const r = await sql<{ inbound_message_id: string }>`select inbound_message_id from switchyard.events
    where inbound_message_id = any(${inboundIds}::uuid[])`.execute(database.db);
  return r.rows.map((x) => x.inbound_message_id);
}

async function statusOf(id: string): Promise<string> {
  const r = await sql<{
    status: string;
  }>`select status from switchyard.inbound_messages where id = ${id}`.execute(database.db);
  return r.rows[0]!.status;
}

describe('aliases proposed to the normalize commit', () => {
  it('stores the proposals with the chunk, a link to a proposed id included', async () => {
    const rows = await claimed(1);
    const r = await commit(
      rows,
      [proposal(0, 'bk-1', 'hub-1'), proposal(0, 'bk-1-new', 'hub-1')],
      ['appointment/hub-1'],
    );
    expect(r.refused).toEqual(new Set());
    expect(r.finished).toEqual(new Set([rows[0]!.id]));
    expect(await aliasRows()).toEqual([
      { vendor_id: 'bk-1', hub_id: 'hub-1' },
      { vendor_id: 'bk-1-new', hub_id: 'hub-1' },
    ]);
  });

  it('refuses a chunk whose vendor id holds another hub id: nothing of it stored, the other chunk stored', async () => {
    await storeAlias(database.db, 'bk-old', 'hub-old');
    const rows = await claimed(2);
    const r = await commit(
      rows,
      [
        proposal(0, 'bk-old', 'hub-made-up'),
        proposal(0, 'bk-other', 'hub-made-up-2'),
        proposal(1, 'bk-2', 'hub-2'),
      ],
      ['appointment/hub-made-up', 'appointment/hub-2'],
    );
    expect(r.refused).toEqual(new Set([0]));
    expect(r.finished).toEqual(new Set([rows[1]!.id]));
    // What the snapshot held for the proposals' keys: the hub id the new try uses.
    expect(r.known).toEqual([
      { instance_id: 'inst-1', entity: 'appointment', vendor_id: 'bk-old', hub_id: 'hub-old' },
    ]);
    expect(await statusOf(rows[0]!.id)).toBe('received');
    expect(await eventsOf(rows.map((m) => m.id))).toEqual([rows[1]!.id]);
    // The refused chunk's other proposal was not stored either.
    expect(await aliasRows()).toEqual([
      { vendor_id: 'bk-2', hub_id: 'hub-2' },
      { vendor_id: 'bk-old', hub_id: 'hub-old' },
    ]);
  });

  it('lets a proposal stand whose alias already holds its hub id', async () => {
    await storeAlias(database.db, 'bk-linked', 'hub-l');
    const rows = await claimed(1);
    const r = await commit(rows, [proposal(0, 'bk-linked', 'hub-l')], ['appointment/hub-l']);
    expect(r.refused).toEqual(new Set());
    expect(r.finished).toEqual(new Set([rows[0]!.id]));
  });

  it('refuses a proposal whose `unless` vendor id has an alias, and stores one whose `unless` has none', async () => {
    await storeAlias(database.db, 'gate:k1', 'hub-gate');
    const rows = await claimed(2);
    const r = await commit(
      rows,
      [proposal(0, 'bk-a', 'hub-a', 'gate:k1'), proposal(1, 'bk-b', 'hub-b', 'gate:k2')],
      ['appointment/hub-a', 'appointment/hub-b'],
    );
    expect(r.refused).toEqual(new Set([0]));
    expect(r.finished).toEqual(new Set([rows[1]!.id]));
    expect(await aliasRows()).toEqual([
      { vendor_id: 'bk-b', hub_id: 'hub-b' },
      { vendor_id: 'gate:k1', hub_id: 'hub-gate' },
    ]);
  });

  it('refuses the later of two chunks proposing one vendor id', async () => {
    const rows = await claimed(2);
    const r = await commit(
      rows,
      [proposal(0, 'bk-twice', 'hub-first'), proposal(1, 'bk-twice', 'hub-second')],
      ['appointment/hub-first', 'appointment/hub-second'],
    );
    // One of them stands (which one is the insert's business), the other is refused.
    expect(r.refused.size).toBe(1);
    expect(r.finished.size).toBe(1);
    const [stored] = await aliasRows();
    const standing = stored!.hub_id === 'hub-first' ? 0 : 1;
    expect(r.refused).toEqual(new Set([1 - standing]));
    expect(r.finished).toEqual(new Set([rows[standing]!.id]));
  });

  it('refuses a proposal another transaction stored first, once that one commits', async () => {
    const rows = await claimed(1);
    const other = openDatabase(pgdb.url(), { max: 1 });
    let committing: ReturnType<typeof commit> | undefined;
    try {
      await other.db.transaction().execute(async (trx) => {
        await storeAlias(trx, 'bk-race', 'hub-theirs');
        committing = commit(rows, [proposal(0, 'bk-race', 'hub-mine')], ['appointment/hub-mine']);
        // The commit's insert waits for this transaction's row (not in its snapshot), which
        // commits when this callback returns.
        await until(async () => (await lockWaiters(database.db, 'transactionid')) > 0);
      });
      const r = await committing!;
      expect(r.refused).toEqual(new Set([0]));
      expect(r.finished).toEqual(new Set());
    } finally {
      await other.close();
    }
    expect(await statusOf(rows[0]!.id)).toBe('received');
    expect(await aliasRows()).toEqual([{ vendor_id: 'bk-race', hub_id: 'hub-theirs' }]);
  });
});
