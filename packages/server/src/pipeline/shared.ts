/**
 * What every pipeline module shares: the resolved options (every default from the config schema's
 * `CONFIG_DEFAULTS`), the `Runtime` handle of one hub (database, connectors, cipher, wake-ups,
 * instance loader) and small helpers. Not to be confused with `runtime/`, which runs a whole hub
 * process.
 */
import { resolve } from 'node:path';
import type { Connector, JsonObject } from '@switchyard/core';
import { SwitchyardError } from '@switchyard/core';
import type { Kysely } from 'kysely';
import type pino from 'pino';
import { CONFIG_DEFAULTS } from '../config/schema.ts';
import { configDurationMs, configSizeBytes, DEFAULT_RETRY_SCHEDULE_MS } from '../config/units.ts';
import { collectSecretValues } from '../delivery/redact.ts';
import type { SecretCipher } from '../delivery/secret-box.ts';
import { INSTANCE_ID_PATTERN } from '../instances/schema.ts';
import * as instanceStore from '../instances/store.ts';
import { isDatabaseUnavailable } from '../storage/unavailable.ts';
import type { PipelineMetrics } from './metrics.ts';
import type { IngestPressure } from './pressure.ts';

/** Retention periods, in milliseconds. Defaults: the config file's (`retention.*`, CONFIG_DEFAULTS). */
export interface RetentionOptions {
  /** Inbound messages (finished ones). Default: `retention.inboundMessages` (30 days). */
  inboundMs?: number;
  /** Events (kept while a delivery still owes them). Default: `retention.events` (90 days). */
  eventsMs?: number;
  /** Finished deliveries with their attempts. Default: `retention.deliveries` (30 days). */
  deliveriesMs?: number;
  /**
   * Events an enabled pull subscription has not acknowledged, when longer than `eventsMs`: they are
   * its undelivered deliveries (events/store.ts, `purgeEvents`). Default: `retention.unreadEvents` (180 days).
   */
  unreadEventsMs?: number;
  /** Rows deleted per statement. Default 1000. */
  batchSize?: number;
  /** pg-boss cron expression for the purge job, or false to not schedule it. Default hourly. */
  cron?: string | false;
}

/** Tuning knobs of the pipeline; every one has a production default. */
export interface PipelineOptions {
  /** Run the normalize, deliver and pull workers in this process. Default true. */
  workers?: boolean;
  /** Start pg-boss (schema `switchyard_queue`) for scheduled maintenance. Default true. */
  queue?: boolean;
  /** Polling backstop when no notification arrives, ms. Default: `workers.pollBackstop` of the config schema (30 s). */
  pollIntervalMs?: number;
  /** Deliveries in flight per process. Default: `workers.deliveryConcurrency` of the config schema (64). */
  deliveryConcurrency?: number;
  /** Normalizations in flight per process. Default 32 (messages of one ordering key still run one at a time). */
  normalizeConcurrency?: number;
  /**
   * Ingest first: while vendor pushes queue for their durable write in this process, its normalize
   * worker runs one run at a time (pipeline/pressure.ts). Default: `workers.ingestFirst` of the
   * config schema (true).
   */
  ingestFirst?: boolean;
  /** Default retry schedule for subscriptions that set none, ms before each attempt. */
  retryScheduleMs?: number[];
  /** Jitter applied to each retry delay, as a fraction (0.2 = ±20%). Default 0.2. */
  retryJitter?: number;
  /** Longest wait a subscriber's Retry-After may ask for, ms. Default: the schedule's longest delay. */
  maxRetryAfterMs?: number | undefined;
  /** Consecutive dead deliveries that disable a subscription. Default: the config's, 5. */
  disableAfterConsecutiveDead?: number;
  /** Normalization retries for transient connector errors: ms before each retry. */
  normalizeRetryMs?: number[];
  /**
   * Added to a subscription's timeout to make a delivery attempt's lease; renewed while the attempt
   * runs, so another process retakes a delivery only from a process that died or lost its database.
   * Default: `workers.deliveryLeaseMargin` of the config schema (15 s).
   */
  deliveryLeaseMarginMs?: number;
  /**
   * Lease of a message being normalized; renewed every third of it while the work runs, so another
   * process takes a message over only from a process that died or lost its database. Default:
   * `workers.normalizeLease` of the config schema (30 s).
   */
  normalizeLeaseMs?: number;
  /**
   * Lease of a pull or reconciliation turn on its instance; renewed every third of it while the
   * turn runs, so another process takes the instance's next turn over only from a process that died
   * or lost its database. Default 30 s.
   */
  pullLeaseMs?: number;
  /** Largest accepted inbound body, bytes. Default: the config's `server.bodyLimit`, 1 MiB. */
  maxBodyBytes?: number;
  /** How long to cache instance settings in memory for ingest, ms. Default 5000. */
  instanceCacheMs?: number;
  /** Largest stored subscriber response snippet, bytes. Default 2048. */
  maxResponseSnippetBytes?: number;
  /**
   * How long a finished delivery attempt waits for others before its record is written, ms, while
   * the deliver worker keeps up (a worker with deliveries waiting for its slots writes at once).
   * The subscriber has its POST already; the record frees the slot and lets the subject's next
   * delivery go, and one statement records the batch: at 200 events/s, one statement per four
   * attempts instead of one each (bench/analysis.md, "The attempt record waits for company").
   * Default 20.
   */
  attemptLingerMs?: number;
  /**
   * Where pulled batches wait on disk until they are stored (pipeline/pull-spool.ts). Default:
   * `workers.pullSpoolDir` of the config schema (`./.switchyard/pull-spool`), from the working
   * directory.
   */
  pullSpoolDir?: string;
  /**
   * Pull feed long-polls (`wait`) this process holds at once; one more answers 503
   * `SY_HTTP_FEED_WAITERS_FULL`. Default: `feed.waiters` of CONFIG_DEFAULTS (1000).
   */
  feedWaiters?: number;
  retention?: RetentionOptions;
}

