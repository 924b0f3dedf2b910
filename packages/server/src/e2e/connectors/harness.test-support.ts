/**
 * The end-to-end harness of the connector tests: a real hub (Postgres, workers woken by
 * LISTEN/NOTIFY) behind the real HTTP app on 127.0.0.1, one `*` webhook subscription to a recording
 * subscriber, and `settle()`, which drives one vendor push through to its signed deliveries.
 * Test-only; not exported from the package.
 */
import type { Connector, JsonValue } from '@switchyard/core';
import { validateEvent } from '@switchyard/core';
import {
  type RecordedRequest,
  type RecordingSubscriber,
  startRecordingSubscriber,
} from '@switchyard/testing';
import pino from 'pino';
import { expect } from 'vitest';
import type { HubEvent } from '../../events/api.ts';
import { createGates, type Gates } from '../../gates/gates.ts';
import { buildApp, createMetrics, type SwitchyardApp } from '../../http/index.ts';
import type { InboundMessageDetail } from '../../inbound/api.ts';
import { createHub, type Hub } from '../../pipeline/hub.ts';

/** A fixed signing secret so every test verifies against a secret it knows (32 bytes). */
export const SIGNING_SECRET = `whsec_${Buffer.from('e2e-connectors-signing-secret-32').toString('base64')}`;
const HUB_SECRET_KEY = 'e2e-connectors-secret-key-0123456789';

/** Options of {@link startE2e}. */
export interface E2eOptions {
  databaseUrl: string;
  connectors: readonly Connector<never>[];
  /** Wire the approval-gate machinery into the hub. */
  gates?: boolean;
  /** Transient normalization retries, ms before each (default two quick ones). */
  normalizeRetryMs?: number[];
  /**
   * `server.publicUrl`: the base of each push's `hookUrl`, for a vendor that signs the URL it was
   * told (Square) while its simulator posts to {@link E2e.hookUrl}, as through a proxy.
   */
  publicUrl?: string;
}

/** What one vendor push became: its stored messages and, per message, the deliveries of its events. */
export interface Settled {
  messages: InboundMessageDetail[];
  /** Every event the push produced, in message then event order. */
  events: HubEvent[];
  /** The subscriber's 2xx-answered request of each event, in the same order as `events`. */
  deliveries: RecordedRequest[];
}

/** A running hub + HTTP app + subscriber. */
export interface E2e {
  hub: Hub;
  app: SwitchyardApp;
  gates: Gates | undefined;
  /** e.g. `http://127.0.0.1:40123` */
  baseUrl: string;
  subscriber: RecordingSubscriber;
  subscriptionId: string;
  /** The hub's push URL of an instance (optionally a connector route below it). */
  hookUrl(instanceId: string, route?: string): string;
  /**
   * Runs `push` (one vendor push through a simulator), then waits until every inbound message it
   * stored for `instanceId` is processed and every event is delivered (2xx) to the subscriber.
   */
  settle(instanceId: string, push: () => Promise<unknown>, timeoutMs?: number): Promise<Settled>;
  /** Waits for new inbound messages of an instance that did not come from `settle` (pull). */
  settleNew(instanceId: string, count: number, timeoutMs?: number): Promise<Settled>;
  close(): Promise<void>;
}

/**
 * Scrapes `${baseUrl}/metrics` over HTTP (the Prometheus text format) and returns the value of the
 * series `name` whose labels include `labels`, or undefined when the scrape has no such series.
 *
 * @example
 * ```ts
 * await scrapeMetric(e2e.baseUrl, 'switchyard_normalizations_total', { instance: 'cw', outcome: 'retry' }); // 1
 * ```
 */
