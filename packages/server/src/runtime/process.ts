/**
 * One hub process, composed: database (configured or embedded), migrations, the hub with the file's
 * instances and subscriptions applied, the HTTP app and/or the workers depending on the role, and a
 * graceful stop (stop accepting, finish in-flight requests and jobs, close everything).
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import type pino from 'pino';
import { type Commands, type CommandsOptions, commandRoutes, createCommands } from '../commands/index.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { tracingDefaults } from '../config/units.ts';
import { shippedConnectors } from '../connectors.ts';
import { createGates, type Gates, gateRoutes } from '../gates/index.ts';
import { type BuildAppOptions, buildApp, serverOptions } from '../http/index.ts';
import { bindHubMetrics, createMetrics, type HttpMetrics } from '../http/metrics-registry.ts';
import { adminAuth } from '../http/plugins/admin-auth.ts';
import { installProblemHandling } from '../http/plugins/problem.ts';
import { installRequestLog, requestLogOptions } from '../http/plugins/request-log.ts';
import { RouteTable } from '../http/route-table.ts';
import { healthRoutes } from '../http/routes/health.ts';
import { metricsRoutes } from '../http/routes/metrics.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import type { PipelineOptions } from '../pipeline/shared.ts';
import { type Executor, openDatabase } from '../storage/db.ts';
import { migrate, unknownMigrations } from '../storage/migrations.ts';
import { startTelemetry, type Telemetry, traceRequests } from '../telemetry/index.ts';
import { uiPlugin } from '../ui/index.ts';
import { type ApplyResult, applyFileConfig } from './apply.ts';
import { banner, baseUrl, listenUrl } from './banner.ts';
import { type HubDatabase, openHubDatabase, resolveSecretKey, waitForDatabase } from './database.ts';
import { tuneHeap } from './heap.ts';
import type { HubRole } from './roles.ts';
import { publishRunningHub } from './running.ts';

export { type HubRole, ROLES } from './roles.ts';

/**
 * Where a process writes its banner and what it may read (the CLI's `CliIO` is one): injected so a
 * process runs in tests without touching the real stderr or environment.
 */
