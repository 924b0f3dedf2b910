/**
 * Clockwise.MD end to end: the simulator pushes every documented thin webhook (the connector's
 * fixtures) over real HTTP; the hub enriches each from the simulator's REST API (the connector's
 * `apiBaseUrl` points at it), retries a transient API failure, and delivers signed CloudEvents.
 */
import clockwisemd from '@switchyard/connector-clockwisemd';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import type { JsonObject, JsonValue } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './fixtures.test-support.ts';
import {
  bodies,
  type E2e,
  eventually,
  expectDelivered,
  scrapeMetric,
  startE2e,
} from './harness.test-support.ts';

const KEY = 'cw-e2e-hook-key-0123456789';
const API_KEY = 'cw-e2e-api-key-abcdef';
const INSTANCE = 'cw-main';

const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'create.json', expect: ['appointment.created'] },
  { file: 'reschedule.json', expect: ['appointment.rescheduled'] },
  { file: 'demographics-update.json', expect: ['appointment.updated'] },
  { file: 'checkin.json', expect: ['appointment.arrived'] },
  { file: 'ready.json', expect: ['appointment.checked_in'] },
  { file: 'callback.json', expect: ['appointment.in_progress'] },
  { file: 'discharge.json', expect: ['appointment.completed'] },
  { file: 'undo-discharge.json', expect: ['appointment.status_reverted'] },
  { file: 'undo-callback.json', expect: ['appointment.status_reverted'] },
  { file: 'undo-ready.json', expect: ['appointment.status_reverted'] },
  { file: 'undo-checkin.json', expect: ['appointment.status_reverted'] },
  { file: 'legacy-action-create.json', expect: ['appointment.created'] },
  { file: 'legacy-action-checkin.json', expect: ['appointment.arrived'] },
  { file: 'legacy-action-remove-after-checkin.json', expect: ['appointment.cancelled'] },
  { file: 'legacy-action-undo-remove.json', expect: ['appointment.restored'] },
  { file: 'remove-before-checkin.json', expect: ['appointment.no_show'] },
  { file: 'unknown-event-type.json', expect: 'ignored' },
];

type Body = Record<string, JsonValue> & { type: string; subject: string; data: JsonObject };

const database = useTestDatabase();
let e2e: E2e;
let sim: ClockwiseSimulator;

/** `switchyard_normalizations_total` of the instance for `outcome`, scraped from the hub (0 before any). */
async function normalizations(outcome: string): Promise<number> {
  return (
    (await scrapeMetric(e2e.baseUrl, 'switchyard_normalizations_total', { instance: INSTANCE, outcome })) ?? 0
  );
}

/** The REST API records the connector's conformance test answers with. */
function apiRecord(id: number): JsonObject & { id: number } {
  return fixture('clockwisemd', `appointment-${id}.json`, 'src/__api__') as JsonObject & { id: number };
}

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [clockwisemd] });
  sim = new ClockwiseSimulator({
    hookUrl: e2e.hookUrl(INSTANCE),
    key: KEY,
    keyPlacement: 'header',
    apiKey: API_KEY,
  });
  await sim.start();
  for (const id of [12345, 12346, 12347]) sim.setAppointment(apiRecord(id));
  await e2e.hub.instances.upsert({
    id: INSTANCE,
    connector: 'clockwisemd',
    mode: 'push',
    settings: { auth: { mode: 'either', key: KEY }, apiKey: API_KEY, apiBaseUrl: sim.apiBaseUrl },
  });
});

afterAll(async () => {
  await sim?.close();
  await e2e?.close();
});

