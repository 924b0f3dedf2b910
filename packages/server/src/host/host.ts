/**
 * The hub host: what a subsystem beside the pipeline (approval gates, commands, and the next ones)
 * gets from the process it runs in. A subsystem is built on this interface only, never on the
 * pipeline's internals: `createHub` assembles it (`hub.host`), and a test may assemble it from
 * anything that fits. One of each shared resource per process: one database pool, one LISTEN
 * connection, one pg-boss instance, one signed POST, one vendor HTTP client, one metrics registry.
 *
 * Why one pg-boss instance per process, started in every role: an HTTP-only process must still
 * enqueue (a command's job commits with its row; a gate request is handed to a worker), and a worker
 * must work queues. Each instance costs two pooled connections, a LISTEN connection and its timers,
 * so the gates and commands no longer start their own: the hub starts the one instance in
 * `hub.start()` and each subsystem only calls `work()` on it where it should work jobs.
 */
import type {
  AliasStore,
  Connector,
  EventEnvelope,
  JsonObject,
  StateStore,
  VendorHttp,
} from '@switchyard/core';
import type { Kysely, RawBuilder } from 'kysely';
import type { PgBoss } from 'pg-boss';
import type pino from 'pino';
import type { Registry } from 'prom-client';
import type { PostWebhookResult } from '../delivery/http-post.ts';
import type { InstanceRow } from '../instances/store.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import type { HubListener } from './listener.ts';

/** A connector instance as subsystems see it: its row, its connector and its config, secrets opened. */
export interface HostInstance {
  /** The stored row (its `gate` policy, mode, pull state). */
  row: InstanceRow;
  connector: Connector;
  /** The instance config, secrets resolved. */
  config: JsonObject;
}

/** The retention settings of the hub, which subsystems apply to their own tables. */
export interface HostRetention {
  /** How long events (and what is kept beside them, such as gate requests) are kept, ms. */
  eventsMs: number;
  /** Rows deleted per statement. */
  batchSize: number;
  /** pg-boss cron of the purge jobs, or false when no purge is scheduled. */
  cron: string | false;
}

/**
 * An alias store lent to a connector's normalize whose new aliases are stored by the caller's own
 * statement instead of one statement each: `hubId` of a vendor id this process does not know makes
 * the hub id up at once (a random UUID, as the insert would) and records it here. On the vendor's
 * wait this saves a write and its round trip per new vendor id (a Docplanner `slot-booking` makes
 * two: the provisional appointment and the approval request). The normalize worker defers its
 * aliases to its commit the same way (pipeline/stores.ts, `ProposedAliases`).
 *
 * @example
 * ```ts
 * const deferred = host.deferredAliases('dp-main');
 * const result = await connector.normalize(n, { ...ctx, aliases: deferred.store });
 * const ctes = deferred.storing() ?? sql`alias_refused as (select where false)`;
 * const r = await sql`with ${ctes}, row as (insert into … select … where not exists (select from alias_refused)
 *   returning id) select (select count(*) from alias_refused) as refused, …`.execute(host.db);
 * // refused: normalize again with host.aliases('dp-main'), whose answers read what stood in the way
 * if (refused === 0) deferred.stored();
 * ```
 */
export interface DeferredAliases {
  /** The alias store to lend the connector; look-ups of known aliases are answered as usual. */
  store: AliasStore;
  /**
   * CTEs storing the aliases `store` made up, to open the caller's statement (`with ${ctes}, …`);
   * undefined when it made none up. They define `alias_refused`, which holds a row when one of
   * them cannot stand: the vendor id got another hub id first (another process, or a concurrent
   * normalization of the same notification). The caller's statement must then store nothing of
   * its own (`where not exists (select from alias_refused)`) and the caller normalize again with
   * {@link HubHost.aliases}, whose answers read what stood in the way.
   */
  storing(): RawBuilder<unknown> | undefined;
  /**
   * Tells this process's alias stores what the caller's statement stored (call once it committed
   * without a refusal), so that the normalize worker's look-ups of the same notification are
   * answered without a statement.
   */
  stored(): void;
}

/**
 * The host of a subsystem.
 *
 * @example
 * ```ts
 * const hub = await createHub({ databaseUrl, connectors, secretKey, ...gates.hooks, ...commands.hooks });
 * await hub.start(); // starts the one LISTEN connection and the one pg-boss instance
 * await gates.start(hub.host);
 * await commands.start(hub.host);
 * ```
 */
