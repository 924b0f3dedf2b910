/**
 * Migrations that move data, checked on a database as the previous version left it: migrated to
 * the end, then the migration under test undone by hand and the earlier version's rows written.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Database, newSessionTag, openDatabase, sessionApplicationName } from './db.ts';
import { until } from './locks.test-support.ts';
import { migrate, pendingMigrations, unknownMigrations } from './migrations.ts';

const pgdb = useTestDatabase();
let database: Database;

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 2 });
  await migrate(database.db);
});

afterAll(async () => {
  await database?.close();
});

/** What each case opened, closed after it (last opened first). */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** A direct session (a writer, or a transaction holding a lock), with its backend's pid. */
async function session(): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: pgdb.url() });
  await client.connect();
  cleanups.push(() => client.end());
  const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  return { client, pid };
}

/** The pid of the session named `tag`'s, once it waits for a lock (a heavyweight lock). */
async function waitingForLock(tag: string): Promise<number> {
  let pid: number | undefined;
  await until(async () => {
    const r = await sql<{ pid: number }>`select pid from pg_stat_activity
      where application_name = ${sessionApplicationName(tag)} and wait_event_type = 'Lock'`.execute(
      database.db,
    );
    pid = r.rows[0]?.pid;
    return pid !== undefined;
  });
  return pid!;
}

/** A database of its own for a migrating process named `tag`, closed after the case. */
function migrator(tag: string): Database {
  const opened = openDatabase(pgdb.url(), { max: 1, sessionTag: tag });
  cleanups.push(() => opened.close());
  return opened;
}

describe('migration 33: command records move from the instance state to their command', () => {
  it('moves the records of kept commands under the same key, drops those of purged ones, leaves the rest', async () => {
    const db = database.db;
    // As version 32 left it: no handler_state column, the records in entity_state.
    await sql`alter table switchyard.commands drop column handler_state`.execute(db);
    await sql`delete from switchyard.migrations where version = 33`.execute(db);
    const kept = '6a1f7c8e-2b3d-4e5f-8a9b-0c1d2e3f4a5b';
    const created = '7b2a8d9f-3c4e-4f6a-9bac-1d2e3f4a5b6c';
    const purged = '8c3b9e0a-4d5f-4a7b-8cbd-2e3f4a5b6c7d';
    for (const [id, instance, connector] of [
      [kept, 'dp', 'docplanner'],
      [created, 'cw', 'clockwisemd'],
    ] as const) {
      await sql`insert into switchyard.commands (id, type, instance_id, connector, data, sent_by, request_hash)
        values (${id}, 'appointment.book', ${instance}, ${connector}, '{}', 'admin', 'h')`.execute(db);
    }
    const state = (instance: string, key: string, value: unknown) =>
      sql`insert into switchyard.entity_state (instance_id, key, value)
        values (${instance}, ${key}, ${JSON.stringify(value)}::jsonb)`.execute(db);
    await state('dp', `docplanner:command:${kept}`, { done: { vendorIds: ['2087456999'] } });
    await state('cw', `clockwisemd:command:${created}`, 'sent');
    await state('dp', `docplanner:command:${purged}`, { sent: {} });
    await state('dp', 'docplanner:token', { accessToken: 'x' }); // the instance's own state stays
    expect(await pendingMigrations(db)).toEqual([33]);

    expect(await migrate(db)).toEqual([33]);

    const commands = await sql<{ id: string; handler_state: unknown }>`
      select id, handler_state from switchyard.commands order by id`.execute(db);
    expect(commands.rows).toEqual([
      {
        id: kept,
        handler_state: { [`docplanner:command:${kept}`]: { done: { vendorIds: ['2087456999'] } } },
      },
      { id: created, handler_state: { [`clockwisemd:command:${created}`]: 'sent' } },
    ]);
    const left = await sql<{ key: string }>`select key from switchyard.entity_state order by key`.execute(db);
    expect(left.rows.map((r) => r.key)).toEqual(['docplanner:token']);
  });
});

