/**
 * Applies the config file's instances and subscriptions to the database, marked managed by the
 * file: the file is their source of truth at every start. What the admin API created is left alone.
 */
import { isSwitchyardError } from '@switchyard/core';
import type pino from 'pino';
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
  subscriptions: { created: string[]; updated: string[]; reenabled: string[]; disabled: string[] };
}

function isConflict(error: unknown): boolean {
  return isSwitchyardError(error) && error.code === 'SY_PIPELINE_CONFLICT';
}

function isNotFound(error: unknown): boolean {
  return isSwitchyardError(error) && error.code === 'SY_PIPELINE_NOT_FOUND';
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
    subscriptions: { created: [], updated: [], reenabled: [], disabled: [] },
  };

  const existingInstances = new Map((await hub.instances.list()).map((i) => [i.id, i]));
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
  const declaredInstances = new Set(config.instances.map((i) => i.id));
  for (const instance of existingInstances.values()) {
    if (instance.managedBy !== 'file' || declaredInstances.has(instance.id)) continue;
    try {
      const after = await hub.instances.retire(instance.id);
      result.instances.disabled.push(instance.id);
      logger.warn(
        {
          instance: instance.id,
          disabledAt: after.disabledAt,
          disabledReason: after.disabledReason,
          disabledNow: instance.disabledAt === null,
        },
        `instance ${JSON.stringify(instance.id)} is managed by the config file, which no longer declares it: disabled, not deleted (pushes to it are refused and it is not pulled; its settings, pull position and received messages are kept). Declare it again to enable it, or delete it for good with DELETE /v1/instances/${instance.id} (admin API)`,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

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
      await hub.subscriptions.update(subscription.id, change);
      result.subscriptions.updated.push(subscription.id);
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
      // Another process created it a moment ago.
      await hub.subscriptions.update(subscription.id, change);
      result.subscriptions.updated.push(subscription.id);
    }
  }
  const declaredSubscriptions = new Set(config.subscriptions.map((s) => s.id));
  for (const subscription of existingSubscriptions.values()) {
    if (subscription.managedBy !== 'file' || declaredSubscriptions.has(subscription.id)) continue;
    try {
      const after = await hub.subscriptions.retire(subscription.id);
      result.subscriptions.disabled.push(subscription.id);
      logger.warn(
        {
          subscription: subscription.id,
          disabledAt: after.disabledAt,
          disabledReason: after.disabledReason,
          disabledNow: subscription.disabledAt === null,
        },
        `subscription ${JSON.stringify(subscription.id)} is managed by the config file, which no longer declares it: disabled, not deleted (no new deliveries are made to it and its waiting ones wait; its signing secrets, deliveries and feed position are kept). Declare it again to enable it, or delete it for good with DELETE /v1/subscriptions/${subscription.id} (admin API)`,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  return result;
}
