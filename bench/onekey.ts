/**
 * One ordering key: a backlog of 10,000 Docplanner notifications of one facility (a pull catch-up
 * after an outage, a `notifications/release` burst) normalized by the hub, beside the same backlog
 * spread over 64 facilities drained by the same hub in the same run. Per key, normalization is
 * strictly in order, one message at a time: the one-key figure is the rate of that chain.
 */

import { CHANNEL_NORMALIZE } from '../packages/server/src/storage/queues.ts';
import { pg } from './lib/deps.ts';
import { FACILITIES, INSTANCE_ID, pushBody } from './lib/docplanner.ts';
import { closeAgent, pushOnce } from './lib/load.ts';
import { type BenchOptions, type BenchResult, mib, row, waitUntil } from './lib/result.ts';
import { HUB_ENTRY, withChild } from './lib/scenario.ts';

/**
 * Queues `n` received messages cloned from the real push already normalized (each its own booking
 * id and dedupe key), over `$3` facilities, held back (due in a day) until the clock
 * starts, so the drain is timed from a complete, analyzed backlog.
 */
const QUEUE_SQL = `
with tpl as (select * from switchyard.inbound_messages where instance_id = $4 order by seq limit 1)
insert into switchyard.inbound_messages (id, instance_id, route, dedupe_key, vendor_type, ordering_key,
  occurred_at, gate, payload, meta, headers, source_ip, origin, next_attempt_at)
select gen_random_uuid(), tpl.instance_id, tpl.route, $2 || '-' || g, tpl.vendor_type,
  'facility/' || (20000 + g % $3) || '/bookings', tpl.occurred_at, false,
  jsonb_set(jsonb_set(tpl.payload, '{data,visit_booking,id}', to_jsonb((800000000 + g)::text)),
    '{data,facility,id}', to_jsonb((20000 + g % $3)::text)),
  tpl.meta, tpl.headers, tpl.source_ip, tpl.origin, now() + interval '1 day'
from tpl, generate_series(1, $1::int) g`;

interface Drain {
  seconds: number;
  normalized: number;
  leftOver: number;
}

async function drain(
  client: InstanceType<typeof pg.Client>,
  n: number,
  keys: number,
  tag: string,
  log: (m: string) => void,
) {
  await client.query(QUEUE_SQL, [n, tag, keys, INSTANCE_ID]);
  await client.query('analyze switchyard.inbound_messages');
  log(`onekey: draining ${n} messages over ${keys} ordering key(s)`);
  const started = await client.query<{ at: Date }>(
    `with go as (update switchyard.inbound_messages set next_attempt_at = now()
                 where dedupe_key like $1 || '-%' and status = 'received')
     select now() as at, pg_notify($2, '')`,
    [tag, CHANNEL_NORMALIZE],
  );
  const startAt = started.rows[0]!.at;
  await waitUntil(
    async () =>
      Number(
        (
          await client.query(
            `select count(*) as n from switchyard.inbound_messages where status = 'received' and dedupe_key like $1 || '-%'`,
            [tag],
          )
        ).rows[0].n,
      ) === 0,
    `${tag} drain`,
    900_000,
    200,
  );
  // Timed by Postgres' clock: from the statement that released the backlog to the last message done.
  const r = await client.query<{ seconds: number; normalized: string; other: string }>(
    `select extract(epoch from max(processed_at) - $2::timestamptz)::float8 as seconds,
            count(*) filter (where status = 'normalized') as normalized,
            count(*) filter (where status <> 'normalized') as other
     from switchyard.inbound_messages where dedupe_key like $1 || '-%'`,
    [tag, startAt],
  );
  const x = r.rows[0]!;
  return { seconds: x.seconds, normalized: Number(x.normalized), leftOver: Number(x.other) } satisfies Drain;
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const n = Number(process.env.BENCH_ONEKEY_N) || (options.quick ? 1_000 : 10_000);
  const result = await withChild(options.adminUrl, HUB_ENTRY, async (child, db) => {
    const { port } = await child.call<{ port: number }>('start', {});
    const status = await pushOnce(port, pushBody(1));
    closeAgent();
    if (status >= 300) throw new Error(`template push answered ${status}`);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await waitUntil(
        async () =>
          (
            await client.query(
              `select 1 from switchyard.inbound_messages where instance_id = $1 and status = 'normalized'`,
              [INSTANCE_ID],
            )
          ).rowCount === 1,
        'template normalized',
        30_000,
      );
      const spread = await drain(client, n, FACILITIES, 'spread', options.log);
      const one = await drain(client, n, 1, 'onekey', options.log);
      return { spread, one, rss: await child.peakRss() };
    } finally {
      await client.end();
    }
  });
  const label = `same backlog over ${FACILITIES} facilities, same hub`;
  const count = n.toLocaleString('en');
  return {
    name: 'One ordering key',
    rows: [
      row(`Normalize ${count} queued of one facility`, result.one.seconds, result.spread.seconds, {
        unit: 's',
        baselineLabel: label,
        ...(options.quick ? {} : { target: { kind: 'max' as const, value: 20, label: '< 20 s' } }),
      }),
      row(`One facility, rate`, n / result.one.seconds, n / result.spread.seconds, {
        unit: 'events/s',
        baselineLabel: label,
        higherIsBetter: true,
        ...(options.quick ? {} : { target: { kind: 'min' as const, value: 500, label: '≥ 500 events/s' } }),
      }),
      row('Peak RSS, one-key run', mib(result.rss), null, { unit: 'MiB' }),
    ],
    notes: [
      `The backlog is queued by SQL (messages cloned from a real pushed slot-booked notification, each its own booking id, ordering key \`facility/<id>/bookings\` as the Docplanner connector sets it) and held back until the clock starts; one statement releases it with a NOTIFY, and the drain is timed by Postgres' clock to the last message's processed_at. Normalization only (no subscription). ${result.one.normalized} and ${result.spread.normalized} messages normalized, ${result.one.leftOver + result.spread.leftOver} not.`,
    ],
  };
}
