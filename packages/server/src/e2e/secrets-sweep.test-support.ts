/**
 * The search of the secrets sweeps (e2e/secrets-sweep*.int.test.ts): every form a secret may take
 * in a text, where each occurs among the texts a hub left (rows, log lines, HTTP answers, CLI
 * output), an HTTP client to the hub that keeps every answer for that search, a read of every GET
 * route, and a dump of every table. One copy, shared by the sweeps.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { expect } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { createLogger } from '../logging/logger.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';

/** A text the sweep searches, and where it was found (a table, a log line, an answer). */
export interface SweptText {
  where: string;
  text: string;
}

/**
 * Every form a secret may take in a text: raw, base64 at any offset (Basic pairs), URL-encoded, hex.
 *
 * @example
 * ```ts
 * formsOf('sweepKey-0123456789').includes(encodeURIComponent('sweepKey-0123456789')); // true
 * ```
 */
export function formsOf(secret: string): string[] {
  const forms = new Set<string>([secret]);
  forms.add(encodeURIComponent(secret));
  const hex = Buffer.from(secret).toString('hex');
  forms.add(hex);
  forms.add(hex.toUpperCase());
  for (const pad of ['', 'x', 'xx']) {
    const b64 = Buffer.from(`${pad}${secret}`).toString('base64');
    // The middle of it depends on the secret's bytes only: found inside any base64 quoting it.
    const middle = pad === '' ? b64.replace(/=+$/, '').slice(0, -4) : b64.slice(4, -4);
    forms.add(middle);
    forms.add(middle.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  // A whsec_ secret's key bytes, as a signer holds them.
  if (secret.startsWith('whsec_')) {
    const key = Buffer.from(secret.slice(6), 'base64');
    forms.add(secret.slice(6));
    forms.add(key.toString('hex'));
    forms.add(key.toString('latin1'));
  }
  return [...forms].filter((f) => f.length >= 12);
}

/**
 * Where each secret (in any form) occurs in `texts`: `secret name ← where: …context…`, one hit per
 * secret and place (a leak repeats in every read of the row that holds it).
 *
 * @example
 * ```ts
 * hitsIn({ push: 'sweepKey-0123456789' }, [{ where: 'log line 3', text: '… sweepKey-0123456789 …' }]);
 * // ['push ← log line 3: …… sweepKey-0123456789 ……']
 * ```
 */
export function hitsIn(secrets: Readonly<Record<string, string>>, texts: readonly SweptText[]): string[] {
  const hits: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    for (const form of formsOf(secret)) {
      for (const { where, text } of texts) {
        const at = text.indexOf(form);
        if (at >= 0 && !hits.some((h) => h.startsWith(`${name} ← ${where}:`)))
          hits.push(`${name} ← ${where}: …${text.slice(Math.max(0, at - 120), at + form.length + 40)}…`);
      }
    }
  }
  return hits;
}

/** The secret with one character changed (its last). */
export const nearly = (secret: string): string => `${secret.slice(0, -1)}${secret.endsWith('a') ? 'b' : 'a'}`;

/** Polls `check` until it gives a value, or throws naming `what` after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Options of one {@link SweepClient.call}: `admin` is the bearer token (false: none). */
export interface CallInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  admin?: string | false;
}

/**
 * An HTTP client to a running hub that keeps every answer (status, headers, body) in `answers`
 * for the sweep to search.
 *
 * @example
 * ```ts
 * const client = new SweepClient(() => running.url, ADMIN);
 * await client.call('/hooks/dp', { method: 'POST', admin: false, body });
 * hitsIn(secrets, client.answers);
 * ```
 */
export class SweepClient {
  readonly answers: SweptText[] = [];
  readonly #base: () => string;
  readonly #admin: string;
  /** `base` gives the hub's URL at each call (a restarted hub has another); `admin` the default bearer token. */
  constructor(base: () => string, admin: string) {
    this.#base = base;
    this.#admin = admin;
  }

