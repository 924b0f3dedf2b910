/**
 * A rolling upgrade's pull hand-over, with real `switchyard start` processes pulling one Docplanner
 * instance from the simulator. A worker of the previous version leased a pull turn for a fixed five
 * minutes, never renewed, and took no `application_name`: its stand-in here is a session without
 * one that ran that version's claim. Killed in its turn, it stopped the instance's pulls for five
 * minutes while the new workers ran (140 notifications waited at the vendor in the measured
 * rollout). Now a new process takes such a lease over once no session of an earlier version is
 * connected, and waits it out while one is (the holder may be alive: never two pulls at once).
 * And a process of this version stopped with SIGTERM leaves no lease behind and logs nothing at
 * warning level or above; the other goes on pulling (pipeline/pull-stop-wake.int.test.ts shows
 * that it is woken at once).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type HubChild,
  startHubIn,
  tempDir,
  writeDocplannerPullConfig,
} from '../e2e/helpers.test-support.ts';
import { SESSION_APPLICATION_NAME } from '../storage/db.ts';
import { docplannerSlotBooked, eventually } from './support.test-support.ts';

const db = useTestDatabase();
const ADMIN = 'rolling-upgrade-admin-token-0123456789';

let sim: DocplannerSimulator;
/** The test's own session: named as a Switchyard process's, so it does not count as an earlier version's. */
let client: pg.Client;

beforeAll(async () => {
  sim = new DocplannerSimulator({ timeScale: 0.0001, clientSecret: 'sim-secret-0123456789' });
  await sim.start();
  client = new pg.Client({ connectionString: db.url(), application_name: SESSION_APPLICATION_NAME });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await sim?.close();
});

function configDir(): string {
  const dir = tempDir('rolling-upgrade');
  writeDocplannerPullConfig(dir, {
    databaseUrl: db.url(),
    apiBaseUrl: sim.url,
    secretKey: 't-rolling-upgrade-secret-key-01',
    extra: ['logging:', '  level: warn'],
  });
  return dir;
}

async function storedBookings(): Promise<string[]> {
  const r = await client.query<{ booking: string }>(
    `select payload #>> '{data,visit_booking,id}' as booking from switchyard.inbound_messages
      where instance_id = 'dp' order by received_at`,
  );
  return r.rows.map((row) => row.booking);
}

function slotBooked(booking: string): JsonObject {
  // biome-ignore lint/suspicious/noExplicitAny: the example's fields are set by name.
  const example: any = docplannerSlotBooked(booking);
  // Fresh: a notification days old makes the pull warn that it lags.
  example.created_at = new Date().toISOString();
  return example;
}

/**
 * A worker of the previous version in a pull turn: a session without `application_name` that ran
 * that version's claim (a fixed five-minute lease). Ending the session is its kill.
 */
async function previousVersionInTurn(): Promise<pg.Client> {
  const old = new pg.Client({ connectionString: db.url() });
  old.on('error', () => {});
  await old.connect();
  // That version's claim, as it was, until it wins the instance from the new worker's turns.
  await eventually('the previous version to claim the instance', async () => {
    const r = await old.query(
      `update switchyard.connector_instances i set pull_locked_until = now() + make_interval(secs => 300)
        from (select id from switchyard.connector_instances
              where mode <> 'push' and disabled_at is null and pull_next_at <= now()
                and (pull_locked_until is null or pull_locked_until < now())
              order by pull_next_at limit 4 for update skip locked) due
        where i.id = due.id returning i.id`,
    );
    return r.rowCount === 1;
  });
  return old;
}

const leaseAheadMs = async (): Promise<number | null> => {
  const r = await client.query<{ ms: number | null }>(
    `select extract(epoch from pull_locked_until - now()) * 1000 as ms
       from switchyard.connector_instances where id = 'dp'`,
  );
  return r.rows[0]?.ms === null ? null : Number(r.rows[0]?.ms);
};

it("a previous version's worker killed in a pull turn: the new worker pulls at once, not five minutes later; never while it may be alive", async () => {
  const dir = configDir();
  const hub = await startHubIn(dir, { T_ADMIN: ADMIN });
  let old: pg.Client | undefined;
  try {
    await eventually('the instance to be pulled once', async () => (await leaseAheadMs()) === null);
    old = await previousVersionInTurn();
    sim.enqueue(slotBooked('8800001'));
    // While the session of the previous version is connected, its holder may be in its turn.
    await sleep(3000);
    expect(sim.queueLength).toBe(1);
    expect(await storedBookings()).toEqual([]);
    expect(await leaseAheadMs()).toBeGreaterThan(290_000);

    // Killed (its session ends without giving the lease back).
    const killedAt = Date.now();
    await old.end();
    old = undefined;
    await eventually(
      'the notification to be pulled and stored',
      async () => (await storedBookings()).length > 0,
    );
    // The next look is a third of the lease (10 s) away at most, not the old lease's five minutes.
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(await storedBookings()).toEqual(['8800001']);
    expect(sim.queueLength).toBe(0);
    expect(hub.stdout() + hub.stderr()).not.toMatch(/"level":(40|50|60)/);
  } finally {
    await old?.end();
    expect(await hub.stop('SIGTERM')).toBe(0);
  }
}, 60_000);

it('a worker stopped (SIGTERM) leaves no lease behind and logs no warning: the other worker goes on pulling', async () => {
  const dir = configDir();
  const first = await startHubIn(dir, { T_ADMIN: ADMIN });
  let second: HubChild | undefined;
  try {
    await eventually('the instance to be pulled once', async () => (await leaseAheadMs()) === null);
    second = await startHubIn(dir, { T_ADMIN: ADMIN });
    expect(await first.stop('SIGTERM')).toBe(0);
    // A graceful stop: nothing at warning level or above (a pg-boss connection's 57P01 included).
    expect(first.stdout() + first.stderr()).not.toMatch(/"level":(40|50|60)|administrator command/);
    // Whatever it held was given back: a lease now is the other worker's, this version's length.
    expect((await leaseAheadMs()) ?? 0).toBeLessThanOrEqual(30_000);
    sim.enqueue(slotBooked('8800002'));
    await eventually('the notification to be pulled by the other worker', async () =>
      (await storedBookings()).includes('8800002'),
    ).catch(async (error: Error) => {
      const row = await client.query(
        'select pull_next_at, pull_locked_until, last_error, now() from switchyard.connector_instances',
      );
      throw new Error(
        `${error.message}\n${JSON.stringify(row.rows)} ${sim.queueLength}\n${second?.stdout().slice(-3000)}`,
      );
    });
  } finally {
    await first.stop('SIGKILL').catch(() => {});
    if (second) expect(await second.stop('SIGTERM')).toBe(0);
  }
}, 60_000);
