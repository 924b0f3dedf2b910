import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type pino from 'pino';
import { HttpError } from '../admin/http.ts';
import { CONFIG_DEFAULTS } from '../config/schema.ts';
import { configDurationMs, configSizeBytes } from '../config/units.ts';
import { deliveryRoutes, deliveryWithAttempts } from '../deliveries/routes.ts';
import { eventRoutes } from '../events/routes.ts';
import { createFhirReader } from '../fhir/read.ts';
import { inboundRoutes } from '../inbound/routes.ts';
import { instanceRoutes } from '../instances/routes.ts';
import type { Hub } from '../pipeline/hub.ts';
import { feedRoutes } from '../subscriptions/feed-routes.ts';
import { subscriptionRoutes } from '../subscriptions/routes.ts';
import { traceRequests } from '../telemetry/fastify.ts';
import { clientAddress } from './client-address.ts';
import type { RouteDeps } from './deps.ts';
import { bindHubMetrics, createMetrics, type HttpMetrics } from './metrics-registry.ts';
import { adminAuth } from './plugins/admin-auth.ts';
import { installProblemHandling, pathOf } from './plugins/problem.ts';
import { installRequestLog, requestLogOptions } from './plugins/request-log.ts';
import { RouteTable } from './route-table.ts';
import { FHIR_PREFIX, fhirHost, fhirRoutes, fhirTokenRoutes } from './routes/fhir.ts';
import { healthRoutes } from './routes/health.ts';
import { hookRoutes } from './routes/hooks.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { openApiRoutes } from './routes/openapi.ts';
import { schemaRoutes } from './routes/schemas.ts';
import { type InstallAuthRateLimitOptions, installAuthRateLimit } from './security/auth-rate-limit.ts';
import { problemFrameworkErrors } from './security/framework-errors.ts';
import { installRequestLimits } from './security/request-limits.ts';

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  hub: Hub;
  /** Bearer token of the admin API. Absent: the admin API is closed (every admin call answers 401). */
  adminToken: string | undefined;
  /** Largest request body, bytes (pushes and admin calls). Default: `server.bodyLimit` in the config schema (1 MiB). */
  bodyLimit?: number;
  /**
   * Proxies whose `X-Forwarded-For` is believed (addresses or CIDRs, as for fastify's `trustProxy`);
   * the connector sees the client address behind them as `sourceIp`. Empty: the socket address.
   */
  trustedProxies?: readonly string[];
  /** The hub's pino logger (requests are logged through it). Absent: no request logging. */
  logger?: pino.Logger;
  /** Share metrics with the rest of the process (e.g. the gate machinery). Default: a fresh set. */
  metrics?: HttpMetrics;
  /**
   * The config file the hub was started from (`switchyard start`: its absolute path), named in the
   * 409 `SY_HTTP_FILE_MANAGED` that refuses a change to an instance or subscription it declares, so
   * an operator knows which file to change. Absent: the refusal says "the configuration file".
   */
  configFile?: string;
  /**
   * The public base URL (`server.publicUrl`), announced in the OpenAPI document's `servers`, and the
   * base of the `hookUrl` a connector gets with each push (its path and query follow, as received).
   */
  publicUrl?: string;
  /**
   * More plugins (the dashboard, the gate routes), registered on the root before the app is ready:
   * fastify refuses plugins once it has booted. `/v1/...` routes must bring their own `adminAuth`;
   * the root's rules reach them (an unknown query parameter is 400, an empty path parameter 404).
   */
  plugins?: readonly FastifyPluginAsync[];
  /**
   * Refused authentications allowed per client address before it gets 429 for a while, on
   * `/hooks/...` and `/v1/...` (default: 20 a minute). `false` turns it off (test harnesses that
   * send hundreds of refused requests from one address).
   */
  authRateLimit?: InstallAuthRateLimitOptions | false;
  /**
   * How long a client may take to send a request, ms: its headers (`headersMs`, at most
   * `requestMs`), its body once the headers are in (`bodyMs`), the whole request (`requestMs`). A
   * slower client gets 408 and its connection closed. After a refusal sent before the body was
   * read, how long its rest is drained and dropped before the connection closes (`lingeringMs`),
   * and `lingeringIdleMs` without data (see `security/request-limits.ts`). Defaults:
   * `server.timeouts` in the config schema (10 s, 30 s, 60 s, 2 s, 1 s).
   */
  timeouts?: {
    headersMs?: number;
    bodyMs?: number;
    requestMs?: number;
    lingeringMs?: number;
    lingeringIdleMs?: number;
  };
  /**
   * Request body bytes held at once, across connections, for requests whose credentials are not
   * checked yet (see `security/request-limits.ts`). Default: `server.unauthenticatedBodyBytes` in
   * the config schema (16 MB).
   */
  unauthenticatedBodyBytes?: number;
}

