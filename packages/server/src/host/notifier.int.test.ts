import { useTestDatabase } from '@switchyard/testing';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertGateRequest, recordDecision } from '../gates/store.ts';
import { newInbound } from '../inbound/fixtures.test-support.ts';
import { storeInbound } from '../inbound/store.ts';
import { openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import { Notifier, sendNotifications } from './notifier.ts';

const database = useTestDatabase();
let db: Kysely<unknown>;
let close: () => Promise<void>;
let listener: pg.Client;
const heard: { channel: string; payload: string }[] = [];

beforeAll(async () => {
  ({ db, close } = openDatabase(database.url(), { max: 4 }));
  await migrate(db);
  listener = new pg.Client({ connectionString: database.url() });
  await listener.connect();
  listener.on('notification', (n) => heard.push({ channel: n.channel, payload: n.payload ?? '' }));
  for (const channel of [
    't_one',
    't_two',
    'switchyard_normalize',
    'switchyard_gate_requested',
    'switchyard_gate_decided',
  ])
    await listener.query(`listen ${channel}`);
  await sql`insert into switchyard.connector_instances (id, connector, mode, settings_sealed)
    values ('dp-notify', 'docplanner', 'push', 'x')`.execute(db);
});

afterAll(async () => {
  await listener?.end();
  await close?.();
});

/** Sends a marker on `t_one` and waits until the listener hears it. */
async function markerHeard(): Promise<string> {
  const marker = `marker-${Math.random()}`;
  await sendNotifications(db, ['t_one'], [marker]);
  const deadline = Date.now() + 5000;
  while (!heard.some((h) => h.payload === marker)) {
    if (Date.now() > deadline) throw new Error('the marker was not heard');
    await new Promise((r) => setTimeout(r, 5));
  }
  return marker;
}

/**
 * Everything heard between two markers, one sent before `write` and one after: NOTIFYs arrive in
 * commit order, so what an earlier test sent and did not wait for (heard late on a loaded machine)
 * is before the first, and everything `write` caused is before the second.
 */
async function heardBy(write: () => Promise<unknown>): Promise<{ channel: string; payload: string }[]> {
  await markerHeard();
  heard.length = 0;
  await write();
  const marker = await markerHeard();
  return heard.filter((h) => h.payload !== marker);
}

describe('Notifier', () => {
  it('sends what it is asked after the caller’s write, each (channel, payload) once per statement', async () => {
    const notifier = new Notifier(db, pino({ level: 'silent' }));
    const got = await heardBy(async () => {
      // Asked in one tick: one statement.
      const sent = [
        notifier.notify('t_one'),
        notifier.notify('t_one'),
        notifier.notify('t_two', 'a'),
        notifier.notify('t_two', 'b'),
        notifier.notify('t_two', 'a'),
      ];
      await Promise.all(sent);
    });
    expect(got).toEqual([
      { channel: 't_one', payload: '' },
      { channel: 't_two', payload: 'a' },
      { channel: 't_two', payload: 'b' },
    ]);
  });

  it('sends what is asked while a statement runs in the next one, and flush waits for both', async () => {
    const notifier = new Notifier(db, pino({ level: 'silent' }));
    const got = await heardBy(async () => {
      const first = notifier.notify('t_one', '1');
      await new Promise((r) => setImmediate(r)); // the first statement is on its way
      const second = notifier.notify('t_one', '2');
      await notifier.flush();
      await Promise.all([first, second]);
    });
    expect(got.map((h) => h.payload)).toEqual(['1', '2']);
  });

  it('commits its NOTIFY without waiting for the WAL flush, and leaves the session’s setting alone', async () => {
    const sent = await sendNotifications(db, ['t_one', 't_two'], ['x', 'y']);
    expect(sent).toEqual({ sent: 2, synchronousCommit: 'off' });
    const after = await sql<{ sync: string }>`select current_setting('synchronous_commit') as sync`.execute(
      db,
    );
    expect(after.rows[0]?.sync).toBe('on');
  });

  it('never throws: a failed send is logged and the wake-up left to the backstops', async () => {
    const broken = openDatabase('postgres://postgres@127.0.0.1:1/nowhere', { max: 1 });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const notifier = new Notifier(broken.db, logger);
    await expect(notifier.notify('t_one')).resolves.toBeUndefined();
    await notifier.flush();
    expect(lines.join('')).toContain('NOTIFY not sent');
    await broken.close();
  });
});

describe('the writing statements send no NOTIFY of their own', () => {
  it('storeInbound (the caller wakes the normalize workers after its commit)', async () => {
    const got = await heardBy(() =>
      storeInbound(db, [newInbound({ instanceId: 'dp-notify', orderingKey: 'k/1' })], [], []),
    );
    expect(got).toEqual([]);
  });

  it('insertGateRequest and recordDecision (the gates announce them after the commit)', async () => {
    const id = `gate-${Math.random()}`;
    const got = await heardBy(async () => {
      const { row } = await insertGateRequest(db, {
        id,
        instanceId: 'dp-notify',
        connector: 'docplanner',
        inboundMessageId: null,
        dedupeKey: id,
        vendorType: 'slot-booking',
        type: null,
        eventId: null,
        envelope: null,
        matchKey: null,
        deadlineMs: 5000,
        defaultOutcome: 'approve',
        deadlineAt: new Date(Date.now() + 5000),
        receivedAt: new Date(),
        claimedBy: null,
      });
      expect(row?.id).toBe(id);
      const decided = await recordDecision(
        db,
        id,
        {
          decision: 'approve',
          reason: 'approved',
          decidedBy: null,
          refusalReason: null,
          vendorErrorCode: null,
          error: null,
          responseStatus: 200,
          decisionMs: 1,
          approvers: 0,
        },
        [],
      );
      expect(decided?.won).toBe(true);
    });
    expect(got).toEqual([]);
  });
});
