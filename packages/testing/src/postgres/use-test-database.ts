import { SwitchyardError } from '@switchyard/core';
import { afterAll, beforeAll, inject } from 'vitest';
import { createTestDatabase, type TestDatabase } from './databases.ts';
import './vitest-context.ts';

/** What {@link useTestDatabase} gives a test file. */
export interface TestDatabaseHandle {
  /** The URL of this file's database. Call it inside tests or hooks (it exists from `beforeAll` on). */
  url(): string;
  /** The database name, e.g. `sy_test_3f9a0c1b2d4e`. */
  name(): string;
}

/** The admin URL the global setup provided, else `DATABASE_URL`; throws why there is none. */
export function testPostgresAdminUrl(): string {
  const provided = inject('switchyardPostgres');
  if (provided?.url) return provided.url;
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  throw new SwitchyardError(
    'SY_STORAGE_TEST_DATABASE',
    provided?.error
      ? `no Postgres for tests: ${provided.error}`
      : 'no Postgres for tests: run through the root vitest config (its global setup starts one) or set DATABASE_URL',
  );
}

/**
 * Gives the calling test file its own fresh database: created in `beforeAll` as `sy_test_<random>`
 * on the run's Postgres (see `startTestPostgres()`), dropped with `WITH (FORCE)` in `afterAll`. Test
 * files run in parallel without seeing each other's rows. Close your pools in your own `afterAll`
 * (registered after this call, so it runs first); the drop closes stragglers anyway.
 *
 * @example
 * ```ts
 * const db = useTestDatabase();
 * let pool: pg.Pool;
 * beforeAll(() => { pool = new pg.Pool({ connectionString: db.url() }); });
 * afterAll(() => pool.end());
 * it('stores', async () => { await pool.query('CREATE TABLE t (x int)'); });
 * ```
 */
export function useTestDatabase(): TestDatabaseHandle {
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    database = await createTestDatabase({ adminUrl: testPostgresAdminUrl() });
  });
  afterAll(async () => {
    await database?.drop();
  });
  const current = (): TestDatabase => {
    if (!database) {
      throw new SwitchyardError(
        'SY_STORAGE_TEST_DATABASE',
        'the test database does not exist yet: call url() inside a test or hook, not at module level',
      );
    }
    return database;
  };
  return {
    url: () => current().url,
    name: () => current().name,
  };
}
