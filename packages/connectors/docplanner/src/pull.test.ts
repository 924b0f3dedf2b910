import { readFileSync } from 'node:fs';
import type { JsonObject, PullContext, VendorResponse } from '@switchyard/core';
import { fetchVendorHttp, memoryNormalizeContext } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import {
  apiBase,
  fetchNotifications,
  MAX_CACHED_TOKENS,
  reconcile,
  releaseNotifications,
  retryAfterMs,
} from './pull.ts';
import { DocplannerSimulator } from './simulator.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;
const multiple = JSON.parse(
  readFileSync(new URL('../fixtures-pull/notifications-multiple.json', import.meta.url), 'utf8'),
) as { notifications: JsonObject[]; remaining: number };

const sims: DocplannerSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function setup(
  settings: Partial<Config> = {},
  simOptions: ConstructorParameters<typeof DocplannerSimulator>[0] = {},
) {
  const sim = new DocplannerSimulator({ clientId: 'dp-client', clientSecret: 'dp-secret', ...simOptions });
  sims.push(sim);
  const url = await sim.start();
  const config: Config = { apiBaseUrl: url, clientId: 'dp-client', clientSecret: 'dp-secret', ...settings };
  const ctx = { ...memoryNormalizeContext({ instanceId: 'dp-main', config }), http: fetchVendorHttp };
  return { sim, ctx: ctx as typeof ctx & PullContext<Config> };
}

