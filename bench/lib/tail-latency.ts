/**
 * Diagnostic (not a scenario): `node bench/lib/tail-latency.ts [seconds]` starts `switchyard start`
 * as the latency scenario does (bench/lib/cli-hub.ts), warms it up the same way, pushes Docplanner
 * bookings at 200/s for `seconds` (default 20) and prints what the p99 is made of: push → subscriber
 * p50 / p99, the hub process's CPU per event (/proc), each stage's p50 / p99 read from the hub's rows
 * (push → stored `received_at`, → normalized `processed_at`, → attempt started, → subscriber), and
 * the slowest 2 % with the moment each was pushed, so that a stall shows as a cluster of pushes late
 * in every stage at once. Push → stored compares the load generator's clock with the hub's row (one
 * machine, two clocks: a few tenths of a millisecond apart, either way). With `BENCH_TRACE_GC=1` it also sums V8's own account of the collections
 * in the measured window (`--trace-gc-nvp` in the hub's log): young-generation collections, their
 * pauses, bytes allocated and promoted, and full collections. With `BENCH_OLD_GEN_SITES=<file>` it
 * lists the allocation sites that filled the hub's old generation in the measured window, in KB
 * per event (bench/lib/old-generation-sites.ts). With `BENCH_WATCH_DISK=1` it watches, over the
 * measured window, the kernel's dirty and written-back page cache, the requests in flight on the
 * Postgres data directory's device and the hub's statements held by a wait, and lists when each
 * happened, in the same ms into the run as the slowest pushes (bench/lib/disk-watch.ts). `TRACES=1` turns tracing on (every
 * span exported to a receiver that discards it). This is how bench/analysis.md's "Promoted by pg's
 * promise" found its clusters and counted the promotion.
 */

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { startOtlpReceiver } from '../../packages/server/src/telemetry/otlp-receiver.test-support.ts';
import { pg } from './deps.ts';
import { describeEpisodes, watchDisk } from './disk-watch.ts';
import { closeAgent, latencyWarmUp, paced } from './load.ts';
import { oldGenerationSites } from './old-generation-sites.ts';
import { cpuMs } from './proc-cpu.ts';
import { percentile, waitUntil } from './result.ts';
import { busyTablesCounted, withCliHub } from './scenario.ts';
import { startFastSubscriber } from './subscriber.ts';

const RATE = 200;
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const seconds = Number(process.argv[2] ?? 20);

/** Sums `--trace-gc-nvp` lines: `gc=s` are young-generation collections, the rest full ones. */
function collections(lines: string[]): string {
  let young = 0;
  let youngPause = 0;
  let allocated = 0;
  let promoted = 0;
  let full = 0;
  let fullPause = 0;
  for (const line of lines) {
    const kind = / gc=(\w+) /.exec(line)?.[1];
    if (kind === undefined) continue;
    const pause = Number(/ pause=([\d.]+) /.exec(line)?.[1] ?? 0);
    if (kind === 's') {
      young++;
      youngPause += pause;
      allocated += Number(/ allocated=(\d+) /.exec(line)?.[1] ?? 0);
      promoted += Number(/ promoted=(\d+) /.exec(line)?.[1] ?? 0);
    } else {
      full++;
      fullPause += pause;
    }
  }
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  return `young collections ${young} (pauses ${youngPause.toFixed(0)} ms), allocated ${mb(allocated)} MiB, promoted ${mb(promoted)} MiB; full collections ${full} (pauses ${fullPause.toFixed(0)} ms)`;
}

