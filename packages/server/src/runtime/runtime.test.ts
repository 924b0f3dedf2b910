import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG } from '../cli/command.ts';
import { parseSince } from '../cli/commands/replay.ts';
import { progressBar } from '../cli/progress.ts';
import { loadConfig } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { shippedConnectors } from '../connectors.ts';
import { banner, baseUrl, hookUrls } from './banner.ts';

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

describe('banner sample curl', () => {
  const checkout = fileURLToPath(new URL('../../../../', import.meta.url));
  async function exampleBanner(env: Record<string, string>) {
    const loaded = await loadConfig(EXAMPLE_CONFIG, { env, connectors: shippedConnectors });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    return banner(loaded.config, { role: 'all', port: 8080, cwd: checkout, env, secrets: loaded.secrets });
  }

  it('on a fresh machine shows the demo key the example file defaults to, so the command works as printed', async () => {
    const text = await exampleBanner({});
    expect(text).toContain(
      "curl -X POST http://127.0.0.1:8080/hooks/docplanner-main -H 'content-type: application/json' -H 'x-api-key: demo-docplanner-push-key' --data @packages/connectors/docplanner/fixtures/slot-booked.json",
    );
    // Every other resolved secret stays scrubbed, demo or not.
    expect(text).not.toContain('demo-admin-token-change-me');
    expect(text).not.toContain('$DOCPLANNER_PUSH_KEY');
  });

  it('never prints a key that comes from the environment: it names the variable', async () => {
    const text = await exampleBanner({ DOCPLANNER_PUSH_KEY: 'real-push-key-0f9e8d7c6b' });
    expect(text).toContain('-H "x-api-key: $DOCPLANNER_PUSH_KEY"');
    expect(text).toContain('(with DOCPLANNER_PUSH_KEY set to the push key the config reads');
    expect(text).not.toContain('real-push-key-0f9e8d7c6b');
    expect(text).not.toContain('demo-docplanner-push-key');
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
