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
