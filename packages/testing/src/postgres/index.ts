/**
 * The Postgres harness. `embedded.ts`, `databases.ts`, `docker.ts` and `test-postgres.ts` do not
 * import vitest, so non-test code (the server's embedded mode, benchmarks) can use them.
 */
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
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  freePort,
  startEmbeddedPostgres,
} from './embedded.ts';
export {
  FAST_TEST_SETTINGS,
  startTestPostgres,
  type TestPostgres,
  type TestPostgresKind,
} from './test-postgres.ts';
export { type TestDatabaseHandle, testPostgresAdminUrl, useTestDatabase } from './use-test-database.ts';
export type { ProvidedTestPostgres } from './vitest-context.ts';
