import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import { uiPlugin } from '../ui/plugin.ts';
import { ADMIN_TOKEN, call, listen, makeHub, VENDOR_API_KEY } from './app.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  for (const id of ['shop', 'other', 'third'])
    await hub.instances.upsert({ id, connector: 'hooktest', settings: { apiKey: VENDOR_API_KEY } });
  server = await listen(hub, {
    authRateLimit: { maxFailures: 3, windowMs: 60_000 },
    plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })],
  });
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

const push = (instance: string, key: string) =>
  call(server.base, 'POST', `/hooks/${instance}`, {
    token: null,
    headers: { 'x-api-key': key },
    body: { id: `rl-${instance}-${key}`, type: 'created' },
  });
const signIn = (token: string) =>
  call(server.base, 'POST', '/ui/session', {
    token: null,
    headers: { 'x-switchyard-ui': '1' },
    body: { token },
  });

describe('repeated authentication failures from one address', () => {
  it('answer 429 problem+json with Retry-After on that instance only, even to the right credential, and store nothing', async () => {
    for (let i = 0; i < 3; i++) expect((await push('shop', `wrong-${i}`)).status).toBe(401);
    const limited = await push('shop', VENDOR_API_KEY);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    expect((await hub.inbound.list({ instanceId: 'shop' })).items).toEqual([]);
    // A bad key on one instance blocks neither another instance nor the admin API from that address.
    expect((await push('other', VENDOR_API_KEY)).status).toBe(202);
    expect((await call(server.base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN })).status).toBe(200);
    expect((await signIn(ADMIN_TOKEN)).status).toBe(204);
  });

  it('count dashboard sign-in failures like admin API failures: both answer 429 afterwards, the hooks do not', async () => {
    for (let i = 0; i < 3; i++) expect((await signIn(`not-the-token-${i}`)).status).toBe(401);
    const limited = await signIn(ADMIN_TOKEN);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    expect(limited.headers.get('set-cookie')).toBeNull();
    // The sign-in and the admin API are one target: the token is refused on both now.
    expect((await call(server.base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN })).status).toBe(429);
    expect((await push('third', VENDOR_API_KEY)).status).toBe(202);
  });
});
