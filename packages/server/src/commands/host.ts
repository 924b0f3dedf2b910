/**
 * What the commands subsystem needs from the process it runs in. It is built on this interface
 * only (never on the hub's internals): `startHubProcess` assembles it from `hub.services` and the
 * process's metrics registry; a test may assemble it from anything that fits.
 */
import type { AliasStore, Connector, EventEnvelope, StateStore, VendorHttp } from '@switchyard/core';
import type { Kysely } from 'kysely';
import type pino from 'pino';
import type { Registry } from 'prom-client';

/** A connector instance as the commands subsystem needs it. */
export interface CommandsInstance {
  connector: Connector;
  /** The instance config, secrets resolved. */
  config: Record<string, unknown>;
}

/**
 * The host of the commands subsystem.
 *
 * @example
 * ```ts
 * const host: CommandsHost = { ...hub.services, registry: metrics.registry };
 * const commands = createCommands();
 * await commands.start(host);
 * ```
 */
export interface CommandsHost {
  /** The hub's database: command rows, calls and credentials live in the `switchyard` schema beside events. */
  db: Kysely<unknown>;
  /**
   * The Postgres URL. The subsystem runs its own pg-boss instance on it (schema `switchyard_queue`,
   * shared with the hub's queues): the hub's own pg-boss is started only in worker processes, and an
   * HTTP-only process must still enqueue command jobs in the transaction that accepts a command.
   */
  databaseUrl: string;
  /** The process logger; the subsystem logs as `component: commands`. */
  logger: pino.Logger;
  /** Vendor HTTP for handlers; each call is recorded on the command by a wrapper around it. */
  vendorHttp: VendorHttp;
  /** The vendor-id alias store of an instance: the target's vendor ids, and the new ids a command creates. */
  aliases(instanceId: string): AliasStore;
  /** The state store of an instance (an OAuth2 token shared with the connector's pull, say). */
  state(instanceId: string): StateStore;
  /** A connector instance with its connector and resolved config; undefined when it does not exist. */
  loadInstance(instanceId: string): Promise<CommandsInstance | undefined>;
  /**
   * Stores hub-made events and fans them out to matching subscriptions, in the transaction given as
   * `db` (the outcome event commits with the command's final state). Returns deliveries created.
   */
  storeEvents(db: Kysely<unknown>, events: readonly EventEnvelope[]): Promise<number>;
  /** Where the command metrics are registered (the process's `/metrics` registry). */
  registry: Registry;
}
