/**
 * Deciding one gate request: the approval request made from the vendor's notification (the
 * connector's normalize, one synchronous try), the approvers asked in parallel, the first decisive
 * answer (or the deadline) recorded, first writer wins, and announced on the decided channel.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AliasStore,
  type Connector,
  type EventEnvelope,
  type GateDecision,
  isJsonObject,
  type JsonObject,
  type VendorNotification,
} from '@switchyard/core';
import type pino from 'pino';
import { eventIdFor } from '../events/ids.ts';
import type { HubHost } from '../host/host.ts';
import { connectorLogger } from '../logging/logger.ts';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { newId } from '../storage/db.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { setSpanAttributes, withSpan } from '../telemetry/tracing.ts';
import { type ApproverCall, type Approvers, answerRow } from './approvers.ts';
import type { GateMetrics } from './metrics.ts';
import {
  type ApproverAnswer,
  approverMatches,
  decide,
  fallback,
  type GatePolicy,
  recordMargin,
  type Verdict,
} from './protocol.ts';
import * as q from './store.ts';
import { sleepUntil } from './waiters.ts';

/**
 * How long before the request's deadline the decider stops waiting for its decision's write and
 * gives the vendor the decision unrecorded: a little before the waiting request's own timer
 * (which answers the default at the deadline itself), so the decision is what it sees first.
 */
const UNRECORDED_ANSWER_SLACK_MS = 5;

/**
 * The same for a request handed to a gate job ({@link Decider.decide} with `handedOver`): the
 * request waits in another process, which hears of the decision by NOTIFY, a round trip through
 * Postgres that 5 ms did not always leave room for.
 */
const HANDED_OVER_ANSWER_SLACK_MS = 100;

/** The decision as the connector's `gate.respond` takes it. */
export function toDecision(v: Verdict): GateDecision {
  return {
    outcome: v.outcome,
    reason: v.reason === 'refused' && v.refusalReason ? v.refusalReason : v.reason,
    ...(v.vendorErrorCode !== null ? { vendorErrorCode: v.vendorErrorCode } : {}),
  };
}

/** The decision stored on a row, or undefined while it is undecided. */
export function verdictOf(row: q.GateRequestRow): Verdict | undefined {
  if (row.decision === null || row.decision_reason === null) return undefined;
  return {
    outcome: row.decision,
    reason: row.decision_reason,
    decidedBy: row.decided_by,
    refusalReason: row.refusal_reason,
    vendorErrorCode: row.vendor_error_code,
  };
}

/** What {@link approvalRequest} made of a notification: the row id, the CloudEvent, or why none. */
export interface ApprovalRequest {
  id: string;
  envelope: EventEnvelope | null;
  error: string | null;
}

/**
 * The approval request of a gate notification: the connector's normalize, one synchronous try
 * (nobody retries while the vendor waits), made into the CloudEvent approvers receive. Its id is the
 * one the normalize worker gives the same event, so approvers and feed readers see one id.
 * `aliases` is the store the connector gets: `host.deferredAliases(…).store`, whose new aliases the
 * gate request's insert stores, or `host.aliases(…)` after that insert refused one.
 */
export async function approvalRequest(
  host: HubHost,
  logger: pino.Logger,
  connector: Connector,
  instanceId: string,
  config: Record<string, unknown>,
  n: VendorNotification,
  messageId: string | null,
  aliases: AliasStore,
): Promise<ApprovalRequest> {
  if (messageId === null)
    return { id: newId(), envelope: null, error: 'the gate notification was not stored' };
  try {
    const result = await connector.normalize(n, {
      instanceId,
      config,
      http: host.vendorHttp,
      aliases,
      state: host.state(instanceId),
      logger: connectorLogger(logger.child({ instance: instanceId, vendorType: n.type })),
      attempt: 1,
      finalAttempt: true,
      receivedAt: new Date(),
    } as Parameters<Connector['normalize']>[1]);
    const draft = result.events[0];
    if (!draft)
      return {
        id: newId(),
        envelope: null,
        error: result.ignored ?? 'the connector made no approval request',
      };
    const data = draft.data as JsonObject;
    const envelope = {
      specversion: '1.0',
      id: eventIdFor(messageId, 0),
      type: draft.type,
      source: instanceId,
      subject: draft.subject,
      time: draft.time,
      datacontenttype: 'application/json',
      data,
      connector: connector.name,
      instance: instanceId,
      vendortype: draft.vendorType ?? n.type,
    } as EventEnvelope;
    return { id: typeof data.id === 'string' ? data.id : newId(), envelope, error: null };
  } catch (error) {
    return { id: newId(), envelope: null, error: (error as Error).message };
  }
}

