import { readFile } from 'node:fs/promises';
import { compileErrors, validate } from '@readme/openapi-parser';
import { validateEvent } from '@switchyard/core';
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import {
  ADMIN_TOKEN,
  broken,
  call,
  eventually,
  listen,
  makeHub,
  VENDOR_API_KEY,
} from './app.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;
let subscriber: RecordingSubscriber;
let base: string;
/** Every answer body of the admin API, to search for leaked secrets at the end. */
const answers: string[] = [];
/** Secrets the API legitimately returned once (create, rotate): must not appear anywhere else. */
const knownSecrets: string[] = [];

async function admin(method: string, path: string, body?: unknown) {
  const r = await call(base, method, path, body === undefined ? {} : { body });
  answers.push(r.text);
  return r;
}

async function pushEvent(id: string, type = 'created', booking = id) {
  const r = await call(base, 'POST', '/hooks/shop', {
    body: { id, type, booking },
    token: null,
    headers: { 'x-api-key': VENDOR_API_KEY },
  });
  expect(r.status).toBe(202);
}

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  subscriber = await startRecordingSubscriber();
  server = await listen(hub);
  base = server.base;
});
afterAll(async () => {
  await server?.close();
  await subscriber?.close();
  await hub?.stop();
});

describe('admin authentication', () => {
  const open = (url: string) =>
    url === '/v1/openapi.json' || /\/v1\/subscriptions\/:id\/(events|ack)$/.test(url);

  it('refuses every /v1 route without the token or with a wrong one', async () => {
    const routes = server.app.switchyard.routes.routes.filter(
      (r) => r.url.startsWith('/v1/') && !open(r.url),
    );
    expect(routes.length).toBeGreaterThanOrEqual(25);
    for (const route of routes) {
      const path = route.url.replace(/:[a-zA-Z]+/g, 'some-id');
      const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? { anything: 1 } : undefined;
      for (const token of [null, 'wrong-token', `${ADMIN_TOKEN}x`]) {
        const r = await call(base, route.method, path, { token, ...(body ? { body } : {}) });
        expect(r.status, `${route.method} ${route.url} with ${token}`).toBe(401);
        expect(r.headers.get('content-type')).toContain('application/problem+json');
        expect(r.json).toMatchObject({ code: 'SY_HTTP_UNAUTHORIZED', status: 401 });
        expect(r.headers.get('www-authenticate')).toContain('Bearer');
      }
    }
    expect(routes.every((r) => r.auth === 'admin')).toBe(true);
  });

  it('closes the admin API when no token is configured', async () => {
    const closed = await listen(hub, { adminToken: undefined });
    try {
      const r = await call(closed.base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN });
      expect(r.status).toBe(401);
      expect(r.json.detail).toContain('closed');
    } finally {
      await closed.close();
    }
  });
});

