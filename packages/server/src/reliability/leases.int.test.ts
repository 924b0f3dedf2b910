/**
 * Leases of the normalize and deliver queues: short, renewed while the work runs, taken over from a
 * process that died, and given back by a live process as soon as its database is back.
 *
 * Before: the normalize lease was a fixed 5 minutes, so after a crash every later message of the
 * same entity waited 5 minutes; a live process whose normalizations or delivery records failed
 * during a database blip logged "crashed" and sat on its leases until they ran out.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import * as eventStore from '../events/store.ts';
import * as inboundStore from '../inbound/store.ts';
import { resolveOptions } from '../pipeline/shared.ts';
import { openDatabase } from '../storage/db.ts';
import { slowNormalize } from './connector.test-support.ts';
import { eventually, newLedger, openPool, pushOne, startInProcessHub } from './support.test-support.ts';
import { startTcpProxy } from './tcp-proxy.test-support.ts';

const database = useTestDatabase();
let pool: pg.Pool;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(() => {
  pool = openPool(database.url());
});
afterEach(async () => {
  slowNormalize.until = undefined;
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});
afterAll(async () => {
  await pool?.end();
});

interface MessageRow {
  dedupe_key: string;
  status: string;
  attempts: number;
  lock_token: string | null;
  locked_until: Date | null;
  processed_at: Date | null;
}

async function messages(prefix: string): Promise<MessageRow[]> {
  const r = await pool.query<MessageRow>(
    `select dedupe_key, status, attempts, lock_token, locked_until, processed_at
       from switchyard.inbound_messages where dedupe_key like $1 order by seq`,
    [`${prefix}%`],
  );
  return r.rows;
}

/** The lease lengths a hub runs with when nothing sets them: the defaults under test. */
const DEFAULT_LEASES = { normalizeLeaseMs: undefined, deliveryLeaseMarginMs: undefined };

it('a process that died holding leases loses its work to another process within the default lease', {
  timeout: 120_000,
}, async () => {
  // Pushes stored by an HTTP-only hub: nothing normalizes them yet.
  const front = await startInProcessHub({ databaseUrl: database.url(), pipeline: { workers: false } });
  cleanup.push(() => front.close());
  const ledger = newLedger();
  for (let n = 0; n < 12; n++) {
    await pushOne(front.base, ledger, {
      id: `dead-${n}`,
      subject: `dead-s${n % 3}`,
      type: n < 3 ? 'created' : 'updated',
    });
  }
  expect(ledger.acked).toHaveLength(12);

  // The process that dies: claims the queue heads with the default lease, then never renews,
  // finishes or releases them (as after kill -9).
  const dying = openDatabase(database.url(), { max: 1 });
  const { rows: claimed } = await inboundStore.claimInbound(dying.db, resolveOptions().normalizeLeaseMs, 64);
  await dying.close();
  expect(claimed.map((r) => r.dedupe_key).sort()).toEqual(['dead-0', 'dead-1', 'dead-2']);

  // A live process with the default settings takes the heads over once their lease runs out, and
  // the 9 messages waiting behind them follow. Bounded well under the old 5-minute lease.
  const taker = await startInProcessHub({ databaseUrl: database.url(), pipeline: DEFAULT_LEASES });
  cleanup.push(() => taker.close());
  const rows = await eventually(
    'every message normalized by the live process',
    async () => {
      const r = await messages('dead-');
      return r.length === 12 && r.every((m) => m.status === 'normalized') ? r : undefined;
    },
    75_000,
  );
  // The heads were claimed twice (the dead process, then the taker), the others once.
  expect(
    rows
      .filter((m) => m.attempts === 2)
      .map((m) => m.dedupe_key)
      .sort(),
  ).toEqual(['dead-0', 'dead-1', 'dead-2']);
  expect(rows.filter((m) => m.attempts === 1)).toHaveLength(9);
  // Still one entity at a time, in arrival order.
  for (let n = 3; n < 12; n++) {
    const before = rows.find((m) => m.dedupe_key === `dead-${n - 3}`)!;
    const after = rows.find((m) => m.dedupe_key === `dead-${n}`)!;
    expect(after.processed_at!.getTime()).toBeGreaterThanOrEqual(before.processed_at!.getTime());
  }
});

