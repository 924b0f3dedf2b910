/**
 * A database that refuses connections (`ALTER DATABASE … ALLOW_CONNECTIONS false`, SQLSTATE 55000,
 * with the hub's open sessions terminated: 57P01) is an outage like a cut network: every route
 * that needs it answers 503 problem+json with `Retry-After` (the readiness probe too), the log says
 * so once instead of an error stack per request, `/metrics` still answers with the process's own
 * series and `switchyard_database_up 0`, and everything answers 2xx again once connections are
 * allowed.
 *
 * A database that accepts connections but no writes (SQLSTATE 25006: a standby the hub's address
 * points at after a failover, or `default_transaction_read_only` set for maintenance or by a
 * provider whose disk is full) is the same outage for a push: it cannot be stored.
 */
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setConnectionsAllowed } from '../storage/database.test-support.ts';
import {
  ADMIN_TOKEN,
  API_KEY,
  callHub,
  eventually,
  INSTANCE,
  type InProcessHub,
  startInProcessHub,
} from './support.test-support.ts';

const database = useTestDatabase();
let admin: pg.Client;
let running: InProcessHub;
const logLines: { level: number; msg: string; reqId?: string }[] = [];

const allowConnections = (allow: boolean) => setConnectionsAllowed(admin, database.name(), allow);

beforeAll(async () => {
  admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  running = await startInProcessHub({
    databaseUrl: database.url(),
    adminToken: ADMIN_TOKEN,
    logger: pino({ level: 'debug' }, { write: (line: string) => logLines.push(JSON.parse(line)) }),
  });
});

/** Sets the database's `default_transaction_read_only` and ends the hub's sessions so new ones take it. */
async function readOnly(on: boolean): Promise<void> {
  const name = admin.escapeIdentifier(database.name());
  await admin.query(`alter database ${name} set default_transaction_read_only = ${on ? 'on' : 'off'}`);
  await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [
    database.name(),
  ]);
}

afterAll(async () => {
  // The database is dropped after this file: it must accept the drop's connection.
  await allowConnections(true).catch(() => {});
  await readOnly(false).catch(() => {});
  await running?.close();
  await admin?.end();
});

const call = (path: string, init: RequestInit = {}) => callHub(running.base, path, init);

const push = (id: string) =>
  call(`/hooks/${INSTANCE}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify({ id, subject: 'refuse-s1' }),
  });
const events = () => call('/v1/events', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
const metrics = () => call('/metrics');
const ready = () => call('/readyz');

it('answers 503 problem+json with Retry-After while the database refuses connections, then 2xx', {
  timeout: 60_000,
}, async () => {
  expect((await push('before')).status).toBe(202);
  expect((await events()).status).toBe(200);
  expect((await metrics()).status).toBe(200);

  await allowConnections(false);
  const logged = logLines.length;
  for (let round = 0; round < 3; round++) {
    for (const answer of [await push(`during-${round}`), await events()]) {
      expect(answer.status, answer.text).toBe(503);
      expect(answer.type).toMatch(/^application\/problem\+json/);
      expect(answer.retryAfter).toMatch(/^[1-9][0-9]*$/);
      expect(JSON.parse(answer.text)).toMatchObject({ status: 503, code: 'SY_STORAGE_UNAVAILABLE' });
    }
    const probe = await ready();
    expect(probe.status).toBe(503);
    expect(probe.retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(JSON.parse(probe.text)).toMatchObject({ status: 503, code: 'SY_HTTP_NOT_READY' });
    // The scrape answers, with the process's own series (the refused pushes) and the database down.
    const scrape = await metrics();
    expect(scrape.status, scrape.text).toBe(200);
    expect(scrape.text).toMatch(/^switchyard_database_up 0$/m);
    expect(scrape.text).toMatch(
      /^switchyard_ingest_requests_total\{[^}]*outcome="unavailable"[^}]*\} [1-9]/m,
    );
    expect(scrape.text).not.toMatch(/^switchyard_queue_depth\{/m);
  }
  // Twelve requests refused: no error line, and at most one warning (the rest at debug), the
  // readiness probes included (two warnings with a stack each before).
  const during = logLines.slice(logged);
  expect(during.filter((l) => l.level >= 50 && l.reqId !== undefined)).toEqual([]);
  expect(during.filter((l) => l.level === 40 && l.reqId !== undefined).length).toBeLessThanOrEqual(1);

  await allowConnections(true);
  await eventually('a push stored again', async () => (await push('after')).status === 202);
  expect((await events()).status).toBe(200);
  expect((await ready()).status).toBe(200);
  const scrape = await metrics();
  expect(scrape.status).toBe(200);
  expect(scrape.text).toMatch(/^switchyard_database_up 1$/m);
  expect(scrape.text).toMatch(/^switchyard_queue_depth\{queue="deliver"\} \d+$/m);
});

it('answers 503 with Retry-After while the database is read-only, and /readyz says so', {
  timeout: 60_000,
}, async () => {
  await eventually('a push stored', async () => (await push('before-read-only')).status === 202);

  await readOnly(true);
  // The first request after the sessions were ended may meet a dead pooled connection (57P01): the
  // read-only answers are the ones that follow.
  await eventually('the hub on a read-only session', async () => {
    const answer = await push('read-only-probe');
    return answer.status === 503 && answer.text.includes('SY_STORAGE_UNAVAILABLE');
  });
  const logged = logLines.length;
  for (let round = 0; round < 3; round++) {
    const answer = await push(`read-only-${round}`);
    // Before: 500 SY_PIPELINE_NOT_STORED and an error line with a stack per push.
    expect(answer.status, answer.text).toBe(503);
    expect(answer.retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 503, code: 'SY_STORAGE_UNAVAILABLE' });
    // Before: 200 "ready" while no push could be stored.
    const probe = await ready();
    expect(probe.status, probe.text).toBe(503);
    expect(JSON.parse(probe.text)).toMatchObject({ status: 503, code: 'SY_HTTP_NOT_READY' });
    expect(JSON.parse(probe.text).detail).toMatch(/read-only/);
    const scrape = await metrics();
    expect(scrape.status, scrape.text).toBe(200);
    expect(scrape.text).toMatch(/^switchyard_database_up 0$/m);
  }
  const during = logLines.slice(logged);
  expect(during.filter((l) => l.level >= 50)).toEqual([]);
  expect(during.filter((l) => l.level === 40 && l.reqId !== undefined).length).toBeLessThanOrEqual(1);

  await readOnly(false);
  await eventually('a push stored again', async () => (await push('after-read-only')).status === 202);
  expect((await ready()).status).toBe(200);
});
