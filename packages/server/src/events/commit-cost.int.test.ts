import { randomUUID } from 'node:crypto';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { claimInbound, storeInbound } from '../inbound/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { type Explained, explainEverything, planNodes } from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { oneEventEach } from './fixtures.test-support.ts';
import { commitNormalized } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
/** The plans auto_explain sent the sessions as notices (JSON, with actual rows and loops). */
const explained: Explained[] = [];

beforeAll(async () => {
  // One connection of each kind, so the settings above hold for every statement.
  database = openDatabase(pgdb.url(), { max: 1, planStable: 1 });
  await migrate(database.db);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('inst-1', 'test', 'push', 'x')`.execute(database.db);
  await sql`insert into switchyard.subscriptions (id, kind, url) values ('sub-1', 'webhook', 'http://x')`.execute(
    database.db,
  );
  await explainEverything(database.pool, explained);
  await explainEverything(database.planStablePool!, explained);
});

afterAll(async () => {
  await database?.close();
});

describe('the normalize commit', () => {
  it('does work in proportion to its batch: no node of its plan visits rows per row of another CTE', async () => {
    const n = 200;
    const bodyId = randomUUID();
    await storeInbound(
      database.db,
      Array.from({ length: n }, (_, i) => newInbound({ orderingKey: `key-${i}`, payload: { n: i }, bodyId })),
      [{ id: bodyId, body: Buffer.from('{}'), receivedAt: new Date() }],
      ['inst-1'],
    );
    const { rows: claimed } = await claimInbound(database.db, 30_000, n, 1);
    expect(claimed).toHaveLength(n);
    explained.length = 0;
    const a = oneEventEach(claimed, { stateKey: (m) => `k-${m.id}`, unless: null });
    const commit = await commitNormalized(database.db, a.messages, a.events, a.states, undefined, a.aliases);
    expect(commit.finished.size).toBe(n);
    expect(commit.fanned).toBe(n);
    const plan = explained.find((e) => e['Query Text'].includes('set status = v.status'));
    expect(plan, 'auto_explain sent the commit plan').toBeDefined();
    // Rows visited by each node over all its loops. A join of two CTEs by a nested loop (the
    // plan-stable session has no hash join) visits n × n: 40,000 here; each step of an O(n) plan
    // visits at most a few rows per event.
    const visits = planNodes(plan!.Plan).map((p) => ({
      node: `${p['Node Type']} ${p['CTE Name'] ?? p['Relation Name'] ?? p['Function Name'] ?? ''}`.trim(),
      visits: (p['Actual Rows'] ?? 0) * (p['Actual Loops'] ?? 1),
    }));
    expect(visits.filter((v) => v.visits > 2 * n)).toEqual([]);
  });
});
