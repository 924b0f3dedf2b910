/**
 * Migration 21: fewer index entries per event, and statement-level cascades in place of two
 * foreign keys; migration 22: a HOT inbound claim (docs/pipeline.md, "Write cost per event").
 *
 * Every index of the hot tables is paid on each insert and on each non-HOT update, so the list is
 * pinned here: adding one is a decision to make with `bench/lib/pg-write-cost.ts` beside it. The
 * cascades the foreign keys did (deleting an event deletes its deliveries, deleting a delivery its
 * attempts) must still happen, whichever statement deletes.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import * as inboundStore from '../inbound/store.ts';
import { useMigratedDatabase } from './database.test-support.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

beforeAll(async () => {
  await sql`insert into switchyard.subscriptions (id, kind, url) values
    ('sub-a', 'webhook', 'https://example.test/a'), ('sub-b', 'webhook', 'https://example.test/b')`.execute(
    store.db,
  );
});

async function indexes(table: string): Promise<string[]> {
  const r = await sql<{ name: string }>`select indexname as name from pg_indexes
    where schemaname = 'switchyard' and tablename = ${table} order by indexname`.execute(store.db);
  return r.rows.map((x) => x.name);
}

it('keeps only the indexes a statement of the hot tables reads', async () => {
  expect(await indexes('inbound_messages')).toEqual([
    'inbound_body_idx',
    'inbound_due_seq_idx',
    'inbound_finished_idx',
    'inbound_messages_instance_id_dedupe_key_key',
    'inbound_messages_pkey',
    'inbound_messages_seq_key',
    'inbound_ordering_idx',
    'inbound_queue_idx',
    'inbound_settled_idx',
    'inbound_unkeyed_due_idx',
  ]);
  expect(await indexes('events')).toEqual([
    'events_created_idx',
    'events_id_key',
    'events_inbound_idx',
    'events_pkey',
    'events_source_idx',
    'events_subject_idx',
  ]);
  expect(await indexes('deliveries')).toEqual([
    'deliveries_completed_idx',
    'deliveries_dead_idx',
    'deliveries_due_seq_idx',
    'deliveries_event_idx',
    'deliveries_fanout_uq',
    'deliveries_line_idx',
    'deliveries_pkey',
    'deliveries_replayed_idx',
    'deliveries_seq_key',
    'deliveries_settled_idx',
    'deliveries_sub_idx',
  ]);
});

/** An event with one delivery to each subscription, each with one attempt; returns the event id. */
async function eventWithDeliveries(name: string): Promise<string> {
  const r = await sql<{ id: string }>`with ev as (
      insert into switchyard.events (id, type, source, subject, time, envelope)
      values (gen_random_uuid(), 'appointment.created', 'test', ${`appointment/${name}`}, now(), '{}')
      returning id, sequence, subject),
    d as (
      insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status)
      select gen_random_uuid(), s.id, ev.id, ev.sequence, ev.subject, 'succeeded'
      from ev cross join (values ('sub-a'), ('sub-b')) as s(id)
      returning id),
    a as (
      insert into switchyard.delivery_attempts (delivery_id, attempt, started_at, outcome)
      select d.id, 1, now(), 'success' from d)
    select id from ev`.execute(store.db);
  return r.rows[0]!.id;
}

async function counts(eventId: string): Promise<{ deliveries: number; attempts: number }> {
  const r = await sql<{ deliveries: number; attempts: number }>`select
      (select count(*)::int from switchyard.deliveries where event_id = ${eventId}::uuid) as deliveries,
      (select count(*)::int from switchyard.delivery_attempts a
       where not exists (select 1 from switchyard.deliveries d where d.id = a.delivery_id)) as attempts`.execute(
    store.db,
  );
  return r.rows[0]!;
}

