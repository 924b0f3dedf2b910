/**
 * The configuration after loading: defaults applied, secrets resolved, durations in milliseconds,
 * each instance holding its connector. The file's own shape is `SwitchyardConfigFile`
 * (generated from the schema, in `generated/config.ts`).
 */
import type { Connector } from '@switchyard/core';
import type { Subscription } from '../subscriptions/generated/input.ts';
import type { TracesFileSettings } from '../telemetry/settings.ts';

export type InstanceMode = 'push' | 'pull' | 'both';

export interface ResolvedInstance {
  id: string;
  connector: Connector;
  mode: InstanceMode;
  /** The connector's settings, secrets resolved, connector schema defaults applied. */
  settings: Record<string, unknown>;
  /** Set when mode is pull or both. */
  pull?: { intervalMs: number };
  /** Set when the connector has approval gates. */
  gate?: { deadlineMs: number; default: 'approve' | 'refuse' };
}

export interface ResolvedSubscription {
  id: string;
  kind: 'webhook' | 'pull';
  /** Webhook only. */
  url?: string;
  events: string[];
  /** Instance ids; undefined means every instance. */
  sources?: string[];
  /** Signing secrets from the file (resolved); undefined: the hub generates and stores one. */
  secrets?: string[];
  contentType: 'application/cloudevents+json' | 'application/json';
  /** The delivery body format (webhooks only). */
  format: Subscription['format'];
  retryScheduleMs: number[];
  timeoutMs: number;
  rateLimit?: { perSecond: number };
  ordering: 'hold' | 'release';
  approver?: { events: string[]; sources?: string[] };
  allowPrivateAddresses: boolean;
  disableAfterConsecutiveDead: number;
}

export type ResolvedDatabase =
  | { kind: 'url'; url: string; from: 'file' | 'env' }
  | { kind: 'embedded' /** Absolute. */; dataDir: string };

export interface ResolvedConfig {
  /** Absolute path of the file it came from. */
  file: string;
  server: {
    host: string;
    port: number;
    publicUrl?: string;
    adminToken?: string;
    bodyLimitBytes: number;
    trustedProxies: string[];
    /** `server.timeouts`, in ms. */
    timeouts: { headersMs: number; bodyMs: number; requestMs: number };
    unauthenticatedBodyBytes: number;
  };
  database: ResolvedDatabase;
  secretKey?: string;
  instances: ResolvedInstance[];
  subscriptions: ResolvedSubscription[];
  retention: { inboundMessagesMs: number; eventsMs: number; deliveriesMs: number };
  /** Lease lengths of the normalize and deliver workers, ms. */
  workers: { normalizeLeaseMs: number; deliveryLeaseMarginMs: number; pollBackstopMs: number };
  /** The commands subsystem (`commands.*`), durations in ms. */
  commands: {
    retryScheduleMs: number[];
    maxRetryAfterMs: number;
    leaseMs: number;
    sweepIntervalMs: number;
    concurrency: number;
    echoWindowMs: number;
    retentionMs: number;
  };
  logging: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; pretty?: boolean };
  /** `telemetry.*`: what the file says; the OTEL_* environment fills the rest at start (telemetry/settings.ts). */
  telemetry: { traces: TracesFileSettings };
}

/** One thing wrong with the file, located. Never contains a secret value. */
export interface ConfigProblem {
  /** The config file as given. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** `instances[2].connector`; empty for the file as a whole. */
  path: string;
  message: string;
}

/** What {@link loadConfig} returns: a config when there is no problem. */
export type LoadResult =
  | { ok: true; config: ResolvedConfig; problems: []; secrets: string[] }
  | { ok: false; config?: undefined; problems: ConfigProblem[]; secrets: string[] };
