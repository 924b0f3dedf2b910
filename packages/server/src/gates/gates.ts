/**
 * Approval gates: a vendor asks synchronously whether a booking (or a move) may happen, and the hub
 * answers by asking its approver subscriptions. See docs/gates.md for the protocol and the design.
 *
 * Where the time goes: ingest stores the gate notification (as it stores everything), then calls
 * the `gateResponder` hook. The responder normalizes the notification into its approval request,
 * inserts a `gate_requests` row and either decides it in this process at once (the row is inserted
 * already claimed, so no other worker can take it and no job is needed) or, when this process does
 * not decide gates (an HTTP-only process) or is full, sends a pg-boss `switchyard-gate` job that
 * any worker process picks up at once (queue NOTIFY). The waiting vendor request is woken by the
 * local decision directly, or by a NOTIFY carrying the decision from another process; a timer at
 * the deadline has the last word, so the vendor is answered in time even if no worker runs.
 */
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  type Connector,
  type EventEnvelope,
  type GateDecision,
  type InboundResponse,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  SwitchyardError,
  type VendorNotification,
} from '@switchyard/core';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import type pino from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { type PostWebhookResult, postWebhook } from '../delivery/http-post.ts';
import { signPayload } from '../delivery/sign.ts';
import { createVendorHttp } from '../delivery/vendor-http.ts';
import type { Page } from '../pipeline/api-types.ts';
import { BOSS_TIMERS, NOTIFY_BACKSTOP_SECONDS, SCHEDULED_POLL_SECONDS } from '../pipeline/boss.ts';
import { activeSecrets } from '../pipeline/deliver.ts';
import type { Hub } from '../pipeline/hub.ts';
import { eventIdFor } from '../pipeline/ids.ts';
import type { GateResponder } from '../pipeline/ingest.ts';
import type { AfterNormalize } from '../pipeline/normalize.ts';
import { connectorLogger, type Runtime } from '../pipeline/runtime.ts';
import { aliasStore, stateStore } from '../pipeline/stores.ts';
import { newId } from '../storage/db.ts';
import type { SubscriptionRow } from '../storage/queries.ts';
import {
  type ApproverAnswer,
  approverMatches,
  decide,
  fallback,
  type GatePolicy,
  readAnswer,
  recordMargin,
  resolvePolicy,
  type Verdict,
} from './protocol.ts';
import * as q from './queries.ts';
import { type GateListQuery, type GateRequest, type GateRequestDetail, getGate, listGates } from './views.ts';

/** The pg-boss queue of gate jobs (schema `switchyard_queue`, shared with the hub's own queues). */
export const GATE_QUEUE = 'switchyard-gate';
/** The pg-boss queue of the scheduled gate retention purge (on the hub's retention cron). */
export const GATE_RETENTION_QUEUE = 'switchyard-gate-retention';
/** How long after an answered gate request a booking may still be matched to it. */
export const DEFAULT_MATCH_WINDOW_MS = 24 * 3600 * 1000;

/** Options of {@link createGates}. */
export interface GatesOptions {
  /** Decide gate requests in this process (call approvers, work gate jobs). Default true. */
  worker?: boolean;
  /** Gate requests decided at once in this process; beyond it, they go to the queue. Default 64. */
  concurrency?: number;
  /** How long after a gate request the booking that follows may be matched to it. Default 24 h. */
  matchWindowMs?: number;
  /** Where the gate metrics are registered. Default: a registry of their own (`gates.metrics`). */
  registry?: Registry;
  /**
   * A decisions counter to increment instead of creating `switchyard_gate_decisions_total` (the
   * HTTP layer's `metrics.gateDecisions`, labels instance / outcome / reason).
   */
  decisionCounter?: Counter<'instance' | 'outcome' | 'reason'>;
  /** Default: the hub's logger. */
  logger?: pino.Logger;
  /**
   * How long this process reuses the approver subscription list it read, ms. A change to an
   * approver subscription drops it at once (NOTIFY); the time bounds staleness should a
   * notification be missed. 0 reads the list for every request. Default 1000.
   */
  approverCacheMs?: number;
  /**
   * How long past its deadline a request may stay undecided before the sweep closes it as
   * `abandoned` (its deciding process died). Default 60 s.
   */
  abandonAfterMs?: number;
  /** How often a worker process sweeps abandoned requests, ms; 0 never (call `sweep()`). Default 30 s. */
  sweepIntervalMs?: number;
}

