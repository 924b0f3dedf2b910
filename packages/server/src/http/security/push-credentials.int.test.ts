/**
 * Vendor credentials never leave the request: for every shipped connector, pushes with real
 * credentials — in custom-named headers where the connector allows them (Docplanner
 * `pushAuth.headerName`, Instinctive Notes `auth.headerName`), HTTP Basic, bearer values and path
 * keys — go through a started hub and `buildApp` on loopback; then every API answer about them
 * (inbound list and detail, events, deliveries, instances), the dashboard page and the dashboard's
 * API, every log line (the production logger at debug level, with no secret values to scrub, so
 * this checks what is written, not the scrubber) and every stored row (each table of the hub's
 * schemas as text) are searched for the credential values.
 */
import { readFileSync } from 'node:fs';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedConnectors } from '../../connectors.ts';
import { generateSecret } from '../../delivery/sign.ts';
import { createLogger } from '../../logging/logger.ts';
import { createHub, type Hub } from '../../pipeline/hub.ts';
import { uiPlugin } from '../../ui/plugin.ts';
import { buildApp, type SwitchyardApp } from '../app.ts';

const database = useTestDatabase();
const ADMIN_TOKEN = 'push-credentials-admin-token-7d1e';
const DEAD_API = 'http://127.0.0.1:9/api';

const DP_KEY = 'dp-push-key-Q7w9Zr4Kx2';
const CW_KEY = 'cw-hook-key-M3n8Pt6Vb1yy';
const BB_PASSWORD = 'bb-basic-pw-H5j2Lc9Xq4';
const BB_BASIC = Buffer.from(`bb-user:${BB_PASSWORD}`).toString('base64');
const IN_SECRET = 'in-shared-secret-R8t3Wk5Nd0zz';
const QB_TOKEN = 'qb-bearer-F4g7Sd1Ha6';

interface Case {
  id: string;
  connector: string;
  settings: Record<string, unknown>;
  /** The credential values that must not appear anywhere. */
  secrets: string[];
  /** Good pushes: path below `/hooks/{id}`, headers, fixture file. */
  pushes: { path?: string; headers: Record<string, string>; fixture: string }[];
}

const cases: Case[] = [
  {
    id: 'dp',
    connector: 'docplanner',
    settings: {
      domain: 'znanylekarz.pl',
      apiBaseUrl: DEAD_API,
      clientId: 'cred-client',
      clientSecret: 'dp-client-secret-unused-1',
      pushAuth: { headerName: 'X-Docplanner-Auth', apiKey: DP_KEY },
    },
    secrets: [DP_KEY],
    pushes: [
      { headers: { 'x-docplanner-auth': DP_KEY }, fixture: 'slot-booked.json' },
      { headers: { 'X-Docplanner-Auth': DP_KEY }, fixture: 'booking-canceled.json' },
    ],
  },
  {
    id: 'cw',
    connector: 'clockwisemd',
    settings: { auth: { mode: 'either', key: CW_KEY }, apiKey: 'cw-api-key-unused-2', apiBaseUrl: DEAD_API },
    secrets: [CW_KEY],
    pushes: [
      { headers: { authtoken: CW_KEY }, fixture: 'create.json' },
      { path: `/${CW_KEY}`, headers: {}, fixture: 'checkin.json' },
    ],
  },
  {
    id: 'bb',
    connector: 'bookingbug',
    settings: { basicAuth: { username: 'bb-user', password: BB_PASSWORD } },
    secrets: [BB_PASSWORD, BB_BASIC],
    pushes: [
      { headers: { authorization: `Basic ${BB_BASIC}` }, fixture: 'created.json' },
      {
        path: '/cancellation',
        headers: { authorization: `Basic ${BB_BASIC}` },
        fixture: 'cancelled-via-cancellation-url.json',
      },
    ],
  },
  {
    id: 'in',
    connector: 'instinctive-notes',
    settings: { auth: { mode: 'either', headerName: 'X-IN-Auth', secret: IN_SECRET } },
    secrets: [IN_SECRET],
    pushes: [
      { headers: { 'x-in-auth': IN_SECRET }, fixture: 'soap-note-created.json' },
      { path: `/${IN_SECRET}`, headers: {}, fixture: 'soap-note-updated.json' },
    ],
  },
  {
    id: 'qb',
    connector: 'quable',
    settings: { authorization: `Bearer ${QB_TOKEN}` },
    secrets: [QB_TOKEN],
    pushes: [
      { headers: { authorization: `Bearer ${QB_TOKEN}` }, fixture: 'document-create.json' },
      { headers: { authorization: `Bearer ${QB_TOKEN}` }, fixture: 'media-update.json' },
    ],
  },
];

