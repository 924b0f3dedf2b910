import { invalid } from '../../admin/errors.ts';
import * as deliveryStore from '../../deliveries/store.ts';
import * as eventStore from '../../events/store.ts';
import { requireSubscription } from '../../subscriptions/api.ts';
import { clampLimit, toEvent } from '../views.ts';
import type { HubContext } from './context.ts';

/** The `hub.feed` section: reading and acknowledging a pull subscription's events. */
export function feedApi(ctx: HubContext) {
  const { db } = ctx;

  return {
    /**
     * Reads a pull subscription's events in order after `after` (default: the last acknowledged
     * position). Pass `nextCursor` to `ack` once processed, or as `after` to read on.
     *
     * @example
     * ```ts
     * const { events, nextCursor } = await hub.feed.poll(subId, { limit: 100 });
     * await hub.feed.ack(subId, nextCursor);
     * ```
     */
    async poll(subscriptionId: string, opts: { after?: string; limit?: number } = {}) {
      const sub = await requireSubscription(db, subscriptionId);
      if (sub.kind !== 'pull') throw invalid(`subscription ${subscriptionId} is not a pull subscription`);
      if (opts.after !== undefined && !/^\d+$/.test(opts.after)) throw invalid('after is not a valid cursor');
      const after = opts.after ?? (await deliveryStore.getFeedCursor(db, subscriptionId)) ?? '0';
      const rows = await eventStore.pollFeed(db, sub, after, clampLimit(opts.limit, 1000, 100));
      return {
        events: rows.map(toEvent),
        nextCursor: rows.length > 0 ? rows[rows.length - 1]!.sequence : after,
      };
    },

    /** Stores the acknowledged position (it never moves back). @example `await hub.feed.ack(subId, '42');` */
    async ack(subscriptionId: string, cursor: string): Promise<{ cursor: string }> {
      const sub = await requireSubscription(db, subscriptionId);
      if (sub.kind !== 'pull') throw invalid(`subscription ${subscriptionId} is not a pull subscription`);
      if (!/^\d+$/.test(cursor)) throw invalid('cursor is not valid');
      await deliveryStore.setFeedCursor(db, subscriptionId, cursor);
      return { cursor: (await deliveryStore.getFeedCursor(db, subscriptionId))! };
    },
  };
}
