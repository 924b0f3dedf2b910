/**
 * A connection left half-open: it stays up and carries nothing (a failover behind a virtual
 * address, a NAT or firewall losing its state), while new connections work. Between the hub and
 * Postgres here is a TCP proxy that can go silent on the connections it has without closing them.
 */
import net from 'node:net';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase, PLAN_STABLE } from './db.ts';
import { isDatabaseUnavailable } from './unavailable.ts';

const pgdb = useTestDatabase();
const sockets = new Set<net.Socket>();
let proxy: net.Server;
let database: Database;

beforeAll(async () => {
  const target = new URL(pgdb.url());
  proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk) => {
        // Connections opened after the freeze work: only those open at the time go silent.
        if (!frozenSince.has(client)) to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const via = new URL(pgdb.url());
  via.port = String((proxy.address() as net.AddressInfo).port);
  database = openDatabase(via.toString(), { max: 1, planStable: 1, planStableStallMs: 500 });
});

afterAll(async () => {
  await database?.close();
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => proxy?.close(resolve));
});

/** The connections open when it was called stop carrying bytes, both ways. */
const frozenSince = new Set<net.Socket>();
function freeze() {
  for (const s of sockets) frozenSince.add(s);
}

it('closes a plan-stable connection that goes silent mid-statement, and the next statement works on a new one', async () => {
  const stable = () => sql<{ n: number }>`${PLAN_STABLE}select 1 as n`.execute(database.db);
  expect((await stable()).rows).toEqual([{ n: 1 }]);
  freeze();
  const started = Date.now();
  const error = await stable().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  // Closed after the stall bound, not the kernel's minutes.
  expect(Date.now() - started).toBeLessThan(10_000);
  // An outage to every caller: a push answered 503 with Retry-After, a worker that gives its work
  // back. Before, nothing recognised it: the push it cut short got 500 SY_PIPELINE_NOT_STORED and
  // an error line with a stack (Postgres stopped for 20 s under load: fault-injection audit).
  expect(isDatabaseUnavailable(error)).toBe(true);
  expect((await stable()).rows).toEqual([{ n: 1 }]);
});
