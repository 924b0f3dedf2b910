/**
 * The pipeline floor (bench/lib/pipeline-floor.ts) against a real Postgres and a real subscriber:
 * every acknowledged push reaches the subscriber signed, and its 2xx is recorded.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../packages/testing/src/index.ts';
import { startChild } from './child.ts';
import { pushBody, seqOf } from './docplanner.ts';
import { closeAgent, pushOnce } from './load.ts';
import { waitUntil } from './result.ts';
import { PIPELINE_FLOOR_ENTRY } from './scenario.ts';

const db = useTestDatabase();

describe('pipeline floor', () => {
  it('delivers every acknowledged push, signed, and records it', { timeout: 60_000 }, async () => {
    const received: { seq: number; valid: boolean }[] = [];
    let refuse = 2;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // The first two requests are refused: a refused delivery goes back and is sent again.
        if (refuse-- > 0) return void res.writeHead(503).end();
        const body = Buffer.concat(chunks).toString('utf8');
        const expected = createHmac('sha256', 'pipeline-floor-secret')
          .update(`${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${body}`)
          .digest('base64');
        received.push({ seq: seqOf(body), valid: req.headers['webhook-signature'] === `v1,${expected}` });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const child = await startChild(PIPELINE_FLOOR_ENTRY, { BENCH_DATABASE_URL: db.url() });
    try {
      const subscriber = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const { port } = await child.call<{ port: number }>('start', { subscriber });
      const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => pushOnce(port, pushBody(i))));
      expect(statuses.every((s) => s === 200)).toBe(true);
      await waitUntil(() => received.length >= 40, 'deliveries', 30_000, 20);
      await waitUntil(
        async () => (await child.call<{ recorded: number }>('counts')).recorded === 40,
        'records',
        10_000,
        20,
      );
      expect(new Set(received.map((r) => r.seq))).toEqual(new Set(Array.from({ length: 40 }, (_, i) => i)));
      expect(received.every((r) => r.valid)).toBe(true);
      expect(await child.call('counts')).toEqual({ stored: 40, recorded: 40, delivered: 40, failed: 2 });
    } finally {
      closeAgent();
      await child.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