/** What one {@link Gates.purge} removed. */
export interface GatePurgeResult {
  requests: number;
  answers: number;
}

interface Attached {
  db: Kysely<unknown>;
  rt: Runtime;
  logger: pino.Logger;
  boss: PgBoss;
  listener: DecisionListener;
  http: ReturnType<typeof createVendorHttp>;
}

type Waiter = (verdict: Verdict) => void;

function toDecision(v: Verdict): GateDecision {
  return {
    outcome: v.outcome,
    reason: v.reason === 'refused' && v.refusalReason ? v.refusalReason : v.reason,
    ...(v.vendorErrorCode !== null ? { vendorErrorCode: v.vendorErrorCode } : {}),
  };
}

function verdictOf(row: q.GateRequestRow): Verdict | undefined {
  if (row.decision === null || row.decision_reason === null) return undefined;
  return {
    outcome: row.decision,
    reason: row.decision_reason,
    decidedBy: row.decided_by,
    refusalReason: row.refusal_reason,
    vendorErrorCode: row.vendor_error_code,
  };
}

/** The waiting request's own deadline: the vendor must have its answer by then. */
function sleepUntil(at: number): { promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, at - Date.now()));
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * One LISTEN connection for decisions made in other processes. The payload carries the decision,
 * so waking a waiting request costs no query. Reconnects on its own; while it is down, waiting
 * requests still end at their deadline. It also hears approver subscription changes, which drop
 * the cached approver list; `listening` says whether such news can arrive at all.
 */
class DecisionListener {
  private readonly url: string;
  private readonly onDecision: (id: string, verdict: Verdict) => void;
  private readonly onApproversChanged: () => void;
  private readonly logger: pino.Logger;
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    url: string,
    onDecision: (id: string, verdict: Verdict) => void,
    onApproversChanged: () => void,
    logger: pino.Logger,
  ) {
    this.url = url;
    this.onDecision = onDecision;
    this.onApproversChanged = onApproversChanged;
    this.logger = logger;
  }

  /** True while changes to approvers are heard (a cached approver list may be trusted). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => {
      if (msg.channel === q.CHANNEL_GATE_APPROVERS) {
        this.onApproversChanged();
        return;
      }
      if (!msg.payload) return;
      try {
        const p = JSON.parse(msg.payload) as { id: string; v: Verdict };
        this.onDecision(p.id, p.v);
      } catch {
        // Not ours (someone NOTIFYing the channel by hand): nothing waits for it.
      }
    });
    const lost = () => this.reconnectLater(client);
    client.on('error', (error) => {
      this.logger.warn(
        { err: error },
        'gate LISTEN connection lost; waiting requests rely on their deadline',
      );
      lost();
    });
    client.on('end', lost);
    try {
      await client.connect();
      await client.query(
        `LISTEN ${client.escapeIdentifier(q.CHANNEL_GATE_DECIDED)}; LISTEN ${client.escapeIdentifier(q.CHANNEL_GATE_APPROVERS)}`,
      );
      this.client = client;
      // Changes made while nobody listened were missed.
      this.onApproversChanged();
    } catch (error) {
      this.logger.warn({ err: error }, 'gate LISTEN connection failed; retrying');
      lost();
    }
  }

  private reconnectLater(client: pg.Client): void {
    if (this.stopped || this.retry) return;
    if (this.client === client) this.client = undefined;
    this.onApproversChanged();
    client.end().catch(() => {});
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.start();
    }, 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}

/**
 * Creates the gate machinery. Wire its `hooks` into `createHub`, then `start(hub)` it.
 *
 * @example
 * ```ts
 * const gates = createGates({ registry: metricsRegistry });
 * const hub = await createHub({ databaseUrl, connectors, secretKey, ...gates.hooks });
 * await hub.start();
 * await gates.start(hub);
 * // POST /hooks/dp-main with a slot-booking now waits for the approvers' decision
 * const { items } = await gates.list({ instanceId: 'dp-main', limit: 20 });
 * await gates.stop();
 * await hub.stop();
 * ```
 */
