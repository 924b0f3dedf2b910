import { setTimeout as sleep } from 'node:timers/promises';
import type { EventEnvelope } from '@switchyard/core';
import * as deliveryStore from '../deliveries/store.ts';
import type { ConnectionPool, PostWebhookResult } from '../delivery/http-post.ts';
import { nextAttemptDelay } from '../delivery/retry-schedule.ts';
import { postSigned as postSignedTo } from '../delivery/signed-post.ts';
import { toEvent } from '../events/api.ts';
import type * as eventStore from '../events/store.ts';
import { FHIR_CONTENT_TYPE, type FhirDelivery, renderFhirDelivery } from '../fhir/render.ts';
import { secretScrubber } from '../logging/logger.ts';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { GroupCommit } from '../storage/group-commit.ts';
import { CHANNEL_DELIVER, notify } from '../storage/queues.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import * as subscriptionStore from '../subscriptions/store.ts';
import { type Span, SpanKind, setSpanAttributes, traceparentOf, withSpan } from '../telemetry/tracing.ts';
import type { LeaseKeeper } from './leases.ts';
import type { Runtime } from './shared.ts';
import { SlotLedger } from './slots.ts';
import type { TickResult } from './worker-loop.ts';

/** The body a CloudEvents subscriber receives: the stored envelope plus its feed position. */
export function deliveryBody(event: eventStore.EventRow): string {
  return JSON.stringify(toEvent(event));
}

/**
 * What to send for one delivery: the CloudEvent, or for a FHIR subscription the rendering of
 * fhir/render.ts (built now, from the stored event: see docs/fhir.md, "Delivery formats").
 */
function renderDelivery(
  work: deliveryStore.DeliveryWork & { event: eventStore.EventRow },
): { kind: 'body'; body: string; contentType: string } | Exclude<FhirDelivery, { kind: 'body' }> {
  const { delivery: d, subscription: sub, event } = work;
  if (sub.format === 'cloudevents') {
    return { kind: 'body', body: deliveryBody(event), contentType: sub.content_type };
  }
  const rendered = renderFhirDelivery({
    format: sub.format,
    event: event.envelope as unknown as EventEnvelope,
    subscriptionId: sub.id,
    deliveryId: d.id,
    createdAt: new Date(d.created_at),
    notificationNumber: d.notification_number === null ? null : String(d.notification_number),
    eventsSinceSubscriptionStart: sub.notification_events,
  });
  return rendered.kind === 'body' ? { ...rendered, contentType: FHIR_CONTENT_TYPE } : rendered;
}

/**
 * Opened secrets per runtime, by context and sealed value. Opening (AES-GCM with a fresh key
 * object) on every attempt was a visible share of the deliver worker's CPU; a sealed value
 * authenticates under one key and context only, so its plaintext never changes.
 */
const openedSecrets = new WeakMap<Runtime, Map<string, string>>();
const OPENED_SECRETS_MAX = 10_000;

function openCached(rt: Runtime, sealed: string, context: string): string {
  let cache = openedSecrets.get(rt);
  if (!cache) {
    cache = new Map();
    openedSecrets.set(rt, cache);
  }
  const k = `${context}\u0000${sealed}`;
  let plain = cache.get(k);
  if (plain === undefined) {
    plain = rt.cipher.open(sealed, context);
    if (cache.size >= OPENED_SECRETS_MAX) cache.delete(cache.keys().next().value!);
    cache.set(k, plain);
  }
  return plain;
}

/** Signing secrets in force now, newest first (old and new both sign during a rotation overlap). */
export function activeSecrets(rt: Runtime, sub: SubscriptionRow, now = Date.now()): string[] {
  return [...sub.secrets]
    .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now)
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
    .map((s) => openCached(rt, s.sealed, `subscription:${sub.id}`));
}

/**
 * One signed POST of `body` to the subscription's URL (delivery/signed-post.ts), with its secrets
 * in force, timeout and destination policy. Shared by the deliver worker, `sendTestEvent` and the
 * host's `postSigned` (the gates' approver calls, on the `approvers` connection pool). `contentType`
 * defaults to the subscription's (a FHIR delivery sends `application/fhir+json`); `signal` ends the
 * request when aborted.
 */
