import { invalid } from '../admin/errors.ts';
import type * as deliveryStore from '../deliveries/store.ts';
import type * as eventStore from '../events/store.ts';
import type * as inboundStore from '../inbound/store.ts';
import type { Attempt, Delivery, HubEvent, InboundMessage } from './api-types.ts';

// Row → API view mappers and the small error helpers shared by the admin API sections (api/).

export function clampLimit(limit: number | undefined, max = 500, def = 50): number {
  if (limit === undefined) return def;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, max);
}

export function toEvent(row: eventStore.EventRow): HubEvent {
  return { ...(row.envelope as unknown as HubEvent), sequence: row.sequence };
}

export function toDelivery(r: deliveryStore.DeliveryRow): Delivery {
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

export function toAttempt(a: deliveryStore.AttemptRow): Attempt {
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

export function toInbound(r: inboundStore.InboundRow): InboundMessage {
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