it('a process that died in the middle of a run loses the rest of it, in order, to another process', {
  timeout: 120_000,
}, async () => {
  const front = await startInProcessHub({ databaseUrl: database.url(), pipeline: { workers: false } });
  cleanup.push(() => front.close());
  const ledger = newLedger();
  for (let n = 0; n < 15; n++) {
    await pushOne(front.base, ledger, {
      id: `run-${String(n).padStart(2, '0')}`,
      subject: `run-s${n % 3}`,
      type: n < 3 ? 'created' : 'updated',
    });
  }
  expect(ledger.acked).toHaveLength(15);

  // The process that dies claims a run of each key (all five messages of each), stores the first
  // message of each run, and dies with the other twelve leased.
  const leaseMs = 1_500;
  const dying = openDatabase(database.url(), { max: 1 });
  const { rows: claimed } = await inboundStore.claimInbound(dying.db, leaseMs, 64, 32);
  expect(claimed).toHaveLength(15);
  const heads = claimed.filter((r) => ['run-00', 'run-01', 'run-02'].includes(r.dedupe_key));
  const { finished } = await eventStore.commitNormalized(
    dying.db,
    heads.map((r) => ({
      id: r.id,
      lockToken: r.lock_token!,
      status: 'ignored',
      reason: 'test',
      eventCount: 0,
    })),
    [],
  );
  expect(finished.size).toBe(3);
  await dying.close();

  // The taker's own leases are the default's (30 s): with the dead process's 1.5 s, a fresh-clone CI
  // under load had one of the taker's lapse before its renewal and a message claimed a third time.
  const taker = await startInProcessHub({ databaseUrl: database.url() });
  cleanup.push(() => taker.close());
  const rows = await eventually(
    'every message of the dead runs normalized by the live process',
    async () => {
      const r = await messages('run-');
      return r.length === 15 && r.slice(3).every((m) => m.status === 'normalized') ? r : undefined;
    },
    60_000,
  );
  // Nothing lost, nothing done twice: the dead process's stored heads stay as it stored them, each
  // other message was claimed twice (the dead run, then the taker) and normalized once.
  expect(rows.slice(0, 3).map((m) => m.status)).toEqual(['ignored', 'ignored', 'ignored']);
  expect(rows.slice(3).every((m) => m.attempts === 2)).toBe(true);
  // Still one entity at a time, in arrival order, with the events in the same order.
  for (let n = 3; n < 15; n++) {
    const before = rows[n - 3]!;
    const after = rows[n]!;
    expect(after.processed_at!.getTime()).toBeGreaterThanOrEqual(before.processed_at!.getTime());
  }
  const events = await pool.query<{ dedupe_key: string; subject: string }>(
    `select m.dedupe_key, e.subject from switchyard.events e
       join switchyard.inbound_messages m on m.id = e.inbound_message_id
      where m.dedupe_key like 'run-%' order by e.sequence`,
  );
  expect(events.rows).toHaveLength(12);
  for (const subject of new Set(events.rows.map((e) => e.subject))) {
    const keys = events.rows.filter((e) => e.subject === subject).map((e) => e.dedupe_key);
    expect(keys).toEqual([...keys].sort());
  }
});

it('a live process renews the lease of a long normalization: never retaken while it runs', {
  timeout: 60_000,
}, async () => {
  let finish!: () => void;
  slowNormalize.until = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const leaseMs = 600;
  const running = await startInProcessHub({
    databaseUrl: database.url(),
    pipeline: { normalizeLeaseMs: leaseMs },
  });
  cleanup.push(() => running.close());
  const ledger = newLedger();
  await pushOne(running.base, ledger, { id: 'renew-1', subject: 'renew-s', slow: true });
  const first = await eventually('the message claimed', async () => {
    const [m] = await messages('renew-');
    return m?.lock_token ? m : undefined;
  });

  // Several lease lengths with the normalization still running: its claim holds (same token, one
  // attempt, lease ahead of now); without renewals the process's own loop retakes it.
  const checks: MessageRow[] = [];
  while (checks.length < 10) {
    await new Promise((r) => setTimeout(r, leaseMs / 2));
    const [m] = await messages('renew-');
    checks.push(m!);
  }
  for (const m of checks) {
    expect(m).toMatchObject({ status: 'received', attempts: 1, lock_token: first.lock_token });
  }
  const now = (await pool.query<{ now: Date }>('select now()')).rows[0]!.now;
  expect(checks.at(-1)!.locked_until!.getTime()).toBeGreaterThan(now.getTime());

  finish();
  const done = await eventually('normalized', async () => {
    const [m] = await messages('renew-');
    return m?.status === 'normalized' ? m : undefined;
  });
  expect(done.attempts).toBe(1);
});

