/**
 * Ingest: Docplanner pushes from autocannon (50 connections) against the hub's hook route,
 * beside a bare fastify route doing one INSERT per request into the same Postgres (the floor).
 *
 * The headline rows are the hub as users run it (`switchyard start`, bench/lib/cli-hub.ts): every
 * role with one subscription and default logging to a file, and the HTTP-only role. The reduced
 * setups of earlier runs (the server's `buildApp()` in a bench process, no request logging, no
 * pg-boss, no subscription) stay as extra rows, labelled "reduced".
 */

import { pg } from './lib/deps.ts';
import { cannon, hookUrl } from './lib/load.ts';
import { type BenchOptions, type BenchResult, mib, row, sleep } from './lib/result.ts';
import { BASELINE_ENTRY, HUB_ENTRY, withChild, withCliHub } from './lib/scenario.ts';
import { startFastSubscriber } from './lib/subscriber.ts';

interface Run {
  rps: number;
  p50: number;
  p99: number;
  rss: number;
  total: number;
  stored?: number;
  /** Messages the hub's workers finished (normalized, ignored or failed) by the end of the run. */
  finished?: number;
  /** Log lines written per request during warm-up + run (all lines, and fastify request logs). */
  linesPerRequest?: number;
  requestLinesPerRequest?: number;
}

async function count(url: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query(sql)).rows[0].n);
  } finally {
    await client.end();
  }
}

const STORED = 'select count(*) as n from switchyard.inbound_messages';
const FINISHED = "select count(*) as n from switchyard.inbound_messages where status <> 'received'";

