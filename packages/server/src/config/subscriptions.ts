/**
 * The config file's layer over the one subscription input (subscriptions/schema.ts). The file
 * writes a few fields its own way: durations (`timeout: 15s`, `retry.schedule`), `events` for
 * `eventTypes`, and `approver: { events, sources }` for `approver` + `approverFilters`. This module
 * converts an entry to the hub's input (the config's resolved subscription is that input), so the
 * loader checks it with the hub's own check (the same
 * ranges, enums and required fields as the routes) and `applyConfig` hands the hub that input. Its
 * only rule of its own: an id follows the instance id rule (lowercase, 63 characters at most).
 */
import { isJsonObject, type JsonObject } from '@switchyard/core';
import type { FilePaths } from './positions.ts';
import { CONFIG_DEFAULTS } from './schema.ts';
import type { ResolvedSubscription } from './types.ts';
import { configDurationMs } from './units.ts';

const obj = (value: unknown): JsonObject => (isJsonObject(value) ? value : {});
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/**
 * A subscription entry of the file (already checked against the file's schema) as the hub's input,
 * defaults applied, managed by the file. `secrets` is left out when the file gives none, so an
 * update keeps the secret the hub generated the first time.
 *
 * @example
 * ```ts
 * resolveSubscription({ id: 'crm', kind: 'webhook', url: 'https://crm.example/hooks', timeout: '5s' }).timeoutMs; // 5000
 * await hub.subscriptions.create(resolveSubscription(entry));
 * ```
 */
export function resolveSubscription(item: unknown): ResolvedSubscription {
  const s = obj(item);
  const d = CONFIG_DEFAULTS.subscription;
  const schedule = list(obj(s.retry).schedule).map(String);
  const events = list(s.events).map(String);
  const approver = isJsonObject(s.approver) ? s.approver : undefined;
  const resolved: ResolvedSubscription = {
    id: String(s.id),
    kind: s.kind === 'pull' ? 'pull' : 'webhook',
    eventTypes: events.length > 0 ? events : [...d.events],
    sources: Array.isArray(s.sources) ? s.sources.map(String) : null,
    contentType: s.contentType === 'application/json' ? 'application/json' : d.contentType,
    format: s.format === 'fhir-r4' || s.format === 'fhir-r4-notification' ? s.format : d.format,
    timeoutMs: configDurationMs(typeof s.timeout === 'string' ? s.timeout : d.timeout)!,
    retryScheduleMs: (schedule.length > 0 ? schedule : d.retrySchedule).map((x) => configDurationMs(x)!),
    rateLimit: isJsonObject(s.rateLimit) ? { perSecond: Number(s.rateLimit.perSecond) } : null,
    ordering: s.ordering === 'release' ? 'release' : d.ordering,
    approver: approver !== undefined,
    approverFilters: approver
      ? {
          events: Array.isArray(approver.events) ? approver.events.map(String) : [...d.approverEvents],
          ...(Array.isArray(approver.sources) ? { sources: approver.sources.map(String) } : {}),
        }
      : null,
    allowPrivateAddresses: s.allowPrivateAddresses === true,
    disableAfterConsecutiveDead:
      typeof s.disableAfterConsecutiveDead === 'number'
        ? s.disableAfterConsecutiveDead
        : d.disableAfterConsecutiveDead,
    managedBy: 'file',
  };
  if (typeof s.url === 'string') resolved.url = s.url;
  if (Array.isArray(s.secrets)) resolved.secrets = s.secrets.map(String);
  return resolved;
}

/** Fields of the input the file writes under another name; the rest keep theirs. */
export const SUBSCRIPTION_FILE_PATHS: FilePaths = {
  renamed: {
    '/eventTypes': ['events'],
    '/timeoutMs': ['timeout'],
    '/retryScheduleMs': ['retry', 'schedule'],
    '/approverFilters': ['approver'],
  },
  durations: [/^\/timeoutMs$/, /^\/retryScheduleMs\/[0-9]+$/],
};