describe('problems', () => {
  it('answers schema violations with 400 and errors[]', async () => {
    const r = await admin('POST', '/v1/subscriptions', {
      url: 'not a url',
      kind: 'carrier-pigeon',
      extra: true,
    });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('SY_HTTP_VALIDATION');
    expect(r.json.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ in: 'body', pointer: '/extra' }),
        expect.objectContaining({ in: 'body', pointer: '/kind' }),
      ]),
    );
    const q = await admin('GET', '/v1/events?limit=0');
    expect(q.status).toBe(400);
    expect(q.json.errors[0]).toMatchObject({ in: 'querystring', pointer: '/limit' });
  });

  it('refuses a query parameter a route does not take (400 naming it), as the paged lists do', async () => {
    // The unpaged lists took `?limit=5` and answered every item, as if it had been applied.
    for (const path of ['/v1/events?page=2', '/v1/subscriptions?limit=5', '/v1/instances?limit=5']) {
      const r = await admin('GET', path);
      expect(r.status, path).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.json.code).toBe('SY_HTTP_VALIDATION');
      expect(r.json.errors, path).toEqual([
        expect.objectContaining({ in: 'querystring', pointer: `/${path.split('?')[1]!.split('=')[0]}` }),
      ]);
    }
  });

  it('answers 404 for an empty id (a collection with a trailing slash), on every admin route', async () => {
    // `GET /v1/instances/` matched `/v1/instances/:id` with an empty id and answered 400 "params/id
    // must NOT have fewer than 1 characters": no such item is a 404, as for any other unknown id.
    for (const [method, path] of [
      ['GET', '/v1/instances/'],
      ['PUT', '/v1/instances/'],
      ['GET', '/v1/instances//health'],
      ['GET', '/v1/subscriptions/'],
      ['DELETE', '/v1/subscriptions/'],
      ['POST', '/v1/subscriptions//disable'],
      ['GET', '/v1/events/'],
      ['GET', '/v1/deliveries/'],
      ['GET', '/v1/inbound/'],
    ] as const) {
      const r = await admin(method, path, method === 'PUT' ? { connector: 'shop', settings: {} } : undefined);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.json.code, `${method} ${path}`).toBe('SY_HTTP_NOT_FOUND');
    }
  });

  it('says a + sent unescaped in a date query parameter arrived as a space, as FHIR date search does', async () => {
    // `since=2026-01-01T10:00:00+01:00` arrives as `…10:00:00 01:00` (form encoding): the answer said
    // only "must match format \"date-time\"", FHIR's date search said to send the + as %2B.
    for (const name of ['since', 'until']) {
      const r = await admin('GET', `/v1/events?${name}=2026-01-01T10:00:00+01:00`);
      expect(r.status).toBe(400);
      expect(r.json.errors).toEqual([
        {
          in: 'querystring',
          pointer: `/${name}`,
          message: 'must match format "date-time" (a + in a URL query is a space: send the zone as %2B)',
        },
      ]);
    }
    // Escaped, it is a date like any other.
    expect((await admin('GET', '/v1/events?since=2026-01-01T10:00:00%2B01:00')).status).toBe(200);
  });

  it('answers 415 for a non-JSON admin body and 400 for malformed JSON', async () => {
    const xml = await call(base, 'POST', '/v1/subscriptions', {
      raw: '<a/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(xml.status).toBe(415);
    expect(xml.json.code).toBe('SY_HTTP_UNSUPPORTED_MEDIA_TYPE');
    for (const path of ['/v1/subscriptions', '/v1/instances']) {
      const text = await call(base, 'POST', path, {
        raw: '{"url":"x"}',
        headers: { 'content-type': 'text/plain' },
      });
      expect([path, text.status, text.json.code]).toEqual([path, 415, 'SY_HTTP_UNSUPPORTED_MEDIA_TYPE']);
    }
    const bad = await call(base, 'POST', '/v1/subscriptions', {
      raw: '{"url":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('SY_HTTP_MALFORMED_BODY');
    // An empty body under a JSON content type is no body: an optional one is fine, a required one
    // is refused by its schema, and prototype poisoning is still refused.
    const json = { 'content-type': 'application/json' };
    await call(base, 'POST', '/v1/subscriptions', {
      body: { id: 'empty-body', url: 'https://crm.example/hooks', allowPrivateAddresses: false },
    });
    const disabled = await call(base, 'POST', '/v1/subscriptions/empty-body/disable', {
      raw: '',
      headers: json,
    });
    expect([disabled.status, disabled.json.disabledAt === null]).toEqual([200, false]);
    const enabled = await call(base, 'POST', '/v1/subscriptions/empty-body/enable', {
      raw: '',
      headers: json,
    });
    expect([enabled.status, enabled.json.subscription.disabledAt]).toEqual([200, null]);
    const none = await call(base, 'POST', '/v1/subscriptions', { raw: '', headers: json });
    expect([none.status, none.json.code]).toEqual([400, 'SY_HTTP_VALIDATION']);
    const poisoned = await call(base, 'POST', '/v1/subscriptions', {
      raw: '{"__proto__":{"x":1},"url":"https://crm.example"}',
      headers: json,
    });
    expect([poisoned.status, poisoned.json.code]).toEqual([400, 'SY_HTTP_MALFORMED_BODY']);
    await call(base, 'DELETE', '/v1/subscriptions/empty-body');
  });

  it('maps hub errors to their registry status', async () => {
    const missing = await admin('GET', '/v1/subscriptions/nope');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: 'SY_PIPELINE_NOT_FOUND', instance: '/v1/subscriptions/nope' });
    // Past the route's schema (a rule on the merged subscription), refused by the hub: a FHIR
    // filter pattern with no FHIR meaning.
    const invalid = await admin('POST', '/v1/subscriptions', {
      url: 'https://crm.example/hooks',
      format: 'fhir-r4',
      eventTypes: ['appointment.*', 'asset.*'],
    });
    expect(invalid.status).toBe(422);
    expect(invalid.json.code).toBe('SY_PIPELINE_INVALID_INPUT');
    expect(JSON.stringify(invalid.json)).not.toContain('stack');
    // A bad whsec_ secret is the schema's, as every other bad field: 400, the secret not repeated.
    const secret = await admin('POST', '/v1/subscriptions', {
      url: 'https://crm.example/hooks',
      secrets: ['whsec_not base64!'],
    });
    expect(secret.status).toBe(400);
    expect(secret.json.code).toBe('SY_HTTP_VALIDATION');
    expect(secret.json.errors[0].pointer).toBe('/secrets/0');
    expect(JSON.stringify(secret.json)).not.toContain('not base64');
  });
});

