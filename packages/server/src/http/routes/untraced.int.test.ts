import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../../pipeline/hub.ts';
import { startMemoryTracing } from '../../telemetry/memory-tracing.test-support.ts';
import { call, listen, makeHub } from '../app.test-support.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
});
afterAll(async () => {
  await hub?.stop();
});

it('health probes and metrics scrapes make no spans; the admin API still does', async () => {
  // Tracing on before the app is built: the request span's hooks are added only then.
  const { finished, tracing } = await startMemoryTracing();
  try {
    const server = await listen(hub);
    try {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const answer = await call(server.base, 'GET', path, { token: null });
        expect(answer.status, path).toBe(200);
      }
      expect((await call(server.base, 'GET', '/v1/subscriptions')).status).toBe(200);
      await tracing.flush();
      // Before: one root SERVER span (a trace of its own) per probe and scrape, every few seconds
      // from every load balancer and Prometheus, crowding the vendors' traces out of the collector.
      expect(finished.map((s) => s.name)).toEqual(['GET /v1/subscriptions']);
    } finally {
      await server.close();
    }
  } finally {
    await tracing.shutdown();
  }
});
