/**
 * A request that arrives while the app closes gracefully gets a problem answer like every other
 * error: 503 `application/problem+json` `SY_HTTP_SHUTTING_DOWN` with `Retry-After` (fastify's own
 * `return503OnClosing` answered plain JSON without it). A keep-alive connection whose request was in
 * progress when the close began does not hold the close open after its answer.
 */
import http from 'node:http';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import { ADMIN_TOKEN, makeHub, silent } from './app.test-support.ts';
import { buildApp } from './app.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
});
afterAll(async () => {
  await hub?.stop({ graceful: false });
});

it('answers requests that arrive during a graceful close with 503 problem+json and Retry-After', async () => {
  let closingBegun!: () => void;
  const closing = new Promise<void>((resolve) => {
    closingBegun = resolve;
  });
  let finishClosing!: () => void;
  const mayFinish = new Promise<void>((resolve) => {
    finishClosing = resolve;
  });
  const app = await buildApp({
    hub,
    adminToken: ADMIN_TOKEN,
    logger: silent,
    authRateLimit: false,
    plugins: [
      async (scope) => {
        // Holds the close open (as the hub's own close hooks do while they finish work): the server
        // still accepts connections, and what arrives now is answered as "closing".
        scope.addHook('preClose', async () => {
          closingBegun();
          await mayFinish;
        });
      },
    ],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const closed = app.close();
  await closing;
  const late = [
    await fetch(`${base}/healthz`),
    await fetch(`${base}/v1/events`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
    await fetch(`${base}/hooks/any`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    }),
  ];
  finishClosing();
  await closed;

  for (const [i, answer] of late.entries()) {
    const path = ['/healthz', '/v1/events', '/hooks/any'][i];
    expect(answer.status, path).toBe(503);
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(answer.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(await answer.json()).toMatchObject({ status: 503, code: 'SY_HTTP_SHUTTING_DOWN', instance: path });
  }
});

it('closes once the requests in progress are answered: their keep-alive connections do not hold it open', async () => {
  let reached!: () => void;
  const inRoute = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const app = await buildApp({
    hub,
    adminToken: ADMIN_TOKEN,
    logger: silent,
    authRateLimit: false,
    plugins: [
      async (scope) => {
        // A request that takes its time (a vendor push waiting for its durable write).
        scope.get('/test/slow', async () => {
          reached();
          await new Promise((resolve) => setTimeout(resolve, 300));
          return { ok: true };
        });
      },
    ],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  // A client that keeps its connection for as long as the server does (as a vendor's may).
  const agent = new http.Agent({ keepAlive: true });
  try {
    const answered = new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/test/slow', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    await inRoute;
    const started = Date.now();
    const closed = app.close().then(() => Date.now() - started);
    expect(await answered).toBe(200);
    // Before: the connection stayed open after the answer for fastify's keep-alive timeout (72 s),
    // and the close with it.
    const tookMs = await Promise.race([
      closed,
      new Promise<number>((resolve) => setTimeout(() => resolve(-1), 10_000)),
    ]);
    expect(tookMs).toBeGreaterThan(0);
    expect(tookMs).toBeLessThan(3000);
  } finally {
    agent.destroy();
    await app.close();
  }
}, 30_000);
