import {
  type EventEnvelope,
  isConnectorError,
  type JsonObject,
  type JsonValue,
  type NormalizeResult,
  type ValidationIssue,
  type VendorHttp,
  type VendorNotification,
  validateEvent,
} from '@switchyard/core';
import { type DeliveryWork, leasedDeliveryWork } from '../deliveries/store.ts';
import { jittered } from '../delivery/retry-schedule.ts';
import { eventIdFor } from '../events/ids.ts';
import * as eventStore from '../events/store.ts';
import type { AfterNormalize, MarkEchoes } from '../host/hooks.ts';
import * as inboundStore from '../inbound/store.ts';
import * as instanceStore from '../instances/store.ts';
import { lazyChild } from '../logging/lazy-child.ts';
import { connectorLogger } from '../logging/logger.ts';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { GroupCommit } from '../storage/group-commit.ts';
import { CHANNEL_FEED } from '../storage/queues.ts';
import { retryingSubscriptionGone } from '../storage/subscription-gone.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import {
  failSpan,
  SpanKind,
  setSpanAttributes,
  startSpan,
  traceparentOf,
  tracestateOf,
  withSpan,
} from '../telemetry/tracing.ts';
import type { InboundLeaser, InboundReservation } from './ingest.ts';
import type { LeaseKeeper } from './leases.ts';
import { INGEST_FIRST_REST, INGEST_FIRST_REST_MAX_MS } from './pressure.ts';
import type { Runtime } from './shared.ts';
import { SlotLedger } from './slots.ts';
import {
  aliasStore,
  type FreshHubIds,
  normalizeStateStore,
  type Proposal,
  type ProposedAliases,
  proposalKey,
  rememberAliases,
  type StateWrites,
} from './stores.ts';
import type { TickResult } from './worker-loop.ts';

/** Rebuilds the notification the connector produced from its stored row. */
export function notificationOf(row: inboundStore.InboundRow): VendorNotification {
  return {
    type: row.vendor_type,
    dedupeKey: row.dedupe_key,
    ...(row.ordering_key !== null ? { orderingKey: row.ordering_key } : {}),
    ...(row.occurred_at !== null ? { occurredAt: row.occurred_at } : {}),
    payload: row.payload,
    ...(row.gate ? { gate: true } : {}),
    ...(row.meta !== null ? { meta: row.meta as JsonObject } : {}),
  };
}

