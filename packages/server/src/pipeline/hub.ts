import {
  type Connector,
  type InboundRequest,
  type JsonObject,
  type JsonValue,
  SwitchyardError,
} from '@switchyard/core';
import { PgBoss } from 'pg-boss';
import pino from 'pino';
import { redactConfig } from '../delivery/redact.ts';
import { validateSchedule } from '../delivery/retry-schedule.ts';
import { deriveKey, openSecret, sealSecret, secretHint } from '../delivery/secret-box.ts';
import { generateSecret, isValidSecret } from '../delivery/sign.ts';
import { createVendorHttp } from '../delivery/vendor-http.ts';
import { openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import * as q from '../storage/queries.ts';
import type {
  Attempt,
  Delivery,
  DeliveryWithAttempts,
  HubConfig,
  HubEvent,
  InboundMessage,
  InboundMessageDetail,
  Instance,
  InstanceHealth,
  InstanceInput,
  Page,
  Subscription,
  SubscriptionInput,
} from './api-types.ts';
import { type AttemptResult, attemptResult, Deliverer, postSigned } from './deliver.ts';
import { invalidTypePatterns } from './fanout.ts';
import { eventIdFor, newId } from './ids.ts';
import { InboundWriter, type IngestResult, ingest } from './ingest.ts';
import { Normalizer } from './normalize.ts';
import { Poller } from './poller.ts';
import { type PurgeResult, purge } from './retention.ts';
import { connectorLogger, instanceLoader, type Runtime, resolveOptions } from './runtime.ts';
import { checkedSettings } from './settings.ts';
import { Listener, WorkerLoop } from './wake.ts';

const RETENTION_QUEUE = 'switchyard-retention';

function notFound(what: string, id: string): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_NOT_FOUND', `no ${what} ${JSON.stringify(id)}`, {
    details: { [what]: id },
  });
}

function invalid(message: string, details?: Record<string, unknown>): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_INVALID_INPUT', message, details ? { details } : undefined);
}

function clampLimit(limit: number | undefined, max = 500, def = 50): number {
  if (limit === undefined) return def;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, max);
}

function toEvent(row: q.EventRow): HubEvent {
  return { ...(row.envelope as unknown as HubEvent), sequence: row.sequence };
}

function toDelivery(r: q.DeliveryRow): Delivery {
  return {
    id: r.id,
    subscriptionId: r.subscription_id,
    eventId: r.event_id,
    eventSequence: r.event_sequence,
    subject: r.subject,
    status: r.status,
    reason: r.reason,
    replayOf: r.replay_of,
    supersededBy: r.superseded_by,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    createdAt: r.created_at,
    completedAt: r.completed_at,
  };
}

function toAttempt(a: q.AttemptRow): Attempt {
  return {
    attempt: a.attempt,
    startedAt: a.started_at,
    latencyMs: a.latency_ms,
    statusCode: a.status_code,
    responseSnippet: a.response_snippet,
    error: a.error,
    outcome: a.outcome,
  };
}

