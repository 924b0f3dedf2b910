import { describe, expect, it, vi } from 'vitest';
import { lazyChild } from './lazy-child.ts';
import { createLogger } from './logger.ts';

function parentLogging(level: 'info' | 'debug') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const child = vi.spyOn(logger, 'child');
  return { logger, lines, children: () => child.mock.calls.length };
}

describe('lazyChild', () => {
  it('makes no pino child while nothing is written at an enabled level', () => {
    const { logger, lines, children } = parentLogging('info');
    const log = lazyChild(logger, { inbound: 'm1' });
    log.debug({ detail: 1 }, 'below the level');
    expect(log.isLevelEnabled('debug')).toBe(false);
    expect(children()).toBe(0);
    expect(lines).toEqual([]);
  });

  it('writes through one child carrying the bindings, made on the first enabled line', () => {
    const { logger, lines, children } = parentLogging('info');
    const log = lazyChild(logger, { inbound: 'm1', instance: 'dp' });
    log.warn({ reason: 'x' }, 'first');
    log.error('second');
    expect(children()).toBe(1);
    expect(lines).toMatchObject([
      { level: 40, inbound: 'm1', instance: 'dp', reason: 'x', msg: 'first' },
      { level: 50, inbound: 'm1', instance: 'dp', msg: 'second' },
    ]);
  });

  it('redacts secrets in its bindings as pino does', () => {
    const { logger, lines } = parentLogging('debug');
    lazyChild(logger, { apiKey: 'k3y-k3y' }).debug('line');
    expect(JSON.stringify(lines)).not.toContain('k3y-k3y');
  });
});
