/**
 * Backlog: time to drain 100,000 queued deliveries to a fast subscriber, and to replay 100,000
 * events, beside raw pg-boss working off 100,000 queued jobs whose handler POSTs each one to the
 * same subscriber.
 */
import { pg } from './lib/deps.ts';
import { cannon, hookUrl } from './lib/load.ts';
import { type BenchOptions, type BenchResult, mib, row, waitUntil } from './lib/result.ts';
import { HUB_ENTRY, PGBOSS_ENTRY, withChild } from './lib/scenario.ts';
import { startFastSubscriber } from './lib/subscriber.ts';

/**
 * Queues `n` deliveries the way fan-out would leave them after an outage: n events cloned from
 * the real normalized event already stored (each its own id and subject), one pending delivery
 * each, for a subscription kept disabled until the clock starts (so the statistics are fresh
 * and the drain is timed from a complete backlog).
 */
const QUEUE_SQL = `
with s as (select gen_random_uuid() as id, g from generate_series(1, $1::int) g),
tpl as (select type, source, time, envelope from switchyard.events order by sequence limit 1),
ins as (
  insert into switchyard.events (id, type, source, subject, time, envelope)
  select s.id, tpl.type, tpl.source, 'appointment/bench-' || s.g, tpl.time,
         tpl.envelope || jsonb_build_object('id', s.id, 'subject', 'appointment/bench-' || s.g)
  from s, tpl
  returning id, sequence, subject)
insert into switchyard.deliveries (id, subscription_id, event_id, event_sequence, subject)
select gen_random_uuid(), $2, id, sequence, subject from ins`;

export async function run(options: BenchOptions): Promise<BenchResult> {
  // BENCH_BACKLOG_N overrides the size (diagnostics: how the drain rate changes with the backlog).
  const n = Number(process.env.BENCH_BACKLOG_N) || (options.quick ? 5000 : 100_000);
  const subscriber = await startFastSubscriber();
  try {
    options.log(`backlog: hub, queueing ${n} deliveries`);
    const hub = await withChild(options.adminUrl, HUB_ENTRY, async (child, db) => {
      const { port } = await child.call<{ port: number }>('start', {});
      const [subscriptionId] = await child.call<string[]>('subscribe', subscriber.url, 1);
      const channel = await child.call<string>('deliverChannel');
      const since = new Date(Date.now() - 60_000).toISOString();
      await cannon({ url: hookUrl(port), amount: 1, connections: 1, tag: 1 });
      await waitUntil(() => subscriber.count >= 1, 'template delivery', 30_000);

      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query('update switchyard.subscriptions set disabled_at = now() where id = $1', [
          subscriptionId,
        ]);
        await client.query(QUEUE_SQL, [n, subscriptionId]);
        await client.query('analyze switchyard.events');
        await client.query('analyze switchyard.deliveries');
        const before = subscriber.count;
        options.log(`backlog: hub, draining ${n} deliveries`);
        const started = performance.now();
        await client.query('begin');
        await client.query('update switchyard.subscriptions set disabled_at = null where id = $1', [
          subscriptionId,
        ]);
        await client.query('select pg_notify($1, $2)', [channel, '']);
        await client.query('commit');
        await waitUntil(() => subscriber.count >= before + n, 'backlog drain', 900_000, 20);
        const drainSeconds = (subscriber.lastAt - started) / 1000;
        const pending = Number(
          (await client.query(`select count(*) as n from switchyard.deliveries where status <> 'succeeded'`))
            .rows[0].n,
        );

        options.log(`backlog: hub, replaying ${n + 1} events`);
        const beforeReplay = subscriber.count;
        const replayStarted = performance.now();
        const { replayed } = await child.call<{ replayed: number }>('replaySince', subscriptionId, since);
        const replayInsertSeconds = (performance.now() - replayStarted) / 1000;
        await waitUntil(() => subscriber.count >= beforeReplay + replayed, 'replay', 900_000, 20);
        const replaySeconds = (subscriber.lastAt - replayStarted) / 1000;
        return {
          drainSeconds,
          pending,
          replayed,
          replaySeconds,
          replayInsertSeconds,
          rss: await child.peakRss(),
        };
      } finally {
        await client.end();
      }
    });

    options.log(`backlog: pg-boss, ${n} queued jobs POSTed to the subscriber`);
    const boss = await withChild(options.adminUrl, PGBOSS_ENTRY, async (child) => {
      await child.call('start');
      const r = await child.call<{ seconds: number }>('drain', n, subscriber.url);
      return { ...r, rss: await child.peakRss() };
    });

    const label = `pg-boss: ${n.toLocaleString('en')} queued jobs, handler POSTs each`;
    return {
      name: 'Backlog',
      rows: [
        row(`Drain ${n.toLocaleString('en')} queued deliveries`, hub.drainSeconds, boss.seconds, {
          unit: 's',
          baselineLabel: label,
          ...(options.quick ? {} : { target: { kind: 'max' as const, value: 60, label: '< 60 s' } }),
        }),
        row(`Drain rate`, n / hub.drainSeconds, n / boss.seconds, {
          unit: 'deliveries/s',
          baselineLabel: label,
          higherIsBetter: true,
        }),
        row(`Replay ${hub.replayed.toLocaleString('en')} events`, hub.replaySeconds, boss.seconds, {
          unit: 's',
          baselineLabel: label,
        }),
        row('Peak RSS, backlog run', mib(hub.rss), mib(boss.rss), {
          unit: 'MiB',
          baselineLabel: 'pg-boss process',
        }),
      ],
      notes: [
        `The backlog is queued by SQL (events cloned from a real normalized slot-booked event, one pending delivery each, distinct subjects) with the subscription disabled, then ANALYZEd; the clock starts when the subscription is re-enabled with a NOTIFY and stops at the last subscriber 2xx. ${hub.pending} deliveries were not 'succeeded' afterwards.`,
        `Replay: hub.deliveries.replaySince() over every event (${hub.replayed.toLocaleString('en')}); creating the replay deliveries took ${hub.replayInsertSeconds.toFixed(1)} s of the ${hub.replaySeconds.toFixed(1)} s. Its baseline is the same pg-boss drain.`,
        'pg-boss: jobs inserted in chunks of 1,000 and ANALYZEd before the clock starts; worker batchSize 50 with burstWhenBatchFull, handler POSTs the batch concurrently (fetch, keep-alive).',
      ],
    };
  } finally {
    await subscriber.close();
  }
}
