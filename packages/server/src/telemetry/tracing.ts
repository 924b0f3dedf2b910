/**
 * The tracing interface the hub's code uses: a handful of functions over `@opentelemetry/api`, so the
 * pipeline, delivery, gates and commands never touch the SDK. While tracing is off (the default:
 * {@link startTracing} in `telemetry/sdk.ts` never ran) every function is a branch on one module
 * flag and calls straight through: no span objects, no context switches, no SDK loaded.
 *
 * Tracing is per process, like the OpenTelemetry API it sits on (one global tracer provider,
 * propagator and context manager); `telemetry/sdk.ts` turns it on and off.
 *
 * The trace context crosses the database hand-off as a W3C `traceparent` string stored with the
 * row (`inbound_messages.traceparent`, `events.traceparent`), and the trace's W3C `tracestate`
 * beside it (`.tracestate`, migration 48): {@link currentTraceparent} and {@link currentTracestate}
 * when the row is written, {@link withSpan}'s `parent` and `parentState` when a worker picks it up.
 */
import {
  type Attributes,
  type AttributeValue,
  type Context,
  context,
  createTraceState,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export type { Attributes, AttributeValue, Span };
export { SpanKind };

/** The instrumentation scope name of every span the hub makes. */
export const TRACER_NAME = '@switchyard/server';

let enabled = false;
let tracer: Tracer | undefined;

/** Called by `telemetry/sdk.ts` when it registers (or removes) the global tracer provider. */
export function setTracingEnabled(on: boolean): void {
  enabled = on;
  tracer = on ? trace.getTracer(TRACER_NAME) : undefined;
}

/** Whether this process records traces. */
export function tracingEnabled(): boolean {
  return enabled;
}

/** What a span is made with. */
export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /**
   * A stored W3C `traceparent` to continue (a row written by another process): the span becomes
   * its child. A missing or malformed value starts a new trace.
   */
  parent?: string | null;
  /**
   * The W3C `tracestate` stored beside `parent`, carried on by the span and its children (and sent
   * with their outbound calls). Malformed list members are dropped, an over-long value entirely
   * (`createTraceState`, as the W3C propagator parses it); never an error.
   */
  parentState?: string | null;
  /** Carrier headers to continue (an inbound request's headers), same rules as `parent`. */
  parentHeaders?: Readonly<Record<string, string | string[] | undefined>>;
}

/** Marks a key deleted in a {@link ChainedContext} (`deleteValue`). */
const DELETED: unique symbol = Symbol('deleted');

/**
 * An OpenTelemetry `Context` as a chain of single entries: setting a value makes one node that
 * points at its parent, and reading walks up the chain (as deep as the spans are nested, a handful).
 * The API's own context (`ROOT_CONTEXT` and what derives from it) copies its whole `Map` and makes
 * three closures for every value set; the hub sets a value — the span — for every span it starts,
 * and a stored parent sets one more, some ten a push, each living as long as the span. Same
 * interface, same values: the SDK, the propagator and the context manager only call `getValue`,
 * `setValue` and `deleteValue` (bench/analysis.md, "s10": 5.5 KB less allocated per push).
 */
class ChainedContext implements Context {
  private readonly parent: ChainedContext | undefined;
  private readonly key: symbol | undefined;
  private readonly value: unknown;

  constructor(parent: ChainedContext | undefined, key: symbol | undefined, value: unknown) {
    this.parent = parent;
    this.key = key;
    this.value = value;
  }

  getValue(key: symbol): unknown {
    for (let c: ChainedContext | undefined = this; c !== undefined; c = c.parent) {
      if (c.key === key) return c.value === DELETED ? undefined : c.value;
    }
    return undefined;
  }

  setValue(key: symbol, value: unknown): Context {
    return new ChainedContext(this, key, value);
  }

  deleteValue(key: symbol): Context {
    return new ChainedContext(this, key, DELETED);
  }
}

/** The empty context every hub span's context derives from (the API's `ROOT_CONTEXT` holds no values either). */
const ROOT: Context = new ChainedContext(undefined, undefined, undefined);

/** The context a span starts in: an inbound request's headers, a stored `traceparent`, or the active one. */
function parentContext(options: SpanOptions): Context {
  if (options.parentHeaders !== undefined) return propagation.extract(ROOT, options.parentHeaders);
  if (options.parent !== undefined)
    return options.parent ? storedParent(options.parent, options.parentState ?? null) : ROOT;
  const active = context.active();
  // Outside any span the context manager answers the API's root: start the chain instead.
  return active === ROOT_CONTEXT ? ROOT : active;
}

/** Lowercase hex of a fixed length, not all zeros (W3C trace context: an all-zero id is invalid). */
const TRACEPARENT_00 = /^00-(?!0{32})[\da-f]{32}-(?!0{16})[\da-f]{16}-[\da-f]{2}$/;

