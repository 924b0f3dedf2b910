/**
 * Ingest: Docplanner pushes from autocannon (50 connections) against the hub's hook route,
 * beside a bare fastify route doing one INSERT per request into the same Postgres.
 */

import { pg } from './lib/deps.ts';
import { cannon, hookUrl } from './lib/load.ts';
import { type BenchOptions, type BenchResult, mib, row, sleep } from './lib/result.ts';
import { BASELINE_ENTRY, HUB_ENTRY, withChild } from './lib/scenario.ts';

interface Run {
  rps: number;
  p50: number;
  p99: number;
  rss: number;
  total: number;
  front?: string;
  stored?: number;
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

export async function run(options: BenchOptions): Promise<BenchResult> {
  const durationS = options.quick ? 3 : 10;
  const warmS = options.quick ? 1 : 3;

  const measure = async (url: string): Promise<Omit<Run, 'rss'>> => {
    await cannon({ url, durationS: warmS });
    const r = await cannon({ url, durationS });
    if (r.non2xx > 0 || r.errors > 0)
      throw new Error(`ingest run had ${r.non2xx} non-2xx and ${r.errors} errors`);
    return { rps: r.requestsPerSecond, p50: r.p50, p99: r.p99, total: r.total };
  };

  options.log('ingest: baseline (fastify + one INSERT)');
  const base: Run = await withChild(options.adminUrl, BASELINE_ENTRY, async (child, db) => {
    const { port } = await child.call<{ port: number }>('start');
    const r = await measure(`http://127.0.0.1:${port}/hooks/${'dp-bench'}`);
    const stored = await count(db.url, 'select count(*) as n from bench_ack');
    return { ...r, stored, rss: await child.peakRss() };
  });

  const hubRun = async (workers: boolean): Promise<Run> =>
    withChild(options.adminUrl, HUB_ENTRY, async (child, db) => {
      const { port, front } = await child.call<{ port: number; front: string }>('start', { workers });
      const r = await measure(hookUrl(port));
      await sleep(100);
      const stored = await count(db.url, 'select count(*) as n from switchyard.inbound_messages');
      return { ...r, front, stored, rss: await child.peakRss() };
    });
  options.log('ingest: hub, HTTP-only role (workers off)');
  const http = await hubRun(false);
  options.log('ingest: hub, all roles (workers normalizing and delivering nothing: no subscription)');
  const all = await hubRun(true);

  const label = 'bare fastify + 1 INSERT (pg Pool 10)';
  return {
    name: 'Ingest',
    rows: [
      row('Ingest req/s (HTTP-only hub process)', http.rps, base.rps, {
        unit: 'req/s',
        baselineLabel: label,
        higherIsBetter: true,
        target: { kind: 'min', value: 0.7, onRatio: true, label: '≥ 70% of baseline' },
      }),
      row('Ingest ack p50 (HTTP-only)', http.p50, base.p50, { unit: 'ms', baselineLabel: label }),
      row('Ingest ack p99 (HTTP-only)', http.p99, base.p99, { unit: 'ms', baselineLabel: label }),
      row('Ingest req/s (hub with workers on)', all.rps, base.rps, {
        unit: 'req/s',
        baselineLabel: label,
        higherIsBetter: true,
      }),
      row('Ingest ack p50 (workers on)', all.p50, base.p50, { unit: 'ms', baselineLabel: label }),
      row('Ingest ack p99 (workers on)', all.p99, base.p99, { unit: 'ms', baselineLabel: label }),
      row('Peak RSS, ingest (HTTP-only hub)', mib(http.rss), mib(base.rss), {
        unit: 'MiB',
        baselineLabel: 'baseline server process',
      }),
      row('Peak RSS, ingest (workers on)', mib(all.rss), mib(base.rss), {
        unit: 'MiB',
        baselineLabel: 'baseline server process',
      }),
    ],
    notes: [
      `autocannon, 50 connections, ${warmS} s warm-up then ${durationS} s measured; every body a unique slot-booked push (booking id, created_at vary).`,
      `Hub HTTP front end: ${http.front}.`,
      `Rows committed during warm-up + run: baseline ${base.stored}, hub HTTP-only ${http.stored}, hub all roles ${all.stored} (every 2xx is a committed row).`,
      'The "workers on" hub also normalizes what it ingests (no subscription, so no deliveries): the same two cores do both.',
    ],
  };
}