/**
 * The options of the HTTP server under a Switchyard fastify app, for the full app and a worker's
 * health-and-metrics one alike: slow clients are cut off at `timeouts` (the config's
 * `server.timeouts`; its defaults when left out), which Node answers 408 and closes, and what
 * Node's HTTP parser refuses (a bad URL encoding, unparseable HTTP) is answered problem+json
 * (security/framework-errors.ts words them). A worker's server had Node's own 60 s for the headers
 * and 300 s for the request, whatever the file said.
 *
 * @example
 * ```ts
 * const app = Fastify({ return503OnClosing: false, ...serverOptions(config.server.timeouts) });
 * ```
 */
export function serverOptions(timeouts: BuildAppOptions['timeouts']): Pick<
  FastifyServerOptions,
  'requestTimeout' | 'frameworkErrors' | 'clientErrorHandler'
> & {
  http: {
    headersTimeout: number;
    requestTimeout: number;
    connectionsCheckingInterval: number;
    requireHostHeader: boolean;
  };
} {
  const requestMs = timeouts?.requestMs ?? configDurationMs(CONFIG_DEFAULTS.server.timeouts.request)!;
  // Node refuses a headers timeout longer than the request timeout.
  const headersMs = Math.min(
    requestMs,
    timeouts?.headersMs ?? configDurationMs(CONFIG_DEFAULTS.server.timeouts.headers)!,
  );
  return {
    // Node checks the clocks every connectionsCheckingInterval, so that interval bounds how late
    // they fire.
    requestTimeout: requestMs,
    http: {
      headersTimeout: headersMs,
      requestTimeout: requestMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersMs / 4))),
      // Node's own refusal of an HTTP/1.1 request without Host is a bare 400 with an empty body;
      // installProblemHandling refuses it as a problem instead.
      requireHostHeader: false,
    },
    ...problemFrameworkErrors(),
  };
}

/** The app with the pieces tests and the CLI need at hand. */
export type SwitchyardApp = FastifyInstance & { switchyard: { routes: RouteTable; metrics: HttpMetrics } };

/**
 * Builds the Switchyard HTTP app (fastify 5) over a hub: inbound hooks, the admin API under `/v1`
 * (bearer token), the subscriber pull feed, health, metrics, the OpenAPI document and the read-only
 * FHIR R4 endpoint under `/fhir/r4`. It does not
 * listen: call `app.listen()`; it does not start or stop the hub either.
 *
 * @example
 * ```ts
 * const hub = await createHub({ databaseUrl, connectors, secretKey });
 * await hub.start();
 * const app = await buildApp({ hub, adminToken: process.env.SY_ADMIN_TOKEN, bodyLimit: 1 << 20, trustedProxies: [], logger });
 * await app.listen({ port: 8080, host: '0.0.0.0' });
 * ```
 */
