/**
 * The `hub.feed` section: a pull subscription's events, read and acknowledged, built on the
 * declared {@link FeedHost}. The feed is the pull kind of subscription's delivery, so it lives with
 * the subscription concept.
 */
import type { Kysely } from 'kysely';
import { invalid, notFound } from '../admin/errors.ts';
import { clampLimit } from '../admin/page.ts';
import * as deliveryStore from '../deliveries/store.ts';
import { toEvent } from '../events/api.ts';
import * as eventStore from '../events/store.ts';
import { CredentialSnapshot, credentialDigest } from '../storage/credential-snapshot.ts';
import { isSubscriptionGone } from '../storage/subscription-gone.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { requireSubscription } from './api.ts';
import { FeedWaits, type Listen } from './feed-waits.ts';
import { listSubscriptions } from './store.ts';

/**
 * After a wake-up that found only events held back behind a missing sequence (`pollFeed`'s
 * horizon), the long-poll reads again after this long, doubling up to {@link HELD_RECHECK_MAX_MS}:
 * nothing announces that the horizon passed (the missing one rolled back, or its writer ended), and
 * waiting for the next NOTIFY would hold a servable event until the wait ends. A third of the
 * commit window at most, so a held event is served at most that late; never a tight loop.
 */
const HELD_RECHECK_MIN_MS = 100;
const HELD_RECHECK_MAX_MS = (eventStore.FEED_COMMIT_WINDOW_S * 1000) / 3;

/**
 * What the feed API needs of the hub, and nothing more.
 *
 * @example
 * ```ts
 * const api = feedApi({ db, listen: (c, h) => listener.listen(c, h), longPoll: CONFIG_DEFAULTS.feed, signingSecrets });
 * ```
 */
export interface FeedHost {
  /** The hub's database. */
  db: Kysely<unknown>;
  /**
   * The host's LISTEN connection (`HubListener.listen`): long-polls are woken by `CHANNEL_FEED`
   * from any process. Absent: a long-poll is woken only by its timer and held-event re-reads.
   */
  listen?: Listen;
  /** The long-poll's bounds: `feed` of CONFIG_DEFAULTS (the hub hands them over; this folder sits below config). */
  longPoll: FeedLongPoll;
  /** A subscription's signing secrets in force now, opened (`HubHost.signingSecrets`): its feed's credentials. */
  signingSecrets(subscription: SubscriptionRow): string[];
}

/**
 * The long-poll's bounds, seconds: the wait a read gets without `wait`, the longest it may ask
 * for, and how many reads may wait at once in one process.
 */
export interface FeedLongPoll {
  wait: number;
  maxWait: number;
  waiters: number;
  /** How many of `waiters` one subscription may hold (its readers' extra reads get 503). */
  waitersPerSubscription: number;
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
  const { db, longPoll } = host;
  const waits = new FeedWaits(
    host.listen ?? (async () => undefined),
    longPoll.waiters,
    Math.min(longPoll.waiters, longPoll.waitersPerSubscription),
  );
  // The digests of every subscription's secrets in force, for addresses over the failed-auth
  // limit (mayBeSecret). One per hub, not per app: `secretsChanged` (called by hub.subscriptions
  // whenever it writes secrets) must reach the one the routes read, whatever app serves them.
  const secretDigests = new CredentialSnapshot({
    load: async () =>
      (await listSubscriptions(db)).flatMap((row) =>
        host.signingSecrets(row).map((secret) => credentialDigest(row.id, secret)),
      ),
  });

