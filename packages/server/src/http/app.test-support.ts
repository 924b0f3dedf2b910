/**
 * Test-only helpers for the HTTP integration tests: a small connector with two push routes and a
 * keyed route, a hub with fast schedules, and an app listening on loopback. Not exported.
 */
import {
  ConnectorError,
  defineConnector,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  parseJsonBody,
  timingSafeEqualString,
} from '@switchyard/core';
import pino from 'pino';
import { createHub, type Hub } from '../pipeline/hub.ts';
import type { HubConfig } from '../pipeline/hub-config.ts';
import { type BuildAppOptions, buildApp, type SwitchyardApp } from './app.ts';

export const SECRET_KEY = 'http-test-secret-key-0123456789';
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const VENDOR_API_KEY = 'vendor-api-key-s3cr3t-4f7a9c';

/** Types the connector refuses permanently; tests clear it to "fix the connector". */
export const broken = new Set<string>();

interface HookConfig {
  apiKey: string;
  region?: string;
}

/**
 * Body `{ id, type, booking }`. Routes: `''` (default), `cancellation` (forces type `cancelled`),
 * `k/:key` (the key in the path replaces the header). `noop` is ignored; types in `broken` fail.
 */
export const hookConnector = defineConnector<HookConfig>({
  name: 'hooktest',
  version: '1.0.0',
  displayName: 'Hook test',
  configSchema: {
    type: 'object',
    required: ['apiKey'],
    properties: { apiKey: { type: 'string', 'x-secret': true }, region: { type: 'string' } },
  },
  eventMap: [],
  push: {
    routes: [
      { name: 'default', path: '' },
      { name: 'cancellation', path: 'cancellation' },
      { name: 'keyed', path: 'k/:key' },
    ],
    authenticate(req, config) {
      const presented = req.route === 'keyed' ? req.params.key : req.headers['x-api-key'];
      if (!timingSafeEqualString(presented, config.apiKey)) throw ConnectorError.auth('bad key');
    },
    credentials: () => ({ headers: ['x-api-key'], params: ['key'] }),
    parse(req) {
      const body = parseJsonBody(req);
      if (!isJsonObject(body) || typeof body.id !== 'string' || typeof body.type !== 'string') {
        throw ConnectorError.badRequest('expected { id, type }');
      }
      const type = req.route === 'cancellation' ? 'cancelled' : body.type;
      return [
        {
          type,
          dedupeKey: `${req.route}:${body.id}`,
          orderingKey: String(body.booking ?? body.id),
          payload: body,
          meta: { route: req.route, query: req.query.tag ?? null },
        },
      ];
    },
    // The hook URL the hub handed over (with `server.publicUrl` only), echoed for the hooks test.
    acknowledge: (notifications, _config, req) => ({
      status: 202,
      body: { received: notifications.length, ...(req.hookUrl ? { hookUrl: req.hookUrl } : {}) },
    }),
  },
  async normalize(n, ctx) {
    if (broken.has(n.type)) throw ConnectorError.permanent(`cannot handle ${n.type}`);
    if (n.type === 'noop') return ignore('noop maps to nothing');
    const p = n.payload as JsonObject;
    const vendorId = String(p.booking ?? p.id);
    const id = await ctx.aliases.hubId('appointment', vendorId);
    return emit({
      type: `appointment.${n.type}`,
      subject: `appointment/${id}`,
      time: '2026-01-05T10:00:00+01:00',
      data: {
        id,
        vendorIds: [{ system: 'hooktest', instance: ctx.instanceId, value: vendorId }],
        status: n.type === 'cancelled' ? 'cancelled' : 'booked',
        // A vendor's free text as given.
        ...(typeof p.comment === 'string' ? { comment: p.comment } : {}),
        // A vendor's service id as given (one with two spaces in a row is no FHIR code: the FHIR
        // resource fails validation).
        ...(typeof p.service === 'string' ? { service: { id: p.service } } : {}),
      },
    });
  },
  encode() {
    return { route: 'default', body: {} };
  },
});

export const silent = pino({ level: 'silent' });

/**
 * A hub with the test connector and fast schedules; `more` adds connectors beside it and the
 * commands subsystem's hooks (the dashboard test sends commands to a vendor simulator).
 */
export async function makeHub(
  databaseUrl: string,
  more: Pick<HubConfig, 'markEchoes' | 'metrics' | 'gateResponder' | 'afterNormalize'> & {
    connectors?: HubConfig['connectors'];
    queue?: boolean;
    /** Another key than the tests' own (a process configured with a different `secretKey`). */
    secretKey?: string;
  } = {},
): Promise<Hub> {
  return createHub({
    databaseUrl,
    connectors: [hookConnector as never, ...(more.connectors ?? [])],
    ...(more.markEchoes ? { markEchoes: more.markEchoes } : {}),
    ...(more.gateResponder ? { gateResponder: more.gateResponder } : {}),
    ...(more.afterNormalize ? { afterNormalize: more.afterNormalize } : {}),
    ...(more.metrics ? { metrics: more.metrics } : {}),
    secretKey: more.secretKey ?? SECRET_KEY,
    logger: silent,
    options: {
      queue: more.queue ?? false,
      pollIntervalMs: 100,
      retryScheduleMs: [0, 20],
      retryJitter: 0,
      normalizeRetryMs: [20],
      deliveryLeaseMarginMs: 1000,
      instanceCacheMs: 0,
    },
  });
}

/** An app on 127.0.0.1 with a random port, and a fetch bound to it. */
export async function listen(
  hub: Hub,
  extra: {
    bodyLimit?: number;
    adminToken?: string | undefined;
    authRateLimit?: BuildAppOptions['authRateLimit'];
    plugins?: BuildAppOptions['plugins'];
    /** Proxies whose `X-Forwarded-For` is believed (a test then picks the client address). Default none. */
    trustedProxies?: BuildAppOptions['trustedProxies'];
    timeouts?: BuildAppOptions['timeouts'];
    publicUrl?: string;
  } = {},
): Promise<{ app: SwitchyardApp; base: string; close(): Promise<void> }> {
  const app = await buildApp({
    hub,
    adminToken: 'adminToken' in extra ? extra.adminToken : ADMIN_TOKEN,
    bodyLimit: extra.bodyLimit ?? 64 * 1024,
    trustedProxies: extra.trustedProxies ?? [],
    logger: silent,
    // The admin tests send many refused requests from one address on purpose.
    authRateLimit: extra.authRateLimit ?? false,
    ...(extra.plugins ? { plugins: extra.plugins } : {}),
    ...(extra.timeouts ? { timeouts: extra.timeouts } : {}),
    ...(extra.publicUrl ? { publicUrl: extra.publicUrl } : {}),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { app, base: `http://127.0.0.1:${port}`, close: () => app.close() };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers field by field.
  json: any;
}

/** fetch with the admin token by default; `token: null` sends none. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: {
    body?: unknown;
    token?: string | null;
    headers?: Record<string, string>;
    raw?: string | Buffer;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | Buffer | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls `check` until it returns a value (not undefined/false), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The value of one `subscription`-labelled series of a `/metrics` scrape of the app at `base`, or
 * undefined when it is not served.
 *
 * @example
 * ```ts
 * expect(await subscriptionSeries(server.base, 'switchyard_deliveries_dead', 'crm')).toBe(1);
 * ```
 */
export async function subscriptionSeries(
  base: string,
  name: string,
  subscription: string,
): Promise<number | undefined> {
  const text = (await call(base, 'GET', '/metrics', { token: null })).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{subscription="${subscription}"} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}
