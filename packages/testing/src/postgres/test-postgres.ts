import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '@switchyard/embedded-postgres';
import { checkConnection } from './databases.ts';
import { dockerAvailable, startPostgresContainer } from './docker.ts';

/** Where the test Postgres came from. */
export type TestPostgresKind = 'database_url' | 'testcontainers' | 'embedded';

/** A Postgres server for a test run. */
export interface TestPostgres {
  kind: TestPostgresKind;
  /** A URL allowed to create and drop databases. */
  url: string;
  /** Stops the server this call started (nothing for `database_url`). */
  stop(): Promise<void>;
}

/** Settings that trade durability for speed: test data is thrown away anyway. */
export const FAST_TEST_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '300',
};

/**
 * Finds or starts a Postgres server for tests, in this order: `DATABASE_URL` when set (checked with
 * `SELECT 1`); testcontainers when a Docker engine answers; else an embedded PostgreSQL 18 in a
 * temporary directory. `SWITCHYARD_TEST_POSTGRES=embedded|testcontainers` forces a kind.
 *
 * The vitest global setup calls this once per run; benchmarks and scripts can call it too.
 *
 * @example
 * ```ts
 * const server = await startTestPostgres();
 * const db = await createTestDatabase({ adminUrl: server.url });
 * // ...
 * await db.drop();
 * await server.stop();
 * ```
 */
export async function startTestPostgres(env: NodeJS.ProcessEnv = process.env): Promise<TestPostgres> {
  const forced = env.SWITCHYARD_TEST_POSTGRES;
  if (env.DATABASE_URL && forced === undefined) {
    await checkConnection(env.DATABASE_URL);
    return { kind: 'database_url', url: env.DATABASE_URL, stop: async () => {} };
  }
  if (forced === 'testcontainers' || (forced === undefined && (await dockerAvailable()))) {
    const container = await startPostgresContainer();
    return { kind: 'testcontainers', url: container.url, stop: container.stop };
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-test-pg-'));
  const embedded = await startEmbeddedPostgres({
    dataDir,
    persistent: false,
    settings: { ...FAST_TEST_SETTINGS },
  });
  return { kind: 'embedded', url: embedded.url, stop: embedded.stop };
}
