/**
 * The pull feed's long-poll (`GET /v1/subscriptions/{id}/events?wait=N`), as a downstream reader
 * that cannot expose an endpoint uses it: two hubs on one database, an HTTP-only one (no workers,
 * as `--role http`) that takes pushes and serves the feed, and a worker one (as `--role worker`)
 * that normalizes. A reader waiting on the HTTP hub is answered as soon as the worker stores the
 * event (woken by `CHANNEL_FEED` through Postgres), not when its wait runs out.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeHubEvents } from '../events/emit.ts';
import {
  call,
  eventually,
  hookConnector,
  listen,
  makeHub,
  SECRET_KEY,
  silent,
  VENDOR_API_KEY,
} from '../http/app.test-support.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { CHANNEL_FEED } from '../storage/queues.ts';

const database = useTestDatabase();
/** As `--role http`: no workers; long-polls held here. At most 3 wait at once. */
let httpHub: Hub;
/** As `--role worker`: normalizes what the HTTP hub stored. */
let workerHub: Hub;
let server: Awaited<ReturnType<typeof listen>>;
let secret: string;

const FEED = '/v1/subscriptions/reader/events';

beforeAll(async () => {
  httpHub = await createHub({
    databaseUrl: database.url(),
    connectors: [hookConnector as never],
    secretKey: SECRET_KEY,
    logger: silent,
    options: { workers: false, queue: false, feedWaiters: 3, instanceCacheMs: 0 },
  });
  await httpHub.start();
  workerHub = await makeHub(database.url());
  await workerHub.start();
  await httpHub.instances.upsert({ id: 'shop', connector: 'hooktest', settings: { apiKey: VENDOR_API_KEY } });
  server = await listen(httpHub);
}, 60_000);
afterAll(async () => {
  await server?.close();
  await workerHub?.stop({ graceful: false });
  await httpHub?.stop({ graceful: false });
});

async function push(id: string): Promise<void> {
  const r = await call(server.base, 'POST', '/hooks/shop', {
    body: { id, type: 'created', booking: id },
    token: null,
    headers: { 'x-api-key': VENDOR_API_KEY },
  });
  expect(r.status).toBe(202);
}

/** Every `CHANNEL_FEED` payload sent while `body` runs, and for `settleMs` after. */
async function feedNotifications(body: () => Promise<void>, settleMs = 1500): Promise<string[]> {
  const client = new pg.Client({ connectionString: database.url() });
  await client.connect();
  const heard: string[] = [];
  client.on('notification', (n) => {
    if (n.channel === CHANNEL_FEED) heard.push(n.payload ?? '');
  });
  try {
    await client.query(`LISTEN ${CHANNEL_FEED}`);
    await body();
    await new Promise((r) => setTimeout(r, settleMs));
    return heard;
  } finally {
    await client.end();
  }
}

const vendorIdOf = (e: { data: { vendorIds: { value: string }[] } }) => e.data.vendorIds[0]!.value;

/** A long-poll started now: its answer and how long it took, ms. */
function longPoll(query: string, init: { signal?: AbortSignal } = {}) {
  const started = Date.now();
  return fetch(`${server.base}${FEED}?${query}`, {
    headers: { authorization: `Bearer ${secret}` },
    ...init,
  }).then(async (res) => ({
    status: res.status,
    headers: res.headers,
    // biome-ignore lint/suspicious/noExplicitAny: the test reads the answer field by field.
    json: (await res.json()) as any,
    ms: Date.now() - started,
  }));
}

/**
 * A long-poll on a connection of its own (node:http, no agent), to be dropped by `destroy()` as a
 * reader that goes away drops it (fetch's abort leaves the client's pool to decide about the socket).
 */
function reader(after: string): http.ClientRequest {
  const request = http.get(`${server.base}${FEED}?after=${after}&wait=20`, {
    agent: false,
    headers: { authorization: `Bearer ${secret}` },
  });
  request.on('error', () => {});
  return request;
}

