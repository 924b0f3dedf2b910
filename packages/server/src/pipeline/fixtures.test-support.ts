/**
 * Test-only helpers for the pipeline's integration tests: a small scriptable connector and a hub
 * factory with fast schedules. Not exported from the package.
 */
import {
  ConnectorError,
  defineConnector,
  emit,
  type InboundRequest,
  ignore,
  isJsonObject,
  type JsonObject,
  parseJsonBody,
  timingSafeEqualString,
} from '@switchyard/core';
import pg from 'pg';
import pino from 'pino';
import { createHub, type Hub } from './hub.ts';
import type { HubConfig } from './hub-config.ts';
import type { PipelineOptions } from './shared.ts';

export const SECRET_KEY = 'test-secret-key-0123456789';
export const API_KEY = 'acme-api-key';

/** Knobs the tests flip to change the connector's behaviour between runs (e.g. "fix a bug"). */
export const behaviour = {
  /** Types of notification that fail permanently. */
  broken: new Set<string>(),
  /** Remaining transient failures per dedupe key. */
  flaky: new Map<string, number>(),
  /** Retry-After the transient error asks for. */
  retryAfterMs: undefined as number | undefined,
  /** Attempts seen per dedupe key, with finalAttempt. */
  seen: [] as { key: string; attempt: number; finalAttempt: boolean }[],
  /** Pull queue served by `fetch`. */
  pullQueue: [] as JsonObject[],
  pullBatchSize: 2,
  pullFailures: 0,
  /** The vendor says it has more after every batch, even an empty one (a misbehaving queue). */
  pullAlwaysMore: false,
  /** Awaited with the instance id before each pull `fetch` takes its batch (a slow or hung vendor). */
  beforePull: undefined as ((instanceId: string) => Promise<void>) | undefined,
  /** How long each normalization takes (ms), so that runs overlap. */
  normalizeDelayMs: 0,
  /** Normalizations in progress now, and the most seen at once (tests reset it). */
  normalizing: 0,
  maxNormalizing: 0,
  /** Called with the vendor id once its hub id is known, before the normalization returns. */
  afterHubId: undefined as ((vendorId: string) => Promise<void>) | undefined,
  /** `parse` throws a plain TypeError (a connector bug on the input), not a ConnectorError. */
  parseBug: false,
};

export function resetBehaviour(): void {
  behaviour.broken.clear();
  behaviour.flaky.clear();
  behaviour.retryAfterMs = undefined;
  behaviour.seen.length = 0;
  behaviour.pullQueue.length = 0;
  behaviour.pullBatchSize = 2;
  behaviour.pullFailures = 0;
  behaviour.beforePull = undefined;
  behaviour.pullAlwaysMore = false;
  behaviour.normalizeDelayMs = 0;
  behaviour.normalizing = 0;
  behaviour.maxNormalizing = 0;
  behaviour.afterHubId = undefined;
  behaviour.parseBug = false;
}

interface AcmeConfig {
  apiKey: string;
}

function toNotification(item: JsonObject) {
  return {
    type: String(item.type),
    dedupeKey: String(item.id),
    ...(typeof item.booking === 'string' ? { orderingKey: item.booking } : {}),
    ...(typeof item.at === 'string' ? { occurredAt: item.at } : {}),
    payload: item,
    ...(item.gate === true ? { gate: true } : {}),
  };
}

/**
 * The test connector. Body: `{ id, type, booking, at }` or `{ items: [...] }`. Types:
 * `created|rescheduled|cancelled` → `appointment.<type>`; `noop` → ignored; `invalid` → an event
 * with a bad time; `tally` → `appointment.created` counting the booking's tallies in its state (in `comment`); anything in `behaviour.broken` → permanent error; keys in `behaviour.flaky` →
 * transient errors first.
 */
