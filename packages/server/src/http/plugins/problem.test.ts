import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { rawRequest } from '../../reliability/raw-http.test-support.ts';
import { serverOptions } from '../app.ts';
import { RouteTable } from '../route-table.ts';
import { installProblemHandling } from './problem.ts';

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(): Promise<number> {
  const routes = new RouteTable();
  app = Fastify({ return503OnClosing: false, ...serverOptions(undefined) });
  app.addHook('onRoute', (route) => routes.add(route));
  installProblemHandling(app, routes);
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

describe('installProblemHandling', () => {
  it('answers an HTTP/1.1 request without Host with a 400 problem, and an HTTP/1.0 one as usual', async () => {
    const port = await start();
    // Node's own check answered a bare 400 with an empty chunked body.
    const noHost = await rawRequest(port, 'GET /healthz HTTP/1.1');
    expect(noHost.status).toBe(400);
    expect(noHost.headers['content-type']).toContain('application/problem+json');
    expect(JSON.parse(noHost.body)).toMatchObject({
      code: 'SY_HTTP_BAD_REQUEST',
      status: 400,
      detail: expect.stringContaining('Host'),
    });
    const withHost = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x');
    expect(withHost.status).toBe(200);
    // HTTP/1.0 has no Host header to require.
    const old = await rawRequest(port, 'GET /healthz HTTP/1.0');
    expect(old.status).toBe(200);
  });

  it('answers an Expect it cannot meet with a 417 problem and closes the connection, before the body', async () => {
    const port = await start();
    // Node's own answer was a bare 417 on a connection kept alive, whose unread body was then
    // parsed as the next request.
    const a = await rawRequest(
      port,
      'POST /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok',
      Buffer.from('{}'),
    );
    expect(a.status).toBe(417);
    expect(a.headers['content-type']).toContain('application/problem+json');
    expect(a.headers.connection?.toLowerCase()).toBe('close');
    expect(JSON.parse(a.body)).toMatchObject({
      code: 'SY_HTTP_BAD_REQUEST',
      status: 417,
      instance: '/healthz',
      detail: expect.stringContaining('200-ok'),
    });
  });
});
