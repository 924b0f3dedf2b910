/** What `createHub()` takes (the shapes it returns are the concepts' API views). */
import type { Connector, VendorHttp } from '@switchyard/core';
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
  /**
   * Connection pool size (`database.poolSize`, default 10). Plus 6 connections that run only plan-stable statements on
   * cached plans (storage/db.ts `PLAN_STABLE`): one per ingest batch in flight (2) and 4 for the
   * workers' plan-stable statements.
   */
  poolSize?: number;
  /** Where the hub's subsystems register their metrics (`hub.host.metrics`); default a registry of its own. */
  metrics?: Registry;
  /**
   * Whether creating the hub brings the database schema up to date (default true: `start`, tests).
   * False: a schema that lacks migrations of this version is refused (`SY_STORAGE_SCHEMA_BEHIND`)
   * instead of migrated, so that a command run against a production database (`events list`,
   * `replay`) never migrates it outside the deploy step (`switchyard migrate`, or `start`).
   */
  migrate?: boolean;
  options?: PipelineOptions;
}
