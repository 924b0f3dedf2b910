/**
 * What tracing runs with, from `telemetry.traces` of switchyard.yaml and the standard OpenTelemetry
 * environment variables. The rule is the one `database.url` / `DATABASE_URL` follows: **a value the
 * file sets wins; the environment fills in what the file leaves out; then the built-in default.**
 * Tracing is on when an endpoint is known (the file's, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT`) and `OTEL_SDK_DISABLED` is not `true`; otherwise off. An endpoint
 * from the environment counts only while `OTEL_TRACES_EXPORTER` asks for `otlp` (its default).
 */

/**
 * `telemetry.traces` of the file, resolved (secrets in `headers` already read): only what the file
 * sets, so that the environment can fill in the rest.
 */
export interface TracesFileSettings {
  /** The OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`. */
  endpoint?: string;
  /** Headers sent with every export (API keys: secret references in the file). */
  headers?: Record<string, string>;
  /** Share of new traces recorded, 0..1. */
  sampleRatio?: number;
  /** Finished spans waiting for export at most; past it spans are dropped (and counted). */
  queueSize?: number;
  /** Longest wait before a batch of finished spans is exported, ms. */
  batchDelayMs?: number;
  /** Longest time one export may take (retries included), ms; also the bound on the final flush. */
  exportTimeoutMs?: number;
}

/** What tracing runs with where neither the file nor the environment says (the config's defaults). */
export interface TracingDefaults {
  /** Share of new traces recorded. */
  sampleRatio: number;
  /** Finished spans waiting for export at most. */
  queueSize: number;
  /** Longest wait before finished spans are exported, ms. */
  batchDelayMs: number;
  /** Longest time one export may take, ms; also the bound on the final flush. */
  exportTimeoutMs: number;
}

/** How the tracer provider samples: the ratio of new traces, and whether a parent's decision is followed. */
export interface SamplerSettings {
  ratio: number;
  parentBased: boolean;
  /** Where the setting came from (shown in the start-up log line). */
  from: 'file' | 'env' | 'default';
}

/** Tracing settings ready for `startTracing`. */
export interface TracingSettings {
  /**
   * The traces URL when the file gives it; undefined lets the exporter read the OTLP environment
   * variables itself (per-signal first, then `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`).
   */
  url?: string;
  /** The file's headers; the exporter merges them over `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`. */
  headers?: Record<string, string>;
  sampler: SamplerSettings;
  queueSize: number;
  batchDelayMs: number;
  /**
   * The most spans one export request carries when `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says (at most
   * the queue size); undefined: the export thread's `EXPORT_BATCH_SPANS`, the SDK's default 512.
   */
  exportBatchSpans?: number;
  /** Undefined when `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` is set: the exporter reads it. */
  exportTimeoutMs?: number;
  /** The bound on the final flush at shutdown, ms. */
  shutdownTimeoutMs: number;
  /** `OTEL_SERVICE_NAME`, else `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else `switchyard`. */
  serviceName: string;
  /**
   * `OTEL_RESOURCE_ATTRIBUTES`, decoded: what the deployment says about where the process runs
   * (`deployment.environment.name`, `k8s.pod.name`, ...), on every span's resource.
   */
  resourceAttributes?: Record<string, string>;
  /**
   * The export encoding: `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, `http/protobuf` (OTLP's default)
   * unless it says `http/json`. Protobuf serializes in 55–65 % of JSON's CPU per span and sends 40 % of
   * the bytes (docs/observability.md, "What tracing costs").
   */
  protocol: 'http/protobuf' | 'http/json';
  /**
   * The context formats read from inbound requests and written on outbound calls
   * (`OTEL_PROPAGATORS`): W3C `traceparent` alone unless the deployment says; empty for `none`.
   */
  propagators: Propagator[];
}

/** The propagators the hub ships (`OTEL_PROPAGATORS`' names). */
export type Propagator = 'tracecontext' | 'baggage';

type Env = Readonly<Record<string, string | undefined>>;