/**
 * Decides claimed gate requests: asks the approvers, records the decision and announces it.
 * `active` counts decisions in progress (the responder hands requests to the queue beyond its
 * concurrency).
 *
 * @example
 * ```ts
 * const decider = new Decider(hub.host, logger, metrics, approvers, track, 60_000);
 * const verdict = await decider.decide(claimedRow); // { outcome: 'refuse', reason: 'refused', decidedBy: 'crm', ... }
 * ```
 */
export class Decider {
  /** Decisions in progress in this process. */
  active = 0;
  private readonly host: HubHost;
  private readonly logger: pino.Logger;
  private readonly metrics: GateMetrics;
  private readonly approvers: Approvers;
  private readonly track: <T>(p: Promise<T>) => Promise<T>;
  private readonly abandonAfterMs: number;
  /**
   * Decisions given to a vendor whose recording failed because the database was unreachable, by
   * instance and notification (`unrecordedKey`), until they are recorded: the vendor's retry of the
   * same request gets the same answer from here (see {@link unrecorded}).
   */
  private readonly pendingRecords = new Map<string, Verdict>();
  private readonly closing = new AbortController();
  /** When this process last warned of a decision given unrecorded, and how many since went to debug. */
  /** Bounds the warning that a decision went out before it was recorded (logging/repeats.ts). */
  private readonly slowWrites = new RepeatedWarning();

  /**
   * `track` keeps work that outlives the decision (late answers, a decision recorded once the
   * database is back) for `drain()` and shutdown; `abandonAfterMs` is how long past its deadline a
   * decision is still worth recording (the sweep closes the request as abandoned then).
   */
  constructor(
    host: HubHost,
    logger: pino.Logger,
    metrics: GateMetrics,
    approvers: Approvers,
    track: <T>(p: Promise<T>) => Promise<T>,
    abandonAfterMs: number,
  ) {
    this.host = host;
    this.logger = logger;
    this.metrics = metrics;
    this.approvers = approvers;
    this.track = track;
    this.abandonAfterMs = abandonAfterMs;
  }

  /**
   * Logs a decision given to the vendor before its write finished: a warning at most once a minute
   * (a stalled database makes every gate request one), debug lines otherwise, the next warning
   * counting them (`suppressed`), the one way repeated warnings are bounded (logging/repeats.ts).
   */
  private warnSlowWrite(fields: { gate: string; decision: string; reason: string }): void {
    warnRepeated(
      this.logger,
      this.slowWrites.take('slow-write'),
      fields,
      'gate decision given to the vendor before it was recorded: the database is slow',
    );
  }

  /**
   * The decision this process gave for a notification and could not record yet (the database was
   * unreachable): what a vendor's retry of it must get. Undefined when there is none (the stored
   * row then says what was decided).
   */
  unrecorded(instanceId: string, dedupeKey: string): Verdict | undefined {
    return this.pendingRecords.get(unrecordedKey(instanceId, dedupeKey));
  }

  /** Stops trying to record decisions the database refused (shutdown); the sweep closes those rows. */
  close(): void {
    this.closing.abort();
  }

  /**
   * Asks the approvers of a claimed request, records the decision (first writer wins) and
   * announces it. Returns the recorded decision. `approverRows` is the list when it was read ahead;
   * `handedOver` is given by a gate job: the request waits in another process, and the decision
   * continues the trace of the vendor's request (the job's traceparent and tracestate).
   */
  async decide(
    row: q.GateRequestRow,
    options: {
      startedAt?: number;
      approverRows?: Promise<SubscriptionRow[]>;
      handedOver?: { traceparent: string | null; tracestate: string | null };
    } = {},
  ): Promise<Verdict> {
    const { startedAt = performance.now(), approverRows, handedOver } = options;
    return withSpan(
      'switchyard.gate.decide',
      {
        attributes: { 'switchyard.gate': row.id, 'switchyard.instance': row.instance_id },
        ...(handedOver ? { parent: handedOver.traceparent, parentState: handedOver.tracestate } : {}),
      },
      () =>
        this.decideTraced(
          row,
          startedAt,
          approverRows,
          handedOver ? HANDED_OVER_ANSWER_SLACK_MS : UNRECORDED_ANSWER_SLACK_MS,
        ),
    );
  }

