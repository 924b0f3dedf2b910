import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Commands, commandRoutes, createCommands } from '../commands/index.ts';
import { parseConfig } from '../config/load.ts';
import { generateSecret } from '../delivery/sign.ts';
import type { Hub } from '../pipeline/hub.ts';
import { applyFileConfig } from '../runtime/apply.ts';
import { startMemoryTracing } from '../telemetry/memory-tracing.test-support.ts';
import { uiPlugin } from '../ui/plugin.ts';
import {
  ADMIN_TOKEN,
  call,
  hookConnector,
  listen,
  makeHub,
  silent,
  VENDOR_API_KEY,
} from './app.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let commands: Commands;
let server: Awaited<ReturnType<typeof listen>>;
const servers: Awaited<ReturnType<typeof listen>>[] = [];

/** An app of its own (so a limiter of its own) over the hub: each case starts with no failures counted. */
async function freshServer(options: { trustedProxies?: string[] } = {}) {
  const fresh = await listen(hub, {
    ...options,
    authRateLimit: { maxFailures: 3, windowMs: 60_000 },
    plugins: [
      uiPlugin({ hub, adminToken: ADMIN_TOKEN }),
      async (scope) => commandRoutes(scope, { commands, adminToken: ADMIN_TOKEN, db: hub.host.db }),
    ],
  });
  servers.push(fresh);
  return fresh;
}

