import { gzipSync } from 'node:zlib';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import { call, eventually, listen, makeHub, VENDOR_API_KEY } from './app.test-support.ts';
import { matchPushRoute } from './routes/hooks.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;
let subscriber: RecordingSubscriber;
let base: string;

const vendor = (body: unknown, key = VENDOR_API_KEY) =>
  ({ body, token: null, headers: { 'x-api-key': key } }) as const;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await hub.instances.upsert({
    id: 'shop',
    connector: 'hooktest',
    mode: 'push',
    settings: { apiKey: VENDOR_API_KEY },
  });
  subscriber = await startRecordingSubscriber();
  await hub.subscriptions.create({ id: 'sink', url: `${subscriber.url}sink`, allowPrivateAddresses: true });
  server = await listen(hub, { bodyLimit: 4096 });
  base = server.base;
});
afterAll(async () => {
  await server?.close();
  await subscriber?.close();
  await hub?.stop();
});

describe('matchPushRoute', () => {
  const routes = [
    { name: 'default', path: '' },
    { name: 'cancellation', path: 'cancellation' },
    { name: 'keyed', path: ':key' },
  ];
  it('matches literal, empty and parameter paths, and nothing else', () => {
    expect(matchPushRoute(routes, '')).toEqual({ name: 'default', params: {} });
    expect(matchPushRoute(routes, 'cancellation')).toEqual({ name: 'cancellation', params: {} });
    expect(matchPushRoute(routes, 'a%20b/')).toEqual({ name: 'keyed', params: { key: 'a b' } });
    expect(matchPushRoute(routes, 'a/b')).toBeUndefined();
  });
});

