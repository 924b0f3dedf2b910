import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseUrl } from './databases.ts';
import { testPostgresAdminUrl, useTestDatabase } from './use-test-database.ts';

const first = useTestDatabase();
const second = useTestDatabase();

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('useTestDatabase', () => {
  it('gives a fresh, empty database named sy_test_* (or with the run SWITCHYARD_TEST_DB_PREFIX)', async () => {
    const prefix = process.env.SWITCHYARD_TEST_DB_PREFIX ?? 'sy_test_';
    expect(first.name()).toMatch(new RegExp(`^${prefix}[0-9a-f]{12}$`));
    const [row] = await query<{ db: string }>(first.url(), 'SELECT current_database() AS db');
    expect(row?.db).toBe(first.name());
    const tables = await query(
      first.url(),
      "SELECT 1 FROM information_schema.tables WHERE table_schema = 'public'",
    );
    expect(tables).toEqual([]);
  });

  it('keeps two databases apart', async () => {
    expect(second.name()).not.toBe(first.name());
    await query(first.url(), 'CREATE TABLE only_in_first (x int); INSERT INTO only_in_first VALUES (1)');
    const inSecond = await query(
      second.url(),
      "SELECT 1 FROM information_schema.tables WHERE table_name = 'only_in_first'",
    );
    expect(inSecond).toEqual([]);
    await expect(query(second.url(), 'SELECT * FROM only_in_first')).rejects.toThrow(/does not exist/);
    expect(await query(first.url(), 'SELECT x FROM only_in_first')).toEqual([{ x: 1 }]);
  });
});

describe('createTestDatabase / drop', () => {
  let adminUrl: string;
  beforeAll(() => {
    adminUrl = testPostgresAdminUrl();
  });
  const exists = async (name: string) =>
    (await query(adminUrl, `SELECT 1 FROM pg_database WHERE datname = '${name}'`)).length === 1;

  it('names it with SWITCHYARD_TEST_DB_PREFIX when set (a shared server with a naming rule), and refuses a bad prefix', async () => {
    const before = process.env.SWITCHYARD_TEST_DB_PREFIX;
    process.env.SWITCHYARD_TEST_DB_PREFIX = 'team_a_';
    try {
      const db = await createTestDatabase({ adminUrl });
      try {
        expect(db.name).toMatch(/^team_a_[0-9a-f]{12}$/);
        expect(await exists(db.name)).toBe(true);
      } finally {
        await db.drop();
      }
      process.env.SWITCHYARD_TEST_DB_PREFIX = 'Bad-Prefix';
      await expect(createTestDatabase({ adminUrl })).rejects.toThrow(/lowercase letters, digits and _/);
    } finally {
      if (before === undefined) delete process.env.SWITCHYARD_TEST_DB_PREFIX;
      else process.env.SWITCHYARD_TEST_DB_PREFIX = before;
    }
  });

  it('drops the database even while a connection is open to it', async () => {
    const db = await createTestDatabase({ adminUrl });
    expect(db.url).toBe(databaseUrl(adminUrl, db.name));
    expect(await exists(db.name)).toBe(true);
    const lingering = new pg.Client({ connectionString: db.url });
    lingering.on('error', () => {});
    await lingering.connect();
    await db.drop();
    expect(await exists(db.name)).toBe(false);
    await lingering.end().catch(() => {});
  });

  afterAll(() => {});
});
