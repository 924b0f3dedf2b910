/**
 * The `hub.deliveries` section: delivery history, replays and skips, built on the declared
 * {@link DeliveriesHost}; and how the API shows a delivery and its attempts.
 */
import { SwitchyardError } from '@switchyard/core';
import type { Kysely } from 'kysely';
import { invalid, notFound } from '../admin/errors.ts';
import { clampLimit, type Page, UUID } from '../admin/page.ts';
import { newId } from '../storage/db.ts';
import { CHANNEL_DELIVER, notify } from '../storage/queues.ts';
import { isSubscriptionGone } from '../storage/subscription-gone.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { exemplarOfTraceparent } from '../telemetry/tracing.ts';
import * as deliveryStore from './store.ts';

export interface Attempt {
  attempt: number;
  startedAt: Date;
  latencyMs: number | null;
  statusCode: number | null;
  responseSnippet: string | null;
  error: string | null;
  outcome: string;
  /** The trace of the attempt's `switchyard.deliver` span, when tracing was on and sampled it. */
  traceId: string | null;
}

export interface Delivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventSequence: string;
  subject: string;
  status: 'pending' | 'in_flight' | 'succeeded' | 'dead' | 'skipped' | 'held';
  reason: 'fanout' | 'replay';
  replayOf: string | null;
  supersededBy: string | null;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

export type DeliveryWithAttempts = Delivery & { attemptLog: Attempt[] };

/** A delivery row as the API shows it. @example `const view = toDelivery(row);` */
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

/** An attempt row as the API shows it. @example `const view = toAttempt(row);` */
export function toAttempt(a: deliveryStore.AttemptRow): Attempt {
  return {
    attempt: a.attempt,
    startedAt: a.started_at,
    latencyMs: a.latency_ms,
    statusCode: a.status_code,
    responseSnippet: a.response_snippet,
    error: a.error,
    outcome: a.outcome,
    // Only a sampled trace reached a collector: none other can be looked up.
    traceId: exemplarOfTraceparent(a.traceparent)?.trace_id ?? null,
  };
}

/** Deliveries with their attempt logs, loaded in one query. */
async function withAttempts(
  db: Kysely<unknown>,
  rows: deliveryStore.DeliveryRow[],
): Promise<DeliveryWithAttempts[]> {
  const attempts = await deliveryStore.listAttempts(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({
    ...toDelivery(r),
    attemptLog: attempts.filter((a) => a.delivery_id === r.id).map(toAttempt),
  }));
}

/**
 * The deliveries of an event with their attempts, oldest first (at most 500): what `hub.events.get`
 * shows beside the event.
 *
 * @example
 * ```ts
 * const deliveries = await deliveriesOfEvent(db, eventId);
 * ```
 */
export async function deliveriesOfEvent(
  db: Kysely<unknown>,
  eventId: string,
): Promise<DeliveryWithAttempts[]> {
  const deliveries = await deliveryStore.listDeliveries(db, { eventId, limit: 500 });
  return withAttempts(db, deliveries.reverse());
}

/**
 * What the deliveries API needs of the hub, and nothing more.
 *
 * @example
 * ```ts
 * const api = deliveriesApi({ db, wakeDeliver: () => rt.wakeDeliver(), requireSubscription: (id) => requireSubscription(db, id) });
 * ```
 */
export interface DeliveriesHost {
  /** The hub's database; the API opens its own transactions on it. */
  db: Kysely<unknown>;
  /** Wakes this process's deliver loop (a replay or a skip made deliveries due). */
  wakeDeliver(): void;
  /** The subscription row, or SY_PIPELINE_NOT_FOUND (the subscriptions concept's lookup). */
  requireSubscription(id: string): Promise<SubscriptionRow>;
}