function toSubscription(r: q.SubscriptionRow): Subscription {
  return {
    id: r.id,
    kind: r.kind,
    url: r.url,
    eventTypes: r.event_types,
    sources: r.sources,
    secrets: r.secrets.map((s) => ({ secretHint: s.hint, createdAt: s.createdAt, expiresAt: s.expiresAt })),
    contentType: r.content_type,
    timeoutMs: r.timeout_ms,
    retryScheduleMs: r.retry_schedule_ms,
    rateLimit: r.rate_limit,
    ordering: r.ordering,
    approver: r.approver,
    approverFilters: r.approver_filters,
    allowPrivateAddresses: r.allow_private_addresses,
    disableAfterConsecutiveDead: r.disable_after_consecutive_dead,
    consecutiveDead: r.consecutive_dead,
    disabledAt: r.disabled_at,
    disabledReason: r.disabled_reason,
    managedBy: r.managed_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toInbound(r: q.InboundRow): InboundMessage {
  return {
    id: r.id,
    instanceId: r.instance_id,
    route: r.route,
    dedupeKey: r.dedupe_key,
    vendorType: r.vendor_type,
    orderingKey: r.ordering_key,
    occurredAt: r.occurred_at,
    gate: r.gate,
    origin: r.origin,
    status: r.status,
    reason: r.reason,
    error: r.error,
    attempts: r.attempts,
    eventCount: r.event_count,
    receivedAt: r.received_at,
    processedAt: r.processed_at,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A running Switchyard hub: storage, the pipeline workers and the admin operations. Create it
 * with {@link createHub}. Every method is what one admin API route does; errors are
 * `SwitchyardError`s whose `status` is the HTTP answer (404 unknown id, 422 bad input, 409 wrong state).
 */
export type Hub = Awaited<ReturnType<typeof createHub>>;

/**
 * Opens the database, runs migrations and returns the hub. Call `start()` to run the workers
 * (normalize, deliver, vendor pull, retention); `ingest` and the admin methods work without them.
 *
 * @example
 * ```ts
 * const hub = await createHub({ databaseUrl, connectors: [docplanner], secretKey: process.env.SY_SECRET_KEY! });
 * await hub.start();
 * await hub.instances.upsert({ id: 'dp-main', connector: 'docplanner', mode: 'push', settings: { apiKey: '…' } });
 * const { subscription, secret } = await hub.subscriptions.create({ url: 'https://crm.example/hooks', eventTypes: ['appointment.*'] });
 * const answer = await hub.ingest('dp-main', request); // { ok: true, status: 200, body: { status: 'accepted' }, ... }
 * await hub.stop({ graceful: true });
 * ```
 */
export async function createHub(config: HubConfig) {
  const logger = config.logger ?? pino({ name: 'switchyard' });
  const options = resolveOptions(config.options);
  const connectors = new Map<string, Connector>(config.connectors.map((c) => [c.name, c]));
  const key = deriveKey(config.secretKey);
  const cipher = {
    seal: (plaintext: string, context: string) => sealSecret(plaintext, key, context),
    open: (sealed: string, context: string) => openSecret(sealed, key, context),
  };
  const database = openDatabase(config.databaseUrl, { max: config.poolSize ?? 10 });
  const { db } = database;
  await migrate(db);

  let normalizeLoop: WorkerLoop | undefined;
  let deliverLoop: WorkerLoop | undefined;
  let pullLoop: WorkerLoop | undefined;
  const rt: Runtime = {
    db,
    databaseUrl: config.databaseUrl,
    logger,
    connectors,
    cipher,
    options,
    wakeNormalize: () => normalizeLoop?.wake(),
    wakeDeliver: () => deliverLoop?.wake(),
    wakePull: () => pullLoop?.wake(),
    ...instanceLoader(db, connectors, cipher, options.instanceCacheMs),
  };
  const vendorHttp =
    config.vendorHttp ?? createVendorHttp({ logger: connectorLogger(logger.child({ job: 'vendor-http' })) });
  // Ingest batches in flight: most of the pool, leaving connections for the workers' claims and commits.
  const writer = new InboundWriter(db, rt.wakeNormalize, {
    maxConcurrent: Math.max(2, (config.poolSize ?? 10) - 4),
  });
  // afterNormalize: the gate machinery's hook for matching bookings to gate requests (gates/).
  const normalizer = new Normalizer(rt, vendorHttp, config.afterNormalize);
  const deliverer = new Deliverer(rt);
  const poller = new Poller(rt, vendorHttp);
  let listener: Listener | undefined;
  let boss: PgBoss | undefined;
  let started = false;

  function connectorOf(name: string): Connector {
    const c = connectors.get(name);
    if (!c)
      throw invalid(`unknown connector ${JSON.stringify(name)}`, {
        connector: name,
        known: [...connectors.keys()],
      });
    return c;
  }

  function instanceView(row: q.InstanceRow): Instance {
    const connector = connectors.get(row.connector);
    const settings = JSON.parse(cipher.open(row.settings_sealed, `instance:${row.id}`)) as JsonObject;
    return {
      id: row.id,
      connector: row.connector,
      mode: row.mode,
      // Without the connector we cannot tell secrets apart: show nothing rather than too much.
      settings: connector ? redactConfig(settings, connector.configSchema) : {},
      ...(row.mode !== 'push' ? { pull: { intervalMs: row.pull_interval_ms } } : {}),
      ...(row.gate !== null ? { gate: row.gate } : {}),
      managedBy: row.managed_by,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  async function requireSubscription(id: string): Promise<q.SubscriptionRow> {
    const row = await q.getSubscription(db, id);
    if (!row) throw notFound('subscription', id);
    return row;
  }

  function sealSecrets(id: string, secrets: readonly string[], now = new Date()): q.StoredSecret[] {
    return secrets.map((secret, i) => {
      if (!isValidSecret(secret)) throw invalid(`secrets[${i}] is not a valid whsec_ signing secret`);
      return {
        sealed: cipher.seal(secret, `subscription:${id}`),
        hint: secretHint(secret),
        // Earlier entries are newer: they sign first.
        createdAt: new Date(now.getTime() - i).toISOString(),
        expiresAt: null,
      };
    });
  }

  function subscriptionValues(
    input: SubscriptionInput,
    base: q.SubscriptionRow | undefined,
    secrets: q.StoredSecret[],
  ): q.SubscriptionValues {
    const kind = input.kind ?? base?.kind ?? 'webhook';
    const url = input.url ?? base?.url ?? null;
    if (kind === 'webhook') {
      if (!url) throw invalid('a webhook subscription needs a url');
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw invalid('url is not an absolute URL');
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
        throw invalid('url must be http or https');
    }
    const eventTypes = input.eventTypes ?? base?.event_types ?? ['*'];
    const bad = invalidTypePatterns(eventTypes);
    if (eventTypes.length === 0 || bad.length > 0) {
      throw invalid(`eventTypes must be exact types, entity.* or *; bad: ${bad.join(', ')}`, { bad });
    }
    const timeoutMs = input.timeoutMs ?? base?.timeout_ms ?? 15_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 300_000)
      throw invalid('timeoutMs must be 1..300000');
    let schedule =
      input.retryScheduleMs === undefined ? (base?.retry_schedule_ms ?? null) : input.retryScheduleMs;
    if (schedule !== null) schedule = validateSchedule(schedule);
    const contentType = input.contentType ?? base?.content_type ?? 'application/cloudevents+json';
    if (contentType !== 'application/cloudevents+json' && contentType !== 'application/json') {
      throw invalid('contentType must be application/cloudevents+json or application/json');
    }
    const deadLimit =
      input.disableAfterConsecutiveDead === undefined
        ? (base?.disable_after_consecutive_dead ?? null)
        : input.disableAfterConsecutiveDead;
    if (deadLimit !== null && (!Number.isInteger(deadLimit) || deadLimit < 1))
      throw invalid('disableAfterConsecutiveDead must be a positive integer');
    const ordering = input.ordering ?? base?.ordering ?? 'hold';
    if (ordering !== 'hold' && ordering !== 'release') throw invalid('ordering must be hold or release');
    return {
      kind,
      url: kind === 'webhook' ? url : null,
      eventTypes,
      sources: input.sources === undefined ? (base?.sources ?? null) : input.sources,
      secrets,
      contentType,
      timeoutMs,
      retryScheduleMs: schedule,
      rateLimit: input.rateLimit === undefined ? (base?.rate_limit ?? null) : input.rateLimit,
      ordering,
      approver: input.approver ?? base?.approver ?? false,
      approverFilters:
        input.approverFilters === undefined ? (base?.approver_filters ?? null) : input.approverFilters,
      allowPrivateAddresses: input.allowPrivateAddresses ?? base?.allow_private_addresses ?? false,
      disableAfterConsecutiveDead: deadLimit,
      managedBy: input.managedBy ?? base?.managed_by ?? 'api',
    };
  }

  async function withAttempts(rows: q.DeliveryRow[]): Promise<DeliveryWithAttempts[]> {
    const attempts = await q.listAttempts(
      db,
      rows.map((r) => r.id),
    );
    return rows.map((r) => ({
      ...toDelivery(r),
      attemptLog: attempts.filter((a) => a.delivery_id === r.id).map(toAttempt),
    }));
  }

  async function replayRow(row: q.DeliveryRow): Promise<q.DeliveryRow> {
    if (row.status === 'pending' || row.status === 'in_flight' || row.status === 'held') {
      throw new SwitchyardError(
        'SY_PIPELINE_CONFLICT',
        `delivery ${row.id} is ${row.status}: it will still be sent`,
        {
          details: { delivery: row.id, status: row.status },
        },
      );
    }
    return db.transaction().execute(async (trx) => {
      const fresh = await q.insertReplay(trx, newId(), row);
      if (row.status === 'dead') await q.releaseSubject(trx, row.subscription_id, row.subject);
      await q.notify(trx, q.CHANNEL_DELIVER);
      return fresh;
    });
  }

  const hub = {
    /** The resolved pipeline options (defaults filled in). */
    options,

    /**
     * Runs the workers (unless `options.workers` is false): LISTEN/NOTIFY wake-ups, normalize,
     * deliver and pull loops, and the pg-boss retention schedule.
     *
     * @example
     * ```ts
     * await hub.start();
     * ```
     */
    async start(): Promise<void> {
      if (started) return;
      started = true;
      if (options.workers) {
        const child = (job: string) => logger.child({ job });
        normalizeLoop = new WorkerLoop(
          'normalize',
          () => normalizer.tick(),
          options.pollIntervalMs,
          child('normalize'),
        );
        deliverLoop = new WorkerLoop(
          'deliver',
          () => deliverer.tick(),
          options.pollIntervalMs,
          child('deliver'),
        );
        pullLoop = new WorkerLoop(
          'pull',
          () => poller.tick(),
          Math.max(options.pollIntervalMs, 1000),
          child('pull'),
        );
        listener = new Listener(
          config.databaseUrl,
          new Map([
            [q.CHANNEL_NORMALIZE, rt.wakeNormalize],
            [q.CHANNEL_DELIVER, rt.wakeDeliver],
            [q.CHANNEL_PULL, rt.wakePull],
          ]),
          logger,
        );
        await listener.start();
        normalizeLoop.start();
        deliverLoop.start();
        pullLoop.start();
      }
      if (options.queue) {
        boss = new PgBoss({ connectionString: config.databaseUrl, schema: 'switchyard_queue', max: 2 });
        boss.on('error', (error) => logger.warn({ err: error }, 'pg-boss error'));
        await boss.start();
        if (options.workers && options.retention.cron !== false) {
          await boss.createQueue(RETENTION_QUEUE);
          await boss.schedule(RETENTION_QUEUE, options.retention.cron);
          await boss.work(RETENTION_QUEUE, async () => {
            const result = await purge(db, options.retention);
            logger.info({ ...result }, 'retention purge');
          });
        }
      }
    },

    /**
     * Stops the workers and closes the database. `graceful` (default true) lets attempts in
     * progress finish and record; `graceful: false` drops them (their leases expire and another
     * process retries them, as after a crash).
     *
     * @example
     * ```ts
     * process.on('SIGTERM', () => hub.stop({ graceful: true }));
     * ```
     */
    async stop(opts: { graceful?: boolean } = {}): Promise<void> {
      const graceful = opts.graceful ?? true;
      await Promise.all([normalizeLoop?.stop(), deliverLoop?.stop(), pullLoop?.stop()]);
      await listener?.stop();
      if (graceful) await Promise.all([normalizer.drain(), deliverer.drain()]);
      await boss?.stop({ graceful, timeout: graceful ? 30_000 : 1000 }).catch(() => {});
      await database.close().catch(() => {});
    },

    /**
     * Takes one vendor push for an instance: authenticate, parse, store durably (deduplicated),
     * then answer. The HTTP layer sends `result.status` with `result.body`/`headers`, or
     * `result.problem` as problem+json.
     *
     * @example
     * ```ts
     * const r = await hub.ingest('clockwise-1', { route: 'default', params: {}, query: {}, method: 'POST', headers, rawBody, sourceIp, receivedAt: new Date() });
     * if (!r.ok) reply.code(r.status).type('application/problem+json').send(r.problem);
     * ```
     */
    ingest(instanceId: string, request: InboundRequest): Promise<IngestResult> {
      return ingest(rt, writer, config.gateResponder, instanceId, request);
    },

    instances: {
      /**
       * Creates or replaces a connector instance. Settings are stored encrypted.
       *
       * @example
       * ```ts
       * await hub.instances.upsert({ id: 'bb-main', connector: 'bookingbug', mode: 'push', settings: { username: 'u', password: 'p' } });
       * ```
       */
      async upsert(input: InstanceInput): Promise<Instance> {
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$/.test(input.id ?? '')) {
          throw invalid(
            'instance id must be 1..100 letters, digits, _ . - (starting with a letter or digit)',
          );
        }
        const connector = connectorOf(input.connector);
        const mode = input.mode ?? (connector.push ? 'push' : 'pull');
        if (mode !== 'push' && mode !== 'pull' && mode !== 'both')
          throw invalid('mode must be push, pull or both');
        if (mode !== 'pull' && !connector.push)
          throw invalid(`connector ${connector.name} cannot be pushed to`);
        if (mode !== 'push' && !connector.pull) throw invalid(`connector ${connector.name} cannot pull`);
        const intervalMs = input.pull?.intervalMs ?? null;
        if (intervalMs !== null && (!Number.isInteger(intervalMs) || intervalMs < 100)) {
          throw invalid('pull.intervalMs must be an integer ≥ 100');
        }
        const row = await q.upsertInstance(db, {
          id: input.id,
          connector: connector.name,
          mode,
          settingsSealed: cipher.seal(
            JSON.stringify(checkedSettings(connector, input.settings ?? {})),
            `instance:${input.id}`,
          ),
          pullIntervalMs: intervalMs,
          gate: (input.gate ?? null) as JsonValue,
          managedBy: input.managedBy ?? 'api',
        });
        rt.forgetInstance(input.id);
        if (mode !== 'push') rt.wakePull();
        return instanceView(row);
      },

      /** @example `const i = await hub.instances.get('dp-main');` */
      async get(id: string): Promise<Instance> {
        const row = await q.getInstance(db, id);
        if (!row) throw notFound('instance', id);
        return instanceView(row);
      },

      /** @example `const all = await hub.instances.list();` */
      async list(): Promise<Instance[]> {
        return (await q.listInstances(db)).map(instanceView);
      },

      /** Removes an instance (its stored messages and events stay until retention). @example `await hub.instances.remove('dp-old');` */
      async remove(id: string): Promise<void> {
        if (!(await q.deleteInstance(db, id))) throw notFound('instance', id);
        rt.forgetInstance(id);
      },

      /**
       * Health of an instance: last message, last error, pull position/lag, inbound backlog.
       *
       * @example
       * ```ts
       * const h = await hub.instances.health('dp-main'); // { lastMessageAt, pull: { lagMs, ... }, inbound: { received: 0, failed: 2 } }
       * ```
       */
      async health(id: string): Promise<InstanceHealth> {
        const row = await q.getInstance(db, id);
        if (!row) throw notFound('instance', id);
        const counts = await q.countInbound(db, id);
        return {
          id,
          lastMessageAt: row.last_message_at,
          lastError: row.last_error,
          lastErrorAt: row.last_error_at,
          pull:
            row.mode === 'push'
              ? null
              : {
                  cursor: row.pull_cursor,
                  nextAt: row.pull_next_at,
                  lastSuccessAt: row.pull_last_success_at,
                  consecutiveFailures: row.pull_consecutive_failures,
                  lagMs: row.pull_lag_ms === null ? null : Number(row.pull_lag_ms),
                },
          inbound: counts,
        };
      },

      /**
       * Runs one pull turn for an instance now (what the poller does on its schedule).
       *
       * @example
       * ```ts
       * const { stored } = await hub.instances.pullNow('dp-main');
       * ```
       */
      async pullNow(id: string): Promise<{ stored: number; duplicates: number; error?: string }> {
        const row = await q.getInstance(db, id);
        if (!row) throw notFound('instance', id);
        return poller.pullInstance(row);
      },
    },

    subscriptions: {
      /**
       * Creates a subscription. A webhook subscription without `secrets` gets a generated one,
       * returned here ONCE as `secret` (later only its `secretHint` is shown).
       *
       * @example
       * ```ts
       * const { subscription, secret } = await hub.subscriptions.create({ url: 'https://crm.example/hooks', eventTypes: ['appointment.*'] });
       * ```
       */
      async create(input: SubscriptionInput): Promise<{ subscription: Subscription; secret?: string }> {
        const id = input.id ?? newId();
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$/.test(id))
          throw invalid('subscription id must be 1..100 letters, digits, _ . -');
        let generated: string | undefined;
        let secrets = input.secrets ?? [];
        if ((input.kind ?? 'webhook') === 'webhook' && secrets.length === 0) {
          generated = generateSecret();
          secrets = [generated];
        }
        const values = subscriptionValues(input, undefined, sealSecrets(id, secrets));
        if (await q.getSubscription(db, id)) {
          throw new SwitchyardError('SY_PIPELINE_CONFLICT', `subscription ${JSON.stringify(id)} exists`);
        }
        const row = await q.insertSubscription(db, id, values);
        return { subscription: toSubscription(row), ...(generated ? { secret: generated } : {}) };
      },

      /**
       * Changes a subscription; fields left out stay. `secrets`, when given, replaces the signing
       * secrets (config-managed subscriptions); use `rotateSecret` for an overlap.
       *
       * @example
       * ```ts
       * await hub.subscriptions.update(id, { eventTypes: ['appointment.*', 'slot.*'], timeoutMs: 5000 });
       * ```
       */
      async update(id: string, patch: SubscriptionInput): Promise<Subscription> {
        const base = await requireSubscription(id);
        const secrets = patch.secrets ? sealSecrets(id, patch.secrets) : base.secrets;
        const row = await q.updateSubscription(db, id, subscriptionValues(patch, base, secrets));
        if (!row) throw notFound('subscription', id);
        return toSubscription(row);
      },

      /** @example `const s = await hub.subscriptions.get(id);` */
      async get(id: string): Promise<Subscription> {
        return toSubscription(await requireSubscription(id));
      },

      /** @example `const all = await hub.subscriptions.list();` */
      async list(): Promise<Subscription[]> {
        return (await q.listSubscriptions(db)).map(toSubscription);
      },

      /** Deletes a subscription with its deliveries. @example `await hub.subscriptions.remove(id);` */
      async remove(id: string): Promise<void> {
        if (!(await q.deleteSubscription(db, id))) throw notFound('subscription', id);
      },

      /**
       * Stops deliveries to a subscription (they wait; nothing new is fanned out to it).
       *
       * @example
       * ```ts
       * await hub.subscriptions.disable(id, 'maintenance window');
       * ```
       */
      async disable(id: string, reason = 'disabled by an operator'): Promise<Subscription> {
        const row = await q.disableSubscription(db, id, reason);
        if (!row) throw notFound('subscription', id);
        return toSubscription(row);
      },

      /**
       * Re-enables a subscription. `replayMissed` also sends what it missed: the dead deliveries
       * that led to the disabling and every matching event stored while it was disabled.
       *
       * @example
       * ```ts
       * const { replayed } = await hub.subscriptions.enable(id, { replayMissed: true });
       * ```
       */
      async enable(
        id: string,
        opts: { replayMissed?: boolean } = {},
      ): Promise<{ subscription: Subscription; replayed: number }> {
        const before = await requireSubscription(id);
        const result = await db.transaction().execute(async (trx) => {
          let replayed = 0;
          if (opts.replayMissed && before.disabled_at !== null) {
            for (const dead of await q.listDeadUnsuperseded(trx, id)) {
              await q.insertReplay(trx, newId(), dead);
              await q.releaseSubject(trx, id, dead.subject);
              replayed++;
            }
            if (before.kind === 'webhook') {
              replayed += await q.insertReplaysSince(trx, before, {
                afterSequence: before.disabled_at_sequence ?? '0',
              });
            }
          }
          const row = await q.enableSubscription(trx, id);
          await q.notify(trx, q.CHANNEL_DELIVER);
          return { row: row!, replayed };
        });
        rt.wakeDeliver();
        return { subscription: toSubscription(result.row), replayed: result.replayed };
      },

      /**
       * Adds a new signing secret; the previous ones keep signing for `overlapMs` (default 24 h),
       * so old and new signatures are sent together while the subscriber switches. Returns the
       * new secret ONCE.
       *
       * @example
       * ```ts
       * const { secret } = await hub.subscriptions.rotateSecret(id, { overlapMs: 3_600_000 });
       * ```
       */
      async rotateSecret(
        id: string,
        opts: { overlapMs?: number; secret?: string } = {},
      ): Promise<{ subscription: Subscription; secret: string }> {
        const row = await requireSubscription(id);
        const secret = opts.secret ?? generateSecret();
        const now = new Date();
        const expiry = new Date(now.getTime() + (opts.overlapMs ?? 24 * 3_600_000)).toISOString();
        const kept = row.secrets
          .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now.getTime())
          .map((s) => ({
            ...s,
            expiresAt: s.expiresAt !== null && s.expiresAt < expiry ? s.expiresAt : expiry,
          }));
        const [fresh] = sealSecrets(id, [secret], now);
        await q.setSubscriptionSecrets(db, id, [fresh!, ...kept]);
        return { subscription: toSubscription(await requireSubscription(id)), secret };
      },
    },

    events: {
      /**
       * Lists events, newest first. `type` accepts the subscription patterns (`appointment.*`).
       *
       * @example
       * ```ts
       * const page = await hub.events.list({ type: 'appointment.*', limit: 20 });
       * const next = await hub.events.list({ type: 'appointment.*', cursor: page.nextCursor! });
       * ```
       */
      async list(
        f: {
          type?: string;
          source?: string;
          subject?: string;
          since?: Date;
          until?: Date;
          cursor?: string;
          limit?: number;
        } = {},
      ): Promise<Page<HubEvent>> {
        const limit = clampLimit(f.limit);
        if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
        const rows = await q.listEvents(db, {
          ...(f.type ? { types: [f.type] } : {}),
          ...(f.source ? { source: f.source } : {}),
          ...(f.subject ? { subject: f.subject } : {}),
          ...(f.since ? { since: f.since } : {}),
          ...(f.until ? { until: f.until } : {}),
          ...(f.cursor ? { beforeSequence: f.cursor } : {}),
          limit,
          ascending: false,
        });
        return {
          items: rows.map(toEvent),
          nextCursor: rows.length === limit ? rows[rows.length - 1]!.sequence : null,
        };
      },

      /**
       * One event with its deliveries and their attempts.
       *
       * @example
       * ```ts
       * const { event, deliveries } = await hub.events.get(id);
       * ```
       */
      async get(id: string): Promise<{ event: HubEvent; deliveries: DeliveryWithAttempts[] }> {
        if (!UUID.test(id)) throw notFound('event', id);
        const row = await q.getEvent(db, id);
        if (!row) throw notFound('event', id);
        const deliveries = await q.listDeliveries(db, { eventId: id, limit: 500 });
        return { event: toEvent(row), deliveries: await withAttempts(deliveries.reverse()) };
      },
    },

    deliveries: {
      /**
       * Lists deliveries, newest first.
       *
       * @example
       * ```ts
       * const dead = await hub.deliveries.list({ subscriptionId: id, status: 'dead' });
       * ```
       */
      async list(
        f: {
          subscriptionId?: string;
          eventId?: string;
          status?: Delivery['status'];
          cursor?: string;
          limit?: number;
        } = {},
      ): Promise<Page<Delivery>> {
        const limit = clampLimit(f.limit);
        if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
        if (f.eventId !== undefined && !UUID.test(f.eventId)) return { items: [], nextCursor: null };
        const rows = await q.listDeliveries(db, {
          ...(f.subscriptionId ? { subscriptionId: f.subscriptionId } : {}),
          ...(f.eventId ? { eventId: f.eventId } : {}),
          ...(f.status ? { status: f.status } : {}),
          ...(f.cursor ? { beforeSeq: f.cursor } : {}),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return {
          items: page.map(toDelivery),
          nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null,
        };
      },

      /** One delivery with every attempt (status, latency, response snippet). @example `const d = await hub.deliveries.get(id);` */
      async get(id: string): Promise<DeliveryWithAttempts> {
        if (!UUID.test(id)) throw notFound('delivery', id);
        const row = await q.getDelivery(db, id);
        if (!row) throw notFound('delivery', id);
        return (await withAttempts([row]))[0]!;
      },

      /**
       * Sends a finished delivery again as a new delivery of the SAME event (same `webhook-id`).
       * Replaying a dead delivery also lets the deliveries held behind it go.
       *
       * @example
       * ```ts
       * const again = await hub.deliveries.replay(deadId);
       * ```
       */
      async replay(id: string): Promise<Delivery> {
        if (!UUID.test(id)) throw notFound('delivery', id);
        const row = await q.getDelivery(db, id);
        if (!row) throw notFound('delivery', id);
        const fresh = await replayRow(row);
        rt.wakeDeliver();
        return toDelivery(fresh);
      },

      /**
       * Replays every dead (not yet replayed) delivery of a subscription, oldest event first.
       *
       * @example
       * ```ts
       * const { replayed } = await hub.deliveries.replayDead(subscriptionId);
       * ```
       */
      async replayDead(subscriptionId: string): Promise<{ replayed: number }> {
        await requireSubscription(subscriptionId);
        const replayed = await db.transaction().execute(async (trx) => {
          const dead = await q.listDeadUnsuperseded(trx, subscriptionId);
          for (const row of dead) {
            await q.insertReplay(trx, newId(), row);
            await q.releaseSubject(trx, subscriptionId, row.subject);
          }
          await q.notify(trx, q.CHANNEL_DELIVER);
          return dead.length;
        });
        rt.wakeDeliver();
        return { replayed };
      },

      /**
       * Sends again every event matching the subscription that was stored since `since`, as new
       * deliveries with the same event ids.
       *
       * @example
       * ```ts
       * await hub.deliveries.replaySince(subscriptionId, new Date(Date.now() - 3_600_000));
       * ```
       */
      async replaySince(subscriptionId: string, since: Date): Promise<{ replayed: number }> {
        const sub = await requireSubscription(subscriptionId);
        if (!(since instanceof Date) || Number.isNaN(since.getTime()))
          throw invalid('since must be a valid date');
        if (sub.kind !== 'webhook')
          throw invalid('a pull subscription replays by polling from an earlier cursor');
        const replayed = await db.transaction().execute(async (trx) => {
          const n = await q.insertReplaysSince(trx, sub, { since });
          await q.notify(trx, q.CHANNEL_DELIVER);
          return n;
        });
        rt.wakeDeliver();
        return { replayed };
      },

      /**
       * Gives up on a pending, held or dead delivery: it will not be sent, and later deliveries of
       * its subject stop waiting for it.
       *
       * @example
       * ```ts
       * await hub.deliveries.skip(deadId);
       * ```
       */
      async skip(id: string): Promise<Delivery> {
        if (!UUID.test(id)) throw notFound('delivery', id);
        const row = await db.transaction().execute(async (trx) => {
          const skipped = await q.skipDelivery(trx, id);
          if (skipped) {
            await q.releaseSubject(trx, skipped.subscription_id, skipped.subject);
            await q.notify(trx, q.CHANNEL_DELIVER);
          }
          return skipped;
        });
        if (!row) {
          const existing = await q.getDelivery(db, id);
          if (!existing) throw notFound('delivery', id);
          throw new SwitchyardError(
            'SY_PIPELINE_CONFLICT',
            `delivery ${id} is ${existing.status}: it cannot be skipped`,
          );
        }
        rt.wakeDeliver();
        return toDelivery(row);
      },
    },

    inbound: {
      /**
       * Lists stored inbound messages, newest first.
       *
       * @example
       * ```ts
       * const failed = await hub.inbound.list({ status: 'failed', instanceId: 'dp-main' });
       * ```
       */
      async list(
        f: { status?: InboundMessage['status']; instanceId?: string; cursor?: string; limit?: number } = {},
      ): Promise<Page<InboundMessage>> {
        const limit = clampLimit(f.limit);
        if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
        const rows = await q.listInbound(db, {
          ...(f.status ? { status: f.status } : {}),
          ...(f.instanceId ? { instanceId: f.instanceId } : {}),
          ...(f.cursor ? { beforeSeq: f.cursor } : {}),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return {
          items: page.map(toInbound),
          nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null,
        };
      },

      /** One message with its payload, redacted headers, raw body and the events it produced. */
      async get(id: string): Promise<InboundMessageDetail> {
        if (!UUID.test(id)) throw notFound('inbound message', id);
        const row = await q.getInbound(db, id);
        if (!row) throw notFound('inbound message', id);
        const events = await q.listEventsOfInbound(db, id);
        return {
          ...toInbound(row),
          payload: row.payload,
          rawBody: row.raw_body ? row.raw_body.toString('utf8') : null,
          headers: row.headers,
          events: events.map(toEvent),
        };
      },

      /**
       * Runs normalization again for a failed or ignored message (after a connector fix). Event ids
       * stay the same, so nothing already delivered is duplicated.
       *
       * @example
       * ```ts
       * await hub.inbound.renormalize(messageId);
       * ```
       */
      async renormalize(id: string): Promise<InboundMessage> {
        if (!UUID.test(id)) throw notFound('inbound message', id);
        const row = await db.transaction().execute(async (trx) => {
          const r = await q.requeueInbound(trx, id);
          if (r) await q.notify(trx, q.CHANNEL_NORMALIZE);
          return r;
        });
        if (!row) {
          const existing = await q.getInbound(db, id);
          if (!existing) throw notFound('inbound message', id);
          throw new SwitchyardError('SY_PIPELINE_CONFLICT', `inbound message ${id} is ${existing.status}`);
        }
        rt.wakeNormalize();
        return toInbound(row);
      },
    },

    feed: {
      /**
       * Reads a pull subscription's events in order after `after` (default: the last acknowledged
       * position). Pass `nextCursor` to `ack` once processed, or as `after` to read on.
       *
       * @example
       * ```ts
       * const { events, nextCursor } = await hub.feed.poll(subId, { limit: 100 });
       * await hub.feed.ack(subId, nextCursor);
       * ```
       */
      async poll(subscriptionId: string, opts: { after?: string; limit?: number } = {}) {
        const sub = await requireSubscription(subscriptionId);
        if (sub.kind !== 'pull') throw invalid(`subscription ${subscriptionId} is not a pull subscription`);
        if (opts.after !== undefined && !/^\d+$/.test(opts.after))
          throw invalid('after is not a valid cursor');
        const after = opts.after ?? (await q.getFeedCursor(db, subscriptionId)) ?? '0';
        const rows = await q.pollFeed(db, sub, after, clampLimit(opts.limit, 1000, 100));
        return {
          events: rows.map(toEvent),
          nextCursor: rows.length > 0 ? rows[rows.length - 1]!.sequence : after,
        };
      },

      /** Stores the acknowledged position (it never moves back). @example `await hub.feed.ack(subId, '42');` */
      async ack(subscriptionId: string, cursor: string): Promise<{ cursor: string }> {
        const sub = await requireSubscription(subscriptionId);
        if (sub.kind !== 'pull') throw invalid(`subscription ${subscriptionId} is not a pull subscription`);
        if (!/^\d+$/.test(cursor)) throw invalid('cursor is not valid');
        await q.setFeedCursor(db, subscriptionId, cursor);
        return { cursor: (await q.getFeedCursor(db, subscriptionId))! };
      },
    },

    /**
     * Sends a signed synthetic event to a webhook subscription now and reports the attempt
     * (nothing is stored). Its `webhook-id` is fresh each call.
     *
     * @example
     * ```ts
     * const r = await hub.sendTestEvent(subId); // { ok: true, statusCode: 204, latencyMs: 12.3 }
     * ```
     */
    async sendTestEvent(subscriptionId: string, type = 'switchyard.test'): Promise<AttemptResult> {
      const sub = await requireSubscription(subscriptionId);
      if (sub.kind !== 'webhook') throw invalid('only webhook subscriptions can be sent a test event');
      const id = eventIdFor(newId(), 0);
      const body = JSON.stringify({
        specversion: '1.0',
        id,
        type,
        source: 'switchyard',
        subject: `test/${id}`,
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        data: { test: true },
        connector: 'switchyard',
        instance: 'switchyard',
        vendortype: 'test',
      });
      return attemptResult(await postSigned(rt, sub, id, body));
    },

    retention: {
      /**
       * Purges what is older than the retention periods now (the scheduled job does the same).
       *
       * @example
       * ```ts
       * const removed = await hub.retention.purge(); // { deliveries, events, inbound }
       * ```
       */
      purge(now = new Date()): Promise<PurgeResult> {
        return purge(db, options.retention, now);
      },
    },

    /** Low-level handles for the HTTP layer and tests (health checks, metrics). */
    internals: { db, pool: database.pool, runtime: rt },
  };
  return hub;
}
