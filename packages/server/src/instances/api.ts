/**
 * The `hub.instances` section: connector instances and their pull turns, built on the declared
 * {@link InstancesHost}. Every input is checked against the one schema (./schema.ts) first; what a
 * schema cannot say (the connector exists and can push or pull as asked, the settings match its
 * schema) is checked here.
 */
import { type Connector, type JsonObject, type JsonValue, SwitchyardError } from '@switchyard/core';
import type { Kysely } from 'kysely';
import { exists, invalid, notFound } from '../admin/errors.ts';
import { redactConfig } from '../delivery/redact.ts';
import type { SecretCipher } from '../delivery/secret-box.ts';
import * as inboundStore from '../inbound/store.ts';
import type { Executor } from '../storage/db.ts';
import type { Instance } from './generated/input.ts';
import { checkInstanceInput, type InstanceInput } from './input.ts';
import { checkedSettings, keepRedacted, type SettingsOwner, unverifiablePushes } from './settings.ts';
import * as store from './store.ts';

export interface InstanceHealth {
  id: string;
  lastMessageAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  pull: {
    cursor: string | null;
    nextAt: Date | null;
    lastSuccessAt: Date | null;
    consecutiveFailures: number;
    /** How old the oldest notification of the last pulled batch was when it arrived, ms. */
    lagMs: number | null;
  } | null;
  /**
   * Push mode's scheduled catch-up call to the vendor (Docplanner `POST /notifications/release`);
   * null when the instance does not push or its connector has none.
   */
  reconcile: {
    /** When it is due next (null: not scheduled yet, runs at the next poller turn). */
    nextAt: Date | null;
    /** When it last ran, successfully or not. */
    lastRunAt: Date | null;
    lastSuccessAt: Date | null;
    /** What the last successful run reported (e.g. `released 3`). */
    lastResult: string | null;
    /** Why the last run failed; null when it succeeded. */
    lastError: string | null;
  } | null;
  /**
   * `received`: messages waiting to be normalized now; `failed`: messages whose normalization
   * failed and that wait for a re-normalize (both whatever their age). `lastDay`: messages received
   * in the last 24 hours, whatever became of them, and how many of those are failed now.
   */
  inbound: { received: number; failed: number; lastDay: { received: number; failed: number } };
}

/**
 * What the instances API needs of the hub, and nothing more.
 *
 * @example
 * ```ts
 * const api = instancesApi({ db, cipher, connectors, forgetInstance, loadInstance, pullInstance });
 * ```
 */
export interface InstancesHost {
  /** The hub's database. */
  db: Kysely<unknown>;
  /** Seals settings at rest (bound to `instance:<id>`) and opens them for the view. */
  cipher: SecretCipher;
  /** The connectors this hub runs, by name. */
  connectors: ReadonlyMap<string, Connector>;
  /** Drops this process's cached copy of an instance (its row changed). */
  forgetInstance(id: string): void;
  /** The instance's decrypted settings (health asks whether push reconciliation is on). */
  loadInstance(id: string): Promise<{ config: JsonObject } | undefined>;
  /** Runs one pull turn for the instance now: what the poller does on its schedule. */
  pullInstance(row: store.InstanceRow): Promise<{ stored: number; duplicates: number; error?: string }>;
}

/**
 * The reason an instance is disabled when the configuration file that declared it no longer does
 * (runtime/apply.ts). It marks the one disable the file takes back when it declares the instance
 * again, and the one file-managed instance the admin API may delete.
 */
export const NOT_DECLARED_REASON = 'no longer declared in the configuration file';

/**
 * Whether an instance is file-managed and disabled because the file no longer declares it.
 *
 * @example
 * ```ts
 * if (before.managedBy === 'file' && !isNoLongerDeclared(before)) throw refuseFileManaged(id);
 * ```
 */
export function isNoLongerDeclared(instance: Pick<Instance, 'managedBy' | 'disabledReason'>): boolean {
  return instance.managedBy === 'file' && instance.disabledReason === NOT_DECLARED_REASON;
}

