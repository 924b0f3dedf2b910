/**
 * What the pull poller does with a batch the vendor has handed over when storing it fails. Docplanner's
 * pull is destructive (a pulled notification is gone from its queue), so the batch must never be
 * dropped: a notification Postgres refuses is stored in a storable form with the rest of its batch,
 * and a batch whose store fails is held and stored before the next fetch. Real Postgres, the real
 * Docplanner connector and simulator over HTTP; store failures are injected with a trigger.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import docplanner from '@switchyard/connector-docplanner';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import { injectSqlstate, SQLSTATE_FAULTS } from '../storage/sqlstate-fault.test-support.ts';
import { acme, eventually, makeHub } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';
import type { PipelineOptions } from './shared.ts';

const database = useTestDatabase();
let client: pg.Client;
let sim: DocplannerSimulator;
let hub: Hub | undefined;

/** Every log line of the hubs of this file, parsed. */
const logs: Array<Record<string, unknown> & { level: number; msg: string }> = [];
const logger = pino(
  { level: 'info' },
  {
    write(line: string) {
      logs.push(JSON.parse(line));
    },
  },
);

function startHub(options: PipelineOptions = {}): Promise<Hub> {
  return makeHub(database.url(), { connectors: [acme, docplanner], logger, options }).then(async (h) => {
    await h.start();
    return h;
  });
}

const batch = fixture('docplanner', 'notifications-multiple.json', 'fixtures-pull')
  .notifications as JsonObject[];
const [booked, canceled, breakCreated] = batch as [JsonObject, JsonObject, JsonObject];
const presence = fixture('docplanner', 'presence-marked-present.json');

/** A Docplanner pull instance in multiple mode against `baseUrl`; its next turn, once taken, a minute away. */
function pullInstance(id: string, baseUrl = sim.url) {
  return {
    id,
    connector: 'docplanner',
    mode: 'pull' as const,
    settings: {
      apiBaseUrl: baseUrl,
      clientId: 'sim-client',
      clientSecret: 'sim-secret',
      pullMode: 'multiple' as const,
      pullLimit: 10,
    },
    pull: { intervalMs: 60_000 },
  };
}

/**
 * Makes the next `times` inserts of `instanceId`'s inbound messages fail, as a statement failing
 * for the hub's own reasons would (a raised exception is neither an outage nor the payload's fault).
 */
async function failStores(instanceId: string, times: number): Promise<void> {
  const seq = `fail_${instanceId.replace(/\W/g, '_')}`;
  await client.query(`create sequence ${seq}`);
  await client.query(
    `create trigger ${seq} before insert on switchyard.inbound_messages for each row
     when (new.instance_id = '${instanceId}') execute function public.fail_store('${seq}', '${times}')`,
  );
}

interface Row {
  id: string;
  vendor_type: string;
  dedupe_key: string;
  status: string;
  reason: string | null;
  payload: JsonObject;
  meta: JsonObject | null;
}

async function rowsOf(instanceId: string): Promise<Row[]> {
  const r = await client.query<Row>(
    `select id, vendor_type, dedupe_key, status, reason, payload, meta from switchyard.inbound_messages
     where instance_id = $1 order by seq`,
    [instanceId],
  );
  return r.rows;
}

/** The rows once `count` are stored and none waits for its normalization. */
function settled(instanceId: string, count: number): Promise<Row[]> {
  return eventually(async () => {
    const rows = await rowsOf(instanceId);
    return rows.length === count && rows.every((r) => r.status !== 'received') ? rows : undefined;
  });
}

function multipleRequests(): number {
  return sim.served.filter((s) => s.path.startsWith('/api/v3/integration/notifications/multiple')).length;
}

beforeAll(async () => {
  client = new pg.Client({ connectionString: database.url() });
  await client.connect();
  sim = new DocplannerSimulator();
  await sim.start();
  hub = await startHub();
  await client.query(`
    create function public.fail_store() returns trigger language plpgsql as $$
    begin
      if nextval(tg_argv[0]) <= tg_argv[1]::bigint then
        raise exception 'injected store failure';
      end if;
      return new;
    end $$`);
});
afterAll(async () => {
  await hub?.stop();
  await sim?.close();
  await client?.end();
});

