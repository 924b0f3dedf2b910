/**
 * The dashboard's sign-in sessions are the database's, not a process's: behind a load balancer
 * without sticky sessions (several `switchyard start --role http` on one Postgres) every process
 * admits a session any of them opened, a restart keeps it, a sign-out on one ends it on all. The
 * second process is a real one (forked), so nothing a module of this process remembers can pass
 * for the database. What the stored row may not hold (the session id, the admin token), the
 * token binding, expiry and its purge, the bound on rows and the answer to an outage (503, not a
 * sign-in page) are checked here too.
 */
import { createHash } from 'node:crypto';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, eventually, listen, makeHub, SECRET_KEY } from '../http/app.test-support.ts';
import { adminAuth } from '../http/plugins/admin-auth.ts';
import type { Hub } from '../pipeline/hub.ts';
import { type HubChild, spawnHub } from '../reliability/support.test-support.ts';
import { setConnectionsAllowed } from '../storage/database.test-support.ts';
import { uiPlugin } from './plugin.ts';

const OTHER_TOKEN = 'another-admin-token-9f8e7d6c5b';
const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;
let child: HubChild;
const servers: Awaited<ReturnType<typeof listen>>[] = [];

/** A process of the hub on the same database, serving the dashboard, with the admin token. */
const spawnDashboardHub = () =>
  spawnHub({ databaseUrl: database.url(), secretKey: SECRET_KEY, adminToken: ADMIN_TOKEN, ui: true });

/** Signs in at `base` with `token`; the `Cookie` header the browser would send back. */
async function signIn(base: string, token = ADMIN_TOKEN): Promise<string> {
  const r = await call(base, 'POST', '/ui/session', {
    token: null,
    body: { token },
    headers: { 'x-switchyard-ui': '1' },
  });
  expect(r.status).toBe(204);
  const cookie = r.headers.get('set-cookie')?.split(';')[0];
  expect(cookie).toMatch(/^sy_ui_session=[A-Za-z0-9_-]{43}$/);
  return cookie!;
}

/** The status of an admin read at `base` with only the session cookie. */
async function readWith(base: string, cookie: string): Promise<number> {
  return (await call(base, 'GET', '/v1/subscriptions', { token: null, headers: { cookie } })).status;
}

const idOf = (cookie: string) => cookie.slice(cookie.indexOf('=') + 1);
const digestOf = (cookie: string) => createHash('sha256').update(idOf(cookie)).digest();

/** The stored row of a session, as text (every column), or undefined. */
async function storedRow(cookie: string): Promise<string | undefined> {
  const r = await sql<{ text: string }>`
    select row_to_json(s)::text as text from switchyard.ui_sessions s where id_digest = ${digestOf(cookie)}`.execute(
    hub.host.db,
  );
  return r.rows[0]?.text;
}

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  server = await listen(hub, { plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })] });
  child = await spawnDashboardHub();
}, 60_000);

afterAll(async () => {
  await child?.stop();
  for (const s of servers) await s.close();
  await server?.close();
  await hub?.stop();
});