export function postSigned(
  rt: Runtime,
  sub: SubscriptionRow,
  eventId: string,
  body: string,
  contentType: string = sub.content_type,
  opts: { signal?: AbortSignal; pool?: ConnectionPool; bodyBy?: number } = {},
): Promise<PostWebhookResult> {
  const secrets = activeSecrets(rt, sub);
  return postSignedTo(
    {
      url: sub.url ?? '',
      contentType,
      timeoutMs: sub.timeout_ms,
      allowPrivateAddresses: sub.allow_private_addresses,
      secrets,
      ...opts,
    },
    eventId,
    body,
    rt.options.maxResponseSnippetBytes,
  ).then((result) => withoutSecrets(result, secrets));
}

/**
 * The answer with the subscription's own signing secrets scrubbed from what is kept of it (the
 * start of its body, the error): a subscriber or approver whose error page quotes the secret it
 * verifies with had it stored in the attempt and gate rows, read by the approver protocol as the
 * refusal's reason and served by the API (an audit's find). A `whsec_` secret is also scrubbed as
 * its base64 key alone, the form a verifier holds. Only an answer with a body or an error pays for it.
 *
 * @example
 * ```ts
 * withoutSecrets({ ok: false, status: 401, latencyMs: 3, responseSnippet: 'bad sig for whsec_abc…' }, ['whsec_abc…']);
 * // { …, responseSnippet: 'bad sig for [redacted]' }
 * ```
 */
export function withoutSecrets(result: PostWebhookResult, secrets: readonly string[]): PostWebhookResult {
  if (secrets.length === 0 || (!result.responseSnippet && result.error === undefined)) return result;
  const scrub = scrubberOf(secrets);
  return {
    ...result,
    ...(result.responseSnippet !== undefined ? { responseSnippet: scrub(result.responseSnippet) } : {}),
    ...(result.error !== undefined ? { error: scrub(result.error) } : {}),
  };
}

/**
 * The scrubber of a subscription's secrets, built once per set of secrets (each attempt answered
 * with a body is scrubbed, and building one makes every encoded form of each secret and a regular
 * expression of them). A set changes only when its secrets are rotated; the cache is emptied
 * whenever it holds {@link SCRUBBERS_KEPT} sets, so a hub with many subscriptions rebuilds some.
 */
function scrubberOf(secrets: readonly string[]): (text: string) => string {
  const key = secrets.join('\n');
  let scrub = scrubbers.get(key);
  if (scrub === undefined) {
    if (scrubbers.size >= SCRUBBERS_KEPT) scrubbers.clear();
    // A snippet is cut at maxResponseSnippetBytes: a secret at its end may be cut too (cutEnds).
    scrub = secretScrubber(
      secrets.flatMap((s) => (s.startsWith('whsec_') ? [s, s.slice('whsec_'.length)] : [s])),
      { cutEnds: true },
    );
    scrubbers.set(key, scrub);
  }
  return scrub;
}

/** How many sets of secrets {@link scrubberOf} keeps a scrubber of. */
const SCRUBBERS_KEPT = 256;
const scrubbers = new Map<string, (text: string) => string>();

/** The subscription's delivery rate limit in requests per second, when it has one. */
export function ratePerSecond(sub: SubscriptionRow): number | undefined {
  const limit = sub.rate_limit;
  if (limit === null || typeof limit !== 'object' || Array.isArray(limit)) return undefined;
  const perSecond = Number(limit.perSecond);
  return Number.isFinite(perSecond) && perSecond > 0 ? perSecond : undefined;
}

/** The retry schedule of a subscription: ms to wait before each attempt (its length = max attempts). */
export function scheduleOf(rt: Runtime, sub: SubscriptionRow): number[] {
  return sub.retry_schedule_ms && sub.retry_schedule_ms.length > 0
    ? sub.retry_schedule_ms
    : rt.options.retryScheduleMs;
}

type BatchedAttempt = Parameters<typeof deliveryStore.finishDeliveries>[1][number];

/** Deliveries claimed per query at most, commits running at once, attempts per commit at most. */
const CLAIM_BATCH = 64;
const MAX_COMMITS = 2;
const MAX_COMMIT_BATCH = 256;

/**
 * Group commit for delivery attempts that succeeded or will be retried (the common outcomes): the
 * attempts finished while a commit runs are recorded together in the next one, a single statement
 * (attempt rows and delivery moves, lease tokens checked). Deaths and 410s take the per-delivery
 * transaction, since they also change the subscription.
 */
class AttemptWriter {
  private readonly db: Runtime['db'];
  private readonly notify: Runtime['notify'];
  private readonly group: GroupCommit<BatchedAttempt, { moved: boolean; successor: boolean }>;

