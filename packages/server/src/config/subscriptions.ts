/**
 * The config file's layer over the one subscription input (subscriptions/schema.ts). The file
 * writes a few fields its own way: durations (`timeout: 15s`, `retry.schedule`), `events` for
 * `eventTypes`, and `approver: { events, sources }` for `approver` + `approverFilters`. This module
 * converts an entry to the hub's input, so the loader checks it with the hub's own check (the same
 * ranges, enums and required fields as the routes) and `applyConfig` hands the hub that input. Its
 * only rule of its own: an id follows the instance id rule (lowercase, 63 characters at most).
 */
import { isJsonObject, type JsonObject } from '@switchyard/core';
import type { SubscriptionInput } from '../subscriptions/api.ts';
import type { FilePaths } from './positions.ts';
import { CONFIG_DEFAULTS } from './schema.ts';
import type { ResolvedSubscription } from './types.ts';
import { configDurationMs } from './units.ts';

const obj = (value: unknown): JsonObject => (isJsonObject(value) ? value : {});
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/**
 * A subscription entry of the file (already checked against the file's schema) with its defaults.
 *
 * @example
 * ```ts
 * resolveSubscription({ id: 'crm', kind: 'webhook', url: 'https://crm.example/hooks', timeout: '5s' }).timeoutMs; // 5000
 * ```
 */
export function resolveSubscription(item: unknown): ResolvedSubscription {
  const s = obj(item);
  const d = CONFIG_DEFAULTS.subscription;
  const schedule = list(obj(s.retry).schedule).map(String);
  const resolved: ResolvedSubscription = {
    id: String(s.id),
    kind: s.kind === 'pull' ? 'pull' : 'webhook',
    events: list(s.events).map(String),
    contentType: s.contentType === 'application/json' ? 'application/json' : d.contentType,
    format: s.format === 'fhir-r4' || s.format === 'fhir-r4-notification' ? s.format : d.format,
    retryScheduleMs: (schedule.length > 0 ? schedule : d.retrySchedule).map((x) => configDurationMs(x)!),
    timeoutMs: configDurationMs(typeof s.timeout === 'string' ? s.timeout : d.timeout)!,
    ordering: s.ordering === 'release' ? 'release' : d.ordering,
    allowPrivateAddresses: s.allowPrivateAddresses === true,
    disableAfterConsecutiveDead:
      typeof s.disableAfterConsecutiveDead === 'number'
        ? s.disableAfterConsecutiveDead
        : d.disableAfterConsecutiveDead,
  };
  if (resolved.events.length === 0) resolved.events = [...d.events];
  if (typeof s.url === 'string') resolved.url = s.url;
  if (Array.isArray(s.sources)) resolved.sources = s.sources.map(String);
  if (Array.isArray(s.secrets)) resolved.secrets = s.secrets.map(String);
  if (isJsonObject(s.rateLimit)) resolved.rateLimit = { perSecond: Number(s.rateLimit.perSecond) };
  if (isJsonObject(s.approver)) {
    const approver = s.approver;
    resolved.approver = {
      events: Array.isArray(approver.events) ? approver.events.map(String) : [...d.approverEvents],
    };
    if (Array.isArray(approver.sources)) resolved.approver.sources = approver.sources.map(String);
  }
  return resolved;
}

/**
 * A resolved config subscription as the hub API takes it. `secrets` is left out when the file
 * gives none, so an update keeps the secret the hub generated the first time.
 *
 * @example
 * ```ts
 * await hub.subscriptions.create(subscriptionInput(config.subscriptions[0]!));
 * ```
 */
export function subscriptionInput(s: ResolvedSubscription): SubscriptionInput {
  const input: SubscriptionInput = {
    id: s.id,
    kind: s.kind,
    eventTypes: s.events,
    sources: s.sources ?? null,
    contentType: s.contentType,
    format: s.format,
    timeoutMs: s.timeoutMs,
    retryScheduleMs: s.retryScheduleMs,
    rateLimit: s.rateLimit ? { perSecond: s.rateLimit.perSecond } : null,
    ordering: s.ordering,
    approver: s.approver !== undefined,
    approverFilters: s.approver
      ? { events: s.approver.events, ...(s.approver.sources ? { sources: s.approver.sources } : {}) }
      : null,
    allowPrivateAddresses: s.allowPrivateAddresses,
    disableAfterConsecutiveDead: s.disableAfterConsecutiveDead,
    managedBy: 'file',
  };
  if (s.url !== undefined) input.url = s.url;
  if (s.secrets) input.secrets = s.secrets;
  return input;
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
