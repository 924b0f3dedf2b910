import { hookUrlOf, type InboundRequest, type InboundRequestHead, type PushRoute } from '@switchyard/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Hub } from '../../pipeline/hub.ts';
import type { Admission, IngestResult } from '../../pipeline/ingest.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../../storage/unavailable.ts';
import { requestTraceLabels } from '../../telemetry/fastify.ts';
import { clientAddress } from '../client-address.ts';
import type { RouteDeps } from '../deps.ts';
import { databaseUnavailableAnswer, type ProblemDocument, problemOf } from '../errors.ts';
import { UNKNOWN_INSTANCE_LABEL } from '../metrics-registry.ts';
import { pathOf, sendProblem } from '../plugins/problem.ts';

/** A matched push route: its name and path parameters. */
export interface RouteMatch {
  name: string;
  params: Record<string, string>;
}

/**
 * Matches the path below `/hooks/{instance}` (no leading slash, `''` for the instance URL) against a
 * connector's push routes, fastify-style: literal segments and `:param` segments.
 *
 * @example
 * ```ts
 * matchPushRoute([{ name: 'default', path: ':key' }], 'abc'); // { name: 'default', params: { key: 'abc' } }
 * ```
 */
export function matchPushRoute(routes: readonly PushRoute[], rest: string): RouteMatch | undefined {
  const given = rest.replace(/^\/+|\/+$/g, '');
  const segments = given === '' ? [] : given.split('/');
  for (const route of routes) {
    const pattern = route.path === '' ? [] : route.path.replace(/^\/+|\/+$/g, '').split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      const p = pattern[i]!;
      const s = segments[i]!;
      if (p.startsWith(':')) {
        try {
          params[p.slice(1)] = decodeURIComponent(s);
        } catch {
          ok = false;
        }
      } else ok = p === s;
    }
    if (ok) return { name: route.name, params };
  }
  return undefined;
}

/** Lowercase names; repeated headers joined with `, `. */
function inboundHeaders(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

function firstValues(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof query !== 'object' || query === null) return out;
  for (const [k, v] of Object.entries(query as Record<string, unknown>)) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = String(first);
  }
  return out;
}

/** The metrics outcome of an ingest answer. */
export function outcomeOf(result: IngestResult): string {
  if (result.ok) return result.stored.length > 0 ? 'accepted' : result.duplicates > 0 ? 'duplicate' : 'empty';
  return outcomeOfStatus(result.status);
}

function outcomeOfStatus(status: number): string {
  switch (status) {
    case 400:
    // A compressed body (app.ts): the vendor sent what the hub cannot read, as with a 400.
    case 415:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 404:
      return 'not_found';
    case 413:
      return 'too_large';
    case 503:
      return 'unavailable';
    default:
      return status < 400 ? 'accepted' : 'error';
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the hooks handler for the metrics (instance known to exist, outcome). */
    ingestLabels?: { instance: string; outcome: string };
    /** A push let in before its body was read (see {@link admitPush}), with the head it was judged on. */
    push?: { admission: Admission; head: InboundRequestHead };
  }
}

type HookRequest = FastifyRequest<{ Params: { instance: string; '*'?: string } }>;

/** Sends a problem that ends the request before its body is read: the connection is closed. */
function refuse(reply: FastifyReply, problem: ProblemDocument, headers: Record<string, string> = {}) {
  return sendProblem(reply, problem, { ...headers, connection: 'close' });
}

/**
 * `onRequest` for the hooks: finds the instance and the route, then lets the hub check the push's
 * credentials from its head (`hub.admit`, the connector's `push.authenticate`), all before the body
 * is read. A refused push is answered at once and its connection closed, so the hub never holds the
 * body of a client that has not proven who it is. An admitted push whose connector checks the body
 * itself (`push.verifyBody`) keeps counting as unauthenticated bytes until it is answered
 * (security/request-limits.ts).
 */