  /** `lingerMs`: how long a record waits for others (`attemptLingerMs`), unless {@link commitQueued}. */
  constructor(db: Runtime['db'], notify: Runtime['notify'], lingerMs: number) {
    this.db = db;
    this.notify = notify;
    this.group = new GroupCommit({
      maxInFlight: MAX_COMMITS,
      maxBatch: MAX_COMMIT_BATCH,
      lingerMs,
      commit: (items) => this.commit(items),
    });
  }

  write(item: BatchedAttempt): Promise<{ moved: boolean; successor: boolean }> {
    return this.group.write(item);
  }

  /** Writes the records waiting for company now. */
  commitQueued(): void {
    this.group.commitQueued();
  }

  private async commit(items: BatchedAttempt[]): Promise<{ moved: boolean; successor: boolean }[]> {
    const moved = await deliveryStore.finishDeliveries(this.db, items);
    const byId = new Map(moved.map((m) => [m.id, m.successor]));
    // A successor of the same subject may be claimed by another process: wake them once.
    if (moved.some((m) => m.successor)) void this.notify(CHANNEL_DELIVER);
    return items.map((item) => {
      const successor = byId.get(item.deliveryId);
      return { moved: successor !== undefined, successor: successor === true };
    });
  }
}

/**
 * How long a delivery's request may go unanswered before the deliver worker gives up its slot and
 * calls its subscriber stalled. A subscriber that never answers held every slot of a process until
 * its requests timed out (32 on its connections, 32 waiting for one; the subscription's timeout,
 * 10 s by default and up to 60 s), and every other subscriber, on any host, waited (a fault-
 * injection audit, session 40). Past this time the attempt goes on to its answer or its timeout as
 * before, but no longer in a slot, and claims and normalize commits take none of its subscriber's
 * deliveries until that subscriber answers again. Two seconds is far beyond a healthy subscriber's
 * answer (p99 40-50 ms under the bench's load) and short beside any timeout worth setting.
 */
export const STALLED_ATTEMPT_MS = 2_000;

/**
 * Attempts whose slots a worker may give up as stalled, in slots: beyond four times its slots an
 * attempt keeps its slot to its end. Each stalled subscriber takes about one claim's batch before
 * its deliveries are skipped, so this bounds the requests (and their leases) a process holds open
 * when several subscribers hang at once.
 */
const STALLED_SLOTS_FACTOR = 4;

/** The record of one attempt of `d` that `result` answered. */
function attemptRecord(
  d: deliveryStore.DeliveryRow,
  startedAt: Date,
  result: PostWebhookResult,
  outcome: string,
  span: Span | undefined,
): deliveryStore.AttemptRecord {
  return {
    deliveryId: d.id,
    attempt: d.attempts,
    startedAt,
    latencyMs: Math.round(result.latencyMs),
    statusCode: result.status ?? null,
    responseSnippet: result.responseSnippet ?? null,
    error: result.ok ? null : (result.error ?? `HTTP ${result.status}`),
    outcome,
    // The attempt's own span (`switchyard.deliver`): the attempt-latency histogram's exemplar
    // names it (http/metrics-registry.ts).
    traceparent: span ? traceparentOf(span) : null,
  };
}

/** Why an attempt sent was recorded by the release of its delivery ({@link unrecordedAttempt}). */
const UNRECORDED_OUTAGE = 'its outcome could not be recorded (the database was unavailable): sent again';
const UNRECORDED_STOP = 'given up by a stopping worker before its answer was recorded: sent again';

/**
 * The record of an attempt sent and then given back unrecorded (its delivery goes back to
 * `pending` and is sent again, `releaseDeliveries`): a retry, its answer kept, saying why. The
 * claim counted it, and the subscriber may have had it.
 */
function unrecordedAttempt(a: deliveryStore.AttemptRecord, why: string): deliveryStore.AttemptRecord {
  return { ...a, outcome: 'retry', error: a.error === null ? why : `${a.error}; ${why}` };
}

