import { randomBytes } from 'node:crypto';
import { SwitchyardError } from '@switchyard/core';
import pg from 'pg';

/** A database made for one test file (or one benchmark run). */
export interface TestDatabase {
  /** e.g. `sy_test_3f9a0c1b2d4e`. */
  name: string;
  /** Connection URL to this database (same server and credentials as the admin URL). */
  url: string;
  /** Drops the database, closing any connections still open to it. Idempotent. */
  drop(): Promise<void>;
}

/** Options for {@link createTestDatabase}. */
export interface CreateTestDatabaseOptions {
  /** A URL with the right to create databases. Default: `DATABASE_URL`. */
  adminUrl?: string;
  /** Name prefix, default `sy_test_`. */
  prefix?: string;
}

/**
 * Creates a fresh, empty database `sy_test_<random>` on the server of `adminUrl` (default
 * `DATABASE_URL`). Outside vitest (benchmarks, scripts) use it directly; in test files use
 * `useTestDatabase()`.
 *
 * @example
 * ```ts
 * const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL });
 * try { await runBenchmark(db.url); } finally { await db.drop(); }
 * ```
 */
export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = options.adminUrl ?? process.env.DATABASE_URL;
  if (!adminUrl) {
    throw new SwitchyardError(
      'SY_STORAGE_TEST_DATABASE',
      'createTestDatabase needs an admin URL: pass adminUrl or set DATABASE_URL (or start one with startTestPostgres())',
    );
  }
  // A shared server may have a naming rule: SWITCHYARD_TEST_DB_PREFIX sets the prefix for a run.
  const prefix = options.prefix ?? process.env.SWITCHYARD_TEST_DB_PREFIX ?? 'sy_test_';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new SwitchyardError(
      'SY_STORAGE_TEST_DATABASE',
      `the test database prefix ${JSON.stringify(prefix)} (SWITCHYARD_TEST_DB_PREFIX) must be lowercase letters, digits and _`,
    );
  }
  const name = `${prefix}${randomBytes(6).toString('hex')}`;
  // template0 has no connections, so concurrent CREATE DATABASE from many test files never collide.
  await withClient(adminUrl, (client) =>
    client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`),
  );
  const url = databaseUrl(adminUrl, name);
  let dropped: Promise<void> | undefined;
  return {
    name,
    url,
    drop() {
      dropped ??= dropTestDatabase(name, adminUrl);
      return dropped;
    },
  };
}

/**
 * Drops a test database (by name, or by its URL), forcing open connections closed.
 *
 * @example
 * ```ts
 * await dropTestDatabase(db.name, adminUrl);
 * ```
 */
export async function dropTestDatabase(
  nameOrUrl: string,
  adminUrl = process.env.DATABASE_URL,
): Promise<void> {
  if (!adminUrl) {
    throw new SwitchyardError(
      'SY_STORAGE_TEST_DATABASE',
      'dropTestDatabase needs an admin URL or DATABASE_URL',
    );
  }
  const name = nameOrUrl.includes('://')
    ? decodeURIComponent(new URL(nameOrUrl).pathname.slice(1))
    : nameOrUrl;
  await withClient(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`),
  );
}

/** Fails with a clear error when the server at `url` does not answer `SELECT 1`. */
export async function checkConnection(url: string): Promise<void> {
  try {
    await withClient(url, (client) => client.query('SELECT 1'));
  } catch (error) {
    throw new SwitchyardError(
      'SY_STORAGE_TEST_DATABASE',
      `cannot reach Postgres at ${redactUrl(url)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The same server and credentials, another database. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}
