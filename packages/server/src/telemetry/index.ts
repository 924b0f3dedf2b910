/**
 * Telemetry of a hub process: OpenTelemetry traces (off by default). The interface:
 *
 * - {@link startTelemetry}: turns tracing on for the process when the settings say so (loading the
 *   SDK then, and only then), returning a handle to flush and stop it;
 * - `tracing.ts`: what the hub's code calls around its stages (`withSpan`, `currentTraceparent`,
 *   `traceparentOf`, `setSpanAttributes`, `withClientSpan`, `logTraceFields`), all no-ops while
 *   tracing is off;
 * - `fastify.ts`: the SERVER span of every HTTP request, continuing an inbound `traceparent` (its
 *   hooks are added only when tracing is on).
 *
 * Span names and attributes are listed in docs/observability.md.
 */
import type { Registry } from 'prom-client';
import {
  describeTracing,
  resolveTracing,
  type TracesFileSettings,
  type TracingDefaults,
} from './settings.ts';

export { requestTraceLabels, traceRequests } from './fastify.ts';
export {
  resolveTracing,
  type TracesFileSettings,
  type TracingDefaults,
  type TracingSettings,
} from './settings.ts';
export * from './tracing.ts';

/** A process's telemetry, on or off. */
export interface Telemetry {
  /** Whether spans are recorded and exported. */
  readonly tracing: boolean;
  /** Where spans go and how they are sampled, for the start-up log line (tracing on only). */
  readonly described?: ReturnType<typeof describeTracing>;
  /** Exports what is queued (bounded by the export timeout). */
  flush(): Promise<void>;
  /** Flushes (bounded) and stops. Idempotent. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { tracing: false, flush: async () => {}, shutdown: async () => {} };

/**
 * Starts tracing when `telemetry.traces` or the OTLP environment variables name an endpoint
 * (see `settings.ts` for which wins); otherwise returns a handle that does nothing, and the SDK is
 * never loaded.
 *
 * @example
 * ```ts
 * const telemetry = await startTelemetry(config.telemetry.traces, { env: process.env, registry, role: 'all', defaults: tracingDefaults });
 * logger.info({ tracing: telemetry.tracing }, 'telemetry');
 * await telemetry.shutdown();
 * ```
 */
export async function startTelemetry(
  traces: TracesFileSettings,
  options: {
    env: Readonly<Record<string, string | undefined>>;
    registry: Registry;
    role: string;
    /** What applies where neither the file nor the environment says (the config's defaults). */
    defaults: TracingDefaults;
    version?: string;
    /** Where a collector that does not take the spans is said (at most once a minute). */
    logger?: { warn(obj: object, msg: string): void };
  },
): Promise<Telemetry> {
  const settings = resolveTracing(traces, options.env, options.defaults);
  if (!settings) return OFF;
  const { startTracing } = await import('./sdk.ts');
  const handle = await startTracing(settings, {
    registry: options.registry,
    role: options.role,
    ...(options.version ? { version: options.version } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return {
    tracing: true,
    described: describeTracing(settings, options.env),
    flush: () => handle.flush(),
    shutdown: () => handle.shutdown(),
  };
}
