/**
 * Poison input: a notification that makes the connector throw (a bug, not a classified error) is
 * marked failed with its reason, does not block the notifications behind it (same entity or not),
 * and is normalized again once the connector is fixed, with the event id it would have had.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { eventIdFor } from '../events/ids.ts';
import { connectorBugs } from './connector.test-support.ts';
import {
  ADMIN_TOKEN,
  eventually,
  type InProcessHub,
  newLedger,
  pushOne,
  received,
  startInProcessHub,
} from './support.test-support.ts';

const database = useTestDatabase();
const secret = generateSecret();
let subscriber: RecordingSubscriber;
let h: InProcessHub;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: secret });
  h = await startInProcessHub({
    databaseUrl: database.url(),
    adminToken: ADMIN_TOKEN,
    logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
  });
  await h.hub.subscriptions.create({
    url: `${subscriber.url}poison`,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
});

afterAll(async () => {
  connectorBugs.poisonThrows = true;
  await h?.close();
  await subscriber?.close();
});

const admin = async (method: string, path: string) => {
  const res = await fetch(`${h.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  // biome-ignore lint/suspicious/noExplicitAny: test reads arbitrary fields of admin answers.
  return { status: res.status, json: (await res.json()) as any };
};

it('fails the poison message with its reason, delivers the rest, and re-normalizes it after a fix', {
  timeout: 60_000,
}, async () => {
  connectorBugs.poisonThrows = true;
  const ledger = newLedger();
  // The poison one first, on subject p-s0: the others of p-s0 are behind it in ordering.
  await pushOne(h.base, ledger, { id: 'p-poison', subject: 'p-s0', poison: true });
  for (let n = 0; n < 24; n++) {
    await pushOne(h.base, ledger, {
      id: `p-${n}`,
      subject: `p-s${n % 4}`,
      type: n < 4 ? 'created' : 'updated',
    });
  }
  expect(ledger.acked).toHaveLength(25);

  // Everything else goes through, including the same entity's later notifications.
  await eventually('24 events delivered', () => received(subscriber.requests).ids.size === 24);

  const failed = await eventually('the poison message listed as failed', async () => {
    const r = await admin('GET', '/v1/inbound?status=failed');
    return r.json.items?.find((m: { dedupeKey: string }) => m.dedupeKey === 'p-poison');
  });
  expect(failed.status).toBe('failed');
  expect(failed.reason).toContain("Cannot read properties of undefined (reading 'start')");
  // The log names the message and says what to do; a connector that throws a plain TypeError has a
  // bug: an error line with the stack (before: a warning with the message alone, no next step).
  const line = lines.find((l) => l.inbound === failed.id && /^normalization failed/.test(String(l.msg)));
  expect(line).toMatchObject({ level: 50, instance: failed.instanceId });
  expect(String(line!.msg)).toContain(`/v1/inbound/{id}/renormalize`);
  expect((line!.err as { stack?: string }).stack).toContain('TypeError');
  const detail = await admin('GET', `/v1/inbound/${failed.id}`);
  expect(detail.json.events).toEqual([]);
  expect(detail.json.payload).toMatchObject({ id: 'p-poison', poison: true });

  // Ship the fix, then re-normalize through the admin API.
  connectorBugs.poisonThrows = false;
  const again = await admin('POST', `/v1/inbound/${failed.id}/renormalize`);
  expect(again.status).toBe(202);
  const fixedEventId = eventIdFor(failed.id, 0);
  await eventually('the fixed event delivered', () => received(subscriber.requests).ids.has(fixedEventId));
  const after = await admin('GET', `/v1/inbound/${failed.id}`);
  expect(after.json.status).toBe('normalized');
  expect(after.json.events.map((e: { id: string }) => e.id)).toEqual([fixedEventId]);
  const got = received(subscriber.requests);
  expect(got.ids.size).toBe(25);
  expect(got.conflicting).toEqual([]);
});