export interface ProcessIO {
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

/** Options of {@link startHubProcess}. */
export interface StartHubProcessOptions {
  role?: HubRole;
  /** Where the banner goes (stderr) and the working directory shown paths are relative to. */
  io: ProcessIO;
  /** Aborting it stops the process gracefully (the CLI wires SIGTERM and SIGINT to it). */
  signal?: AbortSignal;
  logger: pino.Logger;
  /** Resolved secret values, scrubbed from the banner as from the logs. */
  secrets?: readonly string[];
  /** Overrides `server.port` (several processes on one machine). */
  port?: number;
  /** Pipeline tuning on top of what the config sets (tests). */
  pipeline?: PipelineOptions;
  /** Commands subsystem tuning on top of what the config sets (tests); `worker` follows the role. */
  commands?: Omit<CommandsOptions, 'worker'>;
}

/** A running hub process. */
export interface HubProcess {
  hub: Hub;
  /** The commands subsystem of this process. */
  commands: Commands;
  role: HubRole;
  /** The HTTP server (the full app, or health and metrics only for a worker). */
  app: FastifyInstance;
  /** Where clients reach it, e.g. `http://127.0.0.1:8080`. */
  url: string;
  database: HubDatabase;
  applied: ApplyResult;
  /** Stops gracefully; idempotent. Resolves once everything is closed. */
  stop(): Promise<void>;
  /** Resolves once the process has stopped (by `stop()` or the signal), with what it lost. */
  readonly closed: Promise<StopOutcome>;
}

/** How a hub process stopped. */
export interface StopOutcome {
  /** Pulled notifications lost ({@link Hub.pulledNotificationsLost}): an exit status of 1 is due. */
  pulledNotificationsLost: number;
}

function pipelineOptions(
  config: ResolvedConfig,
  role: HubRole,
  extra: PipelineOptions = {},
): PipelineOptions {
  return {
    maxBodyBytes: config.server.bodyLimitBytes,
    normalizeLeaseMs: config.workers.normalizeLeaseMs,
    deliveryLeaseMarginMs: config.workers.deliveryLeaseMarginMs,
    pollIntervalMs: config.workers.pollBackstopMs,
    ingestFirst: config.workers.ingestFirst,
    deliveryConcurrency: config.workers.deliveryConcurrency,
    pullSpoolDir: config.workers.pullSpoolDir,
    ...extra,
    workers: role !== 'http',
    // One pg-boss instance in every role (host/host.ts): an HTTP-only process enqueues gate
    // hand-offs and commands; only worker roles work the hub's own queues (retention).
    queue: extra.queue ?? true,
    retention: {
      inboundMs: config.retention.inboundMessagesMs,
      eventsMs: config.retention.eventsMs,
      deliveriesMs: config.retention.deliveriesMs,
      unreadEventsMs: config.retention.unreadEventsMs,
      ...extra.retention,
    },
  };
}

/** The gate admin routes (`/v1/gates`), behind the admin token like the rest of `/v1`. */
function gatesAdmin(gates: Gates, adminToken: string | undefined, db: Executor): FastifyPluginAsync {
  return async (scope) => {
    scope.addHook('onRequest', adminAuth(adminToken, db));
    await gateRoutes(scope, { gates });
  };
}

/** The commands routes (`/v1/commands`): admin token or a subscription's command credential. */
function commandsApi(commands: Commands, adminToken: string | undefined, db: Executor): FastifyPluginAsync {
  return async (scope) => commandRoutes(scope, { commands, adminToken, db });
}

/**
 * A worker answers health checks and metrics only: it takes no vendor traffic. Its server holds
 * slow clients to `server.timeouts` as the full app's does.
 */
async function workerApp(
  hub: Hub,
  metrics: HttpMetrics,
  logger: pino.Logger,
  timeouts: BuildAppOptions['timeouts'],
): Promise<FastifyInstance> {
  bindHubMetrics(metrics, hub);
  // Error answers are problems here too (a database outage on /metrics, a request during shutdown).
  const app = Fastify({
    loggerInstance: logger,
    ...requestLogOptions(),
    return503OnClosing: false,
    ...serverOptions(timeouts),
  }) as unknown as FastifyInstance;
  const routes = new RouteTable();
  app.addHook('onRoute', (route) => routes.add(route));
  traceRequests(app);
  installRequestLog(app);
  installProblemHandling(app, routes);
  await app.register(async (instance) => healthRoutes(instance, { hub, metrics }));
  await app.register(async (instance) => metricsRoutes(instance, { hub, metrics }));
  await app.ready();
  return app;
}

/**
 * Starts a hub process from a loaded config.
 *
 * @example
 * ```ts
 * const loaded = await loadConfig('switchyard.yaml', { connectors: shippedConnectors });
 * if (!loaded.ok) throw new ConfigError(loaded.problems);
 * const logger = createLogger({ secrets: loaded.secrets });
 * const controller = new AbortController();
 * process.once('SIGTERM', () => controller.abort());
 * const running = await startHubProcess(loaded.config, { role: 'all', io, logger, signal: controller.signal });
 * await running.closed;
 * ```
 */
export async function startHubProcess(
  config: ResolvedConfig,
  options: StartHubProcessOptions,
): Promise<HubProcess> {
  const role = options.role ?? 'all';
  const { logger, io } = options;
  tuneHeap();
  // With a URL this connects to nothing yet, so a missing secretKey is reported before any database
  // work; embedded, the notice about the embedded Postgres comes first in the log.
  const database = await openHubDatabase(config, { logger, publish: true });
  let secretKey: string;
  try {
    secretKey = await resolveSecretKey(config, logger);
  } catch (error) {
    await database.release();
    throw error;
  }
  let hub: Hub | undefined;
  let gates: Gates | undefined;
  let commands: Commands | undefined;
  let app: FastifyInstance | undefined;
  let telemetry: Telemetry | undefined;
  let applied: ApplyResult;
  try {
    const migrations = openDatabase(database.url, { max: 1 });
    try {
      // A real Postgres may start after the hub (compose without a healthcheck, a restart after an
      // upgrade): its first connection is waited for, bounded. The embedded one is running already.
      if (config.database.kind === 'url')
        await waitForDatabase(() => sql`select 1`.execute(migrations.db), {
          url: database.url,
          waitMs: config.database.startupWaitMs,
          logger,
          ...(options.signal ? { signal: options.signal } : {}),
        });
      const versions = await migrate(migrations.db, { logger });
      logger.info(
        { applied: versions },
        versions.length > 0
          ? `applied migrations ${versions.join(', ')}`
          : 'the database schema is up to date',
      );
      const newer = await unknownMigrations(migrations.db);
      if (newer.length > 0)
        logger.warn(
          { unknown: newer },
          `the database has migrations this version does not know (${newer.join(', ')}): a newer Switchyard migrated it; this process keeps working during a rolling upgrade, but roll forward, not back (docs/operations.md, "Upgrades")`,
        );
    } finally {
      await migrations.close();
    }

    const metrics = createMetrics();
    // Before the hub starts working, so its first spans are recorded; off unless configured.
    telemetry = await startTelemetry(config.telemetry.traces, {
      // Callers that embed the process (tests) may give no environment: the process's own then.
      env: io.env ?? process.env,
      registry: metrics.registry,
      role,
      defaults: tracingDefaults(),
      logger,
    });
    if (telemetry.tracing)
      logger.info(
        { ...telemetry.described },
        'tracing: exporting spans over OTLP/HTTP (docs/observability.md)',
      );
    for (const note of telemetry.described?.notHonoured ?? [])
      logger.warn({ setting: note }, `tracing: ${note} (docs/observability.md)`);
    // Approval gates are decided where they arrive (docs/operations.md lists them under the http
    // role): a vendor waits on the answer, so a hop through another process would only add latency.
    gates = createGates({ worker: true, logger });
    // Commands run where the workers run; an HTTP-only process accepts and queues them.
    commands = createCommands({
      ...config.commands,
      ...options.commands,
      worker: role !== 'http',
    });
    hub = await createHub({
      databaseUrl: database.url,
      connectors: shippedConnectors,
      secretKey,
      logger,
      metrics: metrics.registry,
      poolSize: config.databasePoolSize,
      ...gates.hooks,
      ...commands.hooks,
      options: pipelineOptions(config, role, options.pipeline),
    });
    applied = await applyFileConfig(hub, config, logger);
    logger.info({ ...applied }, 'applied the config file (instances and subscriptions managed by the file)');
    await hub.start();
    await gates.start(hub.host);
    await commands.start(hub.host);

    if (role === 'worker') {
      app = await workerApp(hub, metrics, logger, config.server.timeouts);
    } else {
      app = await buildApp({
        hub,
        adminToken: config.server.adminToken,
        bodyLimit: config.server.bodyLimitBytes,
        trustedProxies: config.server.trustedProxies,
        timeouts: config.server.timeouts,
        unauthenticatedBodyBytes: config.server.unauthenticatedBodyBytes,
        configFile: config.file,
        logger,
        metrics,
        ...(config.server.publicUrl ? { publicUrl: config.server.publicUrl } : {}),
        plugins: [
          gatesAdmin(gates, config.server.adminToken, hub.host.db),
          commandsApi(commands, config.server.adminToken, hub.host.db),
          uiPlugin({ hub, adminToken: config.server.adminToken, publicUrl: config.server.publicUrl }),
        ],
      });
    }
    await app.listen({ host: config.server.host, port: options.port ?? config.server.port });
  } catch (error) {
    await app?.close().catch(() => {});
    await gates?.stop().catch(() => {});
    await commands?.stop({ graceful: false }).catch(() => {});
    await hub?.stop({ graceful: false }).catch(() => {});
    await telemetry?.shutdown().catch(() => {});
    await database.release().catch(() => {});
    throw error;
  }

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? config.server.port);
  io.stderr.write(
    banner(config, {
      role,
      port,
      cwd: io.cwd,
      env: io.env,
      secrets: options.secrets ?? [],
      ...(database.kind === 'embedded' && database.dataDir ? { embeddedDataDir: database.dataDir } : {}),
    }),
  );
  const url = baseUrl(config, port, role);
  logger.info({ role, url }, 'switchyard is ready');
  // Where `switchyard push` of this config file finds this process (--port may differ from the
  // file's server.port); a worker takes no pushes.
  const withdraw =
    role === 'worker'
      ? async () => {}
      : await publishRunningHub(
          { url: listenUrl(config, port), pid: process.pid, role, config: config.file },
          (error) =>
            logger.debug({ err: error }, 'could not publish the listen address beside the config file'),
        );