describe('instances', () => {
  it('creates, reads, replaces (keeping redacted secrets) and deletes API-managed instances', async () => {
    const created = await admin('POST', '/v1/instances', {
      id: 'shop',
      connector: 'hooktest',
      settings: { apiKey: VENDOR_API_KEY, region: 'eu' },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      id: 'shop',
      mode: 'push',
      managedBy: 'api',
      settings: { apiKey: '[redacted]' },
    });
    expect(
      (
        await admin('POST', '/v1/instances', {
          id: 'shop',
          connector: 'hooktest',
          settings: { apiKey: VENDOR_API_KEY },
        })
      ).status,
    ).toBe(409);
    // Two creates of one id at once: one is created, the other is told it exists (before, both
    // answered 201 and the second silently replaced the first).
    const raced = await Promise.all(
      ['first', 'second'].map((region) =>
        admin('POST', '/v1/instances', {
          id: 'raced',
          connector: 'hooktest',
          settings: { apiKey: VENDOR_API_KEY, region },
        }),
      ),
    );
    expect(raced.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(raced.find((r) => r.status === 409)!.json).toMatchObject({ code: 'SY_PIPELINE_CONFLICT' });
    expect((await admin('DELETE', '/v1/instances/raced')).status).toBe(204);

    const got = await admin('GET', '/v1/instances/shop');
    const replaced = await admin('PUT', '/v1/instances/shop', {
      connector: 'hooktest',
      settings: { ...got.json.settings, region: 'us' },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json.settings).toEqual({ apiKey: '[redacted]', region: 'us' });
    await pushEvent('inst-1'); // the stored key still authenticates: "[redacted]" kept it
    // Normalized before the next test disables a subscription: an event stored after that would be
    // one it missed while disabled (its enable with replayMissed counts them).
    await eventually(async () => (await admin('GET', '/v1/inbound?status=received')).json.items.length === 0);

    expect((await admin('GET', '/v1/instances')).json.items.map((i: { id: string }) => i.id)).toContain(
      'shop',
    );
    const health = await admin('GET', '/v1/instances/shop/health');
    expect(health.json).toMatchObject({ id: 'shop', pull: null, inbound: { failed: 0 } });
    // Its connector cannot be pulled: "pull now" says so (it answered 200 {"stored":0} and moved the
    // instance's next pull an hour on).
    const pulled = await admin('POST', '/v1/instances/shop/pull');
    expect(pulled.status).toBe(409);
    expect(pulled.json).toMatchObject({ code: 'SY_PIPELINE_CONFLICT' });
    expect(pulled.json.detail).toMatch(/connector "hooktest" has no pull/);

    await admin('PUT', '/v1/instances/temp', {
      connector: 'hooktest',
      settings: { apiKey: 'temporary-key-123' },
    });
    expect((await admin('DELETE', '/v1/instances/temp')).status).toBe(204);
    expect((await admin('GET', '/v1/instances/temp')).status).toBe(404);
  });

  it('refuses to change or delete a file-managed instance', async () => {
    await hub.instances.upsert({
      id: 'from-file',
      connector: 'hooktest',
      settings: { apiKey: 'file-key-abcdef' },
      managedBy: 'file',
    });
    const put = await admin('PUT', '/v1/instances/from-file', {
      connector: 'hooktest',
      settings: { apiKey: 'x' },
    });
    expect(put.status).toBe(409);
    expect(put.json.code).toBe('SY_HTTP_FILE_MANAGED');
    expect((await admin('DELETE', '/v1/instances/from-file')).status).toBe(409);
  });
});

describe('subscriptions', () => {
  it('creates (secret shown once), lists, updates, disables, enables, rotates, tests and deletes', async () => {
    const created = await admin('POST', '/v1/subscriptions', {
      id: 'crm',
      url: `${subscriber.url}crm`,
      eventTypes: ['appointment.*'],
      allowPrivateAddresses: true,
    });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    expect(secret).toMatch(/^whsec_/);
    knownSecrets.push(secret);
    expect(created.json.subscription.secrets[0].secretHint).not.toBe(secret);

    const got = await admin('GET', '/v1/subscriptions/crm');
    expect(got.json).toMatchObject({
      id: 'crm',
      kind: 'webhook',
      eventTypes: ['appointment.*'],
      managedBy: 'api',
    });
    expect(got.json.secret).toBeUndefined();
    expect((await admin('GET', '/v1/subscriptions')).json.items.map((s: { id: string }) => s.id)).toContain(
      'crm',
    );

    const patched = await admin('PATCH', '/v1/subscriptions/crm', { timeoutMs: 5000 });
    expect(patched.json.timeoutMs).toBe(5000);

    const disabled = await call(base, 'POST', '/v1/subscriptions/crm/disable');
    expect(disabled.status).toBe(200);
    expect(disabled.json.disabledAt).not.toBeNull();
    const enabled = await admin('POST', '/v1/subscriptions/crm/enable', { replayMissed: true });
    expect(enabled.json).toMatchObject({ subscription: { disabledAt: null }, replayed: 0 });

    const rotated = await admin('POST', '/v1/subscriptions/crm/rotate-secret', { overlapMs: 60_000 });
    expect(rotated.status).toBe(200);
    knownSecrets.push(rotated.json.secret);
    expect(rotated.json.subscription.secrets).toHaveLength(2);

    // The default test event is the catalog's hub.test, valid against its published schema.
    const test = await admin('POST', '/v1/subscriptions/crm/test', {});
    expect(test.status).toBe(200);
    expect(test.json).toMatchObject({ ok: true, statusCode: 200 });
    const received = await subscriber.waitFor((r) => r.path === '/crm' && r.type === 'hub.test');
    expect(received.headers['webhook-signature']?.split(' ')).toHaveLength(2);
    const sent = { ...(received.json as object), sequence: '1' }; // a delivered event's sequence; a test has none
    expect(validateEvent(sent)).toEqual({ valid: true });
    expect(received.json).toMatchObject({
      subject: 'hub/test',
      data: { message: 'Test event sent from the admin API.' },
    });

    await admin('POST', '/v1/subscriptions', {
      id: 'short-lived',
      url: `${subscriber.url}x`,
      allowPrivateAddresses: true,
    });
    expect((await admin('DELETE', '/v1/subscriptions/short-lived')).status).toBe(204);
    expect((await admin('GET', '/v1/subscriptions/short-lived')).status).toBe(404);
  });
});

describe('events, deliveries and replay', () => {
  it('pages through events with a cursor and filters', async () => {
    for (const id of ['pg-1', 'pg-2', 'pg-3', 'pg-4', 'pg-5']) await pushEvent(id);
    await eventually(async () => (await hub.events.list({ limit: 100 })).items.length >= 6 || undefined);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof admin>> = await admin(
        'GET',
        `/v1/events?limit=2&type=appointment.*${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.json.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.items.map((e: { id: string }) => e.id));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe((await hub.events.list({ limit: 100 })).items.length);
    const none = await admin('GET', '/v1/events?source=elsewhere');
    expect(none.json.items).toEqual([]);
    const future = await admin(
      'GET',
      `/v1/events?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`,
    );
    expect(future.json.items).toEqual([]);
    // RFC 3339 (the schema's date-time) allows a leap second, which no JavaScript date holds: a
    // 422 naming the parameter, as the other lists answer it, not a 400 about a NUL character.
    for (const path of ['/v1/events?since=2016-12-31T23:59:60Z', '/v1/events?until=2016-12-31T23:59:60Z']) {
      const leap = await admin('GET', path);
      expect([path, leap.status, leap.json.code]).toEqual([path, 422, 'SY_PIPELINE_INVALID_INPUT']);
      expect(leap.json.detail).toMatch(/^(since|until) must be a valid date$/);
    }

    const one = await admin('GET', `/v1/events/${seen[0]}`);
    expect(one.json.event).toMatchObject({ id: seen[0], source: 'shop', instance: 'shop' });
    expect(Array.isArray(one.json.deliveries)).toBe(true);
  });

  it('shows a dead delivery with its attempts and replays it', async () => {
    await admin('POST', '/v1/subscriptions', {
      id: 'flaky',
      url: `${subscriber.url}flaky`,
      allowPrivateAddresses: true,
      retryScheduleMs: [0, 20],
    });
    subscriber.setHandler((r) => (r.path === '/flaky' ? 500 : undefined));
    await pushEvent('dead-1');
    const dead = await eventually(async () => {
      const r = await admin('GET', '/v1/deliveries?subscriptionId=flaky&status=dead');
      return r.json.items[0];
    });
    const detail = await admin('GET', `/v1/deliveries/${dead.id}`);
    expect(detail.json.attemptLog.map((a: { statusCode: number }) => a.statusCode)).toEqual([500, 500]);
    // Tracing is off in this hub: no attempt names a trace.
    expect(detail.json.attemptLog.map((a: { traceId: string | null }) => a.traceId)).toEqual([null, null]);

    subscriber.setHandler(undefined);
    const replay = await admin('POST', `/v1/deliveries/${dead.id}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.json).toMatchObject({ reason: 'replay', replayOf: dead.id, eventId: dead.eventId });
    await eventually(
      async () => (await admin('GET', `/v1/deliveries/${replay.json.id}`)).json.status === 'succeeded',
    );
    // Replayed: no longer a dead letter waiting, and a second replay is refused unless forced.
    const waiting = await admin('GET', '/v1/deliveries?subscriptionId=flaky&status=dead&replayed=false');
    expect(waiting.json.items).toEqual([]);
    const replayedDead = await admin('GET', '/v1/deliveries?subscriptionId=flaky&status=dead&replayed=true');
    expect(replayedDead.json.items).toEqual([
      expect.objectContaining({ id: dead.id, supersededBy: replay.json.id }),
    ]);
    const again = await admin('POST', `/v1/deliveries/${dead.id}/replay`);
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({
      code: 'SY_PIPELINE_CONFLICT',
      details: { delivery: dead.id, replayedAs: replay.json.id },
    });
    expect(
      (await admin('GET', `/v1/deliveries?eventId=${dead.eventId}&subscriptionId=flaky`)).json.items,
    ).toHaveLength(2);
    const forced = await admin('POST', `/v1/deliveries/${dead.id}/replay`, { force: true });
    expect(forced.status).toBe(202);
    expect(forced.json).toMatchObject({ replayOf: dead.id });
    await eventually(
      async () => (await admin('GET', `/v1/deliveries/${forced.json.id}`)).json.status === 'succeeded',
    );

    subscriber.setHandler((r) => (r.path === '/flaky' ? 500 : undefined));
    await pushEvent('dead-2');
    await eventually(
      async () =>
        (await admin('GET', '/v1/deliveries?subscriptionId=flaky&status=dead')).json.items.length >= 2,
    );
    subscriber.setHandler(undefined);
    const dead2 = (await admin('GET', '/v1/deliveries?subscriptionId=flaky&status=dead&replayed=false')).json
      .items[0];
    // Two clicks at once (one on the delivery, one on "replay all dead"): it is replayed once.
    const [one, all] = await Promise.all([
      admin('POST', `/v1/deliveries/${dead2.id}/replay`),
      admin('POST', '/v1/subscriptions/flaky/replay-dead'),
    ]);
    expect([one.status, all.status].sort()).toEqual(one.status === 202 ? [200, 202] : [200, 409]);
    expect((one.status === 202 ? 1 : 0) + all.json.replayed).toBe(1);
    const ofDead2 = await admin('GET', `/v1/deliveries?eventId=${dead2.eventId}&subscriptionId=flaky`);
    expect(
      ofDead2.json.items.filter((d: { replayOf: string | null }) => d.replayOf === dead2.id),
    ).toHaveLength(1);
    const since = await admin('POST', '/v1/subscriptions/flaky/replay-since', {
      since: new Date(Date.now() - 60_000).toISOString(),
    });
    expect(since.json.replayed).toBeGreaterThanOrEqual(2);
  });
});

describe('inbound messages', () => {
  it('lists failed messages and re-normalizes one after the connector is fixed', async () => {
    broken.add('confirmed');
    await pushEvent('boom-1', 'confirmed');
    const failed = await eventually(
      async () => (await admin('GET', '/v1/inbound?status=failed&instanceId=shop')).json.items[0],
    );
    expect(failed).toMatchObject({ vendorType: 'confirmed', status: 'failed' });
    const detail = await admin('GET', `/v1/inbound/${failed.id}`);
    expect(detail.json.headers['x-api-key']).toBe('[redacted]');
    expect(detail.json.payload).toMatchObject({ id: 'boom-1' });

    broken.delete('confirmed');
    const again = await admin('POST', `/v1/inbound/${failed.id}/renormalize`);
    expect(again.status).toBe(202);
    await eventually(
      async () => (await admin('GET', `/v1/inbound/${failed.id}`)).json.status === 'normalized',
    );
    expect((await admin('POST', `/v1/inbound/${failed.id}/renormalize`)).status).toBe(409);
  });
});

describe('subscriber pull feed', () => {
  it('reads and acknowledges with the subscription’s own secret, never the admin token', async () => {
    const created = await admin('POST', '/v1/subscriptions', {
      id: 'puller',
      kind: 'pull',
      eventTypes: ['appointment.*'],
    });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    knownSecrets.push(secret);
    await pushEvent('feed-1');
    await pushEvent('feed-2');

    const asAdmin = await call(base, 'GET', '/v1/subscriptions/puller/events');
    expect(asAdmin.status).toBe(401);
    const wrong = await call(base, 'GET', '/v1/subscriptions/puller/events', { token: `${secret}x` });
    expect(wrong.status).toBe(401);
    const unknown = await call(base, 'GET', '/v1/subscriptions/nobody/events', { token: secret });
    expect(unknown.status).toBe(401);

    const page = await eventually(async () => {
      const r = await call(base, 'GET', '/v1/subscriptions/puller/events?limit=1', { token: secret });
      return r.json.events?.length === 1 ? r : undefined;
    });
    answers.push(page.text);
    const ack = await call(base, 'POST', '/v1/subscriptions/puller/ack', {
      token: secret,
      body: { cursor: page.json.nextCursor },
    });
    expect(ack.json).toEqual({ cursor: page.json.nextCursor });
    const next = await eventually(async () => {
      const r = await call(base, 'GET', '/v1/subscriptions/puller/events', { token: secret });
      return r.json.events.some(
        (e: { data: { vendorIds: { value: string }[] } }) => e.data.vendorIds[0]!.value === 'feed-2',
      )
        ? r
        : undefined;
    });
    expect(next.json.events[0].sequence > page.json.events[0].sequence).toBe(true);

    // A cursor past the newest event (no poll gave it) is refused: stored, it would hide every
    // event up to it for good, as the position never moves back.
    const past = String(BigInt(next.json.nextCursor) + 1000n);
    const beyond = await call(base, 'POST', '/v1/subscriptions/puller/ack', {
      token: secret,
      body: { cursor: past },
    });
    expect(beyond.status).toBe(422);
    // Without the newest event's number: the hub's, across subscriptions this reader does not see.
    expect(beyond.json.detail).toBe(
      `cursor ${past} is past the newest event: use a nextCursor the feed gave`,
    );
    await pushEvent('feed-3');
    const after = await eventually(async () => {
      const r = await call(base, 'GET', '/v1/subscriptions/puller/events', { token: secret });
      return r.json.events.some(
        (e: { data: { vendorIds: { value: string }[] } }) => e.data.vendorIds[0]!.value === 'feed-3',
      )
        ? r
        : undefined;
    });
    expect(after.status).toBe(200);
  });

  it('refuses the feed of a disabled subscription (401, read and ack) until it is enabled again', async () => {
    const created = await admin('POST', '/v1/subscriptions', { id: 'paused', kind: 'pull' });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    knownSecrets.push(secret);
    const read = () => call(base, 'GET', '/v1/subscriptions/paused/events', { token: secret });
    const first = await read();
    expect(first.status).toBe(200);
    // Disabled by an operator (or dropped from the configuration file, or by the hub): its reader
    // is refused, as its command credentials and FHIR read token are. Before, it went on reading
    // every new event (patient data) with its secret for as long as it liked.
    expect(
      (await admin('POST', '/v1/subscriptions/paused/disable', { reason: 'reader retired' })).status,
    ).toBe(200);
    await pushEvent('feed-while-paused');
    const refused = await read();
    expect(refused.status).toBe(401);
    expect(refused.json.code).toBe('SY_HTTP_UNAUTHORIZED');
    const ack = await call(base, 'POST', '/v1/subscriptions/paused/ack', {
      token: secret,
      body: { cursor: first.json.nextCursor },
    });
    expect(ack.status).toBe(401);
    expect((await admin('POST', '/v1/subscriptions/paused/enable', {})).status).toBe(200);
    expect((await read()).status).toBe(200);
  });

  it('refuses a cursor above the largest bigint with 400, on the feed and the lists alike', async () => {
    const created = await admin('POST', '/v1/subscriptions', { id: 'puller-bounds', kind: 'pull' });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    knownSecrets.push(secret);
    // 2^63 and a 20-digit value passed the digits-only check and made Postgres fail with 22003.
    for (const tooBig of ['9223372036854775808', '99999999999999999999']) {
      const poll = await call(base, 'GET', `/v1/subscriptions/puller-bounds/events?after=${tooBig}`, {
        token: secret,
      });
      expect(poll.status).toBe(400);
      expect(poll.json).toMatchObject({ code: 'SY_HTTP_VALIDATION' });
      expect(poll.json.errors[0]).toMatchObject({ in: 'querystring', pointer: '/after' });
      const ack = await call(base, 'POST', '/v1/subscriptions/puller-bounds/ack', {
        token: secret,
        body: { cursor: tooBig },
      });
      expect(ack.status).toBe(400);
      expect(ack.json.errors[0]).toMatchObject({ in: 'body', pointer: '/cursor' });
      for (const list of ['/v1/events', '/v1/deliveries', '/v1/inbound']) {
        const r = await admin('GET', `${list}?cursor=${tooBig}`);
        expect(r.status, list).toBe(400);
        expect(r.json.errors[0]).toMatchObject({ in: 'querystring', pointer: '/cursor' });
      }
    }
    // In words, not the pattern's regex of several hundred characters (an operator audit).
    const words = await admin('GET', '/v1/events?cursor=zzz');
    expect(words.json.detail).toBe('querystring/cursor must be the nextCursor of an earlier page');
    expect(words.json.errors).toEqual([
      { in: 'querystring', pointer: '/cursor', message: 'must be the nextCursor of an earlier page' },
    ]);
    const nearMax = await call(
      base,
      'GET',
      '/v1/subscriptions/puller-bounds/events?after=9223372036854775806',
      {
        token: secret,
      },
    );
    // A valid bigint, but past the newest event: refused like an ack of it, not served as empty.
    expect(nearMax.status).toBe(422);
    expect(nearMax.json).toMatchObject({ code: 'SY_PIPELINE_INVALID_INPUT' });
    expect(nearMax.json.detail).toBe(
      'cursor 9223372036854775806 is past the newest event: use a nextCursor the feed gave',
    );
    const atMax = await admin('GET', '/v1/events?cursor=9223372036854775807');
    expect(atMax.status).toBe(200);
  });
});

describe('metrics and OpenAPI', () => {
  it('exposes every metric family', async () => {
    const r = await call(base, 'GET', '/metrics', { token: null });
    expect(r.headers.get('content-type')).toContain('text/plain');
    for (const name of [
      'switchyard_ingest_requests_total',
      'switchyard_ingest_duration_seconds',
      'switchyard_deliveries{status="dead"}',
      'switchyard_deliveries{status="succeeded"}',
      'switchyard_queue_depth{queue="normalize"}',
      'switchyard_queue_depth{queue="deliver"}',
      'switchyard_ingest_first_seconds_total',
      'switchyard_pull_lag_seconds',
      'switchyard_gate_decisions_total',
      'switchyard_delivery_attempt_duration_seconds',
      // The process's runtime (docs/api.md, "Health and metrics").
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_eventloop_busy_seconds_total',
      'nodejs_gc_duration_seconds',
    ]) {
      expect(r.text).toContain(name);
    }
    // Every family the hub serves is in docs/api.md's table, by name.
    const apiDoc = await readFile(new URL('../../../../docs/api.md', import.meta.url), 'utf8');
    const families = [...r.text.matchAll(/^# TYPE (switchyard_\w+) /gm)].map((m) => m[1]);
    expect(families.filter((f) => !apiDoc.includes(`\`${f}\``))).toEqual([]);
    // Attempts recorded since the previous scrape are observed at this one, in the histogram of the
    // same scrape (it is fed as the scrape reads it, not after).
    const observed = (t: string) => Number(/^switchyard_delivery_attempts_observed (\d+)$/m.exec(t)?.[1]);
    const counted = (t: string) =>
      [...t.matchAll(/^switchyard_delivery_attempt_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    expect(counted(r.text)).toBe(observed(r.text));
    // The same attempts by subscription and outcome: which subscriber fails.
    const bySubscription = [...r.text.matchAll(/^switchyard_delivery_attempts_total\{([^}]*)\} (\d+)$/gm)];
    expect(bySubscription.reduce((sum, m) => sum + Number(m[2]), 0)).toBe(observed(r.text));
    for (const m of bySubscription) expect(m[1]).toMatch(/^subscription="[^"]+",outcome="[a-z_]+"$/);
    const before = observed(r.text);
    await pushEvent('metrics-1');
    await subscriber.waitFor(
      (req) =>
        req.path === '/crm' && req.json !== undefined && JSON.stringify(req.json).includes('metrics-1'),
    );
    // Every scrape, the one that first reads the new attempt included, agrees with itself.
    const later = await eventually(async () => {
      const t = (await call(base, 'GET', '/metrics', { token: null })).text;
      expect(counted(t)).toBe(observed(t));
      return observed(t) > before ? t : undefined;
    });
    expect(later).toMatch(/switchyard_delivery_attempt_duration_seconds_count\{outcome="succeeded"\} [1-9]/);
    expect(later).toMatch(
      /^switchyard_delivery_attempts_total\{subscription="crm",outcome="succeeded"\} [1-9]/m,
    );
  });

  it('publishes a valid OpenAPI 3.1 document covering every API route, and not the dashboard or FHIR', async () => {
    const r = await call(base, 'GET', '/v1/openapi.json', { token: null });
    expect(r.status).toBe(200);
    // A third-party validator, as a client generator's first step: unique operationIds, every path
    // parameter declared, schemas that resolve.
    const result = await validate(structuredClone(r.json));
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(r.json.openapi).toBe('3.1.0');
    const ops = Object.values(r.json.paths as Record<string, Record<string, unknown>>).flatMap((p) =>
      Object.keys(p),
    );
    const routes = server.app.switchyard.routes.routes.filter(
      (x) => x.url !== '/v1/openapi.json' && !x.url.startsWith('/ui') && !x.url.startsWith('/fhir/'),
    );
    expect(Object.keys(r.json.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
    // The FHIR endpoint's contract is its CapabilityStatement (docs/api.md#fhir-r4), its read-token route is API.
    expect(Object.keys(r.json.paths).filter((p) => p.startsWith('/fhir/'))).toEqual([]);
    expect(r.json.paths['/v1/subscriptions/{id}/fhir-read-token'].post.security).toEqual([
      { adminToken: [] },
    ]);
    expect(ops.length).toBe(routes.length);
    // Every operation declares its success answer: a generated client takes an undeclared 204 for an error.
    const withoutSuccess = Object.entries(
      r.json.paths as Record<string, Record<string, { responses?: object }>>,
    )
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })))
      .filter(({ op }) => !Object.keys(op.responses ?? {}).some((status) => /^2\d\d$/.test(status)))
      .map(({ path, method }) => `${method.toUpperCase()} ${path}`);
    expect(withoutSuccess).toEqual([]);
    const get = r.json.paths['/v1/subscriptions/{id}'].get;
    expect(get.security).toEqual([{ adminToken: [] }]);
    expect(get.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    const feed = r.json.paths['/v1/subscriptions/{id}/events'].get;
    expect(feed.security).toEqual([{ subscriptionSecret: [] }]);
    // The long-poll as docs/api.md describes it: `wait` up to 30 s, its 503 with Retry-After, and
    // the 401 of a credential checked again when the wait ends.
    expect(feed.parameters).toContainEqual(
      expect.objectContaining({
        name: 'wait',
        in: 'query',
        schema: expect.objectContaining({ maximum: 30 }),
      }),
    );
    expect(feed.responses['503'].description).toMatch(
      /SY_HTTP_FEED_WAITERS_FULL.*1000.*100 of this subscription/,
    );
    expect(feed.responses['503'].headers['Retry-After']).toBeDefined();
    expect(feed.responses['401'].description).toMatch(/rotated out/);
    // The schemas' cache (docs/api.md, "Caching"): ETag and Cache-Control, and the 304.
    for (const path of ['/schemas/index.json', '/schemas/{path}']) {
      const schemaGet = r.json.paths[path].get;
      expect(Object.keys(schemaGet.responses['200'].headers), path).toEqual(['ETag', 'Cache-Control']);
      expect(schemaGet.responses['304'].description, path).toMatch(/If-None-Match/);
      expect(schemaGet.responses['304'].headers.ETag, path).toBeDefined();
    }
    expect(r.json.paths['/v1/events'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['type', 'source', 'subject', 'since', 'until', 'cursor', 'limit']),
    );
  });
});

describe('secrets', () => {
  it('never shows the admin token, vendor keys or signing secrets in any answer', async () => {
    for (const path of [
      '/v1/instances',
      '/v1/instances/shop',
      '/v1/instances/shop/health',
      '/v1/subscriptions',
      '/v1/subscriptions/crm',
      '/v1/subscriptions/puller',
      '/v1/events?limit=500',
      '/v1/deliveries?limit=500',
      '/v1/inbound?limit=500',
    ]) {
      const r = await admin('GET', path);
      expect(r.status, path).toBe(200);
    }
    for (const m of (await admin('GET', '/v1/inbound?limit=500')).json.items)
      await admin('GET', `/v1/inbound/${m.id}`);
    for (const d of (await admin('GET', '/v1/deliveries?limit=500')).json.items)
      await admin('GET', `/v1/deliveries/${d.id}`);
    for (const e of (await admin('GET', '/v1/events?limit=500')).json.items)
      await admin('GET', `/v1/events/${e.id}`);
    answers.push((await call(base, 'GET', '/metrics', { token: null })).text);
    answers.push((await call(base, 'GET', '/v1/openapi.json', { token: null })).text);

    // The create/rotate answers carried each secret once, by design: leave exactly those out.
    const leaks = answers.filter((text) => !knownSecrets.some((s) => text.includes(`"secret":"${s}"`)));
    expect(leaks.length).toBeGreaterThan(40);
    expect(knownSecrets.length).toBe(5);
    for (const secret of [ADMIN_TOKEN, VENDOR_API_KEY, 'file-key-abcdef', ...knownSecrets]) {
      const found = leaks.find((text) => text.includes(secret));
      expect(found, `a secret leaked into an answer`).toBeUndefined();
    }
  });
});
