/**
 * A subscription deleted while a normalize commit fans out to it. The commit's snapshot still holds
 * the subscription, the delete commits before the commit's deliveries are checked against it, and
 * Postgres refuses them (`deliveries_subscription_id_fkey`). That was a crash of the run: its
 * message kept its lease until it ran out (30 s), and every later notification of its ordering key
 * waited that long. Found in gates.int's "matching the booking that follows" (a Docplanner
 * facility's slot-booking normalized while the previous test's afterEach removed its
 * subscriptions: the next three cases waited 25 s for their links). The commit is now run again.
 *
 * Then the other writers of rows that reference a subscription (`*_subscription_id_fkey`), each
 * paused at that check by a delete held uncommitted in another session (the writer's snapshot, or
 * its caller's lookup, still holds the subscription; the check waits for the delete), the delete
 * committed: hub-made events (a command's outcome) fan out without it, and the API writers given
 * the subscription answer "no such subscription" (404), not a 500. The purge's feed gaps:
 * feed-purge-race.int.test.ts; command credentials: commands/credential-gone.int.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { type EventEnvelope, getSchemas, isSwitchyardError } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeHubEvents } from '../events/emit.ts';
import { setReadToken } from '../storage/fhir-tokens.ts';
import { advisoryLockWaiters, until } from '../storage/locks.test-support.ts';
import { makeHub, push, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
/** The first key of the normalize commit's subject locks (`lockSubjects` in events/store.ts). */
const SUBJECT_LOCK = 0x53595342;
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
});

it('normalizes a message whose commit met a subscription deleted meanwhile, without waiting for its lease', async () => {
  for (const id of ['stays', 'gone']) await unreachable(id);
  // The booking's hub id known beforehand, so its event's subject (and the lock the commit takes
  // for it) is known.
  const hubId = randomUUID();
  await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
    values ('acme-1', 'appointment', 'gone-1', ${hubId})`.execute(hub.host.db);
  // Holding the subject's lock stops the commit after its snapshot is taken (it holds both
  // subscriptions) and before it fans out; the delete commits in between.
  const holder = new pg.Client({ connectionString: database.url() });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select pg_advisory_xact_lock($1::integer, hashtext($2))', [
      SUBJECT_LOCK,
      `appointment/${hubId}`,
    ]);
    const r = await hub.ingest('acme-1', push({ id: 'gone-n1', type: 'created', booking: 'gone-1' }));
    if (!r.ok) throw new Error('ingest failed');
    const messageId = r.stored[0]!;
    await until(async () => (await advisoryLockWaiters(hub.host.db)) === 1);
    await hub.subscriptions.remove('gone');
    await holder.query('commit');
    // The run has ended (its message finished, or dropped by a crash with its lease left to run out).
    await until(() => hub.leaseCounts().inbound.held === 0);
    const message = await hub.inbound.get(messageId);
    expect(message.status).toBe('normalized');
    const fanned = await sql<{
      subscription_id: string;
    }>`select d.subscription_id from switchyard.deliveries d
      join switchyard.events e on e.id = d.event_id where e.inbound_message_id = ${messageId}`.execute(
      hub.host.db,
    );
    expect(fanned.rows.map((d) => d.subscription_id)).toEqual(['stays']);
  } finally {
    await holder.end();
  }
});

/** A subscription whose subscriber is never reached (port 9): deliveries stay pending or fail. */
const unreachable = (id: string) =>
  hub.subscriptions.create({ id, url: 'http://127.0.0.1:9/never-reached', allowPrivateAddresses: true });

/** A valid hub-made event (the schema's example) of a fresh appointment. */
function hubEvent(type = 'appointment.created'): EventEnvelope {
  // biome-ignore lint/suspicious/noExplicitAny: the schema's examples are read as they are.
  const schema = getSchemas().find((x) => x.$id.endsWith(`/events/${type}.json`)) as any;
  const { sequence: _, ...event } = structuredClone(schema.examples[0]!);
  return { ...event, id: randomUUID(), subject: `appointment/${randomUUID()}` };
}

/**
 * Runs `write` while subscription `id` is deleted: the delete is held uncommitted in another
 * session until `write`'s statement (its text containing `waitsIn`) waits on it, at the foreign key
 * check of the rows it writes for the subscription; then it commits. What `write` came to.
 */
async function deletedWhile<T>(
  id: string,
  waitsIn: string,
  write: () => Promise<T>,
): Promise<{ value: T } | { error: unknown }> {
  const deleter = new pg.Client({ connectionString: database.url() });
  await deleter.connect();
  try {
    await deleter.query('begin');
    await deleter.query('delete from switchyard.subscriptions where id = $1', [id]);
    const done = write().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await until(async () => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'
          and query ilike ${`%${waitsIn}%`}`.execute(hub.host.db);
      return r.rows[0]!.n === 1;
    });
    await deleter.query('commit');
    return await done;
  } finally {
    await deleter.end();
  }
}

