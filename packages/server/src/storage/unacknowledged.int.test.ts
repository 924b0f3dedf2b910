/**
 * A statement in flight to a lost database host fails after the bound (storage/unacknowledged.ts),
 * not after the kernel's ~15 minutes of retransmissions, while a statement that is only long is
 * left to finish; and the kernel's table is read as it is written.
 */
import { readFileSync } from 'node:fs';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { type Executor, openDatabase, sessionApplicationName } from './db.ts';
import { lostHostUnavailable, partition } from './partition.test-support.ts';
import { parseProcNetTcp, socketKey, socketOf, watchUnacknowledged } from './unacknowledged.ts';
import { isDatabaseUnavailable } from './unavailable.ts';

const database = useTestDatabase();
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('reads the kernel table: a connection to Postgres by its two ports, its unacknowledged bytes and retransmissions', async () => {
  // Two rows as Linux 6.18 wrote them (/proc/net/tcp, a listening socket and an established one
  // retransmitting 0x1d bytes for the fifth time), then the table of this machine.
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 5743 1 00000000021da58c 100 0 0 10 0',
    '   7: 0100007F:A2C4 0100007F:1538 01 0000001D:00000000 01:000003E8 00000005     0        0 91825 2 00000000646e251d 3200 0 0 10 -1',
  ].join('\n');
  const rows = parseProcNetTcp(text);
  expect(rows.get('5432:0')).toEqual({ unacknowledged: 0, retransmits: 0 });
  expect(rows.get('41668:5432')).toEqual({ unacknowledged: 29, retransmits: 5 });
  expect(rows.size).toBe(2);

  const client = new pg.Client({ connectionString: database.url() });
  await client.connect();
  cleanups.push(() => client.end());
  const socket = socketOf(client)!;
  const live = new Map([
    ...parseProcNetTcp(readFileSync('/proc/net/tcp', 'utf8')),
    ...parseProcNetTcp(readFileSync('/proc/net/tcp6', 'utf8')),
  ]);
  expect(live.get(socketKey(socket)!)).toEqual({ unacknowledged: 0, retransmits: 0 });
});

it('closes a checked-out connection whose bytes stay unacknowledged past the bound, and only that one', async () => {
  const pool = new pg.Pool({ connectionString: database.url(), max: 2 });
  pool.on('error', () => {});
  cleanups.push(() => pool.end());
  // The kernel's word, made up for one socket: bytes under retransmission.
  let lostKey: string | undefined;
  const stop = watchUnacknowledged(pool, {
    boundMs: 300,
    everyMs: 50,
    read: () => new Map(lostKey ? [[lostKey, { unacknowledged: 120, retransmits: 4 }]] : []),
  });
  cleanups.push(stop);
  const lost = await pool.connect();
  lost.on('error', () => {});
  const healthy = await pool.connect();
  lostKey = socketKey(socketOf(lost)!)!;
  const failed = await lost.query('select pg_sleep(5)').then(
    () => undefined,
    (error: Error) => error,
  );
  expect(failed).toBeInstanceOf(Error);
  // An outage to every caller (503 with Retry-After, work given back), as the plan-stable bound.
  expect(isDatabaseUnavailable(failed)).toBe(true);
  lost.release(failed);
  // The other connection, checked out as long, is untouched.
  expect((await healthy.query('select 1 as one')).rows[0].one).toBe(1);
  healthy.release();
  // The pool opens a new connection for what comes next.
  expect((await pool.query('select 2 as two')).rows[0].two).toBe(2);
}, 20_000);

/** The client ports of the sessions named `applicationName`. */
async function portsOf(db: Executor, applicationName: string): Promise<number[]> {
  const r = await sql<{ port: number }>`select client_port as port from pg_stat_activity
    where application_name = ${applicationName} and client_port is not null`.execute(db);
  return r.rows.map((row) => row.port);
}

const unavailable = lostHostUnavailable();

it.skipIf(unavailable !== undefined)(
  `fails a main-pool statement sent to a lost host within the bound, and leaves a long statement be${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  async () => {
    const observer = openDatabase(database.url(), { max: 1 });
    cleanups.push(() => observer.close());
    const hub = openDatabase(database.url(), { max: 1, unacknowledgedMs: 2000 });
    cleanups.push(() => hub.close());

    // Silent for 11 s, checked out all along, looked at twice: its bytes were acknowledged.
    const slept = await sql<{ n: number }>`select 1 as n from pg_sleep(11)`.execute(hub.db);
    expect(slept.rows[0]!.n).toBe(1);

    const ports = await portsOf(observer.db, sessionApplicationName(hub.sessionTag));
    expect(ports).toHaveLength(1);
    const heal = partition(ports);
    cleanups.push(heal);
    const started = Date.now();
    // Without the bound this waits for the kernel (~15 min: tcp_retries2) and the test times out.
    const failed = await sql`select 1`.execute(hub.db).then(
      () => undefined,
      (error: Error) => error,
    );
    const tookMs = Date.now() - started;
    expect(failed).toBeInstanceOf(Error);
    expect(isDatabaseUnavailable(failed)).toBe(true);
    // 2 s of retransmissions, seen at the 5 s looks: about 10 s; 40 s allows for a loaded machine.
    expect(tookMs).toBeLessThan(40_000);

    heal();
    // The host is back: the pool's next connection works.
    const again = await sql<{ n: number }>`select 3 as n`.execute(hub.db);
    expect(again.rows[0]!.n).toBe(3);
  },
  90_000,
);
