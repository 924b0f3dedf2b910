/**
 * The approver calls of the gate machinery: which subscriptions approve (read once per
 * `approverCacheMs`, dropped at once when one changes), and one signed call to each through the
 * host's signed POST.
 */
import { performance } from 'node:perf_hooks';
import type { PostWebhookResult } from '../delivery/http-post.ts';
import type { HubHost } from '../host/host.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { withSpan } from '../telemetry/tracing.ts';
import type { GateMetrics } from './metrics.ts';
import { type ApproverAnswer, readAnswer } from './protocol.ts';
import * as q from './store.ts';

/**
 * How long before the decision cutoff an answer whose status has come stops reading its body, so
 * that what it says is known when the cutoff's own timer fires.
 */
const BODY_READ_MARGIN_MS = 10;

/** One approver's call: who, when it started, the HTTP result and what it means. */
export interface ApproverCall {
  sub: SubscriptionRow;
  startedAt: Date;
  result: PostWebhookResult;
  answer: ApproverAnswer;
}

/**
 * The approvers of one process.
 *
 * @example
 * ```ts
 * const approvers = new Approvers(hub.host, metrics, 1000);
 * await hub.host.listener.listen(CHANNEL_GATE_APPROVERS, () => approvers.forget());
 * const subs = await approvers.list();
 * const call = await approvers.call(subs[0], eventId, body, Date.now() + 1500);
 * ```
 */
export class Approvers {
  private readonly host: HubHost;
  private readonly metrics: GateMetrics;
  private readonly cacheMs: number;
  // One read shared by every request within cacheMs (and by concurrent requests).
  private cache: { at: number; rows: Promise<SubscriptionRow[]> } | undefined;

  constructor(host: HubHost, metrics: GateMetrics, cacheMs: number) {
    this.host = host;
    this.metrics = metrics;
    this.cacheMs = cacheMs;
  }

  /** Drops the cached list (an approver subscription changed, or changes may have been missed). */
  forget(): void {
    this.cache = undefined;
  }

  /**
   * The approver subscriptions, from the per-process cache when it can be trusted: only while the
   * LISTEN connection is up, since that is what hears a subscription change (migration 5's trigger).
   */
  list(): Promise<SubscriptionRow[]> {
    const now = performance.now();
    const cached = this.cache;
    if (cached && this.host.listener.listening && now - cached.at < this.cacheMs) return cached.rows;
    const rows = q.listApprovers(this.host.db);
    if (this.cacheMs > 0) {
      const entry = { at: now, rows };
      this.cache = entry;
      rows.catch(() => {
        if (this.cache === entry) this.cache = undefined;
      });
    }
    return rows;
  }

  /**
   * Sends the approval request to one approver. The call is not cut at the deadline: the decision
   * timer answers the vendor then, and an answer that comes later (within the subscription's own
   * timeout) is still recorded as what the approver said, after the decision, without changing the
   * vendor's answer. No time left before `cutoffAt` sends nothing.
   */
  async call(sub: SubscriptionRow, eventId: string, body: string, cutoffAt: number): Promise<ApproverCall> {
    const startedAt = new Date();
    let result: PostWebhookResult;
    if (cutoffAt - Date.now() <= 0) {
      result = { ok: false, latencyMs: 0, error: 'no time left before the deadline', errorKind: 'timeout' };
    } else {
      try {
        // Each approver call is a span (its POST child carries the traceparent to the approver).
        result = await withSpan(
          'switchyard.gate.approver',
          { attributes: { 'switchyard.subscription': sub.id, 'switchyard.gate': eventId } },
          // A status known by the cutoff decides then, its body read so far (a refusal whose body
          // trickles is still a refusal in time), a little before the decision's own timer.
          () => this.host.postSigned(sub, eventId, body, { bodyBy: cutoffAt - BODY_READ_MARGIN_MS }),
        );
      } catch (error) {
        // A secret that cannot be opened: nothing was sent.
        result = {
          ok: false,
          latencyMs: 0,
          error: `signing failed: ${(error as Error).message}`,
          errorKind: 'ssrf',
        };
        return { sub, startedAt, result, answer: readAnswer(result) };
      }
    }
    const answer = readAnswer(result);
    this.metrics.approver.observe({ subscription: sub.id, outcome: answer.outcome }, result.latencyMs / 1000);
    return { sub, startedAt, result, answer };
  }
}

/** The stored row of an approver's answer. */
export function answerRow(c: ApproverCall, afterDecision: boolean): q.NewGateAnswer {
  return {
    subscriptionId: c.sub.id,
    startedAt: c.startedAt,
    latencyMs: Math.round(c.result.latencyMs * 10) / 10,
    statusCode: c.result.status ?? null,
    outcome: c.answer.outcome,
    reason: c.answer.reason,
    vendorErrorCode: c.answer.vendorErrorCode,
    responseSnippet: c.result.responseSnippet ?? null,
    error: c.result.ok ? null : (c.result.error ?? null),
    afterDecision,
  };
}
