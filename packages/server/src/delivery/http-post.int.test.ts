import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeDeliveryAgents, DELIVERY_SOCKETS_PER_ORIGIN, postWebhook } from './http-post.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  socketId: number;
}

async function startServer(handler: Handler, tls?: { key: Buffer; cert: Buffer }) {
  const seen: Seen[] = [];
  let sockets = 0;
  const socketIds = new WeakMap<object, number>();
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body,
        socketId: socketIds.get(req.socket)!,
      });
      handler(req, res, body);
    });
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  server.on(tls ? 'secureConnection' : 'connection', (socket) => {
    sockets += 1;
    socketIds.set(socket, sockets);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const servers: Array<{ close: () => Promise<void> }> = [];
async function serve(handler: Handler, tls?: { key: Buffer; cert: Buffer }) {
  const server = await startServer(handler, tls);
  servers.push(server);
  return server;
}

afterEach(async () => {
  closeDeliveryAgents();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const body = JSON.stringify({ id: 'evt_1', type: 'appointment.created' });
const base = { body, timeoutMs: 5_000, allowLoopback: true };

describe('postWebhook', () => {
  it('POSTs the body and headers and reports a 2xx with its snippet', async () => {
    const server = await serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks'),
    );
    const result = await postWebhook({
      ...base,
      url: `${server.url}/hook?x=1`,
      headers: { 'webhook-id': 'evt_1' },
    });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'thanks' });
    expect(result.errorKind).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.seen).toHaveLength(1);
    const [req] = server.seen;
    expect(req).toMatchObject({ method: 'POST', url: '/hook?x=1', body });
    expect(req!.headers).toMatchObject({
      'webhook-id': 'evt_1',
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    });
  });

  it('reports non-2xx answers as http failures with status, snippet and Retry-After', async () => {
    const server = await serve((_req, res) => res.writeHead(503, { 'retry-after': '120' }).end('busy'));
    const result = await postWebhook({ ...base, url: server.url, headers: {} });
    expect(result).toMatchObject({
      ok: false,
      status: 503,
      errorKind: 'http',
      error: 'HTTP 503',
      responseSnippet: 'busy',
      retryAfterMs: 120_000,
    });
  });

  it('gives a snippet Postgres can store: NUL bytes of the answer become U+FFFD', async () => {
    // A NUL failed the attempt's record (text column), and the delivery was sent again forever.
    const server = await serve((_req, res) => res.writeHead(200).end(Buffer.from([0x6f, 0x6b, 0x00, 0x21])));
    const result = await postWebhook({ ...base, url: server.url, headers: {} });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'ok\uFFFD!' });
  });

  it('never follows redirects', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/start') res.writeHead(307, { location: '/elsewhere' }).end();
      else res.writeHead(200).end('followed');
    });
    const result = await postWebhook({ ...base, url: `${server.url}/start`, headers: {} });
    expect(result).toMatchObject({ ok: false, status: 307, errorKind: 'http' });
    expect(result.error).toMatch(/redirect/);
    expect(server.seen.map((s) => s.url)).toEqual(['/start']);
  });

  it('reads at most maxResponseBytes of a large answer', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const block = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 64; i += 1) res.write(block);
      res.end();
    });
    const result = await postWebhook({ ...base, url: server.url, headers: {}, maxResponseBytes: 100 });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(result.responseSnippet).toBe('x'.repeat(100));
    expect(result.responseTruncated).toBe(true);
    const short = await serve((_req, res) => res.writeHead(200).end('x'.repeat(99)));
    const whole = await postWebhook({ ...base, url: short.url, headers: {}, maxResponseBytes: 100 });
    expect(whole).toMatchObject({ ok: true, responseSnippet: 'x'.repeat(99) });
    expect(whole.responseTruncated).toBeUndefined();
  });

  it('times out when the subscriber never answers', async () => {
    const server = await serve(() => {
      // never answers
    });
    const result = await postWebhook({ ...base, url: server.url, headers: {}, timeoutMs: 200 });
    expect(result).toMatchObject({ ok: false, errorKind: 'timeout' });
    expect(result.status).toBeUndefined();
    expect(server.seen).toHaveLength(1);
  });

  it("does not count the wait for one of the origin's busy connections against the timeout", async () => {
    // Every connection busy for 400 ms: the requests beyond them wait ~400 ms for one, then get
    // their own 400 ms, inside a 600 ms budget only if the wait is not counted.
    const server = await serve((_req, res) => {
      setTimeout(() => res.writeHead(204).end(), 400);
    });
    const n = DELIVERY_SOCKETS_PER_ORIGIN + 4;
    const results = await Promise.all(
      Array.from({ length: n }, () => postWebhook({ ...base, url: server.url, headers: {}, timeoutMs: 600 })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(n).fill(204));
    expect(new Set(server.seen.map((s) => s.socketId)).size).toBe(DELIVERY_SOCKETS_PER_ORIGIN);
    // The subscriber's time, not the queue's: every latency near its 400 ms, none near 800.
    for (const r of results) expect(r.latencyMs).toBeLessThan(700);
  });

  it('gives up, unsent, a request that waited its whole timeout for a connection', async () => {
    const server = await serve(() => {
      // never answers: the first requests hold every connection for their long timeouts
    });
    const holding = Array.from({ length: DELIVERY_SOCKETS_PER_ORIGIN }, () =>
      postWebhook({ ...base, url: server.url, headers: {}, timeoutMs: 3_000 }),
    );
    const queued = await postWebhook({ ...base, url: server.url, headers: {}, timeoutMs: 150 });
    expect(queued).toMatchObject({ ok: false, errorKind: 'timeout' });
    expect(queued.error).toMatch(/^not sent: no connection to the subscriber came free within 150 ms/);
    expect(server.seen).toHaveLength(DELIVERY_SOCKETS_PER_ORIGIN);
    closeDeliveryAgents();
    await Promise.all(holding);
  });

  it("sends approver calls on connections of their own, never queued behind the deliveries' or each other", async () => {
    const server = await serve((req, res) => {
      if (req.url === '/approve') res.writeHead(204).end();
      // /events never answers: those deliveries hold every delivery connection to the origin
    });
    // The deliveries hold their connections for 10 s; an approver call queued behind them would
    // time out at 1.5 s (150 ms lost 20 of 40 under CI's load, on the connections' set-up alone).
    const holding = Array.from({ length: DELIVERY_SOCKETS_PER_ORIGIN }, () =>
      postWebhook({ ...base, url: `${server.url}/events`, headers: {}, timeoutMs: 10_000 }),
    );
    const n = DELIVERY_SOCKETS_PER_ORIGIN + 8;
    const approvals = await Promise.all(
      Array.from({ length: n }, () =>
        postWebhook({
          ...base,
          url: `${server.url}/approve`,
          headers: {},
          timeoutMs: 1_500,
          pool: 'approvers',
        }),
      ),
    );
    expect(approvals.map((r) => r.status)).toEqual(Array(n).fill(204));
    closeDeliveryAgents();
    await Promise.all(holding);
  });

  it('reads the body of an answer whose status came before bodyBy until then at most; a later status as usual', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/trickle') {
        res.writeHead(409, { 'content-type': 'application/json' });
        res.write('{"reason":"sl');
        return; // never ends
      }
      setTimeout(() => res.writeHead(200).end('{"decision":"approve"}'), 300);
    });
    const trickle = await postWebhook({
      ...base,
      url: `${server.url}/trickle`,
      headers: {},
      timeoutMs: 10_000,
      bodyBy: Date.now() + 200,
    });
    expect(trickle).toMatchObject({ status: 409, responseSnippet: '{"reason":"sl', responseTruncated: true });
    const late = await postWebhook({
      ...base,
      url: `${server.url}/late`,
      headers: {},
      timeoutMs: 10_000,
      bodyBy: Date.now() + 50,
    });
    expect(late).toMatchObject({ status: 200, responseSnippet: '{"decision":"approve"}' });
    expect(late.responseTruncated).toBeUndefined();
  });

  it('keeps the status when the deadline hits while the body is still streaming', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200);
      res.write('partial');
      // never ends
    });
    const result = await postWebhook({ ...base, url: server.url, headers: {}, timeoutMs: 300 });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'partial' });
  });

  it('reports a refused connection as a network failure without throwing', async () => {
    const server = await serve(() => {});
    const url = server.url;
    await server.close();
    servers.length = 0;
    const result = await postWebhook({ ...base, url, headers: {} });
    expect(result).toMatchObject({ ok: false, errorKind: 'network' });
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('refuses loopback unless allowed, without sending anything', async () => {
    const server = await serve((_req, res) => res.end());
    const result = await postWebhook({ url: server.url, headers: {}, body, timeoutMs: 5_000 });
    expect(result).toMatchObject({ ok: false, errorKind: 'ssrf' });
    expect(result.error).toMatch(/loopback/);
    expect(server.seen).toHaveLength(0);
    const bad = await postWebhook({ ...base, url: 'ftp://127.0.0.1/', headers: {} });
    expect(bad).toMatchObject({ ok: false, errorKind: 'ssrf' });
  });

  it('checks the addresses a name resolves to with the given lookup', async () => {
    const server = await serve((_req, res) => res.end('ok'));
    const evil = await postWebhook({
      url: `http://public.example:${server.port}/`,
      headers: {},
      body,
      timeoutMs: 5_000,
      lookup: async () => ['127.0.0.1'],
    });
    expect(evil).toMatchObject({ ok: false, errorKind: 'ssrf' });
    const missing = await postWebhook({
      ...base,
      url: `http://nowhere.invalid:${server.port}/`,
      headers: {},
      lookup: async () => [],
    });
    expect(missing).toMatchObject({ ok: false, errorKind: 'network' });
    expect(server.seen).toHaveLength(0);
  });

  it('connects to the pinned address, never resolving the name again, and keeps the Host header', async () => {
    const server = await serve((_req, res) => res.end('pinned'));
    const result = await postWebhook({
      ...base,
      url: `http://hooks.test:${server.port}/in`,
      headers: {},
      pinnedAddresses: ['127.0.0.1'],
    });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'pinned' });
    expect(server.seen[0]!.headers.host).toBe(`hooks.test:${server.port}`);
  });

  it("checks and pins an approver call's destination as a delivery's: its own pool is no way around the SSRF check", async () => {
    const server = await serve((_req, res) => res.end('pinned'));
    const approver = { body, timeoutMs: 5_000, headers: {}, pool: 'approvers' as const };
    // Loopback by literal, by a name resolving to it, and a rebinding name (public when checked, then
    // loopback): refused or sent to the checked address only, never to the server.
    expect(await postWebhook({ ...approver, url: server.url })).toMatchObject({
      ok: false,
      errorKind: 'ssrf',
    });
    let lookups = 0;
    const rebinding = async () => (lookups++ === 0 ? ['93.184.215.14'] : ['127.0.0.1']);
    const url = `http://rebind.example:${server.port}/`;
    const first = await postWebhook({ ...approver, url, lookup: rebinding, timeoutMs: 300 });
    expect(first.errorKind === 'network' || first.errorKind === 'timeout').toBe(true);
    expect(await postWebhook({ ...approver, url, lookup: rebinding })).toMatchObject({
      ok: false,
      errorKind: 'ssrf',
    });
    expect(
      await postWebhook({ ...approver, url: server.url, pinnedAddresses: ['93.184.215.14'] }),
    ).toMatchObject({ ok: false, errorKind: 'ssrf' });
    expect(server.seen).toHaveLength(0);
    // Allowed and pinned, it goes to the pinned address.
    const pinned = await postWebhook({
      ...approver,
      url: `http://hooks.test:${server.port}/in`,
      pinnedAddresses: ['127.0.0.1'],
    });
    expect(pinned).toMatchObject({ ok: true, status: 200, responseSnippet: 'pinned' });
  });

  it('refuses an IP literal URL that is not among the pinned addresses', async () => {
    const server = await serve((_req, res) => res.end());
    const result = await postWebhook({
      ...base,
      url: server.url,
      headers: {},
      pinnedAddresses: ['93.184.215.14'],
    });
    expect(result).toMatchObject({ ok: false, errorKind: 'ssrf' });
    expect(server.seen).toHaveLength(0);
  });

  it('reuses a keep-alive connection for the same origin', async () => {
    const server = await serve((_req, res) => res.end('ok'));
    for (let i = 0; i < 3; i += 1) {
      expect((await postWebhook({ ...base, url: server.url, headers: {} })).ok).toBe(true);
    }
    expect(new Set(server.seen.map((s) => s.socketId)).size).toBe(1);
  });

  it('resends once on a fresh connection when a reused connection was closed by the server', async () => {
    let calls = 0;
    const server = await serve((req, res) => {
      calls += 1;
      if (calls === 2) {
        req.socket.destroy();
        return;
      }
      res.end('ok');
    });
    expect((await postWebhook({ ...base, url: server.url, headers: {} })).ok).toBe(true);
    const second = await postWebhook({ ...base, url: server.url, headers: {} });
    expect(second).toMatchObject({ ok: true, status: 200 });
    expect(calls).toBe(3);
  });
});