export type ResolvedOptions = Required<Omit<PipelineOptions, 'retention' | 'maxRetryAfterMs'>> & {
  retention: Required<RetentionOptions>;
  maxRetryAfterMs: number | undefined;
};

export function resolveOptions(o: PipelineOptions = {}): ResolvedOptions {
  return {
    workers: o.workers ?? true,
    queue: o.queue ?? true,
    pollIntervalMs: o.pollIntervalMs ?? configDurationMs(CONFIG_DEFAULTS.workers.pollBackstop)!,
    deliveryConcurrency: o.deliveryConcurrency ?? CONFIG_DEFAULTS.workers.deliveryConcurrency,
    normalizeConcurrency: o.normalizeConcurrency ?? 32,
    ingestFirst: o.ingestFirst ?? CONFIG_DEFAULTS.workers.ingestFirst,
    retryScheduleMs: o.retryScheduleMs ?? [...DEFAULT_RETRY_SCHEDULE_MS],
    retryJitter: o.retryJitter ?? 0.2,
    maxRetryAfterMs: o.maxRetryAfterMs,
    disableAfterConsecutiveDead:
      o.disableAfterConsecutiveDead ?? CONFIG_DEFAULTS.subscription.disableAfterConsecutiveDead,
    normalizeRetryMs: o.normalizeRetryMs ?? [1000, 5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000],
    deliveryLeaseMarginMs:
      o.deliveryLeaseMarginMs ?? configDurationMs(CONFIG_DEFAULTS.workers.deliveryLeaseMargin)!,
    normalizeLeaseMs: o.normalizeLeaseMs ?? configDurationMs(CONFIG_DEFAULTS.workers.normalizeLease)!,
    pullLeaseMs: o.pullLeaseMs ?? PULL_LEASE_MS,
    maxBodyBytes: o.maxBodyBytes ?? configSizeBytes(CONFIG_DEFAULTS.server.bodyLimit)!,
    instanceCacheMs: o.instanceCacheMs ?? 5000,
    maxResponseSnippetBytes: o.maxResponseSnippetBytes ?? 2048,
    attemptLingerMs: o.attemptLingerMs ?? 20,
    pullSpoolDir: resolve(o.pullSpoolDir ?? CONFIG_DEFAULTS.workers.pullSpoolDir),
    feedWaiters: o.feedWaiters ?? CONFIG_DEFAULTS.feed.waiters,
    retention: {
      inboundMs: o.retention?.inboundMs ?? configDurationMs(CONFIG_DEFAULTS.retention.inboundMessages)!,
      eventsMs: o.retention?.eventsMs ?? configDurationMs(CONFIG_DEFAULTS.retention.events)!,
      deliveriesMs: o.retention?.deliveriesMs ?? configDurationMs(CONFIG_DEFAULTS.retention.deliveries)!,
      unreadEventsMs:
        o.retention?.unreadEventsMs ?? configDurationMs(CONFIG_DEFAULTS.retention.unreadEvents)!,
      batchSize: o.retention?.batchSize ?? 1000,
      cron: o.retention?.cron ?? '17 * * * *',
    },
  };
}

/** An instance as the pipeline uses it: row, connector and decrypted settings. */
export interface LoadedInstance {
  row: instanceStore.InstanceRow;
  connector: Connector;
  config: JsonObject;
}

