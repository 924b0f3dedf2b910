import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isConnectorError, type Logger } from '@switchyard/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVendorHttp } from './vendor-http.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(parts).toString(),
      });
      const path = new URL(req.url!, 'http://x').pathname;
      if (path === '/json')
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end('{"a":[1,2]}');
      else if (path === '/problem')
        res.writeHead(503, { 'content-type': 'application/problem+json' }).end('{"title":"down"}');
      else if (path === '/broken-json')
        res.writeHead(200, { 'content-type': 'application/json' }).end('{nope');
      else if (path === '/text')
        res.writeHead(404, { 'content-type': 'text/plain', 'x-thing': 'y' }).end('not here');
      else if (path === '/empty') res.writeHead(204).end();
      else if (path === '/elsewhere')
        res
          .writeHead(303, { location: `http://localhost:${(server.address() as AddressInfo).port}/inside` })
          .end();
      else if (path === '/inside')
        res.writeHead(200, { 'content-type': 'text/plain' }).end('{"AccessKeyId":"INTERNAL-CANARY"}');
      else if (path === '/huge') res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(5000));
      else if (path === '/slow') setTimeout(() => res.end('late'), 2_000);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"echo":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function recordingLogger() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

describe('createVendorHttp', () => {
  it('GETs and parses JSON answers, reporting headers lowercase', async () => {
    const res = await createVendorHttp().request({ url: `${base}/json`, headers: { Authtoken: 'abc' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ a: [1, 2] });
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const req = seen.at(-1)!;
    expect(req.method).toBe('GET');
    expect(req.headers.authtoken).toBe('abc');
    expect(req.headers.accept).toBe('application/json');
  });

  it('sends JSON bodies as POST by default', async () => {
    await createVendorHttp().request({ url: `${base}/echo`, json: { hello: 'świat' } });
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ method: 'POST', body: '{"hello":"świat"}' });
    expect(req.headers['content-type']).toBe('application/json');
  });

  it('sends forms urlencoded, with any method', async () => {
    await createVendorHttp().request({ method: 'PUT', url: `${base}/echo`, form: { a: '1 2', b: 'x&y' } });
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ method: 'PUT', body: 'a=1+2&b=x%26y' });
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('resolves for every status, parsing +json and returning other bodies as text', async () => {
    const client = createVendorHttp();
    expect(await client.request({ url: `${base}/problem` })).toMatchObject({
      status: 503,
      body: { title: 'down' },
    });
    expect(await client.request({ url: `${base}/text` })).toMatchObject({
      status: 404,
      body: 'not here',
      headers: { 'x-thing': 'y' },
    });
    expect(await client.request({ url: `${base}/broken-json` })).toMatchObject({
      status: 200,
      body: '{nope',
    });
    expect(await client.request({ url: `${base}/empty` })).toMatchObject({ status: 204, body: '' });
  });

  it('throws a transient ConnectorError on timeout, without query secrets or headers in message or logs', async () => {
    const { logger, lines } = recordingLogger();
    const client = createVendorHttp({ logger, defaultTimeoutMs: 100 });
    let caught: unknown;
    try {
      await client.request({
        url: `${base}/slow?api_key=SECRET123`,
        headers: { authorization: 'Bearer TOKEN456' },
      });
    } catch (error) {
      caught = error;
    }
    expect(isConnectorError(caught)).toBe(true);
    expect(caught).toMatchObject({ kind: 'transient', code: 'SY_CONNECTOR_TRANSIENT' });
    expect((caught as Error).message).toBe(`vendor API GET ${base}/slow timed out after 100 ms`);
    const everything = JSON.stringify([
      (caught as Error).message,
      (caught as { details?: unknown }).details,
      lines,
    ]);
    expect(everything).not.toContain('SECRET123');
    expect(everything).not.toContain('TOKEN456');
    expect(lines.some((line) => line.level === 'warn')).toBe(true);
  });

  it('throws a transient ConnectorError when the connection is refused', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/x?token=SECRET`;
    await new Promise((resolve) => closed.close(resolve));
    const promise = createVendorHttp().request({ url });
    await expect(promise).rejects.toMatchObject({ kind: 'transient' });
    await expect(promise).rejects.toThrow(/failed \(ECONNREFUSED\)/);
    await expect(promise).rejects.not.toThrow(/SECRET/);
  });

  it('logs each call at debug without headers or query', async () => {
    const { logger, lines } = recordingLogger();
    await createVendorHttp({ logger }).request({
      url: `${base}/json?key=QSECRET`,
      headers: { 'x-api-key': 'HSECRET' },
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'debug',
      obj: { method: 'GET', url: `${base}/json`, status: 200 },
    });
    expect(JSON.stringify(lines)).not.toMatch(/QSECRET|HSECRET/);
  });

  it('uses the given fetch and refuses json and form together', async () => {
    const calls: string[] = [];
    const fetchImpl = (async (input: string | URL | Request) => {
      calls.push(String(input));
      return new Response('{"ok":1}', { status: 201, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const client = createVendorHttp({ fetchImpl, lookup: async () => ['93.184.216.34'] });
    expect(await client.request({ url: 'https://api.example.com/v1' })).toMatchObject({
      status: 201,
      body: { ok: 1 },
    });
    expect(calls).toEqual(['https://api.example.com/v1']);
    await expect(client.request({ url: 'https://x', json: {}, form: {} })).rejects.toThrow(TypeError);
  });

  it('never calls a cloud metadata endpoint, by address or by a name that resolves there', async () => {
    const { logger, lines } = recordingLogger();
    const client = createVendorHttp({ logger, lookup: async () => ['169.254.169.254'] });
    for (const url of [
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/role',
      'http://metadata.google.internal/computeMetadata/v1/',
      'https://rebinds.example.com/latest',
    ]) {
      const refused = await client.request({ url }).catch((e: unknown) => e);
      expect(refused, url).toMatchObject({ kind: 'permanent', message: expect.stringMatching(/not called/) });
    }
    expect(lines.filter((l) => l.msg === 'vendor API call refused')).toHaveLength(3);
  });

  it('connects to the addresses the check approved, with no second DNS lookup (rebinding)', async () => {
    // The check resolves through `lookup` (here: loopback, which vendor calls may reach); the
    // system resolver knows nothing of `.invalid` names (RFC 6761). A connection that resolved the
    // name again, as global fetch did, failed with ENOTFOUND here; on a real network it went to
    // whatever the name answered the second time (the metadata address, for an attacker's DNS).
    const port = (server.address() as AddressInfo).port;
    const asked: string[] = [];
    const client = createVendorHttp({
      lookup: async (host) => {
        asked.push(host);
        return ['127.0.0.1'];
      },
    });
    const before = seen.length;
    const res = await client.request({ url: `http://vendor-rebind.invalid:${port}/json` });
    expect(res).toMatchObject({ status: 200, body: { a: [1, 2] } });
    expect(asked).toEqual(['vendor-rebind.invalid']);
    expect(seen.slice(before)).toMatchObject([
      { url: '/json', headers: { host: `vendor-rebind.invalid:${port}` } },
    ]);
    // Again (a kept-alive connection of the same checked answer), then a changed answer: refused
    // at the check, never connected.
    expect((await client.request({ url: `http://vendor-rebind.invalid:${port}/json` })).status).toBe(200);
    const moved = createVendorHttp({ lookup: async () => ['169.254.169.254'] });
    await expect(moved.request({ url: `http://vendor-rebind.invalid:${port}/json` })).rejects.toMatchObject({
      kind: 'permanent',
    });
    expect(seen.length).toBe(before + 2);
  });

  it('does not follow redirects: the 3xx is the answer, and nothing reaches the place it names', async () => {
    const before = seen.length;
    const res = await createVendorHttp().request({
      url: `${base}/elsewhere`,
      method: 'PUT',
      headers: { Authtoken: 'vendor-key' },
    });
    expect(res.status).toBe(303);
    expect(JSON.stringify(res.body)).not.toContain('INTERNAL-CANARY');
    expect(seen.slice(before).map((s) => s.url)).toEqual(['/elsewhere']);
  });

  it('reads an answer up to its bound: a longer one fails the call', async () => {
    const client = createVendorHttp({ maxResponseBytes: 4096 });
    await expect(client.request({ url: `${base}/huge` })).rejects.toMatchObject({
      kind: 'permanent',
      message: expect.stringMatching(/answered more than 4096 bytes/),
    });
    expect(
      (await createVendorHttp({ maxResponseBytes: 4096 }).request({ url: `${base}/json` })).body,
    ).toEqual({
      a: [1, 2],
    });
  });

  it("refuses a path with a '.' or '..' segment, which an id put in it would make another path", async () => {
    const before = seen.length;
    const client = createVendorHttp();
    // encodeURIComponent('..') is '..': a booking id '..' in DELETE …/bookings/{id} reached
    // DELETE …/ (the parser resolves dot segments, %2e ones and ones split by a tab included).
    for (const id of ['..', '.', '%2e%2E', '.%2e', '%2E.', '.\t.']) {
      await expect(
        client.request({ url: `${base}/addresses/7/bookings/${id}`, method: 'DELETE' }),
      ).rejects.toMatchObject({ kind: 'permanent', message: expect.stringContaining('segment') });
      await expect(client.request({ url: `${base}/bookings/${id}/json` })).rejects.toMatchObject({
        kind: 'permanent',
      });
    }
    expect(seen.slice(before)).toEqual([]);
    // Dots that are no segment of their own pass, and so do dots in the query.
    for (const path of ['/bookings/1.5', '/bookings/.../json', '/bookings/a..b', '/json?after=..'])
      expect((await client.request({ url: `${base}${path}` })).status).toBe(200);
    expect(seen.slice(before).map((x) => x.url)).toEqual([
      '/bookings/1.5',
      '/bookings/.../json',
      '/bookings/a..b',
      '/json?after=..',
    ]);
  });
});
