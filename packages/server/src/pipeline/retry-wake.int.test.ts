import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { eventually, makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let subscriber: RecordingSubscriber;

beforeAll(async () => {
  // The polling backstop out of reach: a retry that arrives came from the loop's own schedule.
  hub = await makeHub(database.url(), { options: { pollIntervalMs: 600_000 } });
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
  await subscriber?.close();
});

async function normalized(id: string, booking: string) {
  const r = await hub.ingest('acme-1', push({ id, type: 'created', booking }));
  if (!r.ok) throw new Error(`ingest failed: ${r.status}`);
  const message = await eventually(async () => {
    const m = await hub.inbound.get(r.stored[0]!);
    return m.status === 'normalized' ? m : undefined;
  });
  return message.events[0]!;
}

it('attempts each retry when it falls due, also after a pass that claimed an earlier one', async () => {
  // Seen with two FHIR subscriptions whose subscriber answered 500 once: the retry due first was
  // claimed alone, succeeded, and the loop slept until its 30 s backstop, the other retry (due a
  // second later) with it. A pass that claimed fewer than it asked for reported no next due time.
  const secret = generateSecret();
  // The first attempts (a's, then b's) answered 500, the retries 200.
  subscriber = await startRecordingSubscriber({ secrets: secret, script: [500, 500] });
  await hub.subscriptions.create({
    url: `${subscriber.url}hook`,
    secrets: [secret],
    allowPrivateAddresses: true,
    retryScheduleMs: [0, 400],
  });
  const a = await normalized('retry-1', 'retry-a');
  await subscriber.waitFor(1);
  // The second retry falls due well after the first is claimed.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const b = await normalized('retry-2', 'retry-b');
  const requests = await subscriber.waitFor(4, 15_000);
  expect(requests.map((r) => r.webhookId)).toEqual([a.id, b.id, a.id, b.id]);
});
