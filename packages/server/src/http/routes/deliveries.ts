import type { FastifyInstance } from 'fastify';
import type { Delivery } from '../../deliveries/api.ts';
import type { RouteDeps } from '../deps.ts';
import * as s from '../schemas.ts';

const tags = ['deliveries'];
type IdParams = { Params: { id: string } };

/** Deliveries and their attempts: list, get, replay one, skip one. */
export async function deliveryRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
  app.get<{
    Querystring: {
      subscriptionId?: string;
      eventId?: string;
      status?: Delivery['status'];
      replayed?: boolean;
      cursor?: string;
      limit?: number;
    };
  }>(
    '/v1/deliveries',
    {
      schema: {
        tags,
        summary: 'List deliveries, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            subscriptionId: { type: 'string', maxLength: 200 },
            eventId: { type: 'string', maxLength: 100 },
            status: s.deliveryStatus,
            replayed: {
              type: 'boolean',
              description:
                'true: only deliveries already replayed (supersededBy set); false: only the others (status=dead&replayed=false: the dead letters still waiting)',
            },
            cursor: s.cursorParam,
            limit: s.limitParam,
          },
        },
        response: { 200: s.pageOf(s.delivery) },
      },
    },
    async (request) => hub.deliveries.list(request.query),
  );

  app.get<IdParams>(
    '/v1/deliveries/:id',
    {
      schema: {
        tags,
        summary: 'Get a delivery with every attempt',
        params: s.idParams,
        response: { 200: s.deliveryWithAttempts },
      },
    },
    async (request) => hub.deliveries.get(request.params.id),
  );

  app.post<IdParams & { Body: { force?: boolean } | undefined }>(
    '/v1/deliveries/:id/replay',
    {
      schema: {
        tags: ['replay'],
        summary:
          'Send a finished delivery again (same event id), as a new delivery; once per delivery unless force',
        params: s.idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            force: {
              type: 'boolean',
              description: 'replay a delivery that was already replayed (sends the event once more)',
            },
          },
        },
        response: { 202: s.delivery },
      },
    },
    async (request, reply) => {
      const delivery = await hub.deliveries.replay(request.params.id, {
        force: request.body?.force === true,
      });
      reply.code(202);
      return delivery;
    },
  );

  app.post<IdParams>(
    '/v1/deliveries/:id/skip',
    {
      schema: {
        tags,
        summary: 'Give up on a pending, held or dead delivery (its subject stops waiting for it)',
        params: s.idParams,
        response: { 200: s.delivery },
      },
    },
    async (request) => hub.deliveries.skip(request.params.id),
  );
}
