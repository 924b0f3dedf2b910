/**
 * The `subscriptions` row. Its SQL is subscriptions/store.ts; the row type stays in storage/ because
 * the deliveries store joins it (a claimed delivery comes with its subscription) and the
 * subscription concept's API replays deliveries: with the row in subscriptions/, the
 * `subscriptions` and `deliveries` folders would import each other.
 */
import type { JsonValue } from '@switchyard/core';

/** A signing secret as stored: sealed by secret-box, never returned. */
export interface StoredSecret {
  sealed: string;
  hint: string;
  createdAt: string;
  expiresAt: string | null;
  /** Declared in the configuration file: the file replaces it at every start (absent: false). */
  fromFile?: boolean;
}

/** A `subscriptions` row (its SQL: subscriptions/store.ts; kept here because delivery rows join it). */
export interface SubscriptionRow {
  id: string;
  kind: 'webhook' | 'pull';
  url: string | null;
  event_types: string[];
  sources: string[] | null;
  secrets: StoredSecret[];
  content_type: 'application/cloudevents+json' | 'application/json';
  format: SubscriptionFormat;
  /** fhir-r4-notification: events numbered so far (the Backport's events-since-subscription-start). */
  notification_events: string;
  timeout_ms: number;
  retry_schedule_ms: number[] | null;
  rate_limit: JsonValue | null;
  ordering: 'hold' | 'release';
  approver: boolean;
  approver_filters: JsonValue | null;
  allow_private_addresses: boolean;
  disable_after_consecutive_dead: number | null;
  consecutive_dead: number;
  disabled_at: Date | null;
  disabled_reason: string | null;
  disabled_at_sequence: string | null;
  managed_by: 'file' | 'api';
  created_at: Date;
  updated_at: Date;
}

/** What a subscriber's bodies are (`subscriptions.format`, migration 17; subscriptions/schema.ts). */
export type SubscriptionFormat = 'cloudevents' | 'fhir-r4' | 'fhir-r4-notification';