export const acme = defineConnector<AcmeConfig>({
  name: 'acme',
  version: '1.0.0',
  displayName: 'Acme (test)',
  configSchema: {
    type: 'object',
    required: ['apiKey'],
    properties: { apiKey: { type: 'string', 'x-secret': true }, region: { type: 'string' } },
  },
  eventMap: [],
  push: {
    routes: [{ name: 'default', path: '' }],
    authenticate(req, config) {
      if (!timingSafeEqualString(req.headers['x-api-key'], config.apiKey))
        throw ConnectorError.auth('bad key');
    },
    credentials: () => ({ headers: ['x-api-key'] }),
    parse(req) {
      if (behaviour.parseBug) throw new TypeError("Cannot read properties of undefined (reading 'id')");
      const body = parseJsonBody(req);
      if (!isJsonObject(body)) throw ConnectorError.badRequest('expected an object');
      if (Array.isArray(body.items)) return body.items.filter(isJsonObject).map(toNotification);
      if (typeof body.id !== 'string' || typeof body.type !== 'string')
        throw ConnectorError.badRequest('id and type');
      return [toNotification(body)];
    },
  },
  pull: {
    defaultIntervalMs: 60_000,
    async fetch(ctx, cursor) {
      await behaviour.beforePull?.(ctx.instanceId);
      if (behaviour.pullFailures > 0) {
        behaviour.pullFailures--;
        throw ConnectorError.transient('vendor queue down');
      }
      const batch = behaviour.pullQueue.splice(0, behaviour.pullBatchSize);
      return {
        notifications: batch.map(toNotification),
        cursor: batch.length > 0 ? String(batch[batch.length - 1]!.id) : cursor,
        more: behaviour.pullAlwaysMore || behaviour.pullQueue.length > 0,
      };
    },
  },
  async normalize(n, ctx) {
    behaviour.seen.push({ key: n.dedupeKey, attempt: ctx.attempt, finalAttempt: ctx.finalAttempt });
    if (behaviour.normalizeDelayMs > 0) {
      behaviour.maxNormalizing = Math.max(behaviour.maxNormalizing, ++behaviour.normalizing);
      await new Promise((r) => setTimeout(r, behaviour.normalizeDelayMs));
      behaviour.normalizing--;
    }
    const left = behaviour.flaky.get(n.dedupeKey) ?? 0;
    if (left > 0) {
      behaviour.flaky.set(n.dedupeKey, left - 1);
      throw ConnectorError.transient('vendor API down', { retryAfterMs: behaviour.retryAfterMs });
    }
    if (behaviour.broken.has(n.type)) throw ConnectorError.permanent(`cannot handle ${n.type}`);
    const p = n.payload as JsonObject;
    if (n.type === 'noop') return ignore('acme noop has no normalized counterpart');
    const id = await ctx.aliases.hubId('appointment', String(p.booking ?? p.id));
    await behaviour.afterHubId?.(String(p.booking ?? p.id));
    let tally = '';
    if (n.type === 'tally') {
      // Counts the tallies of a booking in the connector state; `failOnce`: a transient error on
      // the first try, after the state write; `reset`: the entry is deleted after the count.
      const key = `tally/${String(p.booking)}`;
      const count = ((await ctx.state.get<number>(key)) ?? 0) + 1;
      await ctx.state.set(key, count);
      if (p.failOnce === true && ctx.attempt === 1) throw ConnectorError.transient('after the state write');
      if (p.reset === true) await ctx.state.delete(key);
      tally = `:${count}`;
    }
    const time = n.type === 'invalid' ? 'yesterday' : (n.occurredAt ?? '2025-01-01T10:00:00+01:00');
    const type = n.type === 'invalid' || n.type === 'tally' ? 'created' : n.type;
    const data: JsonObject = {
      id,
      vendorIds: [{ system: 'acme', instance: ctx.instanceId, value: String(p.booking ?? p.id) }],
      status: type === 'cancelled' ? 'cancelled' : 'booked',
      comment: `${String(p.id)}${tally}`,
    };
    if (type === 'rescheduled') data.previous = { start: '2025-01-01T09:00:00+01:00' };
    return emit({ type: `appointment.${type}`, subject: `appointment/${id}`, time, data });
  },
  encode() {
    return { route: 'default', body: {} };
  },
});

/** Fast schedules so tests take milliseconds, not hours. */
export const FAST: PipelineOptions = {
  queue: false,
  pollIntervalMs: 200,
  retryScheduleMs: [0, 50, 100],
  retryJitter: 0,
  normalizeRetryMs: [30, 30],
  deliveryLeaseMarginMs: 1000,
  instanceCacheMs: 0,
};

export const silent = pino({ level: 'silent' });

export async function makeHub(
  databaseUrl: string,
  extra: Partial<HubConfig> & { options?: PipelineOptions } = {},
) {
  return createHub({
    databaseUrl,
    connectors: [acme],
    secretKey: SECRET_KEY,
    logger: silent,
    ...extra,
    options: { ...FAST, ...extra.options },
  });
}

/** A push request for the acme connector. */
export function push(body: unknown, apiKey = API_KEY): InboundRequest {
  return {
    route: 'default',
    params: {},
    query: {},
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    rawBody: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    sourceIp: '127.0.0.1',
    receivedAt: new Date(),
  };
}

/** Polls `check` until it returns a value (not undefined/false), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until)
      throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function setupInstance(hub: Hub, id = 'acme-1', mode: 'push' | 'pull' | 'both' = 'push') {
  return hub.instances.upsert({ id, connector: 'acme', mode, settings: { apiKey: API_KEY, region: 'eu' } });
}

/**
 * Records the `id` of every row returned by the statements whose text contains `fragment`, sent by
 * any pg client of this process (say, which deliveries a claim statement took), until `restore()`.
 *
 * @example
 * ```ts
 * const claimed = recordReturnedIds('claimable_deliveries(');
 * // ... run a hub ...
 * expect(claimed.ids.has(deliveryId)).toBe(false);
 * claimed.restore();
 * ```
 */
export function recordReturnedIds(fragment: string): {
  ids: Set<string>;
  /** Statements sent, whatever they returned. */
  readonly statements: number;
  /** Statements that returned no row (so far answered). */
  readonly empty: number;
  restore(): void;
} {
  const ids = new Set<string>();
  let statements = 0;
  let empty = 0;
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  const record = (r: { rows?: { id?: string }[] }) => {
    if (!r.rows?.some((row) => row.id)) empty++;
    for (const row of r.rows ?? []) if (row.id) ids.add(row.id);
  };
  pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string };
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    const matches = text.includes(fragment);
    if (matches) statements++;
    // The hub answers its statements through a callback (storage/db.ts, `send`); others use pg's promise.
    const last = args.length - 1;
    const callback = args[last];
    if (matches && typeof callback === 'function') {
      args[last] = (error: unknown, r: { rows?: { id?: string }[] }) => {
        if (!error) record(r);
        return (callback as (error: unknown, r: unknown) => unknown)(error, r);
      };
    }
    const result = original.apply(this, args);
    if (matches && result instanceof Promise) void result.then(record, () => {});
    return result;
  } as typeof pg.Client.prototype.query;
  return {
    ids,
    get statements() {
      return statements;
    },
    get empty() {
      return empty;
    },
    restore: () => {
      pg.Client.prototype.query = original as typeof pg.Client.prototype.query;
    },
  };
}