const subscriber = await startFastSubscriber({ track: true });
const receiver = process.env.TRACES === '1' ? await startOtlpReceiver({ discard: true }) : undefined;
try {
  await withCliHub(adminUrl, { subscribers: [subscriber.url], traces: receiver?.url }, async (hub, db) => {
    const pid = hub.pids()[0]!;
    // The latency scenario's warm-up (bench/latency.ts).
    await latencyWarmUp({
      port: hub.port,
      rate: RATE,
      delivered: () => subscriber.count,
      what: 'tail-latency',
      ready: () => busyTablesCounted(db.url),
    });

    const sent = new Map<number, number>();
    const logFrom = hub.logLines();
    const disk =
      process.env.BENCH_WATCH_DISK === '1'
        ? await watchDisk({ url: adminUrl, database: db.name })
        : undefined;
    const cpuFrom = cpuMs(pid) ?? Number.NaN;
    const sitesFile = process.env.BENCH_OLD_GEN_SITES;
    if (sitesFile) {
      rmSync(sitesFile, { force: true });
      process.kill(pid, 'SIGUSR2');
    }
    await paced({
      port: hub.port,
      rate: RATE,
      total: RATE * seconds,
      firstSeq: 2_000_000,
      tag: 3,
      onSend: (seq, at) => sent.set(seq, at),
    });
    await waitUntil(
      () => [...sent.keys()].every((s) => subscriber.arrivals.has(s)),
      'deliveries',
      600_000,
      20,
    );
    const hubMs = (cpuMs(pid) ?? Number.NaN) - cpuFrom;
    const watched = await disk?.stop();
    if (sitesFile) {
      process.kill(pid, 'SIGUSR2');
      await waitUntil(() => existsSync(sitesFile), 'the old generation profile', 60_000);
    }
    const gcLines = hub.logText().split('\n').slice(logFrom);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{
      comment: string;
      received: number;
      normalized: number;
      started: number;
    }>(
      `select m.payload->'data'->'visit_booking'->>'comment' as comment,
           extract(epoch from m.received_at) * 1000 as received,
           extract(epoch from m.processed_at) * 1000 as normalized,
           extract(epoch from a.started_at) * 1000 as started
         from switchyard.inbound_messages m
         join switchyard.events e on e.inbound_message_id = m.id
         join switchyard.deliveries d on d.event_id = e.id
         join switchyard.delivery_attempts a on a.delivery_id = d.id
         where m.payload->'data'->'visit_booking'->>'comment' like 'bench:2______'`,
    );
    await client.end();

    // Both clocks of the load generator are performance.now(); the hub's rows are wall clock.
    const origin = performance.timeOrigin;
    const first = origin + Math.min(...sent.values());
    const events = rows.map((r) => {
      const seq = Number(r.comment.slice('bench:'.length));
      const pushed = origin + sent.get(seq)!;
      const arrived = origin + subscriber.arrivals.get(seq)!;
      return {
        at: pushed - first,
        total: arrived - pushed,
        stored: Number(r.received) - pushed,
        normalized: Number(r.normalized) - Number(r.received),
        started: Number(r.started) - Number(r.normalized),
        posted: arrived - Number(r.started),
      };
    });
    const ms = (v: number) => v.toFixed(1);
    const totals = events.map((e) => e.total);
    console.log(
      `${events.length} events at ${RATE}/s: push → subscriber p50 ${ms(percentile(totals, 0.5))} ms, p99 ${ms(percentile(totals, 0.99))} ms; hub process CPU ${(hubMs / events.length).toFixed(2)} ms per event`,
    );
    for (const stage of ['stored', 'normalized', 'started', 'posted'] as const) {
      const v = events.map((e) => e[stage]);
      console.log(`  → ${stage}: p50 ${ms(percentile(v, 0.5))} ms, p99 ${ms(percentile(v, 0.99))} ms`);
    }
    if (process.env.BENCH_TRACE_GC === '1') console.log(`  ${collections(gcLines)}`);
    if (sitesFile) {
      const sites = oldGenerationSites(JSON.parse(readFileSync(sitesFile, 'utf8')), events.length);
      const total = sites.reduce((n, s) => n + s.kbPerEvent, 0);
      console.log(`  old generation: ${total.toFixed(1)} KB per event, the largest sites:`);
      for (const s of sites.slice(0, 15)) console.log(`    ${s.kbPerEvent.toFixed(2).padStart(6)} ${s.site}`);
    }
    console.log('slowest 2 % (pushed at ms into the run: total = stored + normalized + started + posted):');
    events.sort((a, b) => b.total - a.total);
    for (const e of events.slice(0, Math.ceil(events.length * 0.02)))
      console.log(
        `  ${e.at.toFixed(0).padStart(6)} ms: ${ms(e.total)} = ${ms(e.stored)} + ${ms(e.normalized)} + ${ms(e.started)} + ${ms(e.posted)}`,
      );
    if (watched) {
      console.log('the disk over the window (ms into the run, as above):');
      for (const line of describeEpisodes(watched, first)) console.log(`  ${line}`);
    }
  });
} finally {
  closeAgent();
  await subscriber.close();
  await receiver?.close();
}
