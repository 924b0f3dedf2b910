import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorError } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { behaviour, eventually, makeHub, resetBehaviour } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
let hubStopped = false;
let client: pg.Client;

/** A pull instance of the acme connector whose next turn, once taken, is an hour away. */
function pullInstance(id: string) {
  return {
    id,
    connector: 'acme',
    mode: 'pull' as const,
    settings: { apiKey: 'k' },
    pull: { intervalMs: 3_600_000 },
  };
}

async function storedCount(instanceId: string): Promise<number> {
  const r = await client.query<{ n: number }>(
    'select count(*)::int as n from switchyard.inbound_messages where instance_id = $1',
    [instanceId],
  );
  return r.rows[0]!.n;
}

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  client = new pg.Client({ connectionString: database.url() });
  await client.connect();
});
afterAll(async () => {
  if (!hubStopped) await hub?.stop();
  await client?.end();
});
beforeEach(() => resetBehaviour());

describe('vendor pull turns', () => {
  it('a vendor call that hangs holds its own instance only: the next due instance is pulled meanwhile', async () => {
    let release = () => {};
    const hung = new Promise<void>((resolve) => {
      release = resolve;
    });
    let hanging = false;
    behaviour.beforePull = async (id) => {
      if (id !== 'acme-hung') return;
      hanging = true;
      await hung;
    };
    try {
      await hub.instances.upsert(pullInstance('acme-hung'));
      await eventually(async () => hanging);
      behaviour.pullQueue.push({ id: 'q-1', type: 'noop' });
      await hub.instances.upsert(pullInstance('acme-quick'));
      // Before, the loop's pass waited for every turn it had started: nothing else was claimed.
      await eventually(async () => (await storedCount('acme-quick')) === 1, 5000);
    } finally {
      release();
    }
    // The hung turn goes on once its vendor answers, and ends as any other.
    await eventually(async () => (await hub.instances.health('acme-hung')).pull?.lastSuccessAt ?? undefined);
  });

  it('a vendor that still has more after a turn of 50 batches is pulled again at once, not after its interval', async () => {
    behaviour.pullBatchSize = 1;
    behaviour.pullQueue.push(...Array.from({ length: 70 }, (_, i) => ({ id: `m-${i}`, type: 'noop' })));
    await hub.instances.upsert(pullInstance('acme-more'));
    await eventually(async () => (await storedCount('acme-more')) === 70);
    expect(behaviour.pullQueue).toHaveLength(0);
    const health = await hub.instances.health('acme-more');
    expect(health.pull).toMatchObject({ cursor: 'm-69', consecutiveFailures: 0 });
  });

  it('a vendor that says more with nothing in its batches waits its interval after a turn, not called again at once', async () => {
    behaviour.pullAlwaysMore = true;
    let fetches = 0;
    behaviour.beforePull = async (id) => {
      if (id === 'acme-empty') fetches++;
    };
    await hub.instances.upsert(pullInstance('acme-empty'));
    // One turn of 50 calls (each batch records a success: the turn's end is the 50th call, not
    // the first success); then an hour away (the loop would have called again within ms).
    const dueInMinutes = async () => {
      const row = await client.query<{ due_in_minutes: number }>(
        `select extract(epoch from pull_next_at - now()) / 60 as due_in_minutes
         from switchyard.connector_instances where id = 'acme-empty'`,
      );
      return Number(row.rows[0]?.due_in_minutes ?? 0);
    };
    await eventually(async () => (fetches >= 50 && (await dueInMinutes()) > 50 ? true : undefined));
    await sleep(300);
    expect(fetches).toBe(50);
    expect(await dueInMinutes()).toBeGreaterThan(50);
  });

  it("stores a failed turn's message without the instance's secrets, which a vendor may quote back", async () => {
    // A connector whose message quotes the vendor's answer ("invalid key <key>"): the instance's
    // last error (its health, the API, the dashboard) and the manual pull's answer kept the key.
    const key = 'acme-pull-key-5e1d07c2';
    behaviour.beforePull = async (id) => {
      if (id === 'acme-quoted') throw ConnectorError.transient(`vendor answered 401: invalid key ${key}`);
    };
    await hub.instances.upsert({ ...pullInstance('acme-quoted'), settings: { apiKey: key } });
    const turn = await hub.instances.pullNow('acme-quoted');
    expect(turn.error).toBe('vendor answered 401: invalid key [redacted]');
    const health = await hub.instances.health('acme-quoted');
    expect(health.lastError).toBe('pull failed: vendor answered 401: invalid key [redacted]');
  });

  it('an instance written through a process without workers wakes the pull loop of another process', async () => {
    // This file's hub would take the instance too; a worker whose backstop is a minute away must.
    await hub.stop();
    hubStopped = true;
    const http = await makeHub(database.url(), { options: { workers: false } });
    const worker = await makeHub(database.url(), { options: { pollIntervalMs: 60_000 } });
    try {
      await http.start();
      await worker.start();
      // The worker's first passes take what is due now (the instances above, left due): wait until
      // it sleeps towards its backstop.
      await eventually(async () => {
        const r = await client.query<{ n: number }>(
          `select count(*)::int as n from switchyard.connector_instances
           where pull_next_at <= now() or pull_locked_until > now()`,
        );
        return r.rows[0]!.n === 0;
      });
      await sleep(100);
      behaviour.pullQueue.push({ id: 'r-1', type: 'noop' });
      await http.instances.upsert(pullInstance('acme-remote'));
      await eventually(async () => (await storedCount('acme-remote')) === 1, 5000);
    } finally {
      await worker.stop();
      await http.stop();
    }
  });

  it('stopping ends a pull turn after the batch it is storing and leaves the instance due at once', async () => {
    const stopping = await makeHub(database.url());
    await stopping.start();
    behaviour.pullBatchSize = 1;
    behaviour.pullQueue.push(...Array.from({ length: 40 }, (_, i) => ({ id: `s-${i}`, type: 'noop' })));
    let fetches = 0;
    behaviour.beforePull = async (id) => {
      if (id !== 'acme-stop') return;
      fetches++;
      await sleep(25);
    };
    await stopping.instances.upsert(pullInstance('acme-stop'));
    await eventually(async () => fetches >= 3);
    await stopping.stop();
    // Before, stop waited for the whole turn: 40 batches, then the next turn an hour away.
    const left = behaviour.pullQueue.length;
    expect(left).toBeGreaterThan(20);
    expect(await storedCount('acme-stop')).toBe(40 - left);
    const row = await client.query<{ leased: boolean; due: boolean; pull_cursor: string }>(
      `select pull_locked_until is not null as leased, pull_next_at <= now() as due, pull_cursor
       from switchyard.connector_instances where id = 'acme-stop'`,
    );
    expect(row.rows[0]).toEqual({ leased: false, due: true, pull_cursor: `s-${39 - left}` });
  });

  it('a pull turn holds a short lease and renews it while it runs: three lease lengths into a hung vendor call, one turn', async () => {
    // Before, a turn's lease was a fixed five minutes, never renewed: a worker killed in a turn
    // (kill -9 in a rollout) stopped the instance's pulls for five minutes.
    const [a, b] = [
      await makeHub(database.url(), { options: { pullLeaseMs: 600 } }),
      await makeHub(database.url(), { options: { pullLeaseMs: 600 } }),
    ];
    let release = () => {};
    const hung = new Promise<void>((resolve) => {
      release = resolve;
    });
    let turns = 0;
    behaviour.beforePull = async (id) => {
      if (id !== 'acme-lease') return;
      turns++;
      await hung;
    };
    const leaseLeft = async () => {
      const r = await client.query<{ ms: number | null }>(
        `select extract(epoch from pull_locked_until - now()) * 1000 as ms
         from switchyard.connector_instances where id = 'acme-lease'`,
      );
      return r.rows[0]?.ms === null || r.rows[0]?.ms === undefined ? undefined : Number(r.rows[0].ms);
    };
    try {
      await a.start();
      await b.start();
      await a.instances.upsert(pullInstance('acme-lease'));
      await eventually(async () => turns === 1);
      const first = await leaseLeft();
      expect(first).toBeLessThanOrEqual(600);
      // Three lease lengths into the hung vendor call: still leased (renewed), never taken twice.
      await sleep(1800);
      const later = await leaseLeft();
      expect(later).toBeGreaterThan(0);
      expect(later).toBeLessThanOrEqual(600);
      expect(turns).toBe(1);
    } finally {
      release();
      await a.stop();
      await b.stop();
    }
    await eventually(async () => (await leaseLeft()) === undefined);
  });
});
