/**
 * Shared pieces of the reliability tests: hub child processes, push load with a ledger of what was
 * acknowledged, and the exact accounting of what reached the subscriber. Test-only.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Connector, JsonObject } from '@switchyard/core';
import type { RecordedRequest } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { shippedConnectors } from '../connectors.ts';
import { buildApp, type SwitchyardApp } from '../http/index.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import type { PipelineOptions } from '../pipeline/shared.ts';
import { relConnector } from './connector.test-support.ts';
import type { HubProcessConfig } from './hub-process.test-support.ts';

export const SECRET_KEY = 'reliability-secret-key-0123456789';
export const ADMIN_TOKEN = 'reliability-admin-token-5e1f9a7c3b';
export const API_KEY = 'reliability-vendor-key-8d2c4e6f0a';
export const INSTANCE = 'rel';

/** Pipeline options that make leases and retries short enough for a test. */
export const FAST_OPTIONS: PipelineOptions = {
  pollIntervalMs: 200,
  retryJitter: 0,
  deliveryLeaseMarginMs: 1000,
  normalizeLeaseMs: 2000,
  normalizeRetryMs: [100, 200],
  instanceCacheMs: 0,
};

/** What a test reads of one answer of the hub: its status, content type, `Retry-After` and body. */
export interface HubAnswer {
  status: number;
  type: string | null;
  retryAfter: string | null;
  text: string;
}

/**
 * One request to a hub under test, its answer read whole (the fault tests check each answer's
 * status, problem type and `Retry-After`).
 *
 * @example
 * ```ts
 * const { status, retryAfter } = await callHub(h.base, '/readyz');
 * ```
 */
export async function callHub(base: string, path: string, init: RequestInit = {}): Promise<HubAnswer> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    retryAfter: res.headers.get('retry-after'),
    text,
  };
}

/** Polls `check` until it returns a value (not undefined/false), or fails after `timeoutMs` with `what`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Docplanner's published `slot-booked` example (connectors/docplanner/fixtures) with booking id
 * `booking`, for a test to change further.
 *
 * @example
 * ```ts
 * sim.enqueue(docplannerSlotBooked('7700001'));
 * ```
 */
export function docplannerSlotBooked(booking: string): JsonObject {
  const example = JSON.parse(
    readFileSync(
      new URL('../../../connectors/docplanner/fixtures/slot-booked.json', import.meta.url),
      'utf8',
    ),
  );
  example.data.visit_booking.id = booking;
  return example;
}

/** A hub running in a child process. */
export interface HubChild {
  readonly base: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** The `webhook-id` of every delivery POST this process started. */
  stats(): Promise<{ webhookIds: string[] }>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** Graceful stop over IPC (falls back to SIGKILL after 15 s). */
  stop(): Promise<void>;
}

const ENTRY = new URL('./hub-process.test-support.ts', import.meta.url).pathname;

/**
 * Forks `hub-process.test-support.ts` and waits for it to listen.
 *
 * @example
 * ```ts
 * const hub = await spawnHub({ databaseUrl, secretKey: SECRET_KEY, options: FAST_OPTIONS });
 * await fetch(`${hub.base}/healthz`);
 * await hub.kill();
 * ```
 */
