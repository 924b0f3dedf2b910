import type { Kysely } from 'kysely';
import * as deliveryStore from '../deliveries/store.ts';
import * as eventStore from '../events/store.ts';
import * as inboundStore from '../inbound/store.ts';
import { databaseNow } from '../storage/db.ts';
import { purgeExpiredUiSessions } from '../storage/ui-sessions.ts';
import type { ResolvedOptions } from './shared.ts';

/** How many rows one purge removed, per table. */
export interface PurgeResult {
  deliveries: number;
  events: number;
  inbound: number;
  /** Raw request bodies no inbound message references any more. */
  inboundBodies: number;
  /** Dashboard sign-in sessions that had expired (a sign-in removes them too; this covers a hub nobody signs in to). */
  uiSessions: number;
  /**
   * Pull subscriptions this purge removed events of that they had not acknowledged (disabled, or
   * past `retention.unreadEvents`): each one's whole unacknowledged gap, as its feed answers it.
   * The hub logs them as a warning; `switchyard_feed_gap_events` shows them.
   */
  feedGaps: eventStore.FeedGap[];
  /**
   * The enabled pull subscriptions whose acknowledged position kept old events this purge would
   * otherwise have removed (the lowest one; tied ones together), and how many: a reader never
   * started or stopped, which grows the events table until `retention.unreadEvents`. The hub logs
   * it as one warning per purge run; `switchyard_feed_oldest_unread_age_seconds` shows it between runs.
   */
  heldBy?: eventStore.HeldByReaders;
}

async function loop(step: () => Promise<number>, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    // Short statements, each its own transaction: a big purge never holds long locks.
    const n = await step();
    total += n;
    if (n < batch) return total;
  }
}

/**
 * Deletes what is older than the retention periods, in batches: finished deliveries (attempts go
 * with them), then events no delivery still owes, no dead delivery kept for its replay or skip
 * refers to and no enabled pull subscription has yet to read (until `unreadEventsMs`), then
 * finished inbound messages, then the raw
 * request bodies none of the remaining messages references (a batch's body stays while any of its
 * notifications does), then the expired dashboard sessions (at most `CONFIG_DEFAULTS.dashboard.sessions`
 * rows, so one statement).
 *
 * @example
 * ```ts
 * await purge(db, options.retention, new Date()); // { deliveries: 120, events: 80, inbound: 75, inboundBodies: 40, uiSessions: 2, feedGaps: [] }
 * // a reader behind: also heldBy: { subscriptions: ['erp'], position: '0', events: 41250 }
 * ```
 */
export async function purge(
  db: Kysely<unknown>,
  r: ResolvedOptions['retention'],
  now = new Date(),
): Promise<PurgeResult> {
  const before = (ms: number) => new Date(now.getTime() - ms);
  const deliveries = await loop(
    () => deliveryStore.purgeDeliveries(db, before(r.deliveriesMs), r.batchSize),
    r.batchSize,
  );
  // The database's clock, as the purge writes feed_gaps.noted_at.
  const startedAt = await databaseNow(db);
  const events = await loop(
    () =>
      eventStore.purgeEvents(
        db,
        before(r.eventsMs),
        r.batchSize,
        before(Math.max(r.eventsMs, r.unreadEventsMs)),
      ),
    r.batchSize,
  );
  const feedGaps = events > 0 ? await eventStore.feedGaps(db, undefined, startedAt) : [];
  const heldBy = await eventStore.eventsHeldForReaders(
    db,
    before(r.eventsMs),
    before(Math.max(r.eventsMs, r.unreadEventsMs)),
  );
  const inbound = await loop(
    () => inboundStore.purgeInbound(db, before(r.inboundMs), r.batchSize),
    r.batchSize,
  );
  const inboundBodies = await loop(
    () => inboundStore.purgeInboundBodies(db, before(r.inboundMs), r.batchSize),
    r.batchSize,
  );
  const uiSessions = await purgeExpiredUiSessions(db, now);
  return { deliveries, events, inbound, inboundBodies, uiSessions, feedGaps, ...(heldBy ? { heldBy } : {}) };
}
