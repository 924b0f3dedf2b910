/**
 * Property-based fuzzing (fast-check) of every inbound route and the admin API, over a bare
 * socket so nothing sanitises the request first. Whatever arrives, the answer is a 4xx problem
 * (or a 2xx for a valid authenticated push), never a 5xx, the process keeps serving, and a request
 * that failed authentication stores nothing.
 */
import { storableText } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import fc from 'fast-check';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawAnswer, rawRequest } from './raw-http.test-support.ts';
import {
  ADMIN_TOKEN,
  API_KEY,
  fixtureBodies,
  type InProcessHub,
  openPool,
  type RealInstance,
  realInstances,
  startInProcessHub,
} from './support.test-support.ts';

const RUNS = 150;
const database = useTestDatabase();
let h: InProcessHub;
let port: number;
let pool: pg.Pool;
let real: RealInstance[];
/** Warn/error log lines: connector parse failures on hostile input are recorded here. */
const log: string[] = [];
/** What each property sent and got, for the report. */
const tally = new Map<string, Map<number, number>>();

beforeAll(async () => {
  h = await startInProcessHub({
    databaseUrl: database.url(),
    adminToken: ADMIN_TOKEN,
    bodyLimit: 64 * 1024,
    logger: pino({ level: 'warn' }, { write: (line: string) => log.push(line) }),
    // No workers: the fuzz is about the edge; stored rows stay put for counting.
    pipeline: { workers: false },
  });
  port = Number(new URL(h.base).port);
  real = realInstances(9);
  for (const r of real)
    await h.hub.instances.upsert({ id: r.id, connector: r.connector, settings: r.settings as never });
  pool = openPool(database.url());
});

afterAll(async () => {
  await h?.close();
  await pool?.end();
  console.info('fuzz tally', Object.fromEntries([...tally].map(([k, v]) => [k, Object.fromEntries(v)])));
});

const count = async (table: string) =>
  Number((await pool.query<{ n: string }>(`select count(*) as n from switchyard.${table}`)).rows[0]!.n);

function record(property: string, a: RawAnswer) {
  const m = tally.get(property) ?? new Map<number, number>();
  m.set(a.status, (m.get(a.status) ?? 0) + 1);
  tally.set(property, m);
}

/** A 4xx problem+json whose document agrees with the status line. */
function expectProblem(a: RawAnswer, what: string) {
  expect(a.status, `${what} → ${a.status} ${a.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${what} → ${a.status} ${a.body.slice(0, 300)}`).toBeLessThan(500);
  expect(a.headers['content-type'], what).toContain('application/problem+json');
  const doc = JSON.parse(a.body) as { status: number; code: string; type: string };
  expect(doc.status).toBe(a.status);
  expect(doc.code).toMatch(/^SY_[A-Z_]+$/);
}

// ---- generators -------------------------------------------------------------------------

const deep = (n: number, open: string, close: string, inner = '1') =>
  `${open.repeat(n)}${inner}${close.repeat(n)}`;

/** Bodies: valid and broken JSON, binary, odd encodings, deep nesting, over the size limit. */
const hostileBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.json().map((s) => Buffer.from(s)),
  fc.json().map((s) => Buffer.from(s.slice(0, Math.max(0, s.length - 1 - (s.length >> 1))))),
  fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 2000 }).map((u) => Buffer.from(u)),
  fc
    .constantFrom(
      deep(20_000, '[', ']'),
      deep(10_000, '{"a":', '}'),
      '{"id":"x\\u0000","subject":"s"}',
      '{"id":"x","subject":"\\ud800"}',
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}',
      '',
      'null',
      '[]',
      '{"id":',
      '\ufeff{"id":"bom","subject":"s"}',
      'id=1&subject=2',
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    )
    .map((s) => Buffer.from(s)),
  fc.json().map((s) => Buffer.from(`\ufeff${s}`, 'utf16le')),
  fc.constant(Buffer.alloc(80 * 1024, 'a')), // over the 64 KiB body limit
);

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16le',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/xml',
  'application/cloudevents+json',
  '*/*',
  ';;;',
  'application/json; charset=""',
  undefined,
);

