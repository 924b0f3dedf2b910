/**
 * Applies the config file's instances and subscriptions to the database, marked managed by the
 * file: the file is their source of truth at every start. What the admin API created is left alone.
 */
import { isSwitchyardError } from '@switchyard/core';
import type pino from 'pino';
import { ConfigError } from '../config/errors.ts';
import { instanceInput } from '../config/instances.ts';
import type { ResolvedConfig } from '../config/types.ts';
import type { Hub } from '../pipeline/hub.ts';

/** What {@link applyFileConfig} changed. */
export interface ApplyResult {
  instances: {
    applied: string[];
    /** Declared again after the file had dropped them: enabled again. */
    reenabled: string[];
    /** File-managed, no longer declared: disabled (kept). Also those disabled by an earlier start. */
    disabled: string[];
  };
  subscriptions: {
    created: string[];
    /** Declared with a change: written. */
    updated: string[];
    /** Declared as stored: nothing written (its `updatedAt` and secrets' dates stay). */
    unchanged: string[];
    reenabled: string[];
    disabled: string[];
  };
}

function isConflict(error: unknown): boolean {
  return isSwitchyardError(error) && error.code === 'SY_PIPELINE_CONFLICT';
}

function isNotFound(error: unknown): boolean {
  return isSwitchyardError(error) && error.code === 'SY_PIPELINE_NOT_FOUND';
}

/**
 * Reads what the database stores sealed with `secretKey` (the instances' settings and the
 * subscriptions' signing secrets, the first reads of a start). A process whose key is not the one that sealed it (a key "rotated" in one file, a typo in one replica's secret) cannot open a stored
 * secret: said at the file's `secretKey` line, before anything is written, instead of the start
 * dying on "the sealed secret does not authenticate", which named neither the key nor the fix.
 */
async function readSealed<T>(config: ResolvedConfig, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (!isSwitchyardError(error) || error.code !== 'SY_DELIVERY_SECRET_TAMPERED') throw error;
    throw new ConfigError([
      {
        file: config.file,
        ...config.secretKeyAt,
        path: 'secretKey',
        message:
          'does not open the secrets stored in the database (sealed with another key): every process of the deployment, and every start, needs the same secretKey as the one that stored them. Put that key back; a changed secretKey makes stored secrets unreadable (docs/errors.md, SY_DELIVERY_SECRET_TAMPERED)',
      },
    ]);
  }
}

/**
 * Upserts every instance and subscription of the file (managedBy `file`) and disables the
 * file-managed ones the file no longer declares; declaring one again enables it again. Disabled,
 * not deleted: a process restarted with an older file (a rolling deploy, a rollback) would
 * otherwise delete what the newer file added, and with it a subscription's deliveries, feed
 * position, command credential and signing secret (a new one on re-creation: 401 at the
 * subscriber), or fail the messages an instance had acknowledged and not yet normalized. Deleting
 * for good is the admin API's (`DELETE /v1/subscriptions/{id}`, `DELETE /v1/instances/{id}`).
 * Several processes starting together may run it at once: every step tolerates the others having
 * done it first.
 *
 * @example
 * ```ts
 * const result = await applyFileConfig(hub, config, logger);
 * // { instances: { applied: ['docplanner-main'], reenabled: [], disabled: [] }, subscriptions: { created: ['crm'], ... } }
 * ```
 */