  /** One HTTP call to the hub, its answer kept in `answers`. */
  async call(path: string, init: CallInit = {}): Promise<{ status: number; text: string }> {
    const admin = init.admin === undefined ? this.#admin : init.admin;
    const res = await fetch(`${this.#base()}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        ...(admin ? { authorization: `Bearer ${admin}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const text = await res.text();
    const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
    this.answers.push({
      where: `${init.method ?? 'GET'} ${path} → ${res.status}`,
      text: `${headers}\n\n${text}`,
    });
    return { status: res.status, text };
  }

  /** {@link call}, its body parsed (undefined when empty). */
  async json(path: string, init?: CallInit) {
    const r = await this.call(path, init);
    return { status: r.status, json: r.text === '' ? undefined : JSON.parse(r.text) };
  }

  /** GETs every route the app has: those without parameters, and each `/:id` route below a list for every id it lists. */
  async readEverything(app: FastifyInstance, admin: string = this.#admin): Promise<void> {
    // printRoutes draws a tree (`│   └── /:id (GET, HEAD)`): each line's depth is where its `── ` is.
    const stack: string[] = [];
    const routes: string[] = [];
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^(.*?)── (\S+) \(([^)]*)\)/.exec(line);
      if (!m) continue;
      const depth = (m[1]!.length - 1) / 4;
      stack.length = depth;
      stack.push(m[2]!);
      if (m[3]!.split(', ').includes('GET')) routes.push(stack.join(''));
    }
    expect(routes).toContain('/v1/deliveries/:id');
    const listed = new Map<string, string[]>();
    for (const route of routes.filter((r) => !r.includes(':') && !r.includes('*'))) {
      const r = await this.call(route, { admin });
      const body = r.text.startsWith('{') ? (JSON.parse(r.text) as { items?: Array<{ id?: unknown }> }) : {};
      listed.set(
        route,
        (body.items ?? []).map((item) => item.id).filter((id): id is string => typeof id === 'string'),
      );
    }
    for (const route of routes.filter((r) => /^\/v1\/.*\/:id/.test(r))) {
      const list = route.slice(0, route.indexOf('/:id'));
      for (const id of listed.get(list) ?? [])
        await this.call(route.replace(':id', encodeURIComponent(id)), { admin });
    }
    // The dashboard's pages ask with their queries.
    for (const id of listed.get('/v1/subscriptions') ?? [])
      await this.call(`/v1/dashboard/subscriptions/${encodeURIComponent(id)}/replay-progress?after=0`, {
        admin,
      });
    await this.call('/v1/dashboard/events?vendorId=12345&limit=50', { admin });
    await this.call('/v1/dashboard/overview?minutes=60', { admin });
  }
}

/** Every row of every table of the database's own schemas, as text. */
export async function dumpDatabase(url: string): Promise<SweptText[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ schema: string; name: string }>(
      `select table_schema as schema, table_name as name from information_schema.tables
        where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
    );
    expect(tables.rows.length).toBeGreaterThan(10);
    const out: SweptText[] = [];
    for (const t of tables.rows) {
      const rows = await client.query<{ row: string }>(
        `select t::text as row from ${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)} t`,
      );
      for (const r of rows.rows) out.push({ where: `table ${t.schema}.${t.name}`, text: r.row });
    }
    return out;
  } finally {
    await client.end();
  }
}

/**
 * A hub started as `switchyard start` starts it (cli/commands/start.ts): `text` written to
 * `switchyard.yaml` in `dir`, loaded with `env`, the CLI's logger at debug level with the file's
 * secrets, every line it writes (and stderr) kept in `lines` for the sweep.
 *
 * @example
 * ```ts
 * running = await startSweepHub(dir, configText(), env(), logLines);
 * ```
 */
export async function startSweepHub(
  dir: string,
  text: string,
  env: Record<string, string>,
  lines: string[],
): Promise<HubProcess> {
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(file, text);
  const loaded = await loadConfig(file, { connectors: shippedConnectors, env });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const logger = createLogger({
    level: 'debug',
    pretty: false,
    secrets: loaded.secrets,
    destination: { write: (line: string) => lines.push(line) },
  });
  return startHubProcess(loaded.config, {
    io: { stderr: { write: (t: string) => lines.push(t) > 0 }, env: {}, cwd: dir },
    logger,
    secrets: loaded.secrets,
    pipeline: { pollIntervalMs: 200, retention: { cron: false } },
    commands: {
      retryScheduleMs: [50, 50],
      retryJitter: 0,
      sweepIntervalMs: 200,
      leaseMs: 10_000,
      retentionCron: false,
    },
  });
}