describe('pull, single mode', () => {
  it('drains one notification per fetch until the 404 "No notifications found"', async () => {
    const { sim, ctx } = await setup();
    sim.enqueue(fixture('slot-booked.json'), fixture('booking-moved.json'), fixture('break-created.json'));
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const batch = await fetchNotifications(ctx);
      seen.push(...batch.notifications.map((n) => n.type));
      expect(batch.notifications.length).toBeLessThanOrEqual(1);
      if (!batch.more) {
        expect(batch.notifications).toEqual([]);
        break;
      }
    }
    expect(seen).toEqual(['slot-booked', 'booking-moved', 'break-created']);
    expect(sim.queueLength).toBe(0);
    expect(sim.tokensIssued).toBe(1);
    expect(
      sim.served.filter((r) => r.path === '/api/v3/integration/notifications').map((r) => r.status),
    ).toEqual([200, 200, 200, 404]);
  });

  it('parses pulled notifications like pushed ones, but never as gates', async () => {
    const { sim, ctx } = await setup();
    sim.enqueue(fixture('slot-booking.json'));
    const [n] = (await fetchNotifications(ctx)).notifications;
    expect(n).toMatchObject({
      type: 'slot-booking',
      occurredAt: '2026-03-02T09:14:05+01:00',
      meta: { source: 'pull' },
    });
    expect(n!.gate).toBeUndefined();
    expect(n!.dedupeKey).toMatch(/^sha256:/);
  });

  it('renews a revoked token on 401 and retries once', async () => {
    const { sim, ctx } = await setup();
    sim.enqueue(fixture('slot-booked.json'), fixture('booking-confirmed.json'));
    await fetchNotifications(ctx);
    sim.revokeTokens();
    const batch = await fetchNotifications(ctx);
    expect(batch.notifications.map((n) => n.type)).toEqual(['booking-confirmed']);
    expect(sim.tokensIssued).toBe(2);
    expect(sim.served.filter((r) => r.status === 401)).toHaveLength(1);
  });

  it('renews a token that expired by its own clock without a 401', async () => {
    // 30 s of life: expired by the connector's clock (renewed 30 s early), still valid at Docplanner.
    const { sim, ctx } = await setup({}, { tokenTtlSeconds: 30 });
    await fetchNotifications(ctx);
    await fetchNotifications(ctx);
    expect(sim.tokensIssued).toBe(2);
    expect(sim.served.filter((r) => r.status === 401)).toHaveLength(0);
  });

  it('keeps the token in memory only: never in the instance state, shared by the instance, asked again after a settings change', async () => {
    const { sim, ctx } = await setup();
    await fetchNotifications(ctx);
    expect([...ctx.state.values.keys()]).toEqual([]);
    // Another context of the same instance (another poll, a command: a fresh state) uses it.
    const again = { ...ctx, state: memoryNormalizeContext({ config: ctx.config }).state };
    await fetchNotifications(again);
    expect(sim.tokensIssued).toBe(1);
    // Another instance gets its own.
    await fetchNotifications({ ...ctx, instanceId: 'dp-second' });
    expect(sim.tokensIssued).toBe(2);
    // New client credentials: the token of the old ones is not used (here they are refused).
    const changed = { ...ctx, config: { ...ctx.config, clientSecret: 'rotated-secret' } };
    await expect(fetchNotifications(changed)).rejects.toMatchObject({ kind: 'permanent' });
    expect(sim.served.filter((r) => r.path === '/oauth/v2/token').map((r) => r.status)).toEqual([
      200, 200, 401,
    ]);
  });

  it('holds at most MAX_CACHED_TOKENS tokens, the least recently used going first', async () => {
    let issued = 0;
    const ctx = memoryNormalizeContext<Config>({
      config: { apiBaseUrl: 'https://dp-many.test', clientId: 'c', clientSecret: 's' },
      vendorApi: (req) =>
        req.url.endsWith('/oauth/v2/token')
          ? { status: 200, headers: {}, body: { access_token: `t${++issued}`, expires_in: 3600 } }
          : ({
              status: 404,
              headers: {},
              body: { errors: [], message: 'No notifications found' },
            } as VendorResponse),
    });
    const pull = (instanceId: string) => fetchNotifications({ ...ctx, instanceId });
    await pull('first');
    await pull('second');
    for (let i = 0; i < MAX_CACHED_TOKENS - 2; i++) await pull(`filler-${i}`);
    await pull('first'); // used again: now the most recent
    expect(issued).toBe(MAX_CACHED_TOKENS);
    await pull('one-too-many'); // pushes out the least recently used: second
    await pull('first');
    expect(issued).toBe(MAX_CACHED_TOKENS + 1);
    await pull('second');
    expect(issued).toBe(MAX_CACHED_TOKENS + 2);
  });

  it('throws transient with Retry-After on 503 and 429', async () => {
    const { sim, ctx } = await setup();
    sim.failNext(1, 503, 12);
    await expect(fetchNotifications(ctx)).rejects.toMatchObject({ kind: 'transient', retryAfterMs: 12_000 });
    sim.failNext(1, 429);
    await expect(fetchNotifications(ctx)).rejects.toMatchObject({
      kind: 'transient',
      retryAfterMs: undefined,
    });
    expect((await fetchNotifications(ctx)).more).toBe(false);
  });

  it('throws transient when Docplanner cannot be reached', async () => {
    const { sim, ctx } = await setup();
    await sim.close();
    await expect(fetchNotifications(ctx)).rejects.toMatchObject({ kind: 'transient' });
  });

  it('fails permanently on wrong client credentials', async () => {
    const { ctx } = await setup({ clientSecret: 'not-the-secret' });
    await expect(fetchNotifications(ctx)).rejects.toMatchObject({ kind: 'permanent' });
  });

  it('reads an empty queue answered in other words (a country domain localizes them) by checking the API once', async () => {
    const { sim, ctx } = await setup();
    sim.emptyQueueMessage = 'Nie znaleziono powiadomień';
    const facilities = () => sim.served.filter((r) => r.path.endsWith('/facilities')).length;
    expect(await fetchNotifications(ctx)).toMatchObject({ notifications: [], more: false });
    expect(facilities()).toBe(1);
    // Checked once: the next empty poll is one call.
    expect(await fetchNotifications(ctx)).toMatchObject({ notifications: [], more: false });
    expect(facilities()).toBe(1);
    // The same words where the API does not answer (a wrong base): a wrong URL, not an empty queue.
    const wrong = memoryNormalizeContext<Config>({
      config: { apiBaseUrl: 'https://dp.test', clientId: 'c', clientSecret: 's' },
      vendorApi: (req) =>
        req.url.endsWith('/oauth/v2/token')
          ? { status: 200, headers: {}, body: { access_token: 't', expires_in: 3600 } }
          : ({
              status: 404,
              headers: {},
              body: { errors: [], message: 'Nie znaleziono powiadomień' },
            } as VendorResponse),
    });
    await expect(fetchNotifications(wrong)).rejects.toMatchObject({ kind: 'permanent' });
  });

  it("treats the API's other 404s of the same shape (a moved path, a wrong domain) as a wrong URL too", async () => {
    const ctx = memoryNormalizeContext<Config>({
      config: { apiBaseUrl: 'https://dp.test', clientId: 'c', clientSecret: 's' },
      vendorApi: (req) =>
        req.url.endsWith('/oauth/v2/token')
          ? { status: 200, headers: {}, body: { access_token: 't', expires_in: 3600 } }
          : ({
              status: 404,
              headers: {},
              body: { errors: [], message: 'No route found for "GET /api/v3/integration/notifications"' },
            } as VendorResponse),
    });
    await expect(fetchNotifications(ctx)).rejects.toMatchObject({ kind: 'permanent' });
  });
});

