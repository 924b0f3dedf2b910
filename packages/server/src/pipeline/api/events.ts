import { invalid, notFound } from '../../admin/errors.ts';
import * as deliveryStore from '../../deliveries/store.ts';
import * as eventStore from '../../events/store.ts';
import type { DeliveryWithAttempts, HubEvent, Page } from '../api-types.ts';
import { clampLimit, toEvent, UUID } from '../views.ts';
import { type HubContext, withAttempts } from './context.ts';

/** The `hub.events` section: stored events and their deliveries. */
export function eventsApi(ctx: HubContext) {
  const { db } = ctx;

  return {
    /**
     * Lists events, newest first. `type` accepts the subscription patterns (`appointment.*`).
     *
     * @example
     * ```ts
     * const page = await hub.events.list({ type: 'appointment.*', limit: 20 });
     * const next = await hub.events.list({ type: 'appointment.*', cursor: page.nextCursor! });
     * ```
     */
    async list(
      f: {
        type?: string;
        source?: string;
        subject?: string;
        since?: Date;
        until?: Date;
        cursor?: string;
        limit?: number;
      } = {},
    ): Promise<Page<HubEvent>> {
      const limit = clampLimit(f.limit);
      if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
      const rows = await eventStore.listEvents(db, {
        ...(f.type ? { types: [f.type] } : {}),
        ...(f.source ? { source: f.source } : {}),
        ...(f.subject ? { subject: f.subject } : {}),
        ...(f.since ? { since: f.since } : {}),
        ...(f.until ? { until: f.until } : {}),
        ...(f.cursor ? { beforeSequence: f.cursor } : {}),
        limit,
        ascending: false,
      });
      return {
        items: rows.map(toEvent),
        nextCursor: rows.length === limit ? rows[rows.length - 1]!.sequence : null,
      };
    },

    /**
     * One event with its deliveries and their attempts.
     *
     * @example
     * ```ts
     * const { event, deliveries } = await hub.events.get(id);
     * ```
     */
    async get(id: string): Promise<{ event: HubEvent; deliveries: DeliveryWithAttempts[] }> {
      if (!UUID.test(id)) throw notFound('event', id);
      const row = await eventStore.getEvent(db, id);
      if (!row) throw notFound('event', id);
      const deliveries = await deliveryStore.listDeliveries(db, { eventId: id, limit: 500 });
      return { event: toEvent(row), deliveries: await withAttempts(db, deliveries.reverse()) };
    },
  };
}