let tlsDir: string | undefined;
let tls: { key: Buffer; cert: Buffer } | undefined;
beforeAll(() => {
  try {
    tlsDir = mkdtempSync(join(tmpdir(), 'sy-delivery-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=hooks.test',
        '-addext',
        'subjectAltName=DNS:hooks.test',
        '-keyout',
        join(tlsDir, 'key.pem'),
        '-out',
        join(tlsDir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    tls = { key: readFileSync(join(tlsDir, 'key.pem')), cert: readFileSync(join(tlsDir, 'cert.pem')) };
  } catch {
    tls = undefined;
  }
});
afterAll(() => {
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
});

describe('postWebhook over https', () => {
  it('verifies the certificate against the URL host while connecting to the pinned address', async () => {
    if (!tls) throw new Error('openssl is needed to make a test certificate');
    const server = await serve((_req, res) => res.end('secure'), tls);
    const url = `https://hooks.test:${server.port}/`;
    const result = await postWebhook({
      ...base,
      url,
      headers: {},
      pinnedAddresses: ['127.0.0.1'],
      ca: tls.cert,
    });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'secure' });
    const untrusted = await postWebhook({ ...base, url, headers: {}, pinnedAddresses: ['127.0.0.1'] });
    expect(untrusted).toMatchObject({ ok: false, errorKind: 'network' });
  });
});