/** Path segments: plain, encoded, traversal, overlong, invalid escapes. */
const segment = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)),
  fc.constantFrom(
    '..',
    '%2e%2e',
    '..%2f..%2fv1%2fsubscriptions',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '%00',
    '%ff%fe',
    '%E0%A4%A',
    '%',
    '~',
    'a'.repeat(2000),
    '%252e%252e',
    '.%2e',
    '%5c..%5c..',
  ),
);

/** Headers a hostile client adds, including CRLF injection attempts (which split into headers). */
const extraHeaders = fc.array(
  fc.oneof(
    fc
      .tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/), fc.stringMatching(/^[\x20-\x7e]{0,60}$/))
      .map(([n, v]) => `${n}: ${v}`),
    fc.constantFrom(
      'X-Forwarded-For: 127.0.0.1',
      'X-Forwarded-Host: admin.internal',
      'X-Original-URL: /v1/subscriptions',
      'X-Rewrite-URL: /v1/instances',
      'X-Api-Key: wrong\r\nX-Injected: yes',
      'Authorization: Bearer\r\nAuthorization: Bearer x',
      'Transfer-Encoding: identity',
      'Expect: 100-continue',
      `X-Long: ${'v'.repeat(8000)}`,
    ),
  ),
  { maxLength: 4 },
);

/** Credentials that are all wrong: none, near misses, other schemes, other connectors' headers. */
const wrongCredential = fc.oneof(
  fc.constantFrom(
    undefined,
    'X-Api-Key: ',
    `X-Api-Key: ${API_KEY}x`,
    `X-Api-Key: ${API_KEY.slice(0, -1)}`,
    `X-Api-Key: ${API_KEY.toUpperCase()}`,
    `Authorization: Bearer ${API_KEY}`,
    `Authorization: Bearer ${ADMIN_TOKEN}`,
    'Authorization: Basic YmItdXNlcjp3cm9uZw==',
    'X-Docplanner-Key: wrong-key-000',
    'Authtoken: wrong',
    'X-Instinctive-Secret: wrong',
    'Authorization: Bearer qb-wrong',
  ),
  fc.stringMatching(/^[\x21-\x7e]{1,40}$/).map((v) => `X-Api-Key: ${v}`),
);

function request(method: string, path: string, headers: (string | undefined)[], body: Buffer, type?: string) {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...(type ? [`Content-Type: ${type}`] : [])];
  for (const h of headers) if (h) lines.push(h);
  return rawRequest(port, lines.join('\r\n'), body);
}

// ---- properties -------------------------------------------------------------------------