describe('a rolling upgrade', () => {
  it("keeps the previous version's delivery claim working after migration 35 (the one-argument function stays)", async () => {
    const db = database.db;
    const previous = await sql<{ id: string }>`select id from switchyard.claimable_deliveries(4)`.execute(db);
    expect(previous.rows).toEqual([]);
    const current = await sql<{
      id: string;
    }>`select id from switchyard.claimable_deliveries(4, array['a-subscription'])`.execute(db);
    expect(current.rows).toEqual([]);
  });

  it('names the migrations a newer version applied, for the process to warn about', async () => {
    const db = database.db;
    expect(await unknownMigrations(db)).toEqual([]);
    await sql`insert into switchyard.migrations (version, name) values (9001, 'from a newer version')`.execute(
      db,
    );
    try {
      expect(await unknownMigrations(db)).toEqual([9001]);
    } finally {
      await sql`delete from switchyard.migrations where version = 9001`.execute(db);
    }
  });
});

describe('migration 37: no vendor token and no subscriber password in a stored row', () => {
  it('deletes the stored access tokens and takes the password out of subscriber URLs', async () => {
    const db = database.db;
    await sql`delete from switchyard.migrations where version = 37`.execute(db);
    await sql`insert into switchyard.entity_state (instance_id, key, value) values
      ('dp', 'docplanner:oauth-token', '{"accessToken":"dptok-secret"}'),
      ('bb', 'bookingbug:admin-auth-token', '{"token":"bbtok-secret"}'),
      ('dp', 'docplanner:kept', '{"x":1}')`.execute(db);
    await sql`insert into switchyard.subscriptions (id, kind, url, event_types, secrets)
      values ('with-password', 'webhook', 'https://user:UrlPassSECRET@crm.example/hooks?x=1', '{"*"}', '[]')`.execute(
      db,
    );
    expect(await migrate(db)).toEqual([37]);
    const state = await sql<{ key: string }>`select key from switchyard.entity_state
      where key in ('docplanner:oauth-token', 'bookingbug:admin-auth-token', 'docplanner:kept')`.execute(db);
    expect(state.rows.map((r) => r.key)).toEqual(['docplanner:kept']);
    const sub = await sql<{
      url: string;
    }>`select url from switchyard.subscriptions where id = 'with-password'`.execute(db);
    expect(sub.rows[0]?.url).toBe('https://crm.example/hooks?x=1');
  });
});