it('after a database blip the same live process gives back and redoes its cut-short work at once', {
  timeout: 90_000,
}, async () => {
  const direct = new URL(database.url());
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  cleanup.push(() => proxy.close());
  const proxied = new URL(database.url());
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);

  const secret = generateSecret();
  let answerFirst!: () => void;
  const firstAnswered = new Promise<void>((resolve) => {
    answerFirst = resolve;
  });
  let held = 0;
  const subscriber: RecordingSubscriber = await startRecordingSubscriber({
    secrets: secret,
    // The first delivery waits for the test: its outcome arrives while the database is cut.
    handler: async () => {
      if (held++ === 0) await firstAnswered;
      return 200;
    },
  });
  cleanup.push(() => subscriber.close());

  const log: { level: number; msg: string }[] = [];
  // Leases far longer than the test: only a release by the live process can bring the work back.
  const running = await startInProcessHub({
    databaseUrl: proxied.toString(),
    logger: pino({ level: 'info' }, { write: (line: string) => log.push(JSON.parse(line)) }),
    pipeline: { normalizeLeaseMs: 600_000, deliveryLeaseMarginMs: 600_000 },
  });
  cleanup.push(() => running.close());
  cleanup.push(async () => proxy.restore());
  await running.hub.subscriptions.create({
    url: `${subscriber.url}blip`,
    secrets: [secret],
    allowPrivateAddresses: true,
    retryScheduleMs: [0, 200, 200, 200, 200],
  });

  // One delivery in flight (waiting for the subscriber) and one normalization in progress.
  const ledger = newLedger();
  await pushOne(running.base, ledger, { id: 'blip-1', subject: 'blip-d' });
  await subscriber.waitFor(1, 20_000);
  let finish!: () => void;
  slowNormalize.until = new Promise<void>((resolve) => {
    finish = resolve;
  });
  await pushOne(running.base, ledger, { id: 'blip-2', subject: 'blip-n', slow: true });
  await eventually('the slow message claimed', async () => {
    const [m] = await messages('blip-2');
    return m?.lock_token ? m : undefined;
  });
  expect(ledger.acked).toEqual(['blip-1', 'blip-2']);

  // The database goes away; then both pieces of work reach the point where they need it.
  proxy.cut();
  finish();
  answerFirst();
  await eventually(
    'both cut short and waiting to be given back',
    () => {
      const c = running.hub.leaseCounts();
      return c.inbound.toRelease === 1 && c.deliveries.toRelease === 1;
    },
    30_000,
  );
  proxy.restore();

  // Back: the same process releases its leases and does the work again, long before they expire.
  await eventually(
    'both messages normalized and every delivery succeeded',
    async () => {
      const r = await pool.query<{ dedupe_key: string; status: string; delivery: string | null }>(
        `select m.dedupe_key, m.status, d.status as delivery
           from switchyard.inbound_messages m
           left join switchyard.events e on e.inbound_message_id = m.id
           left join switchyard.deliveries d on d.event_id = e.id
          where m.dedupe_key like 'blip-%' order by m.dedupe_key`,
      );
      return (
        r.rows.length === 2 && r.rows.every((x) => x.status === 'normalized' && x.delivery === 'succeeded')
      );
    },
    30_000,
  );
  expect(log.filter((l) => l.level >= 50 && /crashed/.test(l.msg))).toEqual([]);
  expect(log.some((l) => /given back to the queue/.test(l.msg))).toBe(true);
});
