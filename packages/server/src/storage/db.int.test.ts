import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimInbound, type NewInbound, storeInbound } from '../inbound/store.ts';
import { type Database, jsonBatch, openDatabase } from './db.ts';
import { migrate } from './migrations.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  // One connection of each kind: pg_prepared_statements shows what each session planned.
  database = openDatabase(pgdb.url(), { max: 1, planStable: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(database.db);
});

afterAll(async () => {
  await database?.close();
});

function batch(n: number): { items: NewInbound[]; bodies: { id: string; body: Buffer; receivedAt: Date }[] } {
  const bodyId = randomUUID();
  const items = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    instanceId: 'inst-1',
    route: 'r',
    dedupeKey: randomUUID(),
    vendorType: 't',
    orderingKey: `k${i % 3}`,
    occurredAt: null,
    gate: false,
    payload: { n: i },
    meta: null,
    bodyId,
    headers: null,
    sourceIp: null,
    origin: 'push' as const,
    receivedAt: new Date(),
  }));
  return { items, bodies: [{ id: bodyId, body: Buffer.from('{}'), receivedAt: new Date() }] };
}

async function store(n: number): Promise<void> {
  const b = batch(n);
  await storeInbound(database.db, b.items, b.bodies, ['inst-1']);
}

/** How the prepared statement whose text contains `fragment` was planned so far on a session. */
async function plans(
  fragment: string,
  on: 'main' | 'stable' = 'main',
): Promise<{ name: string; generic: number; custom: number } | undefined> {
  const text = `select name, generic_plans, custom_plans from pg_prepared_statements
    where strpos(statement, $1) > 0 and statement not like '%pg_prepared_statements%'`;
  const pool = on === 'main' ? database.pool : database.planStablePool!;
  const { rows } = await pool.query<Row>(text, [fragment]);
  expect(rows.length).toBeLessThan(2);
  const p = rows[0];
  return p && { name: p.name, generic: Number(p.generic_plans), custom: Number(p.custom_plans) };
}
type Row = { name: string; generic_plans: string; custom_plans: string };

/** Plan nodes of a JSON plan, depth first. */
function nodes(plan: Record<string, unknown>): Record<string, unknown>[] {
  return [plan, ...((plan.Plans as Record<string, unknown>[] | undefined) ?? []).flatMap(nodes)];
}

const INSERT = 'insert into switchyard.inbound_messages';
const CLAIM = 'claimable_inbound_runs';

describe('plan cache modes', () => {
  it('runs a plan-stable statement on its cached generic plan and plans the others every time', async () => {
    for (let i = 0; i < 3; i++) {
      await store(2);
      await claimInbound(database.db, 30_000, 4, 2);
    }
    expect(await plans(INSERT, 'stable')).toMatchObject({ generic: 3, custom: 0 });
    expect(await plans(INSERT, 'main')).toBeUndefined();
    expect(await plans(CLAIM, 'main')).toMatchObject({ generic: 0, custom: 3 });

    // Inside a transaction it is planned like any other statement, on the transaction's connection.
    const b = batch(1);
    await database.db.transaction().execute((trx) => storeInbound(trx, b.items, b.bodies, []));
    expect(await plans(INSERT, 'main')).toMatchObject({ generic: 0, custom: 1 });
    expect(await plans(INSERT, 'stable')).toMatchObject({ generic: 3, custom: 0 });
  });

  it('keeps the index for statements whose cached plan was made while the tables were empty', async () => {
    // The failure that made sessions plan every execution: plans cached while the queue was empty
    // (never analyzed), the queue filling without an ANALYZE, each claim then scanning all of it.
    await sql`truncate switchyard.inbound_messages, switchyard.inbound_bodies`.execute(database.db);
    for (let i = 0; i < 8; i++) {
      await store(2);
      await claimInbound(database.db, 30_000, 4, 2);
    }
    await sql`insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, payload, status, ordering_key)
      select gen_random_uuid(), 'inst-1', 'r', 'bulk-' || g, 't', '{}', 'normalized', 'k' || (g % 500)
      from generate_series(1, 50000) g`.execute(database.db);

    const claim = (await plans(CLAIM, 'main'))!;
    const c = await sql<ExplainRow>`
      ${sql.raw(`explain (analyze, format json) execute ${claim.name}(30, 4, 2)`)}`.execute(database.db);
    const claimNodes = nodes(c.rows[0]!['QUERY PLAN'][0].Plan);
    expect(claimNodes.filter((n) => n['Node Type'] === 'Seq Scan')).toEqual([]);
    expect(claimNodes.some((n) => n['Index Name'] === 'inbound_messages_pkey')).toBe(true);

    // The plan-stable insert: its generic plan, cached at the empty tables and still in use, reads
    // no table but the instances (sized by configuration), so large queue tables change nothing.
    const insert = (await plans(INSERT, 'stable'))!;
    await store(2);
    expect(await plans(INSERT, 'stable')).toMatchObject({ generic: insert.generic + 1, custom: 0 });
    const e = await database.planStablePool!.query<ExplainRow>(
      `explain (format json) execute ${insert.name}(${Array.from({ length: 23 }, () => 'null').join(', ')})`,
    );
    const scans = nodes(e.rows[0]!['QUERY PLAN'][0].Plan).filter(
      (n) => typeof n['Relation Name'] === 'string' && n['Node Type'] !== 'ModifyTable',
    );
    expect(scans.map((n) => n['Relation Name'])).toEqual(['connector_instances']);
  });
});

type ExplainRow = { 'QUERY PLAN': [{ Plan: Record<string, unknown> }] };

describe('jsonBatch', () => {
  it('is the jsonb[] of its texts: same values in the same order, SQL NULL apart from jsonb null', async () => {
    const texts = [
      JSON.stringify({ a: 'zażółć "gęślą" \\ jaźń', b: [1, null, { c: '}]' }] }),
      null,
      'null',
      JSON.stringify('a "string", with ] and ['),
      '[]',
      '17',
      JSON.stringify([[], [null]]),
    ];
    // Array equality compares element by element, a NULL element equal only to a NULL one.
    const r = await sql<{ same: boolean; nulls: boolean[]; values: unknown[] }>`
      select ${jsonBatch(texts)} is not distinct from ${texts}::jsonb[] as same,
        array(select x is null from unnest(${jsonBatch(texts)}) as x) as nulls,
        to_jsonb(${jsonBatch(texts)}) as values`.execute(database.db);
    expect(r.rows[0]).toEqual({
      same: true,
      nulls: texts.map((t) => t === null),
      values: texts.map((t) => (t === null ? null : JSON.parse(t))),
    });
  });

  it('is an empty jsonb[] for no texts', async () => {
    const r = await sql<{ n: number }>`select cardinality(${jsonBatch([])})::int as n`.execute(database.db);
    expect(r.rows[0]).toEqual({ n: 0 });
  });
});
