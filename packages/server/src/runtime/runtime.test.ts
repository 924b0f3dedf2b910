import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIG } from '../cli/command.ts';
import { loadConfig } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { shippedConnectors } from '../connectors.ts';
import { banner, baseUrl, hookUrls } from './banner.ts';

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
    // publicUrl names the HTTP processes: a worker shows where it itself listens (its health, metrics).
    const withPublic = { ...config, server: { ...config.server, publicUrl: 'https://hub.example/' } };
    expect(baseUrl(withPublic, 9001, 'worker')).toBe('http://127.0.0.1:9001');
    expect(baseUrl(withPublic, 9001, 'http')).toBe('https://hub.example');
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

  it('with a public URL, names the port this process listens on too, and points the sample request there', async () => {
    const loaded = await loadConfig(EXAMPLE_CONFIG, { env: {}, connectors: shippedConnectors });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const config = {
      ...loaded.config,
      server: { ...loaded.config.server, publicUrl: 'https://hub.example.org' },
    };
    const text = banner(config, { role: 'all', port: 9340, cwd: checkout, env: {}, secrets: loaded.secrets });
    expect(text).toContain(
      'Switchyard is running (role: all) on http://127.0.0.1:9340, public URL https://hub.example.org',
    );
    expect(text).toContain('docplanner-main: https://hub.example.org/hooks/docplanner-main');
    expect(text).toContain('curl -X POST http://127.0.0.1:9340/hooks/docplanner-main');
    expect(text).toContain('health: http://127.0.0.1:9340/healthz');
  });

  it('with no admin token, says the dashboard is closed rather than to sign in with a token there is none of', async () => {
    const loaded = await loadConfig(EXAMPLE_CONFIG, { env: {}, connectors: shippedConnectors });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const config = { ...loaded.config, server: { ...loaded.config.server, adminToken: undefined } };
    const text = banner(config, { role: 'all', port: 8080, cwd: checkout, env: {}, secrets: loaded.secrets });
    expect(text).toContain(
      'dashboard: http://127.0.0.1:8080/ui/ (closed: the config sets no server.adminToken)',
    );
    expect(await exampleBanner({})).toContain(
      'dashboard: http://127.0.0.1:8080/ui/ (sign in with the admin token)',
    );
  });

  it('never prints a key that comes from the environment: it names the variable', async () => {
    const text = await exampleBanner({ DOCPLANNER_PUSH_KEY: 'real-push-key-0f9e8d7c6b' });
    expect(text).toContain('-H "x-api-key: $DOCPLANNER_PUSH_KEY"');
    expect(text).toContain('(with DOCPLANNER_PUSH_KEY set to the push key the config reads');
    expect(text).not.toContain('real-push-key-0f9e8d7c6b');
    expect(text).not.toContain('demo-docplanner-push-key');
  });
});
