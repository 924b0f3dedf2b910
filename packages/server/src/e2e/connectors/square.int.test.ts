/**
 * Square Appointments end to end: the simulator POSTs every fixture over real HTTP to a started hub
 * (each signed as Square signs it: base64 HMAC-SHA256 over the notification URL and the body), which
 * stores, normalizes and delivers signed CloudEvents to a recording subscriber. The hub is started
 * with `publicUrl` while the simulator posts to its loopback address, as through a TLS-terminating
 * proxy: the signature covers the public URL, and the hub verifies against `server.publicUrl`.
 */
import { SquareSimulator as Simulator } from '@switchyard/connector-square/simulator';
import { type Config, squareConnector as connector } from '@switchyard/connector-square/testing';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './fixtures.test-support.ts';
import { type E2e, expectDelivered, startE2e } from './harness.test-support.ts';

const VENDOR = connector.name;
const INSTANCE = `${VENDOR}-main`;
const PUBLIC_URL = 'https://hub.example.com';
/** The notification URL registered at Square: server.publicUrl + /hooks/{instance}. */
const NOTIFICATION_URL = `${PUBLIC_URL}/hooks/${INSTANCE}`;
const config: Config = { signatureKey: 'test-signature-key-0123456789' };
/** The same settings with the key changed: what a misconfigured vendor account sends. */
const wrongConfig: Config = { signatureKey: 'another-signature-key-0123' };
const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'booking-created.json', expect: ['appointment.created'] },
  { file: 'booking-updated-accepted.json', expect: ['appointment.confirmed'] },
  { file: 'booking-updated-cancelled-by-customer.json', expect: ['appointment.cancelled'] },
];

const database = useTestDatabase();
let e2e: E2e;
let sim: Simulator;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [connector], publicUrl: PUBLIC_URL });
  await e2e.hub.instances.upsert({ id: INSTANCE, connector: VENDOR, mode: 'push', settings: { ...config } });
  sim = new Simulator({ hookUrl: e2e.hookUrl(INSTANCE), notificationUrl: NOTIFICATION_URL, config });
});

afterAll(async () => {
  await e2e?.close();
});

const stored = async () => (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;

describe(`${VENDOR} end to end`, () => {
  it('delivers every fixture as signed, valid CloudEvents, one subject for the booking', async () => {
    const subjects = new Set<string>();
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
        subjects.add(settled.events[i]!.subject);
      });
    }
    expect(subjects.size).toBe(1);
  });

  it('refuses a push with wrong credentials (401) and stores nothing', async () => {
    const before = await stored();
    const wrong = new Simulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      notificationUrl: NOTIFICATION_URL,
      config: wrongConfig,
      retryDelaysMs: [],
    });
    const record = await wrong.push(fixture(VENDOR, 'booking-created.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([401]);
    expect(await stored()).toBe(before);
  });

  it('refuses a push signed for the URL the hub is reached at behind the proxy (401)', async () => {
    const before = await stored();
    const internal = new Simulator({ hookUrl: e2e.hookUrl(INSTANCE), config, retryDelaysMs: [] });
    const record = await internal.push({
      ...fixture(VENDOR, 'booking-created.json'),
      event_id: 'evt_internal',
    });
    expect(record.attempts.map((a) => a.status)).toEqual([401]);
    expect(await stored()).toBe(before);
  });

  it('stores one signed request sent twice once (its event_id)', async () => {
    const before = await stored();
    const body = { ...fixture(VENDOR, 'booking-created.json'), event_id: 'evt_replayed' };
    await e2e.settle(INSTANCE, () => sim.push(body));
    expect((await sim.push(body)).attempts.map((a) => a.status)).toEqual([200]);
    expect(await stored()).toBe(before + 1);
  });
});
