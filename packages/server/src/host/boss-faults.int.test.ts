/**
 * pg-boss's own schedule and maintenance statements while Postgres is out of disk space (a real
 * 53100 through `injectSqlstate`), in a hub that runs the retention schedule: its cron pass (the
 * claim on `switchyard_queue.version`, then the scheduled jobs' inserts) runs as pg-boss starts,
 * its other timers every 45 s to 5 min (`host/boss.ts`). What fails must be said once, naming the
 * condition, without a stack, and the hub must go on with its work.
 */
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, expect, it } from 'vitest';
import { acme, eventually, makeHub, push, setupInstance } from '../pipeline/fixtures.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { injectSqlstate, SQLSTATE_FAULTS } from '../storage/sqlstate-fault.test-support.ts';

const database = useTestDatabase();
const lines: { level: number; msg: string }[] = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
const hubs: Hub[] = [];

async function startHub(): Promise<Hub> {
  const hub = await makeHub(database.url(), {
    connectors: [acme],
    logger,
    options: { queue: true, workers: true, retention: { cron: '* * * * *' } },
  });
  hubs.push(hub);
  await hub.start();
  return hub;
}

afterAll(async () => {
  for (const hub of hubs) await hub.stop().catch(() => {});
});

it('a hub whose pg-boss cannot write its schedule claim, jobs or versions starts, says so once without a stack, and stores and normalizes pushes', {
  timeout: 60_000,
}, async () => {
  // pg-boss's schema, its queue and the retention schedule, made by a first start.
  const first = await startHub();
  await setupInstance(first);
  await first.stop();
  const admin = new pg.Pool({ connectionString: database.url(), max: 1 });
  // The cron pass is due again (its claim moves cron_on only once its interval has passed).
  await admin.query('update switchyard_queue.version set cron_on = null');
  const faults = await Promise.all([
    injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      schema: 'switchyard_queue',
      table: 'version',
      on: ['update'],
    }),
    injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      schema: 'switchyard_queue',
      table: 'job',
      on: ['insert', 'update', 'delete'],
    }),
  ]);
  const from = lines.length;
  let hub: Hub;
  let claimRefused = 0;
  try {
    hub = await startHub();
    // The cron pass that starts with pg-boss met the fault (its claim on `version`).
    claimRefused = await eventually(async () => {
      const n = await faults[0]!.raised();
      return n >= 1 ? n : undefined;
    });
    // The pipeline does not go through pg-boss: a push is stored and normalized meanwhile.
    const r = await hub.ingest('acme-1', push({ id: 'boss-full-1', type: 'created' }));
    expect(r).toMatchObject({ ok: true });
    await eventually(async () => {
      const row = await admin.query(
        `select status from switchyard.inbound_messages where instance_id = 'acme-1'`,
      );
      return row.rows[0]?.status === 'normalized' ? true : undefined;
    });
  } finally {
    await Promise.all(faults.map((f) => f.clear()));
    await admin.end();
  }
  const during = lines.slice(from);
  expect(during.filter((l) => l.level >= 50)).toEqual([]);
  expect(during.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
  expect(
    during.filter(
      (l) =>
        l.level === 40 &&
        /^the database is unavailable \(Postgres is out of disk space\): pg-boss/.test(l.msg),
    ),
  ).toHaveLength(1);
  console.info("disk full at pg-boss's cron claim and jobs", {
    claimRefused,
    warnings: during.filter((l) => l.level >= 40).length,
  });
  // Once the disk has room, pg-boss takes jobs again: one sent now is worked.
  const queue = hub!.host.queue!;
  await queue.createQueue('boss-faults-probe');
  let worked = 0;
  await queue.work('boss-faults-probe', { pollingIntervalSeconds: 0.5 }, async () => {
    worked++;
  });
  await queue.send('boss-faults-probe', {});
  await eventually(async () => (worked === 1 ? true : undefined));
});
