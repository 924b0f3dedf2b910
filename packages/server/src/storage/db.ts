import { createHash, randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, type PostgresPoolClient, sql } from 'kysely';
import pg from 'pg';

/** Every query function takes one of these: the hub's Kysely instance or a transaction of it. */
export type Executor = Kysely<unknown>;

/**
 * A random UUID (v4) for rows whose id needs no stability.
 *
 * @example
 * ```ts
 * const id = newId(); // '3f2b…'
 * ```
 */
export function newId(): string {
  return randomUUID();
}

/** The rows of a query (the store modules' one way to run their SQL). */
export async function rows<T>(
  q: { execute(db: Executor): Promise<{ rows: T[] }> },
  db: Executor,
): Promise<T[]> {
  return (await q.execute(db)).rows;
}

/** The first row of a query, or undefined. */
export async function first<T>(
  q: { execute(db: Executor): Promise<{ rows: T[] }> },
  db: Executor,
): Promise<T | undefined> {
  return (await q.execute(db)).rows[0];
}

/** A value as a `jsonb` parameter. */
export const json = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;

/**
 * How long a pool keeps an idle connection (pg's default is 10 s). The hub's idle work comes in
 * ticks 30 s apart (the workers' poll backstop, the commands and gates sweeps, pg-boss's
 * backstops), so with 10 s every tick found its connections closed and opened new ones, a backend
 * start-up each in Postgres (4 new connections in the 30 s of e2e/idle.int.test.ts). Connections a
 * burst opened still close, five minutes after it.
 */
export const POOL_IDLE_TIMEOUT_MS = 5 * 60_000;

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
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
  });
  // An idle client losing its connection (Postgres restart) must not crash the process.
  pool.on('error', () => {});
  // A checked-out client (mid-transaction, between statements) that loses its connection emits
  // 'error' with no listener attached: without this, a database outage crashes the process. The
  // next statement on that client fails instead, and the caller answers 503 / retries.
  pool.on('connect', (client) => {
    client.on('error', () => {});
    // Queued before any statement of the pool's user: see planMode.
    client.query(SET_PLAN_MODE.custom).catch(() => {});
    planModes.set(client, 'custom');
  });
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: {
        connect: async () => preparing(await pool.connect()),
        end: () => pool.end(),
        options: pool.options,
        Client: pg.Client,
      },
    }),
  });
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

const PLAN_STABLE_MARK = '/* plan-stable */';

/**
 * Marks a statement as plan-stable: its generic plan is right at any size of the tables it touches,
 * so it runs a plan cached once per connection instead of being planned on every execution. Put it
 * first in the statement's text (`sql\`${PLAN_STABLE}with ins as (…\``), and only on a statement
 * that reads no traffic-sized table by a plan choice: inserts from `unnest()` of parameters
 * (`ON CONFLICT` on a unique key is resolved by the index at execution, not by the plan), lookups
 * in tables sized by configuration (instances, subscriptions). Check it with
 * `set plan_cache_mode = force_generic_plan; explain execute …` at empty and at large tables
 * (storage/db.int.test.ts does for the ones tagged). A join or an `= any(...)` on a queue table is
 * not plan-stable: a generic plan made while the table was empty scans all of it (a seq scan under
 * a hash join, or a whole partial index), and keeps doing so as it grows, until its next ANALYZE.
 */
export const PLAN_STABLE = sql.raw(`${PLAN_STABLE_MARK} `);

/** Distinct statement texts this process prepares at most; others are sent unnamed (planned each time). */
const MAX_PREPARED = 512;
const statementNames = new Map<string, string>();

/**
 * The server-side name of a statement text, so each pool connection parses and analyzes it once
 * instead of on every call. The pipeline's statements are few and fixed (lists travel as array
 * parameters). Planning still happens per execution, except for plan-stable statements (see
 * planMode). Statements without parameters, and texts beyond `MAX_PREPARED` (say, ad-hoc filter
 * combinations), stay unnamed.
 */
