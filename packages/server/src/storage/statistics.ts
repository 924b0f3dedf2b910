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
 * The busy tables changed by at least a fifth (and 500 rows) since their last ANALYZE. Autovacuum
 * gets there too, but only after its one-minute nap and a tenth of the table; a burst into fresh
 * tables is planned on the statistics of the empty ones until then.
 */
export async function tablesNeedingAnalyze(db: Executor): Promise<BusyTable[]> {
  const r = await rows<{ relname: BusyTable }>(
    sql`select relname from pg_stat_user_tables
        where schemaname = 'switchyard' and relname = any(${[...BUSY_TABLES]}::text[])
          and n_mod_since_analyze >= greatest(500, 0.2 * n_live_tup)`,
    db,
  );
  return r.map((x) => x.relname);
}

export async function analyzeTable(db: Executor, table: BusyTable): Promise<void> {
  if (!BUSY_TABLES.includes(table)) throw new Error(`not a busy table: ${table}`);
  await sql`analyze ${sql.table(`switchyard.${table}`)}`.execute(db);
}
