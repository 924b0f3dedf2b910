/**
 * Where a pushed event's time goes, read from the hub's own rows: received → normalized
 * (`inbound_messages.received_at → processed_at`), delivery stored → attempt started
 * (`deliveries.created_at → delivery_attempts.started_at`) and the attempt itself
 * (`started_at → deliveries.completed_at`: the signed POST and its record).
 */
import { pg } from './deps.ts';

export interface StageTimings {
  events: number;
  /** [p50, p99] in ms. */
  normalize: [number, number];
  toAttempt: [number, number];
  attempt: [number, number];
}

/**
 * Stage timings of the events whose Docplanner push carried a `bench:<seq>` comment matching
 * `commentLike` (a SQL LIKE pattern, e.g. `bench:2______` for seq 2,000,000 and up).
 *
 * @example
 * ```ts
 * const t = await stageTimings(db.url, 'bench:2______'); // t.normalize[0] is the p50
 * ```
 */
export async function stageTimings(databaseUrl: string, commentLike: string): Promise<StageTimings> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query(
      `with x as (
         select m.received_at, m.processed_at, d.created_at as stored_at, a.started_at, d.completed_at
         from switchyard.inbound_messages m
         join switchyard.events e on e.inbound_message_id = m.id
         join switchyard.deliveries d on d.event_id = e.id
         join switchyard.delivery_attempts a on a.delivery_id = d.id
         where m.payload->'data'->'visit_booking'->>'comment' like $1)
       select count(*)::int as n,
         percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from processed_at - received_at) * 1000) as normalize,
         percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from started_at - stored_at) * 1000) as to_attempt,
         percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from completed_at - started_at) * 1000) as attempt
       from x`,
      [commentLike],
    );
    const row = r.rows[0] as { n: number; normalize: number[]; to_attempt: number[]; attempt: number[] };
    const pair = (v: number[] | null): [number, number] => [v?.[0] ?? Number.NaN, v?.[1] ?? Number.NaN];
    return {
      events: row.n,
      normalize: pair(row.normalize),
      toAttempt: pair(row.to_attempt),
      attempt: pair(row.attempt),
    };
  } finally {
    await client.end();
  }
}