describe('a pulled batch Postgres refuses a notification of', () => {
  it('stores all three, the refused one sanitized and marked in meta, and normalizes them', async () => {
    const refused = structuredClone(canceled) as JsonObject & { data: { visit_booking: JsonObject } };
    refused.data.visit_booking.comment = 'call me\u0000 first \ud800 please';
    sim.enqueue(booked, refused, presence);
    await hub!.instances.upsert(pullInstance('dp-refused'));

    const rows = await settled('dp-refused', 3);
    // Before, the whole batch failed in one statement, was logged as a failed pull, and was lost.
    expect(rows.map((r) => [r.vendor_type, r.status, r.reason])).toEqual([
      ['slot-booked', 'normalized', null],
      ['booking-canceled', 'normalized', null],
      ['presence-marked', 'normalized', null],
    ]);
    expect(sim.queueLength).toBe(0);
    // Only the refused notification is altered: its NUL and lone surrogate became U+FFFD.
    expect(rows[0]!.payload).toEqual(booked);
    expect(rows[2]!.payload).toEqual(presence);
    const expected = structuredClone(refused);
    expected.data.visit_booking.comment = 'call me\uFFFD first \uFFFD please';
    expect(rows[1]!.payload).toEqual(expected);
    expect(rows[0]!.meta).toEqual({ source: 'pull' });
    expect(rows[2]!.meta).toEqual({ source: 'pull' });
    expect(rows[1]!.meta).toEqual({
      source: 'pull',
      unstorable: {
        reason: expect.stringMatching(/^the payload cannot be stored: unsupported Unicode escape sequence/),
        storedAs: 'sanitized',
      },
    });
    const cancelled = await hub!.inbound.get(rows[1]!.id);
    expect(cancelled.events.map((e) => [e.type, (e.data as JsonObject).comment])).toEqual([
      ['appointment.cancelled', 'call me\uFFFD first \uFFFD please'],
    ]);
    const health = await hub!.instances.health('dp-refused');
    expect(health.pull?.consecutiveFailures).toBe(0);
    expect(health.lastError).toMatch(
      new RegExp(
        `^pull: 1 pulled notification\\(s\\) Postgres refused were stored altered \\(message ${rows[1]!.id}`,
      ),
    );
    expect(logs).toContainEqual(
      expect.objectContaining({ instance: 'dp-refused', inbound: rows[1]!.id, storedAs: 'sanitized' }),
    );
  });

  it('stores a placeholder for one too deeply nested to store, which normalization fails, and the rest', async () => {
    // The simulator serializes what it serves, and a payload too deep for this process to serialize
    // cannot be: a bare stand-in serves the batch as text (the connector parses it, as it would
    // Docplanner's answer).
    const deep = structuredClone(canceled) as JsonObject & { data: { visit_booking: JsonObject } };
    deep.data.visit_booking.comment = 'DEEP';
    const body = JSON.stringify({ notifications: [booked, deep, breakCreated], remaining: 0 }).replace(
      '"DEEP"',
      `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    );
    let served = 0;
    const vendor: Server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/oauth/v2/token') return res.end('{"access_token":"t","expires_in":3600}');
      if (req.url?.startsWith('/api/v3/integration/notifications/multiple'))
        return res.end(served++ === 0 ? body : '{"notifications":[],"remaining":0}');
      res.statusCode = 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => vendor.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = vendor.address() as AddressInfo;
      await hub!.instances.upsert(pullInstance('dp-deep', `http://127.0.0.1:${port}`));
      const rows = await settled('dp-deep', 3);
      expect(rows.map((r) => [r.vendor_type, r.status])).toEqual([
        ['slot-booked', 'normalized'],
        ['booking-canceled', 'failed'],
        ['break-created', 'normalized'],
      ]);
      const reason = 'the payload is too deeply nested to store';
      expect(rows[1]!.payload).toEqual({ unstorable: `${reason}; this placeholder was stored in its place` });
      expect(rows[1]!.meta).toEqual({ source: 'pull', unstorable: { reason, storedAs: 'placeholder' } });
      // Failed for good, not retried: the connector finds no vendor data in the placeholder.
      expect(rows[1]!.reason).toMatch(/booking-canceled: the stored payload has no data object/);
      expect((await hub!.inbound.get(rows[1]!.id)).attempts).toBe(1);
      expect(served).toBe(1);
    } finally {
      await new Promise((resolve) => vendor.close(resolve));
    }
  });
});

