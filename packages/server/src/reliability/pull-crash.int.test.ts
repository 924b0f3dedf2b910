// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * A Docplanner notification pulled while the database is unreachable, then the hub killed
 * (`SIGKILL`, its own OS process: `switchyard start`): Docplanner's queue no longer has it (a pull
 * is destructive), so the hub's pull spool (`workers.pullSpoolDir`) is its only copy, sealed with
 * the `secretKey`; the next process stores it. Before the spool, the batch waited in the dead
 * process's memory and was gone.
 *
 * The database is reached through a TCP proxy the test cuts at the moment the simulator hands the
 * notification over (`onPulled`), so the hub holds it and cannot store it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
import { docplannerSlotBooked, eventually } from './support.test-support.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.test-support.ts';

const db = useTestDatabase();
const ADMIN = 'pull-crash-admin-token-0123456789';

let sim: DocplannerSimulator;
let proxy: TcpProxy;

beforeAll(async () => {
  sim = new DocplannerSimulator({ timeScale: 0.0001, clientSecret: 'sim-secret-0123456789' });
  await sim.start();
  const url = new URL(db.url());
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
});

afterAll(async () => {
  await sim?.close();
  await proxy?.close();
});

function writeConfigFile(dir: string): void {
  const url = new URL(db.url());
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  writeDocplannerPullConfig(dir, {
    databaseUrl: url.toString(),
    apiBaseUrl: sim.url,
    secretKey: 't-pull-crash-secret-key-0123456',
    extra: ['logging:', '  level: warn'],
  });
}

const startHub = (dir: string) => startHubIn(dir, { T_ADMIN: ADMIN });

async function storedBookings(): Promise<string[]> {
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    const r = await client.query<{ booking: string }>(
      `select payload #>> '{data,visit_booking,id}' as booking from switchyard.inbound_messages
        where instance_id = 'dp' order by received_at`,
    );
    return r.rows.map((row) => row.booking);
  } finally {
    await client.end();
  }
}

/** The batch files in the default spool (`workers.pullSpoolDir`, beside the config file). */
function spoolFiles(dir: string): string[] {
  const spool = join(dir, '.switchyard', 'pull-spool');
  try {
    return readdirSync(spool, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.spool'))
      .map((f) => join(spool, f));
  } catch {
    return [];
  }
}

/** The vendor's slot-booked example, with a booking id and a patient the test can look for. */
function slotBooked(booking: string): JsonObject {
  // biome-ignore lint/suspicious/noExplicitAny: the example's fields are set by name.
  const example: any = docplannerSlotBooked(booking);
  example.data.visit_booking.patient = { name: 'Zofia', surname: 'Spoolowska', phone: '+48500900800' };
  return example;
}

it('a notification pulled while the database is down survives kill -9: the next process stores it', async () => {
  const dir = tempDir('pull-crash');
  writeConfigFile(dir);
  const first = await startHub(dir);
  let second: HubChild | undefined;
  try {
    // The database goes away while Docplanner hands the notification over.
    sim.onPulled = () => proxy.cut();
    sim.enqueue(slotBooked('7700001'));
    await eventually('the hub to hold the notification it could not store', () =>
      /pulled notifications not stored/.test(first.stdout() + first.stderr()),
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${first.stdout().slice(-3000)}\n${first.stderr().slice(-2000)}`);
    });
    expect(sim.queueLength).toBe(0);
    sim.onPulled = undefined;

    // What the dead process leaves on disk (read before the next one stores it).
    const spooled = spoolFiles(dir).map((f) => readFileSync(f, 'utf8'));

    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    proxy.restore();
    expect(await storedBookings()).toEqual([]);

    second = await startHub(dir);
    expect(
      await eventually('the spooled notification to be stored', async () => {
        const stored = await storedBookings();
        return stored.length > 0 ? stored : undefined;
      }),
    ).toEqual(['7700001']);
    // It was one file, sealed: no patient data, booking id or credential in clear.
    expect(spooled).toHaveLength(1);
    expect(spooled[0]).not.toMatch(/Spoolowska|500900800|7700001|sim-secret/);
    // Stored once, and gone from the spool.
    await eventually('the spool to be empty', () => spoolFiles(dir).length === 0);
    expect(await storedBookings()).toEqual(['7700001']);
  } finally {
    proxy.restore();
    await first.stop('SIGKILL');
    if (second) expect(await second.stop('SIGTERM')).toBe(0);
  }
}, 90_000);
