/**
 * The event log's HTTP face under `/v1/events` (thin: each route is one call of the `hub.events`
 * API) and the JSON Schema of an event as the API shows it (the inbound detail and the pull feed
 * embed it too).
 */

import type { FastifyInstance } from 'fastify';
import { dateInput } from '../admin/errors.ts';
import { cursorParam, idParams, limitParam, pageOf, type Schema, str } from '../admin/schemas.ts';
import type { EventsApi } from './api.ts';

/** A CloudEvent with its feed position; extension attributes pass through (the `HubEvent` view). */
export const event: Schema = {
  type: 'object',
  additionalProperties: true,
  required: ['specversion', 'id', 'type', 'source', 'subject', 'time', 'data', 'sequence'],
  properties: {
    specversion: str,
    id: str,
    type: str,
    source: str,
    subject: str,
    time: str,
    datacontenttype: str,
    data: { type: 'object', additionalProperties: true },
    sequence: { type: 'string', description: 'Position in the event log (a feed cursor).' },
  },
};

interface EventQuery {
  type?: string;
  source?: string;
  subject?: string;
  since?: string;
  until?: string;
  cursor?: string;
  limit?: number;
}

/**
 * What the events' routes are given: the concept's API, and the schema of the deliveries an event's
 * detail embeds. The schema comes in rather than being imported because it is the deliveries
 * concept's, which sits above events (a delivery carries an event): the same way the events API
 * gets an event's deliveries through `EventsHost.deliveriesOf`, typed by the caller.
 */
export interface EventRoutesDeps<D> {
  events: EventsApi<D>;
  /** The JSON Schema of one of an event's deliveries with its attempts (`deliveryWithAttempts`). */
  deliveryWithAttempts: Schema;
}

/**
 * The event log: list with filters and cursor pagination, one event with its deliveries.
 *
 * @example
 * ```ts
 * await v1.register((scope) => eventRoutes(scope, { events: hub.events, deliveryWithAttempts }));
 * ```
 */
export async function eventRoutes<D>(
  app: FastifyInstance,
  { events, deliveryWithAttempts }: EventRoutesDeps<D>,
): Promise<void> {
  app.get<{ Querystring: EventQuery }>(
    '/v1/events',
    {
      schema: {
        tags: ['events'],
        summary: 'List events, newest first',
        description:
          'A page looks at 10,000 events at most: one that did without filling up holds fewer items than `limit`, even none, and a `nextCursor` to go on from. Read on until `nextCursor` is null.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', maxLength: 200, description: 'Exact type, `entity.*` or `*`.' },
            source: { type: 'string', maxLength: 100 },
            subject: { type: 'string', maxLength: 300 },
            since: { type: 'string', format: 'date-time' },
            until: { type: 'string', format: 'date-time' },
            cursor: cursorParam,
            limit: limitParam,
          },
        },
        response: { 200: pageOf(event) },
      },
    },
    async (request) => {
      const { since, until, ...rest } = request.query;
      return events.list({
        ...rest,
        ...(since ? { since: dateInput('since', since) } : {}),
        ...(until ? { until: dateInput('until', until) } : {}),
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/events/:id',
    {
      schema: {
        tags: ['events'],
        summary: 'Get an event with its deliveries and their attempts',
        params: idParams,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['event', 'deliveries'],
            properties: { event, deliveries: { type: 'array', items: deliveryWithAttempts } },
          },
        },
      },
    },
    async (request) => events.get(request.params.id),
  );
}
