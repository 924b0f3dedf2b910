/**
 * The dashboard's files answer what the static file server refuses (a path that climbs out of the
 * page's folder, a precondition or range that cannot be met) with a problem whose code says so,
 * never `SY_HTTP_MALFORMED_BODY`, which docs/errors.md keeps for an admin body that is not JSON.
 */
import { connect } from 'node:net';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
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

/** A GET written as is (fetch resolves `..` before sending), answered with its status and body. */
function rawGet(base: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(Number(port), hostname, () =>
      socket.write(`GET ${target} HTTP/1.1\r\nhost: ${hostname}:${port}\r\nconnection: close\r\n\r\n`),
    );
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () =>
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0),
        body: answer.slice(answer.indexOf('\r\n\r\n') + 4),
      }),
    );
  });
}

it('a dashboard path climbing out of its folder is not found, as any file the page does not have', async () => {
  for (const target of ['/ui/../../package.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui//etc/passwd']) {
    const r = await rawGet(server.base, target);
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