beforeAll(async () => {
  commands = createCommands({ retentionCron: false });
  hub = await makeHub(database.url(), { ...commands.hooks, queue: true });
  await hub.start();
  await commands.start(hub.host);
  for (const id of ['shop', 'other', 'third'])
    await hub.instances.upsert({ id, connector: 'hooktest', settings: { apiKey: VENDOR_API_KEY } });
  server = await freshServer();
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await commands?.stop();
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
  it('answer 429 problem+json with Retry-After to further wrong keys on that instance (storing nothing), while the right key from the same address is still accepted', async () => {
    for (let i = 0; i < 3; i++) expect((await push('shop', `wrong-${i}`)).status).toBe(401);
    const limited = await push('shop', 'wrong-3');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    expect((await hub.inbound.list({ instanceId: 'shop' })).items).toEqual([]);
    // A shared egress (a vendor's webhook fleet, a NAT): the vendor's own pushes still get in.
    expect((await push('shop', VENDOR_API_KEY)).status).toBe(202);
    expect((await hub.inbound.list({ instanceId: 'shop' })).items).toHaveLength(1);
    expect((await push('shop', 'wrong-4')).status).toBe(429);
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

/**
 * One HTTP/1.1 request written as is (fetch cannot send an absolute-form target or keep a
 * percent-escape of an unreserved character), answered with its status.
 */
function rawRequest(
  base: string,
  requestLine: string,
  headers: Record<string, string>,
  body = '',
): Promise<number> {
  const { hostname, port } = new URL(base);
  const lines = [requestLine, `host: ${hostname}:${port}`, 'connection: close'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body) lines.push(`content-length: ${Buffer.byteLength(body)}`);
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(Number(port), hostname, () =>
      socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`),
    );
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    // A refused push's connection is closed while its body may be unread (a reset may follow the
    // answer): the answer read so far decides, 0 when none came.
    socket.on('error', () => {});
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
  });
}

describe('an IPv6 client is counted by its /64, the least a customer line, a VM or a container is given', () => {
  it('admin token guesses from many addresses of one /64 limit the whole /64, not the next /64 nor IPv4 clients', async () => {
    // Behind a trusted proxy the client address is X-Forwarded-For's: each request picks its own.
    const { base } = await freshServer({ trustedProxies: ['127.0.0.1'] });
    const from = (address: string, token: string) =>
      call(base, 'GET', '/v1/subscriptions', { token, headers: { 'x-forwarded-for': address } });
    // Three addresses of 2001:db8:1:2::/64, one guess each: before, each had 20 a minute of its
    // own, and a /64 holds 2^64 of them (no bound at all).
    for (let i = 1; i <= 3; i++) expect((await from(`2001:db8:1:2::${i}`, `guess-${i}`)).status).toBe(401);
    const limited = await from('2001:db8:1:2:ffff:ffff:ffff:ffff', ADMIN_TOKEN);
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    expect((await from('2001:DB8:1:2:0:0:0:9', ADMIN_TOKEN)).status).toBe(429);
    // Another /64 is another client.
    expect((await from('2001:db8:1:3::1', ADMIN_TOKEN)).status).toBe(200);
    // An IPv4 client is its own address, also as a dual-stack socket shows it (::ffff:a.b.c.d).
    for (let i = 1; i <= 3; i++) expect((await from('::ffff:203.0.113.1', `guess-${i}`)).status).toBe(401);
    expect((await from('203.0.113.1', ADMIN_TOKEN)).status).toBe(429);
    expect((await from('::ffff:203.0.113.2', ADMIN_TOKEN)).status).toBe(200);
  });
});

describe('a proxy that writes the client port into X-Forwarded-For (Azure Application Gateway)', () => {
  it('counts the client, not each of its ports, and hands connectors the address without the port', async () => {
    const { base } = await freshServer({ trustedProxies: ['127.0.0.1'] });
    const from = (address: string, token: string) =>
      call(base, 'GET', '/v1/subscriptions', { token, headers: { 'x-forwarded-for': address } });
    // Each guess on a new connection, so from a new source port: before, each port was a client
    // of its own, and the limit never applied.
    for (let port = 50001; port <= 50003; port++)
      expect((await from(`203.0.113.7:${port}`, `guess-${port}`)).status).toBe(401);
    expect((await from('203.0.113.7:50004', ADMIN_TOKEN)).status).toBe(429);
    expect((await from('203.0.113.7', ADMIN_TOKEN)).status).toBe(429);
    for (let port = 1; port <= 3; port++)
      expect((await from(`[2001:db8:7::1]:${port}`, `guess-${port}`)).status).toBe(401);
    expect((await from('2001:db8:7::2', ADMIN_TOKEN)).status).toBe(429);
    // The connector sees the address (Docplanner's allowedSourceIps compares it): before, with the
    // port, it was no IP and an allowlist refused every push.
    const pushed = await call(base, 'POST', '/hooks/shop', {
      token: null,
      headers: { 'x-api-key': VENDOR_API_KEY, 'x-forwarded-for': '198.51.100.23:61000' },
      body: { id: 'xff-port', type: 'created' },
    });
    expect(pushed.status).toBe(202);
    const stored = await sql<{ source_ip: string }>`
      select source_ip from switchyard.inbound_messages where dedupe_key = 'default:xff-port'`.execute(
      hub.host.db,
    );
    expect(stored.rows.map((r) => r.source_ip)).toEqual(['198.51.100.23']);
  });

  it("names the client without the port in the request span's client.address", async () => {
    // Tracing on before the app is built: the request span's hooks are added only then.
    const { finished, tracing } = await startMemoryTracing();
    try {
      const { base } = await freshServer({ trustedProxies: ['127.0.0.1'] });
      const answer = await call(base, 'GET', '/v1/subscriptions', {
        token: ADMIN_TOKEN,
        headers: { 'x-forwarded-for': '198.51.100.24:61001' },
      });
      expect(answer.status).toBe(200);
      await tracing.flush();
      const spans = finished.filter((s) => s.name === 'GET /v1/subscriptions');
      // Before, the span kept the port, the address the limiter and connectors no longer use.
      expect(spans.map((s) => s.attributes['client.address'])).toEqual(['198.51.100.24']);
    } finally {
      await tracing.shutdown();
    }
  });
});

describe('every way of writing a path counts against the target its route authenticates', () => {
  it('admin token guesses on percent-encoded and absolute-form paths lock the admin API like plain ones', async () => {
    const { base } = await freshServer();
    const wrong = { authorization: 'Bearer not-the-admin-token' };
    // The router decodes the escapes: each of these reaches GET /v1/subscriptions.
    expect(await rawRequest(base, 'GET /%761/subscriptions HTTP/1.1', wrong)).toBe(401);
    expect(await rawRequest(base, 'GET /v%31/%73ubscriptions HTTP/1.1', wrong)).toBe(401);
    expect(await rawRequest(base, `GET ${base}/v1/subscriptions HTTP/1.1`, wrong)).toBe(401);
    const limited = await call(base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN });
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    // Every spelling is limited too, before its credential is looked at.
    const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
    expect(await rawRequest(base, 'GET /%761/subscriptions HTTP/1.1', bearer)).toBe(429);
    expect(await rawRequest(base, `GET ${base}/v1/subscriptions HTTP/1.1`, bearer)).toBe(429);
  });

  it('vendor key guesses on percent-encoded hook paths count against that instance', async () => {
    const { base } = await freshServer();
    const push = (target: string, key: string) =>
      rawRequest(
        base,
        `POST ${target} HTTP/1.1`,
        { 'x-api-key': key, 'content-type': 'application/json' },
        JSON.stringify({ id: `rl-${target}-${key}`, type: 'created' }),
      );
    expect(await push('/%68ooks/shop', 'wrong-1')).toBe(401);
    expect(await push('/hooks/sh%6Fp', 'wrong-2')).toBe(401);
    expect(await push(`${base}/hooks/shop`, 'wrong-3')).toBe(401);
    const limited = await call(base, 'POST', '/hooks/shop', {
      token: null,
      headers: { 'x-api-key': 'wrong-4' },
      body: { id: 'rl-encoded', type: 'created' },
    });
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    // Another instance, spelled the same way, still answers that address.
    expect(await push('/%68ooks/other', VENDOR_API_KEY)).toBe(202);
  });
});

describe('subscriber credentials are targets of their own', () => {
  it('a stale pull-feed secret is refused 429 on that feed only; the right secret is still served', async () => {
    const { base } = await freshServer();
    const created = await call(base, 'POST', '/v1/subscriptions', { body: { id: 'rl-feed', kind: 'pull' } });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    for (let i = 0; i < 3; i++)
      expect(
        (await call(base, 'GET', '/v1/subscriptions/rl-feed/events', { token: `stale-${i}` })).status,
      ).toBe(401);
    expect((await call(base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN })).status).toBe(200);
    const stale = await call(base, 'GET', '/v1/subscriptions/rl-feed/events', { token: 'stale-3' });
    expect(stale.status).toBe(429);
    expect(stale.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    // Another reader of the feed behind the same address, with the secret: at least 24 bytes, no oracle worth having.
    expect((await call(base, 'GET', '/v1/subscriptions/rl-feed/events', { token: secret })).status).toBe(200);
  });

  it('stale sycmd_ command credentials are refused 429 on the command credentials only; a valid one still works', async () => {
    const { base } = await freshServer();
    expect(
      (await call(base, 'POST', '/v1/subscriptions', { body: { id: 'rl-cmd', kind: 'pull' } })).status,
    ).toBe(201);
    const credential = await call(base, 'POST', '/v1/subscriptions/rl-cmd/command-credentials');
    expect(credential.status).toBe(201);
    const token = credential.json.token as string;
    expect(token.startsWith('sycmd_')).toBe(true);
    for (let i = 0; i < 3; i++)
      expect((await call(base, 'GET', '/v1/commands', { token: `sycmd_revoked-${i}` })).status).toBe(401);
    // The admin is not locked out: neither of the admin API nor of the commands routes.
    expect((await call(base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN })).status).toBe(200);
    expect((await call(base, 'GET', '/v1/commands', { token: ADMIN_TOKEN })).status).toBe(200);
    const limited = await call(base, 'GET', '/v1/commands', { token: 'sycmd_revoked-3' });
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe('SY_HTTP_TOO_MANY_AUTH_FAILURES');
    expect((await call(base, 'GET', '/v1/commands', { token })).status).toBe(200);
  });

  it('wrong admin tokens on the commands routes still count against the admin API', async () => {
    const { base } = await freshServer();
    for (let i = 0; i < 3; i++)
      expect((await call(base, 'GET', '/v1/commands', { token: `not-the-admin-${i}` })).status).toBe(401);
    expect((await call(base, 'GET', '/v1/subscriptions', { token: ADMIN_TOKEN })).status).toBe(429);
  });
});

/** The statements sent to Postgres while `run` ran whose text matches `pattern` (every pool's clients). */
async function statementsWhile(pattern: RegExp, run: () => Promise<void>): Promise<number> {
  const spy = vi.spyOn(pg.Client.prototype, 'query');
  try {
    await run();
    return spy.mock.calls.filter(([query]) => {
      const text = typeof query === 'string' ? query : (query as { text?: string } | undefined)?.text;
      return text !== undefined && pattern.test(text);
    }).length;
  } finally {
    spy.mockRestore();
  }
}

describe("a limited address's wrong credentials cost no database read each", () => {
  it('500 wrong sycmd_ guesses from a limited address read the credentials once (not 500 times); the right credential, even one created meanwhile, is still served', async () => {
    const { base } = await freshServer();
    expect(
      (await call(base, 'POST', '/v1/subscriptions', { body: { id: 'rl-cost-cmd', kind: 'pull' } })).status,
    ).toBe(201);
    const created = await call(base, 'POST', '/v1/subscriptions/rl-cost-cmd/command-credentials');
    const token = created.json.token as string;
    const guess = () => `sycmd_${randomBytes(24).toString('base64url')}`;
    for (let i = 0; i < 3; i++)
      expect((await call(base, 'GET', '/v1/commands', { token: guess() })).status).toBe(401);
    const reads = await statementsWhile(/switchyard\.command_credentials/, async () => {
      for (let i = 0; i < 500; i++) {
        // Well-formed guesses and malformed ones: neither reaches the database.
        const wrong = i % 2 === 0 ? guess() : `sycmd_short-${i}`;
        expect((await call(base, 'GET', '/v1/commands', { token: wrong })).status).toBe(429);
      }
    });
    // One read of the credentials in force (at the first guess), not one per guess (500 before).
    expect(reads).toBeLessThanOrEqual(1);
    expect((await call(base, 'GET', '/v1/commands', { token })).status).toBe(200);
    // Created here after the screen was read: the creation makes the next miss read again.
    const later = await call(base, 'POST', '/v1/subscriptions/rl-cost-cmd/command-credentials');
    expect((await call(base, 'GET', '/v1/commands', { token: later.json.token as string })).status).toBe(200);
    expect((await call(base, 'GET', '/v1/commands', { token: guess() })).status).toBe(429);
  });

  it('500 wrong secrets on a pull feed from a limited address read the subscriptions at most once; the right secret is still served', async () => {
    const { base } = await freshServer();
    const created = await call(base, 'POST', '/v1/subscriptions', {
      body: { id: 'rl-cost-feed', kind: 'pull' },
    });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    const feed = '/v1/subscriptions/rl-cost-feed/events';
    for (let i = 0; i < 3; i++)
      expect((await call(base, 'GET', feed, { token: `stale-${i}` })).status).toBe(401);
    const reads = await statementsWhile(/from switchyard\.subscriptions (where id =|order by)/, async () => {
      for (let i = 0; i < 500; i++)
        expect((await call(base, 'GET', feed, { token: randomBytes(32).toString('base64url') })).status).toBe(
          429,
        );
    });
    expect(reads).toBeLessThanOrEqual(1);
    expect((await call(base, 'GET', feed, { token: secret })).status).toBe(200);
  });
});

describe('a feed secret written in this process is served at once to a limited address', () => {
  /**
   * Limits this address on `id`'s feed (three wrong secrets, then a fourth refused 429), which
   * reads the feed's screen of secrets: a secret written after this is one the screen has not seen.
   */
  async function limitedOn(base: string, id: string): Promise<void> {
    const feed = `/v1/subscriptions/${id}/events`;
    for (let i = 0; i < 3; i++)
      expect((await call(base, 'GET', feed, { token: `stale-${i}` })).status).toBe(401);
    expect((await call(base, 'GET', feed, { token: 'stale-3' })).status).toBe(429);
  }
  const read = (base: string, id: string, secret: string) =>
    call(base, 'GET', `/v1/subscriptions/${id}/events`, { token: secret });

  it('a secret rotated through the admin API', async () => {
    const { base } = await freshServer();
    expect(
      (await call(base, 'POST', '/v1/subscriptions', { body: { id: 'rl-rotated', kind: 'pull' } })).status,
    ).toBe(201);
    await limitedOn(base, 'rl-rotated');
    const rotated = await call(base, 'POST', '/v1/subscriptions/rl-rotated/rotate-secret', { body: {} });
    expect(rotated.status).toBe(200);
    // Before: 429 for up to 5 s (the screen read before the rotation still held).
    expect((await read(base, 'rl-rotated', rotated.json.secret as string)).status).toBe(200);
  });

  it('the generated secret of a pull subscription created through the admin API', async () => {
    const { base } = await freshServer();
    await limitedOn(base, 'rl-created'); // not there yet: 401s, as any wrong secret
    const created = await call(base, 'POST', '/v1/subscriptions', {
      body: { id: 'rl-created', kind: 'pull' },
    });
    expect(created.status).toBe(201);
    expect((await read(base, 'rl-created', created.json.secret as string)).status).toBe(200);
  });

  it('a secret the configuration file declares, applied as at start (created, then replaced)', async () => {
    const { base } = await freshServer();
    const apply = async (secret: string) => {
      const parsed = parseConfig(
        [
          'version: 1',
          'subscriptions:',
          '  - id: rl-file',
          '    kind: pull',
          `    secrets: ["${secret}"]`,
          '',
        ].join('\n'),
        { file: '/tmp/switchyard.yaml', connectors: [hookConnector as never], env: {} },
      );
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
      await applyFileConfig(hub, parsed.config, silent);
    };
    await limitedOn(base, 'rl-file');
    const first = generateSecret();
    await apply(first);
    expect((await read(base, 'rl-file', first)).status).toBe(200);
    expect((await read(base, 'rl-file', 'stale-4')).status).toBe(429); // the screen read again
    const second = generateSecret();
    await apply(second);
    expect((await read(base, 'rl-file', second)).status).toBe(200);
  });
});
