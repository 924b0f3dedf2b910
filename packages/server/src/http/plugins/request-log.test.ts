import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
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
): Promise<{ app: FastifyInstance; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  app = Fastify({ loggerInstance: logger, ...requestLogOptions() }) as unknown as FastifyInstance;
  installRequestLog(app);
  app.post('/hooks/:instance/:key', async () => ({ ok: true }));
  await app.ready();
  return { app, lines };
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
});