const logLines: string[] = [];
let hub: Hub;
let app: SwitchyardApp;
let base: string;
let subscriber: RecordingSubscriber;
let cookie: string;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({});
  const logger = createLogger({
    level: 'debug',
    pretty: false,
    destination: { write: (l) => logLines.push(l) },
  });
  hub = await createHub({
    databaseUrl: database.url(),
    connectors: shippedConnectors,
    secretKey: 'push-credentials-secret-key-0123',
    logger,
    options: {
      queue: false,
      pollIntervalMs: 100,
      retryJitter: 0,
      normalizeRetryMs: [20],
      retryScheduleMs: [0],
      instanceCacheMs: 0,
    },
  });
  await hub.start();
  for (const c of cases)
    await hub.instances.upsert({ id: c.id, connector: c.connector, settings: c.settings as never });
  await hub.subscriptions.create({
    id: 'all',
    url: `${subscriber.url}all`,
    secrets: [generateSecret()],
    allowPrivateAddresses: true,
  });
  app = await buildApp({
    hub,
    adminToken: ADMIN_TOKEN,
    logger,
    authRateLimit: false,
    plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const signIn = await fetch(`${base}/ui/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-switchyard-ui': '1' },
    body: JSON.stringify({ token: ADMIN_TOKEN }),
  });
  expect(signIn.status).toBe(204);
  cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await hub?.stop();
  await subscriber?.close();
});

function fixture(connector: string, file: string): string {
  return readFileSync(
    new URL(`../../../../connectors/${connector}/fixtures/${file}`, import.meta.url),
    'utf8',
  );
}

/** Every answer text (status, headers, body) of the calls made for one case. */
async function get(path: string, answers: string[], headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  answers.push(
    `GET ${path} ${res.status}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${text}`,
  );
  expect(res.status, `GET ${path}`).toBeLessThan(400);
  return JSON.parse(text.startsWith('{') ? text : '{}') as { items?: { id: string }[] };
}

/** Each table of the hub's schemas, every row as text, and raw bodies as hex too (bytea prints as hex). */
async function storedText(): Promise<string> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: database.url() });
  await client.connect();
  try {
    const tables = await client.query<{ schema: string; name: string }>(
      `select table_schema as schema, table_name as name from information_schema.tables
        where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
    );
    const parts: string[] = [];
    for (const t of tables.rows) {
      const rows = await client.query<{ row: string }>(
        `select t::text as row from ${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)} t`,
      );
      for (const r of rows.rows) parts.push(`${t.schema}.${t.name}: ${r.row}`);
    }
    return parts.join('\n');
  } finally {
    await client.end();
  }
}

function leaks(haystacks: Record<string, string>, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const [where, text] of Object.entries(haystacks)) {
    for (const secret of secrets) {
      for (const form of [secret, Buffer.from(secret).toString('hex')]) {
        const at = text.indexOf(form);
        if (at !== -1)
          found.push(`${where}: …${text.slice(Math.max(0, at - 160), at)}[${secret.slice(0, 4)}…]`);
      }
    }
  }
  return found;
}

describe.each(cases)('$connector credentials', (c) => {
  it('are in no API answer, dashboard page, log line or stored row', { timeout: 60_000 }, async () => {
    for (const push of c.pushes) {
      const res = await fetch(`${base}/hooks/${c.id}${push.path ?? ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...push.headers },
        body: fixture(c.connector, push.fixture),
      });
      expect(res.status, `${push.fixture}: ${await res.text()}`).toBeLessThan(300);
    }
    // A refused push too: its log line must not carry what was presented either.
    const refused = await fetch(`${base}/hooks/${c.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...c.pushes[0]!.headers, authorization: 'Bearer nope' },
      body: '{}',
    });
    expect([401, 400]).toContain(refused.status);

    // Wait (bounded) until normalization settled every stored message, so events and deliveries exist.
    const until = Date.now() + 30_000;
    for (;;) {
      const page = await hub.inbound.list({ instanceId: c.id });
      if (page.items.length >= c.pushes.length && page.items.every((m) => m.status !== 'received')) break;
      if (Date.now() > until)
        throw new Error(`inbound messages still pending: ${JSON.stringify(page.items)}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const answers: string[] = [];
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const inbound = (await get(`/v1/inbound?instanceId=${c.id}`, answers, admin)).items ?? [];
    expect(inbound.length).toBeGreaterThanOrEqual(c.pushes.length);
    for (const m of inbound) {
      await get(`/v1/inbound/${m.id}`, answers, admin);
      await get(`/v1/inbound/${m.id}`, answers, { cookie }); // as the dashboard reads it
    }
    const events = (await get(`/v1/events?source=${c.id}`, answers, admin)).items ?? [];
    for (const e of events) {
      await get(`/v1/events/${e.id}`, answers, admin);
      await get(`/v1/dashboard/events/${e.id}/inbound`, answers, { cookie });
    }
    const deliveries = (await get('/v1/deliveries?limit=200', answers, admin)).items ?? [];
    for (const d of deliveries.slice(0, 20)) await get(`/v1/deliveries/${d.id}`, answers, admin);
    await get(`/v1/instances/${c.id}`, answers, admin);
    await get('/v1/dashboard/overview', answers, { cookie });
    // The dashboard's event search pages like every admin list: limit 1..1000, at most 500 answered
    // (it was 400 past 500).
    await get(`/v1/dashboard/events?vendorId=${encodeURIComponent(c.id)}&limit=1000`, answers, { cookie });
    await get('/ui/', answers, { cookie });

    const stored = await storedText();
    // The scan saw the real thing: the pushes' headers are stored, and the logs have the requests.
    expect(stored.includes('content-type') && stored.includes('[redacted]'), 'headers were stored').toBe(
      true,
    );
    expect(logLines.join('').includes(`/hooks/${c.id}`), 'the pushes were logged').toBe(true);
    expect(leaks({ answers: answers.join('\n----\n'), logs: logLines.join(''), stored }, c.secrets)).toEqual(
      [],
    );
  });
});
