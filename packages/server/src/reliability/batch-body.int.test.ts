/**
 * Batch pushes and the pool (issue 18 item 5). A request's raw body is stored once, however many
 * notifications it carries: a Docplanner array of 300 envelopes (~1 MB, within the 1 MiB limit)
 * is accepted and stored as 300 messages sharing one body row. And a statement that fails inside
 * the Postgres driver answers a retryable 5xx with what happened, and never leaves a broken
 * connection in the pool: the next pushes on the same process succeed.
 */
import { readFileSync } from 'node:fs';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  API_KEY,
  INSTANCE,
  type InProcessHub,
  openPool,
  realInstances,
  startInProcessHub,
} from './support.test-support.ts';

const database = useTestDatabase();

const admin = async (h: InProcessHub, path: string) => {
  const res = await fetch(`${h.base}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  // biome-ignore lint/suspicious/noExplicitAny: test reads arbitrary fields of admin answers.
  return { status: res.status, json: (await res.json()) as any };
};

describe('a Docplanner batch push', () => {
  let h: InProcessHub;
  const dp = realInstances(9).find((i) => i.id === 'dp')!;

  beforeAll(async () => {
    h = await startInProcessHub({ databaseUrl: database.url(), adminToken: ADMIN_TOKEN, bodyLimit: 1 << 20 });
    await h.hub.instances.upsert({ id: dp.id, connector: dp.connector, settings: dp.settings as JsonObject });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('of 300 envelopes (~1 MB) is accepted and its body stored once', { timeout: 60_000 }, async () => {
    // The vendor's own slot-booked example, one per booking, each with a longer comment so the
    // array weighs what the outside run sent (~3.3 kB per envelope).
    const example = JSON.parse(
      readFileSync(
        new URL('../../../connectors/docplanner/fixtures/slot-booked.json', import.meta.url),
        'utf8',
      ),
    );
    const envelopes = Array.from({ length: 300 }, (_, n) => {
      const e = structuredClone(example);
      e.data.visit_booking.id = String(310_000_000 + n);
      e.data.visit_booking.comment = `Kontrola ciśnienia ${n} ${'x'.repeat(2200)}`;
      return e;
    });
    const body = JSON.stringify(envelopes);
    expect(body.length).toBeGreaterThan(950_000);
    expect(Buffer.byteLength(body)).toBeLessThan(1 << 20);

    const res = await fetch(`${h.base}/hooks/${dp.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...dp.goodHeaders },
      body,
    });
    expect(res.status).toBeLessThan(300);
    await res.arrayBuffer();

    const pool = openPool(database.url());
    try {
      const stored = await pool.query<{ messages: number; bodies: number; body_id: string }>(
        `select count(*)::int as messages, count(distinct body_id)::int as bodies, min(body_id::text) as body_id
           from switchyard.inbound_messages where instance_id = $1`,
        [dp.id],
      );
      expect(stored.rows[0]).toMatchObject({ messages: 300, bodies: 1 });
      const bodies = await pool.query<{ n: number; bytes: number }>(
        'select count(*)::int as n, sum(octet_length(body))::int as bytes from switchyard.inbound_bodies',
      );
      expect(bodies.rows[0]).toEqual({ n: 1, bytes: Buffer.byteLength(body) });
    } finally {
      await pool.end();
    }

    // Every message still shows the request's body as received (the API, and so the dashboard).
    const list = await admin(h, `/v1/inbound?instanceId=${dp.id}&limit=2`);
    expect(list.json.items).toHaveLength(2);
    for (const item of list.json.items) {
      const detail = await admin(h, `/v1/inbound/${item.id}`);
      expect(detail.status).toBe(200);
      expect(detail.json.rawBody).toBe(body);
    }

    // The vendor's retry of the whole request stores nothing more, not even a second body.
    const again = await fetch(`${h.base}/hooks/${dp.id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...dp.goodHeaders },
      body,
    });
    expect(again.status).toBeLessThan(300);
    await again.arrayBuffer();
    const pool2 = openPool(database.url());
    try {
      const n = await pool2.query<{ n: number }>('select count(*)::int as n from switchyard.inbound_bodies');
      expect(n.rows[0]!.n).toBe(1);
    } finally {
      await pool2.end();
    }
  });
});

describe('a statement that fails in the driver', () => {
  let h: InProcessHub;

  beforeAll(async () => {
    // One connection: the push after the failure gets the very connection the failure used.
    h = await startInProcessHub({ databaseUrl: database.url(), adminToken: ADMIN_TOKEN, poolSize: 1 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const push = async (body: Record<string, unknown>) => {
    const res = await fetch(`${h.base}/hooks/${INSTANCE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as { code?: string; detail?: string } };
  };

  it('answers a retryable 5xx that says so, and leaves no broken connection in the pool', async () => {
    // Warm up: the inbound statement is prepared on the one connection.
    expect((await push({ id: 'pc-0', subject: 'pc-s' })).status).toBe(202);

    const failed = await push({ id: 'pc-bad', subject: 'pc-s', unencodable: true });
    expect(failed.status).toBe(500);
    expect(failed.json.code).toBe('SY_PIPELINE_NOT_STORED');
    expect(failed.json.detail).toMatch(/failed to store.*send it again/);

    // Ordinary pushes on the same process (and the same pooled connection) are stored.
    for (let n = 1; n <= 5; n++) {
      const ok = await push({ id: `pc-${n}`, subject: 'pc-s' });
      expect(ok.status, JSON.stringify(ok.json)).toBe(202);
    }
    const page = await h.hub.inbound.list({ instanceId: INSTANCE });
    expect(page.items.map((m) => m.dedupeKey).sort()).toEqual([
      'pc-0',
      'pc-1',
      'pc-2',
      'pc-3',
      'pc-4',
      'pc-5',
    ]);
  });
});