/** Shared state of one hub: handed to every pipeline module. */
export interface Runtime {
  db: Kysely<unknown>;
  /** The hub's session tag (storage/db.ts, `Database.sessionTag`): the holder its pull and reconcile leases name. */
  sessionTag: string;
  databaseUrl: string;
  logger: pino.Logger;
  connectors: ReadonlyMap<string, Connector>;
  cipher: SecretCipher;
  options: ResolvedOptions;
  /** After an autocommit write: NOTIFYs `channel` on a transaction of its own (host/notifier.ts). */
  notify(channel: string, payload?: string): Promise<void>;
  /**
   * Messages may wait to be claimed: a NOTIFY, an ingest statement that stored some unleased, a
   * pull, a replay, a lost lease. Runs a pass of the normalize loop and tells the worker that
   * something arrived (a leased run's end wakes the loop only if something did while it ran).
   */
  wakeNormalize(): void;
  /**
   * A pass of the normalize loop for the worker's own reasons (a run ended, promised slots came
   * back): announces no message, so it cannot set off another leased run's wake-up in turn.
   */
  wakeNormalizeLoop(): void;
  wakeDeliver(): void;
  /**
   * After a commit of this process stored messages a claim must take (unleased): wakes its own
   * normalize loop at once and every process's by NOTIFY ({@link notify}).
   */
  announceInbound(): void;
  /** After a commit of this process created deliveries a claim must take (pending): as {@link announceInbound}. */
  announceDeliveries(): void;
  wakePull(): void;
  /** Whether this process's pushes queue for their durable write (ingest first: the normalize worker gives way). */
  ingestPressure: IngestPressure;
  /** The pipeline's counters, in the process's `/metrics` registry (`hub.host.metrics`). */
  metrics: PipelineMetrics;
  loadInstance(id: string, fresh?: boolean): Promise<LoadedInstance | undefined>;
  forgetInstance(id: string): void;
}

/**
 * Default lease of a pull or reconciliation turn ({@link PipelineOptions.pullLeaseMs}): as long as
 * `workers.normalizeLease`, renewed every third of it. A process killed in a turn leaves its
 * instance to the others after at most this (it was a fixed five minutes).
 */
export const PULL_LEASE_MS = 30_000;

/**
 * Most instance ids one loader remembers at once, found and unknown ones together. A hub runs tens
 * of instances, hundreds at most, so the cap bites only when requests name ids that do not exist:
 * anyone may `POST /hooks/<any id>` before a credential is checked, and without a cap each distinct
 * id would stay in memory for the life of the process. Unknown ids are evicted before any known
 * instance is, and only ids an instance could have are remembered (at most 100 characters, see
 * INSTANCE_ID_PATTERN), so they take ~2 MB at most.
 */
export const INSTANCE_CACHE_MAX_ENTRIES = 10_000;

/**
 * How long an unknown instance id is remembered as unknown, ms (at most the loader's cache time).
 * Long enough that a vendor pushing hard to a wrong id costs a lookup a second, not one a push;
 * short enough that an instance another process creates answers within a second.
 */
export const INSTANCE_MISS_CACHE_MS = 1000;
/**
 * How long a read of an instance seen before may take before its callers get the instance as last
 * read (the read goes on): a statement on a silent database connection is given up only after
 * 15 s, and ingest reads the instance before anything else, so a vendor's approval request (a
 * deadline of seconds) waited that long, or longer, for the default it gets by its deadline.
 */
export const INSTANCE_SLOW_READ_MS = 500;

const POSSIBLE_ID = new RegExp(INSTANCE_ID_PATTERN);

/** The loader {@link instanceLoader} makes. */
export interface InstanceLoader extends Pick<Runtime, 'loadInstance' | 'forgetInstance'> {
  /**
   * How many ids it remembers now, found and unknown: never more than
   * {@link INSTANCE_CACHE_MAX_ENTRIES}. @example `loader.cachedInstances(); // 3`
   */
  cachedInstances(): number;
}

/**
 * Makes the per-process instance loader with its short cache (ingest reads it per request).
 * `onSecrets` gets the secret values of every instance it decrypts (for the logger to scrub).
 * Concurrent misses of one instance share one read: when the cache entry runs out under load,
 * every request in flight used to read the row and decrypt its settings itself (~0.07 statements
 * per pushed event at 200 pushes/s). Unknown ids are remembered only briefly
 * ({@link INSTANCE_MISS_CACHE_MS}) and the whole cache is capped ({@link INSTANCE_CACHE_MAX_ENTRIES}).
 *
 * @example
 * ```ts
 * const loader = instanceLoader(db, connectors, cipher, 5000, (secrets) => addLogSecrets(logger, secrets));
 * const instance = await loader.loadInstance('dp-main'); // undefined when there is no such instance
 * loader.forgetInstance('dp-main'); // after a change: the next load reads the row again
 * ```
 */