/** An attempt in progress, as the stall watch ({@link Deliverer}) sees it. */
interface RunningAttempt {
  readonly subscription: string;
  readonly url: string | null;
  /** Its subscriber's origin (scheme, host, port), read when first needed. */
  origin?: string;
  /** `performance.now()` when its request started; undefined before (it may wait on the database). */
  sentAt: number | undefined;
  /** Its request was answered (or failed): it is recording its outcome, not waiting on the subscriber. */
  answered: boolean;
  /** Its slot was given up: its subscriber had not answered in {@link STALLED_ATTEMPT_MS}. */
  stalled: boolean;
  /** Ends its request: a stopping worker gives up a stalled request ({@link Deliverer.drain}). */
  readonly abort: AbortController;
  /** Given up by a stopping worker: its delivery goes back (its lease given back), recorded as a retry. */
  abandoned: boolean;
  /** Its record, once its outcome is known: given back with its delivery when it cannot be written. */
  record?: deliveryStore.AttemptRecord;
  /** Settles when the attempt has ended (set when it starts). */
  ended?: Promise<void>;
}

function originOf(attempt: RunningAttempt): string {
  attempt.origin ??= URL.parse(attempt.url ?? '')?.origin ?? attempt.url ?? '';
  return attempt.origin;
}

/**
 * The deliver worker: claims due deliveries (head of line per subscription and subject) with their
 * subscription and event, POSTs them, records every attempt and moves each delivery on (retry,
 * success, dead, disable). It also attempts the deliveries the normalize commit of this process
 * leased when it created them ({@link reserve}, {@link attempt}): below capacity most deliveries
 * never pass through the claim.
 */
export class Deliverer {
  private readonly rt: Runtime;
  private readonly attempts: AttemptWriter;
  private readonly leases: LeaseKeeper;
  /** Its slots: claimed deliveries and those normalize commits lease for it. */
  private readonly slots: SlotLedger;
  /** Attempts in progress (at most the slots, and the stalled ones beyond them). */
  private readonly inProgress = new Set<RunningAttempt>();
  /** Attempts in progress whose slots were given up ({@link STALLED_ATTEMPT_MS}), per origin. */
  private readonly stalledByOrigin = new Map<string, number>();
  /** The "subscriber not answering" warning, bounded per subscription. */
  private readonly notAnswering = new RepeatedWarning();
  private stalledCount = 0;
  /** Runs {@link watchStalls} while attempts are in progress. */
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(rt: Runtime, leases: LeaseKeeper) {
    this.rt = rt;
    this.attempts = new AttemptWriter(rt.db, rt.notify, rt.options.attemptLingerMs);
    this.leases = leases;
    this.slots = new SlotLedger(
      () => rt.options.deliveryConcurrency,
      () => rt.wakeDeliver(),
    );
  }

  /**
   * One pass. While most slots are busy it claims nothing, so that each claim fetches a batch
   * rather than one delivery per finished attempt.
   */
  async tick(): Promise<TickResult> {
    const limit = this.slots.claimable(CLAIM_BATCH);
    if (limit === 0) {
      // Slots busy, some perhaps with records waiting for company: a worker behind needs them now.
      if (this.slots.behind) this.attempts.commitQueued();
      return { busy: false };
    }
    const skip = this.stalledSubscriptions();
    const claimed = await this.slots.claim(
      limit,
      () => deliveryStore.claimDeliveryWork(this.rt.db, this.rt.options.deliveryLeaseMarginMs, limit, skip),
      (works) => works.length,
    );
    for (const work of claimed) this.start(work);
    if (claimed.length === limit) return { busy: this.slots.active < this.rt.options.deliveryConcurrency };
    // Nothing more is due now, but a retry may fall due in a moment: a pass that claimed fewer than
    // it asked for learns when too. Without it the loop slept until its backstop (30 s) once the
    // claimed attempts succeeded (a success wakes no pass): with two retries due a second apart, the
    // first was claimed alone and the second sent 30 s late (an audit, two FHIR subscriptions).
    return { busy: false, nextDueAt: await deliveryStore.settleIdleDeliveries(this.rt.db) };
  }

  /**
   * The subscriptions whose deliveries this worker takes none of now: those of a subscriber origin
   * with an attempt unanswered for {@link STALLED_ATTEMPT_MS} (as far as this worker knows them:
   * the subscriptions of its attempts in progress). Claims skip them, normalize commits lease none
   * of them; an attempt of theirs ending wakes the loop to take them again. Empty (and free) while
   * subscribers answer.
   *
   * @example
   * ```ts
   * const works = await claimDeliveryWork(db, marginMs, limit, deliverer.stalledSubscriptions());
   * ```
   */
  stalledSubscriptions(): string[] {
    if (this.stalledCount === 0) return [];
    const out = new Set<string>();
    for (const a of this.inProgress) if (this.stalledByOrigin.has(originOf(a))) out.add(a.subscription);
    return [...out];
  }