  private async decideTraced(
    row: q.GateRequestRow,
    startedAt: number,
    approverRows: Promise<SubscriptionRow[]> | undefined,
    unrecordedSlackMs: number,
  ): Promise<Verdict> {
    this.active++;
    try {
      const policy: GatePolicy = { deadlineMs: row.deadline_ms, defaultOutcome: row.default_outcome };
      const cutoffAt = row.deadline_at.getTime() - recordMargin(row.deadline_ms);
      const answers: (ApproverAnswer & { subscriptionId: string })[] = [];
      const calls: ApproverCall[] = [];
      let verdict: Verdict | undefined;
      let approverCount = 0;
      let error: string | null = null;
      let deciding: ApproverCall | undefined;
      let pending: Promise<unknown> = Promise.resolve();

      if (row.envelope === null || row.type === null || row.event_id === null) {
        verdict = fallback('error', policy);
        error = row.error ?? 'the gate notification could not be turned into an approval request';
      } else {
        const approvers = (await (approverRows ?? this.approvers.list())).filter((sub) =>
          approverMatches(sub, row.type!, row.instance_id),
        );
        approverCount = approvers.length;
        if (approvers.length === 0) {
          verdict = fallback('no_approvers', policy);
        } else {
          const envelope = row.envelope as JsonObject;
          const data = isJsonObject(envelope.data) ? envelope.data : {};
          const body = JSON.stringify({
            ...envelope,
            data: { ...data, deadline: new Date(cutoffAt).toISOString() },
          });
          const timer = sleepUntil(cutoffAt);
          verdict = await new Promise<Verdict>((resolve) => {
            void timer.promise.then(() => resolve(fallback('deadline', policy)));
            pending = Promise.allSettled(
              approvers.map((sub) =>
                this.approvers.call(sub, row.event_id!, body, cutoffAt).then((c) => {
                  calls.push(c);
                  answers.push({ ...c.answer, subscriptionId: sub.id });
                  const v = decide(answers, approvers.length, policy);
                  if (v && !deciding) {
                    deciding = c;
                    resolve(v);
                  }
                }),
              ),
            );
          });
          timer.cancel();
        }
      }

      const decisionMs = performance.now() - startedAt;
      const known = calls.length;
      const instance = await this.host.loadInstance(row.instance_id).catch(() => undefined);
      const connector = instance?.connector;
      const responseStatus =
        connector?.gate && instance
          ? connector.gate.respond(toDecision(verdict), instance.config).status
          : null;
      let recorded = verdict;
      let won = false;
      const values: q.GateDecisionValues = {
        decision: verdict.outcome,
        reason: verdict.reason,
        decidedBy: verdict.decidedBy,
        refusalReason: verdict.refusalReason,
        vendorErrorCode: verdict.vendorErrorCode,
        error,
        responseStatus,
        decisionMs: Math.round(decisionMs * 10) / 10,
        approvers: approverCount,
      };
      const knownAnswers = calls.slice(0, known).map((c) => answerRow(c, false));
      const writing = q.recordDecision(this.host.db, row.id, values, knownAnswers, row.deadline_at);
      // A write still running just before the deadline (a lock on the row or the answers, a slow
      // disk) does not hold the vendor's answer: the vendor gets the approvers' decision, as it does
      // when the database is unreachable, and the write goes on. Before, the vendor got the default
      // at the deadline and the write then recorded the approvers' decision: an answer it never got.
      const slow = sleepUntil(row.deadline_at.getTime() - unrecordedSlackMs);
      const inTime = await Promise.race([
        writing.then(
          () => true,
          () => true,
        ),
        slow.promise.then(() => false),
      ]);
      slow.cancel();
      if (!inTime) {
        this.recordWhenWritten(row, verdict, values, knownAnswers, writing);
        // A request waiting in another process (handed to this one's gate job) hears of the
        // decision now, not from the write's NOTIFY once it ends: that came after the waiting
        // process's deadline, and the vendor got the default.
        void this.host.notify(q.CHANNEL_GATE_DECIDED, q.decidedPayload(row.id, values));
        this.warnSlowWrite({ gate: row.id, decision: verdict.outcome, reason: verdict.reason });
      } else {
        try {
          const r = await writing;
          recorded = (r && verdictOf(r.row)) ?? verdict;
          won = r?.won ?? false;
          // Waiting requests in other processes (this process's own are woken by the caller).
          if (won) void this.host.notify(q.CHANNEL_GATE_DECIDED, q.decidedPayload(row.id, values));
          setSpanAttributes({
            'switchyard.gate.decision': recorded.outcome,
            'switchyard.gate.reason': recorded.reason,
            'switchyard.gate.approvers': approverCount,
          });
        } catch (e) {
          if (isDatabaseUnavailable(e)) {
            // The vendor gets this decision now; recording it waits for the database. Without this,
            // the row stayed undecided, and the vendor's retry once the database was back waited its
            // whole deadline and got the default (approve, after the approver had refused it).
            // Said once per condition and 30 s, naming it (a full disk is no unreachable database),
            // without a stack per decision: the outage's, not the gate's.
            reportDatabaseUnavailable(
              this.logger.child({ gate: row.id }),
              e,
              'gate decisions are given to the vendor and recorded once it is back',
            );
            this.recordLater(
              row,
              verdict,
              values,
              calls.slice(0, known).map((c) => answerRow(c, false)),
            );
          } else this.logger.error({ err: e, gate: row.id }, 'gate decision not recorded');
        }
      }
      if (deciding && won) {
        this.metrics.overhead.observe(Math.max(0, decisionMs - deciding.result.latencyMs) / 1000);
      }
      // Slower approvers (after a refusal or the deadline) are still recorded when they answer.
      void this.track(
        pending.then(async () => {
          const late = calls.slice(known);
          if (late.length > 0)
            await q.insertGateAnswers(
              this.host.db,
              row.id,
              late.map((c) => answerRow(c, true)),
            );
        }),
      ).catch((e) => this.logger.warn({ err: e, gate: row.id }, 'late approver answers not recorded'));
      return recorded;
    } finally {
      this.active--;
    }
  }

