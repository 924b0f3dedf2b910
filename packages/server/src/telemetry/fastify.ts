/**
 * The SERVER span of each HTTP request (OpenTelemetry HTTP server conventions), for every route of
 * an app: vendor pushes, the admin and commands API, the feed. A well-formed inbound `traceparent`
 * is continued; a missing or malformed one starts a new trace (the W3C propagator ignores what it
 * cannot parse), never an error.
 *
 * Why hooks and not an auto-instrumentation package: the span needs the hub's own route template
 * and outcome, and the request's work must run inside the span's context. The context is entered
 * in `onRequest` (credential checks of pushes run there) and again in `preHandler`, because body
 * parsing resumes from socket events that do not carry the request's async context.
 */
import type { Context } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  failSpan,
  runInContext,
  type Span,
  SpanKind,
  startSpan,
  traceFieldsOf,
  tracingEnabled,
} from './tracing.ts';

const SPAN = Symbol('switchyard.span');

/** `/hooks/{instance}/…` however its slashes and escapes are written: group 1 ends at the instance. */
const HOOK_PATH = /^(\/+([^/]+)\/+[^/]+)\/+./;
/** The scheme and authority of an absolute-form request target (`POST http://user:pw@host/...`). */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * A request target as logs and spans may show it. Some vendors put their credential in the URL:
 * Clockwise.MD's `/hooks/{instance}/{key}` and Instinctive Notes' `/hooks/{instance}/{secret}` path
 * modes, `?token=` query strings. For instances created through the admin API the log's value
 * scrubber does not know those keys, so the URL itself is cut: every path segment after
 * `/hooks/{instance}` and every query value become `[redacted]`. The hooks prefix is recognised
 * however it is percent-encoded (the router decodes `/%68ooks/...` to the hooks too), and an
 * absolute-form target keeps its path and query only (its authority may hold `user:password@`).
 * The request log (`logging/log-serializers.ts`) and the request span's `url.path` both use it.
 *
 * @example
 * ```ts
 * redactUrl('/hooks/cw-main/3f9a0c?token=abc&x=1'); // '/hooks/cw-main/[redacted]?token=[redacted]&x=[redacted]'
 * redactUrl('http://u:p@hub/%68ooks/cw-main/3f9a0c'); // '/%68ooks/cw-main/[redacted]'
 * ```
 */
export function redactUrl(url: string): string {
  const origin = ORIGIN.exec(url);
  const target = origin ? url.slice(origin[0].length) || '/' : url;
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  const hook = HOOK_PATH.exec(path);
  const safePath =
    hook && decodedSegment(hook[2]!).toLowerCase() === 'hooks' ? `${hook[1]}/[redacted]` : path;
  if (!query) return safePath;
  const names = query.split('&').map((pair) => `${pair.split('=')[0]}=[redacted]`);
  return `${safePath}?${names.join('&')}`;
}

type Traced = FastifyRequest & { [SPAN]?: { span: Span; context: Context } };

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `false` for a route whose requests get no span: the health probes and the metrics scrape.
     * A load balancer probes every few seconds and Prometheus scrapes every 15 s, from every
     * process: each request was a one-span trace of its own, thousands a day per process, crowding
     * the vendors' notifications out of the collector's trace list (and out of a sampled budget).
     *
     * @example
     * ```ts
     * app.get('/healthz', { config: { trace: false } }, async () => ({ status: 'ok' }));
     * ```
     */
    trace?: boolean;
  }
}

/** What a request without a span links to: nothing (prom-client skips an empty exemplar). */
const NO_TRACE: Readonly<Record<string, string>> = Object.freeze({});

/**
 * `trace_id` and `span_id` of a request's SERVER span, as exemplar labels of a metric observed for
 * the request (its duration): the scrape then names one trace per histogram bucket. Read from the
 * request, not the active context, so it works in `onResponse` hooks, which fastify runs outside
 * the request's async context. Empty when the request has no span (tracing off, or stopped) or its
 * trace is not sampled.
 *
 * @example
 * ```ts
 * metrics.ingestDuration.observe({ labels, value: reply.elapsedTime / 1000, exemplarLabels: requestTraceLabels(request) });
 * ```
 */
