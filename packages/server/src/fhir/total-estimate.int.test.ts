/**
 * `_total=estimate` on a large search is the database's estimate, not a count that reads every
 * entry of the kind's index for each page (fhir/read.ts `totalOf`, fhir/search.ts
 * `TOTAL_ESTIMATE_COUNTED_BELOW`); a selective one, and `_total=accurate`, are counted.
 */

import type { Bundle } from '@medplum/fhirtypes';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { API_KEY, type InProcessHub, startInProcessHub } from '../reliability/support.test-support.ts';
import { createReadToken } from './read-token.test-support.ts';
import { TOTAL_ESTIMATE_COUNTED_BELOW } from './search.ts';

const ADMIN = 'total-estimate-admin-token';
const ROWS = 12_000;
const DELETED = 4_000;
const database = useTestDatabase();
let h: InProcessHub;
let pool: pg.Pool;

beforeAll(async () => {
  h = await startInProcessHub({ databaseUrl: database.url(), adminToken: ADMIN });
  pool = new pg.Pool({ connectionString: database.url(), max: 1 });
  // 12,000 appointments of one instance, one in a thousand a no-show; the statistics taken and
  // kept (no autovacuum on the table), then a third of them deleted: the planner still reckons
  // with 12,000, a count finds 8,000, so the two tell apart which one a total is.
  await pool.query(
    `insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id,
       event_type, event_time, event_sequence, starts_at, envelope, updated_at)
     select 'appointment/' || h, 'appointment', h, 'bulk', gen_random_uuid(), 'appointment.created', now(), i,
       '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute',
       jsonb_build_object('data', jsonb_build_object('id', h,
         'status', case when i % 1000 = 1 then 'noshow' else 'booked' end)),
       now()
     from generate_series(1, $1::int) i, lateral (select md5('t' || i) as h) x`,
    [ROWS],
  );
  await pool.query('alter table switchyard.current_entities set (autovacuum_enabled = off)');
  await pool.query('analyze switchyard.current_entities');
  await pool.query(
    `delete from switchyard.current_entities where kind = 'appointment' and event_sequence > $1`,
    [ROWS - DELETED],
  );
}, 60_000);

afterAll(async () => {
  await pool?.end();
  await h?.close();
});

async function total(query: string, token = ADMIN): Promise<number | undefined> {
  const res = await fetch(`${h.base}/fhir/r4/Appointment?${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as Bundle).total;
}

it('_total=estimate of a large search is the estimate (12,000 reckoned, 8,000 there); accurate and _summary=count alone count', async () => {
  expect(ROWS).toBeGreaterThan(TOTAL_ESTIMATE_COUNTED_BELOW);
  expect(await total('_summary=count&_total=accurate')).toBe(ROWS - DELETED);
  expect(await total('_summary=count')).toBe(ROWS - DELETED);
  expect(await total('_count=1&_total=accurate')).toBe(ROWS - DELETED);
  // Before: the count, 8,000, for estimate as for accurate.
  const estimated = await total('_summary=count&_total=estimate');
  expect(estimated).toBeGreaterThanOrEqual(TOTAL_ESTIMATE_COUNTED_BELOW);
  expect(Math.abs(estimated! - ROWS)).toBeLessThan(ROWS / 10);
  expect(await total('_count=1&_total=estimate')).toBe(estimated);
});

it('_total=estimate of a selective search counts (an estimate below the bound can be far off)', async () => {
  // i % 1000 = 1 for i in 1..8,000: 8 no-shows left.
  expect(await total('status=noshow&_summary=count&_total=estimate')).toBe(8);
  expect(await total('status=noshow&_summary=count&_total=accurate')).toBe(8);
});

it("a read token limited to some sources is counted: the estimate of its view would come from every instance's rows", async () => {
  // The rows' instance, so the subscription's sources may name it.
  await h.hub.instances.upsert({ id: 'bulk', connector: 'reltest', settings: { apiKey: API_KEY } });
  await h.hub.subscriptions.create({
    id: 'ehr-bulk',
    url: 'http://127.0.0.1:9/none',
    eventTypes: ['appointment.*'],
    sources: ['bulk'],
    allowPrivateAddresses: true,
  });
  const { token } = (await createReadToken(h.base, ADMIN, 'ehr-bulk')).body;
  // All 8,000 are the token's (instance bulk), and still counted, not reckoned at 12,000.
  expect(await total('_summary=count&_total=estimate', token)).toBe(ROWS - DELETED);
});
