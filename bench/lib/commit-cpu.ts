/**
 * Diagnostic (not a scenario): `node bench/lib/commit-cpu.ts [messages] [rounds] [batch]` measures
 * what the two statements that hand a delivery its work cost Postgres, each alone on its backend:
 *
 * - the normalize commit as the hub sends it: `batch` messages a commit (default 1, as at 200
 *   events/s, where every event is its own commit; a drain's commits carry up to 256), each with one
 *   event with a Docplanner-sized envelope, one state write and one proposed alias, fanned out to one
 *   webhook subscription with up to 8 deliveries a commit leased (so the statement returns the leased
 *   deliveries, their subscription and their event), `messages` of them (default 2,000) in all;
 * - the delivery claim as a drain sends it: as many pending deliveries again, claimed 64 at a time.
 *
 * The messages are stored and claimed first; the backend's CPU (/proc, utime + stime) is read over
 * each phase alone, `rounds` times (default 3) on fresh tables. Unlike `pnpm bench latency`'s
 * per-stage figure, nothing else shares the backend or the window, so two builds compare within a
 * few percent in any hour: how bench/analysis.md's session-34 section measured the leased and
 * claimed deliveries as `json`. Run with batch 1, 16, 64 and 256, it separates a commit's fixed
 * cost from its cost per message (session 35).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { claimDeliveryWork } from '../../packages/server/src/deliveries/store.ts';
import { oneEventEach } from '../../packages/server/src/events/fixtures.test-support.ts';
import { commitNormalized, type NewEvent } from '../../packages/server/src/events/store.ts';
import { newInbound } from '../../packages/server/src/inbound/fixtures.test-support.ts';
import { claimInbound, storeInbound } from '../../packages/server/src/inbound/store.ts';
import { openDatabase } from '../../packages/server/src/storage/db.ts';
import { migrate } from '../../packages/server/src/storage/migrations.ts';
import { createTestDatabase } from '../../packages/testing/src/index.ts';
import { cpuMs } from './proc-cpu.ts';

const messages = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 3);
/** Messages a normalize commit carries. */
const batch = Number(process.argv[4] ?? 1);
/** Deliveries a claim takes at once: a drain's claim with the deliver worker's 64 slots free (`deliveryConcurrency`). */
const CLAIM_BATCH = 64;
/** Settles every in-flight delivery as attempted. */
const SETTLE_IN_FLIGHT = `update switchyard.deliveries set status = 'succeeded', locked_until = null, lock_token = null,
  completed_at = now() where status = 'in_flight'`;
/** Settles the in-flight deliveries of `$1` (their ids) as attempted. */
const SETTLE = `${SETTLE_IN_FLIGHT} and id = any($1::uuid[])`;

/** The Docplanner push every envelope is made from (read once). */
const push = JSON.parse(
  readFileSync(
    new URL('../../packages/connectors/docplanner/fixtures/slot-booked.json', import.meta.url),
    'utf8',
  ),
);

/** A normalized Docplanner booking's envelope as the hub stores it (~1.9 kB of JSON). */
function envelope(): NewEvent['envelope'] {
  return {
    specversion: '1.0',
    id: randomUUID(),
    type: 'appointment.created',
    source: 'docplanner/docplanner-main',
    subject: `appointment/${randomUUID()}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { appointment: push.data, vendor: { name: 'docplanner', notification: push.name } },
  };
}

for (let round = 1; round <= rounds; round++) {
  const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
  const database = openDatabase(db.url, { max: 1, planStable: 1 });
  try {
    await migrate(database.db);
    await database.pool.query(`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
      values ('inst-1', 'test', 'push', 'x')`);
    await database.pool.query(
      `insert into switchyard.subscriptions (id, kind, url) values ('sub-1', 'webhook', 'http://x')`,
    );
    for (let i = 0; i < 2 * messages; i += 500) {
      const batch = Array.from({ length: Math.min(500, 2 * messages - i) }, (_, j) =>
        newInbound({ orderingKey: `key-${i + j}`, payload: envelope() }),
      );
      await storeInbound(database.db, batch, [], ['inst-1']);
    }
    const { rows: claimed } = await claimInbound(database.db, 600_000, 2 * messages, 1);
    const client = await database.planStablePool!.connect();
    const pid = Number((await client.query('select pg_backend_pid() as pid')).rows[0].pid);
    client.release();
    let leased = 0;
    let commits = 0;
    const run = async (rows: typeof claimed, limit: number) => {
      for (let i = 0; i < rows.length; i += batch) {
        const a = oneEventEach(rows.slice(i, i + batch), { stateKey: (x) => `k-${x.id}`, unless: null });
        for (const e of a.events) e.envelope = envelope();
        const r = await commitNormalized(
          database.db,
          a.messages,
          a.events,
          a.states,
          { limit, marginMs: 15_000 },
          a.aliases,
        );
        leased += r.leased.length;
        commits++;
      }
    };
    // The first commits make the cached plan and warm the caches; not measured.
    const warm = Math.max(100, 2 * batch);
    await run(claimed.slice(0, warm), 8);
    leased = 0;
    commits = 0;
    let before = cpuMs(pid)!;
    let started = performance.now();
    await run(claimed.slice(warm, messages), 8);
    const backend = cpuMs(pid)! - before;
    const measured = messages - warm;
    const measuredCommits = commits;
    const roundTrip = performance.now() - started;
    // The rest committed with nothing leased: pending deliveries for the claims below, the leased
    // ones settled first (as attempted), so that the claims find only the pending ones due.
    await database.pool.query(SETTLE_IN_FLIGHT);
    await run(claimed.slice(messages), 0);
    await claimDeliveryWork(database.db, 15_000, 50);
    let claimedWork = 0;
    before = cpuMs(pid)!;
    started = performance.now();
    let settling = 0;
    for (let got = -1; got !== 0; ) {
      const work = await claimDeliveryWork(database.db, 15_000, CLAIM_BATCH);
      got = work.length;
      claimedWork += got;
      // Settled as a drain's attempts settle them, on the other connection (not measured): a claim
      // walks past the in-flight deliveries at the head of the due index.
      const t = performance.now();
      await database.pool.query(SETTLE, [work.map((w) => w.delivery.id)]);
      settling += performance.now() - t;
    }
    const claims = cpuMs(pid)! - before;
    console.log(
      `round ${round}: ${measured} messages in ${measuredCommits} commits of ${batch}, backend CPU ` +
        `${((backend / measured) * 1000).toFixed(0)} µs a message (${((backend / measuredCommits) * 1000).toFixed(0)} µs a commit), ` +
        `round trip ${((roundTrip / measured) * 1000).toFixed(0)} µs a message, ${leased} leased; ` +
        `${claimedWork} deliveries claimed ${CLAIM_BATCH} at a time, backend CPU ${((claims / claimedWork) * 1000).toFixed(0)} µs a delivery, ` +
        `${(((performance.now() - started - settling) / claimedWork) * 1000).toFixed(0)} µs round trip a delivery`,
    );
  } finally {
    await database.close();
    await db.drop();
  }
}
