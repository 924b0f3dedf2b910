import type { TestDatabaseHandle } from '@switchyard/testing';
import { afterAll, beforeAll } from 'vitest';
import { type Database, openDatabase } from './db.ts';
import { migrate } from './migrations.ts';

/**
 * The hub's database on a test file's Postgres database (`useTestDatabase()`): opened with a pool
 * of two and migrated before the file's tests (a `beforeAll` registered after the database's own,
 * so it runs after it, and before the file's later hooks), closed after them. For store-level tests
 * that run the stores' SQL directly, without a hub.
 *
 * @example
 * ```ts
 * const database = useTestDatabase();
 * const store = useMigratedDatabase(database);
 * it('claims', async () => {
 *   await sql`select 1`.execute(store.db);
 * });
 * ```
 */
export function useMigratedDatabase(database: TestDatabaseHandle): Database {
  let opened: Database | undefined;
  beforeAll(async () => {
    opened = openDatabase(database.url(), { max: 2 });
    await migrate(opened.db);
  });
  afterAll(async () => {
    await opened?.close();
  });
  const current = (): Database => {
    if (!opened)
      throw new Error('the migrated database is opened in beforeAll: use it inside a test or hook');
    return opened;
  };
  return {
    get pool() {
      return current().pool;
    },
    get planStablePool() {
      return current().planStablePool;
    },
    get db() {
      return current().db;
    },
    get sessionTag() {
      return current().sessionTag;
    },
    close: () => current().close(),
  };
}

/**
 * Makes a test's database refuse connections, or take them again (`ALTER DATABASE …
 * ALLOW_CONNECTIONS`), as an outage does: refusing, its open sessions are cut too
 * (`pg_terminate_backend`, which does not wait for them to exit). `admin` is a client on another
 * database (`testPostgresAdminUrl()`).
 *
 * @example
 * ```ts
 * await setConnectionsAllowed(admin, database.name(), false); // SQLSTATE 55000 for every new session
 * ```
 */
export async function setConnectionsAllowed(
  admin: { query(text: string, values?: unknown[]): Promise<unknown>; escapeIdentifier(s: string): string },
  databaseName: string,
  allow: boolean,
): Promise<void> {
  await admin.query(`alter database ${admin.escapeIdentifier(databaseName)} allow_connections ${allow}`);
  if (!allow)
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [
      databaseName,
    ]);
}
