/**
 * What the admin API, the CLI and the library show of gate requests: the view types and the
 * read functions over the tables (they need only a database, so the CLI can use them too).
 */

import type { JsonValue } from '@switchyard/core';
import { SwitchyardError } from '@switchyard/core';
import { clampLimit, type Page } from '../admin/page.ts';
import type { Executor } from '../storage/db.ts';
import * as q from './store.ts';

export const GATE_REASONS: readonly q.GateReason[] = [
  'approved',
  'refused',
  'deadline',
  'no_approvers',
  'unavailable',
  'error',
  'abandoned',
];

/** One approver's answer as the API shows it. */
export interface GateAnswer {
  subscriptionId: string;
  startedAt: Date;
  latencyMs: number | null;
  /** When the approver's HTTP answer came (null without one: a timeout or connection failure). */
  answeredAt: Date | null;
  statusCode: number | null;
  outcome: q.AnswerOutcome;
  reason: string | null;
  vendorErrorCode: number | null;
  responseSnippet: string | null;
  error: string | null;
  /** True when it came after the decision (a slower approver after a refusal, or after the deadline). */
  afterDecision: boolean;
}

/**
 * Whether the booking that an approval request asked for happened. `booked`: the following booking
 * (Docplanner `slot-booked` / `booking-moved`) was matched; `not_booked`: approved, but nothing
 * matched within the match window; `waiting`: approved, window still open; `not_expected`: refused
 * (a match on a refused request shows `booked`: the vendor went ahead anyway).
 */
export interface GateBooking {
  status: 'booked' | 'not_booked' | 'waiting' | 'not_expected';
  matchedAt: Date | null;
  inboundMessageId: string | null;
  vendorType: string | null;
  eventId: string | null;
  subject: string | null;
}

/** A gate request as the admin API shows it. */
export interface GateRequest {
  id: string;
  instanceId: string;
  connector: string;
  vendorType: string;
  type: string | null;
  eventId: string | null;
  inboundMessageId: string | null;
  receivedAt: Date;
  deadlineAt: Date;
  deadlineMs: number;
  default: q.GateOutcome;
  status: 'pending' | 'deciding' | 'decided';
  decision: q.GateOutcome | null;
  reason: q.GateReason | null;
  /** The approver that refused. */
  decidedBy: string | null;
  refusalReason: string | null;
  vendorErrorCode: number | null;
  /** The HTTP status the vendor was answered. */
  responseStatus: number | null;
  decidedAt: Date | null;
  /** From the request reaching the gate machinery to the decision, ms. */
  decisionMs: number | null;
  approvers: number;
  error: string | null;
  booking: GateBooking;
}

export type GateRequestDetail = GateRequest & {
  /** The signed CloudEvent approvers were sent (without its `data.deadline`). */
  request: JsonValue | null;
  answers: GateAnswer[];
};

/** Filters of {@link listGates}. */
export interface GateListQuery {
  instanceId?: string;
  decision?: string;
  reason?: string;
  cursor?: string;
  limit?: number;
}

function invalid(message: string): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_INVALID_INPUT', message);
}

/** A stored answer as the API shows it. */
export function toAnswer(a: q.GateAnswerRow): GateAnswer {
  return {
    subscriptionId: a.subscription_id,
    startedAt: a.started_at,
    latencyMs: a.latency_ms,
    answeredAt:
      a.status_code !== null && a.latency_ms !== null
        ? new Date(a.started_at.getTime() + Math.round(a.latency_ms))
        : null,
    statusCode: a.status_code,
    outcome: a.outcome,
    reason: a.reason,
    vendorErrorCode: a.vendor_error_code,
    responseSnippet: a.response_snippet,
    error: a.error,
    afterDecision: a.after_decision,
  };
}

/** A stored gate request as the API shows it. */
export function toView(r: q.GateRequestRow, matchWindowMs: number, now = Date.now()): GateRequest {
  let status: GateBooking['status'];
  if (r.matched_at !== null) status = 'booked';
  else if (r.decision !== 'approve') status = r.decision === null ? 'waiting' : 'not_expected';
  else status = now - r.received_at.getTime() > matchWindowMs ? 'not_booked' : 'waiting';
  return {
    id: r.id,
    instanceId: r.instance_id,
    connector: r.connector,
    vendorType: r.vendor_type,
    type: r.type,
    eventId: r.event_id,
    inboundMessageId: r.inbound_message_id,
    receivedAt: r.received_at,
    deadlineAt: r.deadline_at,
    deadlineMs: r.deadline_ms,
    default: r.default_outcome,
    status: r.status,
    decision: r.decision,
    reason: r.decision_reason,
    decidedBy: r.decided_by,
    refusalReason: r.refusal_reason,
    vendorErrorCode: r.vendor_error_code,
    responseStatus: r.response_status,
    decidedAt: r.decided_at,
    decisionMs: r.decision_ms,
    approvers: r.approvers,
    error: r.error,
    booking: {
      status,
      matchedAt: r.matched_at,
      inboundMessageId: r.matched_inbound_id,
      vendorType: r.matched_vendor_type,
      eventId: r.matched_event_id,
      subject: r.matched_subject,
    },
  };
}

/**
 * Lists gate requests, newest first (at most 500 a page).
 *
 * @example
 * ```ts
 * const { items, nextCursor } = await listGates(db, { decision: 'refuse', limit: 20 }, DEFAULT_MATCH_WINDOW_MS);
 * ```
 */
export async function listGates(
  db: Executor,
  f: GateListQuery,
  matchWindowMs: number,
): Promise<Page<GateRequest>> {
  const size = clampLimit(f.limit);
  if (f.decision !== undefined && f.decision !== 'approve' && f.decision !== 'refuse') {
    throw invalid('decision must be approve or refuse');
  }
  if (f.reason !== undefined && !GATE_REASONS.includes(f.reason as q.GateReason)) {
    throw invalid(`reason must be one of ${GATE_REASONS.join(', ')}`);
  }
  if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
  const rows = await q.listGateRequests(db, {
    ...(f.instanceId ? { instanceId: f.instanceId } : {}),
    ...(f.decision ? { decision: f.decision as q.GateOutcome } : {}),
    ...(f.reason ? { reason: f.reason as q.GateReason } : {}),
    ...(f.cursor ? { beforeSeq: f.cursor } : {}),
    limit: size + 1,
  });
  const page = rows.slice(0, size);
  return {
    items: page.map((r) => toView(r, matchWindowMs)),
    nextCursor: rows.length > page.length ? page[page.length - 1]!.seq : null,
  };
}

/**
 * One gate request with the approval request sent and every approver's answer; a
 * `SY_PIPELINE_NOT_FOUND` error (404) when there is none.
 *
 * @example
 * ```ts
 * const g = await getGate(db, id, DEFAULT_MATCH_WINDOW_MS); // { decision: 'refuse', decidedBy: 'crm', answers: [...] }
 * ```
 */
export async function getGate(db: Executor, id: string, matchWindowMs: number): Promise<GateRequestDetail> {
  const row = await q.getGateRequest(db, id);
  if (!row) {
    throw new SwitchyardError('SY_PIPELINE_NOT_FOUND', `no gate request ${JSON.stringify(id)}`, {
      details: { gate: id },
    });
  }
  const answers = await q.listGateAnswers(db, [id]);
  return { ...toView(row, matchWindowMs), request: row.envelope, answers: answers.map(toAnswer) };
}
