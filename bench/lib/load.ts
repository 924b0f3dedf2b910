/**
 * Load generation: autocannon for closed-loop throughput (50 connections), and a paced sender
 * for the steady-rate latency scenario.
 */
import http from 'node:http';
import autocannon from 'autocannon';
import { INSTANCE_ID, pushBody, pushHeaders } from './docplanner.ts';
import { waitUntil } from './result.ts';

export interface CannonResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
  seconds: number;
}

let runTag = 0;

/**
 * Docplanner pushes from 50 connections, each body unique. Give `durationS` or `amount`.
 *
 * @example
 * ```ts
 * const r = await cannon({ url: 'http://127.0.0.1:3000/hooks/dp-bench', durationS: 10 });
 * ```
 */
export async function cannon(o: {
  url: string;
  durationS?: number;
  amount?: number;
  connections?: number;
  /** A distinct tag per run keeps booking ids unique across runs against the same database. */
  tag?: number;
}): Promise<CannonResult> {
  const tag = o.tag ?? ++runTag;
  let seq = 0;
  const started = performance.now();
  const result = await autocannon({
    url: o.url,
    connections: o.connections ?? 50,
    ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.durationS ?? 10 }),
    requests: [
      {
        method: 'POST',
        headers: pushHeaders,
        setupRequest: (req: Record<string, unknown>) => ({ ...req, body: pushBody(seq++, tag) }),
      },
    ],
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    requestsPerSecond: o.amount !== undefined ? result.requests.total / seconds : result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    seconds,
  };
}

/** The push URL of the benchmark instance on a hub listening on `port`. */
export function hookUrl(port: number): string {
  return `http://127.0.0.1:${port}/hooks/${INSTANCE_ID}`;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One push; resolves with the HTTP status. */
export function pushOnce(port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: `/hooks/${INSTANCE_ID}`, method: 'POST', headers: pushHeaders, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The latency runs' warm-up (bench/latency.ts, bench/lib/tail-latency.ts): 500 closed-loop pushes,
 * two seconds of pushes paced at `rate`, then, while `ready()` says no, another second at a time (at
 * most 30 more); then waits until `delivered()` counts every warm-up push. Its pushes are numbered
 * below 2,000,000 (autocannon's from 0, the paced ones from 1,000,000), so a measured window numbers
 * its own from there.
 *
 * @example
 * ```ts
 * await latencyWarmUp({ port, rate: 200, delivered: () => subscriber.count, what: 'latency', ready });
 * ```
 */
export async function latencyWarmUp(o: {
  port: number;
  rate: number;
  delivered(): number;
  what: string;
  ready?(): Promise<boolean>;
}): Promise<void> {
  await cannon({ url: hookUrl(o.port), amount: 500, tag: 1 });
  let sent = 0;
  do {
    if (sent >= o.rate * 32) throw new Error(`${o.what}: not ready after 32 s of paced pushes`);
    const total = sent === 0 ? o.rate * 2 : o.rate;
    await paced({ port: o.port, rate: o.rate, total, firstSeq: 1_000_000 + sent, tag: 2, onSend: () => {} });
    sent += total;
  } while (o.ready && !(await o.ready()));
  await waitUntil(() => o.delivered() >= 500 + sent, `${o.what} warm-up`, 60_000);
}

/**
 * Sends `total` pushes at a steady `rate` per second (open loop: a slow answer does not delay the
 * next push). `onSend(seq, at)` gets the performance.now() just before each request is written.
 */
export async function paced(o: {
  port: number;
  rate: number;
  total: number;
  firstSeq: number;
  tag: number;
  onSend(seq: number, at: number): void;
}): Promise<{ failures: number }> {
  let failures = 0;
  const inFlight: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < o.total; i++) {
    const due = started + (i * 1000) / o.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const seq = o.firstSeq + i;
    const body = pushBody(seq, o.tag);
    o.onSend(seq, performance.now());
    inFlight.push(
      pushOnce(o.port, body).then(
        (status) => {
          if (status < 200 || status >= 300) failures++;
        },
        () => {
          failures++;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return { failures };
}

export function closeAgent(): void {
  agent.destroy();
}
