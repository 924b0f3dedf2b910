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
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  type Connector,
  type InboundResponse,
  type JsonValue,
  SwitchyardError,
  type VendorNotification,
} from '@switchyard/core';
import type pino from 'pino';
import type { Page } from '../admin/page.ts';
import { NOTIFY_BACKSTOP_SECONDS, SCHEDULED_POLL_SECONDS } from '../host/boss.ts';
import type { AfterNormalize, GateResponder } from '../host/hooks.ts';
import type { DeferredAliases, HubHost } from '../host/host.ts';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { newId, workerGone } from '../storage/db.ts';
import { GroupCommit } from '../storage/group-commit.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { currentTraceparent, currentTracestate } from '../telemetry/tracing.ts';
import { Approvers } from './approvers.ts';
import { approvalRequest, Decider, toDecision, verdictOf } from './decide.ts';
import { type GateMetrics, gateMetrics } from './metrics.ts';
import { fallback, type GatePolicy, recordMargin, resolvePolicy, type Verdict } from './protocol.ts';
import * as q from './store.ts';
import { UnmatchedRequests } from './unmatched.ts';
import { type GateListQuery, type GateRequest, type GateRequestDetail, getGate, listGates } from './views.ts';
import { sleepUntil, type Wait, Waiters } from './waiters.ts';

/** What {@link createGates}'s responder races against the deadline: the deadline came first. */
const LATE = Symbol('late');

/** The pg-boss queue of gate jobs (schema `switchyard_queue`, shared with the hub's own queues). */
export const GATE_QUEUE = 'switchyard-gate';
/** The pg-boss queue of the scheduled gate retention purge (on the hub's retention cron). */
export const GATE_RETENTION_QUEUE = 'switchyard-gate-retention';
/** How long after an answered gate request a booking may still be matched to it. */
export const DEFAULT_MATCH_WINDOW_MS = 24 * 3600 * 1000;

/**
 * How long past a request's deadline a vendor retry waits for the process deciding it (one whose
 * liveness cannot be told: it has sessions connected, or its worker id names none) before taking it up: that process answers its vendor the
 * default at the deadline and records it then (a write of a few ms), unless it is gone.
 */
export const TAKE_UP_GRACE_MS = 250;

/**
 * What tells this process's pids apart from those of another machine or container of the same
 * hostname: the kernel's boot id and the pid namespace (Linux's `/proc`); undefined where they
 * cannot be read. A hostname alone does not: containers given the host's (`--network host`, a
 * compose file's `hostname:` with replicas) or cloned VMs each number their own processes, and a
 * pid of one looked up in another is someone else's or nobody's — a living decider taken for gone,
 * its request taken up and its approvers asked again while it still answers its vendor.
 */
function pidSpace(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '');
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return /^[0-9a-f]{32}$/.test(boot) && ns !== undefined ? `${boot.slice(0, 12)}.${ns}` : undefined;
  } catch {
    return undefined;
  }
}

const PID_SPACE = pidSpace();

/**
 * The host part of this process's gate worker ids (`claimed_by`): the hostname and, where it can be
 * read, the pid space ({@link pidSpace}) in which {@link deciderGone} may look their pids up, e.g.
 * `hub-1#0c9e1d2a77f3.4026531836`.
 */
export const gateWorkerHost = PID_SPACE === undefined ? hostname() : `${hostname()}#${PID_SPACE}`;

/** The worker ids of the gate machineries this process created, and those of them not stopped (embedders and tests run several). */
const madeHere = new Set<string>();
const liveWorkers = new Set<string>();

/**
 * Whether the process that claimed a gate request (`claimed_by`, a worker id `host/pid/random`) is
 * known to be gone: a gate machinery of this process that was stopped, or a process of this very
 * pid space ({@link gateWorkerHost}: the same hostname, boot and pid namespace) whose pid no longer
 * runs or that had this process's pid (an earlier process). No claim, other hosts, and claims whose
 * host part names another pid space or none (another container or machine that only shares the
 * hostname, an earlier version's `host/pid/…`, a platform without `/proc`) are not known gone:
 * their pids mean nothing here, so the retry waits for the request's deadline instead.
 *
 * @example
 * ```ts
 * deciderGone(`${gateWorkerHost}/4999999/0badcafe`); // true: no pid 4999999 runs in this pid space
 * deciderGone(`${hostname()}/4999999/0badcafe`);     // false: a hostname does not say whose pid it is
 * deciderGone('other-host/42/0badcafe');             // false: not ours to tell
 * ```
 */