/** The error's registry code (SY_…), or the Postgres one (23503 was the foreign key's refusal). */
function codeOf(outcome: { value: unknown } | { error: unknown }): string | undefined {
  if (!('error' in outcome)) return undefined;
  const e = outcome.error;
  return isSwitchyardError(e) ? e.code : String((e as { code?: unknown }).code);
}

describe('the other writers of rows that reference a subscription, racing its delete', () => {
  it("hub-made events (a command's outcome) fan out without it, in the caller's transaction", async () => {
    await unreachable('gone-hub');
    const event = hubEvent();
    // On the old code the statement failed (23503 deliveries_subscription_id_fkey) and with it the
    // caller's transaction: a command's outcome was not stored, the command stayed running until its
    // lease ran out and was sent to the vendor again.
    const r = await deletedWhile('gone-hub', 'insert into switchyard.events', () =>
      hub.host.db.transaction().execute(async (trx) => {
        const fanned = await storeHubEvents(trx, [event]);
        // The transaction goes on after the retry (its savepoint rolled back, not the transaction).
        await sql`select 1`.execute(trx);
        return fanned;
      }),
    );
    expect(codeOf(r)).toBeUndefined();
    const stored = await sql<{
      subscription_id: string;
    }>`select d.subscription_id from switchyard.deliveries d
      where d.event_id = ${event.id}`.execute(hub.host.db);
    expect(stored.rows.map((d) => d.subscription_id)).not.toContain('gone-hub');
    expect((r as { value: number }).value).toBe(stored.rows.length);
  });

  it("a pull reader's ack answers 404", async () => {
    await hub.subscriptions.create({ id: 'gone-ack', kind: 'pull', eventTypes: ['*'] });
    await storeHubEvents(hub.host.db, [hubEvent()]);
    // 500 on the old code: 23503 feed_cursors_subscription_id_fkey.
    const r = await deletedWhile('gone-ack', 'feed_cursors', () => hub.feed.ack('gone-ack', '1'));
    expect(codeOf(r)).toBe('SY_PIPELINE_NOT_FOUND');
  });

  it('a replay since a time answers 404', async () => {
    await storeHubEvents(hub.host.db, [hubEvent()]);
    // Created after the event: no delivery of its own, only the replay's.
    await unreachable('gone-replay');
    // 500 on the old code: 23503 deliveries_subscription_id_fkey.
    const r = await deletedWhile('gone-replay', 'insert into switchyard.deliveries', () =>
      hub.deliveries.replaySince('gone-replay', new Date(0)),
    );
    expect(codeOf(r)).toBe('SY_PIPELINE_NOT_FOUND');
  });

  it('an enable that replays what it missed answers 404', async () => {
    await unreachable('gone-enable');
    await hub.subscriptions.disable('gone-enable');
    await storeHubEvents(hub.host.db, [hubEvent()]);
    // 500 on the old code: 23503 deliveries_subscription_id_fkey. (It waited for the delete at its
    // replays' insert, then at the lock of its dead deliveries; now at its subscription's row, which
    // it locks first: store.ts lockSubscription.)
    const r = await deletedWhile('gone-enable', 'for no key update', () =>
      hub.subscriptions.enable('gone-enable', { replayMissed: true }),
    );
    expect(codeOf(r)).toBe('SY_PIPELINE_NOT_FOUND');
  });

  it('an enable answers 404', async () => {
    await unreachable('gone-enable-only');
    await hub.subscriptions.disable('gone-enable-only');
    // Not a foreign key: its lock of the row waits for the delete, then finds no row. A TypeError
    // (500) on the old code, which took the row for granted.
    const r = await deletedWhile('gone-enable-only', 'for no key update', () =>
      hub.subscriptions.enable('gone-enable-only'),
    );
    expect(codeOf(r)).toBe('SY_PIPELINE_NOT_FOUND');
  });

  it('a FHIR read token is refused as for an unknown subscription', async () => {
    await unreachable('gone-fhir');
    // Thrown on the old code (23503 fhir_read_tokens_subscription_id_fkey: a 500); false is the
    // 404 of `POST /v1/subscriptions/{id}/fhir-read-token`.
    const r = await deletedWhile('gone-fhir', 'fhir_read_tokens', () =>
      setReadToken(hub.host.db, 'gone-fhir', `hash-${randomUUID()}`, 'syfhir_x…'),
    );
    expect(r).toEqual({ value: false });
  });

  it("a replay and the subscription's delete at once: both go through, no deadlock", async () => {
    const event = hubEvent();
    await storeHubEvents(hub.host.db, [event]);
    // Created after the event (no fan-out to it), with a dead delivery of it.
    await unreachable('gone-dead');
    const dead = await sql<{ id: string }>`insert into switchyard.deliveries (id, subscription_id, event_id,
        event_sequence, subject, status, attempts, completed_at)
      select gen_random_uuid(), 'gone-dead', e.id, e.sequence, e.subject, 'dead', 1, now()
      from switchyard.events e where e.id = ${event.id} returning id`.execute(hub.host.db);
    const waiting = async (fragment: string) => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query ilike ${`%${fragment}%`}`.execute(
        hub.host.db,
      );
      return r.rows[0]!.n === 1;
    };
    const holder = new pg.Client({ connectionString: database.url() });
    const deleter = new pg.Client({ connectionString: database.url() });
    await holder.connect();
    await deleter.connect();
    try {
      // Holds back every write of deliveries: the replay stops at its insert (its delivery locked),
      // then the delete comes.
      await holder.query('begin');
      await holder.query('lock table switchyard.deliveries in share mode');
      const settle = <T>(p: Promise<T>) =>
        p.then(
          () => 'done',
          (error: unknown) => String((error as { code?: unknown }).code ?? error),
        );
      const replay = settle(hub.deliveries.replay(dead.rows[0]!.id));
      await until(() => waiting('insert into switchyard.deliveries'));
      const removal = settle(deleter.query(`delete from switchyard.subscriptions where id = 'gone-dead'`));
      await until(() => waiting('delete from switchyard.subscriptions'));
      await holder.query('commit');
      // On the old code one of them was aborted after a second: 40P01 (deadlock detected), the
      // delete's cascade waiting for the replay's lock on the delivery, the replay's foreign key
      // check for the delete.
      expect({ replay: await replay, removal: await removal }).toEqual({ replay: 'done', removal: 'done' });
    } finally {
      await holder.end();
      await deleter.end();
    }
    const left = await sql`select 1 from switchyard.deliveries where subscription_id = 'gone-dead'`.execute(
      hub.host.db,
    );
    expect(left.rows).toEqual([]);
  });
});

describe("a subscription's delete or disable beside a dead attempt of its delivery", () => {
  /**
   * A dead attempt's transaction (pipeline/deliver.ts) locks its delivery, then the subscription's
   * row (its dead count); a delete or disable locks the row, then the deliveries (cascade, park).
   * Here a session does the attempt's two steps with the delete or disable waiting in between: a
   * deadlock, which Postgres breaks after `deadlock_timeout` (1 s) by aborting the one that waited
   * first, the delete or disable (the attempt's second step waits 300 ms later).
   */
  async function beside(id: string, act: () => Promise<unknown>, waitsIn: string) {
    const event = hubEvent();
    await storeHubEvents(hub.host.db, [event]);
    // Created after the event (no fan-out to it), with a delivery of it due in an hour: this hub's
    // deliverer leaves it pending (a claimed one is not the disable's to park).
    await unreachable(id);
    const delivery = await sql<{
      id: string;
    }>`insert into switchyard.deliveries (id, subscription_id, event_id,
        event_sequence, subject, status, attempts, next_attempt_at)
      select gen_random_uuid(), ${id}, e.id, e.sequence, e.subject, 'pending', 0, now() + interval '1 hour'
      from switchyard.events e where e.id = ${event.id} returning id`.execute(hub.host.db);
    const attempt = new pg.Client({ connectionString: database.url() });
    await attempt.connect();
    try {
      await attempt.query('begin');
      await attempt.query(
        `update switchyard.deliveries set status = 'dead', updated_at = now() where id = $1`,
        [delivery.rows[0]!.id],
      );
      const acted = act().then(
        () => 'done',
        (error: unknown) => String((error as { code?: unknown }).code ?? error),
      );
      await until(async () => {
        const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query ilike ${`%${waitsIn}%`}`.execute(
          hub.host.db,
        );
        return r.rows[0]!.n === 1;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await attempt.query(
        'update switchyard.subscriptions set consecutive_dead = consecutive_dead + 1 where id = $1',
        [id],
      );
      await attempt.query('commit');
      // On the old code the delete or disable was the one aborted: 40P01, a 500 to its caller.
      expect(await acted).toBe('done');
    } finally {
      await attempt.end();
    }
  }

  it('the delete goes through, run again after the deadlock', async () => {
    await beside(
      'dl-delete',
      () => hub.subscriptions.remove('dl-delete'),
      'delete from switchyard.subscriptions',
    );
    expect((await hub.subscriptions.list()).map((s) => s.id)).not.toContain('dl-delete');
  });

  it('the disable goes through, run again after the deadlock', async () => {
    await beside(
      'dl-disable',
      () => hub.subscriptions.disable('dl-disable', 'maintenance'),
      'deliveries set next_attempt_at',
    );
    expect((await hub.subscriptions.get('dl-disable')).disabledAt).not.toBeNull();
  });
});
