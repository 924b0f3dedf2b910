/**
 * The raw bodies' purge reads the old bodies it deletes and probes each one's messages by index,
 * however many messages are kept. Found at volume (1.2 million messages, 600,000 bodies): right
 * after the messages' purge each batch merged the bodies in uuid order with every entry of
 * inbound_body_idx (1.3 s a batch, 175 s for 450,000 bodies). Plans come from auto_explain with
 * actual rows (storage/explain.test-support.ts), as in events/purge-cost.int.test.ts.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase } from '../storage/db.ts';
import { type Explained, explainEverything, planNodes } from '../storage/explain.test-support.ts';
import { migrate } from '../storage/migrations.ts';
import { purgeInboundBodies } from './store.ts';

const pgdb = useTestDatabase();
let database: Database;
const explained: Explained[] = [];

/** Recent messages, each with its body: what a batch must not read. */
const KEPT = 5000;
const OLD = 300;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  // Old bodies (40 days) whose messages are gone; recent ones, each with its message.
  await sql`insert into switchyard.inbound_bodies (id, body, received_at)
    select gen_random_uuid(), '\\x7b7d'::bytea,
      case when i <= ${OLD} then now() - interval '40 days' else now() end
    from generate_series(1, ${OLD + KEPT}) i`.execute(database.db);
  await sql`insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, payload, status, body_id)
    select gen_random_uuid(), 'dp', 'default', b.id::text, 'appointment.updated', '{}', 'normalized', b.id
    from switchyard.inbound_bodies b where b.received_at > now() - interval '1 day'`.execute(database.db);
  await sql`analyze switchyard.inbound_bodies`.execute(database.db);
  await sql`analyze switchyard.inbound_messages`.execute(database.db);
  await explainEverything(database.pool, explained);
}, 60_000);

afterAll(async () => {
  await database?.close();
});

it('a batch reads its own bodies and probes their messages, not every message kept', async () => {
  explained.length = 0;
  const n = await purgeInboundBodies(database.db, new Date(Date.now() - 30 * 86_400_000), 100);
  expect(n).toBe(100);
  const purge = explained.find((e) => e['Query Text'].includes('delete from switchyard.inbound_bodies'));
  expect(purge).toBeDefined();
  const read = planNodes(purge!.Plan)
    .filter((node) => node['Relation Name'] === 'inbound_messages')
    .reduce((sum, node) => sum + (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1), 0);
  // The batch's 100 bodies have no message left; the 5,000 kept messages are not read.
  expect(read).toBeLessThan(KEPT / 10);
});
