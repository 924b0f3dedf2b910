// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config file uses ${env:...} references on purpose.
/**
 * The admin API's rules as a hub started from a file serves them, with every plugin `switchyard
 * start` registers besides the app's own routes: the gates' admin routes, the commands, the
 * dashboard's API. Those are registered outside the app's `/v1` scope, where a rule set on that
 * scope alone did not reach them. And the refusal of a change to what the file declares names
 * the file the hub was started from. And its general pool holds no more connections than the
 * file's `database.poolSize`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';
import { call, silent } from './app.test-support.ts';

const db = useTestDatabase();
const ADMIN_TOKEN = 'started-hub-admin-token-1234';
const FILE_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-started-'));
const file = join(dir, 'switchyard.yaml');
let hub: HubProcess;
let base: string;

const admin = (method: string, path: string, body?: unknown) =>
  call(base, method, path, { token: ADMIN_TOKEN, ...(body === undefined ? {} : { body }) });

beforeAll(async () => {
  writeFileSync(
    file,
    [
      'version: 1',
      'server:',
      '  host: 127.0.0.1',
      '  adminToken: ${env:ADMIN_TOKEN}',
      'database:',
      '  url: ${env:DB_URL}',
      '  poolSize: 2',
      'secretKey: ${env:SECRET_KEY}',
      'instances:',
      '  - id: quable',
      '    connector: quable',
      '    mode: push',
      '    settings: { authorization: "Bearer started-hub-quable-0123456789" }',
      'subscriptions:',
      '  - id: crm',
      '    kind: webhook',
      '    url: http://127.0.0.1:19001/crm',
      '    allowPrivateAddresses: true',
      `    secrets: ["${FILE_SECRET}"]`,
      '',
    ].join('\n'),
  );
  const env = { ADMIN_TOKEN, DB_URL: db.url(), SECRET_KEY: 'started-hub-secret-key-0123456789' };
  const loaded = await loadConfig(file, { env, connectors: shippedConnectors });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  hub = await startHubProcess(loaded.config, {
    io: { stderr: { write: () => true }, env, cwd: dir },
    logger: silent,
    port: 0,
  });
  const address = hub.app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("refuses a query parameter a plugin's /v1 route does not take (gates, commands, dashboard), as the app's own routes do", async () => {
  // These took any query parameter and ignored it (`GET /v1/gates/<id>?verbose=1` answered 404 as
  // if it had not been sent): the rule was set on the app's /v1 scope, which they are outside of.
  const id = '0190a5b4-7c3d-7e8f-9a0b-1c2d3e4f5a6b';
  for (const [method, path] of [
    ['GET', `/v1/gates/${id}?verbose=1`],
    ['GET', '/v1/commands?limt=5'],
    ['GET', `/v1/commands/${id}?verbose=1`],
    ['POST', `/v1/commands/${id}/retry?force=true`],
    ['GET', '/v1/subscriptions/crm/command-credentials?limit=5'],
    ['GET', '/v1/dashboard/deliveries/position?since=1'],
    ['GET', `/v1/dashboard/events/${id}/inbound?verbose=1`],
  ] as const) {
    const r = await admin(method, path);
    expect(r.status, `${method} ${path}`).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json.code).toBe('SY_HTTP_VALIDATION');
    const name = path.split('?')[1]!.split('=')[0];
    expect(r.json.errors, path).toEqual([
      expect.objectContaining({ in: 'querystring', pointer: `/${name}` }),
    ]);
  }
  // The query parameters the dashboard sends (ui/static/views) are the routes' own.
  for (const path of [
    '/v1/dashboard/overview?minutes=60',
    '/v1/gates?decision=refuse&reason=deadline&instanceId=quable&limit=50',
    '/v1/commands?status=failed&type=appointment.cancel&instanceId=quable&limit=50',
    '/v1/dashboard/events?vendorId=x&limit=50',
    '/v1/subscriptions/crm/command-credentials',
  ]) {
    const r = await admin('GET', path);
    expect(r.status, `${path}: ${r.text}`).toBe(200);
  }
});

it('names the file the hub was started from when it refuses a change to what that file declares (409)', async () => {
  // It said "declared in the configuration file", leaving an operator with several files (one per
  // environment, a copy under review) to guess which one to change.
  const named = `the configuration file ${JSON.stringify(file)}`;
  for (const [method, path, body, detail] of [
    ['DELETE', '/v1/instances/quable', undefined, `instance "quable" is declared in ${named}`],
    [
      'PUT',
      '/v1/instances/quable',
      {
        connector: 'quable',
        mode: 'push',
        settings: { authorization: 'Bearer started-hub-quable-9876543210' },
      },
      `instance "quable" is declared in ${named}`,
    ],
    [
      'PATCH',
      '/v1/subscriptions/crm',
      { url: 'http://127.0.0.1:19002/crm' },
      `subscription "crm" is declared in ${named}`,
    ],
    ['DELETE', '/v1/subscriptions/crm', undefined, `subscription "crm" is declared in ${named}`],
    [
      'POST',
      '/v1/subscriptions/crm/rotate-secret',
      undefined,
      `subscription "crm" has its signing secrets in ${named}: rotate there (put the new secret first in secrets, keep the old one until the subscriber has switched, then restart)`,
    ],
  ] as const) {
    const r = await admin(method, path, body);
    expect(r.status, `${method} ${path}: ${r.text}`).toBe(409);
    expect(r.json.code).toBe('SY_HTTP_FILE_MANAGED');
    expect(r.json.detail, `${method} ${path}`).toBe(detail);
  }
});

it("opens no more connections than the file's database.poolSize allows, under a burst of admin reads", async () => {
  // database.poolSize was not a setting: every process's general pool was 10 connections, whatever
  // Postgres's max_connections, and a burst that exhausted it could not be given more room. With 2,
  // a process opens at most 2 + 9 (6 plan-stable, 2 pg-boss, 1 listener: docs/operations.md).
  const watcher = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await watcher.connect();
  try {
    let most = 0;
    let reading = true;
    const sampling = (async () => {
      while (reading) {
        const r = await watcher.query<{ n: string }>(
          "select count(*) as n from pg_stat_activity where datname = $1 and application_name like 'switchyard%'",
          [db.name()],
        );
        most = Math.max(most, Number(r.rows[0]!.n));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        admin('GET', i % 2 === 0 ? '/v1/events?limit=5' : '/v1/deliveries?limit=5'),
      ),
    );
    reading = false;
    await sampling;
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2 + 9);
  } finally {
    await watcher.end();
  }
});
