/**
 * Migrations that move data, checked on a database as the previous version left it: migrated to
 * the end, then the migration under test undone by hand and the earlier version's rows written.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from './db.ts';
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