describe('a pulled batch whose store fails', () => {
  it('is held and stored by the next turn before anything new is fetched: none lost, none fetched twice', async () => {
    await failStores('dp-outage', 1);
    const requestsBefore = multipleRequests();
    sim.enqueue(booked, canceled, breakCreated);
    await hub!.instances.upsert(pullInstance('dp-outage'));

    const failed = await eventually(async () => {
      const h = await hub!.instances.health('dp-outage');
      return h.pull?.consecutiveFailures === 1 ? h : undefined;
    });
    // The vendor no longer has them, and nothing is stored yet: the hub holds the only copy.
    expect(sim.queueLength).toBe(0);
    expect(await rowsOf('dp-outage')).toEqual([]);
    expect(failed.lastError).toBe(
      'pull failed: 3 pulled notifications waiting to be stored (the vendor no longer has them): injected store failure',
    );
    // The turn's backoff: the minute's interval doubled after one failure.
    const inMs = failed.pull!.nextAt!.getTime() - failed.lastErrorAt!.getTime();
    expect(inMs).toBeGreaterThan(110_000);
    expect(inMs).toBeLessThan(130_000);
    expect(logs).toContainEqual(expect.objectContaining({ instance: 'dp-outage', held: 3, level: 40 }));

    // Queued by the vendor meanwhile: the next turn fetches it only after it stored the held batch.
    sim.enqueue(presence);
    expect(await hub!.instances.pullNow('dp-outage')).toEqual({ stored: 4, duplicates: 0 });
    const rows = await settled('dp-outage', 4);
    expect(rows.map((r) => [r.vendor_type, r.status])).toEqual([
      ['slot-booked', 'normalized'],
      ['booking-canceled', 'normalized'],
      ['break-created', 'normalized'],
      ['presence-marked', 'normalized'],
    ]);
    expect(rows.map((r) => r.payload)).toEqual([booked, canceled, breakCreated, presence]);
    expect(new Set(rows.map((r) => r.dedupe_key)).size).toBe(4);
    // One request per turn: the held batch was stored, not fetched again.
    expect(multipleRequests() - requestsBefore).toBe(2);
    const health = await hub!.instances.health('dp-outage');
    expect(health.pull?.consecutiveFailures).toBe(0);
    expect(health.pull?.lastSuccessAt).not.toBeNull();
  });
});