/**
 * The context of a stored `traceparent` and `tracestate` (a row written by another process), as
 * the W3C propagator would extract them, without its carrier object, getter calls and capture
 * groups: the stored traceparents are the hub's own, version 00 (`traceparentOf`). Anything else —
 * a value written by a later version, a malformed one — goes through the propagator, which has the
 * last word on what is valid; malformed starts a new trace. The trace state is parsed by the API's
 * `createTraceState`, the parser the W3C propagator uses (invalid members dropped, a value over
 * 512 characters dropped whole, at most 32 members kept).
 */
function storedParent(traceparent: string, tracestate: string | null): Context {
  const ids = storedIds(traceparent);
  if (!ids) return propagation.extract(ROOT, tracestate ? { traceparent, tracestate } : { traceparent });
  const traceState = tracestate ? createTraceState(tracestate) : undefined;
  // A state with no valid member is no state (the propagator sends no empty `tracestate` header).
  return trace.setSpanContext(ROOT, {
    ...ids,
    isRemote: true,
    ...(traceState && traceState.serialize() !== '' ? { traceState } : {}),
  });
}

/** The ids and flags of a well-formed version-00 `traceparent` (the form the hub stores), else undefined. */
function storedIds(traceparent: string): { traceId: string; spanId: string; traceFlags: number } | undefined {
  if (!TRACEPARENT_00.test(traceparent)) return undefined;
  return {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    traceFlags: Number.parseInt(traceparent.slice(53, 55), 16),
  };
}

/**
 * Runs `fn` inside a new active span, ended when `fn` settles; a throw or rejection marks the span
 * as an error (and is rethrown). Off: calls `fn` with no span.
 *
 * @example
 * ```ts
 * const rows = await withSpan('switchyard.store', { attributes: { 'switchyard.instance': id } }, () =>
 *   writer.write(batch),
 * );
 * ```
 */
export function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => T): T {
  if (!enabled) return fn(undefined);
  const started = startSpan(name, options)!;
  const { span } = started;
  let result: T;
  try {
    result = context.with(started.context, fn, undefined, span);
  } catch (error) {
    failSpan(span, error);
    span.end();
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        failSpan(span, error);
        span.end();
        throw error;
      },
    ) as T;
  }
  span.end();
  return result;
}

/**
 * Starts a span that the caller ends (for spans that outlive one call, like an HTTP request
 * between fastify hooks), with the context to run its work in. Off: undefined.
 *
 * @example
 * ```ts
 * const started = startSpan('POST /hooks/{instance}', { kind: SpanKind.SERVER, parentHeaders: req.headers });
 * started && context.with(started.context, next);
 * started?.span.end();
 * ```
 */
export function startSpan(name: string, options: SpanOptions): { span: Span; context: Context } | undefined {
  if (!enabled) return undefined;
  const parent = parentContext(options);
  const span = tracer!.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL }, parent);
  // Set on the started span, not given to `startSpan`: the SDK (3.1) runs attributes given at the
  // start through two sanitizing passes (one for the sampler, one for the span) before the span
  // takes them, and one pass when set on the span; the samplers the hub configures (ratio,
  // parent-based) do not read attributes. Same attributes, same span (bench/analysis.md, "s9").
  if (options.attributes) span.setAttributes(options.attributes);
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs `fn` with `ctx` active (a context from {@link startSpan}); undefined runs it as is. */
export function runInContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx === undefined ? fn() : context.with(ctx, fn);
}

/** Records an error on a span: status ERROR with a short message, `error.type` set. */
export function failSpan(span: Span, error: unknown, type?: string): void {
  const message = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 200) });
  span.setAttribute('error.type', type ?? (error instanceof Error ? error.name : 'error'));
}

/**
 * Sets attributes on the active span (a stage adding what it learned, e.g. the attempt's outcome).
 * Off, or outside a span: nothing.
 *
 * @example
 * ```ts
 * setSpanAttributes({ 'switchyard.delivery.outcome': 'retry', 'http.response.status_code': 500 });
 * ```
 */
export function setSpanAttributes(attributes: Attributes): void {
  if (!enabled) return;
  trace.getSpan(context.active())?.setAttributes(attributes);
}

/**
 * The active span's context as a W3C `traceparent` header value, to store with a row another
 * process picks up (or to send). Undefined when tracing is off or no span is active.
 *
 * @example
 * ```ts
 * const item = { ...row, traceparent: currentTraceparent() ?? null };
 * ```
 */
export function currentTraceparent(): string | undefined {
  if (!enabled) return undefined;
  // The value the W3C propagator would inject, formatted directly (no carrier object, no
  // propagator pass); the trace state goes beside it (currentTracestate).
  const span = trace.getSpan(context.active());
  return span && trace.isSpanContextValid(span.spanContext()) ? traceparentOf(span) : undefined;
}

