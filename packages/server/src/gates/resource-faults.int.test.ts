/**
 * A vendor's approval request while Postgres is out of disk space (a real 53100, raised by Postgres
 * on the request's durable write through `injectSqlstate`): the vendor must have the instance's
 * configured default, as when the database is unreachable, and the hub's later requests stored
 * again once the fault clears.
 */
import { readFileSync } from 'node:fs';
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { expect, it } from 'vitest';
import { createHub } from '../pipeline/hub.ts';
import { injectSqlstate, SQLSTATE_FAULTS } from '../storage/sqlstate-fault.test-support.ts';
import { createGates } from './gates.ts';

const database = useTestDatabase();
const API_KEY = 'dp-push-key';
const fixtures = new URL('../../../connectors/docplanner/fixtures/', import.meta.url);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), 'utf8')) as JsonObject;

it("answers a gate request with the instance's default while Postgres is out of disk space", {
  timeout: 60_000,
}, async () => {
  const lines: { level: number; msg: string }[] = [];
  const gates = createGates({ worker: true });
  const hub = await createHub({
    databaseUrl: database.url(),
    connectors: [docplannerConnector],
    secretKey: 'gates-full-disk-secret-key-012345',
    logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
    options: { pollIntervalMs: 200, retention: { cron: false }, workers: false },
    ...gates.hooks,
  });
  const admin = new pg.Pool({ connectionString: database.url(), max: 1 });
  try {
    await hub.start();
    await gates.start(hub.host);
    await hub.instances.upsert({
      id: 'dp',
      connector: 'docplanner',
      mode: 'push',
      settings: { pushAuth: { apiKey: API_KEY } },
      gate: { deadlineMs: 1500, default: 'refuse' },
    });
    const push = (body: JsonObject) =>
      hub.ingest('dp', inboundRequest({ headers: { 'x-api-key': API_KEY }, body }));
    const from = lines.length;
    const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      table: 'gate_requests',
      on: ['insert'],
    });
    try {
      // Docplanner's refusal (the default here), as when the database is unreachable.
      expect(await push(fixture('slot-booking'))).toMatchObject({ ok: true, status: 409 });
    } finally {
      await full.clear();
    }
    // Before: "gate request failed; answering the default", an error with a stack per request.
    expect(lines.slice(from).filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.slice(from).some((l) => /Postgres is out of disk space/.test(l.msg))).toBe(true);
    // Stored again once the disk has room: the request is recorded.
    expect(await push(fixture('slot-booking'))).toMatchObject({ ok: true });
    const { rows } = await admin.query('select count(*)::int as n from switchyard.gate_requests');
    expect(rows[0].n).toBeGreaterThanOrEqual(1);
  } finally {
    await gates.stop().catch(() => {});
    await hub.stop({ graceful: false }).catch(() => {});
    await admin.end();
  }
});
