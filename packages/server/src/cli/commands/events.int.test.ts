/**
 * `switchyard events tail` across a database outage: the database refuses connections and the
 * tail's sessions are terminated (as a Postgres restart does), then it takes them again. The tail
 * waits it out, says so once each way, and prints the event stored after it is back. Before, the
 * first poll that met the outage ended the command with "internal error (a bug; please report it)".
 */
import { randomUUID } from 'node:crypto';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { storeHubEvents } from '../../events/emit.ts';
import { createHub, type Hub } from '../../pipeline/hub.ts';
import { SECRET_KEY } from '../../reliability/support.test-support.ts';
import { setConnectionsAllowed } from '../../storage/database.test-support.ts';
import { type Database, openDatabase } from '../../storage/db.ts';
import type { CliIO } from '../command.ts';
import { tailEvents } from './events.ts';

const database = useTestDatabase();
let hub: Hub;
let admin: pg.Client;
/** Stores the events the tail prints (the hub runs no ingest). */
let store: Database;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  hub = await createHub({
    databaseUrl: database.url(),
    connectors: [],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    poolSize: 2,
    options: { workers: false, queue: false },
  });
  store = openDatabase(database.url(), { max: 1 });
});

afterAll(async () => {
  await setConnectionsAllowed(admin, database.name(), true).catch(() => {});
  await hub?.stop({ graceful: false });
  await store?.close();
  await admin?.end();
});

function event(): EventEnvelope {
  // biome-ignore lint/suspicious/noExplicitAny: the schema's examples are read as they are.
  const schema = getSchemas().find((x) => x.$id.endsWith('/events/appointment.created.json')) as any;
  const { sequence: _, ...example } = structuredClone(schema.examples[0]!);
  return { ...example, id: randomUUID() };
}

/**
 * Resolves once `check` holds, polling each 20 ms (the test's own timeout bounds it); throws what
 * ended the tail if it ended first.
 */
async function until(check: () => boolean, ended: () => unknown): Promise<void> {
  while (!check()) {
    if (ended() !== undefined) throw ended();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

it('waits out a database outage, says so once each way, and prints what is stored after it', {
  timeout: 30_000,
}, async () => {
  const first = event();
  await storeHubEvents(store.db, [first]);
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: {},
    cwd: process.cwd(),
  };
  const controller = new AbortController();
  let ended: unknown;
  const tail = tailEvents(hub, io, {}, false, controller.signal, 20).catch((error: unknown) => {
    ended = error ?? 'ended';
  });
  const waitFor = (check: () => boolean) => until(check, () => ended);
  try {
    await waitFor(() => out.includes(first.id));

    await setConnectionsAllowed(admin, database.name(), false);
    await waitFor(() => err.includes('unavailable'));
    await setConnectionsAllowed(admin, database.name(), true);
    await waitFor(() => err.includes('back'));
    const after = event();
    await storeHubEvents(store.db, [after]);
    await waitFor(() => out.includes(after.id));
  } finally {
    controller.abort();
    await tail;
  }
  expect(err.trim().split('\n')).toEqual([
    expect.stringMatching(/^switchyard events: the database is unavailable( \(\w+\))?; waiting for it$/),
    'switchyard events: the database is back',
  ]);
  expect(out.trim().split('\n')).toHaveLength(2);
});