describe('pull, multiple mode', () => {
  it('takes up to pullLimit per fetch and says more while some remain', async () => {
    const { sim, ctx } = await setup({ pullMode: 'multiple', pullLimit: 2 });
    sim.enqueue(...multiple.notifications);
    const first = await fetchNotifications(ctx);
    expect(first.notifications.map((n) => n.type)).toEqual(['slot-booked', 'booking-canceled']);
    expect(first.more).toBe(true);
    const second = await fetchNotifications(ctx);
    expect(second.notifications.map((n) => n.type)).toEqual(['break-created']);
    expect(second.more).toBe(false);
    expect(sim.served.at(-1)!.path).toBe('/api/v3/integration/notifications/multiple?limit=2');
  });

  it('reads the recorded /multiple response and keeps an unreadable item instead of losing the batch', async () => {
    const broken = {
      ...multiple,
      notifications: [...multiple.notifications, { name: 'slot-booked', data: {}, created_at: 'never' }],
    };
    const ctx = {
      ...memoryNormalizeContext<Config>({
        config: { apiBaseUrl: 'https://dp.test', clientId: 'c', clientSecret: 's', pullMode: 'multiple' },
        vendorApi: (req) =>
          req.url.endsWith('/oauth/v2/token')
            ? { status: 200, headers: {}, body: { access_token: 't', expires_in: 3600 } }
            : { status: 200, headers: {}, body: broken as unknown as JsonObject },
      }),
    };
    const batch = await fetchNotifications(ctx);
    expect(batch.notifications.map((n) => n.type)).toEqual([
      'slot-booked',
      'booking-canceled',
      'break-created',
      'slot-booked',
    ]);
    expect(batch.notifications[3]!.meta).toMatchObject({
      source: 'pull',
      unreadable: expect.stringContaining('created_at'),
    });
    expect(batch.more).toBe(false);
    expect(batch.oldestOccurredAt).toBe('2026-03-08T08:00:01+01:00');
  });
});

describe('push reconciliation (release)', () => {
  it('runs hourly by default, only with API credentials, and not when turned off', () => {
    const creds = { clientId: 'c', clientSecret: 's' };
    expect(reconcile.intervalMs(creds)).toBe(3_600_000);
    expect(reconcile.intervalMs({ ...creds, releaseIntervalMinutes: 120 })).toBe(7_200_000);
    expect(reconcile.intervalMs({ ...creds, releaseIntervalMinutes: 0 })).toBeUndefined();
    expect(reconcile.intervalMs({ clientId: 'c' })).toBeUndefined();
    expect(reconcile.intervalMs({})).toBeUndefined();
  });

  it('asks Docplanner to re-push buried notifications, at most once an hour (429 is transient)', async () => {
    const { sim, ctx } = await setup({}, { retryDelaysMs: [1, 1], hookUrl: 'http://127.0.0.1:9/hooks/dp' });
    const record = await sim.push(fixture('break-created.json'));
    expect(record.buried).toBe(true);
    await expect(releaseNotifications(ctx)).resolves.toBe('released 1');
    await expect(releaseNotifications(ctx)).rejects.toMatchObject({
      kind: 'transient',
      retryAfterMs: expect.any(Number),
    });
    sim.advanceClock(3_600_000);
    await expect(reconcile.run(ctx)).resolves.toBe('released 1');
  });
});

