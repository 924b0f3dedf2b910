/**
 * Pull and reconcile leases name their holder (migration 45), and another process takes a lease
 * over as soon as no session of its holder is connected: the holder was killed, on this host or
 * another (storage/db.ts, `sessionsConnected`). Two hubs' databases here, each with its own session
 * tag; "killing" one ends its sessions with `pg_terminate_backend`, as Postgres does when a killed
 * process's sockets close.
 */
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import { type Database, newSessionTag, openDatabase, workerGone } from '../storage/db.ts';
import {
  claimDuePulls,
  claimDueReconciles,
  finishPull,
  finishReconcile,
  renewTurnLease,
  savePullCursor,
  upsertInstance,
} from './store.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);
const LEASE_MS = 30_000;
const opened: Database[] = [];
const clients: pg.Client[] = [];

/** A hub's database: its pool, its sessions named by its own tag. */
async function hubDatabase(): Promise<Database> {
  const d = openDatabase(database.url(), { max: 2 });
  opened.push(d);
  await sql`select 1`.execute(d.db);
  return d;
}

/** A client session named `applicationName` (psql, a monitoring agent, an earlier version). */
async function session(applicationName: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: database.url(), application_name: applicationName });
  await c.connect();
  clients.push(c);
  return c;
}

/** Kills a hub as far as the database can tell: every session of its tag ends. */
async function kill(d: Database): Promise<void> {
  const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  try {
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'switchyard ' || $1`,
      [d.sessionTag],
    );
    // pg_terminate_backend does not wait for the backends to exit.
    for (;;) {
      const r = await admin.query(
        `select count(*)::int as n from pg_stat_activity where application_name = 'switchyard ' || $1`,
        [d.sessionTag],
      );
      if (r.rows[0].n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await admin.end();
  }
}

let n = 0;
async function pullInstance(): Promise<string> {
  const id = `pull-${++n}`;
  await upsertInstance(store.db, false, {
    id,
    connector: 'docplanner',
    mode: 'pull',
    settingsSealed: 'x',
    pullIntervalMs: 60_000,
    gate: null,
    managedBy: 'api',
  });
  return id;
}

/** A push instance of a connector that reconciles (Cliniko): its reconciliation is due. */
async function pushInstance(): Promise<string> {
  const id = `push-${++n}`;
  await upsertInstance(store.db, false, {
    id,
    connector: 'cliniko',
    mode: 'push',
    settingsSealed: 'x',
    pullIntervalMs: null,
    gate: null,
    managedBy: 'api',
  });
  return id;
}

/** Whether `d`'s claim of due reconciliations took instance `id`. */
async function reconciled(d: Database, id: string): Promise<boolean> {
  return (await claimDueReconciles(d.db, ['cliniko'], LEASE_MS, 100, d.sessionTag)).some((r) => r.id === id);
}

/** The instance's leases and what a turn writes. */
async function leaseOf(id: string) {
  const r = await sql<{
    pull_cursor: string | null;
    pull_locked_by: string | null;
    pull_locked_until: Date | null;
    reconcile_locked_by: string | null;
    reconcile_last_result: string | null;
  }>`select pull_cursor, pull_locked_by, pull_locked_until, reconcile_locked_by, reconcile_last_result
    from switchyard.connector_instances where id = ${id}`.execute(store.db);
  return r.rows[0];
}

async function claimed(d: Database, id: string): Promise<boolean> {
  return (await claimDuePulls(d.db, LEASE_MS, 100, d.sessionTag)).some((r) => r.id === id);
}

afterEach(async () => {
  await sql`update switchyard.connector_instances set disabled_at = now()`.execute(store.db);
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
});

afterAll(async () => {
  await Promise.all(opened.map((d) => d.close().catch(() => {})));
});

describe('a turn lease held by a process whose sessions are gone', () => {
  it('is taken over at once by another process, whoever else is connected; never while the holder is', async () => {
    const a = await hubDatabase();
    const b = await hubDatabase();
    // psql and a monitoring agent: they used to make every takeover wait the lease out.
    await session('psql');
    await session('');
    const id = await pullInstance();
    expect(await claimed(a, id)).toBe(true);
    // The holder is alive: its lease holds.
    expect(await claimed(b, id)).toBe(false);
    await kill(a);
    // On the old code: the lease, 30 s ahead, was waited out.
    expect(await claimed(b, id)).toBe(true);
    const row = await sql<{
      pull_locked_by: string;
    }>`select pull_locked_by from switchyard.connector_instances
      where id = ${id}`.execute(store.db);
    expect(row.rows[0]?.pull_locked_by).toBe(b.sessionTag);
  });

  it('a reconciliation lease too', async () => {
    const a = await hubDatabase();
    const b = await hubDatabase();
    const id = await pushInstance();
    const reconcile = (d: Database) => reconciled(d, id);
    expect(await reconcile(a)).toBe(true);
    expect(await reconcile(b)).toBe(false);
    await kill(a);
    expect(await reconcile(b)).toBe(true);
  });

  it('keeps the earlier versions’ rules: a holder-less lease is waited out while a session of theirs is connected', async () => {
    const b = await hubDatabase();
    // A version before 33edb87: a five-minute lease, sessions without application_name.
    const early = await pullInstance();
    await sql`update switchyard.connector_instances set pull_locked_until = now() + interval '5 minutes'
      where id = ${early}`.execute(store.db);
    const earlier = await session('');
    expect(await claimed(b, early)).toBe(false);
    await earlier.end();
    // Its backend exits after the client's goodbye, not with it.
    while (
      (
        await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = ''`.execute(store.db)
      ).rows[0]!.n > 0
    )
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await claimed(b, early)).toBe(true);
    // A version from 33edb87 (sessions named `switchyard` alone): its lease names no holder, or
    // leaves the previous holder's name in place, which is not trusted while such a session is on.
    const a = await hubDatabase();
    const mid = await pullInstance();
    expect(await claimed(a, mid)).toBe(true);
    await kill(a);
    await sql`update switchyard.connector_instances set pull_locked_until = now() + interval '30 seconds'
      where id = ${mid}`.execute(store.db);
    await session('switchyard');
    expect(await claimed(b, mid)).toBe(false);
  });

  it('workerGone: a worker whose sessions are gone, never one without a session tag or with sessions on', async () => {
    const a = await hubDatabase();
    const b = await hubDatabase();
    const claimedAt = new Date();
    expect(await workerGone(b.db, `other-host/1/0badcafe.${a.sessionTag}`, claimedAt)).toBe(false);
    await kill(a);
    expect(await workerGone(b.db, `other-host/1/0badcafe.${a.sessionTag}`, claimedAt)).toBe(true);
    expect(await workerGone(b.db, 'other-host/4242/0badcafe', claimedAt)).toBe(false);
    expect(await workerGone(b.db, null, claimedAt)).toBe(false);
    expect(await workerGone(b.db, `other-host/4242/0badcafe.${newSessionTag()}`, claimedAt)).toBe(true);
    // A claim written before Postgres last started: the restart ended every session, and its
    // holder may be alive and not yet reconnected. Never told gone; nor without a claim time.
    expect(await workerGone(b.db, `other-host/1/0badcafe.${a.sessionTag}`, new Date(0))).toBe(false);
    expect(await workerGone(b.db, `other-host/1/0badcafe.${a.sessionTag}`, null)).toBe(false);
  });

  it('workerGone on a standby promoted after the claim (a failover): not gone, the holder may be reconnecting', async () => {
    const a = await hubDatabase();
    const b = await hubDatabase();
    const claimedAt = new Date();
    await kill(a);
    // A promoted standby started long before the claim; what it replayed last committed after it.
    // Stood in for by a function ahead of pg_catalog's in this transaction's search_path.
    const replayed = new Date(claimedAt.getTime() + 30);
    const gone = await b.db.transaction().execute(async (trx) => {
      await sql`create function public.pg_last_xact_replay_timestamp() returns timestamptz
        language sql as ${sql.lit(`select '${replayed.toISOString()}'::timestamptz`)}`.execute(trx);
      await sql`set local search_path = public, pg_catalog`.execute(trx);
      const told = await workerGone(trx, `other-host/1/0badcafe.${a.sessionTag}`, claimedAt);
      await sql`drop function public.pg_last_xact_replay_timestamp()`.execute(trx);
      return told;
    });
    // On the old code: true (the server's start alone is older than the claim).
    expect(gone).toBe(false);
  });
});

