/**
 * `switchyard events tail` across a database outage: the database refuses connections and the
 * tail's sessions are terminated (as a Postgres restart does), then it takes them again. The tail
 * waits it out, says so once each way, and prints the event stored after it is back. Before, the
 * first poll that met the outage ended the command with "internal error (a bug; please report it)".
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { storeHubEvents } from '../../events/emit.ts';
import { createHub, type Hub } from '../../pipeline/hub.ts';
import { SECRET_KEY } from '../../reliability/support.test-support.ts';
import { setConnectionsAllowed } from '../../storage/database.test-support.ts';
import { type Database, openDatabase } from '../../storage/db.ts';
import type { CliIO } from '../command.ts';
import { main } from '../main.ts';
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

it('events list --type --limit finds the matches older than what one page looks at (EVENT_LIST_SCAN), not "no events"', {
  timeout: 60_000,
}, async () => {
  // Three old gate.decided events, then 25,000 others: a page looks at 10,000 at most.
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), case when i <= 3 then 'gate.decided' else 'appointment.created' end,
      'old/clinic', 'appointment/' || i, now(),
      jsonb_build_object('type', case when i <= 3 then 'gate.decided' else 'appointment.created' end), now()
    from generate_series(1, 25003) i`.execute(store.db);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-events-list-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      `database: { url: ${JSON.stringify(database.url())} }`,
      `secretKey: ${JSON.stringify(SECRET_KEY)}`,
      'logging: { level: silent }',
      '',
    ].join('\n'),
  );
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: {},
    cwd: dir,
  };
  const code = await main(
    ['events', 'list', '--config', file, '--type', 'gate.decided', '--limit', '2', '--json'],
    io,
  ).finally(() => rmSync(dir, { recursive: true, force: true }));
  expect(err).toBe('');
  expect(code).toBe(0);
  const listed = out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
  expect(listed.map((e: { type: string }) => e.type)).toEqual(['gate.decided', 'gate.decided']);
});

it('events tail --type prints the last ten matches when they are older than what one page looks at, then follows', {
  timeout: 60_000,
}, async () => {
  // Twelve gate.requested events, then 25,000 others: a page looks at 10,000 at most.
  await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
    select gen_random_uuid(), case when i <= 12 then 'gate.requested' else 'appointment.updated' end,
      'tail/clinic', 'appointment/tail-' || i, now(),
      jsonb_build_object('type', case when i <= 12 then 'gate.requested' else 'appointment.updated' end,
        'subject', 'appointment/tail-' || i), now()
    from generate_series(1, 25012) i`.execute(store.db);
  const older = await sql<{ subject: string }>`select subject from switchyard.events
    where type = 'gate.requested' order by sequence desc limit 10`.execute(store.db);
  let out = '';
  const io: CliIO = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: () => true },
    env: {},
    cwd: process.cwd(),
  };
  // The hub's events API, counting the reads that start from the newest event: the first screen
  // starts with one, each poll after it with another.
  let fromNewest = 0;
  const counted = {
    events: {
      list: (f: Parameters<Hub['events']['list']>[0] = {}) => {
        if (f.cursor === undefined) fromNewest++;
        return hub.events.list(f);
      },
    },
  } as unknown as Hub;
  const controller = new AbortController();
  let ended: unknown;
  const tail = tailEvents(counted, io, { type: 'gate.requested' }, true, controller.signal, 20).catch(
    (error: unknown) => {
      ended = error ?? 'ended';
    },
  );
  try {
    await until(
      () => fromNewest >= 2,
      () => ended,
    );
    // One stored after the first screen: printed after the ten, once.
    await sql`insert into switchyard.events (id, type, source, subject, time, envelope, created_at)
      values (gen_random_uuid(), 'gate.requested', 'tail/clinic', 'appointment/tail-new', now(),
        '{"type": "gate.requested", "subject": "appointment/tail-new"}', now())`.execute(store.db);
    await until(
      () => out.includes('appointment/tail-new'),
      () => ended,
    );
  } finally {
    controller.abort();
    await tail;
  }
  const printed = out
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { subject: string }).subject);
  // Before: nothing of the ten (none among the newest 10,000 events), only the new one.
  expect(printed).toEqual([...older.rows.map((r) => r.subject).reverse(), 'appointment/tail-new']);
});