/**
 * A span's own W3C `traceparent` value, to store with a row another process picks up: the same
 * string {@link currentTraceparent} gives inside the span, without entering the span's context
 * (no `context.with`, no propagator) on the hot path.
 *
 * @example
 * ```ts
 * const started = startSpan('switchyard.fanout', { parent: row.trace });
 * const traceparent = started ? traceparentOf(started.span) : null;
 * ```
 */
export function traceparentOf(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * The active span's W3C `tracestate` (the caller's vendor entries the trace carries), to store
 * beside {@link currentTraceparent}'s value; undefined when tracing is off, no span is active or
 * the trace has no state.
 *
 * @example
 * ```ts
 * const item = { ...row, traceparent: currentTraceparent() ?? null, tracestate: currentTracestate() ?? null };
 * ```
 */
export function currentTracestate(): string | undefined {
  if (!enabled) return undefined;
  const span = trace.getSpan(context.active());
  return span ? (tracestateOf(span) ?? undefined) : undefined;
}

/**
 * A span's W3C `tracestate` value (inherited from its parent), to store beside
 * {@link traceparentOf}'s value; null when the trace has none.
 *
 * @example
 * ```ts
 * const tracestate = started ? tracestateOf(started.span) : null;
 * ```
 */
export function tracestateOf(span: Span): string | null {
  const state = span.spanContext().traceState?.serialize();
  return state ? state : null;
}

/**
 * Adds `traceparent` (and `tracestate` when there is one) of the active span to outbound headers.
 * Off: the headers unchanged.
 *
 * @example
 * ```ts
 * injectTraceContext(headers); // headers.traceparent = '00-<trace id>-<span id>-01'
 * ```
 */
export function injectTraceContext(headers: Record<string, string>): void {
  if (!enabled) return;
  propagation.inject(context.active(), headers);
}

/**
 * `trace_id` and `span_id` of the active span, for log lines (the pino mixin); an empty object when
 * tracing is off or no span is active. A fresh object each call: pino merges the line's fields into it.
 */
export function logTraceFields(): { trace_id?: string; span_id?: string } {
  if (!enabled) return {};
  const span = trace.getSpan(context.active());
  return span ? traceFieldsOf(span) : {};
}

/**
 * A span's ids as `trace_id` and `span_id`, the names logs and metric exemplars carry them under
 * (a fresh object each call).
 *
 * @example
 * ```ts
 * metrics.ingestDuration.observe({ labels, value, exemplarLabels: traceFieldsOf(span) });
 * ```
 */
export function traceFieldsOf(span: Span): { trace_id: string; span_id: string } {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/**
 * The ids of a stored W3C `traceparent` (a row written by {@link currentTraceparent}'s value) as the
 * labels a metric exemplar carries, `trace_id` and `span_id`, when it names a sampled span; undefined
 * for none, a malformed value, or an unsampled span (whose trace no collector ever received, so an
 * exemplar could only point at nothing). Works in any process, tracing on or off: the row may have
 * been written by another.
 *
 * @example
 * ```ts
 * histogram.observe({ labels, value, exemplarLabels: exemplarOfTraceparent(row.traceparent) });
 * ```
 */
export function exemplarOfTraceparent(
  traceparent: string | null | undefined,
): { trace_id: string; span_id: string } | undefined {
  const ids = traceparent ? storedIds(traceparent) : undefined;
  return ids && (ids.traceFlags & 1) === 1 ? { trace_id: ids.traceId, span_id: ids.spanId } : undefined;
}

/**
 * Runs an outbound HTTP call inside a CLIENT span following OpenTelemetry's HTTP client
 * conventions, with the span's `traceparent` added to `headers`. `statusOf` reads the answer's
 * status (undefined when none arrived); a status ≥ 400 or a throw marks the span as an error.
 * Off: calls `fn` with the headers unchanged.
 *
 * @example
 * ```ts
 * const result = await withClientSpan('POST', url, headers, () => send(headers), (r) => r.status);
 * ```
 */
export function withClientSpan<T>(
  method: string,
  url: URL | undefined,
  headers: Record<string, string>,
  fn: () => Promise<T>,
  statusOf: (result: T) => { status?: number; errorType?: string },
  attributes: Attributes = {},
): Promise<T> {
  if (!enabled) return fn();
  const attrs: Attributes = { 'http.request.method': method, ...attributes };
  if (url) {
    // Origin and path only: query strings are where vendors put API keys.
    attrs['url.full'] = `${url.origin}${url.pathname}`;
    attrs['server.address'] = url.hostname;
    attrs['server.port'] = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  }
  return withSpan(method, { kind: SpanKind.CLIENT, attributes: attrs }, async (span) => {
    injectTraceContext(headers);
    const result = await fn();
    const { status, errorType } = statusOf(result);
    if (status !== undefined) span?.setAttribute('http.response.status_code', status);
    if (status === undefined || status >= 400) {
      span?.setStatus({ code: SpanStatusCode.ERROR });
      span?.setAttribute('error.type', errorType ?? String(status ?? 'error'));
    }
    return result;
  });
}