describe('dashboard sessions across processes', () => {
  it('a session opened by one process is admitted by another, and by one started after it was killed', async () => {
    const opened = await signIn(server.base);
    expect(await readWith(child.base, opened)).toBe(200);

    const openedThere = await signIn(child.base);
    await child.kill();
    child = await spawnDashboardHub();
    expect(await readWith(child.base, openedThere)).toBe(200);
    expect(await readWith(server.base, openedThere)).toBe(200);
    expect(await readWith(child.base, opened)).toBe(200);
  }, 60_000);

  it('signing out on one process ends the session on every process at once', async () => {
    const cookie = await signIn(server.base);
    expect(await readWith(child.base, cookie)).toBe(200);
    const out = await call(child.base, 'DELETE', '/ui/session', { token: null, headers: { cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect(await readWith(server.base, cookie)).toBe(401);
    expect(await readWith(child.base, cookie)).toBe(401);
    expect(await storedRow(cookie)).toBeUndefined();
  });

  it('an app with another admin token refuses the session; one with the same token admits it', async () => {
    const other = await listen(hub, {
      adminToken: OTHER_TOKEN,
      plugins: [uiPlugin({ hub, adminToken: OTHER_TOKEN })],
    });
    servers.push(other);
    const cookie = await signIn(server.base);
    expect(await readWith(other.base, cookie)).toBe(401);
    expect(await readWith(child.base, cookie)).toBe(200);
    // The refusal ends nothing: a replica still on the old token keeps serving it.
    expect(await storedRow(cookie)).toBeDefined();

    const openedWithOther = await signIn(other.base, OTHER_TOKEN);
    expect(await readWith(other.base, openedWithOther)).toBe(200);
    expect(await readWith(server.base, openedWithOther)).toBe(401);
    expect(await readWith(child.base, openedWithOther)).toBe(401);
  });

  it('stores neither the session id nor the admin token, nor a plain digest of the token', async () => {
    const cookie = await signIn(server.base);
    const text = await storedRow(cookie);
    expect(text).toBeDefined();
    const id = idOf(cookie);
    const forms = (value: Buffer) => [
      value.toString('hex'),
      value.toString('base64'),
      value.toString('base64url'),
    ];
    const secrets = [
      id,
      ...forms(Buffer.from(id, 'base64url')),
      ...forms(Buffer.from(id)),
      ADMIN_TOKEN,
      ...forms(Buffer.from(ADMIN_TOKEN)),
      ...forms(createHash('sha256').update(ADMIN_TOKEN).digest()),
    ];
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('refuses an expired session and deletes it; the retention purge removes the ones nobody presents', async () => {
    const presented = await signIn(server.base);
    const forgotten = await signIn(server.base);
    await sql`update switchyard.ui_sessions set expires_at = now() - interval '1 second'
              where id_digest in (${digestOf(presented)}, ${digestOf(forgotten)})`.execute(hub.host.db);
    expect(await readWith(child.base, presented)).toBe(401);
    expect(await storedRow(presented)).toBeUndefined();
    expect(await storedRow(forgotten)).toBeDefined();

    const purged = await hub.retention.purge();
    expect(purged.uiSessions).toBe(1);
    expect(await storedRow(forgotten)).toBeUndefined();
  });

  it('keeps at most the configured number of sessions: a sign-in beyond it ends the oldest', async () => {
    const bounded = await listen(hub, {
      plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN, sessions: { max: 3 } })],
    });
    servers.push(bounded);
    const cookies: string[] = [];
    for (let i = 0; i < 4; i++) cookies.push(await signIn(bounded.base));
    const count = await sql<{ n: number }>`select count(*)::int as n from switchyard.ui_sessions`.execute(
      hub.host.db,
    );
    expect(count.rows[0]!.n).toBe(3);
    expect(await readWith(child.base, cookies[0]!)).toBe(401);
    for (const cookie of cookies.slice(1)) expect(await readWith(child.base, cookie)).toBe(200);
  });

  it('answers 503 SY_STORAGE_UNAVAILABLE while the database cannot check a session, not 401', async () => {
    // An admin route that reads nothing itself: whatever the answer, the session check gave it.
    const probe = await listen(hub, {
      plugins: [
        async (scope) => {
          scope.addHook('onRequest', adminAuth(ADMIN_TOKEN, hub.host.db));
          scope.get('/v1/session-probe', async () => ({ ok: true }));
        },
      ],
    });
    servers.push(probe);
    const cookie = await signIn(server.base);
    const headers = { cookie };
    expect((await call(probe.base, 'GET', '/v1/session-probe', { token: null, headers })).status).toBe(200);
    const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
    await admin.connect();
    try {
      await setConnectionsAllowed(admin, database.name(), false);
      const during = await call(probe.base, 'GET', '/v1/session-probe', { token: null, headers });
      expect(during.status).toBe(503);
      expect(during.json).toMatchObject({ code: 'SY_STORAGE_UNAVAILABLE', status: 503 });
      expect(during.headers.get('retry-after')).not.toBeNull();
      // The bearer token needs no database.
      expect((await call(probe.base, 'GET', '/v1/session-probe')).status).toBe(200);
    } finally {
      await setConnectionsAllowed(admin, database.name(), true);
      await admin.end();
    }
    await eventually(
      async () =>
        (await call(probe.base, 'GET', '/v1/session-probe', { token: null, headers })).status === 200,
    );
  });
});