/** What a replacement keeping `[redacted]` settings found stored, for its caller to vet. */
export interface KeptSettings {
  managedBy: store.InstanceRow['managed_by'];
  /** The stored settings, decrypted. */
  stored: JsonObject;
  /** The stored instance's connector. */
  connector: SettingsOwner;
  /** The submitted settings, `[redacted]` replaced by the stored values. */
  settings: JsonObject;
  /** The JSON pointers (under `/settings`) of the values kept. */
  kept: string[];
}

/**
 * What the admin API checks of a write that the configuration file's loader checks on its own
 * (config/load.ts): a write without these (the file's instances, applied after loading) skips them.
 */
export interface AdminWriteRules {
  /** The hub's `server.publicUrl`, undefined when it has none: a vendor that signs the hook URL needs it. */
  publicUrl: string | undefined;
}

/** The `hub.instances` section: connector instances and their pull turns. */
export function instancesApi(host: InstancesHost) {
  const { db, cipher, connectors } = host;

  function connectorOf(name: string): Connector {
    const c = connectors.get(name);
    if (!c)
      throw invalid(`unknown connector ${JSON.stringify(name)}`, {
        connector: name,
        known: [...connectors.keys()],
      });
    return c;
  }

  function instanceView(row: store.InstanceRow): Instance {
    const connector = connectors.get(row.connector);
    const settings = JSON.parse(cipher.open(row.settings_sealed, `instance:${row.id}`)) as JsonObject;
    return {
      id: row.id,
      connector: row.connector,
      mode: row.mode,
      // Without the connector we cannot tell secrets apart: show nothing rather than too much.
      settings: connector ? redactConfig(settings, connector.configSchema) : {},
      ...(row.mode !== 'push' ? { pull: { intervalMs: row.pull_interval_ms } } : {}),
      ...(row.gate !== null ? { gate: row.gate } : {}),
      managedBy: row.managed_by,
      disabledAt: row.disabled_at,
      disabledReason: row.disabled_reason,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /**
   * Checks an input against the schema and its connector, then writes it (see `upsertInstance`)
   * with `executor` (a transaction of the caller's); the caller forgets the cached copy once it is
   * committed.
   */
  async function write(
    input: InstanceInput,
    replace: boolean,
    executor: Executor = db,
    rules?: AdminWriteRules,
  ): Promise<store.InstanceRow | undefined> {
    const { managedBy, ...fields } = input;
    checkInstanceInput(fields);
    // What the schema cannot say: the connector exists and can work in that mode.
    const connector = connectorOf(input.connector);
    const mode = input.mode ?? (connector.push ? 'push' : 'pull');
    if (mode !== 'pull' && !connector.push) throw invalid(`connector ${connector.name} cannot be pushed to`);
    if (mode !== 'push' && !connector.pull) throw invalid(`connector ${connector.name} cannot pull`);
    const settings = checkedSettings(connector, input.settings as JsonObject);
    const cannotPull = mode !== 'push' ? connector.pull?.unavailable?.(settings) : undefined;
    if (cannotPull !== undefined) throw invalid(`mode ${mode}: ${cannotPull}`);
    const unverifiable = rules && unverifiablePushes(connector, mode, input.id, rules.publicUrl);
    if (unverifiable !== undefined)
      throw invalid(unverifiable, { instance: input.id, connector: connector.name });
    const intervalMs = input.pull?.intervalMs ?? null;
    return store.upsertInstance(executor, replace, {
      id: input.id,
      connector: connector.name,
      mode,
      settingsSealed: cipher.seal(JSON.stringify(settings), `instance:${input.id}`),
      pullIntervalMs: intervalMs,
      gate: (input.gate ?? null) as JsonValue,
      managedBy: managedBy ?? 'api',
    });
  }

  function written(row: store.InstanceRow): Instance {
    host.forgetInstance(row.id);
    return instanceView(row);
  }

  return {
    /**
     * Creates or replaces a connector instance. Settings are stored encrypted.
     *
     * @example
     * ```ts
     * await hub.instances.upsert({ id: 'bb-main', connector: 'bookingbug', mode: 'push', settings: { username: 'u', password: 'p' } });
     * ```
     */
    async upsert(input: InstanceInput): Promise<Instance> {
      return written((await write(input, true))!);
    },

    /**
     * Creates or replaces a connector instance as {@link upsert} does, but a `[redacted]` setting
     * keeps the stored value (see `keepRedacted`), so a client can PUT back what it GETs. The stored
     * row is read locked in the transaction that writes it: a replacement committed meanwhile (a
     * new secret) is kept or replaced whole, never written back over with the secret read before
     * it. `vet` sees the stored instance (when there is one whose connector this hub has) and what
     * the merge kept, before anything is written, and refuses by throwing. `rules`: the admin API's
     * ({@link AdminWriteRules}).
     *
     * @example
     * ```ts
     * await hub.instances.replace({ id: 'dp-main', connector: 'docplanner', settings: { clientSecret: '[redacted]', … } });
     * ```
     */
    async replace(
      input: InstanceInput,
      vet?: (kept: KeptSettings) => void,
      rules?: AdminWriteRules,
    ): Promise<Instance> {
      const row = await db.transaction().execute(async (trx) => {
        const before = await store.lockInstance(trx, input.id);
        const connector = before ? connectors.get(before.connector) : undefined;
        let settings = input.settings as JsonObject;
        if (before && connector) {
          const stored = JSON.parse(
            cipher.open(before.settings_sealed, `instance:${before.id}`),
          ) as JsonObject;
          const kept: string[] = [];
          settings = keepRedacted(settings, stored, kept) as JsonObject;
          vet?.({ managedBy: before.managed_by, stored, connector, settings, kept });
        }
        return write({ ...input, settings }, true, trx, rules);
      });
      return written(row!);
    },

    /**
     * Creates a connector instance; `SY_PIPELINE_CONFLICT` when one with this id exists (also when
     * another request created it a moment ago). `rules`: the admin API's ({@link AdminWriteRules}).
     *
     * @example
     * ```ts
     * await hub.instances.create({ id: 'bb-main', connector: 'bookingbug', settings: { username: 'u', password: 'p' } });
     * ```
     */
    async create(input: InstanceInput, rules?: AdminWriteRules): Promise<Instance> {
      const created = await write(input, false, db, rules);
      if (!created) throw exists('instance', input.id);
      return written(created);
    },

    /** @example `const i = await hub.instances.get('dp-main');` */
    async get(id: string): Promise<Instance> {
      const row = await store.getInstance(db, id);
      if (!row) throw notFound('instance', id);
      return instanceView(row);
    },

    /** @example `const all = await hub.instances.list();` */
    async list(): Promise<Instance[]> {
      return (await store.listInstances(db)).map(instanceView);
    },

    /**
     * Removes an instance (its stored messages and events stay until retention). Refused with
     * SY_PIPELINE_CONFLICT (409, `details.subscriptions`) while a subscription's `sources` or
     * `approverFilters.sources` names it: the subscription would name no instance, which its input
     * is refused for (docs/api.md, "Subscription input").
     *
     * @example `await hub.instances.remove('dp-old');`
     */
    async remove(id: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        const namedBy = await store.subscriptionsNaming(trx, id);
        if (namedBy.length > 0) throw namedBySubscriptions(id, namedBy);
        if (!(await store.deleteInstance(trx, id))) throw notFound('instance', id);
      });
      host.forgetInstance(id);
    },

    /**
     * Disables an instance the configuration file no longer declares ({@link NOT_DECLARED_REASON}):
     * pushes to it are refused (404) and it is neither pulled nor reconciled, while its settings,
     * pull position and the messages it already stored stay (those are still normalized). An
     * instance disabled already stays as it was. Undone by {@link reinstate}; `remove` deletes it.
     *
     * @example
     * ```ts
     * const instance = await hub.instances.retire('dp-old'); // instance.disabledAt is set
     * ```
     */
    async retire(id: string): Promise<Instance> {
      await store.disableInstance(db, id, NOT_DECLARED_REASON);
      host.forgetInstance(id);
      const row = await store.getInstance(db, id);
      if (!row) throw notFound('instance', id);
      return instanceView(row);
    },

    /**
     * Enables an instance {@link retire} disabled, now that the file declares it again; the
     * instance when this call enabled it, else `undefined` (it was not retired).
     *
     * @example
     * ```ts
     * if (await hub.instances.reinstate('dp-old')) logger.info('dp-old is declared again: enabled');
     * ```
     */
    async reinstate(id: string): Promise<Instance | undefined> {
      const row = await store.enableInstance(db, id, NOT_DECLARED_REASON);
      if (!row) return undefined;
      host.forgetInstance(id);
      return instanceView(row);
    },

    /**
     * Health of an instance: last message, last error, pull position/lag, inbound backlog.
     *
     * @example
     * ```ts
     * const h = await hub.instances.health('dp-main'); // { lastMessageAt, pull: { lagMs, ... }, inbound: { received: 0, failed: 2 } }
     * ```
     */
    async health(id: string): Promise<InstanceHealth> {
      const row = await store.getInstance(db, id);
      if (!row) throw notFound('instance', id);
      const counts = await inboundStore.countInbound(db, id);
      // Reconciliation shows where it applies: a push instance whose connector has one and whose
      // settings turn it on (Docplanner: API credentials, releaseIntervalMinutes not 0).
      const reconcile = row.mode === 'push' ? connectors.get(row.connector)?.reconcile : undefined;
      const loaded = reconcile ? await host.loadInstance(id).catch(() => undefined) : undefined;
      const reconciled =
        reconcile !== undefined && loaded !== undefined && reconcile.intervalMs(loaded.config) !== undefined;
      return {
        id,
        lastMessageAt: row.last_message_at,
        lastError: row.last_error,
        lastErrorAt: row.last_error_at,
        pull:
          row.mode === 'push'
            ? null
            : {
                cursor: row.pull_cursor,
                nextAt: row.pull_next_at,
                lastSuccessAt: row.pull_last_success_at,
                consecutiveFailures: row.pull_consecutive_failures,
                lagMs: row.pull_lag_ms === null ? null : Number(row.pull_lag_ms),
              },
        reconcile: reconciled
          ? {
              nextAt: row.reconcile_next_at,
              lastRunAt: row.reconcile_last_run_at,
              lastSuccessAt: row.reconcile_last_success_at,
              lastResult: row.reconcile_last_result,
              lastError: row.reconcile_last_error,
            }
          : null,
        inbound: counts,
      };
    },

    /**
     * Runs one pull turn for an instance now (what the poller does on its schedule), also for a
     * push-mode instance whose connector can pull (a one-off backstop); `SY_PIPELINE_CONFLICT` when
     * the instance is disabled or its connector has no pull.
     *
     * @example
     * ```ts
     * const { stored } = await hub.instances.pullNow('dp-main');
     * ```
     */
    async pullNow(id: string): Promise<{ stored: number; duplicates: number; error?: string }> {
      const row = await store.getInstance(db, id);
      if (!row) throw notFound('instance', id);
      if (row.disabled_at !== null) {
        throw new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `instance ${JSON.stringify(id)} is disabled (${row.disabled_reason ?? 'no reason'}): it is not pulled`,
          { details: { instance: id } },
        );
      }
      if (connectors.get(row.connector)?.pull === undefined) {
        throw new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `connector ${JSON.stringify(row.connector)} has no pull (the vendor offers no queue to poll): instance ${JSON.stringify(id)} is not pulled`,
          { details: { instance: id, connector: row.connector } },
        );
      }
      return host.pullInstance(row);
    },
  };
}

/** The `hub.instances` section, as the instances' routes take it. */
export type InstancesApi = ReturnType<typeof instancesApi>;

/** SY_PIPELINE_CONFLICT (409) for the delete of an instance subscriptions name as a source. */
function namedBySubscriptions(id: string, subscriptions: string[]): SwitchyardError {
  return new SwitchyardError(
    'SY_PIPELINE_CONFLICT',
    `instance ${JSON.stringify(id)} is a source of ${subscriptions.length === 1 ? 'subscription' : 'subscriptions'} ${subscriptions.map((s) => JSON.stringify(s)).join(', ')} (sources or approverFilters.sources): take it out of those lists (PATCH /v1/subscriptions/{id}) or delete those subscriptions first`,
    { details: { instance: id, subscriptions } },
  );
}
