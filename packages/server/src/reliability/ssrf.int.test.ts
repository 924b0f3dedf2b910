/**
 * SSRF through the whole pipeline: subscriptions whose URLs point at loopback (in every spelling),
 * private, CGNAT, link-local and cloud-metadata addresses get their deliveries refused before any
 * connection is made, unless the subscription explicitly allows private addresses — and metadata
 * stays refused even then.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import {
  eventually,
  type InProcessHub,
  newLedger,
  pushOne,
  startInProcessHub,
} from './support.test-support.ts';

const database = useTestDatabase();
const secret = generateSecret();
let subscriber: RecordingSubscriber;
let h: InProcessHub;
let port: string;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: secret });
  port = new URL(subscriber.url).port;
  h = await startInProcessHub({ databaseUrl: database.url() });
});

afterAll(async () => {
  await h?.close();
  await subscriber?.close();
});

it('refuses loopback, private, link-local and metadata destinations unless explicitly allowed', {
  timeout: 60_000,
}, async () => {
  const refused = [
    `http://127.0.0.1:${port}/plain`,
    `http://localhost:${port}/name`,
    `http://[::1]:${port}/v6`,
    `http://2130706433:${port}/decimal`,
    `http://0x7f.0.0.1:${port}/hex`,
    `http://127.1:${port}/short`,
    `http://[::ffff:127.0.0.1]:${port}/mapped`,
    `http://0.0.0.0:${port}/unspecified`,
    'http://10.1.2.3/private',
    'http://172.16.0.1/private',
    'http://192.168.0.10/private',
    'http://100.64.0.1/cgnat',
    'http://[fd00::1]/ula',
    'http://169.254.10.10/link-local',
    'http://[fe80::1]/link-local-v6',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fd00:ec2::254]/latest/meta-data/',
  ];
  const subs: { id: string; url: string; allow: boolean }[] = [];
  for (const url of refused) {
    const { subscription } = await h.hub.subscriptions.create({
      url,
      secrets: [secret],
      retryScheduleMs: [0],
      ordering: 'release',
    });
    subs.push({ id: subscription.id, url, allow: false });
  }
  // Explicitly allowed: loopback is delivered, metadata is still refused.
  const allowed = await h.hub.subscriptions.create({
    url: `http://127.0.0.1:${port}/allowed`,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  const metadataAllowed = await h.hub.subscriptions.create({
    url: 'http://169.254.169.254/latest/meta-data/',
    secrets: [secret],
    allowPrivateAddresses: true,
    retryScheduleMs: [0],
  });

  const ledger = newLedger();
  await pushOne(h.base, ledger, { id: 'ssrf-1', subject: 'ssrf' });
  expect(ledger.acked).toEqual(['ssrf-1']);

  await subscriber.waitFor((r) => r.path === '/allowed', 20_000);
  const outcomes: Record<string, string> = {};
  for (const s of [
    ...subs,
    { id: metadataAllowed.subscription.id, url: 'metadata (allowed private)', allow: true },
  ]) {
    const dead = await eventually(`the delivery to ${s.url} dead`, async () => {
      const page = await h.hub.deliveries.list({ subscriptionId: s.id });
      return page.items[0]?.status === 'dead' ? page.items[0] : undefined;
    });
    const detail = await h.hub.deliveries.get(dead.id);
    expect(detail.attemptLog).toHaveLength(1);
    expect(detail.attemptLog[0]!.statusCode).toBeNull();
    expect(detail.attemptLog[0]!.error, s.url).toMatch(
      /refused|not allowed|loopback|private|link|metadata|unspecified/i,
    );
    outcomes[s.url] = detail.attemptLog[0]!.error!;
  }
  // Nothing reached the subscriber except the allowed subscription's one delivery.
  expect(subscriber.requests.map((r) => r.path)).toEqual(['/allowed']);
  expect(allowed.subscription.allowPrivateAddresses).toBe(true);
  console.info('ssrf outcomes', outcomes);
});