  /** What a long-poll may ask for: whole seconds from 0 to `maxWait`, `wait` by default. */
  const waitMs = (wait: number | undefined): number => {
    const seconds = wait ?? longPoll.wait;
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > longPoll.maxWait)
      throw invalid(`wait must be a whole number of seconds from 0 to ${longPoll.maxWait}`);
    return seconds * 1000;
  };

  return {
    /**
     * Reads a pull subscription's events in order after `after` (default: the last acknowledged
     * position). Pass `nextCursor` to `ack` once processed, or as `after` to read on. `gap`, when
     * present: retention removed events after `after` that the subscription had not acknowledged
     * (`{ through, events }`, events/store.ts `FeedGap`); reading goes on after them.
     *
     * `wait` (seconds, 0 to `longPoll.maxWait`, 30; default `longPoll.wait`, 0): when there
     * is nothing to read, holds the call until an event the subscription would be served is
     * stored, by this process or any other on the database (`CHANNEL_FEED`), and answers it; or
     * until the wait ends, `signal` aborts (the reader went away, the process closes) or
     * {@link close} is called: then an empty page with the same cursor. Waits per process are
     * bounded (`longPoll.waiters`, and `longPoll.waitersPerSubscription` of one subscription): one
     * more is refused with 503 `SY_HTTP_FEED_WAITERS_FULL`.
     *
     * @example
     * ```ts
     * const { events, nextCursor } = await hub.feed.poll(subId, { limit: 100 });
     * await hub.feed.ack(subId, nextCursor);
     * const next = await hub.feed.poll(subId, { after: nextCursor, wait: 30 }); // returns as soon as one is stored
     * ```
     */
    async poll(
      subscriptionId: string,
      opts: { after?: string; limit?: number; wait?: number; signal?: AbortSignal } = {},
    ) {
      const sub = await requireSubscription(db, subscriptionId);
      if (sub.kind !== 'pull') throw invalid(`subscription ${subscriptionId} is not a pull subscription`);
      if (opts.after !== undefined && !/^\d+$/.test(opts.after)) throw invalid('after is not a valid cursor');
      const limit = clampLimit(opts.limit, 1000, 100);
      const waitFor = waitMs(opts.wait);
      const after = opts.after ?? (await deliveryStore.getFeedCursor(db, subscriptionId)) ?? '0';
      // Events retention removed after `after` before this subscription acknowledged them: said,
      // not skipped silently (events/store.ts, purgeEvents). Read after the page's events: a purge
      // is one statement (its deletes and its gap note commit together), so one committed before
      // the events were read is seen here. Read before them, a purge committing in between left the
      // page going on past the removed events with no gap named, and its nextCursor (past the gap)
      // kept the next pages from naming it (feed-purge-race.int.test.ts).
      // A page that is not full looked at every event up to `through` (pollFeed): the next read
      // goes on from there, past the events this subscription is not served.
      const page = async ({ rows, through }: eventStore.FeedPage) => {
        const lost = await eventStore.feedGap(db, subscriptionId);
        const gap =
          lost && BigInt(lost.through) > BigInt(after)
            ? { through: lost.through, events: lost.events }
            : undefined;
        const last = rows.length > 0 ? rows[rows.length - 1]!.sequence : after;
        return {
          events: rows.map(toEvent),
          nextCursor:
            rows.length < limit && through !== null && BigInt(through) > BigInt(last) ? through : last,
          ...(gap ? { gap } : {}),
        };
      };
      // Taken before the first read: a NOTIFY arriving between the read and the wait still counts.
      const wait = waitFor > 0 ? await waits.enter(sub.id) : undefined;
      try {
        const until = Date.now() + waitFor;
        const signal = opts.signal ?? new AbortController().signal;
        let recheckMs = HELD_RECHECK_MIN_MS;
        for (let first = true; ; first = false) {
          const read = await eventStore.pollFeed(db, sub, after, limit);
          // A read that stopped at its bound (eventStore.EVENT_LIST_SCAN) without events answers
          // at once: its nextCursor goes on past what it looked at, and more may follow.
          if (read.rows.length > 0 || read.stopped) return page(read);
          // A cursor no poll gave (a reader's own copy after the hub's database was restored from
          // an older backup, another hub's): answered with no events and itself as nextCursor, the
          // reader would wait there while the events numbered up to it passed by. Checked on an
          // empty page only: an event after the cursor means the cursor is not past the newest.
          if (first && opts.after !== undefined) await refusePastNewest(db, opts.after);
          const left = until - Date.now();
          if (!wait || left <= 0 || signal.aborted) return page(read);
          // Matching events stored but held back: read again on a timer (no NOTIFY says when).
          const held = await eventStore.feedHasEventsAfter(db, sub, after);
          const outcome = await wait.next(held ? Math.min(recheckMs, left) : left, signal);
          if (held) recheckMs = Math.min(recheckMs * 2, HELD_RECHECK_MAX_MS);
          if (outcome === 'ended') return page(read);
        }
      } finally {
        wait?.leave();
      }
    },

    /** The long-poll's bounds (the route publishes them in its schema). */
    longPoll,

    /**
     * Whether `presented` may be one of the subscription's secrets in force, answered from memory
     * (a read of the subscriptions at most every 5 s, when a secret misses): the screen for an
     * address over the failed-authentication limit, whose wrong secrets must not each cost a
     * database read (http/security/auth-rate-limit.ts). True is no verdict: the route still
     * compares the secrets. A secret written by this process is seen at once ({@link
     * secretsChanged}); one rotated in another process, within 5 s.
     *
     * @example
     * ```ts
     * if (!(await hub.feed.mayBeSecret('crm', presented))) throw unauthorized(); // no database read
     * ```
     */
    mayBeSecret(subscriptionId: string, presented: string): Promise<boolean> {
      return secretDigests.mayHold(credentialDigest(subscriptionId, presented));
    },

    /**
     * Signing secrets were written in this process (a subscription created, its secrets replaced or
     * rotated): the next {@link mayBeSecret} miss reads them again instead of refusing the new
     * secret to a limited address for up to 5 s. The hub hands it to `hub.subscriptions` as
     * `SubscriptionsHost.secretsChanged`, the one way every writer of secrets reaches it.
     */
    secretsChanged(): void {
      secretDigests.invalidate();
    },

    /** Long-polls waiting in this process now (the bound is `longPoll.waiters`). */
    waiting(): number {
      return waits.waiting;
    },

    /**
     * Ends every long-poll now, each answered an empty page, and makes later ones answer at once:
     * the process is closing, and a stop must not wait for readers' waits to run out.
     *
     * @example
     * ```ts
     * app.addHook('preClose', async () => hub.feed.close());
     * ```
     */
    close(): void {
      waits.close();
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
      // Deleted since it was looked up: answered as the lookup would now, not as a 500.
      await deliveryStore.setFeedCursor(db, subscriptionId, cursor).catch((error: unknown) => {
        throw isSubscriptionGone(error) ? notFound('subscription', subscriptionId) : error;
      });
      await eventStore.clearFeedGap(db, subscriptionId, cursor);
      return { cursor: (await deliveryStore.getFeedCursor(db, subscriptionId))! };
    },
  };
}

/** The `hub.feed` section, as the feed routes take it. */
export type FeedApi = ReturnType<typeof feedApi>;