export function createGates(options: GatesOptions = {}) {
  const isWorker = options.worker ?? true;
  const concurrency = options.concurrency ?? 64;
  const matchWindowMs = options.matchWindowMs ?? DEFAULT_MATCH_WINDOW_MS;
  const registry = options.registry ?? new Registry();
  const approverCacheMs = options.approverCacheMs ?? 1000;
  const abandonAfterMs = options.abandonAfterMs ?? 60_000;
  const sweepIntervalMs = options.sweepIntervalMs ?? 30_000;
  const workerId = `${hostname()}/${process.pid}/${newId().slice(0, 8)}`;
  const waiters = new Map<string, Set<Waiter>>();
  const running = new Set<Promise<unknown>>();
  let active = 0;
  let state: Attached | undefined;
  let starting: Promise<void> | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;
  // One read shared by every request within approverCacheMs (and by concurrent requests).
  let approverCache: { at: number; rows: Promise<SubscriptionRow[]> } | undefined;

  const metrics = {
    decisions:
      options.decisionCounter ??
      new Counter({
        name: 'switchyard_gate_decisions_total',
        help: 'Gate requests answered, by instance, outcome and reason.',
        labelNames: ['instance', 'outcome', 'reason'],
        registers: [registry],
      }),
    duration: new Histogram({
      name: 'switchyard_gate_duration_seconds',
      help: 'Time the vendor waited for a gate answer, from the request reaching the gate machinery.',
      labelNames: ['instance'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    approver: new Histogram({
      name: 'switchyard_gate_approver_seconds',
      help: "An approver's answer time, by subscription and outcome.",
      labelNames: ['subscription', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    overhead: new Histogram({
      name: 'switchyard_gate_overhead_seconds',
      help: 'Time the hub added to a decision made by approvers: decision time minus the deciding answer time.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [registry],
    }),
    matched: new Counter({
      name: 'switchyard_gate_bookings_matched_total',
      help: 'Bookings matched to the gate request that preceded them.',
      labelNames: ['instance'],
      registers: [registry],
    }),
    abandoned: new Counter({
      name: 'switchyard_gate_abandoned_total',
      help: 'Gate requests left undecided by a process that stopped, closed by the sweep with the default.',
      labelNames: ['instance', 'outcome'],
      registers: [registry],
    }),
  };

  function forgetApprovers(): void {
    approverCache = undefined;
  }

  /**
   * The approver subscriptions, from the per-process cache when it can be trusted: only while the
   * LISTEN connection is up, since that is what hears a subscription change (migration 5's trigger).
   */
  function approverList(s: Attached): Promise<SubscriptionRow[]> {
    const now = performance.now();
    const cached = approverCache;
    if (cached && s.listener.listening && now - cached.at < approverCacheMs) return cached.rows;
    const rows = q.listApprovers(s.db);
    if (approverCacheMs > 0) {
      const entry = { at: now, rows };
      approverCache = entry;
      rows.catch(() => {
        if (approverCache === entry) approverCache = undefined;
      });
    }
    return rows;
  }

  function track<T>(p: Promise<T>): Promise<T> {
    running.add(p);
    void p.finally(() => running.delete(p)).catch(() => {});
    return p;
  }

  function wakeWaiters(id: string, verdict: Verdict): void {
    const set = waiters.get(id);
    if (!set) return;
    waiters.delete(id);
    for (const w of set) w(verdict);
  }

  /** Resolves with the decision of `id` when it is stored (here or in another process). */
  function waitFor(id: string): { promise: Promise<Verdict>; cancel(): void } {
    let waiter: Waiter | undefined;
    const promise = new Promise<Verdict>((resolve) => {
      waiter = resolve;
      const set = waiters.get(id) ?? new Set<Waiter>();
      waiters.set(id, set);
      set.add(resolve);
    });
    return {
      promise,
      cancel() {
        const set = waiters.get(id);
        if (!set || !waiter) return;
        set.delete(waiter);
        if (set.size === 0) waiters.delete(id);
      },
    };
  }

  async function callApprover(
    s: Attached,
    sub: SubscriptionRow,
    eventId: string,
    body: string,
    cutoffAt: number,
  ): Promise<{ sub: SubscriptionRow; startedAt: Date; result: PostWebhookResult; answer: ApproverAnswer }> {
    const startedAt = new Date();
    // The call is not cut at the deadline: the decision timer answers the vendor then, and an answer
    // that comes later (within the subscription's own timeout) is still recorded as what the
    // approver said, after the decision, without changing the vendor's answer.
    const timeoutMs = sub.timeout_ms;
    let result: PostWebhookResult;
    if (cutoffAt - Date.now() <= 0) {
      result = { ok: false, latencyMs: 0, error: 'no time left before the deadline', errorKind: 'timeout' };
    } else {
      let headers: Record<string, string>;
      try {
        const secrets = activeSecrets(s.rt, sub);
        headers =
          secrets.length > 0
            ? { ...signPayload({ id: eventId, timestamp: startedAt, body, secrets }) }
            : { 'webhook-id': eventId, 'webhook-timestamp': String(Math.floor(startedAt.getTime() / 1000)) };
      } catch (error) {
        result = {
          ok: false,
          latencyMs: 0,
          error: `signing failed: ${(error as Error).message}`,
          errorKind: 'ssrf',
        };
        return { sub, startedAt, result, answer: readAnswer(result) };
      }
      result = await postWebhook({
        url: sub.url ?? '',
        headers: { ...headers, 'content-type': sub.content_type },
        body,
        timeoutMs,
        maxResponseBytes: s.rt.options.maxResponseSnippetBytes,
        allowPrivate: sub.allow_private_addresses,
        allowLoopback: sub.allow_private_addresses,
      });
    }
    const answer = readAnswer(result);
    metrics.approver.observe({ subscription: sub.id, outcome: answer.outcome }, result.latencyMs / 1000);
    return { sub, startedAt, result, answer };
  }

  function answerRow(c: Awaited<ReturnType<typeof callApprover>>, afterDecision: boolean): q.NewGateAnswer {
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

  /**
   * Asks the approvers of a claimed request, records the decision (first writer wins) and
   * announces it. Returns the recorded decision.
   */
  async function decideRequest(
    s: Attached,
    row: q.GateRequestRow,
    startedAt = performance.now(),
    approverRows?: Promise<SubscriptionRow[]>,
  ): Promise<Verdict> {
    active++;
    try {
      const policy: GatePolicy = { deadlineMs: row.deadline_ms, defaultOutcome: row.default_outcome };
      const cutoffAt = row.deadline_at.getTime() - recordMargin(row.deadline_ms);
      const answers: (ApproverAnswer & { subscriptionId: string })[] = [];
      const calls: Awaited<ReturnType<typeof callApprover>>[] = [];
      let verdict: Verdict | undefined;
      let approverCount = 0;
      let error: string | null = null;
      let deciding: Awaited<ReturnType<typeof callApprover>> | undefined;
      let pending: Promise<unknown> = Promise.resolve();

      if (row.envelope === null || row.type === null || row.event_id === null) {
        verdict = fallback('error', policy);
        error = row.error ?? 'the gate notification could not be turned into an approval request';
      } else {
        const approvers = (await (approverRows ?? approverList(s))).filter((sub) =>
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
                callApprover(s, sub, row.event_id!, body, cutoffAt).then((c) => {
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
      const instance = await s.rt.loadInstance(row.instance_id).catch(() => undefined);
      const connector = instance?.connector;
      const responseStatus =
        connector?.gate && instance
          ? connector.gate.respond(toDecision(verdict), instance.config).status
          : null;
      let recorded = verdict;
      let won = false;
      try {
        const r = await q.recordDecision(
          s.db,
          row.id,
          {
            decision: verdict.outcome,
            reason: verdict.reason,
            decidedBy: verdict.decidedBy,
            refusalReason: verdict.refusalReason,
            vendorErrorCode: verdict.vendorErrorCode,
            error,
            responseStatus,
            decisionMs: Math.round(decisionMs * 10) / 10,
            approvers: approverCount,
          },
          calls.slice(0, known).map((c) => answerRow(c, false)),
          (v) => JSON.stringify({ id: row.id, v }),
        );
        recorded = (r && verdictOf(r.row)) ?? verdict;
        won = r?.won ?? false;
      } catch (e) {
        s.logger.error({ err: e, gate: row.id }, 'gate decision not recorded');
      }
      if (deciding && won) {
        metrics.overhead.observe(Math.max(0, decisionMs - deciding.result.latencyMs) / 1000);
      }
      // Slower approvers (after a refusal or the deadline) are still recorded when they answer.
      void track(
        pending.then(async () => {
          const late = calls.slice(known);
          if (late.length > 0)
            await q.insertGateAnswers(
              s.db,
              row.id,
              late.map((c) => answerRow(c, true)),
            );
        }),
      ).catch((e) => s.logger.warn({ err: e, gate: row.id }, 'late approver answers not recorded'));
      return recorded;
    } finally {
      active--;
    }
  }

  async function approvalRequest(
    s: Attached,
    connector: Connector,
    instanceId: string,
    config: Record<string, unknown>,
    n: VendorNotification,
    messageId: string | null,
  ): Promise<{ id: string; envelope: EventEnvelope | null; error: string | null }> {
    if (messageId === null)
      return { id: newId(), envelope: null, error: 'the gate notification was not stored' };
    try {
      const result = await connector.normalize(n, {
        instanceId,
        config,
        http: s.http,
        aliases: aliasStore(s.db, instanceId),
        state: stateStore(s.db, instanceId),
        logger: connectorLogger(s.logger.child({ instance: instanceId, vendorType: n.type })),
        attempt: 1,
        // One synchronous try: nobody retries while the vendor waits.
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
        // The id the normalize worker gives the same event: approvers and feed readers see one id.
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

  /** Decides one gate notification; resolves with the decision the vendor gets. */
  async function gateOne(
    s: Attached,
    connector: Connector,
    instanceId: string,
    config: Record<string, unknown>,
    policy: GatePolicy,
    n: VendorNotification,
    messageId: string | null,
    t0: number,
    answerBy: number,
  ): Promise<Verdict> {
    const hard = sleepUntil(answerBy);
    let wait: { promise: Promise<Verdict>; cancel(): void } | undefined;
    let id: string | undefined;
    // Read while the connector normalizes: the approver list does not depend on the request.
    const approversEarly = isWorker ? approverList(s) : undefined;
    approversEarly?.catch(() => {});
    const work = (async (): Promise<Verdict> => {
      const request = await approvalRequest(s, connector, instanceId, config, n, messageId);
      id = request.id;
      const local = isWorker && active < concurrency;
      const row = await q.insertGateRequest(s.db, {
        id: request.id,
        instanceId,
        connector: connector.name,
        inboundMessageId: messageId,
        dedupeKey: n.dedupeKey,
        vendorType: n.type,
        type: request.envelope?.type ?? null,
        eventId: request.envelope?.id ?? null,
        envelope: (request.envelope as unknown as JsonValue) ?? null,
        matchKey: connector.gate?.matchKey(n) ?? null,
        deadlineMs: policy.deadlineMs,
        defaultOutcome: policy.defaultOutcome,
        deadlineAt: new Date(answerBy),
        receivedAt: new Date(Date.now() - (performance.now() - t0)),
        claimedBy: local ? workerId : null,
      });
      if (!row) {
        // The vendor asked again (same notification): answer what was decided, or wait for it.
        const existing = await q.findGateRequest(s.db, instanceId, n.dedupeKey);
        if (!existing) return fallback('error', policy);
        id = existing.id;
        const decided = verdictOf(existing);
        if (decided) return decided;
        wait = waitFor(existing.id);
        return wait.promise;
      }
      if (request.error !== null) {
        row.error = request.error;
        s.logger.warn(
          { gate: row.id, instance: instanceId, reason: request.error },
          'gate request not understood',
        );
      }
      if (local) return track(decideRequest(s, row, t0, approversEarly));
      wait = waitFor(row.id);
      await s.boss.send(GATE_QUEUE, { id: row.id }, { retryLimit: 0, expireInSeconds: 60 });
      return wait.promise;
    })();
    try {
      const winner = await Promise.race([
        work.then((v) => ({ v, late: false })),
        hard.promise.then(() => ({ v: undefined, late: true })),
      ]);
      if (!winner.late && winner.v) return winner.v;
      const v = fallback('deadline', policy);
      // Nothing decided in time: the default goes out now; recording it must not delay the answer.
      if (id !== undefined) {
        const gateId = id;
        const responseStatus = connector.gate?.respond(toDecision(v), config as never).status ?? null;
        void track(
          q.decideGateRequest(s.db, gateId, {
            decision: v.outcome,
            reason: v.reason,
            decidedBy: null,
            refusalReason: null,
            vendorErrorCode: null,
            error: null,
            responseStatus,
            decisionMs: Math.round((performance.now() - t0) * 10) / 10,
            approvers: null,
          }),
        ).catch((e) => s.logger.warn({ err: e, gate: gateId }, 'gate deadline not recorded'));
      }
      work.catch((e) =>
        s.logger.warn({ err: e, instance: instanceId }, 'gate request failed after its deadline'),
      );
      return v;
    } catch (error) {
      s.logger.error({ err: error, instance: instanceId }, 'gate request failed; answering the default');
      return fallback('error', policy);
    } finally {
      hard.cancel();
      wait?.cancel();
    }
  }

  const gateResponder: GateResponder = async (gate) => {
    const t0 = performance.now();
    const s = state;
    if (!s) {
      // Only between createHub and gates.start: ingest's own acknowledgement goes out.
      options.logger?.warn({ instance: gate.instanceId }, 'gate request before the gates started');
      return undefined;
    }
    const connector = s.rt.connectors.get(gate.connector);
    const gateSpec = connector?.gate;
    if (!connector || !gateSpec) return undefined;
    let policy: GatePolicy;
    try {
      policy = resolvePolicy((await s.rt.loadInstance(gate.instanceId))?.row.gate);
    } catch {
      policy = resolvePolicy(null);
    }
    const answerBy = Date.now() + policy.deadlineMs;
    // ingest passes ids only for notifications it stored now; a vendor retry's are looked up.
    let ids: (string | null)[];
    if (gate.messageIds.length === gate.notifications.length) ids = gate.messageIds;
    else {
      const found = await q
        .inboundIdsByDedupeKey(
          s.db,
          gate.instanceId,
          gate.notifications.map((n) => n.dedupeKey),
        )
        .catch(() => new Map<string, string>());
      ids = gate.notifications.map((n) => found.get(n.dedupeKey) ?? null);
    }
    const verdicts = await Promise.all(
      gate.notifications.map((n, i) =>
        gateOne(s, connector, gate.instanceId, gate.config, policy, n, ids[i] ?? null, t0, answerBy),
      ),
    );
    const verdict = verdicts.find((v) => v.outcome === 'refuse') ?? verdicts[0] ?? fallback('error', policy);
    metrics.decisions.inc({ instance: gate.instanceId, outcome: verdict.outcome, reason: verdict.reason });
    metrics.duration.observe({ instance: gate.instanceId }, (performance.now() - t0) / 1000);
    return gateSpec.respond(toDecision(verdict), gate.config as never) satisfies InboundResponse;
  };

  const afterNormalize: AfterNormalize = async (normalized) => {
    const s = state;
    if (!s || normalized.notification.gate) return;
    const connector = s.rt.connectors.get(normalized.connector);
    const key = connector?.gate?.matchKey(normalized.notification);
    if (!key) return;
    const event = normalized.events[0];
    const matched = await q.matchBooking(s.db, {
      instanceId: normalized.instanceId,
      matchKey: key,
      inboundId: normalized.inboundId,
      vendorType: normalized.notification.type,
      eventId: event?.id ?? null,
      subject: event?.subject ?? null,
      windowMs: matchWindowMs,
    });
    if (matched) {
      metrics.matched.inc({ instance: normalized.instanceId });
      s.logger.debug({ gate: matched, inbound: normalized.inboundId }, 'booking matched to its gate request');
    }
  };

  async function sweepWith(s: Attached): Promise<number> {
    const batch = s.rt.options.retention.batchSize;
    const error = `abandoned: still undecided ${abandonAfterMs} ms after its deadline (the process deciding it stopped)`;
    let total = 0;
    for (;;) {
      const closed = await q.closeAbandoned(s.db, abandonAfterMs, batch, error);
      for (const g of closed) metrics.abandoned.inc({ instance: g.instance_id, outcome: g.decision });
      if (closed.length > 0) {
        s.logger.warn({ gates: closed.map((g) => g.id) }, 'abandoned gate requests closed with the default');
      }
      total += closed.length;
      if (closed.length < batch) return total;
    }
  }

  async function purgeWith(s: Attached, now: Date): Promise<GatePurgeResult> {
    const r = s.rt.options.retention;
    const before = new Date(now.getTime() - r.eventsMs);
    // Short statements, each its own transaction: a big purge never holds long locks.
    const loop = async (step: () => Promise<number>) => {
      let total = 0;
      for (;;) {
        const n = await step();
        total += n;
        if (n < r.batchSize) return total;
      }
    };
    const answers = await loop(() => q.purgeGateAnswers(s.db, before, r.batchSize));
    const requests = await loop(() => q.purgeGateRequests(s.db, before, r.batchSize));
    return { requests, answers };
  }

  function scheduleSweep(s: Attached): void {
    if (!isWorker || sweepIntervalMs <= 0) return;
    sweepTimer = setInterval(() => {
      // One sweep at a time per process; other processes skip the rows this one holds.
      if (sweeping || state !== s) return;
      sweeping = track(sweepWith(s));
      sweeping
        .catch((e) => s.logger.warn({ err: e }, 'gate sweep failed'))
        .finally(() => {
          sweeping = undefined;
        });
    }, sweepIntervalMs);
    sweepTimer.unref();
  }

  function attached(): Attached {
    if (!state) throw new SwitchyardError('SY_PIPELINE_CONFLICT', 'the gates are not started');
    return state;
  }

  async function startWith(hub: Hub): Promise<void> {
    const rt = hub.internals.runtime;
    const logger = (options.logger ?? rt.logger).child({ component: 'gates' });
    const boss = new PgBoss({
      connectionString: rt.databaseUrl,
      schema: 'switchyard_queue',
      max: 2,
      useListenNotify: isWorker,
      ...BOSS_TIMERS,
    });
    boss.on('error', (error) => logger.warn({ err: error }, 'pg-boss error (gates)'));
    await boss.start();
    await boss.createQueue(GATE_QUEUE, { notify: true, retryLimit: 0, expireInSeconds: 60 });
    const listener = new DecisionListener(rt.databaseUrl, wakeWaiters, forgetApprovers, logger);
    await listener.start();
    const s: Attached = {
      db: rt.db,
      rt,
      logger,
      boss,
      listener,
      http: createVendorHttp({ logger: connectorLogger(logger) }),
    };
    if (isWorker) {
      await boss.work<{ id: string }>(
        GATE_QUEUE,
        {
          batchSize: 16,
          pollingIntervalSeconds: 0.5,
          notifyPollingIntervalSeconds: NOTIFY_BACKSTOP_SECONDS,
          burstWhenBatchFull: true,
        },
        async (jobs) => {
          // A job only hands the request over: the decision runs on (tracked) while the worker
          // fetches the next ones, so one slow approver never delays other requests.
          for (const job of jobs) {
            const row = await q.claimGateRequest(s.db, job.data.id, workerId);
            if (!row) continue;
            void track(decideRequest(s, row)).catch((e) =>
              logger.error({ err: e, gate: row.id }, 'gate job failed'),
            );
          }
        },
      );
      const cron = rt.options.retention.cron;
      if (cron !== false) {
        // The hub's own retention job does not know these tables: the same cron, our own queue
        // (pg-boss hands each tick to one worker process).
        await boss.createQueue(GATE_RETENTION_QUEUE);
        await boss.schedule(GATE_RETENTION_QUEUE, cron);
        await boss.work(
          GATE_RETENTION_QUEUE,
          { pollingIntervalSeconds: SCHEDULED_POLL_SECONDS },
          async () => {
            const purged = await purgeWith(s, new Date());
            logger.info({ ...purged }, 'gate retention purge');
          },
        );
      }
    }
    state = s;
    scheduleSweep(s);
  }

  return {
    /** Pass these to `createHub` (`{ ...config, ...gates.hooks }`). */
    hooks: { gateResponder, afterNormalize },
    /** The Prometheus registry holding the gate metrics. */
    metrics: registry,
    /** This process's worker id (recorded as `claimed_by`). */
    workerId,

    /**
     * Attaches to a created hub: opens the decision listener and, in a worker process, works gate
     * jobs. Until it resolves, gate requests get the instance's default answer.
     */
    start(hub: Hub): Promise<void> {
      starting ??= startWith(hub);
      return starting;
    },

    /** Stops working jobs, waits for decisions in progress, closes connections. */
    async stop(): Promise<void> {
      const s = state;
      state = undefined;
      clearInterval(sweepTimer);
      sweepTimer = undefined;
      if (!s) return;
      await s.boss.stop({ graceful: true, timeout: 5000 }).catch(() => {});
      await Promise.allSettled([...running]);
      await s.listener.stop();
      starting = undefined;
    },

    /**
     * Lists gate requests, newest first.
     *
     * @example
     * ```ts
     * const { items, nextCursor } = await gates.list({ instanceId: 'dp-main', decision: 'refuse', limit: 20 });
     * ```
     */
    async list(f: GateListQuery = {}): Promise<Page<GateRequest>> {
      return listGates(attached().db, f, matchWindowMs);
    },

    /**
     * One gate request with the approval request sent and every approver's answer.
     *
     * @example
     * ```ts
     * const g = await gates.get(id); // { decision: 'refuse', reason: 'refused', decidedBy: 'crm', answers: [...] }
     * ```
     */
    async get(id: string): Promise<GateRequestDetail> {
      return getGate(attached().db, id, matchWindowMs);
    },

    /**
     * Deletes gate requests (with their answers) received longer ago than the events retention
     * period (`options.retention.eventsMs` of the hub), in batches. A worker process runs it on the
     * hub's retention cron.
     *
     * @example
     * ```ts
     * const { requests, answers } = await gates.purge(); // { requests: 120, answers: 130 }
     * ```
     */
    async purge(now = new Date()): Promise<GatePurgeResult> {
      return purgeWith(attached(), now);
    },

    /**
     * Closes requests left undecided `abandonAfterMs` past their deadline (their process died) as
     * the configured default with reason `abandoned`. Worker processes run it every
     * `sweepIntervalMs`. Returns how many it closed.
     *
     * @example
     * ```ts
     * const closed = await gates.sweep(); // 0 on a healthy hub
     * ```
     */
    async sweep(): Promise<number> {
      return sweepWith(attached());
    },

    /** Waits for decisions and late answers still being recorded (tests, shutdown). */
    async drain(): Promise<void> {
      await Promise.allSettled([...running]);
    },
  };
}

/** The gate machinery of one process (what {@link createGates} returns). */
export type Gates = ReturnType<typeof createGates>;
