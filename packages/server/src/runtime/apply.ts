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
  instances: { applied: string[]; removed: string[] };
  subscriptions: { created: string[]; updated: string[]; removed: string[] };
}

function isConflict(error: unknown): boolean {
  return isSwitchyardError(error) && error.code === 'SY_PIPELINE_CONFLICT';
}

function isNotFound(error: unknown): boolean {
  return isSwitchyardError(error) && error.code === 'SY_PIPELINE_NOT_FOUND';
}

/**
 * Upserts every instance and subscription of the file (managedBy `file`) and removes the
 * file-managed ones the file no longer declares. Several processes starting together may run it
 * at once: every step tolerates the others having done it first.
 *
 * @example
 * ```ts
 * const result = await applyFileConfig(hub, config, logger);
 * // { instances: { applied: ['docplanner-main'], removed: [] }, subscriptions: { created: ['crm'], ... } }
 * ```
 */
export async function applyFileConfig(
  hub: Hub,
  config: ResolvedConfig,
  logger: pino.Logger,
): Promise<ApplyResult> {
  const result: ApplyResult = {
    instances: { applied: [], removed: [] },
    subscriptions: { created: [], updated: [], removed: [] },
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
  }
  const declaredInstances = new Set(config.instances.map((i) => i.id));
  for (const instance of existingInstances.values()) {
    if (instance.managedBy !== 'file' || declaredInstances.has(instance.id)) continue;
    try {
      await hub.instances.remove(instance.id);
      result.instances.removed.push(instance.id);
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
      await hub.subscriptions.remove(subscription.id);
      result.subscriptions.removed.push(subscription.id);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  return result;
}
