/**
 * The config file's layer over the one instance input (instances/schema.ts): the file writes
 * `pull.interval` and `gate.deadline` as durations, and its defaults come from the connector
 * (`pull.defaultIntervalMs`) and `CONFIG_DEFAULTS.gate`. This module converts an entry to the hub's
 * input, so the loader checks it with the hub's own check and `applyConfig` hands the hub that
 * input. Its only rule of its own: an id is lowercase, 63 characters at most.
 */
import { type Connector, isJsonObject, type JsonObject } from '@switchyard/core';
import type { InstanceInput } from '../instances/input.ts';
import type { FilePaths } from './positions.ts';
import { CONFIG_DEFAULTS } from './schema.ts';
import type { ResolvedInstance } from './types.ts';
import { configDurationMs } from './units.ts';

const obj = (value: unknown): JsonObject => (isJsonObject(value) ? value : {});

/**
 * An instance entry of the file (already checked against the file's schema, its connector known)
 * with its defaults.
 *
 * @example
 * ```ts
 * resolveInstance({ id: 'dp', connector: 'docplanner', settings }, docplanner).mode; // 'push'
 * ```
 */
export function resolveInstance(item: unknown, connector: Connector): ResolvedInstance {
  const instance = obj(item);
  const mode = (
    typeof instance.mode === 'string' ? instance.mode : connector.push ? 'push' : 'pull'
  ) as ResolvedInstance['mode'];
  const resolved: ResolvedInstance = {
    id: String(instance.id),
    connector,
    mode,
    settings: obj(instance.settings),
  };
  if (mode !== 'push' && connector.pull) {
    const interval = obj(instance.pull).interval;
    resolved.pull = {
      intervalMs:
        typeof interval === 'string' ? configDurationMs(interval)! : connector.pull.defaultIntervalMs,
    };
  }
  if (connector.gate) {
    const gate = obj(instance.gate);
    resolved.gate = {
      deadlineMs: configDurationMs(
        typeof gate.deadline === 'string' ? gate.deadline : CONFIG_DEFAULTS.gate.deadline,
      )!,
      default:
        gate.default === 'refuse' || gate.default === 'approve' ? gate.default : CONFIG_DEFAULTS.gate.default,
    };
  }
  return resolved;
}

/**
 * A resolved config instance as the hub API takes it.
 *
 * @example
 * ```ts
 * await hub.instances.upsert(instanceInput(config.instances[0]!));
 * ```
 */
export function instanceInput(instance: ResolvedInstance): InstanceInput {
  return { ...instance, connector: instance.connector.name, managedBy: 'file' };
}

/** The input fields the file writes under other names, as durations. */
export const INSTANCE_FILE_PATHS: FilePaths = {
  renamed: { '/pull/intervalMs': ['pull', 'interval'], '/gate/deadlineMs': ['gate', 'deadline'] },
  durations: [/^\/pull\/intervalMs$/, /^\/gate\/deadlineMs$/],
};