  /**
   * Requests of this worker given up as stalled ({@link STALLED_ATTEMPT_MS}) and still running, by
   * subscription (the `switchyard_delivery_requests_stalled` gauge).
   */
  stalledRequests(): Map<string, number> {
    const out = new Map<string, number>();
    if (this.stalledCount === 0) return out;
    for (const a of this.inProgress)
      if (a.stalled) out.set(a.subscription, (out.get(a.subscription) ?? 0) + 1);
    return out;
  }

  /**
   * Gives up the slots of attempts whose subscriber has not answered in {@link STALLED_ATTEMPT_MS}
   * (up to {@link STALLED_SLOTS_FACTOR} times the slots), and wakes the loop to fill them with other
   * subscribers' deliveries. Runs on a timer while attempts are in progress.
   */
  private watchStalls(): void {
    const now = performance.now();
    const max = this.rt.options.deliveryConcurrency * STALLED_SLOTS_FACTOR;
    let freed = 0;
    for (const a of this.inProgress) {
      if (this.stalledCount >= max) break;
      if (a.stalled || a.answered || a.sentAt === undefined || now - a.sentAt < STALLED_ATTEMPT_MS) continue;
      a.stalled = true;
      this.stalledCount++;
      const origin = originOf(a);
      const before = this.stalledByOrigin.get(origin) ?? 0;
      this.stalledByOrigin.set(origin, before + 1);
      if (before === 0) {
        // A subscriber answering near the threshold stalls one request after another: said at most
        // once a minute per subscription (an audit counted 17 in 75 s), the rest at debug.
        const fields = { subscription: a.subscription, origin, afterMs: STALLED_ATTEMPT_MS };
        const msg =
          'subscriber not answering: its requests run to their timeout outside the deliver slots, and its deliveries wait until it answers';
        warnRepeated(this.rt.logger, this.notAnswering.take(a.subscription), fields, msg);
      }
      this.slots.done();
      freed++;
    }
    if (freed > 0) this.rt.wakeDeliver();
  }

  /** Counts an attempt in progress (and starts the stall watch); {@link ended} counts it out. */
  private begun(work: deliveryStore.DeliveryWork): RunningAttempt {
    const a: RunningAttempt = {
      subscription: work.subscription.id,
      url: work.subscription.url,
      sentAt: undefined,
      answered: false,
      stalled: false,
      abort: new AbortController(),
      abandoned: false,
    };
    this.inProgress.add(a);
    this.stallTimer ??= setInterval(() => this.watchStalls(), STALLED_ATTEMPT_MS / 4).unref();
    return a;
  }

  /** An attempt ended: its slot is free (given up already if it stalled). Returns whether it had stalled. */
  private ended(a: RunningAttempt): boolean {
    this.inProgress.delete(a);
    if (this.inProgress.size === 0 && this.stallTimer) {
      clearInterval(this.stallTimer);
      this.stallTimer = undefined;
    }
    if (!a.stalled) {
      this.slots.done();
      return false;
    }
    this.stalledCount--;
    const origin = originOf(a);
    const n = (this.stalledByOrigin.get(origin) ?? 1) - 1;
    if (n > 0) this.stalledByOrigin.set(origin, n);
    else this.stalledByOrigin.delete(origin);
    return true;
  }

  /** Lets normalize commits lease deliveries for this worker (the hub calls it once its loop runs). */
  acceptLeased(accepting: boolean): void {
    this.slots.accept(accepting);
  }

  /**
   * Promises up to `max` free slots to a normalize commit about to run, for the deliveries it
   * creates leased (`commitNormalized`'s `lease.limit`); 0 when the worker does not run, has a
   * backlog, or has no free slot. Hand the slots back with {@link attempt} whatever the commit
   * did (with no work if it failed).
   *
   * @example
   * ```ts
   * const slots = deliverer.reserve(64);
   * let leased = [];
   * try { ({ leased } = await commitNormalized(db, messages, events, states, { limit: slots, marginMs })); }
   * finally { deliverer.attempt(leased, slots); }
   * ```
   */
  reserve(max: number): number {
    return this.slots.reserve(max);
  }