  const runningHub = hub;
  const runningApp = app;
  const runningGates = gates!;
  const runningCommands = commands!;
  const runningTelemetry = telemetry!;
  let resolveClosed!: (outcome: StopOutcome) => void;
  const closed = new Promise<StopOutcome>((resolve) => {
    resolveClosed = resolve;
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping: no new requests; finishing the requests and jobs in progress');
      try {
        await withdraw();
        await runningApp.close();
        await runningGates.stop();
        await runningCommands.stop({ graceful: true });
        await runningHub.stop({ graceful: true });
      } finally {
        // The last spans are flushed, bounded by the export timeout (a collector that is down
        // delays the stop by at most that long).
        await runningTelemetry.shutdown().catch(() => {});
        await database.release();
        const lost = runningHub.pulledNotificationsLost();
        if (lost > 0)
          logger.error({ lost }, `stopped; ${lost} pulled notifications were lost (logged above)`);
        else logger.info('stopped');
        resolveClosed({ pulledNotificationsLost: lost });
      }
    })();
    return stopping;
  };
  if (options.signal) {
    if (options.signal.aborted) void stop();
    else options.signal.addEventListener('abort', () => void stop(), { once: true });
  }

  return {
    hub: runningHub,
    commands: runningCommands,
    role,
    app: runningApp,
    url,
    database,
    applied,
    stop,
    closed,
  };
}
