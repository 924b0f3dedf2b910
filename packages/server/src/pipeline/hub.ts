import type { Connector, InboundRequest, InboundRequestHead } from '@switchyard/core';
import { SwitchyardError } from '@switchyard/core';
import { PgBoss } from 'pg-boss';
import pino from 'pino';
import { Registry } from 'prom-client';
import { invalid } from '../admin/errors.ts';
import { CONFIG_DEFAULTS } from '../config/schema.ts';
import { subscriptionDefaults } from '../config/units.ts';
import { deliveriesApi, deliveriesOfEvent } from '../deliveries/api.ts';
import { credentialHeaderNames } from '../delivery/redact.ts';
import { deriveKey, openSecret, sealSecret } from '../delivery/secret-box.ts';
import { createVendorHttp } from '../delivery/vendor-http.ts';
import { eventsApi } from '../events/api.ts';
import { storeHubEvents } from '../events/emit.ts';
import { eventIdFor } from '../events/ids.ts';
import { BOSS_TIMERS, bossSession, SCHEDULED_POLL_SECONDS, watchBossConnections } from '../host/boss.ts';
import type { HubHost } from '../host/host.ts';
import { HubListener } from '../host/listener.ts';
import { Notifier } from '../host/notifier.ts';
import { inboundApi } from '../inbound/api.ts';
import { instancesApi } from '../instances/api.ts';
import { addLogSecrets, connectorLogger } from '../logging/logger.ts';
import { newId, openDatabase, sessionApplicationName, withoutApplicationName } from '../storage/db.ts';
import { migrate, pendingMigrations } from '../storage/migrations.ts';
import { CHANNEL_DELIVER, CHANNEL_NORMALIZE, CHANNEL_PULL } from '../storage/queues.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { requireSubscription, subscriptionsApi } from '../subscriptions/api.ts';
import { feedApi } from '../subscriptions/feed.ts';
import { TEST_EVENT_TYPE } from '../subscriptions/schema.ts';
import { type AttemptResult, activeSecrets, attemptResult, Deliverer, postSigned } from './deliver.ts';
import type { HubConfig } from './hub-config.ts';
import {
  type Admission,
  accept,
  admit,
  InboundWriter,
  type IngestResult,
  ingest,
  storedHeaders,
} from './ingest.ts';
import { LeaseKeeper } from './leases.ts';
import { pipelineMetrics } from './metrics.ts';
import { Normalizer } from './normalize.ts';
import { Poller } from './poller.ts';
import { INGEST_PRESSURE_WAITING, IngestPressure } from './pressure.ts';
import { type PurgeResult, purge } from './retention.ts';
import { instanceLoader, type Runtime, resolveOptions } from './shared.ts';
import { keepStatistics, STATISTICS_INTERVAL_MS } from './statistics.ts';
import { aliasStore, deferredAliasStore, stateStore } from './stores.ts';
import { testDelivery } from './test-event.ts';
import { type TickResult, WorkerLoop } from './worker-loop.ts';

/**
 * Plan-stable connections beside the ingest batches' own: the workers' marked statements (normalize
 * claim, state read and commit, delivery claim and attempt record) that run at once, so they seldom
 * fall back to being planned on the pool.
 */
const PLAN_STABLE_WORKER_CONNECTIONS = 4;

/** Ingest batches (`InboundWriter` statements) in flight per process; why two: in `createHub`. */
const INGEST_IN_FLIGHT = 2;