  /**
   * Starts the deliveries a normalize commit leased in the slots {@link reserve} promised (`slots`
   * of them, `works.length` at most that), as a claimed delivery is started: now, so none waits in
   * memory while its lease runs.
   */
  attempt(works: readonly deliveryStore.DeliveryWork[], slots: number): void {
    this.slots.release(slots, works.length);
    for (const work of works) this.start(work);
  }

  /**
   * Attempts one leased delivery in a slot (already counted in use: the claim's, or the
   * reservation's), its lease renewed until its outcome is recorded.
   */
  private start(work: deliveryStore.DeliveryWork): void {
    const marginMs = this.rt.options.deliveryLeaseMarginMs;
    const id = work.delivery.id;
    const running = this.begun(work);
    // The claim (or the commit that created it) leased it for the subscription's timeout plus the
    // margin, so an attempt still running is never retaken; renewals keep that much ahead while
    // it runs and is recorded.
    this.leases.hold('deliveries', id, work.delivery.lock_token!, work.subscription.timeout_ms + marginMs);
    // One span per attempt, continuing the trace of the normalization that created the event.
    const p = withSpan(
      'switchyard.deliver',
      {
        kind: SpanKind.CONSUMER,
        parent: work.event?.traceparent ?? null,
        parentState: work.event?.tracestate ?? null,
        attributes: {
          'messaging.system': 'switchyard',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': 'deliver',
          'messaging.message.id': work.delivery.event_id,
          'switchyard.delivery': id,
          'switchyard.subscription': work.subscription.id,
          'switchyard.attempt': work.delivery.attempts,
        },
      },
      (span) => this.process(work, span, running),
    )
      .then(
        (wake) => {
          this.leases.done('deliveries', id);
          return wake;
        },
        (error: unknown) => {
          if (isDatabaseUnavailable(error)) {
            // The outcome could not be recorded: back to pending once the database is back; its
            // attempt uncounted when the outage came before the POST (the rate-limit token, say:
            // counted, CI read a delivery at 2 attempts with one recorded), recorded as a retry
            // when it came after (its record, the group commit's, say: unrecorded, CI read the same).
            this.leases.giveBack(
              'deliveries',
              id,
              running.sentAt === undefined
                ? { unsent: true }
                : running.record && { attempt: unrecordedAttempt(running.record, UNRECORDED_OUTAGE) },
            );
            reportDatabaseUnavailable(
              this.rt.logger,
              error,
              'deliveries cut short are given back when it is back',
            );
            return true;
          }
          this.leases.done('deliveries', id);
          this.rt.logger.error(
            { err: error, delivery: id },
            'delivery crashed; it is tried again when its lease runs out',
          );
          // The next pass learns when its lease runs out.
          return true;
        },
      )
      .then((wake) => {
        // A stalled subscriber's attempt ending: its deliveries may be claimed again.
        const stalled = this.ended(running);
        // A freed slot matters only to a worker that is behind.
        if (wake || stalled || this.slots.behind) this.rt.wakeDeliver();
      });
    running.ended = p;
  }

  /**
   * Waits for the attempts in progress to end and record, but not for a request to a subscriber
   * that stopped answering ({@link STALLED_ATTEMPT_MS}, now or while it waits): that request is
   * ended and its delivery given back, due at once, its attempt counted and recorded as a retry
   * (the subscriber may have had it: the next attempt carries the same `webhook-id`), as a crash
   * would leave it but recorded and without waiting out the lease. A stop used to wait for such
   * requests' timeouts, up to twice the subscription's (those queued for a connection start theirs
   * when they get one).
   */
  async drain(): Promise<void> {
    // Records waiting for company go now (the worker no longer accepts: later ones go at once).
    this.attempts.commitQueued();
    for (;;) {
      const waiting: Promise<void>[] = [];
      for (const a of this.inProgress) {
        if (a.stalled && !a.abandoned) {
          a.abandoned = true;
          a.abort.abort();
        } else if (!a.abandoned && a.ended) waiting.push(a.ended);
      }
      if (waiting.length === 0) break;
      // Until they end, or another request stalls (the watch runs every quarter of the bound).
      await Promise.race([Promise.allSettled(waiting), sleep(STALLED_ATTEMPT_MS / 4)]);
    }
    // The given-up requests end at their abort: their deliveries are back once they have.
    await Promise.allSettled([...this.inProgress].map((a) => a.ended));
  }

