/**
 * A subscriber answering just past the stall threshold (STALLED_ATTEMPT_MS, 2 s): each of its
 * requests is taken for stalled. Found by a fault-injection audit: one answering in 1.5-2 s logged
 * "subscriber not answering" 17 times in 75 s, once per request that crossed the threshold. Now it
 * is said at most once a minute per subscription (logging/repeats.ts), the rest at debug.
 */
import http from 'node:http';
import type net from 'node:net';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { STALLED_ATTEMPT_MS } from './deliver.ts';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let slow: http.Server;
const log: { level: number; msg: string; subscription?: string; suppressed?: number }[] = [];

beforeAll(async () => {
  hub = await makeHub(database.url(), {
    logger: pino({ level: 'debug' }, { write: (line: string) => log.push(JSON.parse(line)) }),
  });
  await hub.start();
  await setupInstance(hub);
  // Answers every request, each half a second past the threshold.
  slow = http.createServer((_req, res) => {
    setTimeout(() => res.end('ok'), STALLED_ATTEMPT_MS + 500);
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await hub?.stop();
  slow?.closeAllConnections();
  await new Promise((resolve) => slow?.close(resolve));
});

it('a subscriber that answers just past the stall threshold is warned about once, the rest at debug', async () => {
  await hub.subscriptions.create({
    id: 'slow',
    url: `http://127.0.0.1:${(slow.address() as net.AddressInfo).port}/slow`,
    secrets: [generateSecret()],
    allowPrivateAddresses: true,
    timeoutMs: 10_000,
  });
  // One at a time: each request stalls on its own, the origin's stalled count 0 → 1 each time.
  const rounds = 3;
  for (let i = 0; i < rounds; i++) {
    const r = await hub.ingest('acme-1', push({ id: `slow-${i}`, type: 'created', booking: `slow-b-${i}` }));
    expect(r.ok).toBe(true);
    await eventually(async () => {
      const { rows } = await sql<{ n: string }>`select count(*) as n from switchyard.deliveries
        where subscription_id = 'slow' and status = 'succeeded'`.execute(hub.host.db);
      return Number(rows[0]?.n) >= i + 1;
    }, 20_000);
  }
  const said = log.filter((l) => l.msg.startsWith('subscriber not answering'));
  expect(said.length).toBe(rounds);
  const warnings = said.filter((l) => l.level === 40);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ subscription: 'slow', suppressed: 0 });
  expect(said.filter((l) => l.level === 20)).toHaveLength(rounds - 1);
});
