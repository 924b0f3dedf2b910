import type { FastifyInstance } from 'fastify';
import type { InboundMessage } from '../../inbound/api.ts';
import type { RouteDeps } from '../deps.ts';
import * as s from '../schemas.ts';

const tags = ['inbound'];

/** Stored vendor notifications: list (failed, by status, by instance), get, re-normalize. */
export async function inboundRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
  app.get<{
    Querystring: { status?: InboundMessage['status']; instanceId?: string; cursor?: string; limit?: number };
  }>(
    '/v1/inbound',
    {
      schema: {
        tags,
        summary: 'List inbound messages, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: s.inboundStatus,
            instanceId: { type: 'string', maxLength: 100 },
            cursor: s.cursorParam,
            limit: s.limitParam,
          },
        },
        response: { 200: s.pageOf(s.inboundMessage) },
      },
    },
    async (request) => hub.inbound.list(request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/inbound/:id',
    {
      schema: {
        tags,
        summary: 'Get an inbound message with its payload, redacted headers and events',
        params: s.idParams,
        response: { 200: s.inboundMessageDetail },
      },
    },
    async (request) => hub.inbound.get(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/inbound/:id/renormalize',
    {
      schema: {
        tags,
        summary: 'Normalize a failed or ignored message again (event ids stay the same)',
        params: s.idParams,
        response: { 202: s.inboundMessage },
      },
    },
    async (request, reply) => {
      reply.code(202);
      return hub.inbound.renormalize(request.params.id);
    },
  );
}