/** The `hub.deliveries` section: delivery history, replays and skips. */
export function deliveriesApi(host: DeliveriesHost) {
  const { db, requireSubscription } = host;

  async function replayRow(id: string, force: boolean): Promise<deliveryStore.DeliveryRow | undefined> {
    return db.transaction().execute(async (trx) => {
      const row = await deliveryStore.lockDelivery(trx, id);
      if (!row) return undefined;
      if (row.status === 'pending' || row.status === 'in_flight' || row.status === 'held') {
        throw new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `delivery ${row.id} is ${row.status}: it will still be sent`,
          { details: { delivery: row.id, status: row.status } },
        );
      }
      // A second click on Replay must not send the event a second time by accident.
      if (row.superseded_by !== null && !force) {
        throw new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `delivery ${row.id} was already replayed as ${row.superseded_by}: replay that one, or pass force: true to send this one again`,
          { details: { delivery: row.id, replayedAs: row.superseded_by } },
        );
      }
      const fresh = await deliveryStore.insertReplay(trx, newId(), row);
      if (row.status === 'dead') await deliveryStore.releaseSubject(trx, row.subscription_id, row.subject);
      await notify(trx, CHANNEL_DELIVER);
      return fresh;
    });
  }

  return {
    /**
     * Lists deliveries, newest first.
     *
     * @example
     * ```ts
     * const dead = await hub.deliveries.list({ subscriptionId: id, status: 'dead' });
     * ```
     */
    async list(
      f: {
        subscriptionId?: string;
        eventId?: string;
        status?: Delivery['status'];
        /** true: only deliveries already replayed (`supersededBy` set); false: only the others. */
        replayed?: boolean;
        cursor?: string;
        limit?: number;
      } = {},
    ): Promise<Page<Delivery>> {
      const limit = clampLimit(f.limit);
      if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
      if (f.eventId !== undefined && !UUID.test(f.eventId)) return { items: [], nextCursor: null };
      const rows = await deliveryStore.listDeliveries(db, {
        ...(f.subscriptionId ? { subscriptionId: f.subscriptionId } : {}),
        ...(f.eventId ? { eventId: f.eventId } : {}),
        ...(f.status ? { status: f.status } : {}),
        ...(f.replayed !== undefined ? { replayed: f.replayed } : {}),
        ...(f.cursor ? { beforeSeq: f.cursor } : {}),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      return {
        items: page.map(toDelivery),
        nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null,
      };
    },

    /** One delivery with every attempt (status, latency, response snippet). @example `const d = await hub.deliveries.get(id);` */
    async get(id: string): Promise<DeliveryWithAttempts> {
      if (!UUID.test(id)) throw notFound('delivery', id);
      const row = await deliveryStore.getDelivery(db, id);
      if (!row) throw notFound('delivery', id);
      return (await withAttempts(db, [row]))[0]!;
    },

    /**
     * Sends a finished delivery again as a new delivery of the SAME event (same `webhook-id`).
     * Replaying a dead delivery also lets the deliveries held behind it go. A delivery replayed
     * once is refused (`SY_PIPELINE_CONFLICT`, `details.replayedAs`) unless `force` is set: a
     * second replay sends the event to the subscriber again.
     *
     * @example
     * ```ts
     * const again = await hub.deliveries.replay(deadId);
     * const onceMore = await hub.deliveries.replay(deadId, { force: true });
     * ```
     */
    async replay(id: string, opts: { force?: boolean } = {}): Promise<Delivery> {
      if (!UUID.test(id)) throw notFound('delivery', id);
      const fresh = await replayRow(id, opts.force === true);
      if (!fresh) throw notFound('delivery', id);
      host.wakeDeliver();
      return toDelivery(fresh);
    },

    /**
     * Replays every dead (not yet replayed) delivery of a subscription, oldest event first.
     *
     * @example
     * ```ts
     * const { replayed } = await hub.deliveries.replayDead(subscriptionId);
     * ```
     */
    async replayDead(subscriptionId: string): Promise<{ replayed: number }> {
      await requireSubscription(subscriptionId);
      const replayed = await db.transaction().execute(async (trx) => {
        const dead = await deliveryStore.listDeadUnsuperseded(trx, subscriptionId);
        for (const row of dead) {
          await deliveryStore.insertReplay(trx, newId(), row);
          await deliveryStore.releaseSubject(trx, subscriptionId, row.subject);
        }
        await notify(trx, CHANNEL_DELIVER);
        return dead.length;
      });
      host.wakeDeliver();
      return { replayed };
    },

    /**
     * Sends again every event matching the subscription that was stored since `since`, as new
     * deliveries with the same event ids.
     *
     * @example
     * ```ts
     * await hub.deliveries.replaySince(subscriptionId, new Date(Date.now() - 3_600_000));
     * ```
     */
    async replaySince(subscriptionId: string, since: Date): Promise<{ replayed: number }> {
      const sub = await requireSubscription(subscriptionId);
      if (!(since instanceof Date) || Number.isNaN(since.getTime()))
        throw invalid('since must be a valid date');
      if (sub.kind !== 'webhook')
        throw invalid('a pull subscription replays by polling from an earlier cursor');
      const replayed = await db
        .transaction()
        .execute(async (trx) => {
          const n = await deliveryStore.insertReplaysSince(trx, sub, { since });
          await notify(trx, CHANNEL_DELIVER);
          return n;
        })
        .catch((error: unknown) => {
          // Deleted since it was looked up: answered as the lookup would now, not as a 500.
          throw isSubscriptionGone(error) ? notFound('subscription', subscriptionId) : error;
        });
      host.wakeDeliver();
      return { replayed };
    },

    /**
     * Gives up on a pending, held or dead delivery: it will not be sent, and later deliveries of
     * its subject stop waiting for it.
     *
     * @example
     * ```ts
     * await hub.deliveries.skip(deadId);
     * ```
     */
    async skip(id: string): Promise<Delivery> {
      if (!UUID.test(id)) throw notFound('delivery', id);
      const row = await db.transaction().execute(async (trx) => {
        const skipped = await deliveryStore.skipDelivery(trx, id);
        if (skipped) {
          await deliveryStore.releaseSubject(trx, skipped.subscription_id, skipped.subject);
          await notify(trx, CHANNEL_DELIVER);
        }
        return skipped;
      });
      if (!row) {
        const existing = await deliveryStore.getDelivery(db, id);
        if (!existing) throw notFound('delivery', id);
        throw new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `delivery ${id} is ${existing.status}: it cannot be skipped`,
        );
      }
      host.wakeDeliver();
      return toDelivery(row);
    },
  };
}

/** The `hub.deliveries` section, as the deliveries' routes take it. */
export type DeliveriesApi = ReturnType<typeof deliveriesApi>;
