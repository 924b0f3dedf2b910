/** Planner statistics of the busy tables (pipeline/statistics.ts runs the ANALYZE when needed). */
import { sql } from 'kysely';
import { type Executor, rows } from './db.ts';

/** The hub's tables whose size swings with traffic, so whose statistics go stale fastest. */
export const BUSY_TABLES = [
  'inbound_messages',
  'events',
  'deliveries',
  'delivery_attempts',
  'aliases',
  'entity_state',
] as const;
export type BusyTable = (typeof BUSY_TABLES)[number];

/**
 * The traffic-sized tables, whose every column has statistics target 10 (migration 25): ANALYZE
 * samples 3,000 rows of them instead of 30,000. A column added to one of them needs the same.
 */
export const SAMPLED_TABLES = [
  'inbound_messages',
  'inbound_bodies',
  'events',
  'current_entities',
  'deliveries',
  'delivery_attempts',
  'aliases',
  'entity_state',
] as const;

/** The statistics target of every column of {@link SAMPLED_TABLES}. */
export const SAMPLED_STATISTICS_TARGET = 10;

/**
 * The busy tables whose size doubled (or halved) since the planner last counted them (ANALYZE or
 * VACUUM, `pg_class.reltuples`), from 500 rows on, and those never counted. Autovacuum gets there
 * too, but only after its one-minute nap and a tenth of the table; a burst into fresh tables is
 * planned on the statistics of the empty ones until then. Plans change with a table's order of
 * magnitude, not with a fifth of it: at "changed by a fifth" (until migration 25), a table filling
 * with an insert and an update per row (an inbound message, a delivery) was analyzed at every
 * tenth of growth, most of its ANALYZEs while it filled. Changes that keep the size (statuses
 * moving on) are autovacuum's to follow.
 */
export async function tablesNeedingAnalyze(db: Executor): Promise<BusyTable[]> {
  const r = await rows<{ relname: BusyTable }>(
    sql`select s.relname from pg_stat_user_tables s join pg_class c on c.oid = s.relid
        where s.schemaname = 'switchyard' and s.relname = any(${[...BUSY_TABLES]}::text[])
          and greatest(s.n_live_tup, c.reltuples) >= 500
          and (c.reltuples < 0 or s.n_live_tup >= 2 * c.reltuples or 2 * s.n_live_tup <= c.reltuples)`,
    db,
  );
  return r.map((x) => x.relname);
}

/**
 * ANALYZEs one busy table, or skips it when its lock cannot be had at once (`skip_locked`): the
 * statistics keeper tries again at its next pass (5 s), the table still due. Waiting would queue it
 * behind whatever holds the table's `SHARE UPDATE EXCLUSIVE` lock: an upgrade's `CREATE INDEX
 * CONCURRENTLY` (migrations.ts), which in turn waits for the queued ANALYZE's snapshot, a deadlock
 * Postgres breaks by cancelling one of the two (most often the build: an upgrade's index built
 * again, or its start failed); autovacuum; another process's ANALYZE of the same table, already
 * doing the work.
 *
 * @example
 * ```ts
 * for (const table of await tablesNeedingAnalyze(db)) await analyzeTable(db, table);
 * ```
 */
export async function analyzeTable(db: Executor, table: BusyTable): Promise<void> {
  if (!BUSY_TABLES.includes(table)) throw new Error(`not a busy table: ${table}`);
  await sql`analyze (skip_locked) ${sql.table(`switchyard.${table}`)}`.execute(db);
}
