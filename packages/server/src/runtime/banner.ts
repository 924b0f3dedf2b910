/**
 * What a started hub tells its operator: the URLs to call (hooks per instance, admin API, pull
 * feeds, health, metrics) and a curl line that sends a sample notification. Never a secret: where
 * a credential is needed the line names the environment variable the config reads it from, or shows
 * the demo default the config file itself writes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { fileDefault } from '../config/secrets.ts';
import type { ResolvedConfig, ResolvedInstance } from '../config/types.ts';
import { secretScrubber } from '../logging/logger.ts';

/**
 * The process's base URL as clients reach it: `server.publicUrl`, else the listen address. A
 * worker's is always its listen address: `publicUrl` names the HTTP processes, and a worker's
 * banner and ready line sent operators wiring its health checks to them.
 */
export function baseUrl(config: ResolvedConfig, port = config.server.port, role?: string): string {
  if (config.server.publicUrl && role !== 'worker') return config.server.publicUrl.replace(/\/+$/, '');
  return listenUrl(config, port);
}

/**
 * The listen address as a client on the same machine reaches it (a wildcard host as 127.0.0.1).
 *
 * @example
 * ```ts
 * listenUrl(config, 8091); // 'http://127.0.0.1:8091'
 * ```
 */
export function listenUrl(config: ResolvedConfig, port = config.server.port): string {
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

/** A field of an instance as the config file writes it (before references are resolved). */
function writtenField(config: ResolvedConfig, index: number, field: string[]): string | undefined {
  try {
    const raw = parse(readFileSync(config.file, 'utf8')) as { instances?: unknown[] };
    let node: unknown = raw.instances?.[index];
    for (const key of field) node = (node as Record<string, unknown> | undefined)?.[key];
    return typeof node === 'string' ? node : undefined;
  } catch {
    return undefined;
  }
}

/** `'text'` for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
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

/** A sample push, and the demo value it shows in clear (the scrubber must leave that one alone). */
interface SampleRequest {
  line: string;
  /** The key as a `$NAME` the operator's shell must hold, when the file reads it from there. */
  variable?: string;
  /** The key shown in clear: the file's own `${env:NAME:-default}` default, NAME being unset. */
  shownDefault?: string;
}

function sampleRequest(
  config: ResolvedConfig,
  base: string,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
): SampleRequest | undefined {
  const index = config.instances.findIndex((i) => i.connector.name === 'docplanner' && i.mode !== 'pull');
  const instance = config.instances[index];
  if (!instance) return undefined;
  const fixture = fixturePath('docplanner', 'slot-booked.json');
  if (!fixture) return undefined;
  const parts = [`curl -X POST ${base}/hooks/${instance.id}`, "-H 'content-type: application/json'"];
  const sample: SampleRequest = { line: '' };
  const pushAuth = instance.settings.pushAuth as { headerName?: string } | undefined;
  if (pushAuth) {
    const header = pushAuth.headerName ?? 'x-api-key';
    const written = writtenField(config, index, ['settings', 'pushAuth', 'apiKey']);
    // Never a real secret: in clear only a default written in the file (a demo value, unset variable);
    // a key from the environment is shown as the variable, anything else as a placeholder.
    const shownDefault = written === undefined ? undefined : fileDefault(written, env);
    const variable = written && /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-.*)?\}$/.exec(written)?.[1];
    if (shownDefault !== undefined) {
      sample.shownDefault = shownDefault;
      parts.push(`-H ${shellQuote(`${header}: ${shownDefault}`)}`);
    } else if (variable) {
      sample.variable = variable;
      parts.push(`-H "${header}: $${variable}"`);
    } else {
      parts.push(`-H '${header}: <pushAuth.apiKey>'`);
    }
  }
  const shown = relative(cwd, fixture);
  parts.push(`--data @${shown.startsWith('..') ? fixture : shown}`);
  sample.line = parts.join(' ');
  return sample;
}

/**
 * A curl command that pushes a sample Docplanner `slot-booked` notification to the first Docplanner
 * push instance, or undefined when there is none. It works as printed on a fresh machine: when the
 * push key is the file's `${env:NAME:-default}` default (NAME unset: the example's demo key), that
 * default is shown; a key read from the environment is shown as `$NAME`, never its value.
 *
 * @example
 * ```ts
 * sampleCurl(config, 'http://127.0.0.1:8080', process.cwd(), {});
 * // curl -X POST http://127.0.0.1:8080/hooks/docplanner-main -H 'content-type: application/json' -H 'x-api-key: demo-docplanner-push-key' --data @packages/connectors/docplanner/fixtures/slot-booked.json
 * ```
 */
export function sampleCurl(
  config: ResolvedConfig,
  base: string,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  return sampleRequest(config, base, cwd, env)?.line;
}

/** The lines printed once the hub is up. */
export function banner(
  config: ResolvedConfig,
  opts: {
    role: 'all' | 'http' | 'worker';
    port: number;
    cwd: string;
    /** The environment the config was resolved with. */
    env: Readonly<Record<string, string | undefined>>;
    /** Resolved secret values: scrubbed from the banner as from the logs. */
    secrets: readonly string[];
    embeddedDataDir?: string;
  },
): string {
  const base = baseUrl(config, opts.port, opts.role);
  // Where this process listens: with a public URL (a proxy in front) that is not `base`, and the
  // sample request and the health URLs are for this machine (an operator audit: `--port` beside a
  // public URL showed only the public one).
  const local = baseUrl(
    { ...config, server: { ...config.server, publicUrl: undefined } },
    opts.port,
    opts.role,
  );
  const lines: string[] = [];
  lines.push(
    local === base
      ? `Switchyard is running (role: ${opts.role}) on ${base}`
      : `Switchyard is running (role: ${opts.role}) on ${local}, public URL ${base}`,
  );
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
      `  dashboard: ${base}/ui/ ${config.server.adminToken ? '(sign in with the admin token)' : '(closed: the config sets no server.adminToken)'}`,
    );
    const feeds = config.subscriptions.filter((s) => s.kind === 'pull');
    for (const feed of feeds)
      lines.push(`  pull feed ${feed.id}: ${base}/v1/subscriptions/${feed.id}/events`);
  }
  lines.push(`  health: ${local}/healthz  ${local}/readyz`, `  metrics: ${local}/metrics`);
  const sample = opts.role !== 'worker' ? sampleRequest(config, local, opts.cwd, opts.env) : undefined;
  if (sample) {
    lines.push('  send a sample notification:', `    ${sample.line}`);
    if (sample.variable)
      lines.push(`    (with ${sample.variable} set to the push key the config reads; it is never printed)`);
    if (sample.shownDefault !== undefined)
      lines.push(
        '    (the demo push key written in the config file; set the variable it names for a real one)',
      );
  }
  // The demo key is in the file for anyone to read; every other secret stays scrubbed.
  const scrub = secretScrubber(opts.secrets.filter((secret) => secret !== sample?.shownDefault));
  return scrub(`${lines.join('\n')}\n`);
}
