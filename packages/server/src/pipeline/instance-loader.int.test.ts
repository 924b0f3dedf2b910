import type { Connector } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveKey, openSecret, sealSecret } from '../delivery/secret-box.ts';
import { createLogger } from '../logging/logger.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { acme, makeHub, SECRET_KEY, setupInstance } from './fixtures.test-support.ts';
import { INSTANCE_SLOW_READ_MS, instanceLoader } from './shared.ts';

const pgdb = useTestDatabase();
let database: Database;
let statements = 0;
const key = deriveKey(SECRET_KEY);
const cipher = {
  seal: (plaintext: string, context?: string) => sealSecret(plaintext, key, context),
  open: (sealed: string, context?: string) => openSecret(sealed, key, context),
};
const connectors = new Map<string, Connector>([[acme.name, acme as unknown as Connector]]);

beforeAll(async () => {
  const hub = await makeHub(pgdb.url());
  await setupInstance(hub, 'acme-1');
  await setupInstance(hub, 'acme-rot');
  await hub.stop();
  database = openDatabase(pgdb.url(), { max: 6 });
  // Kysely checks a client out per statement: counts the statements the loader sends.
  database.pool.on('acquire', () => {
    statements++;
  });
});

afterAll(async () => {
  await database?.close();
});

describe('instanceLoader', () => {
  it('answers concurrent misses of one instance with one read', async () => {
    const loader = instanceLoader(database.db, connectors, cipher, 60_000);
    const before = statements;
    const loaded = await Promise.all(Array.from({ length: 20 }, () => loader.loadInstance('acme-1')));
    expect(statements - before).toBe(1);
    expect(new Set(loaded).size).toBe(1);
    expect(loaded[0]?.config).toMatchObject({ apiKey: 'acme-api-key' });
    // Cached now: no statement.
    await loader.loadInstance('acme-1');
    expect(statements - before).toBe(1);
  });

  it('reads again for a fresh load and after forgetInstance, and shares no read across the forget', async () => {
    const loader = instanceLoader(database.db, connectors, cipher, 60_000);
    await loader.loadInstance('acme-1');
    const before = statements;
    await loader.loadInstance('acme-1', true);
    expect(statements - before).toBe(1);
    loader.forgetInstance('acme-1');
    const first = loader.loadInstance('acme-1');
    loader.forgetInstance('acme-1');
    // The read started before the forget is not shared with this one.
    const second = loader.loadInstance('acme-1');
    await Promise.all([first, second]);
    expect(statements - before).toBe(3);
    // The second read filled the cache.
    await loader.loadInstance('acme-1');
    expect(statements - before).toBe(3);
  });

  it('keeps what a read slower than INSTANCE_SLOW_READ_MS found, and shares it while it hangs (for the cache time)', async () => {
    // Another process changes the instance's credentials while this one's reads hang (the table
    // locked): the callers get the instance as last read after 500 ms, as documented, but once
    // the read has ended what it found is what the next slow read falls back to.
    const cacheMs = 1500;
    const loader = instanceLoader(database.db, connectors, cipher, cacheMs);
    const expired = () => new Promise((r) => setTimeout(r, cacheMs + 100));
    expect((await loader.loadInstance('acme-rot'))?.config).toMatchObject({ apiKey: 'acme-api-key' });
    const other = new pg.Client({ connectionString: pgdb.url() });
    await other.connect();
    const waitingOnLock = async () => {
      for (;;) {
        const { rows } = await other.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%connector_instances%'`,
        );
        if (rows[0]!.n > 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const noneWaiting = async () => {
      for (;;) {
        const { rows } = await other.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'`,
        );
        if (rows[0]!.n === 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await other.query('begin');
      await other.query('update switchyard.connector_instances set settings_sealed = $1 where id = $2', [
        cipher.seal(JSON.stringify({ apiKey: 'acme-rotated-key', region: 'eu' }), 'instance:acme-rot'),
        'acme-rot',
      ]);
      await other.query('lock table switchyard.connector_instances in access exclusive mode');
      await expired();
      const before = statements;
      // The documented fallback: the last row, the read going on.
      expect((await loader.loadInstance('acme-rot'))?.config).toMatchObject({ apiKey: 'acme-api-key' });
      await waitingOnLock();
      // Callers meanwhile share the hanging read (each started one of its own before).
      expect((await loader.loadInstance('acme-rot'))?.config).toMatchObject({ apiKey: 'acme-api-key' });
      expect((await loader.loadInstance('acme-rot'))?.config).toMatchObject({ apiKey: 'acme-api-key' });
      expect(statements - before).toBe(1);
      await other.query('commit');
      await noneWaiting();
      // The database slow again: the fallback is the row the ended read found, not the first one.
      await other.query('begin');
      await other.query('lock table switchyard.connector_instances in access exclusive mode');
      await expired();
      const slowAgain = loader.loadInstance('acme-rot');
      await waitingOnLock();
      await new Promise((r) => setTimeout(r, INSTANCE_SLOW_READ_MS + 200));
      await other.query('commit');
      expect((await slowAgain)?.config).toMatchObject({ apiKey: 'acme-rotated-key' });
      // A read stuck longer than the cache time is not joined: the next caller reads again.
      await other.query('begin');
      await other.query('lock table switchyard.connector_instances in access exclusive mode');
      await expired();
      const stuckFrom = statements;
      await loader.loadInstance('acme-rot');
      await expired();
      await loader.loadInstance('acme-rot');
      expect(statements - stuckFrom).toBe(2);
      await other.query('commit');
    } finally {
      await other.query('rollback').catch(() => {});
      await other.end();
    }
  });

  it('remembers an unknown instance as unknown for the cache time', async () => {
    const loader = instanceLoader(database.db, connectors, cipher, 60_000);
    const before = statements;
    const answers = await Promise.all([loader.loadInstance('nope'), loader.loadInstance('nope')]);
    expect(answers).toEqual([undefined, undefined]);
    expect(statements - before).toBe(1);
  });
});

describe('the secrets of an instance made through the admin API', () => {
  it('are scrubbed from every log line once the hub has read its settings', async () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => lines.push(line) } });
    const hub = await makeHub(pgdb.url(), { logger });
    try {
      await hub.instances.upsert({
        id: 'acme-api',
        connector: 'acme',
        mode: 'push',
        settings: { apiKey: 'acme-api-made-key-7f3a', region: 'eu' },
      });
      await hub.host.loadInstance('acme-api');
      // What a vendor answer quoting the key makes of a retried command's log line.
      logger
        .child({ command: 'c-1' })
        .warn({ reason: 'Invalid Authtoken acme-api-made-key-7f3a' }, 'command will be retried');
      const line = lines.find((l) => l.includes('command will be retried'));
      expect(line).toContain('Invalid Authtoken [redacted]');
      // Before: only the config file's secrets were scrubbed, and this instance is in no file.
      expect(lines.join('')).not.toContain('acme-api-made-key-7f3a');
    } finally {
      await hub.stop();
    }
  });
});
