/**
 * A disabled subscription's waiting deliveries are parked (`PARKED_UNTIL`, deliveries/store.ts):
 * out of the delivery claim's way, and `nextAttemptAt` says they wait for the subscription to be
 * enabled (docs/delivery.md, "Retries"). The deliveries an operator's replay or skip makes while it
 * is disabled are parked too: they were due at once, so a replay-since of a disabled subscription
 * put its whole range back at the head of the claim's walk, read by every claim of every process
 * until the subscription was enabled (found by the replay audit: `nextAttemptAt` read "now" for
 * deliveries that were not being sent).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { PARKED_UNTIL } from './store.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
});
afterAll(async () => {
  await hub?.stop();
});

it("a replay or a skip of a disabled subscription's delivery is parked, and due at once when it is enabled", async () => {
  const { db } = hub.host;
  const { subscription } = await hub.subscriptions.create({
    url: 'http://127.0.0.1:9/off',
    allowPrivateAddresses: true,
  });
  // Three events of one subject: the first one's delivery dead, the other two held behind it.
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope)
    select gen_random_uuid(), 'appointment.updated', 'dp', 'appointment/1', now(), '{}'
    from generate_series(1, 3)`.execute(db);
  await sql`insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject, status, completed_at)
    select gen_random_uuid(), ${subscription.id}, id, sequence, subject,
      case when sequence = 1 then 'dead' else 'held' end, case when sequence = 1 then now() end
    from switchyard.events`.execute(db);
  await hub.subscriptions.disable(subscription.id);
  const waiting = async () =>
    (await hub.deliveries.list({ subscriptionId: subscription.id })).items
      .filter((d) => d.status === 'pending')
      .map((d) => d.nextAttemptAt.toISOString());

  const dead = (await hub.deliveries.list({ subscriptionId: subscription.id, status: 'dead' })).items[0]!;
  await hub.deliveries.replay(dead.id);
  await hub.deliveries.replaySince(subscription.id, new Date(0));
  await hub.deliveries.replayDead(subscription.id);
  // The replay of the dead one, the two it held, and a replay of each of the three events.
  expect(await waiting()).toEqual(Array(6).fill(PARKED_UNTIL));

  const replay = (await hub.deliveries.list({ subscriptionId: subscription.id })).items.find(
    (d) => d.replayOf === dead.id,
  )!;
  await hub.deliveries.skip(replay.id);
  expect(await waiting()).toEqual(Array(5).fill(PARKED_UNTIL));

  await hub.subscriptions.enable(subscription.id);
  const due = await waiting();
  expect(due).toHaveLength(5);
  for (const at of due) expect(new Date(at).getTime()).toBeLessThanOrEqual(Date.now());
});
