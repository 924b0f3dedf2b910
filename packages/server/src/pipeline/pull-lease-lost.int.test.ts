/**
 * A pull turn whose lease another process took over while it ran. The lease is taken over as soon
 * as no session of its holder is connected (instances/store.ts, `leaseFree`), and a live hub can
 * have none for a moment: an operator ended its sessions (`pg_terminate_backend`), a network cut
 * had Postgres end them. Its turn goes on (the vendor call needs no session) and its pool
 * reconnects: it must end after the batch in hand, leaving the instance to the new holder, not
 * fetch again beside it and clear its lease. Real hub, real Postgres, a Docplanner stand-in whose
 * first answer is held while the hub's sessions are ended.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import docplanner from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import { claimDuePulls } from '../instances/store.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { acme, eventually, makeHub } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
const LEASE_MS = 30_000;
const logs: Array<Record<string, unknown> & { msg: string }> = [];
const logger = pino(
  { level: 'info' },
  {
    write(line: string) {
      logs.push(JSON.parse(line));
    },
  },
);
const [booked, canceled] = fixture('docplanner', 'notifications-multiple.json', 'fixtures-pull')
  .notifications as JsonObject[];

let hub: Hub | undefined;
let other: Database | undefined;
let vendor: Server | undefined;
const spool = mkdtempSync(join(tmpdir(), 'switchyard-lease-lost-'));

afterAll(async () => {
  await hub?.stop();
  await other?.close();
  await new Promise((resolve) => vendor?.close(resolve));
  rmSync(spool, { recursive: true, force: true });
});

/** Ends every session of the hub tagged `tag`, and waits until Postgres has. */
async function endSessions(tag: string): Promise<void> {
  const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  try {
    const named = `select pid from pg_stat_activity where application_name = 'switchyard ' || $1`;
    await admin.query(`select pg_terminate_backend(pid) from (${named}) s`, [tag]);
    while ((await admin.query(named, [tag])).rowCount! > 0) await new Promise((r) => setTimeout(r, 10));
  } finally {
    await admin.end();
  }
}

describe('a pull turn whose lease another process took over', () => {
  it('fetches nothing more and leaves the new holder its lease', async () => {
    // The first fetch is held until released, and says more is waiting; later ones bring one more.
    let fetches = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let firstAsked!: () => void;
    const asked = new Promise<void>((resolve) => {
      firstAsked = resolve;
    });
    vendor = createServer((req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/oauth/v2/token') return res.end('{"access_token":"t","expires_in":3600}');
      if (req.url?.startsWith('/api/v3/integration/notifications/multiple')) {
        if (fetches++ === 0) {
          firstAsked();
          void released.then(() => res.end(JSON.stringify({ notifications: [booked], remaining: 5 })));
          return;
        }
        return res.end(JSON.stringify({ notifications: [canceled], remaining: 4 }));
      }
      res.statusCode = 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => vendor!.listen(0, '127.0.0.1', resolve));
    const { port } = vendor.address() as AddressInfo;

    hub = await makeHub(database.url(), {
      connectors: [acme, docplanner],
      logger,
      options: { pullSpoolDir: spool, pullLeaseMs: LEASE_MS },
    });
    await hub.start();
    await hub.instances.upsert({
      id: 'dp-lost',
      connector: 'docplanner',
      mode: 'pull',
      settings: {
        apiBaseUrl: `http://127.0.0.1:${port}`,
        clientId: 'sim-client',
        clientSecret: 'sim-secret',
        pullMode: 'multiple',
        pullLimit: 10,
      },
      pull: { intervalMs: 60_000 },
    });
    await asked;

    // The hub is mid-turn, waiting on the vendor. Its sessions end; another process's claim finds
    // none of them and takes the turn over (the hub reconnects within a second: tried again if it
    // came back first).
    other = openDatabase(database.url(), { max: 1 });
    const tag = hub.host.sessionTag;
    await eventually(async () => {
      await endSessions(tag);
      return (await claimDuePulls(other!.db, LEASE_MS, 10, other!.sessionTag)).some(
        (r) => r.id === 'dp-lost',
      );
    });

    release();
    const lost = await eventually(async () =>
      fetches > 1
        ? 'fetched again'
        : logs.some((l) => l.instance === 'dp-lost' && /another process took its lease over/.test(l.msg))
          ? 'ended'
          : undefined,
    );
    // The batch in hand is stored (the vendor no longer has it).
    await eventually(async () => {
      const r = await other!.pool.query(
        `select count(*)::int as n from switchyard.inbound_messages where instance_id = 'dp-lost'`,
      );
      return r.rows[0].n === 1;
    });
    // On the old code: it fetched again beside the new holder, then cleared its lease (due at once
    // for a third claim).
    expect(lost).toBe('ended');
    expect(fetches).toBe(1);
    const lease = await other.pool.query(
      `select pull_locked_by, pull_locked_until from switchyard.connector_instances where id = 'dp-lost'`,
    );
    expect(lease.rows[0].pull_locked_by).toBe(other.sessionTag);
    expect(lease.rows[0].pull_locked_until).not.toBeNull();
  });
});