export async function applyFileConfig(
  hub: Hub,
  config: ResolvedConfig,
  logger: pino.Logger,
): Promise<ApplyResult> {
  const result: ApplyResult = {
    instances: { applied: [], reenabled: [], disabled: [] },
    subscriptions: { created: [], updated: [], unchanged: [], reenabled: [], disabled: [] },
  };

  const existingInstances = new Map(
    (await readSealed(config, () => hub.instances.list())).map((i) => [i.id, i]),
  );
  // The subscriptions' signing secrets too: a database that stores no instance (subscriptions
  // only, the instances added later through the API) started with another key, and every
  // delivery then failed.
  await readSealed(config, () => hub.subscriptions.checkSealed());
  for (const instance of config.instances) {
    const before = existingInstances.get(instance.id);
    if (before?.managedBy === 'api') {
      logger.warn(
        { instance: instance.id },
        'an instance created through the admin API has the id of one in the config file: the file takes it over',
      );
    }
    await hub.instances.upsert(instanceInput(instance));
    result.instances.applied.push(instance.id);
    if (before?.disabledAt && (await hub.instances.reinstate(instance.id))) {
      result.instances.reenabled.push(instance.id);
      logger.info(
        { instance: instance.id },
        'the config file declares this instance again: enabled, with its pull position and the messages it kept',
      );
    }
  }
  await retireUndeclared(logger, {
    kind: 'instance',
    existing: existingInstances.values(),
    declared: new Set(config.instances.map((i) => i.id)),
    retire: (id) => hub.instances.retire(id),
    kept: 'pushes to it are refused and it is not pulled; its settings, pull position and received messages are kept',
    path: '/v1/instances',
    into: result.instances.disabled,
  });

  const existingSubscriptions = new Map((await hub.subscriptions.list()).map((s) => [s.id, s]));
  for (const subscription of config.subscriptions) {
    // The same fields as a change (the id names the row; an update's input has none).
    const { id: _, ...change } = subscription;
    const before = existingSubscriptions.get(subscription.id);
    if (before?.managedBy === 'api') {
      logger.warn(
        { subscription: subscription.id },
        'a subscription created through the admin API has the id of one in the config file: the file takes it over',
      );
    }
    if (before) {
      const after = await hub.subscriptions.update(subscription.id, change);
      const changed = new Date(after.updatedAt).getTime() !== new Date(before.updatedAt).getTime();
      (changed ? result.subscriptions.updated : result.subscriptions.unchanged).push(subscription.id);
      if (before.disabledAt && (await hub.subscriptions.reinstate(subscription.id))) {
        result.subscriptions.reenabled.push(subscription.id);
        logger.info(
          { subscription: subscription.id },
          `the config file declares this subscription again: enabled, with its signing secrets and waiting deliveries; events stored while it was disabled were not sent to it (POST /v1/subscriptions/${subscription.id}/replay-since sends them)`,
        );
      }
      continue;
    }
    try {
      const { secret } = await hub.subscriptions.create(subscription);
      result.subscriptions.created.push(subscription.id);
      if (secret !== undefined) {
        // The generated secret is never printed: the operator sets one in the file or rotates it through the API.
        logger.info(
          { subscription: subscription.id },
          'generated a signing secret for this subscription (the file gives none); to know it, set secrets in the file or rotate it through the admin API',
        );
      }
    } catch (error) {
      if (!isConflict(error)) throw error;
      // Another process created it a moment ago (from the same file, most likely: then unchanged).
      const created = await hub.subscriptions.get(subscription.id);
      const after = await hub.subscriptions.update(subscription.id, change);
      const changed = new Date(after.updatedAt).getTime() !== new Date(created.updatedAt).getTime();
      (changed ? result.subscriptions.updated : result.subscriptions.unchanged).push(subscription.id);
    }
  }
  await retireUndeclared(logger, {
    kind: 'subscription',
    existing: existingSubscriptions.values(),
    declared: new Set(config.subscriptions.map((s) => s.id)),
    retire: (id) => hub.subscriptions.retire(id),
    kept: 'no new deliveries are made to it and its waiting ones wait; its signing secrets, deliveries and feed position are kept',
    path: '/v1/subscriptions',
    into: result.subscriptions.disabled,
  });
  return result;
}

/**
 * Disables the file-managed entries of one kind the file no longer declares (disabled, not
 * deleted: see {@link applyFileConfig}), each with a warning saying what is kept and how to delete
 * it for good. One gone meanwhile (another process, the admin API) is passed over.
 */
async function retireUndeclared(
  logger: pino.Logger,
  o: {
    kind: 'instance' | 'subscription';
    existing: Iterable<{ id: string; managedBy: string; disabledAt: Date | string | null }>;
    declared: ReadonlySet<string>;
    retire: (id: string) => Promise<{ disabledAt: Date | string | null; disabledReason: string | null }>;
    kept: string;
    path: string;
    into: string[];
  },
): Promise<void> {
  for (const entry of o.existing) {
    if (entry.managedBy !== 'file' || o.declared.has(entry.id)) continue;
    try {
      const after = await o.retire(entry.id);
      o.into.push(entry.id);
      logger.warn(
        {
          [o.kind]: entry.id,
          disabledAt: after.disabledAt,
          disabledReason: after.disabledReason,
          disabledNow: entry.disabledAt === null,
        },
        `${o.kind} ${JSON.stringify(entry.id)} is managed by the config file, which no longer declares it: disabled, not deleted (${o.kept}). Declare it again to enable it, or delete it for good with DELETE ${o.path}/${entry.id} (admin API)`,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}
