/**
 * A/B(/C) comparisons that the order of the runs cannot bias. Each arm runs `rounds` times, the
 * order reversed every other round (A B C, then C B A), and every run starts after a CHECKPOINT, so
 * no run inherits the dirty pages and the WAL of the run before it. With one run per arm in a fixed
 * order, the later arms could run while Postgres still wrote out the earlier ones' 20,000 events (its
 * checkpoint lands in the next run), and single runs drift: two full runs of nearly the same hub gave
 * the FHIR format 0.90× and 0.84×, tracing 0.99× and 0.82×, around targets of 0.9×.
 */
import { pg } from './deps.ts';
import type { BenchOptions } from './result.ts';

/** Writes every dirty page of the server now, so the next run starts from a clean state. */
export async function checkpoint(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

/**
 * Runs each arm `rounds` times in alternating order, a CHECKPOINT before every run, and returns
 * each arm's results in the order they ran.
 *
 * @example
 * ```ts
 * const r = await pairedRuns(options, 2, {
 *   off: () => hubRun(options, events, 1),
 *   on: () => hubRun(options, events, 1, traced),
 * }); // runs off, on, on, off
 * ```
 */
export async function pairedRuns<K extends string, T>(
  options: BenchOptions,
  rounds: number,
  arms: Record<K, () => Promise<T>>,
): Promise<Record<K, T[]>> {
  const names = Object.keys(arms) as K[];
  const results = Object.fromEntries(names.map((n) => [n, [] as T[]])) as Record<K, T[]>;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      await checkpoint(options.adminUrl);
      options.log(`  ${name} (round ${round + 1} of ${rounds})`);
      results[name].push(await arms[name]());
    }
  }
  return results;
}

/** Events per second over several throughput runs: all their events over all their seconds. */
export function pooledRate(runs: readonly { eventsPerSecond: number; seconds: number }[]): number {
  const events = runs.reduce((s, r) => s + r.eventsPerSecond * r.seconds, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  return events / seconds;
}

/** The mean of a figure over runs. */
export function mean<T>(runs: readonly T[], of: (r: T) => number): number {
  return runs.reduce((s, r) => s + of(r), 0) / runs.length;
}
