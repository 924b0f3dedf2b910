/**
 * @switchyard/server: the hub. `createHub()` gives the whole pipeline (storage, ingest,
 * normalization, fan-out, delivery, replay, pull feed, vendor polling, retention) as a TypeScript
 * API; the HTTP app and the CLI are thin layers over it.
 *
 * @example
 * ```ts
 * import { createHub } from '@switchyard/server';
 * const hub = await createHub({ databaseUrl, connectors, secretKey });
 * await hub.start();
 * ```
 */

export type { Page } from './admin/page.ts';
export type { Attempt, DeliveriesHost, Delivery, DeliveryWithAttempts } from './deliveries/api.ts';
export type { EventsHost, HubEvent } from './events/api.ts';
export { eventIdFor } from './events/ids.ts';
export type { AfterNormalize, GateResponder, MarkEchoes } from './host/hooks.ts';
export type { HostInstance, HostRetention, HubHost } from './host/host.ts';
export type { InboundHost, InboundMessage, InboundMessageDetail } from './inbound/api.ts';
export type { InstanceHealth, InstancesHost } from './instances/api.ts';
export type * from './instances/generated/input.ts';
export type { InstanceInput } from './instances/input.ts';
export type { AttemptResult } from './pipeline/deliver.ts';
export { createHub, type Hub } from './pipeline/hub.ts';
export type { HubConfig } from './pipeline/hub-config.ts';
export type { IngestResult, Problem } from './pipeline/ingest.ts';
export type { PurgeResult } from './pipeline/retention.ts';
export type { PipelineOptions, RetentionOptions } from './pipeline/shared.ts';
export { openDatabase } from './storage/db.ts';
export { migrate, migrations } from './storage/migrations.ts';
export type {
  SubscriptionDefaults,
  SubscriptionInput,
  SubscriptionPatch,
  SubscriptionsHost,
} from './subscriptions/api.ts';
export type { FeedHost } from './subscriptions/feed.ts';
export type * from './subscriptions/generated/input.ts';
export { typeMatches } from './subscriptions/type-patterns.ts';