  /**
   * One attempt of a leased delivery and its record. Resolves true when the loop should run a pass
   * for it: something may have become claimable or due at a new time (a retry, a death, a
   * delivery put back), false after a success with no successor waiting in its line.
   */
  private async process(
    work: deliveryStore.DeliveryWork,
    span: Span | undefined,
    running: RunningAttempt,
  ): Promise<boolean> {
    const { rt } = this;
    const { delivery: d, subscription: sub, event } = work;
    const token = d.lock_token!;
    if (sub.disabled_at !== null) {
      // Disabled between claim and now: not an attempt; it waits for the subscription to return.
      await deliveryStore.finishDelivery(rt.db, d.id, token, {
        status: 'pending',
        statusCode: d.last_status_code,
        error: d.last_error,
        attempts: d.attempts - 1,
      });
      return true;
    }
    const perSecond = ratePerSecond(sub);
    if (perSecond !== undefined) {
      const waitMs = await deliveryStore.takeRateToken(rt.db, sub.id, perSecond);
      if (waitMs > 0) {
        // Over the subscription's rate: back in line without counting an attempt.
        await deliveryStore.finishDelivery(rt.db, d.id, token, {
          status: 'pending',
          nextAttemptInMs: waitMs,
          statusCode: d.last_status_code,
          error: d.last_error,
          attempts: d.attempts - 1,
        });
        return true;
      }
    }
    const startedAt = new Date();
    let result: PostWebhookResult;
    let invalid = false;
    // The hub failed before anything was sent (a secret that does not open, say, sealed under
    // another secretKey): an attempt like any failed one, retried on the schedule and dead at its
    // end, with its error in the attempt log. It was a crash the lease ran again and again, each
    // run counting an attempt, never dead, no error shown, the subject's later events waiting.
    let hubFault = false;
    if (!event) {
      result = {
        ok: false,
        latencyMs: 0,
        error: 'the event no longer exists (retention)',
        errorKind: 'ssrf',
      };
    } else {
      let rendered: ReturnType<typeof renderDelivery> | undefined;
      try {
        rendered = renderDelivery({ ...work, event });
        running.sentAt = performance.now();
        result =
          rendered.kind === 'body'
            ? await postSigned(rt, sub, event.id, rendered.body, rendered.contentType, {
                signal: running.abort.signal,
              })
            : {
                ok: false,
                latencyMs: 0,
                error: rendered.kind === 'invalid' ? rendered.error : rendered.reason,
              };
      } catch (error) {
        if (isDatabaseUnavailable(error)) throw error;
        hubFault = true;
        result = { ok: false, latencyMs: 0, error: `the hub could not send it: ${(error as Error).message}` };
      }
      // From here the attempt waits on the database, not on its subscriber.
      running.answered = true;
      if (running.abandoned) {
        // A stopping worker gave the request up: the delivery goes back, the attempt recorded as a
        // retry (the subscriber may have had it; counted, it needs its row).
        const attempt = attemptRecord(d, startedAt, result, 'retry', span);
        this.leases.giveBack('deliveries', d.id, { attempt: unrecordedAttempt(attempt, UNRECORDED_STOP) });
        return false;
      }
      if (rendered?.kind === 'none') {
        // Nothing to send (a replay of an event with no FHIR meaning): not an attempt.
        await deliveryStore.finishDelivery(rt.db, d.id, token, {
          status: 'skipped',
          statusCode: null,
          error: rendered.reason,
          attempts: d.attempts - 1,
        });
        return true;
      }
      // Never sent half-formed: dead at once with the validator's message, replayable once fixed.
      invalid = rendered?.kind === 'invalid';
    }

    const schedule = scheduleOf(rt, sub);
    let outcome: 'succeeded' | 'retry' | 'dead' | 'gone';
    if (invalid) outcome = 'dead';
    else if (result.ok) outcome = 'succeeded';
    else if (result.status === 410) outcome = 'gone';
    else if (d.attempts < schedule.length && event) outcome = 'retry';
    else outcome = 'dead';

    let delay = 0;
    if (outcome === 'retry') {
      const next = nextAttemptDelay({
        schedule,
        attempt: d.attempts,
        retryAfterMs: result.retryAfterMs,
        jitter: rt.options.retryJitter,
        ...(rt.options.maxRetryAfterMs !== undefined ? { maxRetryAfterMs: rt.options.maxRetryAfterMs } : {}),
      });
      if (next === null) outcome = 'dead';
      else delay = next;
    }
    const attempt = attemptRecord(d, startedAt, result, outcome, span);
    const { error, statusCode } = attempt;
    setSpanAttributes({
      'switchyard.delivery.outcome': outcome,
      ...(statusCode !== null ? { 'http.response.status_code': statusCode } : {}),
      ...(outcome === 'retry' ? { 'switchyard.retry_in_ms': delay } : {}),
    });
    // Why the subscription was disabled by this attempt, if it was.
    let disabledNow: string | undefined;
    let successor = false;
    // Sent: should its record fail with the database, the release records it instead.
    running.record = attempt;

    if (outcome === 'succeeded' || outcome === 'retry') {
      const writing = this.attempts.write({
        ...attempt,
        lockToken: token,
        status: outcome === 'succeeded' ? 'succeeded' : 'pending',
        nextAttemptInMs: delay,
      });
      // Behind, the slot is needed; stopping, the drain waits: no waiting for company
      // (`attemptLingerMs`).
      if (this.slots.behind || !this.slots.accepts) this.attempts.commitQueued();
      const written = await writing;
      successor = written.successor;
      // The joined row tells whether there is anything to reset: most successes skip the write.
      if (written.moved && outcome === 'succeeded' && sub.consecutive_dead !== 0)
        await subscriptionStore.resetConsecutiveDead(rt.db, sub.id);
    } else {
      await rt.db.transaction().execute(async (trx) => {
        // The subscription's row before the delivery's, the order of a disable (its park) and a
        // delete (its cascade): locked after it, as before, an attempt holding its delivery waited
        // for the row of a subscription being disabled, whose park waited for that delivery (40P01,
        // the burst of deaths that disables a subscription with a backlog). Read locked, it also
        // says whether the subscription is enabled still: only the attempt that disables it says so.
        const current = await subscriptionStore.lockSubscription(trx, sub.id);
        const enabled = current !== undefined && current.disabled_at === null;
        await deliveryStore.insertAttempt(trx, attempt);
        const status = outcome === 'dead' ? 'dead' : 'pending';
        const moved = await deliveryStore.finishDelivery(trx, d.id, token, {
          status,
          nextAttemptInMs: delay,
          statusCode,
          error,
        });
        if (!moved) return;
        if (outcome === 'gone') {
          if (!enabled) return;
          disabledNow = 'the subscriber answered 410 Gone';
          await subscriptionStore.disableSubscription(trx, sub.id, disabledNow);
        } else {
          if (sub.ordering === 'hold')
            await deliveryStore.holdSubject(trx, sub.id, d.subject, d.event_sequence);
          else await notify(trx, CHANNEL_DELIVER);
          // A resource the hub could not build validly, or the hub's own failure, says nothing about
          // the subscriber's endpoint.
          if (invalid || hubFault) return;
          const count = await subscriptionStore.bumpConsecutiveDead(trx, sub.id);
          if (
            enabled &&
            count >= (sub.disable_after_consecutive_dead ?? rt.options.disableAfterConsecutiveDead)
          ) {
            disabledNow = `${count} consecutive deliveries died`;
            await subscriptionStore.disableSubscription(trx, sub.id, disabledNow);
          }
        }
      });
    }
    const level = outcome === 'succeeded' || outcome === 'retry' ? 'debug' : 'warn';
    if (rt.logger.isLevelEnabled(level)) {
      const logger = rt.logger.child({ delivery: d.id, subscription: d.subscription_id, event: d.event_id });
      logger[level](
        {
          attempt: d.attempts,
          outcome,
          status: statusCode,
          latencyMs: result.latencyMs,
          error,
          nextInMs: delay,
        },
        'delivery attempt',
      );
      if (disabledNow)
        logger.warn(
          { subscription: sub.id, reason: disabledNow },
          'subscription disabled: its events wait; once the subscriber is back, enable it with replayMissed (the dashboard, or POST /v1/subscriptions/{id}/enable) to send them',
        );
    }
    return outcome !== 'succeeded' || successor;
  }
}

/** What {@link Deliverer} and `sendTestEvent` report about one attempt. */
export interface AttemptResult {
  ok: boolean;
  statusCode?: number;
  latencyMs: number;
  responseSnippet?: string;
  error?: string;
}

export function attemptResult(r: PostWebhookResult): AttemptResult {
  return {
    ok: r.ok,
    latencyMs: r.latencyMs,
    ...(r.status !== undefined ? { statusCode: r.status } : {}),
    ...(r.responseSnippet !== undefined ? { responseSnippet: r.responseSnippet } : {}),
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
}