function errorJson(error: unknown): JsonObject {
  if (isConnectorError(error)) {
    return { code: error.code, kind: error.kind, message: error.message };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/**
 * The normalize worker: claims stored inbound messages, runs the connector, validates, stores
 * events and fans out deliveries, all of the storing in one transaction with the status change.
 */
export class Normalizer implements InboundLeaser {
  private readonly rt: Runtime;
  private readonly http: VendorHttp;
  private readonly afterNormalize: AfterNormalize | undefined;
  private readonly markEchoes: MarkEchoes | undefined;
  private readonly committer: NormalizedWriter;
  private readonly leases: LeaseKeeper;
  private readonly running = new Set<Promise<unknown>>();
  /** Its slots: claimed runs and the messages ingest statements lease for it. */
  private readonly slots: SlotLedger;
  /**
   * Wake-ups that announced stored messages so far ({@link arrived}): a leased run's end wakes the
   * loop only if one came since its statement. Counting the loop's passes instead fed itself: every
   * end's wake-up began a pass, which made the next leased run's end wake the loop again, an empty
   * claim each time (0.34 claims per event at 200/s, against 0 for the messages it found).
   */
  private arrivals = 0;
  /**
   * While pushes queue, no run starts before this moment (`performance.now()`): each run ends in a
   * rest {@link INGEST_FIRST_REST} times as long as the run took.
   */
  private restUntil = 0;
  /**
   * When this process last recorded a retried normalization as its instance's last error
   * (`performance.now()`, by instance): at most one write per {@link RETRY_ERROR_EVERY_MS}, so a
   * vendor API down through a backlog is one row updated now and then, not one per retry.
   */
  private readonly retryErrorAt = new Map<string, number>();
  /**
   * "normalization will be retried" and "normalized output is invalid", bounded per instance: a
   * vendor API down through a backlog (a connector bug) says it for every message and attempt.
   */
  private readonly retryWarning = new RepeatedWarning();
  private readonly invalidWarning = new RepeatedWarning();

  /** `deliverer`: this process's deliver worker, which attempts what the commits lease for it. */
  constructor(
    rt: Runtime,
    http: VendorHttp,
    leases: LeaseKeeper,
    afterNormalize?: AfterNormalize,
    markEchoes?: MarkEchoes,
    deliverer?: LeasedDeliveries,
  ) {
    this.rt = rt;
    this.http = http;
    this.leases = leases;
    this.afterNormalize = afterNormalize;
    this.markEchoes = markEchoes;
    this.committer = new NormalizedWriter(rt, deliverer);
    // Ingest first (pipeline/pressure.ts): one run at a time while this process's pushes queue.
    this.slots = new SlotLedger(
      () => (rt.ingestPressure.pressed ? 1 : rt.options.normalizeConcurrency),
      () => rt.wakeNormalizeLoop(),
    );
  }

  /** Something may have been stored unleased (the hub's `wakeNormalize` calls it). */
  arrived(): void {
    this.arrivals++;
  }

  /**
   * One pass: claim a batch that fits in the free concurrency, start it, report whether more may
   * wait. While most slots are busy it claims nothing: a claim per finished message would cost a
   * query per message; waiting for a quarter of the slots makes each claim fetch a batch.
   *
   * Each slot takes a run: a queue head and up to `RUN_MAX - 1` consecutive messages of its
   * ordering key (see {@link runOf}), normalized in order by one worker. While this process's
   * pushes queue for their write (ingest first, pipeline/pressure.ts), one run at a time, each
   * followed by a rest.
   */
  async tick(): Promise<TickResult> {
    const rest = this.resting();
    if (rest > 0) return { busy: false, nextDueAt: new Date(Date.now() + rest) };
    const limit = this.slots.claimable(CLAIM_BATCH);
    if (limit === 0) return { busy: false };
    const leaseMs = this.rt.options.normalizeLeaseMs;
    // Each run takes one slot.
    const { runs, nextDueAt } = await this.slots.claim(
      limit,
      async () => {
        const claim = await inboundStore.claimInbound(this.rt.db, leaseMs, limit, RUN_MAX);
        return { runs: runsOf(claim.rows), nextDueAt: claim.nextDueAt };
      },
      (claimed) => claimed.runs.length,
    );
    // A claimed run's end always wakes the loop: its key's next message may be waiting for it (the
    // claim's run stops early at one it cannot take, which nothing else announces).
    for (const run of runs) this.start(run, () => true);
    if (runs.length > 0)
      return { busy: runs.length === limit && this.slots.active < this.rt.options.normalizeConcurrency };
    return { busy: false, nextDueAt };
  }

  /**
   * Normalizes a leased run in a slot (already counted in use: the claim's, or the reservation's),
   * its lease renewed while it runs (LeaseKeeper: a process that dies loses its messages to another
   * within one lease); at its end, wakes the loop when `wakeAfter` says so (given whether every
   * message of the run got its final status).
   */
  private start(run: inboundStore.InboundRow[], wakeAfter: (settled: boolean) => boolean): void {
    const leaseMs = this.rt.options.normalizeLeaseMs;
    for (const row of run) this.leases.hold('inbound', row.id, row.lock_token!, leaseMs);
    let settled = false;
    const startedAt = performance.now();
    const p = this.processRun(run)
      .then((s) => {
        settled = s;
      })
      .finally(() => {
        this.restAfter(startedAt);
        this.slots.done();
        this.running.delete(p);
        if (this.slots.behind || wakeAfter(settled)) this.rt.wakeNormalizeLoop();
      });
    this.running.add(p);
  }

  /**
   * How long the worker still rests, ms (0: it does not). It rests only while pushes queue: the
   * rest that began under pressure ends with it.
   */
  private resting(): number {
    return this.rt.ingestPressure.pressed ? Math.max(0, this.restUntil - performance.now()) : 0;
  }

  /**
   * Ingest first: a run that ends while pushes queue is followed by a rest {@link INGEST_FIRST_REST}
   * times as long as it took (at most {@link INGEST_FIRST_REST_MAX_MS}), so that the worker
   * spends at most a fifth of the time normalizing, whatever the machine and the run. Runs keep
   * their full length: a run of one message (the rule before) cost a claim and a commit per
   * message, the most Postgres work per message, and the next started within a round trip
   * (bench/analysis.md, "Ingest first rests").
   */
  private restAfter(startedAt: number): void {
    if (!this.rt.ingestPressure.pressed) return;
    const now = performance.now();
    const rest = Math.min(INGEST_FIRST_REST * (now - startedAt), INGEST_FIRST_REST_MAX_MS);
    this.restUntil = Math.max(this.restUntil, now + rest);
  }

  /** The lease of a message stored leased for this worker: the claim's. */
  get leaseMs(): number {
    return this.rt.options.normalizeLeaseMs;
  }

  /** Lets ingest statements lease messages for this worker (the hub calls it once its loop runs). */
  acceptLeased(accepting: boolean): void {
    this.slots.accept(accepting);
  }

  /**
   * Promises up to `max` free slots to an ingest statement about to run, for the messages it
   * stores leased (`storeInbound`'s `lease`); no slot when the worker does not run, has a backlog,
   * rests (ingest first) or has no free slot. Hand the reservation back with {@link take}
   * whatever the statement did.
   *
   * @example
   * ```ts
   * const reservation = normalizer.reserve(8);
   * let leased = [];
   * try { leased = await storeLeased(reservation.slots); }
   * finally { normalizer.take(leased, reservation); }
   * ```
   */
  reserve(max: number): InboundReservation {
    // A resting worker takes nothing: the messages wait in the table for its next claim.
    if (this.resting() > 0) return { slots: 0, arrivals: this.arrivals };
    return { slots: this.slots.reserve(max), arrivals: this.arrivals };
  }

  /**
   * Normalizes the messages an ingest statement stored leased, each a run of its own, in the slots
   * {@link reserve} promised (`rows.length` at most `reservation.slots`). At a run's end the loop
   * is woken only when something may wait for it: the run did not settle (a retry, a crash), or a
   * wake-up announced a stored message after the reservation (one stored behind this one may be
   * waiting for it to finish). Rows taken while the worker stops are given back.
   */
  take(rows: readonly inboundStore.InboundRow[], reservation: InboundReservation): void {
    if (!this.slots.accepts) {
      this.slots.release(reservation.slots);
      void this.giveBackUntried([...rows]);
      if (rows.length > 0) this.rt.wakeNormalize();
    } else {
      this.slots.release(reservation.slots, rows.length);
      for (const row of rows)
        this.start([row], (settled) => !settled || this.arrivals !== reservation.arrivals);
    }
  }

  /** Waits for the normalizations in progress. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /**
   * Normalizes one claimed run (messages of one ordering key, consecutive, in `seq` order) one
   * after another, and stores the results together: normalized and ignored messages wait in
   * `pending` and go to the group commit as one item (one statement, events numbered in order),
   * once the run ends or when the oldest has waited `RUN_FLUSH_MS` (a slow connector must not hold
   * the first events back). A failure is stored after what precedes it; a retry or a crash ends
   * the run, and the messages not reached are given back untried ({@link inboundStore.unclaimInbound}): they
   * wait behind the unfinished one, as before. A database outage gives back everything not stored.
   * The aliases the run's normalizations make up go with their messages' commits
   * ({@link ProposedAliases}); a commit that refuses one stores nothing of its item, and the run
   * goes back to that item's first message, normalizing from there with aliases stored at once.
   * Returns whether every message of the run got its final status.
   */
  private async processRun(run: inboundStore.InboundRow[]): Promise<boolean> {
    const { rt } = this;
    let pending: Pending[] = [];
    let pendingSince = 0;
    // The state writes of the run's messages normalized so far (stored with each one's results):
    // the next message of the run reads them, committed or not.
    const runState: StateWrites = new Map();
    // The aliases the run's normalizations made up, stored by the commits of their messages
    // (stores.ts ProposedAliases). Null once a commit refused one: the run's messages from there
    // on store their aliases with statements of their own, as other look-ups do.
    let proposals: Map<string, Proposal> | null = new Map();
    // Where the pending chunk began, and the run's state writes before it: what a refused chunk
    // goes back to.
    let chunkStart = 0;
    let stateBefore: StateWrites = new Map();
    // The messages of a refused chunk, normalized again (their second spans say so).
    const again = new Set<string>();
    /**
     * Stores the pending chunk; true when its commit refused an alias it proposed (nothing of it
     * stored): then the chunk is normalized again from its first message, aliases stored at once.
     */
    const flush = async (): Promise<boolean> => {
      if (pending.length === 0) return false;
      // Storing the events and fanning them out: one span per message, a child of its normalize
      // span, though the run's messages share one statement; the deliveries continue the trace
      // from it (events.traceparent).
      const spans = pending.map((c) =>
        startSpan('switchyard.fanout', {
          parent: c.trace ?? null,
          parentState: c.traceState ?? null,
          attributes: { 'switchyard.events': c.item.events.length, 'switchyard.batch': pending.length },
        }),
      );
      for (const [i, c] of pending.entries()) {
        const started = spans[i];
        if (!started) continue;
        const traceparent = traceparentOf(started.span);
        const tracestate = tracestateOf(started.span);
        for (const e of c.item.events) {
          e.traceparent = traceparent;
          e.tracestate = tracestate;
        }
      }
      let stored: CommitOutcome[];
      try {
        stored = await this.committer.write(pending.map((c) => c.item));
      } catch (error) {
        for (const started of spans) if (started) failSpan(started.span, error);
        for (const started of spans) started?.span.end();
        throw error;
      }
      // What became of each message's results: a refused chunk's spans otherwise read as stored
      // beside the next try's (an audit decoding a trace found two fan-outs for one message).
      for (const [i, started] of spans.entries()) {
        started?.span.setAttribute('switchyard.fanout.outcome', stored[i] ?? 'lost');
        started?.span.end();
      }
      const chunk = pending;
      pending = [];
      if (stored.includes('refused')) {
        // Still leased (the commit finished none of the chunk): normalized again from its start.
        rt.logger.debug(
          { inbound: chunk[0]!.item.row.id, messages: chunk.length },
          'an alias the normalization made up existed: normalizing again',
        );
        for (const c of chunk) again.add(c.item.row.id);
        index = chunkStart;
        runState.clear();
        for (const [key, value] of stateBefore) runState.set(key, value);
        proposals = null;
        return true;
      }
      for (const [i, c] of chunk.entries()) {
        this.leases.done('inbound', c.item.row.id);
        if (stored[i] === 'stored') {
          const outcome = c.item.ignored === undefined ? 'normalized' : 'ignored';
          rt.metrics.normalizations.inc({ instance: c.item.row.instance_id, outcome });
        }
      }
      // All at once, in the chunk's order: a hook may batch the calls it gets together (the gates
      // match a commit's bookings in one statement).
      await Promise.all(chunk.map((c, i) => (stored[i] === 'stored' && c.after ? c.after() : undefined)));
      return false;
    };
    let index = 0;
    let retried = false;
    try {
      // A chunk the last flush found refused goes back into the loop (its aliases stored at once).
      for (;;) {
        while (index < run.length) {
          if (pending.length > 0 && Date.now() - pendingSince >= RUN_FLUSH_MS && (await flush())) continue;
          const row = run[index]!;
          const made: Proposal[] = [];
          const deferred: ProposedAliases | undefined = proposals ? { run: proposals, made } : undefined;
          // The trace of the request that stored the message goes on here (a child of its span).
          const outcome = await withSpan(
            'switchyard.normalize',
            {
              kind: SpanKind.CONSUMER,
              parent: row.traceparent,
              parentState: row.tracestate,
              attributes: {
                'messaging.system': 'switchyard',
                'messaging.operation.type': 'process',
                'messaging.operation.name': 'process',
                'messaging.destination.name': 'normalize',
                'messaging.message.id': row.id,
                'switchyard.instance': row.instance_id,
                'switchyard.vendor_type': row.vendor_type,
                'switchyard.attempt': row.attempts,
                'switchyard.run_length': run.length,
                // Normalized again in the same attempt: an alias it made up existed (flush).
                ...(again.has(row.id) ? { 'switchyard.normalize.again': true } : {}),
              },
            },
            async (span) => {
              const o = await this.normalizeOne(row, runState, deferred);
              return o.kind === 'store'
                ? {
                    ...o,
                    trace: span ? traceparentOf(span) : null,
                    traceState: span ? tracestateOf(span) : null,
                  }
                : o;
            },
          );
          if (outcome.kind === 'store') {
            if (pending.length === 0) {
              pendingSince = Date.now();
              chunkStart = index;
              stateBefore = new Map(runState);
            }
            for (const [key, value] of outcome.item.state) runState.set(key, value);
            pending.push(outcome);
            index++;
            continue;
          }
          // Not stored: what it made up names nothing (a later message makes its own).
          for (const p of made) proposals?.delete(proposalKey(p));
          // What precedes this message is stored first: its outcome never overtakes theirs.
          if (await flush()) continue;
          if (outcome.kind === 'fail') {
            await inboundStore.finishInbound(
              rt.db,
              row.id,
              row.lock_token!,
              'failed',
              outcome.reason,
              outcome.error,
              0,
            );
            if (outcome.instanceError)
              await instanceStore.recordInstanceError(rt.db, row.instance_id, outcome.instanceError);
            rt.metrics.normalizations.inc({ instance: row.instance_id, outcome: 'failed' });
            this.leases.done('inbound', row.id);
            index++;
            continue;
          }
          await inboundStore.retryInbound(rt.db, row.id, row.lock_token!, outcome.delayMs, outcome.error);
          await this.recordRetryError(row.instance_id, outcome.instanceError);
          rt.metrics.normalizations.inc({ instance: row.instance_id, outcome: 'retry' });
          this.leases.done('inbound', row.id);
          index++;
          retried = true;
          break;
        }
        if (retried || !(await flush())) break;
      }
    } catch (error) {
      const unstored = [...pending.map((p) => p.item.row), ...run.slice(index)];
      if (isDatabaseUnavailable(error)) {
        // Nothing of it was stored: the same process takes it again once the database is back.
        for (const row of unstored) this.leases.giveBack('inbound', row.id);
        reportDatabaseUnavailable(
          rt.logger,
          error,
          'normalizations cut short are given back when it is back',
        );
        return false;
      }
      const crashed = run[index];
      rt.logger.error(
        { err: error, inbound: crashed?.id ?? pending[0]?.item.row.id },
        'normalization crashed; it is tried again when its lease runs out',
      );
      // The crashed message (or the unstored chunk) keeps its lease until it runs out; the rest of
      // the run was never tried.
      for (const row of unstored) this.leases.done('inbound', row.id);
      await this.giveBackUntried(run.slice(index + 1));
      return false;
    }
    await this.giveBackUntried(run.slice(index));
    return !retried && index >= run.length;
  }

  /**
   * Shows a retried normalization as its instance's last error (health, the dashboard's instances),
   * at most once per {@link RETRY_ERROR_EVERY_MS} per instance: a vendor API that stays down is a
   * failing instance to its operator while its messages wait for their retries, not only once one
   * has used them all. Best effort: the retry is stored already.
   */
  private async recordRetryError(instanceId: string, error: string): Promise<void> {
    const now = performance.now();
    const last = this.retryErrorAt.get(instanceId);
    if (last !== undefined && now - last < RETRY_ERROR_EVERY_MS) return;
    this.retryErrorAt.set(instanceId, now);
    await instanceStore.recordInstanceError(this.rt.db, instanceId, error).catch(() => {});
  }

  /** Hands back messages of a run it did not reach; best effort (their lease runs out otherwise). */
  private async giveBackUntried(rows: inboundStore.InboundRow[]): Promise<void> {
    if (rows.length === 0) return;
    for (const row of rows) this.leases.done('inbound', row.id);
    await inboundStore
      .unclaimInbound(
        this.rt.db,
        rows.map((r) => ({ id: r.id, lockToken: r.lock_token! })),
      )
      .catch((error: unknown) =>
        this.rt.logger.warn({ err: error }, 'giving back untried messages failed; their lease runs out'),
      );
  }

  /**
   * Runs the connector on one claimed message and says what to store: nothing is written here
   * except by the connector's alias store (its state writes are kept for the commit, after those of
   * `runState`, the run's earlier messages), so a run can store its results together.
   */
  private async normalizeOne(
    row: inboundStore.InboundRow,
    runState: ReadonlyMap<string, string | null>,
    deferred: ProposedAliases | undefined,
  ): Promise<Outcome> {
    const { rt } = this;
    // Made only if a line is written: at the default level most messages write none.
    const logger = lazyChild(rt.logger, {
      inbound: row.id,
      instance: row.instance_id,
      vendorType: row.vendor_type,
    });
    let instance: Awaited<ReturnType<Runtime['loadInstance']>>;
    try {
      instance = await rt.loadInstance(row.instance_id);
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw error;
      return { kind: 'fail', reason: 'the instance cannot be loaded', error: errorJson(error) };
    }
    if (!instance) return { kind: 'fail', reason: 'the connector instance no longer exists', error: null };
    const { connector, config } = instance;
    const maxAttempts = rt.options.normalizeRetryMs.length + 1;
    const state: StateWrites = new Map();
    // Hub ids this normalization creates: the state store knows nothing is stored under them.
    const fresh: FreshHubIds = new Map();
    let result: NormalizeResult;
    try {
      result = await connector.normalize(notificationOf(row), {
        instanceId: row.instance_id,
        config,
        http: this.http,
        aliases: aliasStore(rt.db, row.instance_id, fresh, deferred),
        state: normalizeStateStore(rt.db, row.instance_id, runState, state, fresh),
        logger: connectorLogger(logger),
        attempt: row.attempts,
        finalAttempt: row.attempts >= maxAttempts,
        receivedAt: row.received_at,
      });
    } catch (error) {
      // The hub's own database failing under the connector (its alias or state store) says nothing
      // about the notification: not a failure of it, the work is given back (see processRun).
      if (!isConnectorError(error) && isDatabaseUnavailable(error)) throw error;
      if (isConnectorError(error) && error.kind === 'transient' && row.attempts < maxAttempts) {
        const delayMs = Math.max(
          jittered(rt.options.normalizeRetryMs[row.attempts - 1] ?? 0, rt.options.retryJitter),
          error.retryAfterMs ?? 0,
        );
        warnRepeated(
          logger,
          this.retryWarning.take(row.instance_id),
          { attempt: row.attempts, delayMs, reason: error.message },
          'normalization will be retried',
        );
        return {
          kind: 'retry',
          delayMs,
          error: errorJson(error),
          instanceError: `normalization retried (attempt ${row.attempts} of ${maxAttempts}): ${error.message}`,
        };
      }
      const message = (error as Error)?.message;
      // The message waits as `failed` for the operator: say which (the child's `inbound`) and how
      // to go on. A connector's own refusal is a warning; anything else it threw is a bug in it,
      // an error with its stack.
      const advice =
        'normalization failed: the message is kept as failed; once the cause is fixed, re-normalize it (the dashboard, or POST /v1/inbound/{id}/renormalize)';
      if (isConnectorError(error)) logger.warn({ reason: message, code: error.code }, advice);
      else logger.error({ reason: message, err: error }, advice);
      return {
        kind: 'fail',
        reason: message ?? 'failed',
        error: errorJson(error),
        instanceError: `normalization failed: ${message}`,
      };
    }

    if (result.ignored !== undefined || result.events.length === 0) {
      // Through the batched commit too: with many ignored notifications, a statement each adds up.
      return {
        kind: 'store',
        item: {
          row,
          token: row.lock_token!,
          events: [],
          state,
          aliases: deferred?.made ?? [],
          ignored: result.ignored ?? 'no events',
        },
      };
    }

    if (this.markEchoes) {
      // Best effort: an event not marked as an echo is still the right event.
      await this.markEchoes(row.instance_id, result.events).catch((error) =>
        logger.warn({ err: error }, 'marking command echoes failed'),
      );
    }
    const envelopes: EventEnvelope[] = [];
    const invalid: { index: number; errors: ValidationIssue[] }[] = [];
    result.events.forEach((draft, index) => {
      const envelope = {
        specversion: '1.0',
        id: eventIdFor(row.id, index),
        type: draft.type,
        source: row.instance_id,
        subject: draft.subject,
        time: draft.time,
        datacontenttype: 'application/json',
        data: draft.data,
        connector: connector.name,
        instance: row.instance_id,
        vendortype: draft.vendorType ?? row.vendor_type,
      } as EventEnvelope;
      const check = validateEvent(envelope);
      if (!check.valid) invalid.push({ index, errors: check.errors });
      envelopes.push(envelope);
    });
    if (invalid.length > 0) {
      const detail = invalid
        .flatMap((i) => i.errors.map((e) => `event ${i.index}${e.path}: ${e.message}`))
        .join('; ')
        .slice(0, 1000);
      warnRepeated(
        logger,
        this.invalidWarning.take(row.instance_id),
        { invalid },
        'normalized output is invalid',
      );
      return {
        kind: 'fail',
        reason: `invalid normalized event: ${detail}`,
        error: { code: 'SY_EVENT_INVALID', validation: invalid as unknown as JsonValue },
      };
    }

    setSpanAttributes({ 'switchyard.connector': connector.name, 'switchyard.events': envelopes.length });
    const { afterNormalize } = this;
    return {
      kind: 'store',
      item: {
        row,
        token: row.lock_token!,
        state,
        aliases: deferred?.made ?? [],
        events: envelopes.map((e) => ({
          id: e.id,
          type: e.type,
          source: e.source,
          subject: e.subject,
          time: e.time,
          envelope: e as unknown as Record<string, JsonValue>,
          inboundMessageId: row.id,
          traceparent: null as string | null,
          tracestate: null as string | null,
        })),
      },
      // After the commit and best effort: a hook failure never fails or repeats the normalization.
      after: afterNormalize
        ? () =>
            afterNormalize({
              instanceId: row.instance_id,
              connector: connector.name,
              inboundId: row.id,
              notification: notificationOf(row),
              events: envelopes.map((e) => ({ id: e.id, type: e.type, subject: e.subject })),
            }).catch((error) => logger.warn({ err: error }, 'afterNormalize hook failed'))
        : undefined,
    };
  }
}

/** A normalized (or ignored) message waiting for its run's commit, and its hook for after it. */
interface Pending {
  kind: 'store';
  item: Normalized;
  /** The traceparent of the message's normalize span (its fan-out span's parent); tracing on only. */
  trace?: string | null;
  /** The tracestate of that span, resumed with it. */
  traceState?: string | null;
  after?: (() => Promise<void>) | undefined;
}

/** What normalizing one message asks to store. */
type Outcome =
  | Pending
  | { kind: 'fail'; reason: string; error: JsonValue | null; instanceError?: string }
  | { kind: 'retry'; delayMs: number; error: JsonObject; instanceError: string };

/**
 * Groups claimed rows into runs: the rows of one (instance, ordering key) in `seq` order; a row
 * without an ordering key is a run of its own. A claim holds at most one run per key.
 */
export function runsOf(rows: readonly inboundStore.InboundRow[]): inboundStore.InboundRow[][] {
  const byKey = new Map<string, inboundStore.InboundRow[]>();
  const runs: inboundStore.InboundRow[][] = [];
  for (const row of rows) {
    if (row.ordering_key === null) {
      runs.push([row]);
      continue;
    }
    const key = `${row.instance_id}\u0000${row.ordering_key}`;
    const run = byKey.get(key);
    if (run) run.push(row);
    else {
      const fresh = [row];
      byKey.set(key, fresh);
      runs.push(fresh);
    }
  }
  for (const run of runs) if (run.length > 1) run.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
  return runs;
}

/** Runs claimed per query at most (a claim costs about the same for 1 row or 64). */
const CLAIM_BATCH = 64;

/** How often a process records retried normalizations as an instance's last error, at most. */
const RETRY_ERROR_EVERY_MS = 5000;

/**
 * Messages of one ordering key per run at most. One busy key used to cost a claim, a commit and a
 * wake-up per message; a run of 32 shares them between 32 messages (docs/benchmarks.md, "One
 * ordering key"), while a key's next run still follows within one round trip of the commit.
 */
const RUN_MAX = 32;

/**
 * How long a run's normalized messages wait for the rest of the run before they are committed, ms:
 * with a fast connector a whole run goes in one statement; a slow one (vendor calls during
 * normalization) does not hold the run's first events back for the whole run.
 */
const RUN_FLUSH_MS = 50;

interface Normalized {
  row: inboundStore.InboundRow;
  token: string;
  events: eventStore.NewEvent[];
  /** The connector's state writes, stored in the same statement (see {@link normalizeStateStore}). */
  state: StateWrites;
  /** The aliases its normalization made up, stored in the same statement (see {@link ProposedAliases}). */
  aliases: readonly Proposal[];
  /** Set when the connector ignored the notification: the reason stored with status `ignored`. */
  ignored?: string;
}

/**
 * Group commit for normalized messages: the results of every message finished while a commit was
 * running are stored together in the next one. One statement per batch (`commitNormalized`)
 * finishes the messages (checking each lease token), stores the aliases their normalizations made
 * up (refusing an item whose alias existed), their events in order, fans out
 * deliveries and sends one NOTIFY: a single round trip, where a transaction cost seven. Nothing
 * waits on a timer: a message finished alone is committed at once; under load batches grow by
 * themselves. Ordering holds because a message stays `received` (blocking its successors) until
 * its batch commits, and the messages of one run are written as one item: they are never split
 * over two commits that could draw event sequences in the wrong order.
 */
class NormalizedWriter {
  private readonly rt: Runtime;
  private readonly deliverer: LeasedDeliveries | undefined;
  private readonly group: GroupCommit<Normalized[], CommitOutcome[]>;

  constructor(rt: Runtime, deliverer: LeasedDeliveries | undefined) {
    this.rt = rt;
    this.deliverer = deliverer;
    this.group = new GroupCommit({
      maxInFlight: MAX_COMMITS,
      maxBatch: MAX_COMMIT_BATCH,
      weight: (run) => run.length,
      commit: async (runs) => {
        const r = await this.commit(runs);
        return runs.map((run, chunk) =>
          run.map((i) => (r.refused.has(chunk) ? 'refused' : r.finished.has(i.row.id) ? 'stored' : 'lost')),
        );
      },
    });
  }

  /**
   * Stores the messages of one run together (a chunk of the commit); resolves with one outcome per
   * message: stored, lost (the lease was lost: another worker's result counts), or refused (an
   * alias its normalization made up existed: nothing of the chunk stored, its lease kept).
   */
  write(run: Normalized[]): Promise<CommitOutcome[]> {
    return this.group.write(run);
  }

  private async commit(runs: Normalized[][]): Promise<eventStore.NormalizeCommit> {
    const chunkOf = new Map<Normalized, number>();
    for (const [chunk, run] of runs.entries()) for (const item of run) chunkOf.set(item, chunk);
    const items = runs.flat();
    // Arrival order, so events of different messages get sequences in the order they came in. A
    // sorted copy: the caller maps results back onto `items` in its own order.
    const ordered = [...items].sort((a, b) => (BigInt(a.row.seq) < BigInt(b.row.seq) ? -1 : 1));
    const events = ordered.flatMap((i) => i.events);
    const aliases = items.flatMap((i) => i.aliases.map((a) => ({ ...a, chunk: chunkOf.get(i)! })));
    // Slots of the deliver worker for the deliveries this commit may lease (the rest are claimed).
    const slots = this.deliverer?.reserve(Math.min(events.length * LEASES_PER_EVENT, LEASE_MAX)) ?? 0;
    let leased: DeliveryWork[] = [];
    try {
      const r = await this.commitRetryingGone(
        this.rt.db,
        ordered.map((i) => ({
          id: i.row.id,
          lockToken: i.token,
          status: i.ignored === undefined ? ('normalized' as const) : ('ignored' as const),
          reason: i.ignored ?? null,
          eventCount: i.events.length,
          chunk: chunkOf.get(i)!,
        })),
        events,
        ordered.flatMap((i) =>
          [...i.state].map(([key, value]) => ({
            inboundMessageId: i.row.id,
            instanceId: i.row.instance_id,
            key,
            value,
          })),
        ),
        {
          limit: slots,
          marginMs: this.rt.options.deliveryLeaseMarginMs,
          skip: slots > 0 ? (this.deliverer?.stalledSubscriptions() ?? []) : [],
        },
        aliases,
      );
      // What the aliases are now: those seen, and the proposals of the chunks that stood.
      rememberAliases(this.rt.db, [
        ...r.known,
        ...aliases
          .filter((a) => !r.refused.has(a.chunk))
          .map((a) => ({
            instance_id: a.instanceId,
            entity: a.entity,
            vendor_id: a.vendorId,
            hub_id: a.hubId,
          })),
      ]);
      leased = r.leased.map(leasedDeliveryWork);
      // Created pending (not leased): the claim takes them, in this process or any other.
      if (r.fanned > leased.length) this.rt.announceDeliveries();
      // Long-polls of the pull subscriptions served these events, in whichever process they wait.
      if (r.pulled !== null) void this.rt.notify(CHANNEL_FEED, r.pulled);
      return r;
    } finally {
      if (slots > 0) this.deliverer?.attempt(leased, slots);
    }
  }

  /**
   * {@link eventStore.commitNormalized}, run again when a subscription it fanned out to was deleted
   * while it ran ({@link retryingSubscriptionGone}: nothing of it was stored). Before, that
   * failure was a crash of every run in the commit: their messages kept their leases until they
   * ran out (`normalizeLease`, 30 s), and every later notification of their ordering keys (a whole
   * Docplanner facility) waited that long.
   */
  private commitRetryingGone(
    ...args: Parameters<typeof eventStore.commitNormalized>
  ): Promise<eventStore.NormalizeCommit> {
    return retryingSubscriptionGone(
      args[0],
      () => eventStore.commitNormalized(...args),
      (attempt) =>
        this.rt.logger.debug(
          { attempt },
          'a subscription was deleted while the normalize commit fanned out: committing again',
        ),
    );
  }
}

/** How the normalize commit left one message ({@link NormalizedWriter.write}). */
type CommitOutcome = 'stored' | 'lost' | 'refused';

/**
 * The deliver worker as the normalize commit sees it (`Deliverer` in deliver.ts): free slots
 * promised before the commit, and the deliveries it leased started in them after.
 */
export interface LeasedDeliveries {
  reserve(max: number): number;
  attempt(works: readonly DeliveryWork[], slots: number): void;
  /** Subscriptions whose deliveries are not to be leased now (their subscriber stopped answering). */
  stalledSubscriptions(): string[];
}

/**
 * Deliveries one commit leases at most: per event (its subscriptions beyond that are claimed), and
 * in all (as many as one delivery claim takes). Slots promised to one commit are not free for the
 * other commit running beside it nor for the claim, so a commit asks for what it may use.
 */
const LEASES_PER_EVENT = 4;
const LEASE_MAX = 64;

/** Commits running at once, and messages per commit at most. */
const MAX_COMMITS = 2;
const MAX_COMMIT_BATCH = 256;
