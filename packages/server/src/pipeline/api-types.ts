/** The public shapes of the hub API (what `createHub()` returns and takes). */
import type { Connector, EventEnvelope, JsonObject, JsonValue, VendorHttp } from '@switchyard/core';
import type pino from 'pino';
import type { Registry } from 'prom-client';
import type { SubscriptionFormat } from '../delivery/formats.ts';
import type { AfterNormalize, GateResponder, MarkEchoes } from '../host/hooks.ts';
import type { PipelineOptions } from './shared.ts';

export interface HubConfig {
  /** Postgres URL. The hub creates schemas `switchyard` and `switchyard_queue` in it. */
  databaseUrl: string;
  /** Every connector the hub can run (instances refer to them by `name`). */
  // biome-ignore lint/suspicious/noExplicitAny: each connector has its own Config type; the hub hands it the stored settings.
  connectors: readonly Connector<any>[];
  /** Key material for secrets at rest (≥ 16 characters; derive it from the config file's secret). */
  secretKey: string;
  logger?: pino.Logger;
  /** Where the gate machinery plugs in (synchronous approvals); optional. */
  gateResponder?: GateResponder;
  /** Called after a notification's events are stored (the gate machinery matches bookings to requests). */
  afterNormalize?: AfterNormalize;
  /** Called with a notification's event drafts before they are validated and stored (the commands subsystem marks echoes with `data.causedBy`). */
  markEchoes?: MarkEchoes;
  /** The HTTP client lent to connectors; default `createVendorHttp()` (tests inject fakes). */
  vendorHttp?: VendorHttp;
  /** Connection pool size. Default 10. */
  poolSize?: number;
  /** Where the hub's subsystems register their metrics (`hub.host.metrics`); default a registry of its own. */
  metrics?: Registry;
  options?: PipelineOptions;
}

export type InstanceMode = 'push' | 'pull' | 'both';

export interface InstanceInput {
  id: string;
  connector: string;
  mode?: InstanceMode;
  /** Connector-specific settings (validated by the config loader); stored encrypted. */
  settings: JsonObject;
  pull?: { intervalMs?: number };
  /** Gate policy, stored for the gate machinery. */
  gate?: JsonObject;
  managedBy?: 'file' | 'api';
}

export interface Instance {
  id: string;
  connector: string;
  mode: InstanceMode;
  /** Settings with every `x-secret` field of the connector's config schema replaced by `[redacted]`. */
  settings: JsonObject;
  pull?: { intervalMs: number | null };
  gate?: JsonValue;
  managedBy: 'file' | 'api';
  createdAt: Date;
  updatedAt: Date;
}

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

/** A signing secret as the API shows it (never the secret itself). */
export interface SecretInfo {
  secretHint: string;
  createdAt: string;
  expiresAt: string | null;
  /** Declared in the configuration file: rotate it there (the API refuses to). */
  fromFile: boolean;
}

export type ContentType = 'application/cloudevents+json' | 'application/json';

export interface SubscriptionInput {
  /** Default: a random UUID. Config-file subscriptions use their name. */
  id?: string;
  kind?: 'webhook' | 'pull';
  /** Required for `webhook`. */
  url?: string;
  /** Type patterns: exact (`appointment.created`), entity wildcard (`appointment.*`) or `*`. Default `['*']`. */
  eventTypes?: string[];
  /** Source instance ids; default all. */
  sources?: string[] | null;
  /**
   * Signing secrets (`whsec_…`) for config-managed subscriptions; when absent on create, the hub
   * generates one and returns it once.
   */
  secrets?: string[];
  contentType?: ContentType;
  /**
   * The delivery body: `cloudevents` (default), `fhir-r4` (the entity's FHIR R4 resource) or
   * `fhir-r4-notification` (a Subscriptions Backport notification Bundle). Webhooks only.
   */
  format?: SubscriptionFormat;
  timeoutMs?: number;
  /** Ms to wait before each attempt (its length = attempts). Default: the hub's schedule. */
  retryScheduleMs?: number[] | null;
  rateLimit?: JsonObject | null;
  /** What a dead delivery does to later ones of the same subject. Default `hold`. */
  ordering?: 'hold' | 'release';
  approver?: boolean;
  approverFilters?: JsonObject | null;
  /** Allow private, loopback and link-local destinations (tests, internal networks). */
  allowPrivateAddresses?: boolean;
  /** Consecutive dead deliveries that disable the subscription. Default (null): the hub's option. */
  disableAfterConsecutiveDead?: number | null;
  managedBy?: 'file' | 'api';
}

export interface Subscription {
  id: string;
  kind: 'webhook' | 'pull';
  url: string | null;
  eventTypes: string[];
  sources: string[] | null;
  secrets: SecretInfo[];
  contentType: ContentType;
  format: SubscriptionFormat;
  timeoutMs: number;
  retryScheduleMs: number[] | null;
  rateLimit: JsonValue | null;
  ordering: 'hold' | 'release';
  approver: boolean;
  approverFilters: JsonValue | null;
  allowPrivateAddresses: boolean;
  disableAfterConsecutiveDead: number | null;
  consecutiveDead: number;
  disabledAt: Date | null;
  disabledReason: string | null;
  managedBy: 'file' | 'api';
  createdAt: Date;
  updatedAt: Date;
}

/** An event as the API shows it: the envelope with its feed position. */
export type HubEvent = EventEnvelope & { sequence: string };

export interface Attempt {
  attempt: number;
  startedAt: Date;
  latencyMs: number | null;
  statusCode: number | null;
  responseSnippet: string | null;
  error: string | null;
  outcome: string;
}

export interface Delivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventSequence: string;
  subject: string;
  status: 'pending' | 'in_flight' | 'succeeded' | 'dead' | 'skipped' | 'held';
  reason: 'fanout' | 'replay';
  replayOf: string | null;
  supersededBy: string | null;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

export type DeliveryWithAttempts = Delivery & { attemptLog: Attempt[] };

export interface InboundMessage {
  id: string;
  instanceId: string;
  route: string;
  dedupeKey: string;
  vendorType: string;
  orderingKey: string | null;
  occurredAt: string | null;
  gate: boolean;
  origin: 'push' | 'pull';
  status: 'received' | 'normalized' | 'ignored' | 'failed';
  /** Why it was ignored or failed. */
  reason: string | null;
  error: JsonValue | null;
  attempts: number;
  eventCount: number;
  receivedAt: Date;
  processedAt: Date | null;
}

export type InboundMessageDetail = InboundMessage & {
  payload: JsonValue;
  /** The body as received (UTF-8), when it came by push. */
  rawBody: string | null;
  /** Request headers with credentials redacted. */
  headers: Record<string, string> | null;
  events: HubEvent[];
};

/** A page of results; pass `nextCursor` back as `cursor` for the next page (null: no more). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
