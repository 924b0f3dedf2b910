import { describe, expect, it } from 'vitest';
import { parseSince } from '../cli/commands/replay.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { shippedConnectors } from '../connectors.ts';
import { baseUrl, hookUrls } from './banner.ts';
import { progressBar } from './progress.ts';

function sink(isTTY: boolean) {
  let text = '';
  return { stream: { isTTY, columns: 100, write: (t: string) => (text += t) }, text: () => text };
}

describe('progressBar', () => {
  it('draws in place on a TTY and ends the line', () => {
    const out = sink(true);
    const bar = progressBar(out.stream, 4, 'replay', 0);
    bar.update(1);
    bar.update(4, '0 dead');
    bar.finish();
    expect(out.text()).toContain('replay [');
    expect(out.text()).toContain(' 25% 1/4');
    expect(out.text()).toContain('100% 4/4 0 dead');
    expect(out.text().endsWith('\n')).toBe(true);
  });

  it('writes nothing when not on a terminal', () => {
    const out = sink(false);
    const bar = progressBar(out.stream, 4, 'replay', 0);
    bar.update(2);
    bar.finish();
    expect(out.text()).toBe('');
  });
});

describe('banner URLs', () => {
  const config = {
    server: { host: '0.0.0.0', port: 8080, bodyLimitBytes: 1, trustedProxies: [] },
  } as unknown as ResolvedConfig;
  const clockwise = shippedConnectors.find((c) => c.name === 'clockwisemd')!;

  it('shows a wildcard listen address as loopback, and prefers publicUrl', () => {
    expect(baseUrl(config, 9000)).toBe('http://127.0.0.1:9000');
    expect(baseUrl({ ...config, server: { ...config.server, publicUrl: 'https://hub.example/' } })).toBe(
      'https://hub.example',
    );
  });

  it('lists one hook URL per push route, path parameters as placeholders', () => {
    const urls = hookUrls('http://h', { id: 'cw', connector: clockwise, mode: 'push', settings: {} });
    expect(urls).toEqual(['http://h/hooks/cw', 'http://h/hooks/cw/{key}']);
  });
});

describe('replay --since', () => {
  it('takes a duration ago or an ISO date, and refuses anything else', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    expect(parseSince('2h', now).toISOString()).toBe('2026-03-01T10:00:00.000Z');
    expect(parseSince('2026-02-28T08:00:00Z', now).toISOString()).toBe('2026-02-28T08:00:00.000Z');
    expect(() => parseSince('yesterday', now)).toThrow(/--since must be/);
  });
});
