import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../logging/logger.ts';
import { installRequestLog, requestLogOptions } from './request-log.ts';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** An app set up as the hub's (logger, request log options and hook) with one route; the lines it logs. */
async function appLogging(
  level: 'info' | 'debug',
): Promise<{ app: FastifyInstance; lines: Record<string, unknown>[]; children: () => number }> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const child = vi.spyOn(logger, 'child');
  app = Fastify({ loggerInstance: logger, ...requestLogOptions() }) as unknown as FastifyInstance;
  installRequestLog(app);
  app.post('/hooks/:instance/:key', async () => ({ ok: true }));
  app.get('/warns', async (request) => {
    request.log.warn({ detail: 1 }, 'a warning');
    request.log.debug('below the level');
    return { ok: true };
  });
  await app.ready();
  // Fastify makes children of its own while it starts; only the requests' count here.
  child.mockClear();
  return { app, lines, children: () => child.mock.calls.length };
}

describe('request log', () => {
  it('writes no line per request at the default level', async () => {
    const { app, lines } = await appLogging('info');
    for (let i = 0; i < 5; i++) {
      const r = await app.inject({ method: 'POST', url: '/hooks/cw/path-secret', payload: { a: 1 } });
      expect(r.statusCode).toBe(200);
    }
    expect(lines).toEqual([]);
  });

  it('writes one line per request at debug, with the URL redacted, the status and the time', async () => {
    const { app, lines } = await appLogging('debug');
    await app.inject({ method: 'POST', url: '/hooks/cw/path-secret', payload: { a: 1 } });
    await app.inject({ method: 'GET', url: '/missing' });
    expect(lines.map((l) => l.msg)).toEqual(['request completed', 'request completed']);
    expect(lines[0]).toMatchObject({
      level: 20,
      req: { method: 'POST', url: '/hooks/cw/[redacted]' },
      res: { statusCode: 200 },
    });
    expect(typeof lines[0]!.responseTime).toBe('number');
    expect(lines[1]).toMatchObject({ res: { statusCode: 404 } });
    expect(JSON.stringify(lines)).not.toContain('path-secret');
  });

  it('makes no child logger for a request that logs nothing', async () => {
    const { app, lines, children } = await appLogging('info');
    await app.inject({ method: 'POST', url: '/hooks/cw/key', payload: { a: 1 } });
    expect(lines).toEqual([]);
    expect(children()).toBe(0);
  });

  it('writes a request’s lines through its child: the reqId is on them', async () => {
    const { app, lines, children } = await appLogging('info');
    await app.inject({ method: 'GET', url: '/warns' });
    await app.inject({ method: 'GET', url: '/warns' });
    expect(lines.map((l) => l.msg)).toEqual(['a warning', 'a warning']);
    expect(lines[0]).toMatchObject({ level: 40, detail: 1, reqId: expect.any(String) });
    expect(lines[0]!.reqId).not.toBe(lines[1]!.reqId);
    expect(children()).toBe(2);
  });
});