it('compresses every stored document with lz4 when the server has it (migrations 8, 11, 30)', async () => {
  const lz4 = await sql<{ ok: boolean }>`select 'lz4' = any(enumvals) as ok from pg_settings
    where name = 'default_toast_compression'`.execute(store.db);
  const r = await sql<{ col: string; method: string }>`
    select c.relname || '.' || a.attname as col, a.attcompression as method
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'switchyard' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
      and a.attcompression <> '' order by 1`.execute(store.db);
  const documents = [
    'current_entities.envelope',
    'events.envelope',
    'gate_requests.envelope',
    'inbound_bodies.body',
    'inbound_messages.headers',
    'inbound_messages.meta',
    'inbound_messages.payload',
  ];
  // Builds without lz4 keep pglz (no column names a method).
  expect(r.rows).toEqual(lz4.rows[0]?.ok ? documents.map((col) => ({ col, method: 'l' })) : []);
});

it('deleting events deletes their deliveries and those deliveries’ attempts', async () => {
  const gone = await eventWithDeliveries('gone');
  const kept = await eventWithDeliveries('kept');
  expect(await counts(gone)).toEqual({ deliveries: 2, attempts: 0 });
  await sql`delete from switchyard.events where id = ${gone}::uuid`.execute(store.db);
  // No delivery of the deleted event, and no attempt without its delivery.
  expect(await counts(gone)).toEqual({ deliveries: 0, attempts: 0 });
  expect((await counts(kept)).deliveries).toBe(2);
});

it('deleting a subscription still cascades to its deliveries and their attempts', async () => {
  const id = await eventWithDeliveries('sub');
  await sql`delete from switchyard.subscriptions where id = 'sub-b'`.execute(store.db);
  expect(await counts(id)).toEqual({ deliveries: 1, attempts: 0 });
  const left = await sql<{ n: number }>`select count(*)::int as n from switchyard.delivery_attempts a
      join switchyard.deliveries d on d.id = a.delivery_id where d.event_id = ${id}::uuid`.execute(store.db);
  expect(left.rows[0]!.n).toBe(1);
});

it('claims an inbound message with a HOT update, on a page filled by inserts', async () => {
  // A HOT update needs no index to read a changed column (the claim sets locked_until, lock_token
  // and attempts) and room for the new version on the row's page: the fillfactor keeps it on pages
  // the inserts filled. Rows of ~1.7 kB, as a Docplanner push's: four fit a page without it.
  const counts = await store.db
    .transaction()
    .execute(async (trx) => {
      await sql`insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, payload)
        select gen_random_uuid(), 'hot', 'push', 'hot-' || i, 'notification',
          jsonb_build_object('filler', (select string_agg(md5(i::text || '-' || j), '') from generate_series(1, 48) j))
        from generate_series(1, 12) as i`.execute(trx);
      const claim = await inboundStore.claimInbound(trx, 30_000, 1);
      expect(claim.rows.map((r) => r.dedupe_key)).toEqual(['hot-1']);
      const r = await sql<{ upd: number; hot: number; page: number; pages: number }>`select
          (select n_tup_upd::int from pg_stat_xact_user_tables where relid = 'switchyard.inbound_messages'::regclass) as upd,
          (select n_tup_hot_upd::int from pg_stat_xact_user_tables where relid = 'switchyard.inbound_messages'::regclass) as hot,
          (select (ctid::text::point)[0]::int from switchyard.inbound_messages where dedupe_key = 'hot-1') as page,
          (select count(distinct (ctid::text::point)[0])::int from switchyard.inbound_messages where dedupe_key like 'hot-%') as pages`.execute(
        trx,
      );
      throw new Rollback(r.rows[0]!);
    })
    .catch((e: unknown) => {
      if (e instanceof Rollback) return e.counts;
      throw e;
    });
  // The claimed version stayed on the first page, among the other rows inserted there.
  expect(counts).toEqual({ upd: 1, hot: 1, page: 0, pages: 4 });
});

class Rollback extends Error {
  readonly counts: { upd: number; hot: number; page: number; pages: number };
  constructor(counts: { upd: number; hot: number; page: number; pages: number }) {
    super('rollback');
    this.counts = counts;
  }
}