describe('clockwisemd end to end', () => {
  const delivered = new Map<string, Body>();

  it('delivers every documented webhook enriched from the REST API, and stores the unknown type as ignored', async () => {
    for (const f of FIXTURES) {
      if (f.file === 'reschedule.json') {
        // The clinic moved the visit: the API now has the new time, the hub remembers the old one.
        sim.setAppointment({
          ...apiRecord(12345),
          apt_time: '2026-03-10T14:00:00-05:00',
          end_time: '2026-03-10T14:15:00-05:00',
        });
      }
      const settled = await e2e.settle(INSTANCE, () => sim.push(fixture('clockwisemd', f.file)));
      expect(sim.pushes[sim.pushes.length - 1]!.delivered, f.file).toBe(true);
      expect(settled.messages, f.file).toHaveLength(1);
      const message = settled.messages[0]!;
      if (f.expect === 'ignored') {
        expect(message.status, f.file).toBe('ignored');
        expect(message.reason).toMatch(/insurance_verified/);
        expect(settled.events).toEqual([]);
        continue;
      }
      expect(message.status, `${f.file}: ${message.reason ?? ''}`).toBe('normalized');
      expect(
        settled.deliveries.map((d) => d.type),
        f.file,
      ).toEqual(f.expect);
      settled.deliveries.forEach((d, i) => {
        expectDelivered(d, settled.events[i]!, { instanceId: INSTANCE, connector: 'clockwisemd' });
      });
      const body = bodies(settled)[0] as Body;
      expect(body.data.enrichment, f.file).toBe('enriched');
      delivered.set(f.file, body);
    }
    const expected = FIXTURES.flatMap((f) => (f.expect === 'ignored' ? [] : f.expect));
    const accepted = e2e.subscriber.requests.filter((r) => r.response && r.response.status < 300);
    expect(accepted.map((r) => r.type)).toEqual(expected);
    // Every event was enriched through the simulator's API with the configured key.
    const reads = sim.served.filter((s) => s.path.startsWith('/v1/appointments/'));
    expect(reads.length).toBeGreaterThanOrEqual(expected.length);
    expect(reads.every((s) => s.authtoken === API_KEY && s.status === 200)).toBe(true);
  });

  it('keeps one subject per appointment and carries what the API said', () => {
    const created = delivered.get('create.json')!;
    const twelve345 = FIXTURES.filter(
      (f) => f.expect !== 'ignored' && !f.file.startsWith('legacy') && !f.file.startsWith('remove'),
    );
    for (const f of twelve345) expect(delivered.get(f.file)!.subject, f.file).toBe(created.subject);
    expect(created.data).toMatchObject({ start: '2026-03-10T11:30:00-05:00', status: 'booked' });
    expect(created.data.patient).toBeDefined();
    const moved = delivered.get('reschedule.json')!;
    expect(moved.data.start).toBe('2026-03-10T14:00:00-05:00');
    expect(moved.data.previous).toMatchObject({ start: '2026-03-10T11:30:00-05:00' });
    const legacy = delivered.get('legacy-action-create.json')!;
    expect(legacy.subject).not.toBe(created.subject);
    for (const f of [
      'legacy-action-checkin.json',
      'legacy-action-remove-after-checkin.json',
      'legacy-action-undo-remove.json',
    ]) {
      expect(delivered.get(f)!.subject, f).toBe(legacy.subject);
    }
  });

  it('retries a transient API failure and delivers the enriched event once', async () => {
    sim.setAppointment({ ...apiRecord(12347), id: 12348 });
    sim.failApi(1, { status: 503 });
    const before = sim.served.length;
    const counted = (outcome: string) => normalizations(outcome);
    const [retriesBefore, normalizedBefore] = [await counted('retry'), await counted('normalized')];
    const settled = await e2e.settle(INSTANCE, () =>
      sim.push({ appointment_id: 12348, event_type: 'create' }),
    );
    // The vendor API's outage is visible per instance in /metrics: one retry, then one normalized.
    expect(await counted('retry')).toBe(retriesBefore + 1);
    expect(await counted('normalized')).toBe(normalizedBefore + 1);
    const message = settled.messages[0]!;
    expect(message.status).toBe('normalized');
    expect(message.attempts).toBe(2);
    expect(sim.served.slice(before).map((s) => s.status)).toEqual([503, 200]);
    expect(settled.deliveries.map((d) => d.type)).toEqual(['appointment.created']);
    expectDelivered(settled.deliveries[0]!, settled.events[0]!, {
      instanceId: INSTANCE,
      connector: 'clockwisemd',
    });
    expect((bodies(settled)[0] as Body).data.enrichment).toBe('enriched');
    const copies = e2e.subscriber.requests.filter((r) => r.webhookId === settled.events[0]!.id);
    expect(copies).toHaveLength(1);
  });

  it('emits without enrichment when the API stays down through the last try', async () => {
    sim.setAppointment({ ...apiRecord(12347), id: 12349 });
    // One failure per try: the first try and both retries.
    sim.failApi(3, { status: 503 });
    const settled = await e2e.settle(INSTANCE, () =>
      sim.push({ appointment_id: 12349, event_type: 'create' }),
    );
    const message = settled.messages[0]!;
    expect(message.status).toBe('normalized');
    expect(message.attempts).toBe(3);
    expect(settled.deliveries.map((d) => d.type)).toEqual(['appointment.created']);
    expectDelivered(settled.deliveries[0]!, settled.events[0]!, {
      instanceId: INSTANCE,
      connector: 'clockwisemd',
    });
    expect((bodies(settled)[0] as Body).data.enrichment).toBe('failed');
  });

  it('counts a message the connector refuses as failed, per instance, and re-normalizes it once fixed', async () => {
    // The Clockwise.MD API refusing the hub's API key is permanent for the connector: the message
    // is kept `failed` and waits for the operator.
    sim.setAppointment({ ...apiRecord(12347), id: 12350 });
    sim.failApi(1, { status: 401 });
    const failedBefore = await normalizations('failed');
    const settled = await e2e.settle(INSTANCE, () =>
      sim.push({ appointment_id: 12350, event_type: 'create' }),
    );
    const message = settled.messages[0]!;
    expect(message.status).toBe('failed');
    expect(message.reason).toMatch(/refused the API key \(HTTP 401\)/);
    expect(settled.deliveries).toEqual([]);
    expect(await normalizations('failed')).toBe(failedBefore + 1);
    // What the operator does once the key is right: re-normalize it (the dashboard's button calls this).
    const normalizedBefore = await normalizations('normalized');
    const answer = await fetch(`${e2e.baseUrl}/v1/inbound/${message.id}/renormalize`, {
      method: 'POST',
      headers: { authorization: 'Bearer e2e-admin-token' },
    });
    expect(answer.status).toBe(202);
    const fixed = await eventually(async () => {
      const m = await e2e.hub.inbound.get(message.id);
      return m.status === 'normalized' ? m : undefined;
    }, 'the re-normalized message');
    expect(fixed.events.map((e) => e.type)).toEqual(['appointment.created']);
    await e2e.subscriber.waitFor((r) => r.webhookId === fixed.events[0]!.id && r.response?.status === 200);
    expect(await normalizations('normalized')).toBe(normalizedBefore + 1);
    expect(await normalizations('failed')).toBe(failedBefore + 1);
  });

  it('refuses a webhook with the wrong key: 401, nothing stored', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items.length;
    const wrong = new ClockwiseSimulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      key: 'cw-not-the-key-000000000',
      keyPlacement: 'path',
    });
    const record = await wrong.push(fixture('clockwisemd', 'checkin.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([401]);
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items).toHaveLength(before);
  });
});
