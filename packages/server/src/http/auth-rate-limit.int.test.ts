import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import { ADMIN_TOKEN, call, listen, makeHub, VENDOR_API_KEY } from './test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  await hub.instances.upsert({ id: 'shop', connector: 'hooktest', settings: { apiKey: VENDOR_API_KEY } });
  server = await listen(hub, { authRateLimit: { maxFailures: 3, windowMs: 60_000 } });
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

describe('repeated authentication failures from one address', () => {
  it('answer 429 problem+json with Retry-After, even to the right credential, and store nothing', async () => {
    const push = (key: string) =>
      call(server.base, 'POST', '/hooks/shop', {
        token: null,
        headers: { 'x-api-key': key },
        body: { id: `rl-${key}`, type: 'created' },
      });
    for (let i = 0; i < 3; i++) expect((await push(`wrong-${i}`)).status).toBe(401);
    const limited = await push(VENDOR_API_KEY);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    // The admin API shares the limit: the same address is refused there too.
    expect((await call(server.base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN })).status).toBe(429);
    expect((await hub.inbound.list({ instanceId: 'shop' })).items).toEqual([]);
  });
});
