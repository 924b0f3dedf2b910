import { SwitchyardError } from '@switchyard/core';
import type * as q from '../storage/queries.ts';
import type { Attempt, Delivery, HubEvent, InboundMessage, Subscription } from './api-types.ts';

// Row → API view mappers and the small error helpers shared by the admin API sections (api/).

export function notFound(what: string, id: string): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_NOT_FOUND', `no ${what} ${JSON.stringify(id)}`, {
    details: { [what]: id },
  });
}

export function invalid(message: string, details?: Record<string, unknown>): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_INVALID_INPUT', message, details ? { details } : undefined);
}

export function clampLimit(limit: number | undefined, max = 500, def = 50): number {
  if (limit === undefined) return def;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, max);
}

export function toEvent(row: q.EventRow): HubEvent {
  return { ...(row.envelope as unknown as HubEvent), sequence: row.sequence };
}

export function toDelivery(r: q.DeliveryRow): Delivery {
  return {
    id: r.id,
    subscriptionId: r.subscription_id,
    eventId: r.event_id,
    eventSequence: r.event_sequence,
    subject: r.subject,
    status: r.status,
    reason: r.reason,
    replayOf: r.replay_of,
    supersededBy: r.superseded_by,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    createdAt: r.created_at,
    completedAt: r.completed_at,
  };
}

export function toAttempt(a: q.AttemptRow): Attempt {
  return {
    attempt: a.attempt,
    startedAt: a.started_at,
    latencyMs: a.latency_ms,
    statusCode: a.status_code,
    responseSnippet: a.response_snippet,
    error: a.error,
    outcome: a.outcome,
  };
}

export function toSubscription(r: q.SubscriptionRow): Subscription {
  return {
    id: r.id,
    kind: r.kind,
    url: r.url,
    eventTypes: r.event_types,
    sources: r.sources,
    secrets: r.secrets.map((s) => ({
      secretHint: s.hint,
      createdAt: s.createdAt,
      expiresAt: s.expiresAt,
      fromFile: s.fromFile === true,
    })),
    contentType: r.content_type,
    format: r.format,
    timeoutMs: r.timeout_ms,
    retryScheduleMs: r.retry_schedule_ms,
    rateLimit: r.rate_limit,
    ordering: r.ordering,
    approver: r.approver,
    approverFilters: r.approver_filters,
    allowPrivateAddresses: r.allow_private_addresses,
    disableAfterConsecutiveDead: r.disable_after_consecutive_dead,
    consecutiveDead: r.consecutive_dead,
    disabledAt: r.disabled_at,
    disabledReason: r.disabled_reason,
    managedBy: r.managed_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toInbound(r: q.InboundRow): InboundMessage {
  return {
    id: r.id,
    instanceId: r.instance_id,
    route: r.route,
    dedupeKey: r.dedupe_key,
    vendorType: r.vendor_type,
    orderingKey: r.ordering_key,
    occurredAt: r.occurred_at,
    gate: r.gate,
    origin: r.origin,
    status: r.status,
    reason: r.reason,
    error: r.error,
    attempts: r.attempts,
    eventCount: r.event_count,
    receivedAt: r.received_at,
    processedAt: r.processed_at,
  };
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
