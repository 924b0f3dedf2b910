/** The public shapes of the hub API (what `createHub()` returns and takes). */
import type { Connector, EventEnvelope, JsonValue, VendorHttp } from '@switchyard/core';
import type pino from 'pino';
import type { Registry } from 'prom-client';
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