describe('POST /hooks/:instance', () => {
  it('stores, answers with the connector acknowledgement and delivers', async () => {
    const r = await call(
      base,
      'POST',
      '/hooks/shop?tag=x&tag=y',
      vendor({ id: 'p1', type: 'created', booking: 'b1' }),
    );
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ received: 1 });
    const [delivered] = await subscriber.waitFor(1);
    expect(delivered!.type).toBe('appointment.created');
    const inbound = await hub.inbound.list({ instanceId: 'shop' });
    const detail = await hub.inbound.get(inbound.items[0]!.id);
    expect(detail.route).toBe('default');
    expect(detail.headers?.['x-api-key']).toBe('[redacted]');
    expect(detail.rawBody).toBe(JSON.stringify({ id: 'p1', type: 'created', booking: 'b1' }));
  });

  it('routes the connector’s extra paths with their parameters', async () => {
    const cancel = await call(
      base,
      'POST',
      '/hooks/shop/cancellation',
      vendor({ id: 'p2', type: 'created', booking: 'b1' }),
    );
    expect(cancel.status).toBe(202);
    const keyed = await call(base, 'POST', `/hooks/shop/k/${VENDOR_API_KEY}`, {
      body: { id: 'p3', type: 'created' },
      token: null,
    });
    expect(keyed.status).toBe(202);
    const wrongKey = await call(base, 'POST', '/hooks/shop/k/nope', {
      body: { id: 'p4', type: 'created' },
      token: null,
    });
    expect(wrongKey.status).toBe(401);
    const routes = (await hub.inbound.list({ instanceId: 'shop' })).items.map(
      (m) => `${m.route}:${m.vendorType}`,
    );
    expect(routes).toEqual(expect.arrayContaining(['cancellation:cancelled', 'keyed:created']));
  });

  it('hands the connector the hook URL as server.publicUrl names it, whatever Host and X-Forwarded-* say', async () => {
    // Behind a TLS-terminating proxy the hub is reached as http://127.0.0.1:port; a vendor that
    // signs the URL (Square) signed https://hub.example.com/hooks/...: only publicUrl knows it.
    const proxied = await listen(hub, {
      publicUrl: 'https://hub.example.com/',
      trustedProxies: ['127.0.0.1'],
    });
    try {
      const r = await call(proxied.base, 'POST', '/hooks/shop/cancellation?tag=a%20b', {
        ...vendor({ id: 'u1', type: 'created', booking: 'bu' }),
        headers: {
          'x-api-key': VENDOR_API_KEY,
          host: 'evil.example',
          'x-forwarded-host': 'evil.example',
          'x-forwarded-proto': 'http',
        },
      });
      expect(r.status).toBe(202);
      expect(r.json).toEqual({
        received: 1,
        hookUrl: 'https://hub.example.com/hooks/shop/cancellation?tag=a%20b',
      });
    } finally {
      await proxied.close();
    }
    // Without publicUrl the hub does not guess it from the sender's headers.
    const plain = await call(
      base,
      'POST',
      '/hooks/shop',
      vendor({ id: 'u2', type: 'created', booking: 'bu' }),
    );
    expect(plain.json).toEqual({ received: 1 });
  });

  it('takes any content type as raw bytes', async () => {
    const r = await call(base, 'POST', '/hooks/shop', {
      raw: JSON.stringify({ id: 'p5', type: 'noop' }),
      token: null,
      headers: { 'x-api-key': VENDOR_API_KEY, 'content-type': 'text/plain' },
    });
    expect(r.status).toBe(202);
    // A Buffer body makes fetch send no content-type at all.
    const none = await call(base, 'POST', '/hooks/shop', {
      raw: Buffer.from(JSON.stringify({ id: 'p6', type: 'noop' })),
      token: null,
      headers: { 'x-api-key': VENDOR_API_KEY },
    });
    expect(none.status).toBe(202);
  });

  it('refuses a compressed body (Content-Encoding) with a 415 problem naming the encoding, and stores nothing', async () => {
    const before = (await hub.inbound.list({})).items.length;
    const body = JSON.stringify({ id: 'gz1', type: 'created', booking: 'b1' });
    const gzipped = await call(base, 'POST', '/hooks/shop', {
      raw: gzipSync(body),
      token: null,
      headers: {
        'x-api-key': VENDOR_API_KEY,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
    });
    expect(gzipped.status).toBe(415);
    expect(gzipped.headers.get('content-type')).toContain('application/problem+json');
    expect(gzipped.headers.get('accept-encoding')).toBe('identity');
    expect(gzipped.json).toMatchObject({ code: 'SY_HTTP_UNSUPPORTED_MEDIA_TYPE', instance: '/hooks/shop' });
    expect(gzipped.json.detail).toContain('gzip');
    // The admin API alike: its JSON parser took the compressed bytes for malformed JSON (400).
    const admin = await call(base, 'POST', '/v1/subscriptions/sink/disable', {
      raw: gzipSync('{}'),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    expect(admin.status).toBe(415);
    expect(admin.json.code).toBe('SY_HTTP_UNSUPPORTED_MEDIA_TYPE');
    expect((await hub.inbound.list({})).items.length).toBe(before);
    // `identity` is no encoding at all.
    const identity = await call(base, 'POST', '/hooks/shop', {
      raw: body,
      token: null,
      headers: {
        'x-api-key': VENDOR_API_KEY,
        'content-type': 'application/json',
        'content-encoding': 'identity',
      },
    });
    expect(identity.status).toBe(202);
  });

  it('answers a duplicate like the original without storing it twice', async () => {
    const before = (await hub.inbound.list({ instanceId: 'shop' })).items.length;
    const again = await call(
      base,
      'POST',
      '/hooks/shop',
      vendor({ id: 'p1', type: 'created', booking: 'b1' }),
    );
    expect(again.status).toBe(202);
    expect((await hub.inbound.list({ instanceId: 'shop' })).items.length).toBe(before);
  });

  it('refuses a wrong key with a 401 problem and stores nothing', async () => {
    const before = (await hub.inbound.list({})).items.length;
    const r = await call(base, 'POST', '/hooks/shop', vendor({ id: 'bad-key', type: 'created' }, 'wrong'));
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json).toMatchObject({ status: 401, code: 'SY_CONNECTOR_AUTH', instance: '/hooks/shop' });
    expect(r.json.type).toBe('https://switchyard.dev/problems/SY_CONNECTOR_AUTH');
    expect((await hub.inbound.list({})).items.length).toBe(before);
  });

  it('stores a push Postgres refuses as it is (a NUL, a lone surrogate) with those characters replaced, and delivers it', async () => {
    // A vendor that cut a patient's comment in the middle of an emoji sends a lone surrogate.
    const raw = '{"id":"nul-1","type":"created","booking":"b-nul","comment":"call me\\u0000 first \\ud83d"}';
    const r = await call(base, 'POST', '/hooks/shop', {
      raw,
      token: null,
      headers: { 'x-api-key': VENDOR_API_KEY, 'content-type': 'application/json' },
    });
    // Before: 400 "the payload cannot be stored", which a vendor drops: the booking was lost.
    expect(r.status).toBe(202);
    const delivered = await subscriber.waitFor((request) => request.text.includes('b-nul'));
    expect((delivered.json as { data: { comment: string } }).data.comment).toBe('call me\uFFFD first \uFFFD');
    const [message] = (await hub.inbound.list({ instanceId: 'shop' })).items.filter(
      (m) => m.dedupeKey === 'default:nul-1',
    );
    const detail = await hub.inbound.get(message!.id);
    expect(detail.rawBody).toBe(raw);
    expect(detail.status).toBe('normalized');
    expect((await hub.instances.health('shop')).lastError).toMatch(
      /^push: 1 notification\(s\) Postgres refused were stored altered/,
    );
    // The vendor's retry of the same bytes is a duplicate, not a second message.
    const again = await call(base, 'POST', '/hooks/shop', {
      raw,
      token: null,
      headers: { 'x-api-key': VENDOR_API_KEY, 'content-type': 'application/json' },
    });
    expect(again.status).toBe(202);
    expect(
      (await hub.inbound.list({ instanceId: 'shop' })).items.filter((m) => m.dedupeKey === 'default:nul-1'),
    ).toHaveLength(1);
  });

  it('answers malformed JSON with a 400 problem', async () => {
    const r = await call(base, 'POST', '/hooks/shop', {
      raw: '{"id": ',
      token: null,
      headers: { 'x-api-key': VENDOR_API_KEY, 'content-type': 'application/json' },
    });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'SY_CONNECTOR_BAD_REQUEST', status: 400 });
  });

  it('answers a body over the limit with a 413 problem that says what the limit is, as an admin call’s 413 does', async () => {
    const push = await call(
      base,
      'POST',
      '/hooks/shop',
      vendor({ id: 'big', type: 'created', pad: 'x'.repeat(5000) }),
    );
    expect(push.status).toBe(413);
    expect(push.json).toMatchObject({
      code: 'SY_HTTP_BODY_TOO_LARGE',
      status: 413,
      title: expect.any(String),
    });
    // fastify's own words were "Request body is too large": the vendor could not tell by how much.
    expect(push.json.detail).toBe(
      'the request body is larger than the limit of 4096 bytes (server.bodyLimit)',
    );
    const admin = await call(base, 'POST', '/v1/subscriptions', {
      body: { id: 'big', url: `http://x/${'a'.repeat(5000)}` },
    });
    expect(admin.status).toBe(413);
    expect(admin.json.detail).toBe(push.json.detail);
  });

  it('answers an unknown instance or route with a 404 problem', async () => {
    const unknown = await call(base, 'POST', '/hooks/nope', vendor({ id: 'x', type: 'created' }));
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'SY_PIPELINE_NOT_FOUND', instance: '/hooks/nope' });
    const route = await call(base, 'POST', '/hooks/shop/elsewhere', vendor({ id: 'x', type: 'created' }));
    expect(route.status).toBe(404);
    expect(route.json.code).toBe('SY_PIPELINE_ROUTE_NOT_FOUND');
  });

  it('answers a wrong method with 405 and Allow, an unknown path with 404', async () => {
    const get = await call(base, 'GET', '/hooks/shop', { token: null });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(get.json.code).toBe('SY_HTTP_METHOD_NOT_ALLOWED');
    const nowhere = await call(base, 'GET', '/nowhere', { token: null });
    expect(nowhere.status).toBe(404);
    expect(nowhere.json).toMatchObject({ code: 'SY_HTTP_NOT_FOUND', status: 404, instance: '/nowhere' });
  });

  it('counts pushes in the metrics by instance and outcome', async () => {
    const r = await call(base, 'GET', '/metrics', { token: null });
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/switchyard_ingest_requests_total\{instance="shop",outcome="accepted"\} [1-9]/);
    expect(r.text).toMatch(
      /switchyard_ingest_requests_total\{instance="shop",outcome="unauthorized"\} [1-9]/,
    );
    expect(r.text).toMatch(
      /switchyard_ingest_requests_total\{instance="_unknown",outcome="not_found"\} [1-9]/,
    );
    expect(r.text).toMatch(/switchyard_ingest_requests_total\{instance="shop",outcome="duplicate"\} [1-9]/);
    // The push over the body limit was refused after its instance admitted it: counted as that
    // instance's, not as one of an id that does not exist (an operator looking for the vendor that
    // sends too much could not tell which one it was).
    expect(r.text).toMatch(/switchyard_ingest_requests_total\{instance="shop",outcome="too_large"\} [1-9]/);
    expect(r.text).not.toContain('instance="_unknown",outcome="too_large"');
    expect(r.text).toContain('switchyard_ingest_duration_seconds_bucket');
  });

  it('answers 503, never 2xx, when the database is gone', async () => {
    const other = await makeHub(database.url());
    await other.instances.upsert({
      id: 'gone',
      connector: 'hooktest',
      mode: 'push',
      settings: { apiKey: VENDOR_API_KEY },
    });
    const app = await listen(other);
    try {
      await other.stop();
      const r = await call(app.base, 'POST', '/hooks/gone', vendor({ id: 'lost', type: 'created' }));
      expect(r.status).toBe(503);
      expect(r.json.code).toBe('SY_STORAGE_UNAVAILABLE');
      const ready = await call(app.base, 'GET', '/readyz', { token: null });
      expect(ready.status).toBe(503);
      expect(ready.json).toMatchObject({ code: 'SY_HTTP_NOT_READY', status: 503 });
    } finally {
      await app.close();
    }
    const healthy = await call(base, 'GET', '/readyz', { token: null });
    expect(healthy.status).toBe(200);
    expect((await call(base, 'GET', '/healthz', { token: null })).json).toEqual({ status: 'ok' });
    await eventually(
      async () => (await hub.inbound.list({ instanceId: 'gone' })).items.length === 0 || undefined,
    );
  });
});
