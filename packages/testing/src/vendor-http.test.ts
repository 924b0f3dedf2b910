import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isConnectorError } from '@switchyard/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchVendorHttp } from './vendor-http.ts';

let server: Server;
let base: string;
const seen: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.url === '/empty-json') {
        res.writeHead(204, { 'content-type': 'application/json' }).end();
      } else if (req.url === '/broken-json') {
        res.writeHead(502, { 'content-type': 'application/json' }).end('<html>bad gateway</html>');
      } else if (req.url === '/moved') {
        res.writeHead(302, { location: '/elsewhere' }).end();
      } else if (req.url === '/slow') {
        setTimeout(() => res.writeHead(200).end('late'), 500);
      } else {
        res
          .writeHead(404, { 'content-type': 'application/problem+json', 'Retry-After': '3' })
          .end('{"title":"nope"}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('fetchVendorHttp', () => {
  it('resolves for every status, parsing JSON answers and lowercasing header names', async () => {
    const res = await fetchVendorHttp.request({ url: `${base}/missing` });
    expect(res).toMatchObject({ status: 404, body: { title: 'nope' }, headers: { 'retry-after': '3' } });
    expect(seen.at(-1)).toMatchObject({ method: 'GET', headers: { accept: 'application/json' } });
  });

  it('gives an empty or unparsable JSON answer as its text, not a SyntaxError', async () => {
    expect((await fetchVendorHttp.request({ url: `${base}/empty-json` })).body).toBe('');
    expect((await fetchVendorHttp.request({ url: `${base}/broken-json` })).body).toBe(
      '<html>bad gateway</html>',
    );
  });

  it('sends json and forms as the hub does, POST by default', async () => {
    await fetchVendorHttp.request({ url: `${base}/x`, json: { a: 1 } });
    expect(seen.at(-1)).toMatchObject({
      method: 'POST',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json' },
    });
    await fetchVendorHttp.request({ method: 'PUT', url: `${base}/x`, form: { a: 'b c' } });
    expect(seen.at(-1)).toMatchObject({
      method: 'PUT',
      body: 'a=b+c',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  });

  it('answers a redirect instead of following it', async () => {
    const before = seen.length;
    expect((await fetchVendorHttp.request({ url: `${base}/moved` })).status).toBe(302);
    expect(seen.length).toBe(before + 1);
  });

  it('throws a transient ConnectorError on a timeout and on a refused connection', async () => {
    const late = await fetchVendorHttp
      .request({ url: `${base}/slow`, timeoutMs: 50 })
      .catch((e: unknown) => e);
    expect(isConnectorError(late) && [late.kind, late.message]).toEqual([
      'transient',
      `vendor API GET ${base} timed out after 50 ms`,
    ]);
    const refused = await fetchVendorHttp.request({ url: 'http://127.0.0.1:1/x' }).catch((e: unknown) => e);
    expect(isConnectorError(refused) && refused.kind).toBe('transient');
  });
});
