/**
 * Load generation: autocannon for closed-loop throughput (50 connections), and a paced sender
 * for the steady-rate latency scenario.
 */
import http from 'node:http';
import autocannon from 'autocannon';
import { INSTANCE_ID, pushBody, pushHeaders } from './docplanner.ts';

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
 * A paced warm-up that goes on until `ready()`: `rate` pushes a second, one second at a time,
 * asking `ready` before each; fails after `maxSeconds`. Returns how many pushes it sent (their
 * numbers from `firstSeq` on).
 *
 * @example
 * ```ts
 * const more = await pacedUntil({ port, rate: 200, firstSeq: 1_000_400, tag: 2, maxSeconds: 20, ready });
 * ```
 */
export async function pacedUntil(o: {
  port: number;
  rate: number;
  firstSeq: number;
  tag: number;
  maxSeconds: number;
  ready(): Promise<boolean>;
}): Promise<number> {
  let sent = 0;
  while (!(await o.ready())) {
    if (sent >= o.rate * o.maxSeconds) throw new Error(`not ready after ${o.maxSeconds} s of paced pushes`);
    await paced({
      port: o.port,
      rate: o.rate,
      total: o.rate,
      firstSeq: o.firstSeq + sent,
      tag: o.tag,
      onSend: () => {},
    });
    sent += o.rate;
  }
  return sent;
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