describe('a pulled batch Postgres is out of disk space for', () => {
  it('is held, tried again at the interval (not backed off), said once without a stack, and stored once the disk has room', async () => {
    // A real 53100 from Postgres on the batch's inserts (not the hub's own failure above).
    const full = await injectSqlstate(client, SQLSTATE_FAULTS.diskFull, {
      table: 'inbound_messages',
      on: ['insert'],
      when: `new.instance_id = 'dp-full'`,
    });
    const from = logs.length;
    let failed: Awaited<ReturnType<Hub['instances']['health']>>;
    try {
      sim.enqueue(booked, canceled, breakCreated);
      await hub!.instances.upsert(pullInstance('dp-full'));
      failed = await eventually(async () => {
        const h = await hub!.instances.health('dp-full');
        return h.lastError !== null ? h : undefined;
      });
      // Docplanner no longer has them; the hub holds the only copy, none stored.
      expect(sim.queueLength).toBe(0);
      expect(await rowsOf('dp-full')).toEqual([]);
      expect(await full.raised()).toBeGreaterThanOrEqual(1);
    } finally {
      await full.clear();
    }
    expect(failed.lastError).toMatch(
      /^pull failed: 3 pulled notifications waiting to be stored \(the vendor no longer has them\): could not extend file/,
    );
    // The instance's minute, not doubled (before: 2 minutes, then 4, up to 5, per failed store).
    const inMs = failed.pull!.nextAt!.getTime() - failed.lastErrorAt!.getTime();
    expect(inMs).toBeGreaterThan(50_000);
    expect(inMs).toBeLessThan(70_000);
    // Not a failed poll (Docplanner answered): before, 1 per turn, and SwitchyardPullFailing fired
    // beside SwitchyardDatabaseOutOfResources for what is the hub's own database.
    // (The gauge reads the same column, `http/hub-stats.ts`.)
    expect(failed.pull!.consecutiveFailures).toBe(0);
    const during = logs.slice(from).filter((l) => l.instance === 'dp-full');
    // Before: a warning with the error's stack per turn, naming no condition.
    expect(during.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
    expect(during.filter((l) => l.level >= 50)).toEqual([]);
    expect(
      during.some((l) =>
        /^the database is unavailable \(Postgres is out of disk space\): 3 pulled notifications not stored/.test(
          l.msg,
        ),
      ),
    ).toBe(true);
    // The next turn stores what it held before it fetches anything: none lost, none twice.
    expect(await hub!.instances.pullNow('dp-full')).toEqual({ stored: 3, duplicates: 0 });
    const rows = await settled('dp-full', 3);
    expect(rows.map((r) => r.payload)).toEqual([booked, canceled, breakCreated]);
    await hub!.instances.remove('dp-full');
  });
});

describe('a pull turn cut short by a database outage', () => {
  it('gives its lease back once the database answers: the instance is due again at once, not after five minutes', async () => {
    // The turn stores its batch, then the statements that end it (finishPull, which clears the
    // lease, and the failure path's own) meet the outage (SQLSTATE 57P01, as when Postgres
    // terminates the session).
    await client.query(`create sequence blip_finish`);
    await client.query(`
      create function public.blip_finish() returns trigger language plpgsql as $$
      begin
        if old.pull_locked_until is not null and new.pull_locked_until is null
           and nextval('blip_finish') <= 2 then
          raise exception 'terminating connection due to administrator command' using errcode = '57P01';
        end if;
        return new;
      end $$`);
    await client.query(`create trigger blip_finish before update on switchyard.connector_instances
      for each row when (new.id = 'dp-blip') execute function public.blip_finish()`);
    sim.enqueue(booked);
    await hub!.instances.upsert({ ...pullInstance('dp-blip'), pull: { intervalMs: 300 } });
    await settled('dp-blip', 1);
    // The lease the failed end left is given back at the loop's next pass: the instance pulls
    // again within its interval, where it waited out the five-minute lease before.
    sim.enqueue(presence);
    const rows = await settled('dp-blip', 2);
    expect(rows.map((r) => r.vendor_type)).toEqual(['slot-booked', 'presence-marked']);
    expect(
      Number((await client.query(`select last_value from blip_finish`)).rows[0].last_value),
    ).toBeGreaterThan(2);
    expect(logs).toContainEqual(
      expect.objectContaining({
        instance: 'dp-blip',
        job: 'pull',
        msg: expect.stringMatching(/tried again once it is back/),
      }),
    );
    // It pulls from the simulator the other tests share: no more turns.
    await hub!.instances.remove('dp-blip');
  });
});

describe('a held batch at shutdown', () => {
  it('is stored by the stop when the database takes it again, else kept in the pull spool and stored by the next start', async () => {
    // This file's hub would take the instances too: each case below runs one hub alone.
    await hub!.stop();
    hub = undefined;

    const recovering = await startHub();
    await failStores('dp-stop-stored', 1);
    sim.enqueue(booked, canceled, breakCreated);
    await recovering.instances.upsert(pullInstance('dp-stop-stored'));
    await eventually(
      async () => (await recovering.instances.health('dp-stop-stored')).pull?.consecutiveFailures === 1,
    );
    await recovering.stop();
    // The next turn was two minutes away; stopping tried once more, and the database took them.
    expect((await rowsOf('dp-stop-stored')).map((r) => r.vendor_type)).toEqual([
      'slot-booked',
      'booking-canceled',
      'break-created',
    ]);
    expect(logs.filter((l) => l.instance === 'dp-stop-stored' && l.level >= 50)).toEqual([]);
    expect(recovering.pulledNotificationsLost()).toBe(0);

    const failing = await startHub();
    await failStores('dp-stop-lost', 1_000_000);
    sim.enqueue(booked, canceled);
    await failing.instances.upsert(pullInstance('dp-stop-lost'));
    await eventually(
      async () => (await failing.instances.health('dp-stop-lost')).pull?.consecutiveFailures === 1,
    );
    await failing.stop();
    expect(await rowsOf('dp-stop-lost')).toEqual([]);
    // Not lost (they were logged as lost, and `switchyard start` exited 1, before the pull spool):
    // on disk, stored by the next process once the database takes them.
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 40,
        instance: 'dp-stop-lost',
        spooled: 2,
        msg: '2 pulled notifications could not be stored at shutdown: kept in the pull spool, stored at the next start',
      }),
    );
    expect(logs.filter((l) => l.instance === 'dp-stop-lost' && l.level >= 50)).toEqual([]);
    expect(failing.pulledNotificationsLost()).toBe(0);

    await client.query('drop trigger fail_dp_stop_lost on switchyard.inbound_messages');
    const next = await startHub();
    try {
      await eventually(async () => ((await rowsOf('dp-stop-lost')).length === 2 ? true : undefined));
      expect((await rowsOf('dp-stop-lost')).map((r) => r.vendor_type)).toEqual([
        'slot-booked',
        'booking-canceled',
      ]);
    } finally {
      await next.stop();
    }
  });
});

