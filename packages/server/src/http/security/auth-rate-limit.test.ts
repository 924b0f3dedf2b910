import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthFailureLimiter,
  authTargetOf,
  checkedWhileLimited,
  installAuthRateLimit,
  limitKey,
} from './auth-rate-limit.ts';

let clock = 1_000_000;
const now = () => clock;

describe('AuthFailureLimiter', () => {
  it('limits an address at maxFailures within the window and frees it as failures age out', () => {
    clock = 1_000_000;
    const limiter = new AuthFailureLimiter({ maxFailures: 3, windowMs: 10_000, now });
    limiter.recordFailure('a');
    clock += 4000;
    limiter.recordFailure('a');
    expect(limiter.check('a')).toEqual({ limited: false });
    limiter.recordFailure('a');
    // The oldest failure (t=0) leaves the window at t=10 s: 6 s from now.
    expect(limiter.check('a')).toEqual({ limited: true, retryAfterSeconds: 6 });
    expect(limiter.check('b')).toEqual({ limited: false });
    clock += 6000;
    expect(limiter.check('a')).toEqual({ limited: false });
    clock += 10_000;
    expect(limiter.check('a')).toEqual({ limited: false });
    expect(limiter.size).toBe(0);
  });

  it('keeps memory bounded: at most maxAddresses addresses, least recently failed dropped first', () => {
    clock = 1_000_000;
    const limiter = new AuthFailureLimiter({ maxFailures: 2, windowMs: 60_000, maxAddresses: 3, now });
    for (const ip of ['a', 'b', 'c']) limiter.recordFailure(ip);
    limiter.recordFailure('a'); // a is now the most recent and limited
    limiter.recordFailure('d'); // evicts b, the least recently failed
    expect(limiter.size).toBe(3);
    expect(limiter.check('a').limited).toBe(true);
    limiter.recordFailure('b');
    expect(limiter.check('b').limited).toBe(false); // its first failure was forgotten
    for (let i = 0; i < 10_000; i++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(3);
  });

  it('one address cannot push its own limited key out with failures on made-up targets: past its key budget they count together', () => {
    clock = 1_000_000;
    const limiter = new AuthFailureLimiter({ maxFailures: 20, windowMs: 60_000, maxAddresses: 1_000, now });
    const ip = '203.0.113.66';
    for (let i = 0; i < 20; i++) limiter.recordFailure(limitKey(ip, 'admin'), ip);
    expect(limiter.check(limitKey(ip, 'admin'), ip).limited).toBe(true);
    // 10,000 feed ids that do not exist, one failure each (the 401 an unknown subscription gets).
    for (let i = 0; i < 10_000; i++) limiter.recordFailure(limitKey(ip, `feed:made-up-${i}`), ip);
    expect(limiter.check(limitKey(ip, 'admin'), ip).limited).toBe(true);
    expect(limiter.size).toBeLessThanOrEqual(limiter.maxKeysPerGroup + 1);
    // Its further targets share one budget, spent: refused too.
    expect(limiter.check(limitKey(ip, 'feed:another'), ip).limited).toBe(true);
    // Another address is not affected.
    expect(limiter.check(limitKey('198.51.100.1', 'feed:another'), '198.51.100.1').limited).toBe(false);
  });

  it('refuses nonsense options', () => {
    expect(() => new AuthFailureLimiter({ maxFailures: 0 })).toThrow(RangeError);
    expect(() => new AuthFailureLimiter({ windowMs: 0 })).toThrow(RangeError);
    expect(() => new AuthFailureLimiter({ maxAddresses: 0 })).toThrow(RangeError);
  });
});

describe('installAuthRateLimit', () => {
  let app: FastifyInstance;
  afterEach(async () => {
    await app?.close();
  });

  async function build() {
    clock = 1_000_000;
    app = Fastify();
    const limiter = installAuthRateLimit(app, { maxFailures: 3, windowMs: 60_000, now });
    const guard =
      (key: string) => async (request: { headers: Record<string, unknown> }, reply: FastifyReply) => {
        if (request.headers['x-key'] !== key) return reply.code(401).send({ code: 'SY_HTTP_UNAUTHORIZED' });
        return reply.code(202).send({ ok: true });
      };
    app.post('/hooks/:instance', guard('good'));
    app.post('/hooks/:instance/*', guard('good'));
    app.get('/v1/subscriptions', guard('admin'));
    app.get('/healthz', async () => ({ ok: true }));
    await app.ready();
    return limiter;
  }

  const isHook = (url: string) => decodeURIComponent(url).startsWith('/hooks/');
  const hit = (url: string, ip: string, key?: string) =>
    app.inject({
      method: isHook(url) ? 'POST' : 'GET',
      url,
      remoteAddress: ip,
      headers: { 'content-type': 'application/json', ...(key ? { 'x-key': key } : {}) },
      ...(isHook(url) ? { payload: '{}' } : {}),
    });

  it('answers 429 problem+json with Retry-After after repeated failures: on the admin API before any credential check', async () => {
    await build();
    for (let i = 0; i < 3; i++)
      expect((await hit('/v1/subscriptions', '198.51.100.7', 'wrong')).statusCode).toBe(401);
    // Even the right token is refused now: the limited address gets no more answers to learn from.
    const limited = await hit('/v1/subscriptions', '198.51.100.7', 'admin');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.headers['retry-after']).toBe('60');
    expect(limited.json()).toMatchObject({
      status: 429,
      code: 'SY_HTTP_TOO_MANY_AUTH_FAILURES',
      instance: '/v1/subscriptions',
    });
    // Failures count per target: the instances still answer that address.
    expect((await hit('/hooks/other', '198.51.100.7', 'good')).statusCode).toBe(202);
    // Other addresses and unprotected paths are not affected.
    expect((await hit('/v1/subscriptions', '198.51.100.8', 'admin')).statusCode).toBe(202);
    expect((await hit('/healthz', '198.51.100.7')).statusCode).toBe(200);
    clock += 60_001;
    expect((await hit('/v1/subscriptions', '198.51.100.7', 'admin')).statusCode).toBe(202);
  });

  it('serves the right vendor key from an address limited on that instance (a shared egress), and keeps answering guesses 429', async () => {
    const limiter = await build();
    const ip = '198.51.100.7';
    for (let i = 0; i < 3; i++) expect((await hit('/hooks/shop', ip, `bad-${i}`)).statusCode).toBe(401);
    // The vendor's other webhooks, from the same fleet address, with the right key: served.
    expect((await hit('/hooks/shop', ip, 'good')).statusCode).toBe(202);
    expect((await hit('/hooks/shop/x', ip, 'good')).statusCode).toBe(202);
    // Every further guess is refused 429 problem+json with Retry-After, never a plain 401, and counts.
    clock += 30_000;
    for (let i = 0; i < 5; i++) {
      const guess = await hit('/hooks/shop', ip, `guess-${i}`);
      expect(guess.statusCode).toBe(429);
      expect(guess.headers['content-type']).toContain('application/problem+json');
      // Until the oldest of the last 3 failures leaves the window: 30 s, then 60 s once the guesses fill it.
      expect(guess.headers['retry-after']).toBe(i < 2 ? '30' : '60');
      expect(guess.json()).toMatchObject({ status: 429, code: 'SY_HTTP_TOO_MANY_AUTH_FAILURES' });
    }
    // The guesses keep the address limited: once the first failures age out, the later ones remain.
    clock += 30_001;
    expect(limiter.check(limitKey(ip, 'instance:shop'), ip).limited).toBe(true);
    expect((await hit('/hooks/shop', ip, 'another-guess')).statusCode).toBe(429);
    expect((await hit('/hooks/shop', ip, 'good')).statusCode).toBe(202);
  });

  it('never counts successes, and counts admin failures for the admin API only', async () => {
    const limiter = await build();
    for (let i = 0; i < 50; i++)
      expect((await hit('/hooks/shop', '203.0.113.1', 'good')).statusCode).toBe(202);
    expect(limiter.size).toBe(0);
    for (let i = 0; i < 2; i++) await hit('/v1/subscriptions', '203.0.113.1', 'wrong');
    await hit('/hooks/shop', '203.0.113.1');
    expect((await hit('/hooks/shop', '203.0.113.1', 'good')).statusCode).toBe(202);
    expect(limiter.size).toBe(2);
    await hit('/v1/subscriptions', '203.0.113.1', 'wrong');
    expect((await hit('/v1/subscriptions', '203.0.113.1', 'admin')).statusCode).toBe(429);
  });

  it('names the target of each matched route', () => {
    const route = (url: string | undefined, params: Record<string, string> = {}, more = {}) =>
      authTargetOf({ url, params, ...more });
    expect(route('/hooks/:instance', { instance: 'dp-main' })).toBe('instance:dp-main');
    expect(route('/hooks/:instance/*', { instance: 'dp-main', '*': 'cancellation' })).toBe(
      'instance:dp-main',
    );
    expect(route('/v1/subscriptions')).toBe('admin');
    expect(route('/ui/session')).toBe('admin');
    expect(route('/fhir/r4/:type/:id', { type: 'Appointment', id: '1' })).toBe('fhir');
    // Credentials of their own: a subscription's feed secret, a command credential.
    expect(route('/v1/subscriptions/:id/events', { id: 'crm' }, { auth: 'subscription' })).toBe('feed:crm');
    expect(route('/v1/commands', {}, { auth: 'command', bearer: 'sycmd_x' })).toBe('command');
    // The commands routes take the admin token too: anything not sycmd_ is an admin guess.
    expect(route('/v1/commands', {}, { auth: 'command', bearer: 'guess' })).toBe('admin');
    expect(route('/v1/commands', {}, { auth: 'command' })).toBe('admin');
    expect(route('/v1/openapi.json', {}, { auth: 'none' })).toBeUndefined();
    expect(route('/ui/')).toBeUndefined();
    expect(route('/healthz')).toBeUndefined();
    expect(route(undefined)).toBeUndefined();
  });

  it('checks while limited the credentials no request rate can guess, not the admin token', () => {
    for (const target of ['instance:quable-main', 'feed:crm', 'command'])
      expect(checkedWhileLimited(target)).toBe(true);
    for (const target of ['admin', 'fhir']) expect(checkedWhileLimited(target)).toBe(false);
  });

  it('counts a percent-encoded path against the target of the route it reaches', async () => {
    await build();
    for (const url of ['/%68ooks/shop', '/hooks/sh%6Fp', '/%68ooks/sh%6Fp/x'])
      expect((await hit(url, '198.51.100.9', 'bad')).statusCode).toBe(401);
    expect((await hit('/hooks/shop', '198.51.100.9', 'bad')).statusCode).toBe(429);
    for (let i = 0; i < 3; i++)
      expect((await hit('/%761/subscriptions', '198.51.100.9', 'wrong')).statusCode).toBe(401);
    expect((await hit('/v1/subscriptions', '198.51.100.9', 'admin')).statusCode).toBe(429);
  });

  it('does not count failures on unprotected paths', async () => {
    const limiter = await build();
    for (let i = 0; i < 10; i++)
      await app.inject({ method: 'GET', url: '/nowhere', remoteAddress: '192.0.2.1' });
    expect(limiter.size).toBe(0);
    expect((await hit('/hooks/shop', '192.0.2.1', 'good')).statusCode).toBe(202);
  });
});
