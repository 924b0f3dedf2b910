/**
 * Cliniko end to end (pull-only: Cliniko has no webhooks): the hub's poller lists the simulator's
 * individual appointments over real HTTP, stores each version, normalizes it by comparing it with
 * the last seen, and delivers signed CloudEvents to a recording subscriber. The hub is started with
 * this connector alone.
 */
import { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { clinikoConnector as connector, fixtureSettings } from '@switchyard/connector-cliniko/testing';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { injectSqlstate, SQLSTATE_FAULTS } from '../../storage/sqlstate-fault.test-support.ts';
import {
  bodies,
  type E2e,
  eventually,
  expectDelivered,
  scrapeMetric,
  startE2e,
} from './harness.test-support.ts';

const VENDOR = connector.name;
const INSTANCE = `${VENDOR}-main`;

const database = useTestDatabase();
let e2e: E2e;
let sim: ClinikoSimulator;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [connector] });
  sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey });
  await sim.start();
});

afterAll(async () => {
  await e2e?.close();
  await sim?.close();
});

describe(`${VENDOR} end to end`, () => {
  it('pulls every appointment version and delivers one subject per appointment through its story', async () => {
    sim.put({
      id: '501',
      starts_at: '2026-03-10T10:00:00Z',
      ends_at: '2026-03-10T10:30:00Z',
      patient_name: 'Joe Monahan',
    });
    sim.put({ id: '502', starts_at: '2026-03-10T11:00:00Z', ends_at: '2026-03-10T11:30:00Z' });
    await e2e.hub.instances.upsert({
      id: INSTANCE,
      connector: VENDOR,
      mode: 'pull',
      settings: { ...fixtureSettings, apiBaseUrl: sim.url, perPage: 1 },
      pull: { intervalMs: 200 },
    });
    const booked = await e2e.settleNew(INSTANCE, 2);
    expect(booked.deliveries.map((d) => d.type)).toEqual(['appointment.created', 'appointment.created']);
    booked.deliveries.forEach((d, i) => {
      expectDelivered(d, booked.events[i]!, { instanceId: INSTANCE, connector: VENDOR });
    });

    // Cliniko stamps updated_at by the second: the next writes must be later than the watermark.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    sim.put({ id: '501', starts_at: '2026-03-11T10:00:00Z', ends_at: '2026-03-11T10:30:00Z' });
    const moved = await e2e.settleNew(INSTANCE, 1);
    expect(moved.deliveries.map((d) => d.type)).toEqual(['appointment.rescheduled']);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    sim.put({ id: '501', cancelled_at: new Date().toISOString(), cancellation_reason: 50 });
    const cancelled = await e2e.settleNew(INSTANCE, 1);
    expect(cancelled.deliveries.map((d) => d.type)).toEqual(['appointment.cancelled']);

    const subject = bodies(booked)[0]!.subject;
    expect([bodies(moved)[0]!.subject, bodies(cancelled)[0]!.subject]).toEqual([subject, subject]);
    expect(bodies(moved)[0]!.data).toMatchObject({ previous: { start: '2026-03-10T10:00:00Z' } });
    const messages = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items;
    // Each version stored once, however often the inclusive watermark listed it again.
    expect(messages).toHaveLength(4);
  });

  it('shows polls the vendor refuses in /metrics, per instance, and their end', async () => {
    // The first test's instance polls every 200 ms; its polls fetch, so the gauges read healthy.
    const metric = (name: string) => scrapeMetric(e2e.baseUrl, name, { instance: INSTANCE });
    const lastSuccess = async () => (await metric('switchyard_pull_last_success_timestamp_seconds')) ?? 0;
    await eventually(
      async () => (await metric('switchyard_pull_consecutive_failures')) === 0,
      'a healthy pull',
    );
    // Cliniko down (503), then rate-limiting (429 with its reset, already past): two failed turns.
    sim.failNext(503);
    sim.failNext(429, { 'X-RateLimit-Reset': String(Math.floor(Date.now() / 1000)) });
    const failing = await eventually(async () => {
      const failures = (await metric('switchyard_pull_consecutive_failures')) ?? 0;
      return failures >= 2 ? { failures, at: await lastSuccess() } : undefined;
    }, 'two failed polls counted');
    expect(failing.failures).toBe(2);
    const health = await e2e.hub.instances.health(INSTANCE);
    expect(health.lastError).toMatch(/^pull failed: .*429/);
    // The next turn fetches: failures back to 0, the last success moves on.
    await eventually(
      async () => (await metric('switchyard_pull_consecutive_failures')) === 0,
      'the pull recovered',
    );
    expect(await lastSuccess()).toBeGreaterThan(failing.at);
  });

  it('a page Postgres is out of disk space for: the cursor stays where the stored pages left it, and every version is stored once the disk has room', async () => {
    const admin = new pg.Pool({ connectionString: database.url(), max: 1 });
    const id = `${VENDOR}-full`;
    const cursorOf = async () =>
      (
        await admin.query<{ pull_cursor: string | null }>(
          'select pull_cursor from switchyard.connector_instances where id = $1',
          [id],
        )
      ).rows[0]?.pull_cursor;
    // A real 53100 on every insert of this instance's messages: each page's store fails.
    const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
      table: 'inbound_messages',
      on: ['insert'],
      when: `new.instance_id = '${id}'`,
    });
    try {
      await e2e.hub.instances.upsert({
        id,
        connector: VENDOR,
        mode: 'pull',
        settings: { ...fixtureSettings, apiBaseUrl: sim.url, perPage: 1 },
        pull: { intervalMs: 200 },
      });
      // Two turns fetched a page and failed to store it.
      await eventually(async () => (await full.raised()) >= 2, 'two stores refused');
      // Not moved past what is not stored (before the first stored page: none).
      expect(await cursorOf()).toBeNull();
      expect((await e2e.hub.inbound.list({ instanceId: id, limit: 10 })).items).toEqual([]);
    } finally {
      await full.clear();
    }
    try {
      // The appointments' latest versions (the first test's 501, cancelled, and 502): both stored.
      const stored = await eventually(async () => {
        const items = (await e2e.hub.inbound.list({ instanceId: id, limit: 10 })).items;
        return items.length >= 2 ? items : undefined;
      }, 'every appointment stored once the disk has room');
      expect(stored).toHaveLength(2);
      expect(await cursorOf()).not.toBeNull();
    } finally {
      await e2e.hub.instances.remove(id);
      await admin.end();
    }
  });
});