export function deciderGone(claimedBy: string | null): boolean {
  if (claimedBy === null) return false;
  if (madeHere.has(claimedBy)) return !liveWorkers.has(claimedBy);
  const m = /^(.*)\/(\d+)\/[^/]*$/.exec(claimedBy);
  if (!m || PID_SPACE === undefined || m[1] !== gateWorkerHost) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Options of {@link createGates}. */
export interface GatesOptions {
  /** Decide gate requests in this process (call approvers, work gate jobs). Default true. */
  worker?: boolean;
  /** Gate requests decided at once in this process; beyond it, they go to the queue. Default 64. */
  concurrency?: number;
  /** How long after a gate request the booking that follows may be matched to it. Default 24 h. */
  matchWindowMs?: number;
  /** Default: the host's logger. */
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

/** The gate machinery attached to its host (between `start` and `stop`). */
interface Attached {
  host: HubHost;
  logger: pino.Logger;
  metrics: GateMetrics;
  approvers: Approvers;
  decider: Decider;
  /** Links bookings to their gate requests, concurrent bookings in one statement ({@link bookingMatcher}). */
  matcher: GroupCommit<q.BookingMatch, string | undefined>;
  /** Which instances may have a gate request waiting for its booking (skips matching otherwise). */
  unmatched: UnmatchedRequests;
  /** Removes the LISTEN handlers of the decided and approvers channels. */
  unlisten: (() => void)[];
  /**
   * "gate request not understood", bounded per instance: a connector that cannot read what the
   * vendor now sends (or a database that stores no notification) says it for every request.
   */
  notUnderstood: RepeatedWarning;
}

/**
 * Booking matching as a group commit: every normalized booking of a gated connector asks for its
 * gate request, so the bookings of one normalize commit (and those of other workers meanwhile) go
 * in one statement instead of one each, which at 200 bookings/s was the costliest statement after
 * the commit itself (docs/benchmarks.md). Repeats of an (instance, match key) in one batch go in
 * later statements, in order, so each still takes the newest request left by the ones before it.
 */
function bookingMatcher(host: HubHost, windowMs: number): GroupCommit<q.BookingMatch, string | undefined> {
  return new GroupCommit<q.BookingMatch, string | undefined>({
    maxInFlight: 1,
    maxBatch: 256,
    sameTick: true,
    commit: async (bookings) => {
      const linked: (string | undefined)[] = new Array(bookings.length);
      let left = bookings.map((b, i) => ({ b, i }));
      while (left.length > 0) {
        const seen = new Set<string>();
        const now: typeof left = [];
        const later: typeof left = [];
        for (const x of left) {
          const k = `${x.b.instanceId}\u0000${x.b.matchKey}`;
          (seen.has(k) ? later : now).push(x);
          seen.add(k);
        }
        const ids = await q.matchBookings(
          host.db,
          now.map((x) => x.b),
          windowMs,
        );
        for (const [j, x] of now.entries()) linked[x.i] = ids[j];
        left = later;
      }
      return linked;
    },
  });
}

/**
 * Creates the gate machinery. Wire its `hooks` into `createHub`, then `start(hub.host)` it.
 *
 * @example
 * ```ts
 * const gates = createGates();
 * const hub = await createHub({ databaseUrl, connectors, secretKey, ...gates.hooks });
 * await hub.start();
 * await gates.start(hub.host);
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
  const approverCacheMs = options.approverCacheMs ?? 1000;
  const abandonAfterMs = options.abandonAfterMs ?? 60_000;
  const sweepIntervalMs = options.sweepIntervalMs ?? 30_000;
  // Until started: no session tag yet. From start on, the host's session tag ends it
  // (`….<tag>`), so that any process tells by the database whether this one is alive
  // (storage/db.ts, `workerGone`), whatever its host.
  const baseId = `${gateWorkerHost}/${process.pid}/${newId().slice(0, 8)}`;
  let workerId = baseId;
  madeHere.add(workerId);
  liveWorkers.add(workerId);
  const waiters = new Waiters();
  const running = new Set<Promise<unknown>>();
  let state: Attached | undefined;
  let starting: Promise<void> | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;

  function track<T>(p: Promise<T>): Promise<T> {
    running.add(p);
    void p.finally(() => running.delete(p)).catch(() => {});
    return p;
  }

  /**
   * Waits until nothing tracked runs, including what tracked work starts as it ends (a decision
   * tracks the recording of its late answers): waiting only for what ran at the start let stop
   * close the host under those answers, and drain return before they were recorded.
   */
  async function settled(): Promise<void> {
    while (running.size > 0) await Promise.allSettled([...running]);
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
    let wait: Wait<Verdict> | undefined;
    let id: string | undefined;
    // The request's row, once this call stored it (not a vendor's retry of a stored one).
    let storedId: string | undefined;
    // The time to the default the vendor got at the deadline, once it got it (the work goes on).
    let answeredMs: number | undefined;
    /**
     * Records the default the vendor is given now on the request's row, without delaying the
     * answer; a database that cannot take it leaves the row to the sweep (closed as abandoned).
     */
    const recordDefault = (
      gateId: string,
      v: Verdict,
      error: string | null,
      failed: string,
      decisionMs = performance.now() - t0,
    ) => {
      const responseStatus = connector.gate?.respond(toDecision(v), config as never).status ?? null;
      void track(
        q.decideGateRequest(
          s.host.db,
          gateId,
          {
            decision: v.outcome,
            reason: v.reason,
            decidedBy: null,
            refusalReason: null,
            vendorErrorCode: null,
            error,
            responseStatus,
            decisionMs: Math.round(decisionMs * 10) / 10,
            approvers: null,
          },
          new Date(answerBy),
        ),
      ).catch((e) => {
        if (isDatabaseUnavailable(e))
          reportDatabaseUnavailable(s.logger, e, `${failed}; the sweep closes it`);
        else s.logger.warn({ err: e, gate: gateId }, failed);
      });
    };
    // Read while the connector normalizes: the approver list does not depend on the request.
    const approversEarly = isWorker ? s.approvers.list() : undefined;
    approversEarly?.catch(() => {});
    const work = (async (): Promise<Verdict> => {
      // Decided here while the database was unreachable, not recorded yet: the vendor's retry gets
      // what its first request got (during the outage the default would answer it otherwise).
      const unrecorded = s.decider.unrecorded(instanceId, n.dedupeKey);
      if (unrecorded) return unrecorded;
      const local = isWorker && s.decider.active < concurrency;
      const receivedAt = new Date(Date.now() - (performance.now() - t0));
      /**
       * Normalizes the notification and stores the request; with `deferred`, the aliases the
       * normalization made up are stored by the same statement, else each by a write of its own.
       */
      const store = async (deferred?: DeferredAliases) => {
        const request = await approvalRequest(
          s.host,
          s.logger,
          connector,
          instanceId,
          config,
          n,
          messageId,
          deferred?.store ?? s.host.aliases(instanceId),
        );
        id = request.id;
        const stored = await q.insertGateRequest(
          s.host.db,
          {
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
            receivedAt,
            claimedBy: local ? workerId : null,
          },
          deferred?.storing(),
        );
        return { request, ...stored };
      };
      // The aliases the approval request makes up ride on the request's insert (no write of their
      // own in the vendor's wait); if one cannot stand, normalize again reading what stood there.
      const deferred = s.host.deferredAliases(instanceId);
      let stored = await store(deferred);
      if (stored.refused) stored = await store();
      else deferred.stored();
      const { request, row } = stored;
      // Other processes' bookings hear of it by NOTIFY, sent after this commit and before the
      // vendor has its answer (the verdict waits for it: gates/unmatched.ts says why); this
      // process's own know at once.
      const announced = row ? s.host.notify(q.CHANNEL_GATE_REQUESTED, instanceId) : undefined;
      const whenAnnounced = async (verdict: Promise<Verdict>): Promise<Verdict> => {
        const v = await verdict;
        await announced;
        return v;
      };
      if (row) {
        s.unmatched.heard(instanceId);
        storedId = row.id;
      }
      if (row && answeredMs !== undefined) {
        // Stored after the vendor had the default at the deadline (the insert waited on a lock or
        // a slow disk), when the deadline timer found no row to record it on: it is recorded now.
        // Deciding it as usual asked nobody (no time left) and recorded the approvers
        // `unavailable`, an answer the vendor never got.
        const v = fallback('deadline', policy);
        recordDefault(row.id, v, null, 'gate deadline not recorded', answeredMs);
        return v;
      }
      if (!row) {
        // The vendor asked again (same notification): answer what was decided, or wait for it.
        const existing = await q.findGateRequest(s.host.db, instanceId, n.dedupeKey);
        if (!existing) return fallback('error', policy);
        id = existing.id;
        const decided = verdictOf(existing);
        if (decided) return decided;
        wait = waiters.waitFor(existing.id);
        // Decided between the read and the wait (its NOTIFY came before anything waited here): it
        // would have waited for its deadline and answered the default, whatever was decided.
        const again = await q.getGateRequest(s.host.db, existing.id);
        const decidedMeanwhile = again && verdictOf(again);
        if (decidedMeanwhile) return decidedMeanwhile;
        return takeUpWhenAbandoned(s, again ?? existing, wait, local, t0, answerBy);
      }
      if (request.error !== null) {
        row.error = request.error;
        warnRepeated(
          s.logger,
          s.notUnderstood.take(instanceId),
          { gate: row.id, instance: instanceId, reason: request.error },
          'gate request not understood',
        );
      }
      if (local)
        return whenAnnounced(track(s.decider.decide(row, { startedAt: t0, approverRows: approversEarly })));
      wait = waiters.waitFor(row.id);
      await queueOf(s).send(
        GATE_QUEUE,
        { id: row.id, traceparent: currentTraceparent() ?? null, tracestate: currentTracestate() ?? null },
        { retryLimit: 0, expireInSeconds: 60 },
      );
      return whenAnnounced(wait.promise);
    })();
    try {
      const winner = await Promise.race([
        work.then((v) => ({ v, late: false })),
        hard.promise.then(() => ({ v: undefined, late: true })),
      ]);
      if (!winner.late && winner.v) return winner.v;
      answeredMs = performance.now() - t0;
      const v = fallback('deadline', policy);
      // Nothing decided in time: the default goes out now; recording it must not delay the answer.
      if (id !== undefined) recordDefault(id, v, null, 'gate deadline not recorded');
      work.catch((e) =>
        s.logger.warn({ err: e, instance: instanceId }, 'gate request failed after its deadline'),
      );
      return v;
    } catch (error) {
      // The database unable to store the request (down, out of disk): every request of the outage
      // meets it; said once per 30 s, not an error with a stack per request.
      if (isDatabaseUnavailable(error))
        reportDatabaseUnavailable(s.logger, error, 'gate requests are answered the default');
      else s.logger.error({ err: error, instance: instanceId }, 'gate request failed; answering the default');
      const v = fallback('error', policy);
      // Stored, then not handed to a gate job (pg-boss's insert failed): nothing will decide the
      // row, which stayed pending until the sweep closed it as abandoned by a stopped process.
      // It records what the vendor has now.
      if (storedId !== undefined)
        recordDefault(
          storedId,
          v,
          `answered the default: ${String((error as Error)?.message ?? error).slice(0, 500)}`,
          'gate default not recorded',
        );
      return v;
    } finally {
      hard.cancel();
      wait?.cancel();
    }
  }

  /**
   * A vendor's retry of a request still undecided: waits for its decision (`wait`) while the
   * process deciding it may still record one, then takes it up — claims it with the retry's
   * deadline and asks the approvers again (or hands it to a gate job), so the retry gets an answer
   * from the approvers instead of the default at its deadline. A process of this host that is gone
   * ({@link deciderGone}), or of any host whose database sessions are all gone ({@link workerGone}:
   * killed, or its host lost and its sessions ended by TCP keepalive), records nothing more: taken
   * up at once. One whose sessions are connected decides (or records the default) by the request's
   * deadline: taken up {@link TAKE_UP_GRACE_MS} after it, when the retry still has time for the
   * approvers. Of several retries one takes it up; the others wait.
   */
  async function takeUpWhenAbandoned(
    s: Attached,
    row: q.GateRequestRow,
    wait: Wait<Verdict>,
    local: boolean,
    t0: number,
    answerBy: number,
  ): Promise<Verdict> {
    // The database is asked only when this host cannot tell; its failure is no answer (not gone).
    const gone =
      deciderGone(row.claimed_by) ||
      (await workerGone(s.host.db, row.claimed_by, row.claimed_at).catch(() => false));
    const at = gone ? Date.now() : row.deadline_at.getTime() + TAKE_UP_GRACE_MS;
    if (answerBy - at < recordMargin(row.deadline_ms) + TAKE_UP_GRACE_MS) return wait.promise;
    const timer = sleepUntil(at);
    try {
      const first = await Promise.race([
        wait.promise.then((v) => ({ v })),
        timer.promise.then(() => undefined),
      ]);
      if (first) return first.v;
    } finally {
      timer.cancel();
    }
    const taken = await q.takeUpGateRequest(s.host.db, row, local ? workerId : null, new Date(answerBy));
    if (!taken) {
      // Decided, or taken up by another retry, since it was read: that decision comes by NOTIFY.
      const now = await q.getGateRequest(s.host.db, row.id);
      return (now && verdictOf(now)) ?? wait.promise;
    }
    s.logger.warn(
      { gate: row.id, instance: row.instance_id, abandonedBy: row.claimed_by },
      'gate request taken up for the vendor retry: the process deciding it stopped',
    );
    if (local) return track(s.decider.decide(taken, { startedAt: t0 }));
    await queueOf(s).send(
      GATE_QUEUE,
      { id: taken.id, traceparent: currentTraceparent() ?? null, tracestate: currentTracestate() ?? null },
      { retryLimit: 0, expireInSeconds: 60 },
    );
    return wait.promise;
  }

  const gateResponder: GateResponder = async (gate) => {
    const t0 = performance.now();
    const s = state;
    if (!s) {
      // Only between createHub and gates.start: ingest's own acknowledgement goes out.
      options.logger?.warn({ instance: gate.instanceId }, 'gate request before the gates started');
      return undefined;
    }
    const connector = s.host.connectors.get(gate.connector);
    const gateSpec = connector?.gate;
    if (!connector || !gateSpec) return undefined;
    let policy: GatePolicy;
    try {
      policy = resolvePolicy((await s.host.loadInstance(gate.instanceId))?.row.gate);
    } catch {
      policy = resolvePolicy(null);
    }
    const answerBy =
      Math.min(Date.now(), gate.receivedAt?.getTime() ?? Number.POSITIVE_INFINITY) + policy.deadlineMs;
    // The vendor's write, and the lookup of a retry's ids, end by the deadline or not at all: on a
    // silent database connection they took 15 s, and the vendor had its answer long after its timeout.
    const late = sleepUntil(answerBy);
    const inTime = <T>(p: Promise<T>) => Promise.race([p, late.promise.then((): typeof LATE => LATE)]);
    let verdicts: Verdict[];
    try {
      const stored = await inTime(gate.messageIds);
      // ingest passes ids only for notifications it stored now; a vendor retry's are looked up.
      let ids: (string | null)[] | typeof LATE;
      if (stored === LATE || stored.length === gate.notifications.length) ids = stored;
      else {
        const found = await inTime(
          q
            .inboundIdsByDedupeKey(
              s.host.db,
              gate.instanceId,
              gate.notifications.map((n) => n.dedupeKey),
            )
            .catch(() => new Map<string, string>()),
        );
        ids = found === LATE ? LATE : gate.notifications.map((n) => found.get(n.dedupeKey) ?? null);
      }
      if (ids === LATE) {
        s.logger.warn(
          { instance: gate.instanceId },
          'gate request answered the default: its notification was not stored by the deadline',
        );
        verdicts = [fallback('deadline', policy)];
      } else {
        const known = ids;
        verdicts = await Promise.all(
          gate.notifications.map((n, i) =>
            gateOne(s, connector, gate.instanceId, gate.config, policy, n, known[i] ?? null, t0, answerBy),
          ),
        );
      }
    } catch {
      // The write failed: ingest answers as for any push it could not store.
      return undefined;
    } finally {
      late.cancel();
    }
    const verdict = verdicts.find((v) => v.outcome === 'refuse') ?? verdicts[0] ?? fallback('error', policy);
    s.metrics.decisions.inc({ instance: gate.instanceId, outcome: verdict.outcome, reason: verdict.reason });
    s.metrics.duration.observe({ instance: gate.instanceId }, (performance.now() - t0) / 1000);
    return gateSpec.respond(toDecision(verdict), gate.config as never) satisfies InboundResponse;
  };

  const afterNormalize: AfterNormalize = async (normalized) => {
    const s = state;
    if (!s || normalized.notification.gate) return;
    const connector = s.host.connectors.get(normalized.connector);
    const key = connector?.gate?.matchKey(normalized.notification);
    if (!key || !(await s.unmatched.mayExist(normalized.instanceId))) return;
    const event = normalized.events[0];
    const matched = await s.matcher.write({
      instanceId: normalized.instanceId,
      matchKey: key,
      inboundId: normalized.inboundId,
      vendorType: normalized.notification.type,
      eventId: event?.id ?? null,
      subject: event?.subject ?? null,
    });
    if (matched) {
      s.metrics.matched.inc({ instance: normalized.instanceId });
      s.logger.debug({ gate: matched, inbound: normalized.inboundId }, 'booking matched to its gate request');
    }
  };

  /** Wakes the requests waiting here whose decision is recorded (one missed while not listening). */
  async function wakeDecided(s: Attached): Promise<void> {
    for (const row of await q.decidedGateRequests(s.host.db, waiters.ids())) {
      const v = verdictOf(row);
      if (v) waiters.wake(row.id, v);
    }
  }

  /** The host's pg-boss instance; the gates cannot hand a request over without it. */
  function queueOf(s: Attached) {
    const boss = s.host.queue;
    if (!boss) throw new SwitchyardError('SY_PIPELINE_CONFLICT', "the gates need the hub's queue (pg-boss)");
    return boss;
  }

  async function sweepWith(s: Attached): Promise<number> {
    const batch = s.host.retention.batchSize;
    const error = `abandoned: still undecided ${abandonAfterMs} ms after its deadline (the process deciding it stopped)`;
    let total = 0;
    for (;;) {
      const closed = await q.closeAbandoned(s.host.db, abandonAfterMs, batch, error);
      for (const g of closed) s.metrics.abandoned.inc({ instance: g.instance_id, outcome: g.decision });
      if (closed.length > 0) {
        s.logger.warn({ gates: closed.map((g) => g.id) }, 'abandoned gate requests closed with the default');
      }
      total += closed.length;
      if (closed.length < batch) return total;
    }
  }

  async function purgeWith(s: Attached, now: Date): Promise<GatePurgeResult> {
    const r = s.host.retention;
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
    const answers = await loop(() => q.purgeGateAnswers(s.host.db, before, r.batchSize));
    const requests = await loop(() => q.purgeGateRequests(s.host.db, before, r.batchSize));
    return { requests, answers };
  }

  function scheduleSweep(s: Attached): void {
    if (!isWorker || sweepIntervalMs <= 0) return;
    sweepTimer = setInterval(() => {
      // One sweep at a time per process; other processes skip the rows this one holds.
      if (sweeping || state !== s) return;
      sweeping = track(sweepWith(s));
      sweeping
        .catch((e) => {
          // Once per 30 s while the database is away, as the worker loops say it.
          if (isDatabaseUnavailable(e))
            reportDatabaseUnavailable(s.logger, e, 'the gate sweep runs again once it is back');
          else s.logger.warn({ err: e }, 'gate sweep failed');
        })
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

  async function startWith(host: HubHost): Promise<void> {
    const logger = (options.logger ?? host.logger).child({ component: 'gates' });
    const metrics = gateMetrics(host.metrics);
    const approvers = new Approvers(host, metrics, approverCacheMs);
    const s: Attached = {
      host,
      logger,
      metrics,
      approvers,
      decider: new Decider(host, logger, metrics, approvers, track, abandonAfterMs),
      matcher: bookingMatcher(host, matchWindowMs),
      unmatched: new UnmatchedRequests(host, matchWindowMs),
      unlisten: [],
      notUnderstood: new RepeatedWarning(),
    };
    const boss = queueOf(s);
    await boss.createQueue(GATE_QUEUE, { notify: true, retryLimit: 0, expireInSeconds: 60 });
    // Decisions made in other processes wake the requests waiting here (the payload carries the
    // decision, so waking costs no query); a change to an approver subscription, or a reconnect
    // (changes may have been missed), drops the cached approver list.
    s.unlisten.push(
      await host.listener.listen(q.CHANNEL_GATE_DECIDED, (payload) => {
        if (payload !== undefined) waiters.wakeFromNotification(payload);
        // The LISTEN connection is back: decisions announced while it was down were not heard, and
        // the requests waiting for them would answer the default at their deadline. Read them.
        else
          void track(wakeDecided(s)).catch((e) =>
            logger.warn({ err: e }, 'waiting gate requests not read again'),
          );
      }),
      await host.listener.listen(q.CHANNEL_GATE_APPROVERS, () => approvers.forget()),
      await host.listener.listen(q.CHANNEL_GATE_REQUESTED, (instanceId) => s.unmatched.heard(instanceId)),
    );
    if (isWorker) {
      await boss.work<{ id: string; traceparent?: string | null; tracestate?: string | null }>(
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
            const row = await q.claimGateRequest(host.db, job.data.id, workerId);
            if (!row) continue;
            void track(
              s.decider.decide(row, {
                handedOver: {
                  traceparent: job.data.traceparent ?? null,
                  tracestate: job.data.tracestate ?? null,
                },
              }),
            ).catch((e) => logger.error({ err: e, gate: row.id }, 'gate job failed'));
          }
        },
      );
      const cron = host.retention.cron;
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
    /**
     * This process's worker id (recorded as `claimed_by`): `host/pid/random`, and from `start` on
     * `.<session tag>` of its host after it.
     */
    get workerId(): string {
      return workerId;
    },

    /**
     * Attaches to the hub's host: listens for decisions and approver changes and, in a worker
     * process, works gate jobs on the host's pg-boss instance. Until it resolves, gate requests get
     * the instance's default answer.
     */
    start(host: HubHost): Promise<void> {
      if (workerId === baseId) {
        liveWorkers.delete(baseId);
        workerId = `${baseId}.${host.sessionTag}`;
        madeHere.add(workerId);
      }
      liveWorkers.add(workerId);
      starting ??= startWith(host);
      return starting;
    },

    /** Stops working jobs, waits for decisions in progress, stops listening. The host stays up. */
    async stop(): Promise<void> {
      const s = state;
      state = undefined;
      liveWorkers.delete(workerId);
      clearInterval(sweepTimer);
      sweepTimer = undefined;
      if (!s) return;
      s.decider.close();
      const boss = s.host.queue;
      await Promise.all([
        boss?.offWork(GATE_QUEUE).catch(() => {}),
        boss?.offWork(GATE_RETENTION_QUEUE).catch(() => {}),
      ]);
      await settled();
      for (const unlisten of s.unlisten) unlisten();
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
      return listGates(attached().host.db, f, matchWindowMs);
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
      return getGate(attached().host.db, id, matchWindowMs);
    },

    /**
     * Deletes gate requests (with their answers) received longer ago than the events retention
     * period (`retention.eventsMs` of the host), in batches. A worker process runs it on the
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
      await settled();
    },
  };
}

/** The gate machinery of one process (what {@link createGates} returns). */
export type Gates = ReturnType<typeof createGates>;
