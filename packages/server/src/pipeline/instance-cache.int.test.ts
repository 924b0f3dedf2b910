/**
 * The instance loader's memory is bounded: `POST /hooks/<id>` looks the id up before any credential
 * is checked, so anyone can make the hub look up ids that do not exist. Those are remembered only
 * briefly, and the whole cache is capped, known instances kept before unknown ids.
 */
import type { Connector } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveKey, openSecret, sealSecret } from '../delivery/secret-box.ts';
import {
  call,
  SECRET_KEY as HTTP_SECRET_KEY,
  hookConnector,
  listen,
  silent,
  VENDOR_API_KEY,
} from '../http/app.test-support.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { acme, makeHub, SECRET_KEY, setupInstance } from './fixtures.test-support.ts';
import { createHub } from './hub.ts';
import { INSTANCE_CACHE_MAX_ENTRIES, INSTANCE_MISS_CACHE_MS, instanceLoader } from './shared.ts';

const pgdb = useTestDatabase();
let database: Database;
let statements = 0;
const key = deriveKey(SECRET_KEY);
const cipher = {
  seal: (plaintext: string, context?: string) => sealSecret(plaintext, key, context),
  open: (sealed: string, context?: string) => openSecret(sealed, key, context),
};
const connectors = new Map<string, Connector>([[acme.name, acme as unknown as Connector]]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  const hub = await makeHub(pgdb.url());
  await setupInstance(hub, 'acme-1');
  await hub.stop();
  database = openDatabase(pgdb.url(), { max: 6 });
  // Kysely checks a client out per statement: counts the lookups the loader sends.
  database.pool.on('acquire', () => {
    statements++;
  });
});

afterAll(async () => {
  await database?.close();
});

describe('the instance cache', () => {
  it('holds at most INSTANCE_CACHE_MAX_ENTRIES ids however many unknown ones are asked for, and keeps the known ones', async () => {
    const loader = instanceLoader(database.db, connectors, cipher, 60_000);
    expect(await loader.loadInstance('acme-1')).toBeDefined();
    const flood = INSTANCE_CACHE_MAX_ENTRIES + 500;
    const before = statements;
    for (let start = 0; start < flood; start += 50) {
      const ids = Array.from({ length: Math.min(50, flood - start) }, (_, i) => `ghost-${start + i}`);
      expect(await Promise.all(ids.map((id) => loader.loadInstance(id)))).toEqual(ids.map(() => undefined));
    }
    expect(statements - before).toBe(flood);
    expect(loader.cachedInstances()).toBeLessThanOrEqual(INSTANCE_CACHE_MAX_ENTRIES);
    // The flood evicted unknown ids only: the known instance is still answered from memory.
    const after = statements;
    expect((await loader.loadInstance('acme-1'))?.row.id).toBe('acme-1');
    expect(statements - after).toBe(0);
  }, 60_000);

  it('remembers an unknown id for INSTANCE_MISS_CACHE_MS only, even with a longer cache time', async () => {
    const loader = instanceLoader(database.db, connectors, cipher, 60_000);
    const before = statements;
    expect(await loader.loadInstance('not-yet')).toBeUndefined();
    expect(await loader.loadInstance('not-yet')).toBeUndefined();
    expect(statements - before).toBe(1);
    await sleep(INSTANCE_MISS_CACHE_MS + 50);
    expect(await loader.loadInstance('not-yet')).toBeUndefined();
    expect(statements - before).toBe(2);
  });

  it('does not remember ids no instance can have (longer than 100 characters)', async () => {
    const loader = instanceLoader(database.db, connectors, cipher, 60_000);
    const size = loader.cachedInstances();
    expect(await loader.loadInstance('x'.repeat(8000))).toBeUndefined();
    expect(loader.cachedInstances()).toBe(size);
  });
});

describe('over HTTP', () => {
  it('a push to an id that was unknown a moment ago reaches the instance another process created since', async () => {
    // The defaults of a production hub (instance cache 5 s), one process answering HTTP...
    const http = await createHub({
      databaseUrl: pgdb.url(),
      connectors: [hookConnector as never],
      secretKey: HTTP_SECRET_KEY,
      logger: silent,
      options: { queue: false, workers: false },
    });
    // ...and another, through which the instance is created (its cache is not the first's).
    const admin = await createHub({
      databaseUrl: pgdb.url(),
      connectors: [hookConnector as never],
      secretKey: HTTP_SECRET_KEY,
      logger: silent,
      options: { queue: false, workers: false },
    });
    const server = await listen(http);
    try {
      const push = () =>
        call(server.base, 'POST', '/hooks/late-shop', {
          token: null,
          headers: { 'x-api-key': VENDOR_API_KEY },
          body: { id: 'late-1', type: 'created' },
        });
      expect((await push()).status).toBe(404);
      await admin.instances.upsert({
        id: 'late-shop',
        connector: 'hooktest',
        settings: { apiKey: VENDOR_API_KEY },
      });
      await sleep(INSTANCE_MISS_CACHE_MS + 100);
      const answer = await push();
      expect(answer.status).toBe(202);
    } finally {
      await server.close();
      await http.stop();
      await admin.stop();
    }
  });
});