function example(type: string): EventEnvelope {
  // biome-ignore lint/suspicious/noExplicitAny: the schema's examples are read as they are.
  const schema = getSchemas().find((x) => x.$id.endsWith(`/events/${type}.json`)) as any;
  const { sequence: _, ...event } = structuredClone(schema.examples[0]!);
  return { ...event, id: randomUUID(), subject: `appointment/${randomUUID()}` };
}

describe('the pull feed long-poll', () => {
  it('sends no feed NOTIFY while no pull subscription matches (a webhook-only hub pays nothing)', async () => {
    await httpHub.subscriptions.create({ id: 'hooks', url: 'https://crm.example/hooks' });
    const heard = await feedNotifications(async () => {
      await push('no-reader-1');
      await eventually(async () => (await httpHub.events.list({ limit: 10 })).items.length > 0);
    });
    expect(heard).toEqual([]);
  });

  it('answers a reader waiting on the HTTP hub as soon as the worker hub stores a matching event', async () => {
    const created = await httpHub.subscriptions.create({
      id: 'reader',
      kind: 'pull',
      eventTypes: ['appointment.*'],
      sources: ['shop'],
    });
    secret = created.secret!;
    const first = await longPoll('limit=10');
    expect(first.status).toBe(200);
    // The event stored before the subscription existed is read too (the feed is the log).
    const cursor = first.json.nextCursor as string;

    const waiting = longPoll(`after=${cursor}&wait=20`);
    await eventually(async () => httpHub.feed.waiting() === 1);
    const heard = await feedNotifications(async () => {
      await push('woken-1');
      const answer = await waiting;
      expect(answer.status).toBe(200);
      expect(answer.json.events.map(vendorIdOf)).toEqual(['woken-1']);
      // Well before the 20 s wait ends: woken through Postgres by the worker's commit.
      expect(answer.ms).toBeLessThan(8000);
      expect(BigInt(answer.json.nextCursor)).toBeGreaterThan(BigInt(cursor));
    }, 200);
    expect(heard).toContain('reader');
    expect(httpHub.feed.waiting()).toBe(0);
  }, 30_000);

  it('answers an empty page with the same cursor once the wait runs out', async () => {
    const head = (await longPoll('limit=1000')).json.nextCursor as string;
    const answer = await longPoll(`after=${head}&wait=1`);
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ events: [], nextCursor: head });
    expect(answer.ms).toBeGreaterThanOrEqual(950);
    expect(answer.ms).toBeLessThan(3000);
    // Without wait, at once as before.
    expect((await longPoll(`after=${head}`)).ms).toBeLessThan(900);
  });

  it('refuses a wait beyond the bound with 400', async () => {
    const r = await call(server.base, 'GET', `${FEED}?wait=31`, { token: secret });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('SY_HTTP_VALIDATION');
    expect(r.json.errors[0].pointer).toBe('/wait');
  });

  it('waits on while the only new event is held back behind a missing sequence, and serves it once the window passed', async () => {
    const head = (await longPoll('limit=1000')).json.nextCursor as string;
    const waiting = longPoll(`after=${head}&wait=20`);
    await eventually(async () => httpHub.feed.waiting() === 1);
    // A sequence drawn and never stored (a rolled-back writer): the event after it is held for the
    // commit window (FEED_COMMIT_WINDOW_S, 3 s), and nothing is NOTIFYed when that passes.
    await sql`select nextval('switchyard.events_sequence_seq')`.execute(httpHub.host.db);
    const stored = Date.now();
    await storeHubEvents(httpHub.host.db, [{ ...example('appointment.created'), source: 'shop' }]);
    const answer = await waiting;
    expect(answer.json.events).toHaveLength(1);
    const after = Date.now() - stored;
    // Not early (the woken read found it held), not at the end of the wait (it looked again).
    expect(after).toBeGreaterThanOrEqual(2500);
    expect(after).toBeLessThan(8000);
  }, 30_000);

  it('frees the place of a reader that went away, and refuses one beyond the bound with 503 and Retry-After', async () => {
    const head = (await longPoll('limit=1000')).json.nextCursor as string;
    const readers = [reader(head), reader(head), reader(head)];
    await eventually(async () => httpHub.feed.waiting() === 3);
    // Operators see them (this process's gauge).
    const metrics = await call(server.base, 'GET', '/metrics', { token: null });
    expect(metrics.text).toMatch(/^switchyard_feed_long_polls 3$/m);
    const full = await call(server.base, 'GET', `${FEED}?after=${head}&wait=20`, { token: secret });
    expect(full.status).toBe(503);
    expect(full.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(full.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(full.json.code).toBe('SY_HTTP_FEED_WAITERS_FULL');
    // Without wait a reader is still answered.
    expect((await call(server.base, 'GET', `${FEED}?after=${head}`, { token: secret })).status).toBe(200);

    readers[0]!.destroy();
    await eventually(async () => httpHub.feed.waiting() === 2, 3000);
    const another = reader(head);
    await eventually(async () => httpHub.feed.waiting() === 3, 3000);
    for (const r of [readers[1]!, readers[2]!, another]) r.destroy();
    await eventually(async () => httpHub.feed.waiting() === 0, 3000);
  }, 30_000);

  it('answers waiting readers at once when the app closes, instead of holding the stop', async () => {
    const other = await listen(httpHub);
    const head = (await longPoll('limit=1000')).json.nextCursor as string;
    const started = Date.now();
    const waiting = fetch(`${other.base}${FEED}?after=${head}&wait=25`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    await eventually(async () => httpHub.feed.waiting() === 1);
    await other.close();
    const closedMs = Date.now() - started;
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ events: [], nextCursor: head });
    expect(closedMs).toBeLessThan(5000);
    expect(httpHub.feed.waiting()).toBe(0);
    // The hub's other app still long-polls.
    const still = longPoll(`after=${head}&wait=1`);
    expect((await still).ms).toBeGreaterThanOrEqual(950);
  }, 30_000);

  it('serves nothing to a waiting reader whose secret was rotated out or whose subscription was deleted meanwhile', async () => {
    const waitWith = async (id: string, change: () => Promise<unknown>, pushed: string, wait = 20) => {
      const created = await httpHub.subscriptions.create({
        id,
        kind: 'pull',
        eventTypes: ['appointment.*'],
        sources: ['shop'],
      });
      const path = `/v1/subscriptions/${id}/events`;
      const auth = { authorization: `Bearer ${created.secret!}` };
      const head = (
        (await (await fetch(`${server.base}${path}?limit=1000`, { headers: auth })).json()) as {
          nextCursor: string;
        }
      ).nextCursor;
      const waiting = fetch(`${server.base}${path}?after=${head}&wait=${wait}`, { headers: auth });
      await eventually(async () => httpHub.feed.waiting() === 1);
      await change();
      await push(pushed);
      const answer = await waiting;
      return { status: answer.status, body: await answer.text() };
    };
    // A leaked secret revoked (no overlap) while its holder waits: the event stored after the
    // revocation is not handed to it.
    const rotated = await waitWith(
      'revoked',
      () => httpHub.subscriptions.rotateSecret('revoked', { overlapMs: 0 }),
      'after-revocation',
    );
    expect(rotated.status).toBe(401);
    expect(rotated.body).not.toContain('after-revocation');
    // Deleted: no NOTIFY names it any more, so its wait runs out (3 s here) and is refused.
    const removed = await waitWith(
      'removed',
      () => httpHub.subscriptions.remove('removed'),
      'after-removal',
      3,
    );
    expect(removed.status).toBe(401);
    expect(removed.body).not.toContain('after-removal');
    expect(httpHub.feed.waiting()).toBe(0);
  }, 60_000);
});