describe("migration 39: an entity's current state is its last event stored", () => {
  it('moves a row the latest-time rule kept to the last event of its entity; leaves the others', async () => {
    const db = database.db;
    await sql`delete from switchyard.migrations where version = 39`.execute(db);
    const event = (id: string, subject: string, type: string, time: string, status: string) => {
      const envelope = {
        specversion: '1.0',
        id,
        type,
        source: 'bb',
        subject,
        time,
        datacontenttype: 'application/json',
        data: { id: subject.slice('appointment/'.length), status, start: '2017-03-14T15:00:00+00:00' },
        connector: 'bookingbug',
        instance: 'bb',
        vendortype: type,
      };
      return sql`insert into switchyard.events (id, type, source, subject, time, envelope, fhir)
        values (${id}, ${type}, 'bb', ${subject}, ${time}, ${JSON.stringify(envelope)}::jsonb, true)`.execute(
        db,
      );
    };
    // Booking A: a legacy change dated at receipt (2026), then the JRNI no-show (2017). Booking B:
    // its only event. Booking C: its events purged.
    const a = 'appointment/00000000-0000-4000-c000-00000000000a';
    const b = 'appointment/00000000-0000-4000-c000-00000000000b';
    const c = 'appointment/00000000-0000-4000-c000-00000000000c';
    await event(
      '00000000-0000-4000-9000-0000000000a1',
      a,
      'appointment.updated',
      '2026-12-06T10:00:00Z',
      'booked',
    );
    await event(
      '00000000-0000-4000-9000-0000000000a2',
      a,
      'appointment.no_show',
      '2017-03-14T16:05:00Z',
      'noshow',
    );
    await event(
      '00000000-0000-4000-9000-0000000000b1',
      b,
      'appointment.created',
      '2026-12-06T10:00:00Z',
      'booked',
    );
    // As the previous version left them (the events were stored without the projection here): A at
    // its 2026 event, B at its one event.
    const past = '2026-12-06T10:00:01.000Z';
    for (const [subject, id] of [
      [a, '00000000-0000-4000-9000-0000000000a1'],
      [b, '00000000-0000-4000-9000-0000000000b1'],
    ] as const) {
      await sql`insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id,
          event_type, event_time, event_sequence, envelope, updated_at)
        select subject, 'appointment', ${subject.slice('appointment/'.length)}, source, id, type, time,
          sequence, envelope, ${past} from switchyard.events where id = ${id}`.execute(db);
    }
    await sql`insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id,
        event_type, event_time, event_sequence, envelope, updated_at)
      values (${c}, 'appointment', ${c.slice('appointment/'.length)}, 'bb', '00000000-0000-4000-9000-0000000000c1',
        'appointment.cancelled', '2026-01-01T00:00:00Z', 1, '{"data":{"status":"cancelled"}}', ${past})`.execute(
      db,
    );
    const rows = async () =>
      (
        await sql<{ subject: string; event_type: string; status: string; changed: boolean }>`
          select subject, event_type, envelope -> 'data' ->> 'status' as status, updated_at > ${past} as changed
          from switchyard.current_entities where subject in (${a}, ${b}, ${c}) order by subject`.execute(db)
      ).rows;
    expect((await rows()).map((r) => r.status)).toEqual(['booked', 'booked', 'cancelled']);

    expect(await migrate(db)).toEqual([39]);

    expect(await rows()).toEqual([
      { subject: a, event_type: 'appointment.no_show', status: 'noshow', changed: true },
      { subject: b, event_type: 'appointment.created', status: 'booked', changed: false },
      { subject: c, event_type: 'appointment.cancelled', status: 'cancelled', changed: false },
    ]);
  });
});

/**
 * Migration 43 and 44's indexes on `current_entities`, the table every normalize commit upserts:
 * built concurrently, after the database is put back as version 42 left it.
 */