export interface HubHost {
  /** The hub's database (kysely over the shared pool): subsystem tables live in the `switchyard` schema. */
  db: Kysely<unknown>;
  /**
   * What names this hub's database sessions (`switchyard <tag>`): a worker id ending `.<tag>` is
   * told alive or gone by any process on the database (storage/db.ts, `workerGone`).
   */
  sessionTag: string;
  /** The process logger; a subsystem logs as a child (`component: gates`). */
  logger: pino.Logger;
  /**
   * The process's one LISTEN connection: `listen(channel, handler)` hears a channel's NOTIFYs, in
   * this process or any other on the database. Started by `hub.start()`.
   */
  listener: HubListener;
  /**
   * NOTIFYs `channel` with `payload` (default empty) after a write of the caller's that committed on
   * its own (autocommit), on a transaction of its own that does not wait for its WAL flush: the
   * writing statement then takes no part in Postgres's cluster-wide NOTIFY lock, which is held
   * through a NOTIFYing commit's fsync (host/notifier.ts says why). Coalesced; never throws (a
   * failure is logged, listeners find the work by their backstops). Resolves once sent; await it
   * only where an answer promises that other processes heard. Inside a caller's transaction,
   * `select pg_notify(...)` in that transaction is still the way (sent at its commit).
   *
   * @example
   * ```ts
   * const row = await insertGateRequest(host.db, request); // autocommit
   * if (row) void host.notify('switchyard_gate_requested', row.instance_id);
   * ```
   */
  notify(channel: string, payload?: string): Promise<void>;
  /**
   * The process's one pg-boss instance (schema `switchyard_queue`), started by `hub.start()` in every
   * role (both `http` and `worker`); undefined in a hub made without a queue (`options.queue: false`,
   * a CLI command). A subsystem creates its queues, sends jobs (in a transaction through the per-call
   * `db` option) and calls `work()` only where it should work them; it never stops the instance
   * (it calls `offWork` on its queues instead): the hub does, after the subsystems stopped.
   */
  queue: PgBoss | undefined;
  /**
   * The one signed POST (Standard Webhooks signature with the subscription's secrets in force, its
   * timeout and destination policy): what a delivery attempt, a test event and an approver call send.
   * This one is the approver call's: it uses the `approvers` connection pool, so a subscriber's
   * deliveries in flight to the same origin never hold the connections a waiting vendor needs.
   * `bodyBy` bounds the read of an answer's body whose status came before it (the decision
   * cutoff). Throws when a secret cannot be opened.
   */
  postSigned(
    subscription: SubscriptionRow,
    eventId: string,
    body: string,
    opts?: { bodyBy?: number },
  ): Promise<PostWebhookResult>;
  /** The subscription's signing secrets in force now, opened, newest first (the feed's credentials). */
  signingSecrets(subscription: SubscriptionRow): string[];
  /** Vendor HTTP, the client lent to connectors (commands wrap it to record each call). */
  vendorHttp: VendorHttp;
  /** Where the process's metrics are registered (its `/metrics` registry). */
  metrics: Registry;
  /** The connectors this hub has, by name. */
  connectors: ReadonlyMap<string, Connector>;
  /**
   * A connector instance with its row, connector and resolved config; undefined when it does not
   * exist. Cached for a few seconds per process; `fresh` reads the database.
   */
  loadInstance(instanceId: string, fresh?: boolean): Promise<HostInstance | undefined>;
  /** The vendor-id alias store of an instance (the same the connectors' normalize gets). */
  aliases(instanceId: string): AliasStore;
  /**
   * An alias store whose new aliases wait for the caller's own write, for a normalization whose
   * result the caller stores in one statement (a gate's approval request, stored with its
   * `gate_requests` row). See {@link DeferredAliases}.
   */
  deferredAliases(instanceId: string): DeferredAliases;
  /** The state store of an instance (stored as it is: never a secret such as an access token). */
  state(instanceId: string): StateStore;
  /**
   * Stores hub-made events and fans them out to matching subscriptions, in the transaction given as
   * `db` (an outcome event commits with the state that caused it). Returns deliveries created.
   */
  storeEvents(db: Kysely<unknown>, events: readonly EventEnvelope[]): Promise<number>;
  /** The retention settings, for a subsystem's own purge (on the same cron). */
  retention: HostRetention;
  /** Largest stored answer snippet of an outbound POST, bytes (`options.maxResponseSnippetBytes`). */
  maxResponseSnippetBytes: number;
}