export function requestTraceLabels(request: FastifyRequest): Readonly<Record<string, string>> {
  const started = (request as Traced)[SPAN];
  // An unsampled trace is never exported: an exemplar naming it would point at nothing.
  return started && (started.span.spanContext().traceFlags & 1) === 1
    ? traceFieldsOf(started.span)
    : NO_TRACE;
}

/** How {@link traceRequests} reads a request. */
export interface TraceRequestsOptions {
  /**
   * The request's client address for `client.address` (default `request.ip`): the HTTP face passes
   * the one its limiter and connectors judge by, without the port a proxy may write into
   * `X-Forwarded-For` (http/client-address.ts; this folder imports nothing of the hub's).
   */
  clientAddress?: (request: FastifyRequest) => string;
}

/**
 * Adds the request span hooks to `app` (call after tracing started, before routes are registered).
 * With tracing off it adds nothing: a request then runs no hook of this module at all, which is
 * cheaper than hooks that check a flag (fastify skips the hook runner of an empty hook list).
 *
 * @example
 * ```ts
 * const app = Fastify();
 * traceRequests(app, { clientAddress: (request) => request.ip });
 * ```
 */
export function traceRequests(app: FastifyInstance, options: TraceRequestsOptions = {}): void {
  if (!tracingEnabled()) return;
  const clientAddress = options.clientAddress ?? ((request: FastifyRequest) => request.ip);
  app.addHook('onRequest', (request: Traced, reply, done) => {
    // Tracing stopped since (a process shutting down): the request is served unrecorded.
    if (!tracingEnabled() || request.routeOptions.config?.trace === false) return done();
    const route = request.routeOptions.url;
    const query = request.url.indexOf('?');
    const started = startSpan(route ? `${request.method} ${route}` : request.method, {
      kind: SpanKind.SERVER,
      parentHeaders: request.headers,
      attributes: {
        'http.request.method': request.method,
        // Required by the HTTP server conventions; `x-forwarded-proto` counts behind a trusted proxy.
        'url.scheme': request.protocol,
        // Redacted as the request log shows it: a push's path may carry the vendor's key.
        'url.path': redactUrl(query < 0 ? request.url : request.url.slice(0, query)),
        ...(route ? { 'http.route': route } : {}),
        'client.address': clientAddress(request),
      },
    });
    if (!started) return done();
    request[SPAN] = started;
    // A caller that hangs up before the answer (a vendor whose own timeout passed while a gate was
    // decided, a slow store) gets no `onResponse` from fastify: the span would never end, and the
    // trace of exactly the request the operator looks for would lack its root. The response's
    // `close` comes after `finish` when an answer went out (onResponse has ended the span then).
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished) return;
      failSpan(started.span, 'the caller closed the connection before the answer', 'aborted');
      started.span.end();
    });
    runInContext(started.context, done);
  });
  app.addHook('preHandler', (request: Traced, _reply, done) => {
    runInContext(request[SPAN]?.context, done);
  });
  app.addHook('onResponse', (request: Traced, reply: FastifyReply, done) => {
    const started = request[SPAN];
    if (started) {
      const { span } = started;
      span.setAttribute('http.response.status_code', reply.statusCode);
      const labels = (request as { ingestLabels?: { instance: string; outcome: string } }).ingestLabels;
      if (labels) {
        span.setAttribute('switchyard.instance', labels.instance);
        span.setAttribute('switchyard.ingest.outcome', labels.outcome);
      }
      if (reply.statusCode >= 500) failSpan(span, `HTTP ${reply.statusCode}`, String(reply.statusCode));
      span.end();
    }
    done();
  });
}
