/**
 * The `hub.feed` section: a pull subscription's events, read and acknowledged, built on the
 * declared {@link FeedHost}. The feed is the pull kind of subscription's delivery, so it lives with
 * the subscription concept.
 */
import type { Kysely } from 'kysely';
import { invalid } from '../admin/errors.ts';
import { clampLimit } from '../admin/page.ts';
import * as deliveryStore from '../deliveries/store.ts';
import { toEvent } from '../events/api.ts';
import * as eventStore from '../events/store.ts';
import { requireSubscription } from './api.ts';

/**
 * What the feed API needs of the hub, and nothing more.
 *
 * @example
 * ```ts
 * const api = feedApi({ db });
 * ```
 */
export interface FeedHost {
  /** The hub's database. */
  db: Kysely<unknown>;
}

/**
 * Refuses a cursor past the newest event: no poll gave it (see `poll` and `ack`). The answer does
 * not say which event is the newest: that is the hub's, across every instance, and a reader of a
 * subscription filtered to a few types or sources was told how many events others had just
 * stored (an attacker audit).
 */
async function refusePastNewest(db: Kysely<unknown>, cursor: string): Promise<void> {
  const newest = await eventStore.newestSequence(db);
  if (BigInt(cursor) > BigInt(newest)) {
    throw invalid(`cursor ${cursor} is past the newest event: use a nextCursor the feed gave`);
  }
}

/** The `hub.feed` section: reading and acknowledging a pull subscription's events. */
export function feedApi(host: FeedHost) {
  const { db } = host;

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
      // A cursor no poll gave (a reader's own copy after the hub's database was restored from an
      // older backup, another hub's): answered with no events and itself as nextCursor, the reader
      // would wait there while the events numbered up to it passed by. Checked on an empty page
      // only: an event after the cursor means the cursor is not past the newest.
      if (rows.length === 0 && opts.after !== undefined) await refusePastNewest(db, opts.after);
      return {
        events: rows.map(toEvent),
        nextCursor: rows.length > 0 ? rows[rows.length - 1]!.sequence : after,
      };
    },

    /**
     * Stores the acknowledged position (it never moves back). A cursor past the newest stored event
     * is refused: no poll gave it, and stored it would hide every event up to it for good (the
     * position cannot move back).
     *
     * @example
     * ```ts
     * await hub.feed.ack(subId, '42');
     * ```
     */
    async ack(subscriptionId: string, cursor: string): Promise<{ cursor: string }> {
      const sub = await requireSubscription(db, subscriptionId);
      if (sub.kind !== 'pull') throw invalid(`subscription ${subscriptionId} is not a pull subscription`);
      if (!/^\d+$/.test(cursor)) throw invalid('cursor is not valid');
      await refusePastNewest(db, cursor);
      await deliveryStore.setFeedCursor(db, subscriptionId, cursor);
      return { cursor: (await deliveryStore.getFeedCursor(db, subscriptionId))! };
    },
  };
}

/** The `hub.feed` section, as the feed routes take it. */
export type FeedApi = ReturnType<typeof feedApi>;