describe('inbound hooks', () => {
  it('answers every unauthenticated or malformed push with a 4xx problem and stores nothing', {
    timeout: 120_000,
  }, async () => {
    const before = await count('inbound_messages');
    const instances = ['rel', ...real.map((r) => r.id)];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...instances), segment),
        fc.oneof(
          fc.constantFrom('', '/', '/k/wrong-key', '/cancellation', '/k/..%2f..%2fv1'),
          segment.map((s) => `/${s}`),
        ),
        fc.constantFrom('POST', 'POST', 'POST', 'PUT', 'GET', 'DELETE', 'PATCH', 'OPTIONS'),
        contentType,
        hostileBody,
        wrongCredential,
        extraHeaders,
        async (instance, rest, method, type, body, credential, extra) => {
          const path = `/hooks/${instance}${rest}`;
          const a = await request(method, path, [credential, ...extra], body, type);
          record('hooks-unauthenticated', a);
          expectProblem(a, `${method} ${path}`);
        },
      ),
      { numRuns: RUNS },
    );
    expect(await count('inbound_messages')).toBe(before);
  });

  it('answers hostile bodies with valid credentials with 2xx (stored) or a 4xx problem, never a 5xx', {
    timeout: 120_000,
  }, async () => {
    const acked = new Set<string>();
    const before = await count('inbound_messages');
    const fixtures = Object.fromEntries(real.map((r) => [r.id, fixtureBodies(r.vendor)]));
    // Fixture bodies with one field replaced by anything, or cut short; plus the hostile set.
    const mutated = (id: string) =>
      fc
        .tuple(fc.constantFrom(...fixtures[id]!), fc.anything(), fc.nat(), fc.boolean())
        .map(([text, value, n, cut]) => {
          if (cut) return Buffer.from(text.slice(0, n % text.length));
          const doc = JSON.parse(text) as Record<string, unknown>;
          const keys = Object.keys(doc);
          if (keys.length > 0) doc[keys[n % keys.length]!] = value;
          return Buffer.from(JSON.stringify(doc) ?? 'null');
        });
    const relBody = fc.oneof(
      fc
        .record({
          id: fc.string({ minLength: 1, maxLength: 30 }),
          subject: fc.string({ maxLength: 30 }),
          extra: fc.anything(),
        })
        .map((b) => Buffer.from(JSON.stringify(b))),
      hostileBody,
    );
    const target = fc.oneof(
      relBody.map((body) => ({ id: 'rel', route: '', headers: { 'x-api-key': API_KEY }, body })),
      ...real.map((r) =>
        fc
          .tuple(fc.constantFrom(...r.routes), fc.oneof(mutated(r.id), hostileBody))
          .map(([route, body]) => ({ id: r.id, route, headers: r.goodHeaders, body })),
      ),
    );
    await fc.assert(
      fc.asyncProperty(target, contentType, async (t, type) => {
        const path = `/hooks/${t.id}${t.route ? `/${t.route}` : ''}`;
        const a = await request(
          'POST',
          path,
          Object.entries(t.headers).map(([k, v]) => `${k}: ${v}`),
          t.body,
          type ?? 'application/json',
        );
        record('hooks-authenticated', a);
        if (a.status >= 200 && a.status < 300) {
          // An id Postgres refuses as it is (a NUL, a lone surrogate) is stored with U+FFFD in their place.
          if (t.id === 'rel')
            acked.add(
              storableText((JSON.parse(t.body.toString('utf8').replace(/^\ufeff/, '')) as { id: string }).id),
            );
          return;
        }
        expectProblem(a, `POST ${path} ${t.body.subarray(0, 80).toString('utf8')}`);
      }),
      { numRuns: RUNS * 2 },
    );
    // Every 2xx of the test connector was stored, once per id; nothing else of it was.
    const rows = await pool.query<{ dedupe_key: string }>(
      `select dedupe_key from switchyard.inbound_messages where instance_id = 'rel'`,
    );
    expect(new Set(rows.rows.map((r) => r.dedupe_key))).toEqual(acked);
    expect(await count('inbound_messages')).toBeGreaterThanOrEqual(before + acked.size);
  });
});

