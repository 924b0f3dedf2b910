import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../deps.ts';
import * as s from '../schemas.ts';

interface EventQuery {
  type?: string;
  source?: string;
  subject?: string;
  since?: string;
  until?: string;
  cursor?: string;
  limit?: number;
}

/** The event log: list with filters and cursor pagination, one event with its deliveries. */
export async function eventRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
  app.get<{ Querystring: EventQuery }>(
    '/v1/events',
    {
      schema: {
        tags: ['events'],
        summary: 'List events, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', maxLength: 200, description: 'Exact type, `entity.*` or `*`.' },
            source: { type: 'string', maxLength: 100 },
            subject: { type: 'string', maxLength: 300 },
            since: { type: 'string', format: 'date-time' },
            until: { type: 'string', format: 'date-time' },
            cursor: s.cursorParam,
            limit: s.limitParam,
          },
        },
        response: { 200: s.pageOf(s.event) },
      },
    },
    async (request) => {
      const { since, until, ...rest } = request.query;
      return hub.events.list({
        ...rest,
        ...(since ? { since: new Date(since) } : {}),
        ...(until ? { until: new Date(until) } : {}),
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/events/:id',
    {
      schema: {
        tags: ['events'],
        summary: 'Get an event with its deliveries and their attempts',
        params: s.idParams,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['event', 'deliveries'],
            properties: { event: s.event, deliveries: { type: 'array', items: s.deliveryWithAttempts } },
          },
        },
      },
    },
    async (request) => hub.events.get(request.params.id),
  );
}
