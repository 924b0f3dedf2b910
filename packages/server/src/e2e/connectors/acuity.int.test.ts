/**
 * Acuity Scheduling end to end: the simulator POSTs every fixture (signed forms) over real HTTP to a
 * started hub, which stores it, reads each appointment from the simulator's API, normalizes and
 * delivers signed CloudEvents to a recording subscriber. The hub runs this connector alone.
 */
import { readFileSync } from 'node:fs';
import { AcuitySimulator as Simulator } from '@switchyard/connector-acuity/simulator';
import {
  type AcuityAppointment,
  type Config,
  acuityConnector as connector,
  fixtureSettings,
  fixtureUrl,
} from '@switchyard/connector-acuity/testing';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2e, expectDelivered, startE2e } from './harness.test-support.ts';

const VENDOR = connector.name;
const INSTANCE = `${VENDOR}-main`;
const form = (file: string) => readFileSync(fixtureUrl(file), 'utf8');
const record = (id: number) =>
  JSON.parse(readFileSync(fixtureUrl(`appointment-${id}.json`, 'fixtures-api'), 'utf8')) as AcuityAppointment;
const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'appointment-scheduled.form', expect: ['appointment.created'] },
  { file: 'appointment-changed.form', expect: 'ignored' },
  { file: 'appointment-rescheduled.form', expect: ['appointment.rescheduled'] },
  { file: 'appointment-canceled.form', expect: ['appointment.cancelled'] },
  { file: 'order-completed.form', expect: 'ignored' },
];

const database = useTestDatabase();
let e2e: E2e;
let sim: Simulator;
let config: Config;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [connector] });
  sim = new Simulator({ config: fixtureSettings, retryDelaysMs: [] });
  await sim.start();
  for (const id of [54321, 54322, 54323]) sim.add(record(id));
  config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
  await e2e.hub.instances.upsert({ id: INSTANCE, connector: VENDOR, mode: 'push', settings: { ...config } });
});

afterAll(async () => {
  await sim?.close();
  await e2e?.close();
});

describe(`${VENDOR} end to end`, () => {
  it('delivers every fixture as signed, valid CloudEvents, each enriched by a read of the appointment', async () => {
    for (const f of FIXTURES) {
      const settled = await e2e.settle(INSTANCE, () =>
        sim.push(form(f.file), { hookUrl: e2e.hookUrl(INSTANCE) }),
      );
      expect(sim.pushes.at(-1)!.delivered, f.file).toBe(true);
      if (f.expect === 'ignored') {
        expect(settled.messages[0]!.status, f.file).toBe('ignored');
        continue;
      }
      expect(
        settled.deliveries.map((d) => d.type),
        f.file,
      ).toEqual(f.expect);
      settled.deliveries.forEach((d, i) => {
        expectDelivered(d, settled.events[i]!, { instanceId: INSTANCE, connector: VENDOR });
      });
    }
    const created = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    expect(created).toBe(FIXTURES.length);
    expect(sim.calls.filter((c) => c.method === 'GET').map((c) => c.path)).toContain(
      '/api/v1/appointments/54321',
    );
  });

  it('refuses a webhook signed with another key (401) and stores nothing', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const wrong = new Simulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      config: { ...config, apiKey: 'test-api-key-wrong-000000000000' },
      retryDelaysMs: [],
    });
    const pushed = await wrong.push(form('appointment-scheduled.form'));
    expect(pushed.attempts.map((a) => a.status)).toEqual([401]);
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items).toHaveLength(before);
  });

  it('stores a replayed scheduled webhook once (its dedupe key: action and id)', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const again = await sim.push(form('appointment-scheduled.form'), { hookUrl: e2e.hookUrl(INSTANCE) });
    expect(again.attempts.map((a) => a.status)).toEqual([200]);
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items).toHaveLength(before);
  });
});
