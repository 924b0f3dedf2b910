/**
 * Calendly end to end: the simulator POSTs every fixture over real HTTP to a started hub
 * (pushes signed with HMAC-SHA256 over the timestamp and the body, `t=…,v1=…`), which stores, normalizes and delivers signed CloudEvents to a recording
 * subscriber. The hub is started with this connector alone (the package is a dependency of the
 * server from the moment it is generated), so this runs before the connector is registered in the
 * server's list (docs/writing-a-connector.md §14).
 */
import { CalendlySimulator as Simulator } from '@switchyard/connector-calendly/simulator';
import { type Config, calendlyConnector as connector } from '@switchyard/connector-calendly/testing';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './fixtures.test-support.ts';
import { type E2e, expectDelivered, startE2e } from './harness.test-support.ts';

const VENDOR = connector.name;
const INSTANCE = `${VENDOR}-main`;
const config: Config = { signingKey: 'test-signing-secret-0123456789abcdef' };
/** The same settings with the secret changed: what a misconfigured vendor account sends. */
const wrongConfig: Config = { signingKey: 'test-signing-secret-wrong-00000000' };
const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'invitee-created.json', expect: ['appointment.created'] },
  { file: 'invitee-canceled-rescheduled.json', expect: 'ignored' },
  { file: 'invitee-created-rescheduled.json', expect: ['appointment.rescheduled'] },
  { file: 'invitee-canceled.json', expect: ['appointment.cancelled'] },
  { file: 'routing-form-submission-created.json', expect: 'ignored' },
];

/** A booking not pushed before: Calendly keys a webhook by its event and invitee URI (no delivery id). */
function freshNotification(tag: string): JsonObject {
  const body = fixture(VENDOR, 'invitee-created.json');
  const payload = body.payload as JsonObject;
  return { ...body, payload: { ...payload, uri: `${payload.uri as string}-${tag}` } };
}

const database = useTestDatabase();
let e2e: E2e;
let sim: Simulator;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [connector] });
  await e2e.hub.instances.upsert({ id: INSTANCE, connector: VENDOR, mode: 'push', settings: { ...config } });
  sim = new Simulator({ hookUrl: e2e.hookUrl(INSTANCE), config });
});

afterAll(async () => {
  await e2e?.close();
});

describe(`${VENDOR} end to end`, () => {
  it('delivers every fixture as signed, valid CloudEvents', async () => {
    for (const f of FIXTURES) {
      const settled = await e2e.settle(INSTANCE, () => sim.push(fixture(VENDOR, f.file)));
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
  });

  it('refuses a push with wrong credentials (401) and stores nothing', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const wrong = new Simulator({ hookUrl: e2e.hookUrl(INSTANCE), config: wrongConfig, retryDelaysMs: [] });
    const record = await wrong.push(fixture(VENDOR, 'invitee-created.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([401]);
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items).toHaveLength(before);
  });

  // Only a vendor that signs a timestamp can refuse a stale capture: its settings have a
  // toleranceSeconds (a body-only signature, docs/writing-a-connector.md §5, has none).
  const signsTime = 'toleranceSeconds' in ((connector.configSchema.properties ?? {}) as object);

  it.runIf(signsTime)('refuses a capture replayed after the tolerance (401) and stores nothing', async () => {
    const stored = async () =>
      (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const before = await stored();
    // Signed two hours ago: past any toleranceSeconds the settings allow (at most an hour).
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    const stale = new Simulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      config,
      retryDelaysMs: [],
      now: () => twoHoursAgo,
    });
    const body = freshNotification('stale');
    expect((await stale.push(body)).attempts.map((a) => a.status)).toEqual([401]);
    expect(await stored()).toBe(before);
  });

  it('stores one signed request sent twice once (its dedupe key)', async () => {
    const stored = async () =>
      (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const before = await stored();
    const at = new Date();
    const replaying = new Simulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      config,
      retryDelaysMs: [],
      now: () => at,
    });
    const body = freshNotification('replayed');
    await e2e.settle(INSTANCE, () => replaying.push(body));
    expect((await replaying.push(body)).attempts.map((a) => a.status)).toEqual([200]);
    expect(await stored()).toBe(before + 1);
  });
});