export async function buildApp(options: BuildAppOptions): Promise<SwitchyardApp> {
  const routes = new RouteTable();
  const metrics = options.metrics ?? createMetrics();
  bindHubMetrics(metrics, options.hub);
  const trusted = options.trustedProxies ?? [];
  // A pino logger instance changes fastify's logger generic; the routes only need the base type.
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    ...requestLogOptions(),
    bodyLimit: options.bodyLimit ?? configSizeBytes(CONFIG_DEFAULTS.server.bodyLimit)!,
    ...(trusted.length > 0 ? { trustProxy: [...trusted] } : {}),
    // Unknown properties are errors, not silently dropped; query strings still coerce to numbers.
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        allErrors: true,
        // The input schemas the routes share with the config file and the hub's check
        // (subscriptions/schema.ts) carry the file's annotations: known words, not typos.
        keywords: ['x-message', 'x-secret'],
        // Each error names its schema, so a field with its own words (`x-message`) says them
        // instead of ajv's (a cursor's pattern is a regex of several hundred characters).
        verbose: true,
      },
    },
    // Requests arriving while closing get a problem answer with Retry-After (installProblemHandling).
    return503OnClosing: false,
    ...serverOptions(options.timeouts),
  }) as unknown as FastifyInstance;
  app.addHook('onRoute', (route) => routes.add(route));
  // The API takes JSON (docs/api.md: any other type is 415). fastify also parses text/plain by
  // default, which turned a text body into a 400 "body must be object"; vendor pushes take any type
  // through the hooks' own parser (routes/hooks.ts).
  app.removeContentTypeParser('text/plain');
  // An empty body with a JSON content type is no body (curl -H 'content-type: application/json'
  // without -d, a client that always sets the header): an action whose body is optional
  // (`/disable`, `/replay`) answered 400 "body cannot be empty". A route that needs a body still
  // refuses it, by its schema. Anything else goes to fastify's own parser (prototype poisoning
  // guarded).
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else jsonParser(request, body as string, done);
  });
  // First of the request hooks: everything a request does runs inside its span (when tracing is on).
  traceRequests(app, { clientAddress });
  installRequestLog(app);
  installProblemHandling(app, routes);
  if (options.authRateLimit !== false) installAuthRateLimit(app, options.authRateLimit);
  installRequestLimits(app, {
    bodyTimeoutMs: options.timeouts?.bodyMs ?? configDurationMs(CONFIG_DEFAULTS.server.timeouts.body)!,
    unauthenticatedBodyBytes:
      options.unauthenticatedBodyBytes ?? configSizeBytes(CONFIG_DEFAULTS.server.unauthenticatedBodyBytes)!,
    lingeringClose: {
      totalMs: options.timeouts?.lingeringMs ?? configDurationMs(CONFIG_DEFAULTS.server.timeouts.lingering)!,
      idleMs:
        options.timeouts?.lingeringIdleMs ?? configDurationMs(CONFIG_DEFAULTS.server.timeouts.lingeringIdle)!,
    },
  });

  const deps: RouteDeps = {
    hub: options.hub,
    metrics,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  };
  const configFile = options.configFile ? { configFile: options.configFile } : {};
  const plugin = (name: string, fn: (app: FastifyInstance, deps: RouteDeps) => Promise<void>) => {
    const p: FastifyPluginAsync<RouteDeps> = (instance, opts) => fn(instance, opts);
    Object.defineProperty(p, 'name', { value: name });
    return p;
  };

  // Two rules of every /v1 route, the plugins' (gates, commands, dashboard, registered outside the
  // v1 scope) too, set on the routes themselves so that a push (no /v1 route) pays nothing for them;
  // after `routes.add`, so the OpenAPI document lists no empty query:
  // - one that takes no query parameters refuses them, as the paged lists refuse one they do not
  //   know (400 naming it): `GET /v1/subscriptions?limit=5` answered every subscription, as if the
  //   limit had been applied;
  // - an empty path parameter (`GET /v1/instances/`, a collection with a trailing slash, matches
  //   `/v1/instances/:id` with id '') names no item: 404, as an unknown route or id answers, not the
  //   400 "params/id must NOT have fewer than 1 characters" of the id's schema.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/')) return;
    if (!route.schema?.querystring)
      route.schema = { ...route.schema, querystring: { type: 'object', additionalProperties: false } };
    if (!route.url.includes(':')) return;
    const own = route.preValidation;
    route.preValidation = [refuseEmptyParams, ...(own === undefined ? [] : Array.isArray(own) ? own : [own])];
  });
  await app.register(plugin('switchyard-hooks', hookRoutes), deps);
  await app.register(plugin('switchyard-health', healthRoutes), deps);
  await app.register(plugin('switchyard-metrics', metricsRoutes), deps);
  await app.register(schemaRoutes);
  const reader = createFhirReader(fhirHost(options.hub));
  await app.register(
    (scope) => fhirRoutes(scope, { reader, adminToken: options.adminToken, publicUrl: options.publicUrl }),
    { prefix: FHIR_PREFIX },
  );
  await app.register(async (v1) => {
    v1.addHook('onRequest', adminAuth(options.adminToken, options.hub.host.db));
    // Action routes take an optional body (`POST .../disable`): no body validates as `{}`.
    v1.addHook('preValidation', async (request) => {
      if (request.body === undefined && request.routeOptions.schema?.body) request.body = {};
    });
    // The concepts' routes live in their folders and take their concept's API, not the hub; the
    // event detail embeds the deliveries' schema, which the events concept cannot import (it sits
    // below deliveries), so it is handed over here.
    await v1.register(
      plugin('switchyard-instances', (scope, { hub, publicUrl }) =>
        instanceRoutes(scope, { instances: hub.instances, publicUrl, ...configFile }),
      ),
      deps,
    );
    await v1.register(
      plugin('switchyard-subscriptions', (scope, { hub }) =>
        subscriptionRoutes(scope, {
          subscriptions: hub.subscriptions,
          deliveries: hub.deliveries,
          sendTestEvent: (id, type) => hub.sendTestEvent(id, type),
          ...configFile,
        }),
      ),
      deps,
    );
    await v1.register(
      plugin('switchyard-feed', (scope, { hub }) =>
        feedRoutes(scope, {
          feed: hub.feed,
          db: hub.host.db,
          signingSecrets: (row) => hub.host.signingSecrets(row),
        }),
      ),
      deps,
    );
    await v1.register(
      plugin('switchyard-events', (scope, { hub }) =>
        eventRoutes(scope, { events: hub.events, deliveryWithAttempts }),
      ),
      deps,
    );
    await v1.register(
      plugin('switchyard-deliveries', (scope, { hub }) =>
        deliveryRoutes(scope, { deliveries: hub.deliveries }),
      ),
      deps,
    );
    await v1.register(
      plugin('switchyard-inbound', (scope, { hub }) => inboundRoutes(scope, { inbound: hub.inbound })),
      deps,
    );
    await v1.register((scope) => fhirTokenRoutes(scope, { ...deps, reader }));
    await v1.register(
      (instance, opts: RouteDeps & { routes: RouteTable; publicUrl?: string }) =>
        openApiRoutes(instance, opts),
      { ...deps, routes, ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}) },
    );
  });
  for (const extra of options.plugins ?? []) await app.register(extra);
  await app.ready();
  return Object.assign(app, { switchyard: { routes, metrics } });
}

/** A route's `preValidation` for /v1 routes with path parameters: an empty one is 404 (`buildApp`). */
async function refuseEmptyParams(request: FastifyRequest): Promise<void> {
  if (Object.values(request.params as Record<string, string>).includes(''))
    throw new HttpError('SY_HTTP_NOT_FOUND', `no route ${request.method} ${pathOf(request)}`);
}