export async function spawnHub(config: HubProcessConfig): Promise<HubChild> {
  const child = fork(ENTRY, [JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv: [],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub process not ready in 30 s:\n${out}`)), 30_000);
    child.on('message', (m: { type?: string; port?: number; pid?: number }) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve({ port: m.port!, pid: m.pid! });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hub process exited with ${code} before ready:\n${out}`));
    });
  });
  return {
    base: `http://127.0.0.1:${ready.port}`,
    pid: ready.pid,
    child,
    output: () => out,
    stats: () =>
      new Promise((resolve) => {
        const onMessage = (m: { type?: string; webhookIds?: string[] }) => {
          if (m.type !== 'stats') return;
          child.off('message', onMessage);
          resolve({ webhookIds: m.webhookIds ?? [] });
        };
        child.on('message', onMessage);
        child.send({ type: 'stats' });
      }),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What a push load produced: ids the hub acknowledged (2xx) and every other outcome. */
export interface Ledger {
  acked: string[];
  /** Status code, or the network error's message, per refused push. */
  refused: { id: string; outcome: number | string }[];
  /** Every status seen, with counts. */
  statuses: Map<number | string, number>;
}

export function newLedger(): Ledger {
  return { acked: [], refused: [], statuses: new Map() };
}

/** One push of the test connector's body; records the outcome in the ledger. */
export async function pushOne(
  base: string,
  ledger: Ledger,
  body: { id: string; subject: string; type?: string; poison?: boolean; slow?: boolean },
  apiKey = API_KEY,
): Promise<number | string> {
  let outcome: number | string;
  try {
    const res = await fetch(`${base}/hooks/${INSTANCE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    outcome = res.status;
  } catch (error) {
    outcome = String((error as Error).cause ?? (error as Error).message);
  }
  const key = typeof outcome === 'number' ? outcome : 'network';
  ledger.statuses.set(key, (ledger.statuses.get(key) ?? 0) + 1);
  if (typeof outcome === 'number' && outcome >= 200 && outcome < 300) ledger.acked.push(body.id);
  else ledger.refused.push({ id: body.id, outcome });
  return outcome;
}

/**
 * Pushes with `concurrency` loops until `stop()` returns true or `max` pushes were made. Bodies get
 * ids `${prefix}-${n}` and cycle through `subjects` subjects.
 */
export async function pushLoad(options: {
  base: () => string;
  ledger: Ledger;
  prefix: string;
  max: number;
  concurrency?: number;
  subjects?: number;
  stop?: () => boolean;
  /** Called after each push with its outcome (e.g. to trigger the fault at the right moment). */
  after?: (outcome: number | string, n: number) => void;
}): Promise<void> {
  let next = 0;
  const subjects = options.subjects ?? 10;
  const loop = async () => {
    while (next < options.max && !options.stop?.()) {
      const n = next++;
      const outcome = await pushOne(options.base(), options.ledger, {
        id: `${options.prefix}-${n}`,
        subject: `${options.prefix}-s${n % subjects}`,
        type: n < subjects ? 'created' : 'updated',
      });
      options.after?.(outcome, n);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, loop));
}

/** Stored inbound messages of the test instance with their events. */
export interface StoredMessage {
  dedupeKey: string;
  status: string;
  reason: string | null;
  eventIds: string[];
}

export async function storedMessages(
  pool: pg.Pool,
  instance = INSTANCE,
): Promise<Map<string, StoredMessage>> {
  const r = await pool.query<{
    dedupe_key: string;
    status: string;
    reason: string | null;
    event_ids: string[];
  }>(
    `select m.dedupe_key, m.status, m.reason,
            coalesce(array_agg(e.id::text order by e.sequence) filter (where e.id is not null), '{}') as event_ids
       from switchyard.inbound_messages m left join switchyard.events e on e.inbound_message_id = m.id
      where m.instance_id = $1 group by m.dedupe_key, m.status, m.reason`,
    [instance],
  );
  return new Map(
    r.rows.map((row) => [
      row.dedupe_key,
      { dedupeKey: row.dedupe_key, status: row.status, reason: row.reason, eventIds: row.event_ids },
    ]),
  );
}

/** What the subscriber accepted, grouped by `webhook-id`. */
export interface Received {
  /** Distinct webhook-ids answered 2xx. */
  ids: Set<string>;
  /** 2xx requests beyond the first per webhook-id. */
  duplicates: number;
  /** webhook-ids whose repeats carried a different body (must be none). */
  conflicting: string[];
  /** Subjects whose first 2xx deliveries arrived out of feed order (must be none). */
  outOfOrder: string[];
  /** Requests without a valid signature (must be none). */
  unsigned: number;
}

/**
 * Reads a recording subscriber's accepted requests: distinct webhook-ids, duplicates (which must
 * repeat the same body), per-subject order of first arrivals, signature validity.
 */
export function received(requests: readonly RecordedRequest[]): Received {
  const bodies = new Map<string, string>();
  const conflicting = new Set<string>();
  const lastSequence = new Map<string, bigint>();
  const outOfOrder = new Set<string>();
  let duplicates = 0;
  let unsigned = 0;
  for (const r of requests) {
    if (!r.response || r.response.aborted || r.response.status >= 300 || !r.webhookId) continue;
    if (!r.signature.valid) unsigned++;
    const seen = bodies.get(r.webhookId);
    if (seen !== undefined) {
      duplicates++;
      if (seen !== r.text) conflicting.add(r.webhookId);
      continue;
    }
    bodies.set(r.webhookId, r.text);
    const event = r.json as { subject?: string; sequence?: string };
    if (event.subject && event.sequence) {
      const seq = BigInt(event.sequence);
      const last = lastSequence.get(event.subject);
      if (last !== undefined && seq < last) outOfOrder.add(event.subject);
      lastSequence.set(event.subject, seq);
    }
  }
  return {
    ids: new Set(bodies.keys()),
    duplicates,
    conflicting: [...conflicting],
    outOfOrder: [...outOfOrder],
    unsigned,
  };
}

/** The exact accounting of one run (what docs/reliability.md reports). */
export interface Accounting {
  acknowledged: number;
  stored: number;
  /** Stored although the client never saw the acknowledgement (cut by the fault). */
  storedUnacknowledged: number;
  /** Acknowledged ids with no stored row: must be empty. */
  lost: string[];
  expectedEvents: number;
  delivered: number;
  /** Expected event ids never delivered: must be empty. */
  undelivered: string[];
  /** Delivered ids that no stored message produced: must be empty. */
  unexpected: string[];
  duplicates: number;
}

/** Compares the ledger, the database and the subscriber. */
export function account(ledger: Ledger, stored: Map<string, StoredMessage>, got: Received): Accounting {
  const acked = new Set(ledger.acked);
  const expected = new Set<string>();
  for (const m of stored.values()) for (const id of m.eventIds) expected.add(id);
  return {
    acknowledged: acked.size,
    stored: stored.size,
    storedUnacknowledged: [...stored.keys()].filter((k) => !acked.has(k)).length,
    lost: [...acked].filter((id) => !stored.has(id)),
    expectedEvents: expected.size,
    delivered: got.ids.size,
    undelivered: [...expected].filter((id) => !got.ids.has(id)),
    unexpected: [...got.ids].filter((id) => !expected.has(id)),
    duplicates: got.duplicates,
  };
}

/** Opens a pool on the test database (direct, not through any proxy). */
export function openPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  return pool;
}

/** A hub and its HTTP app in this process, on 127.0.0.1. */
export interface InProcessHub {
  hub: Hub;
  app: SwitchyardApp;
  base: string;
  close(): Promise<void>;
}

/**
 * Starts a hub (test connector and the shipped connectors) with its app in this process, the
 * `reltest` instance `rel` created with {@link API_KEY}.
 */
export async function startInProcessHub(options: {
  databaseUrl: string;
  logger?: pino.Logger;
  adminToken?: string;
  bodyLimit?: number;
  pipeline?: PipelineOptions;
  /** Connections in the hub's pool (default 10). */
  poolSize?: number;
}): Promise<InProcessHub> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const hub = await createHub({
    databaseUrl: options.databaseUrl,
    connectors: [relConnector as unknown as Connector, ...shippedConnectors],
    secretKey: SECRET_KEY,
    logger,
    ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
    options: { ...FAST_OPTIONS, queue: false, ...options.pipeline },
  });
  await hub.start();
  await hub.instances.upsert({ id: INSTANCE, connector: 'reltest', settings: { apiKey: API_KEY } });
  const app = await buildApp({
    hub,
    adminToken: options.adminToken,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    trustedProxies: [],
    logger,
    // Fuzzing sends hundreds of refused requests from one address on purpose.
    authRateLimit: false,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    hub,
    app,
    base,
    async close() {
      await app.close();
      await hub.stop({ graceful: false });
    },
  };
}

/** A shipped connector's instance as the hostile-input and secret tests set it up. */
export interface RealInstance {
  id: string;
  connector: string;
  settings: Record<string, unknown>;
  /** Headers that authenticate a push. */
  goodHeaders: Record<string, string>;
  /** Its push routes below /hooks/{id} that need no path credential. */
  routes: string[];
  vendor: string;
  /** Every secret value in its settings (and derived credentials) that must never be shown. */
  secrets: string[];
}

const DP_KEY = 'dp-push-key-rel-5b7d9f1a3c';
const DP_CLIENT_SECRET = 'dp-client-secret-rel-2e4g6i8k';
const CW_KEY = 'cw-hook-key-rel-0a1b2c3d4e5f';
const CW_API_KEY = 'cw-api-key-rel-9z8y7x6w5v';
const BB_PASSWORD = 'bb-password-rel-4u3t2s1r0q';
const IN_SECRET = 'in-secret-rel-6p5o4n3m2l1k';
const QB_AUTH = 'Bearer qb-token-rel-7j6h5g4f3d';

/**
 * Instances of every shipped connector with distinctive secrets. Vendor API base URLs point at a
 * closed loopback port, so enrichment fails fast and nothing leaves the machine.
 */
export function realInstances(deadPort: number): RealInstance[] {
  const basic = `Basic ${Buffer.from(`bb-user:${BB_PASSWORD}`).toString('base64')}`;
  return [
    {
      id: 'dp',
      connector: 'docplanner',
      vendor: 'docplanner',
      settings: {
        domain: 'znanylekarz.pl',
        apiBaseUrl: `http://127.0.0.1:${deadPort}/api/v3/integration`,
        clientId: 'rel-client',
        clientSecret: DP_CLIENT_SECRET,
        pushAuth: { headerName: 'X-Docplanner-Key', apiKey: DP_KEY },
      },
      goodHeaders: { 'x-docplanner-key': DP_KEY },
      routes: [''],
      secrets: [DP_KEY, DP_CLIENT_SECRET],
    },
    {
      id: 'cw',
      connector: 'clockwisemd',
      vendor: 'clockwisemd',
      settings: {
        auth: { mode: 'either', key: CW_KEY },
        apiKey: CW_API_KEY,
        apiBaseUrl: `http://127.0.0.1:${deadPort}/v1`,
      },
      goodHeaders: { authtoken: CW_KEY },
      routes: [''],
      secrets: [CW_KEY, CW_API_KEY],
    },
    {
      id: 'bb',
      connector: 'bookingbug',
      vendor: 'bookingbug',
      settings: { basicAuth: { username: 'bb-user', password: BB_PASSWORD } },
      goodHeaders: { authorization: basic },
      routes: ['', 'cancellation'],
      secrets: [BB_PASSWORD, basic.slice('Basic '.length)],
    },
    {
      id: 'in',
      connector: 'instinctive-notes',
      vendor: 'instinctive-notes',
      settings: { auth: { mode: 'header', secret: IN_SECRET } },
      goodHeaders: { 'x-instinctive-secret': IN_SECRET },
      routes: [''],
      secrets: [IN_SECRET],
    },
    {
      id: 'qb',
      connector: 'quable',
      vendor: 'quable',
      settings: { authorization: QB_AUTH },
      goodHeaders: { authorization: QB_AUTH },
      routes: [''],
      secrets: [QB_AUTH.slice('Bearer '.length)],
    },
  ];
}

/** Every fixture body of a vendor (the conformance fixtures), as raw JSON text. */
export function fixtureBodies(vendor: string): string[] {
  const dir = new URL(`../../../connectors/${vendor}/fixtures/`, import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readFileSync(new URL(f, dir), 'utf8'));
}
