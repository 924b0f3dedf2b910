/**
 * The `hub.events` section: stored events and their deliveries, built on the declared
 * {@link EventsHost}. Events sit below deliveries (a delivery carries its event, the deliveries
 * store reads events), so an event's deliveries come through the host, typed by the caller.
 */
import type { EventEnvelope } from '@switchyard/core';
import type { Kysely } from 'kysely';
import { invalid, notFound } from '../admin/errors.ts';
import { clampLimit, type Page, UUID } from '../admin/page.ts';
import * as eventStore from './store.ts';

/** An event as the API shows it: the envelope with its feed position. */
export type HubEvent = EventEnvelope & { sequence: string };

/**
 * A stored event as the API, the feed and a webhook delivery show it: the envelope with its feed
 * position as the CloudEvents `sequence` attribute ({@link eventStore.sequenceAttribute}).
 * @example `const view = toEvent(row);`
 */
export function toEvent(row: eventStore.EventRow): HubEvent {
  return { ...(row.envelope as unknown as HubEvent), sequence: eventStore.sequenceAttribute(row.sequence) };
}

/**
 * What the events API needs of the hub, and nothing more. `D` is how the hub shows a delivery.
 *
 * @example
 * ```ts
 * const api = eventsApi({ db, deliveriesOf: (eventId) => deliveriesOfEvent(db, eventId) });
 * ```
 */
export interface EventsHost<D> {
  /** The hub's database. */
  db: Kysely<unknown>;
  /** The deliveries of an event with their attempts, oldest first. */
  deliveriesOf(eventId: string): Promise<D[]>;
}

/** The `hub.events` section: stored events and their deliveries. */
export function eventsApi<D>(host: EventsHost<D>) {
  const { db } = host;

  return {
    /**
     * Lists events, newest first. `type` accepts the subscription patterns (`appointment.*`).
     * A page looks at 10,000 events at most (eventStore.EVENT_LIST_SCAN): one that did without
     * filling up holds fewer items, even none, and a `nextCursor` to go on from; the list ends
     * when `nextCursor` is null.
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
      const { rows, scannedTo } = await eventStore.listEvents(db, {
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
        // A page that looked at as many events as one may without filling up goes on after the
        // last one it looked at (eventStore.EVENT_LIST_SCAN): fewer items, even none, and a cursor.
        nextCursor: rows.length === limit ? rows[rows.length - 1]!.sequence : scannedTo,
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
    async get(id: string): Promise<{ event: HubEvent; deliveries: D[] }> {
      if (!UUID.test(id)) throw notFound('event', id);
      const row = await eventStore.getEvent(db, id);
      if (!row) throw notFound('event', id);
      return { event: toEvent(row), deliveries: await host.deliveriesOf(id) };
    },
  };
}

/** The `hub.events` section (its deliveries typed `D`), as the events routes take it. */
export type EventsApi<D> = ReturnType<typeof eventsApi<D>>;
