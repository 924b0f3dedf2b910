/**
 * pg-boss's statements to a lost Postgres host fail after the bound, as the hub's main pool's do
 * (host/boss.ts, `watchBossConnections`; storage/unacknowledged.ts), and the hub watches its
 * pg-boss pool from start to stop.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { PgBoss } from 'pg-boss';
import { afterEach, expect, it } from 'vitest';
import { makeHub } from '../pipeline/fixtures.test-support.ts';
import { openDatabase } from '../storage/db.ts';
import { lostHostUnavailable, partition } from '../storage/partition.test-support.ts';
import { isDatabaseUnavailable } from '../storage/unavailable.ts';
import { BOSS_TIMERS, bossSession, watchBossConnections } from './boss.ts';

const database = useTestDatabase();
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it("finds pg-boss's pool (a private field an upgrade could rename) and watches it while a hub runs", async () => {
  const hub = await makeHub(database.url(), { options: { queue: true } });
  cleanups.push(() => hub.stop());
  await hub.start();
  const pool = (hub.host.queue!.getDb() as unknown as { pool?: import('pg').Pool }).pool;
  expect(pool).toBeDefined();
  // The hub's watch is on it: one 'acquire' listener more than pg-boss's own (none).
  expect(pool!.listenerCount('acquire')).toBe(1);
  await hub.stop();
  expect(pool!.listenerCount('acquire')).toBe(0);
});

const unavailable = lostHostUnavailable();

it.skipIf(unavailable !== undefined)(
  `fails a pg-boss statement sent to a lost host within the bound${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  async () => {
    const observer = openDatabase(database.url(), { max: 1 });
    cleanups.push(() => observer.close());
    const name = 'switchyard boss-unacknowledged';
    const boss = new PgBoss({
      ...bossSession(database.url()),
      schema: 'switchyard_queue',
      max: 1,
      ...BOSS_TIMERS,
      application_name: name,
    });
    boss.on('error', () => {});
    await boss.start();
    cleanups.push(() => boss.stop({ graceful: false }).catch(() => {}));
    const unwatch = watchBossConnections(boss, { boundMs: 2000 });
    cleanups.push(unwatch);
    const db = boss.getDb();
    await db.executeSql('select 1');

    const r = await sql<{ port: number }>`select client_port as port from pg_stat_activity
      where application_name = ${name} and client_port is not null`.execute(observer.db);
    const ports = r.rows.map((row) => row.port);
    expect(ports.length).toBeGreaterThanOrEqual(1);
    const heal = partition(ports);
    cleanups.push(heal);
    // Without the watch this waits for the kernel (~15 min: tcp_retries2) and the test times out.
    const failed = await db.executeSql('select 1').then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failed).toBeInstanceOf(Error);
    expect(isDatabaseUnavailable(failed)).toBe(true);
    heal();
    const again = (await db.executeSql('select 4 as n')) as { rows: { n: number }[] };
    expect(again.rows[0]!.n).toBe(4);
  },
  90_000,
);