export async function run(options: BenchOptions): Promise<BenchResult> {
  const durationS = options.quick ? 3 : 10;
  const warmS = options.quick ? 1 : 3;

  const measure = async (url: string) => {
    const warm = await cannon({ url, durationS: warmS });
    const r = await cannon({ url, durationS });
    if (r.non2xx > 0 || r.errors > 0)
      throw new Error(`ingest run had ${r.non2xx} non-2xx and ${r.errors} errors`);
    return {
      rps: r.requestsPerSecond,
      p50: r.p50,
      p99: r.p99,
      total: r.total,
      requests: warm.total + r.total,
    };
  };

  const floorRun = (): Promise<Run> =>
    withChild(options.adminUrl, BASELINE_ENTRY, async (child, db) => {
      const { port } = await child.call<{ port: number }>('start');
      const r = await measure(`http://127.0.0.1:${port}/hooks/${'dp-bench'}`);
      const stored = await count(db.url, 'select count(*) as n from bench_ack');
      return { ...r, stored, rss: await child.peakRss() };
    });
  // The floor runs before and after the two `switchyard start` runs, and their baseline is the
  // mean of both: on this shared machine the floor alone read 3,918 and 5,196 req/s in two full
  // runs of one commit half an hour apart, and one measurement a minute before the hub's compared
  // the hub with another minute of the machine (bench/analysis.md, session 21).
  options.log('ingest: floor (bare fastify + one INSERT), before');
  const floorBefore = await floorRun();
  const subscriber = await startFastSubscriber();
  const cliRun = async (role: 'all' | 'http'): Promise<Run> =>
    withCliHub(options.adminUrl, { role, subscribers: [subscriber.url] }, async (hub, db) => {
      const lines = hub.logLines();
      const requestLines = hub.requestLogLines();
      const r = await measure(hookUrl(hub.port));
      await sleep(100);
      const stored = await count(db.url, STORED);
      const finished = await count(db.url, FINISHED);
      return {
        ...r,
        stored,
        finished,
        rss: hub.peakRss(),
        linesPerRequest: (hub.logLines() - lines) / r.requests,
        requestLinesPerRequest: (hub.requestLogLines() - requestLines) / r.requests,
      };
    });
  let asStarted: Run;
  let httpOnly: Run;
  try {
    options.log('ingest: switchyard start (all roles, 1 subscription, default logging to a file)');
    asStarted = await cliRun('all');
    options.log('ingest: switchyard start --role http');
    httpOnly = await cliRun('http');
  } finally {
    await subscriber.close();
  }
  options.log('ingest: floor (bare fastify + one INSERT), after');
  const floorAfter = await floorRun();
  const mean = (a: number, b: number) => (a + b) / 2;
  const base: Run = {
    rps: mean(floorBefore.rps, floorAfter.rps),
    p50: mean(floorBefore.p50, floorAfter.p50),
    p99: mean(floorBefore.p99, floorAfter.p99),
    total: floorBefore.total + floorAfter.total,
    rss: Math.max(floorBefore.rss, floorAfter.rss),
    stored: (floorBefore.stored ?? 0) + (floorAfter.stored ?? 0),
  };

  const reduced = async (workers: boolean): Promise<Run> =>
    withChild(options.adminUrl, HUB_ENTRY, async (child, db) => {
      const { port } = await child.call<{ port: number; front: string }>('start', { workers });
      const r = await measure(hookUrl(port));
      await sleep(100);
      const stored = await count(db.url, STORED);
      const finished = await count(db.url, FINISHED);
      return { ...r, stored, finished, rss: await child.peakRss() };
    });
  options.log('ingest: reduced hub, HTTP only (buildApp(), no request logging, no pg-boss)');
  const reducedHttp = await reduced(false);
  options.log('ingest: reduced hub, workers on (no subscription)');
  const reducedAll = await reduced(true);

  const label = 'bare fastify + 1 INSERT (pg Pool 10)';
  const rps = (metric: string, r: Run, target?: { value: number; label: string }) =>
    row(metric, r.rps, base.rps, {
      unit: 'req/s',
      baselineLabel: label,
      higherIsBetter: true,
      ...(target
        ? { target: { kind: 'min' as const, value: target.value, onRatio: true, label: target.label } }
        : {}),
    });
  const latency = (metric: string, r: Run) => [
    row(`${metric} p50`, r.p50, base.p50, { unit: 'ms', baselineLabel: label }),
    row(`${metric} p99`, r.p99, base.p99, { unit: 'ms', baselineLabel: label }),
  ];
  return {
    name: 'Ingest',
    rows: [
      rps(
        'Ingest req/s, as started (switchyard start: all roles, 1 subscription, default logging)',
        asStarted,
        {
          value: 0.5,
          label: '≥ 0.5× floor',
        },
      ),
      ...latency('Ingest ack, as started,', asStarted),
      rps('Ingest req/s, HTTP-only role (switchyard start --role http)', httpOnly, {
        value: 0.8,
        label: '≥ 0.8× floor',
      }),
      ...latency('Ingest ack, HTTP-only role,', httpOnly),
      row('Request-log lines per request, as started', asStarted.requestLinesPerRequest!, null, {
        unit: 'lines',
      }),
      row('Peak RSS, ingest as started', mib(asStarted.rss), mib(base.rss), {
        unit: 'MiB',
        baselineLabel: 'floor server process',
      }),
      row('Peak RSS, ingest HTTP-only role', mib(httpOnly.rss), mib(base.rss), {
        unit: 'MiB',
        baselineLabel: 'floor server process',
      }),
      rps('Ingest req/s, reduced: buildApp(), HTTP only, no request logging', reducedHttp),
      rps('Ingest req/s, reduced: buildApp(), workers on, no subscription, no request logging', reducedAll),
    ],
    notes: [
      `autocannon, 50 connections, ${warmS} s warm-up then ${durationS} s measured; every body a unique slot-booked push (booking id, created_at vary; 64 facilities, so 64 ordering keys and one subject per booking).`,
      'As started: `node packages/server/bin/switchyard.mjs start --config switchyard.yaml` (bench/lib/cli-hub.ts) on a file the bench writes: one Docplanner push instance, one webhook subscription to the bench\'s subscriber (which answers 200 at once), no `logging` block (the default level), stdout and stderr redirected to a file. The HTTP-only row is the same with `--role http` (nothing normalizes or delivers). "Reduced" rows are the hub as earlier runs measured it: `createHub()` and `buildApp()` in a bench child process without a logger, no pg-boss, no subscription.',
      `Log lines per request, as started: ${asStarted.linesPerRequest!.toFixed(2)} in all, ${asStarted.requestLinesPerRequest!.toFixed(2)} of them fastify request logs (HTTP-only role: ${httpOnly.requestLinesPerRequest!.toFixed(2)}).`,
      `The floor ran before and after the two \`switchyard start\` runs: ${Math.round(floorBefore.rps).toLocaleString('en')} and ${Math.round(floorAfter.rps).toLocaleString('en')} req/s (p50 ${floorBefore.p50} / ${floorAfter.p50} ms, p99 ${floorBefore.p99} / ${floorAfter.p99} ms); every ratio of this scenario is to their mean.`,
      `Rows committed during warm-up + run: floor ${floorBefore.stored} and ${floorAfter.stored}, as started ${asStarted.stored}, HTTP-only ${httpOnly.stored}, reduced HTTP-only ${reducedHttp.stored}, reduced workers on ${reducedAll.stored} (every 2xx is a committed row).`,
      // The workers share the two cores with ingest: a normalizer that keeps up better takes CPU
      // from ingest, so the workers-on req/s alone reads a faster normalizer as a slower hub.
      `As started, ${asStarted.finished} of its ${asStarted.stored} stored messages were normalized by the end of the run (ingest first: while the pushes queue, one run at a time, each followed by a rest; pipeline/pressure.ts).`,
      `Reduced workers on: ${reducedAll.finished} of its ${reducedAll.stored} stored messages normalized by the end of the run (the normalizer shares the two cores with ingest: the more it keeps up, the lower that row's req/s).`,
    ],
  };
}
