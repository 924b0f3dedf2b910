/**
 * The dashboard over plain HTTP as a TLS-terminating proxy forwards it: its files answer what the
 * static file server refuses (a path that climbs out of the page's folder, a precondition or range
 * that cannot be met) with a problem whose code says so, never `SY_HTTP_MALFORMED_BODY`, which
 * docs/errors.md keeps for an admin body that is not JSON; and its session cookie is `Secure` when
 * the request came for the hub's https `server.publicUrl`.
 */
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { rawRequest } from '../reliability/raw-http.test-support.ts';
import { uiPlugin } from './plugin.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  server = await listen(hub, { plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })] });
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

/** A request written as is (fetch resolves `..` before sending and sets its own `Host`). */
function raw(base: string, requestLine: string, headers: Record<string, string> = {}, body = '') {
  const { host, port } = new URL(base);
  const lines = [requestLine, ...('host' in headers ? [] : [`host: ${host}`])];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return rawRequest(Number(port), lines.join('\r\n'), Buffer.from(body));
}

it('a dashboard path climbing out of its folder is not found, as any file the page does not have', async () => {
  for (const target of ['/ui/../../package.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui//etc/passwd']) {
    const r = await raw(server.base, `GET ${target} HTTP/1.1`);
    expect(r.status, target).toBe(404);
    expect(JSON.parse(r.body).code, target).toBe('SY_HTTP_NOT_FOUND');
  }
});

it('a precondition or range a dashboard file cannot meet keeps its status, with a code that says the request was at fault', async () => {
  const range = await call(server.base, 'GET', '/ui/app.js', {
    token: null,
    headers: { range: 'bytes=99999999-' },
  });
  expect(range.status).toBe(416);
  expect(range.headers.get('content-type')).toContain('application/problem+json');
  expect(range.json).toMatchObject({ status: 416, code: 'SY_HTTP_BAD_REQUEST' });
  const precondition = await call(server.base, 'GET', '/ui/app.js', {
    token: null,
    headers: { 'if-match': '"not-this-one"' },
  });
  expect(precondition.status).toBe(412);
  expect(precondition.json).toMatchObject({ status: 412, code: 'SY_HTTP_BAD_REQUEST' });
  // The file itself is served.
  expect((await call(server.base, 'GET', '/ui/app.js', { token: null })).status).toBe(200);
});

it('marks the session cookie Secure for a request to the https public URL, behind a proxy not listed in trustedProxies', async () => {
  const proxied = await listen(hub, {
    plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN, publicUrl: 'https://hub.example.org/' })],
  });
  try {
    const signIn = (host: string) =>
      raw(
        proxied.base,
        'POST /ui/session HTTP/1.1',
        { host, 'x-switchyard-ui': '1', 'content-type': 'application/json' },
        JSON.stringify({ token: ADMIN_TOKEN }),
      );
    const cookieOf = (headers: Record<string, string>) => headers['set-cookie'];
    // The browser reached https://hub.example.org; the proxy forwards plain HTTP with that Host.
    // Before: no Secure (the hub saw http), so a browser sent the session id over any plain-HTTP
    // request to that host (a typed http:// address the proxy redirects), readable on the network.
    const publicSide = await signIn('hub.example.org');
    expect(publicSide.status).toBe(204);
    expect(cookieOf(publicSide.headers)).toMatch(/; Secure$/);
    // Reached directly on its own address over HTTP (an operator on the internal network): a
    // Secure cookie would never come back, so none is set there.
    const direct = await signIn(new URL(proxied.base).host);
    expect(direct.status).toBe(204);
    expect(cookieOf(direct.headers)).toMatch(/^sy_ui_session=/);
    expect(cookieOf(direct.headers)).not.toContain('Secure');
  } finally {
    await proxied.close();
  }
});

it('the page and its vendored modules carry an ETag and answer 304 to a current copy, as its own files do', async () => {
  // They were sent whole on every load (no-cache without a validator): preact and htm again each
  // time. Raw requests: fetch adds `cache-control: no-cache` to a conditional request, which a
  // browser revalidating its cache does not send (and the static file server then answers 200).
  for (const path of ['/ui/', '/ui/vendor/preact.mjs', '/ui/app.js']) {
    const first = await call(server.base, 'GET', path, { token: null });
    expect(first.status, path).toBe(200);
    const etag = first.headers.get('etag');
    expect(etag, path).toBeTruthy();
    expect(first.headers.get('cache-control'), path).toContain('no-cache');
    const again = await raw(server.base, `GET ${path} HTTP/1.1`, {
      'if-none-match': etag!,
      connection: 'close',
    });
    expect(again.status, path).toBe(304);
  }
});
