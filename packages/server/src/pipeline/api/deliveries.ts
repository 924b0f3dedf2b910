import { SwitchyardError } from '@switchyard/core';
import { invalid, notFound } from '../../admin/errors.ts';
import * as deliveryStore from '../../deliveries/store.ts';
import { newId } from '../../storage/db.ts';
import { CHANNEL_DELIVER, notify } from '../../storage/queues.ts';
import { requireSubscription } from '../../subscriptions/api.ts';
import type { Delivery, DeliveryWithAttempts, Page } from '../api-types.ts';
import { clampLimit, toDelivery, UUID } from '../views.ts';
import { type HubContext, withAttempts } from './context.ts';

/** The `hub.deliveries` section: delivery history, replays and skips. */
export function deliveriesApi(ctx: HubContext) {
  const { db, rt } = ctx;

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
      rt.wakeDeliver();
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
      await requireSubscription(db, subscriptionId);
      const replayed = await db.transaction().execute(async (trx) => {
        const dead = await deliveryStore.listDeadUnsuperseded(trx, subscriptionId);
        for (const row of dead) {
          await deliveryStore.insertReplay(trx, newId(), row);
          await deliveryStore.releaseSubject(trx, subscriptionId, row.subject);
        }
        await notify(trx, CHANNEL_DELIVER);
        return dead.length;
      });
      rt.wakeDeliver();
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
      const sub = await requireSubscription(db, subscriptionId);
      if (!(since instanceof Date) || Number.isNaN(since.getTime()))
        throw invalid('since must be a valid date');
      if (sub.kind !== 'webhook')
        throw invalid('a pull subscription replays by polling from an earlier cursor');
      const replayed = await db.transaction().execute(async (trx) => {
        const n = await deliveryStore.insertReplaysSince(trx, sub, { since });
        await notify(trx, CHANNEL_DELIVER);
        return n;
      });
      rt.wakeDeliver();
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
      rt.wakeDeliver();
      return toDelivery(row);
    },
  };
}
