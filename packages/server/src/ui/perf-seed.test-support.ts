/**
 * Manual check for docs/dashboard.md: seeds 100,000 events (and a delivery and an alias each) with
 * bulk SQL into a fresh database, then prints the plans of the dashboard's list and search queries.
 * Not a test (no timings are asserted). Run:
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node packages/server/src/ui/perf-seed.test-support.ts
 */
import { createTestDatabase } from '@switchyard/testing/postgres';
import { sql } from 'kysely';
import { openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';

// The tests' own database maker: on a shared server SWITCHYARD_TEST_DB_PREFIX names it as the tests'
// are named (it was `sy_dashboard_perf_<pid>` whatever the server's naming rule).
const database = await createTestDatabase({
  adminUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
});
const { db, close } = openDatabase(database.url, { max: 2 });
try {
  await migrate(db);
  const N = 100_000;
  await sql`insert into switchyard.subscriptions (id, kind, url) values ('crm', 'webhook', 'https://crm.example/h'), ('erp', 'webhook', 'https://erp.example/h')`.execute(
    db,
  );
  await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
    select case when i % 3 = 0 then 'dp-main' else 'cw-main' end, 'appointment', 'BK-' || i, md5(i::text)::uuid::text
    from generate_series(1, ${N}) i`.execute(db);
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select md5('e' || i)::uuid,
           (array['appointment.created','appointment.updated','appointment.cancelled','slot.blocked'])[1 + i % 4],
           case when i % 3 = 0 then 'dp-main' else 'cw-main' end,
           'appointment/' || md5(i::text)::uuid::text, now() - make_interval(secs => ${N} - i),
           jsonb_build_object('id', md5('e' || i)::uuid, 'type', 'appointment.created', 'data', '{}'::jsonb),
           now() - make_interval(secs => ${N} - i)
    from generate_series(1, ${N}) i`.execute(db);
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, created_at, completed_at)
    select md5('d' || e.sequence)::uuid, case when e.sequence % 2 = 0 then 'crm' else 'erp' end, e.id, e.sequence, e.subject,
           case when e.sequence % 50 = 0 then 'dead' else 'succeeded' end, e.created_at, e.created_at
    from switchyard.events e`.execute(db);
  await sql`analyze`.execute(db);

  const plans: [string, ReturnType<typeof sql>][] = [
    [
      'events, newest first (GET /v1/events)',
      sql`select * from switchyard.events e order by sequence desc limit 50`,
    ],
    [
      'events of one subject (GET /v1/events?subject=)',
      sql`select * from switchyard.events e where e.subject = ${'appointment/' + 'c4ca4238-a0b9-2382-0dcc-509a6f75849b'} order by sequence desc limit 50`,
    ],
    [
      'events of one source (GET /v1/events?source=)',
      sql`select * from switchyard.events e where e.source = 'dp-main' order by sequence desc limit 50`,
    ],
    [
      'events in a time range (GET /v1/events?since=&until=)',
      sql`select * from switchyard.events e where e.created_at >= now() - interval '2 hours' and e.created_at < now() - interval '1 hour' order by sequence desc limit 50`,
    ],
    [
      'vendor id → subjects (GET /v1/dashboard/events)',
      sql`select distinct entity || '/' || hub_id from switchyard.aliases where vendor_id = 'BK-4711' limit 100`,
    ],
    [
      'dead deliveries, all subscriptions (GET /v1/deliveries?status=dead)',
      sql`select * from switchyard.deliveries where status = 'dead' order by seq desc limit 51`,
    ],
    [
      'dead deliveries of one subscription',
      sql`select * from switchyard.deliveries where subscription_id = 'crm' and status = 'dead' order by seq desc limit 51`,
    ],
    [
      'open deliveries by status (overview)',
      sql`select status, count(*) from switchyard.deliveries where status in ('pending', 'in_flight', 'held', 'dead') group by status`,
    ],
    [
      'events per minute, last hour (overview)',
      sql`select date_trunc('minute', created_at), count(*) from switchyard.events where created_at >= now() - interval '60 minutes' group by 1`,
    ],
  ];
  // EXPLAIN takes no bind parameters: inline them as literals (the values are the script's own).
  const inline = (c: { sql: string; parameters: readonly unknown[] }) =>
    c.sql.replace(/\$(\d+)/g, (_, i) => `'${String(c.parameters[Number(i) - 1]).replaceAll("'", "''")}'`);
  for (const [label, query] of plans) {
    const compiled = query.compile(db);
    const r = await sql
      .raw<{ 'QUERY PLAN': string }>(
        `explain (analyze, costs off, timing off, summary on) ${inline(compiled)}`,
      )
      .execute(db);
    console.log(`\n### ${label}\n`);
    for (const row of r.rows) console.log(`    ${row['QUERY PLAN']}`);
  }
} finally {
  await close();
  await database.drop();
}
