/**
 * The configuration after loading: defaults applied, secrets resolved, durations in milliseconds,
 * each instance holding its connector. The file's own shape is `SwitchyardConfigFile`
 * (generated from the schema, in `generated/config.ts`).
 */
import type { Connector } from '@switchyard/core';
import type { InstanceCreate } from '../instances/generated/input.ts';
import type { InstanceInput } from '../instances/input.ts';
import type { SubscriptionInput } from '../subscriptions/api.ts';
import type { SubscriptionCreate } from '../subscriptions/generated/input.ts';
import type { TracesFileSettings } from '../telemetry/settings.ts';

export type InstanceMode = NonNullable<InstanceCreate['mode']>;

/**
 * An instance of the file, resolved: the hub's one instance input (instances/schema.ts, its
 * generated types) with the connector itself in place of its name and the file's defaults applied.
 * Derived from the input, so a field added to the schema needs no edit here.
 */
export type ResolvedInstance = Omit<InstanceInput, 'connector' | 'mode' | 'pull' | 'gate' | 'managedBy'> & {
  connector: Connector;
  mode: InstanceMode;
  /** Set when mode is pull or both. */
  pull?: Required<NonNullable<InstanceCreate['pull']>>;
  /** Set when the connector has approval gates. */
  gate?: Required<NonNullable<InstanceCreate['gate']>>;
};

/**
 * A subscription of the file, resolved: the hub's one subscription input (subscriptions/schema.ts,
 * its generated types), managed by the file, every field present with the file's defaults applied
 * except `url` (webhooks only) and `secrets` (absent when the file gives none: the hub generates
 * one once and an update keeps it). It is what `applyConfig` hands the hub. Derived from the
 * input: a field added to the schema is a field here, and `resolveSubscription` does not typecheck
 * until it reads it from the file entry.
 */
export type ResolvedSubscription = SubscriptionInput & Required<Omit<SubscriptionCreate, 'url' | 'secrets'>>;

export type ResolvedDatabase =
  | {
      kind: 'url';
      url: string;
      from: 'file' | 'env';
      /**
       * Where the file chose this Postgres, for a problem about it (`secretKeyProblem`): the line of
       * `database.url`, or with DATABASE_URL its `database:` entry, else the top of the file.
       */
      declaredAt: { line: number; column: number };
      /** `database.startupWait`, ms: how long `start` waits for this Postgres to accept connections. */
      startupWaitMs: number;
    }
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
    timeouts: {
      headersMs: number;
      bodyMs: number;
      requestMs: number;
      lingeringMs: number;
      lingeringIdleMs: number;
    };
    unauthenticatedBodyBytes: number;
  };
  database: ResolvedDatabase;
  /** `database.poolSize`: connections of each process's general pool (the hub's `poolSize`). */
  databasePoolSize: number;
  secretKey?: string;
  /** Where the file gives `secretKey` (else the top of the file), for a problem about the key. */
  secretKeyAt: { line: number; column: number };
  instances: ResolvedInstance[];
  subscriptions: ResolvedSubscription[];
  retention: { inboundMessagesMs: number; eventsMs: number; deliveriesMs: number; unreadEventsMs: number };
  /** Lease lengths of the normalize and deliver workers, ms. */
  workers: {
    normalizeLeaseMs: number;
    deliveryLeaseMarginMs: number;
    pollBackstopMs: number;
    ingestFirst: boolean;
    /** Deliveries in flight per worker process (`workers.deliveryConcurrency`). */
    deliveryConcurrency: number;
    /** `workers.pullSpoolDir`, absolute (resolved against the config file's directory). */
    pullSpoolDir: string;
  };
  /** The commands subsystem (`commands.*`), durations in ms. */
  commands: {
    retryScheduleMs: number[];
    maxRetryAfterMs: number;
    leaseMs: number;
    sweepIntervalMs: number;
    concurrency: number;
    /** Unset: half of `concurrency` (resolveCommandsOptions). */
    instanceConcurrency?: number;
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