export async function scrapeMetric(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const answer = await fetch(`${baseUrl}/metrics`);
  expect(answer.status).toBe(200);
  for (const line of (await answer.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const seen = new Map(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => seen.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Polls `check` until it returns a value (not undefined/false), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  what: string,
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
    if (Date.now() > until) {
      throw new Error(`${what}: not reached in ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts the hub (fast schedules, no pg-boss maintenance queue), the HTTP app on 127.0.0.1:0, a
 * recording subscriber and a `*` subscription to it signed with {@link SIGNING_SECRET}.
 *
 * @example
 * ```ts
 * const e2e = await startE2e({ databaseUrl: db.url(), connectors: [docplannerConnector] });
 * const { events, deliveries } = await e2e.settle('dp', () => sim.push(body));
 * await e2e.close();
 * ```
 */
export async function startE2e(options: E2eOptions): Promise<E2e> {
  const logger = pino({ level: 'silent' });
  const gates = options.gates ? createGates({ logger }) : undefined;
  // One registry for the hub's subsystems and the app's `/metrics`, as `switchyard start` has it.
  const metrics = createMetrics();
  const hub = await createHub({
    metrics: metrics.registry,
    databaseUrl: options.databaseUrl,
    connectors: options.connectors as readonly Connector[],
    secretKey: HUB_SECRET_KEY,
    logger,
    ...(gates ? gates.hooks : {}),
    options: {
      // The gates hand requests over through the hub's pg-boss instance; nothing else here needs it.
      queue: gates !== undefined,
      pollIntervalMs: 200,
      retryScheduleMs: [0, 50, 100],
      retryJitter: 0,
      normalizeRetryMs: options.normalizeRetryMs ?? [50, 50],
      deliveryLeaseMarginMs: 1000,
      instanceCacheMs: 0,
    },
  });
  await hub.start();
  if (gates) await gates.start(hub.host);
  const app = await buildApp({
    hub,
    metrics,
    adminToken: 'e2e-admin-token',
    bodyLimit: 1 << 20,
    trustedProxies: [],
    logger,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the app has no TCP address');
  const baseUrl = `http://127.0.0.1:${address.port}`;
  const subscriber = await startRecordingSubscriber({ secrets: SIGNING_SECRET });
  const { subscription } = await hub.subscriptions.create({
    id: 'e2e-all',
    url: `${subscriber.url}events`,
    eventTypes: ['*'],
    secrets: [SIGNING_SECRET],
    allowPrivateAddresses: true,
  });
  const seen = new Map<string, Set<string>>();

  /** Every inbound message id of an instance, oldest first. */
  async function knownIds(instanceId: string): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await hub.inbound.list({ instanceId, limit: 500, ...(cursor ? { cursor } : {}) });
      for (const m of page.items) ids.push(m.id);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return ids.reverse();
  }

  async function seenOf(instanceId: string): Promise<Set<string>> {
    let set = seen.get(instanceId);
    if (!set) {
      set = new Set(await knownIds(instanceId));
      seen.set(instanceId, set);
    }
    return set;
  }

  async function finish(ids: string[], timeoutMs: number): Promise<Settled> {
    const messages: InboundMessageDetail[] = [];
    for (const id of ids) {
      messages.push(
        await eventually(
          async () => {
            const m = await hub.inbound.get(id);
            return m.status === 'received' ? undefined : m;
          },
          `inbound message ${id} processed`,
          timeoutMs,
        ),
      );
    }
    const events = messages.flatMap((m) => m.events);
    const deliveries: RecordedRequest[] = [];
    for (const event of events) {
      deliveries.push(
        await subscriber.waitFor(
          (r) => r.webhookId === event.id && r.response !== undefined && r.response.status < 300,
          timeoutMs,
        ),
      );
    }
    return { messages, events, deliveries };
  }

  async function newIds(instanceId: string): Promise<string[]> {
    const before = await seenOf(instanceId);
    const now = await knownIds(instanceId);
    const fresh = now.filter((id) => !before.has(id));
    for (const id of fresh) before.add(id);
    return fresh;
  }

  return {
    hub,
    app,
    gates,
    baseUrl,
    subscriber,
    subscriptionId: subscription.id,
    hookUrl: (instanceId, route) =>
      `${baseUrl}/hooks/${encodeURIComponent(instanceId)}${route ? `/${route}` : ''}`,
    async settle(instanceId, push, timeoutMs = 10_000) {
      await seenOf(instanceId);
      await push();
      return finish(await newIds(instanceId), timeoutMs);
    },
    async settleNew(instanceId, count, timeoutMs = 10_000) {
      const before = await seenOf(instanceId);
      const ids = await eventually(
        async () => {
          const now = await knownIds(instanceId);
          const fresh = now.filter((id) => !before.has(id));
          return fresh.length >= count ? fresh : undefined;
        },
        `${count} new inbound messages of ${instanceId}`,
        timeoutMs,
      ).catch(async (error: Error) => {
        // What the poller last recorded for the instance (its last error, failures, next turn):
        // a pull that failed waits its backoff, which no test timeout covers.
        const pull = await hub.instances.health(instanceId).then(
          (h) => JSON.stringify(h.pull),
          (e: Error) => `health unavailable: ${e.message}`,
        );
        throw new Error(`${error.message}; the instance's pull: ${pull}`);
      });
      for (const id of ids) before.add(id);
      return finish(ids, timeoutMs);
    },
    async close() {
      await app.close().catch(() => {});
      await gates?.stop().catch(() => {});
      await hub.stop().catch(() => {});
      await subscriber.close();
    },
  };
}

/**
 * What every delivered CloudEvent must be: signed with the subscription's secret, `webhook-id` =
 * event id, the stored event byte for byte, valid against the core schemas, from the instance.
 */
export function expectDelivered(
  request: RecordedRequest,
  event: HubEvent,
  expected: { instanceId: string; connector: string },
): void {
  expect(request.signature.valid, request.signature.error).toBe(true);
  expect(request.webhookId).toBe(event.id);
  expect(request.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
  const body = request.json as Record<string, JsonValue>;
  expect(body.id).toBe(event.id);
  expect(body).toEqual(JSON.parse(JSON.stringify(event)));
  const result = validateEvent(body);
  expect(result.valid ? [] : result.errors, `${String(body.type)} validates`).toEqual([]);
  expect(body).toMatchObject({
    specversion: '1.0',
    source: expected.instanceId,
    connector: expected.connector,
    instance: expected.instanceId,
  });
}

/** The delivered bodies of a settled push. */
export function bodies(
  settled: Settled,
): Array<Record<string, JsonValue> & { type: string; subject: string }> {
  return settled.deliveries.map(
    (d) => d.json as Record<string, JsonValue> & { type: string; subject: string },
  );
}