describe('the pull spool', () => {
  it('takes nothing from Docplanner while it cannot be written: the notification stays in the queue', async () => {
    // A path under a file: the spool's directory cannot be made.
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-spool-')), 'not-a-directory');
    writeFileSync(file, '');
    const refusing = await startHub({ pullSpoolDir: join(file, 'spool') });
    try {
      const queued = sim.queueLength;
      sim.enqueue(presence);
      await refusing.instances.upsert(pullInstance('dp-no-spool'));
      const health = await eventually(async () => {
        const h = await refusing.instances.health('dp-no-spool');
        return h.pull?.consecutiveFailures === 1 ? h : undefined;
      });
      expect(health.lastError).toMatch(
        /^pull failed: the pull spool .* cannot be written \(workers\.pullSpoolDir\)/,
      );
      // Before: taken off Docplanner's queue with nowhere but memory to keep it.
      expect(sim.queueLength).toBe(queued + 1);
      expect(await rowsOf('dp-no-spool')).toEqual([]);
    } finally {
      await refusing.instances.remove('dp-no-spool').catch(() => {});
      await refusing.stop();
    }
  });
});

describe('a pulled batch stored late, after another process stored newer notifications of its keys', () => {
  /**
   * Process A takes `slot-booked` off Docplanner's queue and cannot store it (kept in its pull
   * spool); another process, B, on another host (a spool of its own), then pulls the
   * `booking-canceled` that followed and stores it; A's next start stores the `slot-booked`.
   * `normalizeAtB`: B normalizes what it stored (else it only stores it: a backlog).
   */
  async function lateCreation(instanceId: string, normalizeAtB: boolean) {
    const own = new DocplannerSimulator();
    await own.start();
    const spoolA = mkdtempSync(join(tmpdir(), 'switchyard-spool-a-'));
    const spoolB = mkdtempSync(join(tmpdir(), 'switchyard-spool-b-'));
    try {
      const a = await startHub({ pullSpoolDir: spoolA });
      await failStores(instanceId, 1_000_000);
      own.enqueue(booked);
      await a.instances.upsert(pullInstance(instanceId, own.url));
      await eventually(async () => (await a.instances.health(instanceId)).pull?.consecutiveFailures === 1);
      await a.stop(); // the store still fails: kept in A's spool
      await client.query(
        `drop trigger fail_${instanceId.replace(/\W/g, '_')} on switchyard.inbound_messages`,
      );

      const b = normalizeAtB
        ? await startHub({ pullSpoolDir: spoolB })
        : await makeHub(database.url(), {
            connectors: [acme, docplanner],
            logger,
            options: { workers: false, pullSpoolDir: spoolB },
          });
      own.enqueue(canceled);
      expect(await b.instances.pullNow(instanceId)).toEqual({ stored: 1, duplicates: 0 });
      if (normalizeAtB) await settled(instanceId, 1);
      await b.stop();
      expect((await rowsOf(instanceId)).map((r) => r.status)).toEqual([
        normalizeAtB ? 'normalized' : 'received',
      ]);

      const restarted = await startHub({ pullSpoolDir: spoolA });
      try {
        const rows = await settled(instanceId, 2);
        const events = await client.query<{ type: string }>(
          `select e.type from switchyard.events e join switchyard.inbound_messages m on m.id = e.inbound_message_id
           where m.instance_id = $1 order by e.sequence`,
          [instanceId],
        );
        await restarted.instances.remove(instanceId);
        return { rows, events: events.rows.map((e) => e.type) };
      } finally {
        await restarted.stop();
      }
    } finally {
      await own.close();
      for (const dir of [spoolA, spoolB]) rmSync(dir, { recursive: true, force: true });
    }
  }

  it('is normalized before those still waiting: the creation, then the cancellation', async () => {
    await hub?.stop();
    hub = undefined;
    const { rows, events } = await lateCreation('dp-late-waiting', false);
    // Before: stored after the cancellation, so normalized after it, and ignored as a late creation.
    expect(rows.map((r) => [r.vendor_type, r.status])).toEqual([
      ['slot-booked', 'normalized'],
      ['booking-canceled', 'normalized'],
    ]);
    expect(events).toEqual(['appointment.created', 'appointment.cancelled']);
    expect(logs).toContainEqual(
      expect.objectContaining({
        instance: 'dp-late-waiting',
        moved: 1,
        msg: expect.stringMatching(/^pulled notifications stored late/),
      }),
    );
  });

  it('after those already normalized is compared by its vendor time: the late creation is ignored', async () => {
    const { rows, events } = await lateCreation('dp-late-normalized', true);
    // What was announced cannot be taken back: the cancellation stands, and the creation, told
    // before it, would set the appointment back to booked.
    expect(rows.map((r) => [r.vendor_type, r.status])).toEqual([
      ['booking-canceled', 'normalized'],
      ['slot-booked', 'ignored'],
    ]);
    expect(rows[1]!.reason).toMatch(/a late creation/);
    expect(events).toEqual(['appointment.cancelled']);
  });
});