  /**
   * Follows a decision the vendor already has while its write (`writing`) still runs: a retry of
   * the request gets it from {@link unrecorded} meanwhile; once written it is announced (if it won),
   * and a write the database refused as unreachable is tried again ({@link recordLater}). Late
   * answers are recorded by the caller as usual.
   */
  private recordWhenWritten(
    row: q.GateRequestRow,
    verdict: Verdict,
    values: q.GateDecisionValues,
    answers: q.NewGateAnswer[],
    writing: ReturnType<typeof q.recordDecision>,
  ): void {
    const key = unrecordedKey(row.instance_id, row.dedupe_key);
    this.pendingRecords.set(key, verdict);
    const forget = () => {
      if (this.pendingRecords.get(key) === verdict) this.pendingRecords.delete(key);
    };
    void this.track(
      writing.then(
        (r) => {
          forget();
          if (r?.won) void this.host.notify(q.CHANNEL_GATE_DECIDED, q.decidedPayload(row.id, values));
          else if (r)
            this.logger.warn(
              { gate: row.id, recorded: r.row.decision_reason, given: verdict.reason },
              'gate decision not recorded: the request was closed first (the vendor had another answer than the row shows)',
            );
        },
        (e) => {
          forget();
          if (isDatabaseUnavailable(e)) this.recordLater(row, verdict, values, answers);
          else this.logger.error({ err: e, gate: row.id }, 'gate decision not recorded');
        },
      ),
    );
  }

  /**
   * Records a decision the vendor already has, once the database takes it again: tries with a
   * growing pause (0.25 s to 5 s) until it is recorded, another writer decided the row first (a
   * vendor retry's deadline in another process, the sweep), `abandonAfterMs` past the deadline
   * has passed, or the decider closes. Until then {@link unrecorded} answers the vendor's retries.
   */
  private recordLater(
    row: q.GateRequestRow,
    verdict: Verdict,
    values: q.GateDecisionValues,
    answers: q.NewGateAnswer[],
  ): void {
    const key = unrecordedKey(row.instance_id, row.dedupe_key);
    this.pendingRecords.set(key, verdict);
    const giveUpAt = row.deadline_at.getTime() + this.abandonAfterMs;
    const signal = this.closing.signal;
    const attempt = async (): Promise<void> => {
      for (let pause = 250; Date.now() < giveUpAt && !signal.aborted; pause = Math.min(pause * 2, 5000)) {
        await sleep(pause, undefined, { signal }).catch(() => {});
        if (signal.aborted) return;
        try {
          let v = values;
          if (v.responseStatus === null) {
            // The instance could not be read either when the vendor was answered.
            const instance = await this.host.loadInstance(row.instance_id);
            const status = instance?.connector.gate?.respond(toDecision(verdict), instance.config).status;
            if (status !== undefined) v = { ...v, responseStatus: status };
          }
          const r = await q.recordDecision(this.host.db, row.id, v, answers, row.deadline_at);
          if (r?.won) {
            void this.host.notify(q.CHANNEL_GATE_DECIDED, q.decidedPayload(row.id, v));
            this.logger.info({ gate: row.id }, 'gate decision recorded now that the database is back');
          } else if (r) {
            this.logger.warn(
              { gate: row.id, recorded: r.row.decision_reason, given: verdict.reason },
              'gate decision not recorded: the request was closed first (the vendor had another answer than the row shows)',
            );
          }
          return;
        } catch (e) {
          if (!isDatabaseUnavailable(e)) {
            this.logger.error({ err: e, gate: row.id }, 'gate decision not recorded');
            return;
          }
        }
      }
    };
    void this.track(attempt()).finally(() => {
      if (this.pendingRecords.get(key) === verdict) this.pendingRecords.delete(key);
    });
  }
}

/** The key of {@link Decider.unrecorded}: an instance and one of its notifications. */
function unrecordedKey(instanceId: string, dedupeKey: string): string {
  return `${instanceId}\u0000${dedupeKey}`;
}