function statementName(text: string): string | undefined {
  const known = statementNames.get(text);
  if (known !== undefined || statementNames.size >= MAX_PREPARED || !text.includes('$1')) return known;
  const name = `sy_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
  statementNames.set(text, name);
  return name;
}

/**
 * A pool client for Kysely whose parameterized statements are prepared (named) per connection.
 * Needs a session-level connection to Postgres: behind a transaction-pooling proxy, use one that
 * tracks prepared statements (PgBouncer >= 1.21 with max_prepared_statements).
 */
function preparing(client: pg.PoolClient): PostgresPoolClient {
  // Set when a statement failed in a way that leaves this connection's protocol state unknown; the
  // connection is then closed on release instead of going back to the pool (see isPoisoning).
  let poisoned = false;
  return {
    query: ((text: unknown, values?: readonly unknown[]) => {
      if (typeof text !== 'string') return client.query(text as pg.Submittable);
      const mode = planMode(text, values);
      if (mode !== undefined && planModes.get(client) !== mode) {
        // Queued: the driver sends the statement below once this one is answered. A failed SET
        // (in an aborted transaction) leaves the mode unknown; the statement fails the same way.
        planModes.set(client, mode);
        client.query(SET_PLAN_MODE[mode]).catch(() => planModes.delete(client));
      }
      // A rollback (to a savepoint too) undoes the SETs made since, so the mode is unknown again.
      if (ROLLBACK.test(text)) planModes.delete(client);
      const name = statementName(text);
      const result =
        name === undefined
          ? client.query(text, values as unknown[])
          : client.query({ name, text, values: values as unknown[] });
      return result.catch((error: unknown) => {
        if (isPoisoning(error)) poisoned = true;
        throw error;
      });
    }) as unknown as PostgresPoolClient['query'],
    processID: (client as unknown as { processID?: number }).processID,
    release: (destroy?: boolean) => client.release(destroy === true || poisoned ? true : destroy),
  };
}

const SET_PLAN_MODE = {
  custom: 'set plan_cache_mode = force_custom_plan',
  generic: 'set plan_cache_mode = force_generic_plan',
} as const;
type PlanMode = keyof typeof SET_PLAN_MODE;
const ROLLBACK = /^\s*(rollback|abort)\b/i;
/** The `plan_cache_mode` each connection is in; absent when unknown (after a rollback). */
const planModes = new WeakMap<pg.ClientBase, PlanMode>();

/**
 * How a statement must be planned; undefined when it does not matter (no parameters: a plan with
 * nothing to bind is the same either way). Hub connections plan every parameterized statement
 * for the tables as they are now (`force_custom_plan`): the queue tables start empty and fill in
 * bursts, statistics lag behind (pipeline/statistics.ts), and a generic plan made while a queue
 * table was small joined a claim's 32 rows by hashing every delivery and event, and stayed until
 * the next ANALYZE. Plan-stable statements ({@link PLAN_STABLE}) run their cached generic plan
 * (`force_generic_plan`) and skip planning, which was a third of the ingest insert's Postgres CPU.
 * The mode is a session setting, so a connection is switched (one `SET`, one round trip) only when
 * the statement needs the other mode than its last one.
 */
function planMode(text: string, values: readonly unknown[] | undefined): PlanMode | undefined {
  if (text.startsWith(PLAN_STABLE_MARK)) return 'generic';
  return values !== undefined && values.length > 0 ? 'custom' : undefined;
}

/**
 * Whether a failed statement may have left its connection unusable, so it must not be reused.
 * An error Postgres sent (a `DatabaseError`) leaves the connection in a known state, the driver
 * having synced after it, except "prepared statement does not exist" (26000): the driver believes
 * a statement is prepared that the server does not have. Any error raised in this process while
 * the driver was writing a statement (say, `RangeError: Invalid string length` while encoding a
 * huge parameter) is worse: pg 8 had already sent the Parse, then closes the statement on the
 * server but still records it as prepared on the connection, so every later use of that statement
 * there failed with "prepared statement sy_… does not exist".
 */
function isPoisoning(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) return error.code === '26000';
  return true;
}