describe('a holder told gone while it is alive (an operator ended its sessions, a network cut)', () => {
  // Its turn goes on (a vendor call needs no session) and its pool reconnects: its late writes
  // must not undo the lease of the process that took the turn over.
  it('cannot renew, move the cursor of, nor give back the lease another process took over', async () => {
    const a = await hubDatabase();
    const b = await hubDatabase();
    const id = await pullInstance();
    expect(await claimed(a, id)).toBe(true);
    await kill(a);
    expect(await claimed(b, id)).toBe(true);
    // `a` is alive: its pool opens new sessions for its late writes.
    expect(await renewTurnLease(a.db, 'pull', id, LEASE_MS, a.sessionTag)).toBe(false);
    expect(await savePullCursor(a.db, id, 'a-cursor', null, a.sessionTag)).toBe(false);
    await finishPull(a.db, id, 0, null, a.sessionTag);
    const row = await leaseOf(id);
    // On the old code: the cursor moved to a's, and the lease was cleared and due at once, so a
    // third claim ran the instance's turn beside b's.
    expect(row?.pull_cursor).toBeNull();
    expect(row?.pull_locked_by).toBe(b.sessionTag);
    expect(row?.pull_locked_until).not.toBeNull();
    expect(await claimed(a, id)).toBe(false);
    // b's own writes go through.
    expect(await renewTurnLease(b.db, 'pull', id, LEASE_MS, b.sessionTag)).toBe(true);
    expect(await savePullCursor(b.db, id, 'b-cursor', null, b.sessionTag)).toBe(true);
    await finishPull(b.db, id, 60_000, null, b.sessionTag);
    const after = await leaseOf(id);
    expect(after?.pull_cursor).toBe('b-cursor');
    expect(after?.pull_locked_until).toBeNull();
  });

  it('a reconciliation turn’s too', async () => {
    const a = await hubDatabase();
    const b = await hubDatabase();
    const id = await pushInstance();
    const reconcile = (d: Database) => reconciled(d, id);
    expect(await reconcile(a)).toBe(true);
    await kill(a);
    expect(await reconcile(b)).toBe(true);
    expect(await renewTurnLease(a.db, 'reconcile', id, LEASE_MS, a.sessionTag)).toBe(false);
    await finishReconcile(a.db, id, 0, { result: 'released 1' }, a.sessionTag);
    const row = await leaseOf(id);
    expect(row?.reconcile_locked_by).toBe(b.sessionTag);
    expect(row?.reconcile_last_result).toBeNull();
    expect(await reconcile(a)).toBe(false);
  });
});
