/**
 * A minimal webhook subscriber for throughput runs: answers 200 at once and counts. The
 * recording subscriber of @switchyard/testing verifies and stores every request, which is right
 * for tests and too slow to measure the hub with. With `track`, it also notes when each push
 * (`bench:<seq>` in the event) arrived, for the latency scenario.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { seqOf } from './docplanner.ts';

export interface FastSubscriber {
  url: string;
  /** 2xx answers given so far. */
  readonly count: number;
  /** performance.now() of the latest request. */
  readonly lastAt: number;
  /** With `track`: push number → performance.now() of its first arrival. */
  readonly arrivals: Map<number, number>;
  close(): Promise<void>;
}

/**
 * @example
 * ```ts
 * const sub = await startFastSubscriber();
 * // subscribe sub.url, push …
 * await waitUntil(() => sub.count >= 1000, 'deliveries', 60_000);
 * ```
 */
export async function startFastSubscriber(options: { track?: boolean } = {}): Promise<FastSubscriber> {
  let count = 0;
  let lastAt = 0;
  const arrivals = new Map<number, number>();
  const server = http.createServer((req, res) => {
    if (options.track) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = performance.now();
        const seq = seqOf(Buffer.concat(chunks).toString('utf8'));
        if (seq >= 0 && !arrivals.has(seq)) arrivals.set(seq, at);
        count++;
        lastAt = at;
        res.writeHead(200).end();
      });
      return;
    }
    req.resume();
    req.on('end', () => {
      count++;
      lastAt = performance.now();
      res.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get count() {
      return count;
    },
    get lastAt() {
      return lastAt;
    },
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
