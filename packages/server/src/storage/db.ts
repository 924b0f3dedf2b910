import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

/** Every query function takes one of these: the hub's Kysely instance or a transaction of it. */
export type Executor = Kysely<unknown>;

/** The hub's database handles: one pool shared by the API and the workers. */
export interface Database {
  pool: pg.Pool;
  db: Kysely<unknown>;
  close(): Promise<void>;
}

// bigint columns (sequences, lags) come back as strings (pg's default): a sequence beyond 2^53
// never loses precision; convert where a number is safe.

/**
 * Opens a pool and a Kysely instance on it.
 *
 * @example
 * ```ts
 * const { db, close } = openDatabase('postgres://postgres@127.0.0.1:5432/switchyard', { max: 10 });
 * ```
 */
export function openDatabase(databaseUrl: string, options: { max?: number } = {}): Database {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5000,
  });
  // An idle client losing its connection (Postgres restart) must not crash the process.
  pool.on('error', () => {});
  // A checked-out client (mid-transaction, between statements) that loses its connection emits
  // 'error' with no listener attached: without this, a database outage crashes the process. The
  // next statement on that client fails instead, and the caller answers 503 / retries.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    pool,
    db,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