describe('index builds on a written table (migrations 43 and 44)', () => {
  const BUILT = [
    'current_entities_start_key_idx',
    'current_entities_updated_key_idx',
    'current_entities_status_idx',
    'current_entities_kind_subject_idx',
    'current_entities_document_status_idx',
  ];

  /** As version 42 left it: 43 and 44 undone, 43's replaced indexes back, `rows` entities. */
  async function asVersion42(rows: number): Promise<void> {
    const db = database.db;
    await sql`drop statistics if exists switchyard.current_entities_domain_stats`.execute(db);
    for (const name of BUILT) await sql.raw(`drop index if exists switchyard.${name}`).execute(db);
    await sql`create index current_entities_start_idx on switchyard.current_entities (kind, starts_at)`.execute(
      db,
    );
    await sql`create index current_entities_updated_idx on switchyard.current_entities (kind, updated_at)`.execute(
      db,
    );
    await sql`delete from switchyard.migrations where version in (43, 44)`.execute(db);
    await sql`delete from switchyard.current_entities`.execute(db);
    await sql`insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id, event_type,
        event_time, event_sequence, starts_at, envelope)
      select 'appointment/' || i, 'appointment', i::text, 'dp', gen_random_uuid(), 'appointment.created', now(), i,
        now() + i * interval '1 minute', jsonb_build_object('data', jsonb_build_object('status', 'booked'))
      from generate_series(1, ${rows}::int) i`.execute(db);
    expect(await pendingMigrations(db)).toEqual([43, 44]);
  }

  /** An upsert of one entity as the projection makes it (a new one, or one already there). */
  const upsert = (client: pg.Client, subject: string) =>
    client.query(
      `insert into switchyard.current_entities (subject, kind, hub_id, instance_id, event_id, event_type,
         event_time, event_sequence, envelope)
       values ($1, 'appointment', $1, 'dp', gen_random_uuid(), 'appointment.updated', now(), 1,
         '{"data":{"status":"booked"}}')
       on conflict (subject) do update set event_id = excluded.event_id, event_type = excluded.event_type,
         envelope = excluded.envelope, updated_at = now()`,
      [subject],
    );

  /**
   * A migration run held at a known point: a transaction that wrote the table stays open
   * (`holder`, rolled back after the case unless committed), and the run's first build waits for
   * it, as every build waits for the table's writers. Resolves once the migrating session waits,
   * with its pid; `run` is awaited by the case (a failure of it is not unhandled meanwhile).
   */
  async function heldMigration(tag = newSessionTag()) {
    const holder = await session();
    await holder.client.query('begin');
    cleanups.push(() => holder.client.query('rollback'));
    await upsert(holder.client, 'appointment/held');
    const migrating = migrator(tag);
    const run = migrate(migrating.db);
    run.catch(() => {});
    const pid = await waitingForLock(tag);
    return { holder, migrating, run, pid };
  }

  /** The migration's indexes on the table: name, validity and definition. */
  /**
   * A one-session pool under a 200 ms `lock_timeout` set as a role's or database's is (an operator
   * sets one to keep DDL from queueing the application): here through the URL's options, which a
   * session takes as the role's; with its session tag, to see it wait.
   */
  function underLockTimeout() {
    const url = new URL(pgdb.url());
    url.searchParams.set('options', '-c lock_timeout=200');
    const tag = newSessionTag();
    const migrating = openDatabase(url.toString(), { max: 1, sessionTag: tag });
    cleanups.push(() => migrating.close());
    return { migrating, tag };
  }

  async function indexes() {
    const r = await sql<{ name: string; valid: boolean; def: string }>`
      select c.relname as name, i.indisvalid as valid, pg_get_indexdef(i.indexrelid) as def
      from pg_index i join pg_class c on c.oid = i.indexrelid
      where i.indrelid = 'switchyard.current_entities'::regclass and c.relname <> 'current_entities_pkey'
        and c.relname <> 'current_entities_patient_idx'
      order by c.relname`.execute(database.db);
    return r.rows;
  }

  it('builds under a lock_timeout set for the role or the database, waiting out an older transaction', async () => {
    await asVersion42(100);
    const { migrating, tag } = underLockTimeout();
    const holder = await session();
    await holder.client.query('begin');
    cleanups.push(() => holder.client.query('rollback'));
    await upsert(holder.client, 'appointment/held');
    const run = migrate(migrating.db);
    run.catch(() => {});
    await waitingForLock(tag);
    // Kept open five times the lock timeout: a wait under it was cancelled by then.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await holder.client.query('commit');
    expect(await run).toEqual([43, 44]);
    expect((await indexes()).map((i) => [i.name, i.valid])).toEqual(
      [...BUILT].sort().map((name) => [name, true]),
    );
    // The session's own setting is back for whatever it runs next.
    const after = await sql<{ t: string }>`select current_setting('lock_timeout') as t`.execute(migrating.db);
    expect(after.rows[0]!.t).toBe('200ms');
  });

  it('drops a replaced index under a lock_timeout set for the role or the database, waiting out a reader of the table', async () => {
    await asVersion42(100);
    const { migrating, tag } = underLockTimeout();
    // A transaction that read the table and stays open (a report, a pg_dump): a concurrent build
    // does not wait for it (it holds no snapshot between statements and writes nothing), but
    // `DROP INDEX CONCURRENTLY` waits for every transaction holding a lock on the table.
    const reader = await session();
    await reader.client.query('begin');
    cleanups.push(() => reader.client.query('rollback'));
    await reader.client.query('select count(*) from switchyard.current_entities');
    const run = migrate(migrating.db);
    run.catch(() => {});
    await waitingForLock(tag);
    // Kept open five times the lock timeout: a wait under it was cancelled by then.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await reader.client.query('commit');
    expect(await run).toEqual([43, 44]);
    const names = (await indexes()).map((i) => i.name);
    expect(names).not.toContain('current_entities_start_idx');
    expect(names).not.toContain('current_entities_updated_idx');
    const after = await sql<{ t: string }>`select current_setting('lock_timeout') as t`.execute(migrating.db);
    expect(after.rows[0]!.t).toBe('200ms');
  });

  it("never makes a writer of the table wait: the build's lock is SHARE UPDATE EXCLUSIVE", async () => {
    await asVersion42(2000);
    // The build is held at a known point by a transaction that wrote the table and stays open:
    // a concurrent build first waits for every transaction holding a write lock on the table to
    // end (a plain CREATE INDEX, or DROP INDEX, waits for it too, for its SHARE or ACCESS EXCLUSIVE
    // lock). While the migration waits there, the writer's statements run: each either completes,
    // or waits for a lock the migration holds or is queued for (Postgres queues a new request behind
    // a conflicting waiting one: a plain build's SHARE request stops every writer arriving after
    // it). The loop below ends on either, so it needs no timing.
    const writer = await session();
    const { holder, run, pid: migratorPid } = await heldMigration();
    const locks = await sql<{ mode: string; granted: boolean }>`select mode, granted from pg_locks
      where pid = ${migratorPid} and relation = 'switchyard.current_entities'::regclass`.execute(database.db);
    expect(locks.rows).toEqual([{ mode: 'ShareUpdateExclusiveLock', granted: true }]);

    let written = 0;
    const writes = (async () => {
      for (let i = 1; i <= 20; i++) {
        await upsert(writer.client, `appointment/${i}`); // an entity already there
        await upsert(writer.client, `appointment/new-${i}`);
        written += 2;
      }
    })();
    let writesDone = false;
    void writes.then(() => {
      writesDone = true;
    });
    const blockedBy: number[][] = [];
    while (!writesDone) {
      const r = await sql<{
        blockers: number[];
      }>`select pg_blocking_pids(${writer.pid}) as blockers`.execute(database.db);
      const blockers = r.rows[0]!.blockers;
      if (blockers.length > 0) {
        blockedBy.push(blockers);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(blockedBy).toEqual([]);
    await writes;
    expect(written).toBe(40);
    expect(await pendingMigrations(database.db)).toEqual([43, 44]); // still held

    await holder.client.query('commit');
    expect(await run).toEqual([43, 44]);
    expect((await indexes()).map((i) => [i.name, i.valid])).toEqual(
      [...BUILT].sort().map((name) => [name, true]),
    );
  });

  it('drops a build killed midway and builds it again on the next run, recording the version only then', async () => {
    await asVersion42(100);
    const { holder, migrating, run, pid: migratorPid } = await heldMigration();
    const failed = run.then(
      () => undefined,
      (error: unknown) => error,
    );
    await sql`select pg_cancel_backend(${migratorPid})`.execute(database.db);
    expect(String(await failed)).toMatch(/canceling statement due to user request/);
    await holder.client.query('commit');
    // Left behind INVALID, and neither version recorded.
    expect((await indexes()).filter((i) => i.name === 'current_entities_start_key_idx')).toEqual([
      expect.objectContaining({ valid: false }),
    ]);
    expect(await pendingMigrations(database.db)).toEqual([43, 44]);

    expect(await migrate(migrating.db)).toEqual([43, 44]);
    const built = await indexes();
    expect(built.map((i) => [i.name, i.valid])).toEqual([...BUILT].sort().map((name) => [name, true]));
    expect(built.find((i) => i.name === 'current_entities_start_key_idx')?.def).toBe(
      "CREATE INDEX current_entities_start_key_idx ON switchyard.current_entities USING btree (kind, COALESCE(starts_at, 'infinity'::timestamp with time zone), subject)",
    );
  });

  it('rebuilds an index a failed build left INVALID under its name, which `if not exists` kept', async () => {
    await asVersion42(100);
    const db = database.db;
    // A unique build over rows sharing a kind fails and leaves its index INVALID.
    await expect(
      sql`create unique index concurrently current_entities_kind_subject_idx on switchyard.current_entities (kind)`.execute(
        db,
      ),
    ).rejects.toThrow(/could not create unique index/);
    expect((await indexes()).find((i) => i.name === 'current_entities_kind_subject_idx')?.valid).toBe(false);

    expect(await migrate(db)).toEqual([43, 44]);
    const built = (await indexes()).find((i) => i.name === 'current_entities_kind_subject_idx');
    expect(built).toEqual({
      name: 'current_entities_kind_subject_idx',
      valid: true,
      def: 'CREATE INDEX current_entities_kind_subject_idx ON switchyard.current_entities USING btree (kind, subject)',
    });
  });

  it('builds again an index whose build Postgres cancelled as a deadlock with an ANALYZE of the table', async () => {
    await asVersion42(100);
    // An ANALYZE queued behind the build's lock (an operator's, or a previous version's statistics
    // keeper: this one's skips a locked table) holds a snapshot the build then waits for: a deadlock. The analyzing session
    // checks for deadlocks only after an hour, so that the build is the one cancelled.
    const analyzer = await session();
    await analyzer.client.query(`set deadlock_timeout = '1h'`);
    const { holder, run } = await heldMigration();
    const analyzed = analyzer.client.query('analyze switchyard.current_entities');
    await until(async () => {
      const r = await sql<{
        blockers: number[];
      }>`select pg_blocking_pids(${analyzer.pid}) as blockers`.execute(database.db);
      return r.rows[0]!.blockers.length > 0;
    });
    await holder.client.query('commit');
    expect(await run).toEqual([43, 44]);
    await analyzed;
    expect((await indexes()).map((i) => [i.name, i.valid])).toEqual(
      [...BUILT].sort().map((name) => [name, true]),
    );
  });

  it("lets a previous version's process waiting for the migration lock through when its wait deadlocks the build", async () => {
    await asVersion42(100);
    // Releases up to 1943358 ran migrate in one transaction: `begin; select
    // pg_advisory_xact_lock(<key>)`. Restarted during an upgrade's build, that process waits for the
    // lock inside a statement, holding a snapshot the build then waits for: a deadlock, which the
    // build's side detects (the waiter checks after an hour, as when it queued long before the build
    // reached its wait). Built again under the lock, the index would wait for it again each time.
    const previous = await session();
    await previous.client.query(`set deadlock_timeout = '1h'`);
    const { holder, run } = await heldMigration();
    await previous.client.query('begin');
    const previousTurn = previous.client
      .query('select pg_advisory_xact_lock($1)', [0x53594d47])
      // The previous version finds nothing it knows to apply; what it sees of 43 and 44 then:
      .then(() =>
        previous.client.query<{ version: number }>(
          'select version from switchyard.migrations where version in (43, 44)',
        ),
      )
      .then(async (seen) => {
        await previous.client.query('commit');
        return seen.rows;
      });
    await until(async () => {
      const r = await sql<{
        blockers: number[];
      }>`select pg_blocking_pids(${previous.pid}) as blockers`.execute(database.db);
      return r.rows[0]!.blockers.length > 0;
    });
    await holder.client.query('commit');
    expect(await run).toEqual([43, 44]);
    expect(await previousTurn).toEqual([]); // it went through during the build, not after the run
    expect((await indexes()).map((i) => [i.name, i.valid])).toEqual(
      [...BUILT].sort().map((name) => [name, true]),
    );
  });

  it('lets one of two processes starting at once apply them, the other waiting without a deadlock', async () => {
    await asVersion42(100);
    // A waits in its first build (held as above) while B asks for the migration lock; then the
    // build goes on, and waits for every snapshot older than its own to end: a session waiting
    // in pg_advisory_lock holds one, and Postgres would cancel one of the two as a deadlock.
    const { holder, run: runA } = await heldMigration();
    const tagB = newSessionTag();
    const runB = migrate(migrator(tagB).db);
    runB.catch(() => {});
    await until(async () => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where application_name = ${sessionApplicationName(tagB)} and query ilike '%advisory%'`.execute(
        database.db,
      );
      return r.rows[0]!.n > 0;
    });
    await holder.client.query('commit');
    expect(await Promise.all([runA, runB])).toEqual([[43, 44], []]);
    expect((await indexes()).every((i) => i.valid)).toBe(true);
  });
});

/**
 * Migration 47's `ALTER TABLE switchyard.command_calls` (an ACCESS EXCLUSIVE lock), after the
 * database is put back as version 46 left it, while another session holds a lock on the table.
 */
describe('a migration whose table lock is held by another session (migration 47)', () => {
  /** Short bounds, so that a case sees several tries. */
  const lockWait = { lockTimeoutMs: 300, firstPauseMs: 100, maxPauseMs: 400, totalMs: 60_000 };

  /** As version 46 left it: 47's column gone and its version unrecorded. */
  async function asVersion46(): Promise<void> {
    const db = database.db;
    await sql`alter table switchyard.command_calls drop column if exists given_back`.execute(db);
    await sql`delete from switchyard.migrations where version = 47`.execute(db);
    expect(await pendingMigrations(db)).toEqual([47]);
  }

  /** A session named `name` in a transaction that read the table and stays open (rolled back after the case). */
  async function blocker(name: string) {
    const holder = await session();
    await holder.client.query(`set application_name = '${name}'`);
    await holder.client.query('begin');
    cleanups.push(() => holder.client.query('rollback'));
    await holder.client.query('select count(*) from switchyard.command_calls');
    return holder;
  }

  /** What a logger was told to warn. */
  function warnings() {
    const seen: {
      obj: { attempt?: number; blockers?: { pid: number; applicationName: string }[] };
      msg: string;
    }[] = [];
    return { seen, logger: { warn: (obj: object, msg: string) => seen.push({ obj, msg }) } };
  }

  /** `promise`'s outcome, or 'still waiting' after a generous bound (a statement queued behind the lock). */
  const within = <T>(promise: Promise<T>) =>
    Promise.race([
      promise,
      new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 15_000)),
    ]);

  /** Whether the command_calls column 47 adds is there. */
  async function columnAdded(): Promise<boolean> {
    const r = await sql<{ n: number }>`select count(*)::int as n from information_schema.columns
      where table_schema = 'switchyard' and table_name = 'command_calls' and column_name = 'given_back'`.execute(
      database.db,
    );
    return r.rows[0]!.n === 1;
  }

  it("never queues a running process's statements on the table behind the ALTER for longer than its lock timeout; applies it once the holder ends", async () => {
    await asVersion46();
    const holder = await blocker('a long report');
    const tag = newSessionTag();
    const { seen, logger } = warnings();
    const run = migrate(migrator(tag).db, { logger, lockWait });
    run.catch(() => {});
    // A process of the previous version reads the table while the ALTER waits for its lock, three
    // times: without a lock timeout its first read waited behind the ALTER as long as the holder ran.
    const running = await session();
    for (let round = 1; round <= 3; round++) {
      const migratorPid = await waitingForLock(tag);
      const read = running.client.query('select count(*) from switchyard.command_calls');
      await until(async () => {
        const r = await sql<{
          blockers: number[];
          waiting: boolean;
        }>`select pg_blocking_pids(${running.pid}) as blockers,
          exists (select from pg_stat_activity where pid = ${migratorPid} and wait_event_type = 'Lock') as waiting`.execute(
          database.db,
        );
        // Queued behind the ALTER, or run already (the try timed out in between).
        return r.rows[0]!.blockers.includes(migratorPid) || !r.rows[0]!.waiting;
      });
      expect((await within(read)) === 'still waiting').toBe(false);
    }
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(await pendingMigrations(database.db)).toEqual([47]); // still held

    await holder.client.query('commit');
    expect(await within(run)).toEqual([47]);
    expect(await columnAdded()).toBe(true);
  });

  it('waits and tries again under a statement_timeout set for the role or the database shorter than its lock timeout', async () => {
    await asVersion46();
    // A role's statement_timeout below the migration's lock timeout cancelled the ALTER's wait as a
    // statement timeout (57014), not a lock timeout: the start failed at once instead of trying again.
    const url = new URL(pgdb.url());
    url.searchParams.set('options', '-c statement_timeout=100');
    const migrating = openDatabase(url.toString(), { max: 1, sessionTag: newSessionTag() });
    cleanups.push(() => migrating.close());
    const holder = await blocker('a long report');
    const { seen, logger } = warnings();
    const run = migrate(migrating.db, { logger, lockWait });
    run.catch(() => {});
    await until(() => seen.length >= 1);
    await holder.client.query('commit');
    expect(await within(run)).toEqual([47]);
    expect(await columnAdded()).toBe(true);
    // The session's own setting is back for whatever it runs next.
    const after = await sql<{ t: string }>`select current_setting('statement_timeout') as t`.execute(
      migrating.db,
    );
    expect(after.rows[0]!.t).toBe('100ms');
  });

  it('fails the start after the bound, naming the session that held the lock', async () => {
    await asVersion46();
    const holder = await blocker('nightly-report');
    const { logger } = warnings();
    const run = migrate(migrator(newSessionTag()).db, {
      logger,
      lockWait: { ...lockWait, totalMs: 1_500 },
    }).then(
      () => 'applied',
      (error: unknown) => error,
    );
    const error = (await within(run)) as { code?: string; message?: string };
    expect(error.code).toBe('SY_STORAGE_MIGRATION_BLOCKED');
    expect(error.message).toContain(
      `pid ${holder.pid} (application_name "nightly-report", idle in transaction`,
    );
    expect(error.message).toContain('holding switchyard.command_calls)');
    // Never another session's statement: an analyst's SQL may carry a literal secret.
    expect(error.message).not.toContain('select count(*)');
    expect(await pendingMigrations(database.db)).toEqual([47]);
    expect(await columnAdded()).toBe(false);

    await holder.client.query('rollback');
    expect(await migrate(database.db)).toEqual([47]);
  });

  it('logs each retry once, with the session that held the lock', async () => {
    await asVersion46();
    const holder = await blocker('pg_dump');
    const { seen, logger } = warnings();
    const run = migrate(migrator(newSessionTag()).db, { logger, lockWait });
    run.catch(() => {});
    await until(() => seen.length >= 2);
    await holder.client.query('commit');
    expect(await within(run)).toEqual([47]);
    expect(seen.map((w) => w.obj.attempt)).toEqual(seen.map((_, i) => i + 1));
    for (const w of seen) {
      expect(w.obj.blockers).toEqual([
        expect.objectContaining({ pid: holder.pid, applicationName: 'pg_dump' }),
      ]);
      expect(w.msg).toMatch(
        /^migration 47 \(.*\) waited 300 ms for a table lock \(try \d+\); .* pid \d+ \(application_name "pg_dump"/,
      );
    }
  });
});
