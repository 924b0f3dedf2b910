/**
 * A vendor's approval request while the hub's database connections go silent (half-open: no byte
 * either way, nothing closed), through a TCP proxy the test freezes: the request's durable write,
 * and the instance read before it once the instance cache has run out, hang until their connection
 * is given up (15 s, or far longer). The vendor, whose timeout is about 2 s, must have the
 * instance's default by the gate deadline all the same.
 */
import { readFileSync } from 'node:fs';
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { expect, it } from 'vitest';
import { createHub } from '../pipeline/hub.ts';
import { startTcpProxy } from '../reliability/tcp-proxy.test-support.ts';
import { createGates } from './gates.ts';

const database = useTestDatabase();
const API_KEY = 'dp-push-key';
const DEADLINE_MS = 1500;
const fixtures = new URL('../../../connectors/docplanner/fixtures/', import.meta.url);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), 'utf8')) as JsonObject;

/** A hub reaching Postgres through a proxy of its own, with instance `dp` (default: refuse). */
async function start(instanceCacheMs: number) {
  const direct = new URL(database.url());
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const proxied = new URL(database.url());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const gates = createGates({ worker: true });
  const hub = await createHub({
    databaseUrl: proxied.toString(),
    connectors: [docplannerConnector],
    secretKey: 'gates-stall-secret-key-0123456789',
    logger: pino({ level: 'silent' }),
    options: { pollIntervalMs: 200, retention: { cron: false }, instanceCacheMs, workers: false },
    ...gates.hooks,
  });
  await hub.start();
  await gates.start(hub.host);
  await hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate: { deadlineMs: DEADLINE_MS, default: 'refuse' },
  });
  return {
    proxy,
    push: (body: JsonObject) => hub.ingest('dp', inboundRequest({ headers: { 'x-api-key': API_KEY }, body })),
    async stop() {
      // The silent connections closed first, so stopping does not wait on them.
      await proxy.close();
      await gates.stop().catch(() => {});
      await hub.stop({ graceful: false }).catch(() => {});
    },
  };
}

/** A vendor approval request to `h`: answered Docplanner's refusal (the default here) by its deadline. */
async function expectDefaultByDeadline(h: { push(body: JsonObject): Promise<{ ok: boolean }> }) {
  const started = Date.now();
  const r = await h.push(fixture('slot-booking'));
  const ms = Date.now() - started;
  expect(r).toMatchObject({ ok: true, status: 409 });
  expect(ms).toBeLessThan(DEADLINE_MS + 5000);
}

it("answers a gate request with the instance's default by its deadline while its write hangs on a silent connection", {
  timeout: 60_000,
}, async () => {
  // The instance as read before the freeze: only the request's own write meets a silent connection.
  const h = await start(600_000);
  try {
    expect((await h.push(fixture('slot-booked'))).ok).toBe(true);
    h.proxy.freeze();
    // Before, the same answer came 15 s later, when the write's connection was given up: long
    // after the vendor's own timeout (about 2 s).
    await expectDefaultByDeadline(h);
  } finally {
    await h.stop();
  }
});

it('answers it by its deadline when the database hangs past the instance cache (the instance as last read)', {
  timeout: 90_000,
}, async () => {
  const h = await start(300);
  try {
    expect((await h.push(fixture('slot-booked'))).ok).toBe(true);
    // Past the instance cache: ingest reads the instance again, from a database that hangs.
    await new Promise((r) => setTimeout(r, 400));
    h.proxy.freeze({ newConnections: true });
    // Before, the instance read waited for its connection to be given up (over a minute here).
    await expectDefaultByDeadline(h);
  } finally {
    await h.stop();
  }
});