function set(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The sampler `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` ask for, when they ask for one this
 * hub can honour (the ratio family); undefined otherwise.
 */
export function samplerFromEnv(env: Env): SamplerSettings | undefined {
  const name = set(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  if (name === undefined) return undefined;
  // The specification: an argument the sampler cannot use is ignored, as if it were not set (a
  // ratio's default, 1.0). Clamped, `-0.1` (a typo) recorded nothing at all.
  const arg = Number(set(env, 'OTEL_TRACES_SAMPLER_ARG') ?? '1');
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch (name) {
    case 'always_on':
      return { ratio: 1, parentBased: false, from: 'env' };
    case 'always_off':
      return { ratio: 0, parentBased: false, from: 'env' };
    case 'traceidratio':
      return { ratio, parentBased: false, from: 'env' };
    case 'parentbased_always_on':
      return { ratio: 1, parentBased: true, from: 'env' };
    case 'parentbased_always_off':
      return { ratio: 0, parentBased: true, from: 'env' };
    case 'parentbased_traceidratio':
      return { ratio, parentBased: true, from: 'env' };
    default:
      return undefined;
  }
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` as the OpenTelemetry SDK specification reads it: `key=value` pairs
 * separated by commas, each key and value trimmed and percent-decoded (`,` and `=` inside them
 * must be encoded). A value that cannot be read is discarded whole, as the specification says, so
 * a typo never puts half a deployment's attributes on its spans.
 *
 * @example
 * ```ts
 * resourceAttributesFromEnv({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,team=a%2Cb' });
 * // { 'deployment.environment.name': 'prod', team: 'a,b' }
 * ```
 */
export function resourceAttributesFromEnv(env: Env): Record<string, string> | undefined {
  const raw = set(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (raw === undefined) return undefined;
  const attributes: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue;
    const parts = pair.split('=');
    if (parts.length !== 2) return undefined;
    const key = parts[0]!.trim();
    if (key === '') return undefined;
    try {
      attributes[decodeURIComponent(key)] = decodeURIComponent(parts[1]!.trim());
    } catch {
      return undefined;
    }
  }
  return Object.keys(attributes).length > 0 ? attributes : undefined;
}

/**
 * The batch span processor's variables (`OTEL_BSP_*`) that are set to what the specification allows
 * (a whole number, positive; the delay may be 0), by name. One that is not is ignored as if
 * unset (and named at start-up by {@link describeTracing}).
 */
function batchFromEnv(env: Env): Partial<Record<BspVariable, number>> {
  const read: Partial<Record<BspVariable, number>> = {};
  for (const name of BSP_VARIABLES) {
    const value = bspValue(env, name);
    if (value !== undefined && value !== 'invalid') read[name] = value;
  }
  return read;
}

const BSP_VARIABLES = [
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
] as const;
type BspVariable = (typeof BSP_VARIABLES)[number];

function bspValue(env: Env, name: BspVariable): number | 'invalid' | undefined {
  const raw = set(env, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  // A delay of 0 exports at once; an export timeout of 0 would fail every export.
  const least = name === 'OTEL_BSP_SCHEDULE_DELAY' ? 0 : 1;
  return /^\d+$/.test(raw) && Number.isSafeInteger(value) && value >= least ? value : 'invalid';
}

/**
 * What `OTEL_PROPAGATORS` asks for, read as its list: the shipped names, whether it says `none`, and
 * the others (`b3`, `jaeger`, ...).
 */
function propagatorsAsked(env: Env): { honoured: Propagator[]; none: boolean; others: string[] } | undefined {
  const raw = set(env, 'OTEL_PROPAGATORS');
  if (raw === undefined) return undefined;
  const names = raw
    .toLowerCase()
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const honoured = (['tracecontext', 'baggage'] as const).filter((name) => names.includes(name));
  return {
    honoured,
    none: names.includes('none'),
    others: names.filter((name) => name !== 'none' && !honoured.includes(name as Propagator)),
  };
}

/**
 * The propagators a process uses: `OTEL_PROPAGATORS` when it names one the hub ships or says `none`
 * (the specification: `none` wins over the rest of the list); otherwise W3C trace context alone,
 * the hub's default (a list of only `b3` or `jaeger` is named in the start-up warning, and the
 * hub keeps speaking `traceparent` rather than going silent).
 */
function propagatorsFromEnv(env: Env): Propagator[] {
  const asked = propagatorsAsked(env);
  if (asked?.none) return [];
  return asked !== undefined && asked.honoured.length > 0 ? asked.honoured : ['tracecontext'];
}

/**
 * The OTLP/HTTP encoding the environment asks for (per-signal variable first). `grpc` is not
 * offered (no gRPC exporter is shipped): anything but `http/json` exports protobuf.
 */
function protocolFromEnv(env: Env): TracingSettings['protocol'] {
  const asked = set(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? set(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  return asked?.toLowerCase() === 'http/json' ? 'http/json' : 'http/protobuf';
}

/**
 * The tracing settings, or undefined when tracing is off.
 *
 * @example
 * ```ts
 * resolveTracing({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' }, { sampleRatio: 1, queueSize: 2048, batchDelayMs: 1000, exportTimeoutMs: 10000 });
 * // { sampler: { ratio: 1, parentBased: true, from: 'default' }, ... } (the exporter adds /v1/traces)
 * ```
 */
export function resolveTracing(
  file: TracesFileSettings,
  env: Env,
  defaults: TracingDefaults,
): TracingSettings | undefined {
  if (set(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  // OTEL_TRACES_EXPORTER (default `otlp`) says which exporters the environment wants: `none` is
  // how a deployment that sets OTEL_EXPORTER_OTLP_ENDPOINT for every service keeps one from
  // tracing; the hub ships OTLP only, so a list without it (`console`, `zipkin`) asks for nothing
  // the hub can send. The file's endpoint still wins, as every file setting does.
  const exporters = (set(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp').toLowerCase().split(',');
  const envWantsOtlp =
    exporters.some((name) => name.trim() === 'otlp') && !exporters.some((name) => name.trim() === 'none');
  const envEndpoint = envWantsOtlp
    ? (set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT'))
    : undefined;
  if (file.endpoint === undefined && envEndpoint === undefined) return undefined;
  const sampler: SamplerSettings =
    file.sampleRatio !== undefined
      ? { ratio: file.sampleRatio, parentBased: true, from: 'file' }
      : (samplerFromEnv(env) ?? { ratio: defaults.sampleRatio, parentBased: true, from: 'default' });
  const envTimeout = set(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ?? set(env, 'OTEL_EXPORTER_OTLP_TIMEOUT');
  const resourceAttributes = resourceAttributesFromEnv(env);
  // The batch span processor's variables, as an SDK reads them: the queue, how long finished spans
  // may wait, how many go in one request, and the bound on an export (the final flush's too).
  const batch = batchFromEnv(env);
  const queueSize = file.queueSize ?? batch.OTEL_BSP_MAX_QUEUE_SIZE ?? defaults.queueSize;
  const exportTimeoutMs = file.exportTimeoutMs ?? batch.OTEL_BSP_EXPORT_TIMEOUT ?? defaults.exportTimeoutMs;
  return {
    ...(file.endpoint !== undefined ? { url: file.endpoint } : {}),
    ...(file.headers !== undefined && Object.keys(file.headers).length > 0 ? { headers: file.headers } : {}),
    sampler,
    queueSize,
    batchDelayMs: file.batchDelayMs ?? batch.OTEL_BSP_SCHEDULE_DELAY ?? defaults.batchDelayMs,
    // The specification: a batch larger than the queue is never filled; the queue bounds it.
    ...(batch.OTEL_BSP_MAX_EXPORT_BATCH_SIZE !== undefined
      ? { exportBatchSpans: Math.min(batch.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, queueSize) }
      : {}),
    ...(envTimeout === undefined ? { exportTimeoutMs } : {}),
    shutdownTimeoutMs: exportTimeoutMs,
    // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (the specification's rule).
    serviceName: set(env, 'OTEL_SERVICE_NAME') ?? resourceAttributes?.['service.name'] ?? 'switchyard',
    ...(resourceAttributes !== undefined ? { resourceAttributes } : {}),
    protocol: protocolFromEnv(env),
    propagators: propagatorsFromEnv(env),
  };
}

/**
 * What the start-up log line says about tracing: where spans go (the URL the exporter will use,
 * the same rule as its own: the file's, else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else
 * `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; scheme, host and path only, since a URL may carry
 * `user:password@` or a `?token=`), in which encoding, and which sampler won and from where. An
 * operator whose `OTEL_TRACES_SAMPLER` lost to the file's `sampleRatio` reads it there.
 *
 * @example
 * ```ts
 * describeTracing(settings, process.env);
 * // { endpoint: 'http://otel:4318/v1/traces', protocol: 'http/protobuf', sampler: 'parentbased_traceidratio', sampleRatio: 0.1, samplerFrom: 'file', serviceName: 'switchyard' }
 * ```
 */
export function describeTracing(
  settings: TracingSettings,
  env: Env,
): {
  endpoint: string;
  protocol: TracingSettings['protocol'];
  sampler: string;
  sampleRatio: number;
  samplerFrom: SamplerSettings['from'];
  serviceName: string;
  /** The context formats read and written (`none` when there are none). */
  propagators: string;
  /** OpenTelemetry variables set to what the hub cannot honour, each with what it does instead. */
  notHonoured?: string[];
} {
  const generic = set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const url =
    settings.url ??
    set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ??
    (generic === undefined ? undefined : `${generic}${generic.endsWith('/') ? '' : '/'}v1/traces`);
  let endpoint = '(none)';
  if (url !== undefined) {
    try {
      const parsed = new URL(url);
      // Only an http(s) URL has its credentials apart: `user:pw@host:4318`, written without a
      // scheme, parses as scheme `user:` with the password in its path.
      endpoint =
        parsed.protocol === 'http:' || parsed.protocol === 'https:'
          ? `${parsed.protocol}//${parsed.host}${parsed.pathname}`
          : '(not an http:// or https:// URL)';
    } catch {
      endpoint = '(not a URL)';
    }
  }
  const { ratio, parentBased, from } = settings.sampler;
  // The specification: a value an SDK cannot use MUST be logged (and is otherwise ignored). grpc
  // is the likeliest: a collector's 4317 port then gets HTTP and every export fails.
  const notHonoured: string[] = [];
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const asked = set(env, name);
    if (asked === undefined) continue;
    if (!['http/protobuf', 'http/json'].includes(asked.toLowerCase()))
      notHonoured.push(`${name}=${asked}: not offered, spans go as ${settings.protocol}`);
    break;
  }
  const samplerName = set(env, 'OTEL_TRACES_SAMPLER');
  if (samplerName !== undefined && samplerFromEnv(env) === undefined)
    notHonoured.push(`OTEL_TRACES_SAMPLER=${samplerName}: not offered, the default sampler is used`);
  const arg = set(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (samplerName !== undefined && arg !== undefined && !(Number(arg) >= 0 && Number(arg) <= 1))
    notHonoured.push(`OTEL_TRACES_SAMPLER_ARG=${arg}: not a ratio from 0 to 1, ignored`);
  const others = propagatorsAsked(env)?.others ?? [];
  if (others.length > 0)
    notHonoured.push(
      `OTEL_PROPAGATORS=${set(env, 'OTEL_PROPAGATORS')}: ${others.join(', ')} not offered, the hub reads and writes ${settings.propagators.join(', ') || 'none'}`,
    );
  for (const name of BSP_VARIABLES)
    if (bspValue(env, name) === 'invalid')
      notHonoured.push(
        `${name}=${set(env, name)}: not a whole number${name === 'OTEL_BSP_SCHEDULE_DELAY' ? '' : ' above 0'}, ignored`,
      );
  return {
    endpoint,
    protocol: settings.protocol,
    sampler: `${parentBased ? 'parentbased_' : ''}traceidratio`,
    sampleRatio: ratio,
    samplerFrom: from,
    serviceName: settings.serviceName,
    propagators: settings.propagators.join(',') || 'none',
    ...(notHonoured.length > 0 ? { notHonoured } : {}),
  };
}