describe('expiry watch', () => {
  it('warns when the oldest pulled notification nears the 72-hour expiry', async () => {
    const setUp = await setup({ pullLagWarningHours: 24 });
    const { sim } = setUp;
    // An instance of its own: the earlier tests' fixtures (2025 dates) had dp-main's warning said.
    const ctx = { ...setUp.ctx, instanceId: 'dp-lagging' };
    const old = {
      ...fixture('slot-booked.json'),
      created_at: new Date(Date.now() - 30 * 3_600_000).toISOString(),
    };
    sim.enqueue(old);
    const batch = await fetchNotifications(ctx);
    expect(batch.oldestOccurredAt).toBe(old.created_at);
    expect(ctx.logger.entries.filter((e) => e.level === 'warn')).toHaveLength(1);
  });

  it('warns once per instance in ten minutes while a catch-up pulls old notifications one by one', async () => {
    const setUp = await setup({ pullLagWarningHours: 24 });
    const { sim } = setUp;
    const ctx = { ...setUp.ctx, instanceId: 'dp-catching-up' };
    for (let i = 0; i < 5; i++)
      sim.enqueue({
        ...fixture('slot-booked.json'),
        created_at: new Date(Date.now() - (40 - i) * 3_600_000).toISOString(),
      });
    for (let i = 0; i < 5; i++) await fetchNotifications(ctx);
    // Before: one warning per batch, five here (228 in a container audit's catch-up).
    expect(ctx.logger.entries.filter((e) => e.level === 'warn')).toHaveLength(1);
  });

  it('stays quiet for fresh notifications', async () => {
    const { sim, ctx } = await setup();
    sim.enqueue({ ...fixture('slot-booked.json'), created_at: new Date().toISOString() });
    await fetchNotifications(ctx);
    expect(ctx.logger.entries.filter((e) => e.level === 'warn')).toHaveLength(0);
  });
});

describe('helpers', () => {
  it('derives the API base from the domain unless overridden', () => {
    expect(apiBase({ domain: 'znanylekarz.pl' })).toBe('https://www.znanylekarz.pl');
    expect(apiBase({ domain: 'znanylekarz.pl', apiBaseUrl: 'http://127.0.0.1:9/' })).toBe(
      'http://127.0.0.1:9',
    );
    expect(() => apiBase({})).toThrow(/domain/);
  });

  it('reads Retry-After in seconds or as an HTTP date', () => {
    expect(retryAfterMs({ status: 429, headers: { 'retry-after': '30' } })).toBe(30_000);
    expect(
      retryAfterMs(
        { status: 503, headers: { 'retry-after': 'Wed, 21 Oct 2026 07:28:10 GMT' } },
        Date.parse('2026-10-21T07:28:00Z'),
      ),
    ).toBe(10_000);
    expect(retryAfterMs({ status: 429, headers: {} })).toBeUndefined();
  });

  it("waits for X-RateLimit-Reset on the rate limiter's 429, which sends no Retry-After", () => {
    // integrations.docplanner.com/guide/fundamentals/rate-limits.html: "X-RateLimit-Reset: Provides
    // the date and time when the rate limit will reset, formatted in ISO8601."
    const now = Date.parse('2026-10-21T07:28:00Z');
    const limited = {
      'x-ratelimit-limit': '600',
      'x-ratelimit-used': '600',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '2026-10-21T09:30:00+02:00',
    };
    expect(retryAfterMs({ status: 429, headers: limited }, now)).toBe(120_000);
    // Every answer carries the limiter's headers: another status says nothing of the quota.
    expect(retryAfterMs({ status: 503, headers: limited }, now)).toBeUndefined();
    expect(retryAfterMs({ status: 429, headers: { ...limited, 'retry-after': '5' } }, now)).toBe(5000);
    expect(
      retryAfterMs({ status: 429, headers: { 'x-ratelimit-reset': '1792999999' } }, now),
    ).toBeUndefined();
  });

  it('treats a 404 that is not the empty-queue answer as a wrong URL', async () => {
    const ctx = memoryNormalizeContext<Config>({
      config: { apiBaseUrl: 'https://dp.test', clientId: 'c', clientSecret: 's' },
      vendorApi: (req) =>
        req.url.endsWith('/oauth/v2/token')
          ? { status: 200, headers: {}, body: { access_token: 't', expires_in: 3600 } }
          : { status: 404, headers: {}, body: '<html>Not Found</html>' },
    });
    await expect(fetchNotifications(ctx)).rejects.toMatchObject({ kind: 'permanent' });
  });
});
