/**
 * Statement plans for tests that bound a query's work: auto_explain sends each session's plans as
 * notices (JSON, with actual rows and loops), collected here.
 */
import type pg from 'pg';

/** One node of a plan as auto_explain's JSON gives it. */
export interface PlanNode {
  'Node Type': string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
  [key: string]: unknown;
}

/**
 * Makes every session of `pool` explain each statement it runs, with actual rows, into `into`.
 * Only the sessions open now (one connection pools keep the settings for every statement).
 *
 * @example
 * ```ts
 * const explained: Explained[] = [];
 * await explainEverything(database.pool, explained); // openDatabase(url, { max: 1 })
 * ```
 */
export async function explainEverything(pool: pg.Pool, into: Explained[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(`load 'auto_explain'`);
    await client.query(
      `set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on;
       set auto_explain.log_timing = off; set auto_explain.log_format = json; set auto_explain.log_level = notice`,
    );
    client.on('notice', (n) => {
      const text = n.message ?? '';
      const at = text.indexOf('{');
      if (at >= 0) into.push(JSON.parse(text.slice(at)));
    });
  } finally {
    client.release();
  }
}

/** One explained statement. */
export interface Explained {
  'Query Text': string;
  Plan: PlanNode;
}

/** Plan nodes, depth first. */
export function planNodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(planNodes)];
}

/**
 * The plan of the one statement `run` makes, as explained into `explained` ({@link explainEverything}):
 * an error when it made none or several.
 *
 * @example
 * ```ts
 * const plan = await planOfStatement(explained, () => listEvents(db, { limit: 50, ascending: false }));
 * expect(rowsWasted(plan)).toBeLessThan(1000);
 * ```
 */
export async function planOfStatement(
  explained: Explained[],
  run: () => Promise<unknown>,
): Promise<PlanNode[]> {
  explained.length = 0;
  await run();
  if (explained.length !== 1) throw new Error(`expected one statement, explained ${explained.length}`);
  return planNodes(explained[0]!.Plan);
}

/** Rows a plan read and threw away: a plan that reads its rows through an index throws few away. */
export function rowsWasted(plan: PlanNode[]): number {
  return plan.reduce((sum, n) => sum + (n['Rows Removed by Filter'] ?? 0), 0);
}