async function admitPush(hub: Hub, request: HookRequest, reply: FastifyReply, publicUrl: string | undefined) {
  const receivedAt = new Date();
  const instanceId = request.params.instance;
  const path = pathOf(request);
  let loaded: Awaited<ReturnType<Hub['host']['loadInstance']>>;
  try {
    loaded = await hub.host.loadInstance(instanceId);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    request.ingestLabels = { instance: UNKNOWN_INSTANCE_LABEL, outcome: 'unavailable' };
    reportDatabaseUnavailable(request.log, error, 'pushes are answered 503');
    const { problem, headers } = databaseUnavailableAnswer(path);
    return refuse(reply, problem, headers);
  }
  const routes = loaded && loaded.row.mode !== 'pull' ? loaded.connector.push?.routes : undefined;
  if (!routes) {
    request.ingestLabels = { instance: UNKNOWN_INSTANCE_LABEL, outcome: 'not_found' };
    return refuse(
      reply,
      problemOf('SY_PIPELINE_NOT_FOUND', `no push instance ${JSON.stringify(instanceId)}`, path),
    );
  }
  const match = matchPushRoute(routes, request.params['*'] ?? '');
  if (!match) {
    request.ingestLabels = { instance: instanceId, outcome: 'not_found' };
    return refuse(reply, problemOf('SY_PIPELINE_ROUTE_NOT_FOUND', `no push route for ${path}`, path));
  }
  const head: InboundRequestHead = {
    route: match.name,
    params: match.params,
    query: firstValues(request.query),
    method: request.method,
    headers: inboundHeaders(request),
    sourceIp: clientAddress(request),
    receivedAt,
    ...(publicUrl === undefined ? {} : { hookUrl: hookUrlOf(publicUrl, request.url) }),
  };
  const admitted = await hub.admit(instanceId, head);
  if (!admitted.ok) {
    request.ingestLabels = { instance: instanceId, outcome: outcomeOfStatus(admitted.status) };
    return refuse(
      reply,
      problemOf(admitted.problem.code, admitted.problem.detail, path, { status: admitted.status }),
      admitted.status === 503 ? databaseUnavailableAnswer(path).headers : {},
    );
  }
  request.push = { admission: admitted.admission, head };
  if (!admitted.admission.verifiesBody) request.credentialsChecked = true;
}

async function handle(hub: Hub, request: HookRequest, reply: FastifyReply) {
  const path = pathOf(request);
  // admitPush answered already (a refused push never gets here, but be explicit about it).
  if (!request.push) return reply;
  const { admission, head } = request.push;
  const inbound: InboundRequest = {
    ...head,
    rawBody: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
  };
  const result = await hub.accept(admission, inbound);
  request.ingestLabels = { instance: admission.instanceId, outcome: outcomeOf(result) };
  if (!result.ok) {
    if (result.problem.code === 'SY_STORAGE_UNAVAILABLE') {
      const { problem, headers } = databaseUnavailableAnswer(path);
      return sendProblem(reply, problem, headers);
    }
    // The hub's problem carries the code and detail; the envelope (type URI, instance) is ours.
    return sendProblem(
      reply,
      problemOf(result.problem.code, result.problem.detail, path, { status: result.status }),
    );
  }
  reply.code(result.status);
  if (result.headers) reply.headers(result.headers);
  if (result.body === undefined) return reply.send();
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(result.body));
}

/**
 * Vendor pushes: `POST /hooks/{instance}` and `POST /hooks/{instance}/*` (the connector's own
 * routes, matched here). Credentials in the head are checked before the body is read
 * ({@link admitPush}); bodies of every content type are then kept as raw bytes for the connector to
 * verify (`push.verifyBody`) and parse; the answer goes out only after the durable write.
 */
export async function hookRoutes(
  app: FastifyInstance,
  { hub, metrics, publicUrl }: RouteDeps,
): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // Before the body: credentials in the head are checked here (after the root's rate limiter).
  app.addHook('onRequest', (request, reply) => admitPush(hub, request as HookRequest, reply, publicUrl));

  app.addHook('onResponse', (request, reply, done) => {
    // Without labels of the handler's: a push refused while its body was read (413 over the body
    // limit, 408, 503 for unauthenticated bodies) is its instance's when its head was admitted.
    const labels = request.ingestLabels ?? {
      instance: request.push?.admission.instanceId ?? UNKNOWN_INSTANCE_LABEL,
      outcome: outcomeOfStatus(reply.statusCode),
    };
    metrics.ingestRequests.inc(labels);
    metrics.ingestDuration.observe({
      labels,
      value: reply.elapsedTime / 1000,
      // The push's trace, shown beside its bucket when /metrics is scraped as OpenMetrics.
      exemplarLabels: requestTraceLabels(request),
    });
    done();
  });

  const schema = {
    tags: ['hooks'],
    summary: 'Vendor push for a connector instance (the connector authenticates and parses the raw body)',
    params: {
      type: 'object',
      required: ['instance'],
      properties: { instance: { type: 'string', minLength: 1, maxLength: 100 } },
    },
  };
  app.post('/hooks/:instance', { schema }, (request, reply) => handle(hub, request as never, reply));
  app.post(
    '/hooks/:instance/*',
    {
      schema: {
        ...schema,
        summary: 'Vendor push to one of the connector’s own routes (e.g. /hooks/{instance}/cancellation)',
        params: {
          type: 'object',
          required: ['instance', '*'],
          properties: { instance: { type: 'string', minLength: 1, maxLength: 100 }, '*': { type: 'string' } },
        },
      },
    },
    (request, reply) => handle(hub, request as never, reply),
  );
}
