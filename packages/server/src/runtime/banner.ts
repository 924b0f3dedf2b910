/**
 * What a started hub tells its operator: the URLs to call (hooks per instance, admin API, pull
 * feeds, health, metrics) and a curl line that sends a sample notification. Never a secret: where
 * a credential is needed the line names the environment variable the config reads it from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { ResolvedConfig, ResolvedInstance } from '../config/types.ts';

/** The hub's base URL as clients reach it: `server.publicUrl`, else the listen address. */
export function baseUrl(config: ResolvedConfig, port = config.server.port): string {
  if (config.server.publicUrl) return config.server.publicUrl.replace(/\/+$/, '');
  let host = config.server.host;
  if (host === '0.0.0.0' || host === '::' || host === '') host = '127.0.0.1';
  if (host.includes(':')) host = `[${host}]`;
  return `http://${host}:${port}`;
}

/** The hook URLs of a push instance, one per connector route (`{param}` where a route takes one). */
export function hookUrls(base: string, instance: ResolvedInstance): string[] {
  if (instance.mode === 'pull' || !instance.connector.push) return [];
  return instance.connector.push.routes.map((route) => {
    const path = route.path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s))
      .join('/');
    return `${base}/hooks/${instance.id}${path ? `/${path}` : ''}`;
  });
}

/** How the config file spells a field: an `${env:NAME…}` reference becomes `$NAME` for a shell. */
function shellReference(config: ResolvedConfig, index: number, field: string[]): string | undefined {
  try {
    const raw = parse(readFileSync(config.file, 'utf8')) as { instances?: unknown[] };
    let node: unknown = raw.instances?.[index];
    for (const key of field) node = (node as Record<string, unknown> | undefined)?.[key];
    const match = typeof node === 'string' ? /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-.*)?\}$/.exec(node) : null;
    return match ? `$${match[1]}` : undefined;
  } catch {
    return undefined;
  }
}

/** A fixture of the connector's package, when the package ships them (a source checkout does). */
function fixturePath(connectorName: string, file: string): string | undefined {
  try {
    const entry = fileURLToPath(import.meta.resolve(`@switchyard/connector-${connectorName}`));
    const candidate = join(dirname(entry), '..', 'fixtures', file);
    return existsSync(candidate) ? candidate : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A curl command that pushes a sample Docplanner `slot-booked` notification to the first Docplanner
 * push instance, or undefined when there is none.
 *
 * @example
 * ```ts
 * sampleCurl(config, 'http://127.0.0.1:8080', process.cwd());
 * // curl -X POST http://127.0.0.1:8080/hooks/docplanner-main -H 'content-type: application/json' -H "x-api-key: $DOCPLANNER_PUSH_KEY" --data @packages/connectors/docplanner/fixtures/slot-booked.json
 * ```
 */
export function sampleCurl(config: ResolvedConfig, base: string, cwd: string): string | undefined {
  const index = config.instances.findIndex((i) => i.connector.name === 'docplanner' && i.mode !== 'pull');
  const instance = config.instances[index];
  if (!instance) return undefined;
  const fixture = fixturePath('docplanner', 'slot-booked.json');
  if (!fixture) return undefined;
  const parts = [`curl -X POST ${base}/hooks/${instance.id}`, "-H 'content-type: application/json'"];
  const pushAuth = instance.settings.pushAuth as { headerName?: string } | undefined;
  if (pushAuth) {
    const header = pushAuth.headerName ?? 'x-api-key';
    const reference = shellReference(config, index, ['settings', 'pushAuth', 'apiKey']);
    parts.push(`-H "${header}: ${reference ?? '<pushAuth.apiKey>'}"`);
  }
  const shown = relative(cwd, fixture);
  parts.push(`--data @${shown.startsWith('..') ? fixture : shown}`);
  return parts.join(' ');
}

/** The lines printed once the hub is up. */
export function banner(
  config: ResolvedConfig,
  opts: { role: 'all' | 'http' | 'worker'; port: number; cwd: string; embeddedDataDir?: string },
): string {
  const base = baseUrl(config, opts.port);
  const lines: string[] = [];
  lines.push(`Switchyard is running (role: ${opts.role}) on ${base}`);
  if (opts.embeddedDataDir) {
    lines.push(
      `  database: embedded Postgres, data in ${opts.embeddedDataDir}`,
      '            (for production or several processes: set DATABASE_URL or database.url)',
    );
  }
  if (opts.role !== 'worker') {
    const hooks = config.instances.flatMap((i) => hookUrls(base, i).map((url) => `    ${i.id}: ${url}`));
    lines.push('  vendor hooks:');
    lines.push(...(hooks.length > 0 ? hooks : ['    (no push instance in the config)']));
    lines.push(
      `  admin API: ${base}/v1 ${config.server.adminToken ? '(Authorization: Bearer <server.adminToken>)' : '(closed: the config sets no server.adminToken)'}`,
      `  OpenAPI:   ${base}/v1/openapi.json`,
      `  dashboard: ${base}/ui/ (sign in with the admin token)`,
    );
    const feeds = config.subscriptions.filter((s) => s.kind === 'pull');
    for (const feed of feeds)
      lines.push(`  pull feed ${feed.id}: ${base}/v1/subscriptions/${feed.id}/events`);
  }
  lines.push(`  health: ${base}/healthz  ${base}/readyz`, `  metrics: ${base}/metrics`);
  if (opts.role !== 'worker') {
    const curl = sampleCurl(config, base, opts.cwd);
    if (curl) {
      lines.push('  send a sample notification:', `    ${curl}`);
      if (/: \$[A-Za-z_]/.test(curl))
        lines.push('    (with that variable set to the push key the config reads; it is never printed)');
    }
  }
  return `${lines.join('\n')}\n`;
}
