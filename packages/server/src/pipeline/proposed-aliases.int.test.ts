/**
 * A normalization's new aliases ride on the normalize commit (stores.ts `ProposedAliases`): a
 * vendor id seen for the first time costs no statement of its own; one whose alias existed without
 * this process knowing is normalized again with the stored hub id; a later message of the same run
 * gets the hub id an earlier one made up.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMemoryTracing } from '../telemetry/memory-tracing.test-support.ts';
import {
  behaviour,
  eventually,
  makeHub,
  push,
  resetBehaviour,
  setupInstance,
} from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});
beforeEach(() => resetBehaviour());

/** The hub ids stored for a vendor id of the test connector. */
async function hubIdsOf(vendorId: string): Promise<string[]> {
  const r = await sql<{ hub_id: string }>`select hub_id from switchyard.aliases
    where instance_id = 'acme-1' and entity = 'appointment' and vendor_id = ${vendorId}`.execute(hub.host.db);
  return r.rows.map((x) => x.hub_id);
}

/** The subjects of the events of a message, once it is normalized. */
async function subjectsOf(inboundId: string): Promise<string[]> {
  await eventually(async () =>
    (await hub.inbound.get(inboundId)).status === 'normalized' ? true : undefined,
  );
  const r = await sql<{ subject: string }>`select subject from switchyard.events
    where inbound_message_id = ${inboundId} order by sequence`.execute(hub.host.db);
  return r.rows.map((x) => x.subject);
}

async function pushed(body: unknown): Promise<string[]> {
  const r = await hub.ingest('acme-1', push(body));
  if (!r.ok) throw new Error(`push refused: ${r.status}`);
  return r.stored;
}

const normalizations = (dedupeKey: string) => behaviour.seen.filter((s) => s.key === dedupeKey).length;

describe('new aliases stored by the normalize commit', () => {
  it('stores a new vendor id’s alias with the events, not before', async () => {
    const storedWhileNormalizing: number[] = [];
    behaviour.afterHubId = async (vendorId) => {
      if (vendorId === 'b-new') storedWhileNormalizing.push((await hubIdsOf('b-new')).length);
    };
    const [id] = await pushed({ id: 'pa-1', type: 'created', booking: 'b-new' });
    const subjects = await subjectsOf(id!);
    expect(storedWhileNormalizing).toEqual([0]);
    const stored = await hubIdsOf('b-new');
    expect(stored).toHaveLength(1);
    expect(subjects).toEqual([`appointment/${stored[0]}`]);
    expect(normalizations('pa-1')).toBe(1);
  });

  it('normalizes again with the stored hub id when the alias existed unknown to this process', async () => {
    // As another process (or this one before a restart) stored it.
    await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
      values ('acme-1', 'appointment', 'b-known', 'hub-known-1')`.execute(hub.host.db);
    const [id] = await pushed({ id: 'pa-2', type: 'created', booking: 'b-known' });
    expect(await subjectsOf(id!)).toEqual(['appointment/hub-known-1']);
    expect(await hubIdsOf('b-known')).toEqual(['hub-known-1']);
    // The first try's made-up id was refused by its commit, which stored nothing of it.
    expect(normalizations('pa-2')).toBe(2);
    expect(await hub.inbound.get(id!)).toMatchObject({ status: 'normalized', attempts: 1 });

    // Known now: the next notification of it is normalized once.
    const [next] = await pushed({ id: 'pa-3', type: 'rescheduled', booking: 'b-known' });
    expect(await subjectsOf(next!)).toEqual(['appointment/hub-known-1']);
    expect(normalizations('pa-3')).toBe(1);
  });

  it("a trace says which try stored the message: the refused try's fan-out, the second normalize span", async () => {
    const { finished, tracing } = await startMemoryTracing();
    try {
      await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
        values ('acme-1', 'appointment', 'b-traced', 'hub-traced-1')`.execute(hub.host.db);
      const [id] = await pushed({ id: 'pa-traced', type: 'created', booking: 'b-traced' });
      expect(await subjectsOf(id!)).toEqual(['appointment/hub-traced-1']);
      await tracing.flush();
      const mine = (name: string) =>
        finished
          .filter((s) => s.name === name)
          .filter((s) => name !== 'switchyard.normalize' || s.attributes['messaging.message.id'] === id);
      const normalize = mine('switchyard.normalize');
      expect(normalize.map((s) => s.attributes['switchyard.normalize.again'] ?? false)).toEqual([
        false,
        true,
      ]);
      const fanouts = finished.filter(
        (s) =>
          s.name === 'switchyard.fanout' &&
          normalize.some((n) => n.spanContext().spanId === s.parentSpanContext?.spanId),
      );
      expect(fanouts.map((s) => s.attributes['switchyard.fanout.outcome'])).toEqual(['refused', 'stored']);
    } finally {
      await tracing.shutdown();
    }
  });

  it('gives a later message of the run the hub id an earlier one made up, stored once', async () => {
    // Stored by a hub that does not normalize, so the running one claims both as one run.
    const storing = await makeHub(database.url());
    let ids: string[];
    try {
      const r = await storing.ingest(
        'acme-1',
        push({
          items: [
            { id: 'pa-4', type: 'created', booking: 'b-run' },
            { id: 'pa-5', type: 'rescheduled', booking: 'b-run' },
          ],
        }),
      );
      if (!r.ok) throw new Error(`push refused: ${r.status}`);
      ids = r.stored;
    } finally {
      await storing.stop();
    }
    const [first, second] = [await subjectsOf(ids[0]!), await subjectsOf(ids[1]!)];
    const stored = await hubIdsOf('b-run');
    expect(stored).toHaveLength(1);
    expect(first).toEqual([`appointment/${stored[0]}`]);
    expect(second).toEqual(first);
    // Neither was refused and normalized again.
    expect([normalizations('pa-4'), normalizations('pa-5')]).toEqual([1, 1]);
  });
});