export function instanceLoader(
  db: Kysely<unknown>,
  connectors: ReadonlyMap<string, Connector>,
  cipher: SecretCipher,
  cacheMs: number,
  onSecrets: (values: string[]) => void = () => {},
): InstanceLoader {
  const missMs = Math.min(cacheMs, INSTANCE_MISS_CACHE_MS);
  // Two maps so that a flood of unknown ids evicts only unknown ids. Map iteration order is
  // insertion order and every store re-inserts, so the first key is the one stored longest ago.
  const found = new Map<string, { at: number; value: LoadedInstance }>();
  const unknown = new Map<string, number>();
  const remember = (id: string, value: LoadedInstance | undefined) => {
    found.delete(id);
    unknown.delete(id);
    // An id no instance can have (a request line holds up to 16 KB) is looked up each time instead.
    if (!value && !POSSIBLE_ID.test(id)) return;
    while (found.size + unknown.size >= INSTANCE_CACHE_MAX_ENTRIES) {
      const oldest = unknown.size > 0 ? unknown : found;
      oldest.delete(oldest.keys().next().value as string);
    }
    if (value) found.set(id, { at: Date.now(), value });
    else unknown.set(id, Date.now());
  };
  const cached = (id: string): { value: LoadedInstance | undefined } | undefined => {
    const hit = found.get(id);
    if (hit && Date.now() - hit.at < cacheMs) return { value: hit.value };
    const missedAt = unknown.get(id);
    if (missedAt !== undefined && Date.now() - missedAt < missMs) return { value: undefined };
    return undefined;
  };
  /**
   * Reads in progress for the cache, with when each started; a read started before
   * `forgetInstance` is not shared after it, nor one older than `cacheMs` (a read stuck on a
   * half-open connection would otherwise answer every caller the last row for minutes after the
   * database came back).
   */
  const reading = new Map<string, { pending: Promise<LoadedInstance | undefined>; at: number }>();
  const read = async (id: string): Promise<LoadedInstance | undefined> => {
    const row = await instanceStore.getInstance(db, id);
    if (!row) return undefined;
    const connector = connectors.get(row.connector);
    if (!connector) {
      throw new SwitchyardError(
        'SY_PIPELINE_UNKNOWN_CONNECTOR',
        `instance ${JSON.stringify(id)} uses connector ${JSON.stringify(row.connector)}, which this hub does not have`,
        { details: { instance: id, connector: row.connector } },
      );
    }
    const config = JSON.parse(cipher.open(row.settings_sealed, `instance:${id}`)) as JsonObject;
    onSecrets(collectSecretValues(config, connector.configSchema));
    return { row, connector, config };
  };
  return {
    async loadInstance(id, fresh = false) {
      const hit = fresh ? undefined : cached(id);
      if (hit) return hit.value;
      const shared = fresh ? undefined : reading.get(id);
      if (shared && Date.now() - shared.at < cacheMs) return shared.pending;
      // The callers sharing a read get what its first caller gets, the stale fallback included:
      // they got the bare read's failure, so of two vendor approval requests at once during an
      // outage one had the instance's default and the other a 503 (a refusal, for Docplanner).
      // The read is shared until it ends (for `cacheMs` at most), not until its callers are
      // answered: a read that outlived INSTANCE_SLOW_READ_MS was not remembered when it ended (its
      // callers had the last row), so with the database answering slower than that a deleted
      // instance, or one whose credentials were changed in another process, was served as first
      // read for as long as it stayed slow; and each caller after the first answer started a read
      // of its own on the hanging database, each holding a connection.
      const settled = () => {
        if (reading.get(id)?.pending === pending) reading.delete(id);
      };
      const reread: Promise<LoadedInstance | undefined> = read(id).then(
        (value) => {
          // A read that `forgetInstance` overtook may hold the old row: it answers its callers only.
          if (fresh || reading.get(id)?.pending === pending) remember(id, value);
          settled();
          return value;
        },
        (error: unknown) => {
          settled();
          // While the database is unreachable, the instance as last read: a push is still refused
          // (nothing can be stored), but a vendor's approval request gets the instance's configured
          // default rather than a 503, which Docplanner takes as a refusal. Not for `fresh` readers
          // (the poller), which act on the row.
          const stale = fresh ? undefined : found.get(id);
          if (stale && isDatabaseUnavailable(error)) return stale.value;
          throw error;
        },
      );
      const last = fresh ? undefined : found.get(id);
      let slow: NodeJS.Timeout | undefined;
      const pending = last
        ? Promise.race([
            reread,
            new Promise<LoadedInstance>((resolve) => {
              slow = setTimeout(() => resolve(last.value), INSTANCE_SLOW_READ_MS);
            }),
          ]).finally(() => clearTimeout(slow))
        : reread;
      if (!fresh) reading.set(id, { pending, at: Date.now() });
      return pending;
    },
    forgetInstance(id) {
      found.delete(id);
      unknown.delete(id);
      reading.delete(id);
    },
    cachedInstances() {
      return found.size + unknown.size;
    },
  };
}