describe('admin API', () => {
  const adminRoutes = () =>
    h.app.switchyard.routes.routes.filter((r) => r.url.startsWith('/v1/') && r.auth === 'admin');
  const fill = (url: string, values: string[]) => {
    let i = 0;
    return url.replace(/:[A-Za-z]+/g, () => values[i++ % values.length] ?? 'x');
  };

  it('refuses every admin route with a missing or wrong token, whatever else the request carries', {
    timeout: 120_000,
  }, async () => {
    const routes = adminRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(20);
    const before = await Promise.all(
      ['subscriptions', 'connector_instances', 'deliveries', 'inbound_messages'].map(count),
    );
    const wrongToken = fc.oneof(
      fc.constantFrom(
        undefined,
        'Authorization: Bearer',
        'Authorization: Bearer ',
        `Authorization: Bearer ${ADMIN_TOKEN}x`,
        `Authorization: Bearer ${ADMIN_TOKEN.slice(1)}`,
        `Authorization: Bearer ${ADMIN_TOKEN.toUpperCase()}`,
        `Authorization: Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`,
        `Authorization: ${ADMIN_TOKEN}`,
        `X-Api-Key: ${ADMIN_TOKEN}`,
        `Authorization: Bearer ${API_KEY}`,
        `Cookie: token=${ADMIN_TOKEN}`,
      ),
      fc.stringMatching(/^[\x21-\x7e]{1,60}$/).map((t) => `Authorization: Bearer ${t}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.array(segment, { minLength: 1, maxLength: 2 }),
        fc.option(
          fc
            .string({ maxLength: 40 })
            .map((q) => `?${encodeURIComponent(q)}=${encodeURIComponent(q)}&limit=-1`),
          { nil: '' },
        ),
        wrongToken,
        contentType,
        hostileBody,
        extraHeaders,
        async (route, params, query, token, type, body, extra) => {
          const path = `${fill(route.url, params)}${query}`;
          const a = await request(route.method, path, [token, ...extra], body, type);
          record('admin-unauthenticated', a);
          expectProblem(a, `${route.method} ${path}`);
          // A traversal or odd segment may leave the route (404) or not decode at all (400
          // SY_HTTP_BAD_REQUEST); it must never reach a handler.
          // 429: once the auth-failure limiter is registered, repeated refusals from loopback trip it.
          // 431: two 8,000-byte headers beside two 2,000-byte segments overflow Node's 16 KiB head
          // limit; the parser refuses the request before any route (seed -1613108216 drew it).
          expect([401, 404, 405, 413, 400, 429, 431], `${route.method} ${path} → ${a.status}`).toContain(
            a.status,
          );
          if (a.status === 400) expect(JSON.parse(a.body).code).toBe('SY_HTTP_BAD_REQUEST');
        },
      ),
      { numRuns: RUNS * 2 },
    );
    const after = await Promise.all(
      ['subscriptions', 'connector_instances', 'deliveries', 'inbound_messages'].map(count),
    );
    expect(after).toEqual(before);
  });

  it('answers hostile authenticated admin calls with a 2xx or a 4xx problem, never a 5xx', {
    timeout: 120_000,
  }, async () => {
    const routes = adminRoutes().filter((r) => !(r.method === 'DELETE' && r.url.startsWith('/v1/instances')));
    const jsonBody = fc.oneof(
      fc.json().map((s) => Buffer.from(s)),
      fc
        .record(
          {
            url: fc.oneof(
              fc.webUrl(),
              fc.string(),
              fc.constantFrom('http://169.254.169.254/latest', 'file:///etc/passwd', 'http://[::1]:22/'),
            ),
            kind: fc.constantFrom('webhook', 'pull', 'carrier-pigeon'),
            eventTypes: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
            secrets: fc.array(fc.string(), { maxLength: 2 }),
            timeoutMs: fc.integer(),
            retryScheduleMs: fc.array(fc.integer(), { maxLength: 4 }),
            id: fc.string({ maxLength: 30 }),
            connector: fc.constantFrom('reltest', 'docplanner', '../../etc', ''),
            settings: fc.anything(),
            since: fc.string(),
            replayMissed: fc.anything(),
          },
          { requiredKeys: [] },
        )
        .map((o) => Buffer.from(JSON.stringify(o))),
      hostileBody,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.array(
          fc.oneof(segment, fc.constantFrom('rel', 'dp', 'nope', '00000000-0000-0000-0000-000000000000')),
          { minLength: 1, maxLength: 2 },
        ),
        fc.option(
          fc.constantFrom(
            '?limit=0',
            '?limit=100000',
            '?cursor=%00',
            '?cursor=eyJ4IjoxfQ',
            '?status=__proto__',
            '?since=not-a-date',
            '?after=-1',
            '?limit=1e309',
          ),
          { nil: '' },
        ),
        contentType,
        jsonBody,
        async (route, params, query, type, body) => {
          const path = `${fill(route.url, params)}${query}`;
          const hasBody = ['POST', 'PUT', 'PATCH'].includes(route.method);
          const a = await request(
            route.method,
            path,
            [`Authorization: Bearer ${ADMIN_TOKEN}`],
            hasBody ? body : Buffer.alloc(0),
            hasBody ? (type ?? 'application/json') : undefined,
          );
          record('admin-authenticated', a);
          if (a.status >= 200 && a.status < 300) return;
          expectProblem(a, `${route.method} ${path} ${body.subarray(0, 80).toString('utf8')}`);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });
});

describe('after the fuzz', () => {
  it('is still serving, and logged no unexpected error', async () => {
    const health = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x');
    expect(health.status).toBe(200);
    const unexpected = log.filter((l) => /"level":(50|60)/.test(l));
    expect(unexpected.map((l) => l.slice(0, 400))).toEqual([]);
    const parseBugs = log.filter((l) => l.includes('the connector could not parse it'));
    console.info(
      'connector parse failures on hostile input (answered 400):',
      parseBugs.length,
      parseBugs.slice(0, 3).map((l) => JSON.parse(l).err?.message),
    );
  });
});
