/**
 * The Postgres harness. `databases.ts`, `docker.ts` and `test-postgres.ts` do not import vitest, so
 * non-test code (benchmarks, scripts) can use them. The embedded Postgres launcher is the production
 * package `@switchyard/embedded-postgres` (the server's embedded mode runs it); it is re-exported here
 * for the tests' convenience.
 */

export {
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  freePort,
  startEmbeddedPostgres,
} from '@switchyard/embedded-postgres';
export {
  type CreateTestDatabaseOptions,
  checkConnection,
  createTestDatabase,
  databaseUrl,
  dropTestDatabase,
  redactUrl,
  type TestDatabase,
} from './databases.ts';
export {
  type ContainerPostgres,
  dockerAvailable,
  POSTGRES_TEST_IMAGE,
  startPostgresContainer,
} from './docker.ts';
export {
  FAST_TEST_SETTINGS,
  startTestPostgres,
  type TestPostgres,
  type TestPostgresKind,
} from './test-postgres.ts';
export { type TestDatabaseHandle, testPostgresAdminUrl, useTestDatabase } from './use-test-database.ts';
export type { ProvidedTestPostgres } from './vitest-context.ts';
