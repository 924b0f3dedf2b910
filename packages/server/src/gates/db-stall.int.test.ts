/**
 * A vendor's approval request while the hub's database connections go silent (half-open: no byte
 * either way, nothing closed; new connections work), through a TCP proxy the test freezes. The
 * durable write of the request hangs until the connection is given up (15 s); the vendor, whose
 * timeout is about 2 s, must have the instance's default by the gate deadline all the same.
 */
import { readFileSync } from 'node:fs';
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { startTcpProxy, type TcpProxy } from '../reliability/tcp-proxy.test-support.ts';
import { createGates, type Gates } from './gates.ts';

const database = useTestDatabase();
const API_KEY = 'dp-push-key';
const DEADLINE_MS = 1500;
const fixtures = new URL('../../../connectors/docplanner/fixtures/', import.meta.url);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), 'utf8')) as JsonObject;

let proxy: TcpProxy;
let hub: Hub;
let gates: Gates;

beforeAll(async () => {
  const direct = new URL(database.url());
  proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const proxied = new URL(database.url());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  gates = createGates({ worker: true });
  hub = await createHub({
    databaseUrl: proxied.toString(),
    connectors: [docplannerConnector],
    secretKey: 'gates-stall-secret-key-0123456789',
    logger: pino({ level: 'silent' }),
    // The instance as read before the freeze: only the request's own write meets a silent connection.
    options: { pollIntervalMs: 200, retention: { cron: false }, instanceCacheMs: 600_000, workers: false },
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
});

afterAll(async () => {
  // The silent connections closed first, so stopping does not wait on them.
  await proxy?.close();
  await gates?.stop().catch(() => {});
  await hub?.stop({ graceful: false }).catch(() => {});
});

const push = (body: JsonObject) =>
  hub.ingest('dp', inboundRequest({ headers: { 'x-api-key': API_KEY }, body }));

it("answers a gate request with the instance's default by its deadline while its write hangs on a silent connection", {
  timeout: 60_000,
}, async () => {
  expect((await push(fixture('slot-booked'))).ok).toBe(true);
  proxy.freeze();
  const started = Date.now();
  const r = await push(fixture('slot-booking'));
  const ms = Date.now() - started;
  // Docplanner's refusal (the default here). Before, the same answer came 15 s later, when the
  // write's connection was given up: long after the vendor's own timeout (about 2 s).
  expect(r).toMatchObject({ ok: true, status: 409 });
  expect(ms).toBeLessThan(DEADLINE_MS + 5000);
});
