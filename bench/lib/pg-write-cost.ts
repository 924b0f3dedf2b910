/**
 * Diagnostic (not a scenario): `node bench/lib/pg-write-cost.ts [events] [rate] [--waldump PG_WAL_DIR]` pushes `events`
 * Docplanner bookings (default 2000) at `rate` per second (default 200, open loop, as the latency
 * scenario does) through a hub with one subscription, stops the hub, and prints what Postgres wrote
 * for them: WAL bytes and records per event (`pg_current_wal_lsn()` and `pg_stat_wal`, server-wide:
 * run it under the bench lock so nothing else writes), per table the rows inserted, updated, HOT
 * updated and deleted per event, and per index its scans and size. The quick proxy for the write
 * cost of the hot tables (docs/pipeline.md, "Write cost per event"); CPU is `pnpm bench latency`'s.
 */
import { execFileSync } from 'node:child_process';
import { createTestDatabase } from '../../packages/testing/src/index.ts';
import { startChild } from './child.ts';
import { pg } from './deps.ts';
import { paced } from './load.ts';
import { waitUntil } from './result.ts';
import { startFastSubscriber } from './subscriber.ts';

const [events, rate] = [2, 3].map((i, n) => {
  const v = process.argv[i];
  return v === undefined || v.startsWith('--') ? [2000, 200][n]! : Number(v);
}) as [number, number];
const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(new URL('./hub-process.ts', import.meta.url), {
  BENCH_DATABASE_URL: db.url,
});
const subscriber = await startFastSubscriber();
const client = new pg.Client({ connectionString: db.url });
await client.connect();
const wal = async () =>
  (
    await client.query<{ lsn: string; records: string; fpi: string }>(
      'select pg_current_wal_lsn()::text as lsn, wal_records::text as records, wal_fpi::text as fpi from pg_stat_wal',
    )
  ).rows[0]!;
try {
  const { port } = await child.call<{ port: number }>('start');
  await child.call('subscribe', subscriber.url, 1);
  // Warm-up: connections opened, plans and caches made, tables no longer empty.
  await paced({ port, rate, total: 200, firstSeq: 1_000_000, tag: 8, onSend: () => {} });
  await waitUntil(() => subscriber.count >= 200, 'warm-up deliveries', 120_000);
  const before = await wal();
  const stats0 = await tableStats();
  await paced({ port, rate, total: events, firstSeq: 2_000_000, tag: 9, onSend: () => {} });
  await waitUntil(() => subscriber.count >= 200 + events, 'deliveries', 600_000);
  const after = await wal();
  // --waldump DIR: the WAL records of the window by kind (pg_waldump --stats=record), read at once,
  // before a checkpoint recycles the segments (needs read access to the server's pg_wal).
  const dumpAt = process.argv.indexOf('--waldump');
  if (dumpAt > 0) {
    const out = execFileSync(
      'pg_waldump',
      ['-p', process.argv[dumpAt + 1]!, '--stats=record', '-s', before.lsn, '-e', after.lsn],
      { encoding: 'utf8', env: { ...process.env, PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}` } },
    );
    console.log(
      out
        .split('\n')
        .filter((l) => /\/|Total|Type/.test(l) && !/^\S+\s+0\s/.test(l))
        .join('\n'),
    );
  }
  await child.stop();
  // Backends report their counters when they exit; give the collector a moment.
  await new Promise((r) => setTimeout(r, 1500));
  const stats1 = await tableStats();
  const walBytes = Number(
    (await client.query<{ d: string }>('select pg_wal_lsn_diff($1, $2)::text as d', [after.lsn, before.lsn]))
      .rows[0]!.d,
  );
  console.log(
    `${events} events at ${rate}/s: WAL ${(walBytes / events).toFixed(0)} bytes/event, ` +
      `${((Number(after.records) - Number(before.records)) / events).toFixed(1)} records/event, ` +
      `${((Number(after.fpi) - Number(before.fpi)) / events).toFixed(2)} full-page images/event`,
  );
  console.log(
    `WAL from ${before.lsn} to ${after.lsn} (pg_waldump --stats=record -s ${before.lsn} -e ${after.lsn})`,
  );
  const sizes = await client.query<{ name: string; row: string }>(
    `select 'inbound_messages' as name, avg(pg_column_size(t.*))::int::text || ' (payload ' || avg(pg_column_size(payload))::int
       || ', headers ' || avg(pg_column_size(headers))::int || ')' as row from switchyard.inbound_messages t
     union all select 'inbound_bodies', avg(pg_column_size(t.*))::int::text from switchyard.inbound_bodies t
     union all select 'events', avg(pg_column_size(t.*))::int::text || ' (envelope ' || avg(pg_column_size(envelope))::int || ')' from switchyard.events t
     union all select 'current_entities', avg(pg_column_size(t.*))::int::text from switchyard.current_entities t
     union all select 'deliveries', avg(pg_column_size(t.*))::int::text from switchyard.deliveries t
     union all select 'delivery_attempts', avg(pg_column_size(t.*))::int::text from switchyard.delivery_attempts t`,
  );
  console.log(
    `average stored row (bytes, compressed, TOAST pointers as stored): ${sizes.rows.map((r) => `${r.name} ${r.row}`).join('; ')}`,
  );
  console.log('\ntable                 ins/ev  upd/ev  hot/ev  del/ev  (per event, measured window)');
  for (const [name, s] of stats1.tables) {
    const b = stats0.tables.get(name) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
    const f = (v: number) => (v / events).toFixed(2).padStart(6);
    if (s.ins + s.upd + s.del - b.ins - b.upd - b.del === 0) continue;
    console.log(
      `${name.padEnd(20)}  ${f(s.ins - b.ins)}  ${f(s.upd - b.upd)}  ${f(s.hot - b.hot)}  ${f(s.del - b.del)}`,
    );
  }
  console.log('\nindex                                  scans (whole run)  size');
  for (const i of stats1.indexes)
    console.log(`${i.name.padEnd(40)} ${String(i.scans).padStart(10)}  ${i.size}`);
} finally {
  await client.end();
  await child.stop().catch(() => {});
  await subscriber.close();
  await db.drop();
  process.exit(0);
}

async function tableStats() {
  const t = await client.query<{ name: string; ins: string; upd: string; hot: string; del: string }>(
    `select relname as name, n_tup_ins::text as ins, n_tup_upd::text as upd, n_tup_hot_upd::text as hot,
       n_tup_del::text as del from pg_stat_user_tables where schemaname = 'switchyard' order by relname`,
  );
  const i = await client.query<{ name: string; scans: string; size: string }>(
    `select indexrelname as name, idx_scan::text as scans, pg_size_pretty(pg_relation_size(indexrelid)) as size
     from pg_stat_user_indexes where schemaname = 'switchyard'
       and relname in ('inbound_messages', 'inbound_bodies', 'events', 'deliveries', 'delivery_attempts',
                       'current_entities', 'entity_state', 'aliases')
     order by relname, indexrelname`,
  );
  return {
    tables: new Map(
      t.rows.map((r) => [
        r.name,
        { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot), del: Number(r.del) },
      ]),
    ),
    indexes: i.rows.map((r) => ({ name: r.name, scans: Number(r.scans), size: r.size })),
  };
}