const RETENTION_QUEUE = 'switchyard-retention';

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
  // Ingest batches in flight: two, one being written while the next one gathers the requests
  // that arrive meanwhile. More split the same requests into more, smaller statements, each paying
  // a round trip, a plan execution and a commit: `bench/lib/ingest-cpu.ts floor,http` (2026-12-02,
  // 2 cores, three rounds each, interleaved) gave the HTTP-only hub 0.82–0.95x the floor with 2,
  // 0.84–0.90x with 3 and 0.55–0.62x with 6 (the earlier pool size minus 4). Each runs the
  // plan-stable ingest insert, so each gets a connection of its own for it; so do the workers'
  // plan-stable statements (normalize claim, state read and commit, delivery claim and attempt
  // record), of which about four run at once.
  const ingestConcurrency = INGEST_IN_FLIGHT;
  // The hub names its sessions itself: the name tells the other processes that this one is alive.
  const databaseUrl = withoutApplicationName(config.databaseUrl);
  if (databaseUrl !== config.databaseUrl)
    logger.warn(
      'the database URL sets application_name: left out, as Switchyard names its sessions (the other processes tell by the name whether this one is alive)',
    );
  const database = openDatabase(databaseUrl, {
    max: config.poolSize ?? CONFIG_DEFAULTS.database.poolSize,
    planStable: ingestConcurrency + PLAN_STABLE_WORKER_CONNECTIONS,
  });
  const { db } = database;
  if (config.migrate === false) {
    const missing = await pendingMigrations(db).catch(async (error: unknown) => {
      await database.close();
      throw error;
    });
    if (missing.length > 0) {
      await database.close();
      throw new SwitchyardError(
        'SY_STORAGE_SCHEMA_BEHIND',
        `the database schema lacks migration(s) ${missing.join(', ')} of this switchyard: run \`switchyard migrate\` (or start the hub of this version) first`,
        { details: { missing } },
      );
    }
  } else await migrate(db, { logger });

  let normalizeLoop: WorkerLoop | undefined;
  let deliverLoop: WorkerLoop | undefined;
  let pullLoop: WorkerLoop | undefined;
  let statisticsLoop: WorkerLoop | undefined;
  // Whether there was work since the statistics keeper's last pass: an idle hub's tables do not
  // change, so it asks nothing of the database (idle costs nothing measurable).
  let worked = true;
  const busy = (tick: () => Promise<TickResult>) => async () => {
    const result = await tick();
    if (result.busy) worked = true;
    return result;
  };
  const notifier = new Notifier(db, logger);
  const registry = config.metrics ?? new Registry();
  const rt: Runtime = {
    db,
    sessionTag: database.sessionTag,
    databaseUrl,
    logger,
    notify: (channel, payload) => notifier.notify(channel, payload),
    connectors,
    cipher,
    options,
    wakeNormalize: () => {
      normalizer.arrived();
      rt.wakeNormalizeLoop();
    },
    wakeNormalizeLoop: () => {
      worked = true;
      normalizeLoop?.wake();
    },
    wakeDeliver: () => {
      worked = true;
      deliverLoop?.wake();
    },
    announceInbound: () => {
      rt.wakeNormalize();
      void rt.notify(CHANNEL_NORMALIZE);
    },
    announceDeliveries: () => {
      rt.wakeDeliver();
      void rt.notify(CHANNEL_DELIVER);
    },
    wakePull: () => pullLoop?.wake(),
    ingestPressure: new IngestPressure(
      options.ingestFirst ? INGEST_PRESSURE_WAITING : Number.POSITIVE_INFINITY,
    ),
    metrics: pipelineMetrics(registry),
    // An instance created through the admin API has secrets the config file never named: every
    // log line is scrubbed of them too, once the process has read them.
    ...instanceLoader(db, connectors, cipher, options.instanceCacheMs, (secrets) =>
      addLogSecrets(logger, secrets),
    ),
  };
  const vendorHttp =
    config.vendorHttp ?? createVendorHttp({ logger: connectorLogger(logger.child({ job: 'vendor-http' })) });
  // afterNormalize: the gate machinery's hook for matching bookings to gate requests (gates/).
  const leases = new LeaseKeeper({
    db,
    logger: logger.child({ job: 'leases' }),
    // A third of the shortest lease: a lease survives one failed renewal.
    renewEveryMs: Math.max(50, Math.min(options.normalizeLeaseMs, options.deliveryLeaseMarginMs) / 3),
    wake: (queue) => (queue === 'inbound' ? rt.wakeNormalize() : rt.wakeDeliver()),
  });
  const deliverer = new Deliverer(rt, leases);
  // The normalize commit leases the deliveries this process's deliver worker can start at once.
  const normalizer = new Normalizer(
    rt,
    vendorHttp,
    leases,
    config.afterNormalize,
    config.markEchoes,
    deliverer,
  );
  // Ingest stores a message leased for this process's normalize worker when it can start at once.
  const writer = new InboundWriter(db, rt.announceInbound, {
    maxConcurrent: ingestConcurrency,
    leaser: normalizer,
    pressure: rt.ingestPressure,
  });
  const poller = new Poller(rt, vendorHttp);
  // One LISTEN connection and one pg-boss instance per process, shared with the subsystems through
  // `host` (host/host.ts says why). pg-boss connects in start(), not here.
  // Named with the pools' session tag: the session that says, for the process's whole life, that it
  // is alive (storage/db.ts, `sessionsConnected`).
  const listener = new HubListener(databaseUrl, logger, database.sessionTag);
  const boss = options.queue
    ? new PgBoss({
        ...bossSession(databaseUrl),
        schema: 'switchyard_queue',
        max: 2,
        // Jobs of `notify` queues (gate hand-off, commands) wake the process working them at once.
        useListenNotify: true,
        ...BOSS_TIMERS,
        // Its sessions are this process's, named as the hub's are (storage/db.ts says why).
        application_name: sessionApplicationName(database.sessionTag),
      })
    : undefined;
  // pg-boss's own connections fail with the database like the hub's: an outage is said once per
  // 30 s with every other report of it, not a warning with a stack per pg-boss timer and connection
  // (3 to 12 per process per blip: fault-injection audit).
  // Once stop() has stopped pg-boss, an error it still reports is about a connection it has let go
  // of: the embedded Postgres's shutdown right after terminates one whose close is still on its way
  // (fresh-clone CI: "terminating connection due to administrator command" as a warning between
  // "stopping" and "stopped", in a clean Ctrl-C). Nothing is retried then, so it is no warning.
  let bossStopped = false;
  // Its pool's statements to a lost host are bounded once start() has opened it (host/boss.ts).
  let unwatchBoss = () => {};
  boss?.on('error', (error) => {
    if (bossStopped)
      logger.debug({ err: error }, 'pg-boss error after its stop (a connection it was closing)');
    else if (isDatabaseUnavailable(error))
      reportDatabaseUnavailable(logger, error, 'pg-boss (schedules, the gate hand-off, commands) retries');
    else logger.warn({ err: error }, 'pg-boss error');
  });
  let started = false;
  // Long-polls are woken through the LISTEN connection, by whichever process stored the events.
  const feed = feedApi({
    db,
    listen: (channel, handler) => listener.listen(channel, handler),
    longPoll: { ...CONFIG_DEFAULTS.feed, waiters: options.feedWaiters },
    signingSecrets: (sub) => activeSecrets(rt, sub),
  });

  const host: HubHost = {
    db,
    sessionTag: database.sessionTag,
    logger,
    listener,
    notify: rt.notify,
    queue: boss,
    postSigned: (sub, eventId, body, opts = {}) =>
      postSigned(rt, sub, eventId, body, sub.content_type, { ...opts, pool: 'approvers' }),
    signingSecrets: (sub) => activeSecrets(rt, sub),
    vendorHttp,
    metrics: registry,
    connectors,
    loadInstance: (instanceId, fresh) => rt.loadInstance(instanceId, fresh),
    aliases: (instanceId) => aliasStore(db, instanceId),
    deferredAliases: (instanceId) => deferredAliasStore(db, instanceId),
    state: (instanceId) => stateStore(db, instanceId),
    storeEvents: storeHubEvents,
    retention: options.retention,
    maxResponseSnippetBytes: options.maxResponseSnippetBytes,
  };

  const hub = {
    /** The resolved pipeline options (defaults filled in). */
    options,

    /**
     * Ingest first (pipeline/pressure.ts): whether this process's pushes queue for their write now,
     * so its normalize worker gives way, and for how long it has in all.
     *
     * @example
     * ```ts
     * hub.ingestPressure.pressedSeconds; // 0 until a burst queued
     * ```
     */
    get ingestPressure(): { readonly pressed: boolean; readonly pressedSeconds: number } {
      return rt.ingestPressure;
    },

    /**
     * Starts the host's LISTEN connection and pg-boss instance (unless `options.queue` is false), and
     * runs the workers (unless `options.workers` is false): the normalize, deliver and pull loops
     * woken by LISTEN/NOTIFY, and the pg-boss retention schedule. Start subsystems on `hub.host`
     * after this.
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
        // What a killed process left in the pull spool is stored before this process normalizes
        // anything: else its normalizer could take the newer notifications of the same keys,
        // stored by another process meanwhile, first. A database that does not answer yet: the
        // pull loop's passes try again.
        await poller.replaySpool().catch(() => {});
        const child = (job: string) => logger.child({ job });
        normalizeLoop = new WorkerLoop(
          'normalize',
          busy(() => normalizer.tick()),
          options.pollIntervalMs,
          child('normalize'),
        );
        deliverLoop = new WorkerLoop(
          'deliver',
          busy(() => deliverer.tick()),
          options.pollIntervalMs,
          child('deliver'),
        );
        pullLoop = new WorkerLoop(
          'pull',
          () => poller.tick(),
          Math.max(options.pollIntervalMs, 1000),
          child('pull'),
        );
        statisticsLoop = new WorkerLoop(
          'statistics',
          async () => {
            if (!worked) return { busy: false, nextDueAt: new Date(Date.now() + STATISTICS_INTERVAL_MS) };
            worked = false;
            return keepStatistics(rt);
          },
          STATISTICS_INTERVAL_MS,
          child('statistics'),
        );
        await listener.listen(CHANNEL_NORMALIZE, rt.wakeNormalize);
        await listener.listen(CHANNEL_DELIVER, rt.wakeDeliver);
        await listener.listen(CHANNEL_PULL, rt.wakePull);
        leases.start();
        normalizeLoop.start();
        deliverLoop.start();
        deliverer.acceptLeased(true);
        normalizer.acceptLeased(true);
        pullLoop.start();
        statisticsLoop.start();
      }
      // Every process listens (a gate's waiting request is woken by a decision made elsewhere).
      await listener.start();
      if (boss) {
        await boss.start();
        unwatchBoss = watchBossConnections(boss);
        if (options.workers && options.retention.cron !== false) {
          await boss.createQueue(RETENTION_QUEUE);
          await boss.schedule(RETENTION_QUEUE, options.retention.cron);
          await boss.work(RETENTION_QUEUE, { pollingIntervalSeconds: SCHEDULED_POLL_SECONDS }, async () => {
            const { feedGaps, heldBy, ...result } = await purge(db, options.retention);
            logger.info({ ...result, feedGaps: feedGaps.length }, 'retention purge');
            // A reader never started or stopped keeps the events table growing: said once per run.
            if (heldBy)
              logger.warn(
                { subscriptions: heldBy.subscriptions, position: heldBy.position, events: heldBy.events },
                'retention kept events older than retention.events that an enabled pull subscription has not acknowledged (until retention.unreadEvents)',
              );
            // Events a pull subscription's reader never got: its feed says so, and so does the log.
            for (const gap of feedGaps)
              logger.warn(
                { subscription: gap.subscription, through: gap.through, events: gap.events },
                'retention removed events a pull subscription had not acknowledged (disabled, or past retention.unreadEvents)',
              );
          });
        }
      }
    },

    /**
     * Pulled notifications this process lost: a vendor handed them over (Docplanner's pull is
     * destructive), storing them failed, and the process stopped before they could be stored while
     * the pull spool had refused them too (else they wait there for the next start), or their
     * instance was removed. Each loss is logged as an error with what identifies the
     * notifications; `switchyard start` exits 1 when this is not 0.
     *
     * @example
     * ```ts
     * await hub.stop();
     * if (hub.pulledNotificationsLost() > 0) process.exitCode = 1;
     * ```
     */
    pulledNotificationsLost(): number {
      return poller.lostCount;
    },

    /**
     * Whether the pull spool (`workers.pullSpoolDir`) refused its last check: while it does, no
     * pull of this process fetches anything (the `switchyard_pull_spool_refused` metric; a read-only
     * config directory, where the spool is by default, in a container). False in a process that
     * has not pulled.
     *
     * @example
     * ```ts
     * if (hub.pullSpoolRefused()) alert('pulls stopped: mount a volume at workers.pullSpoolDir');
     * ```
     */
    pullSpoolRefused(): boolean {
      return poller.spoolRefusing;
    },

    /**
     * Delivery requests of this process unanswered for 2 s (`STALLED_ATTEMPT_MS`, deliver.ts) and still running,
     * by subscription: their subscriber stopped answering, their slots went to other subscribers,
     * and this process takes none of those subscriptions' deliveries until they answer (or time out).
     *
     * @example
     * ```ts
     * hub.stalledDeliveryRequests(); // Map { 'crm-main' => 32 } while crm-main hangs
     * ```
     */
    stalledDeliveryRequests(): Map<string, number> {
      return deliverer.stalledRequests();
    },

    /**
     * Stops the workers, the LISTEN connection and the pg-boss instance, and closes the database.
     * Stop the subsystems on `hub.host` first (they take their workers off the shared instance). `graceful` (default true) lets attempts in
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
      // Long-polls answer now (an empty page), before the LISTEN connection and the pool close.
      feed.close();
      deliverer.acceptLeased(false);
      normalizer.acceptLeased(false);
      await Promise.all([
        normalizeLoop?.stop(),
        deliverLoop?.stop(),
        pullLoop?.stop(),
        statisticsLoop?.stop(),
      ]);
      // Pull turns run beside their loop: each ends after the batch it is storing, its instance due
      // again at once. The other processes hear it now: a loop that found an instance leased sleeps
      // until that lease would end (up to 30 s on), and this process may have taken every turn
      // since, its lease given back at each turn's end; stopped between two turns, it left the
      // instance due with the others asleep.
      await poller.drain();
      if (options.workers) await rt.notify(CHANNEL_PULL);
      await listener.stop();
      // The normalizer first: a commit that ends during its drain hands the deliveries it leased to
      // the deliverer, whose drain then waits for them too.
      if (graceful) {
        await normalizer.drain();
        await deliverer.drain();
      }
      // Renewed through the drain; after a hard stop the leases run out, as after a crash.
      await leases.stop({ release: graceful });
      await notifier.flush();
      await boss?.stop({ graceful, timeout: graceful ? 30_000 : 1000 }).catch(() => {});
      unwatchBoss();
      bossStopped = true;
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

    /**
     * The first half of {@link ingest}, for an HTTP layer that has not read the body yet: checks the
     * instance, the route and the connector's `push.authenticate` on the head of the request.
     * Answers a problem (404, 401, 503) to send without reading the body, or an admission for
     * {@link accept} once the body is in.
     *
     * @example
     * ```ts
     * const admitted = await hub.admit('dp-main', { route: 'default', params: {}, query: {}, method: 'POST', headers, sourceIp, receivedAt });
     * if (!admitted.ok) return sendProblem(admitted.problem); // the body is never read
     * const r = await hub.accept(admitted.admission, { ...head, rawBody: await readBody() });
     * ```
     */
    admit(
      instanceId: string,
      head: InboundRequestHead,
    ): Promise<{ ok: true; admission: Admission } | Extract<IngestResult, { ok: false }>> {
      return admit(rt, instanceId, head);
    },

    /**
     * The second half of {@link ingest}: the body's checks (`push.verifyBody`), parsing, the durable
     * write and the answer, for a request {@link admit} let in.
     */
    accept(admission: Admission, request: InboundRequest): Promise<IngestResult> {
      return accept(rt, writer, config.gateResponder, admission, request);
    },

    instances: instancesApi({
      db,
      cipher,
      connectors,
      forgetInstance: (id) => rt.forgetInstance(id),
      loadInstance: (id) => rt.loadInstance(id),
      pullInstance: (row) => poller.pullInstance(row),
    }),
    subscriptions: subscriptionsApi({
      db,
      cipher,
      wakeDeliver: () => rt.wakeDeliver(),
      defaults: subscriptionDefaults(),
      secretsChanged: () => feed.secretsChanged(),
    }),
    events: eventsApi({ db, deliveriesOf: (eventId) => deliveriesOfEvent(db, eventId) }),
    deliveries: deliveriesApi({
      db,
      wakeDeliver: () => rt.wakeDeliver(),
      requireSubscription: (id) => requireSubscription(db, id),
    }),
    inbound: inboundApi({
      db,
      wakeNormalize: () => rt.wakeNormalize(),
      async redactHeaders(instanceId, headers) {
        // Redacted when stored; again here with today's declaration, for rows stored before it.
        const instance = await rt.loadInstance(instanceId).catch(() => undefined);
        const credentialHeaders = instance ? credentialHeaderNames(instance.connector, instance.config) : [];
        return storedHeaders(headers, credentialHeaders);
      },
    }),
    feed,

    /**
     * Sends a signed synthetic event to a webhook subscription now and reports the attempt
     * (nothing is stored). Its `webhook-id` is fresh each call. By default the catalog's
     * `hub.test` ({@link TEST_EVENT_TYPE}: subject `hub/test`, `data.message` saying who asked);
     * another catalog `type` (to try a subscriber's routing) carries the catalog's example data for
     * it. Each is valid against its published schema, and a FHIR subscription gets its own format
     * (test-event.ts).
     *
     * @example
     * ```ts
     * const r = await hub.sendTestEvent(subId); // { ok: true, statusCode: 204, latencyMs: 12.3 }
     * ```
     */
    async sendTestEvent(
      subscriptionId: string,
      type: string = TEST_EVENT_TYPE,
      askedFrom = 'the admin API',
    ): Promise<AttemptResult> {
      const sub = await requireSubscription(db, subscriptionId);
      if (sub.kind !== 'webhook') throw invalid('only webhook subscriptions can be sent a test event');
      const id = eventIdFor(newId(), 0);
      const { body, contentType } = testDelivery(sub, id, type, askedFrom);
      return attemptResult(await postSigned(rt, sub, id, body, contentType));
    },

    /**
     * The leases this process renews, and those it waits to give back after losing the database,
     * per queue (what the lease keeper reports to operators' checks and tests).
     *
     * @example
     * ```ts
     * const { inbound, deliveries } = hub.leaseCounts(); // { inbound: { held: 2, toRelease: 0 }, ... }
     * ```
     */
    leaseCounts() {
      return leases.counts();
    },

    retention: {
      /**
       * Purges what is older than the retention periods now (the scheduled job does the same).
       *
       * @example
       * ```ts
       * const removed = await hub.retention.purge(); // { deliveries, events, inbound, inboundBodies }
       * ```
       */
      purge(now = new Date()): Promise<PurgeResult> {
        return purge(db, options.retention, now);
      },
    },

    /**
     * What subsystems beside the pipeline (gates, commands) are built on: the declared host
     * (host/host.ts). The HTTP layer, the dashboard and the CLI use it too, for what the admin
     * operations above do not cover (health probes, metrics gauges, the feed credential).
     */
    host,
  };
  return hub;
}
