/**
 * Ordered: why normalize and delivery are not pg-boss jobs. The same ordered drain (n jobs over
 * k ordering keys, each POSTed to a fast subscriber, one key's jobs in order) three ways in one
 * run: the hub's own delivery claim (per-subject order; `switchyard start`, bench/lib/cli-hub.ts), a pg-boss 12 `key_strict_fifo` queue,
 * and a standard pg-boss queue (no order at all) as the floor. Then one `fetch` of 50 from a
 * pg-boss queue holding a large backlog, `key_strict_fifo` beside standard.
 */
import { CHANNEL_DELIVER } from '../packages/server/src/storage/queues.ts';
import { pg } from './lib/deps.ts';
import { cannon, hookUrl } from './lib/load.ts';
import { type BenchOptions, type BenchResult, percentile, row, waitUntil } from './lib/result.ts';
import { PGBOSS_ENTRY, withChild, withCliHub } from './lib/scenario.ts';
import { startFastSubscriber } from './lib/subscriber.ts';

/**
 * Queues n pending deliveries over k subjects (event g has subject g % k), events cloned from
 * the real normalized event already stored, for a subscription kept disabled until the clock starts.
 */
const QUEUE_SQL = `
with s as (select gen_random_uuid() as id, g from generate_series(1, $1::int) g),
tpl as (select type, source, time, envelope from switchyard.events order by sequence limit 1),
ins as (
  insert into switchyard.events (id, type, source, subject, time, envelope)
  select s.id, tpl.type, tpl.source, 'appointment/key-' || (s.g % $3::int), tpl.time,
         tpl.envelope || jsonb_build_object('id', s.id, 'subject', 'appointment/key-' || (s.g % $3::int))
  from s, tpl
  order by s.g
  returning id, sequence, subject)
insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject)
select gen_random_uuid(), $2, id, sequence, subject from ins order by sequence`;

export async function run(options: BenchOptions): Promise<BenchResult> {
  const n = options.quick ? 2000 : 10_000;
  const keys = 100;
  const backlog = options.quick ? 10_000 : 100_000;
  const fetches = 5;
  const subscriber = await startFastSubscriber();
  try {
    options.log(`ordered: hub, draining ${n} deliveries over ${keys} subjects`);
    const hub = await withCliHub(options.adminUrl, { subscribers: [subscriber.url] }, async (h, db) => {
      const channel = CHANNEL_DELIVER;
      await cannon({ url: hookUrl(h.port), amount: 1, connections: 1, tag: 1 });
      await waitUntil(() => subscriber.count >= 1, 'template delivery', 30_000);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const subscriptionId = (await client.query<{ id: string }>('select id from switchyard.subscriptions'))
          .rows[0]!.id;
        await client.query('update switchyard.subscriptions set disabled_at = now() where id = $1', [
          subscriptionId,
        ]);
        await client.query(QUEUE_SQL, [n, subscriptionId, keys]);
        await client.query('analyze switchyard.events');
        await client.query('analyze switchyard.deliveries');
        const before = subscriber.count;
        const started = performance.now();
        await client.query('begin');
        await client.query('update switchyard.subscriptions set disabled_at = null where id = $1', [
          subscriptionId,
        ]);
        await client.query('select pg_notify($1, $2)', [channel, '']);
        await client.query('commit');
        await waitUntil(() => subscriber.count >= before + n, 'ordered hub drain', 600_000, 20);
        return { seconds: (subscriber.lastAt - started) / 1000 };
      } finally {
        await client.end();
      }
    });

    const boss = await withChild(options.adminUrl, PGBOSS_ENTRY, async (child) => {
      await child.call('start');
      options.log(`ordered: pg-boss standard queue, ${n} jobs`);
      const standard = await child.call<{ seconds: number; outOfOrder: number }>(
        'orderedDrain',
        n,
        keys,
        subscriber.url,
        'standard',
      );
      options.log(`ordered: pg-boss key_strict_fifo queue, ${n} jobs over ${keys} keys`);
      const fifo = await child.call<{ seconds: number; outOfOrder: number }>(
        'orderedDrain',
        n,
        keys,
        subscriber.url,
        'key_strict_fifo',
      );
      options.log(`ordered: one fetch of 50 with ${backlog} queued, standard and key_strict_fifo`);
      const fetchStandard = await child.call<{ ms: number[] }>(
        'orderedFetch',
        backlog,
        keys * 10,
        50,
        fetches,
        'standard',
      );
      const fetchFifo = await child.call<{ ms: number[] }>(
        'orderedFetch',
        backlog,
        keys * 10,
        50,
        fetches,
        'key_strict_fifo',
      );
      return { standard, fifo, fetchStandard, fetchFifo };
    });

    const standardLabel = 'pg-boss standard queue (no order), same drain';
    const fifoMedian = percentile(boss.fetchFifo.ms, 0.5);
    const standardMedian = percentile(boss.fetchStandard.ms, 0.5);
    return {
      name: 'Ordered',
      rows: [
        row(
          `Ordered drain, hub claim (${n.toLocaleString('en')} over ${keys} subjects)`,
          n / hub.seconds,
          n / boss.standard.seconds,
          {
            unit: 'jobs/s',
            baselineLabel: standardLabel,
            higherIsBetter: true,
          },
        ),
        row(
          `Ordered drain, pg-boss key_strict_fifo (${n.toLocaleString('en')} over ${keys} keys)`,
          n / boss.fifo.seconds,
          n / boss.standard.seconds,
          {
            unit: 'jobs/s',
            baselineLabel: standardLabel,
            higherIsBetter: true,
          },
        ),
        row(
          `pg-boss key_strict_fifo: one fetch of 50, ${backlog.toLocaleString('en')} queued (median of ${fetches})`,
          fifoMedian,
          standardMedian,
          {
            unit: 'ms',
            baselineLabel: 'standard queue, same backlog',
          },
        ),
      ],
      notes: [
        `Each drain queues ${n.toLocaleString('en')} items over ${keys} ordering keys before the clock starts (hub: \`switchyard start\` with one subscription, pending deliveries queued by SQL while the subscription is disabled, re-enabled with a NOTIFY; pg-boss: insert() in chunks of 1,000, ANALYZEd) and stops at the last subscriber 2xx; every item is POSTed to the same fast subscriber. pg-boss workers: batchSize 50, burstWhenBatchFull, notify queue, polling 0.5 s.`,
        `Jobs a key ran after a later job of the same key: pg-boss key_strict_fifo ${boss.fifo.outOfOrder}, standard ${boss.standard.outOfOrder} (jobs of one insert() share created_on; key_strict_fifo breaks the tie by random uuid).`,
        `One fetch of 50: ${backlog.toLocaleString('en')} jobs over ${(keys * 10).toLocaleString('en')} keys, ANALYZEd, ${fetches} fetches each completed before the next: key_strict_fifo ${boss.fetchFifo.ms.map((m) => m.toFixed(0)).join(' / ')} ms, standard ${boss.fetchStandard.ms.map((m) => m.toFixed(0)).join(' / ')} ms.`,
      ],
    };
  } finally {
    await subscriber.close();
  }
}
