/**
 * The inbound messages' HTTP face under `/v1/inbound` (thin: each route is one call of the
 * `hub.inbound` API) and the JSON Schemas of a message and its detail (which embeds the events'
 * schema: inbound sits above events).
 */

import type { FastifyInstance } from 'fastify';
import { dateInput } from '../admin/errors.ts';
import {
  anyJson,
  cursorParam,
  dateTime,
  idParams,
  int,
  limitParam,
  nullableDateTime,
  nullableStr,
  object,
  pageOf,
  type Schema,
  str,
} from '../admin/schemas.ts';
import { event } from '../events/routes.ts';
import type { InboundApi, InboundMessage } from './api.ts';

export const inboundStatus = {
  type: 'string',
  enum: ['received', 'normalized', 'ignored', 'failed'],
} as const;

const inboundFields: Record<string, Schema> = {
  id: str,
  instanceId: str,
  route: str,
  dedupeKey: str,
  vendorType: str,
  orderingKey: nullableStr,
  occurredAt: nullableStr,
  gate: { type: 'boolean' },
  origin: { type: 'string', enum: ['push', 'pull'] },
  status: inboundStatus,
  reason: nullableStr,
  error: anyJson,
  attempts: int,
  eventCount: int,
  receivedAt: dateTime,
  processedAt: nullableDateTime,
};

/** An inbound message as the API lists it (the `InboundMessage` view). */
export const inboundMessage = object(inboundFields);
/** An inbound message with its payload, redacted headers and events (the `InboundMessageDetail` view). */
export const inboundMessageDetail = object({
  ...inboundFields,
  payload: anyJson,
  rawBody: { ...nullableStr, description: 'The body as received (UTF-8), for pushes.' },
  headers: {
    type: ['object', 'null'],
    additionalProperties: { type: 'string' },
    description: 'Credentials redacted.',
  },
  events: { type: 'array', items: event },
});

const tags = ['inbound'];

/** What the inbound routes are given: the concept's API, not the hub. */
export interface InboundRoutesDeps {
  inbound: InboundApi;
}

/**
 * Stored vendor notifications: list (failed, by status, by instance), get, re-normalize.
 *
 * @example
 * ```ts
 * await v1.register((scope) => inboundRoutes(scope, { inbound: hub.inbound }));
 * ```
 */
export async function inboundRoutes(app: FastifyInstance, { inbound }: InboundRoutesDeps): Promise<void> {
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
            status: inboundStatus,
            instanceId: { type: 'string', maxLength: 100 },
            cursor: cursorParam,
            limit: limitParam,
          },
        },
        response: { 200: pageOf(inboundMessage) },
      },
    },
    async (request) => inbound.list(request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/inbound/:id',
    {
      schema: {
        tags,
        summary: 'Get an inbound message with its payload, redacted headers and events',
        params: idParams,
        response: { 200: inboundMessageDetail },
      },
    },
    async (request) => inbound.get(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/inbound/:id/renormalize',
    {
      schema: {
        tags,
        summary: 'Normalize a failed or ignored message again (event ids stay the same)',
        params: idParams,
        response: { 202: inboundMessage },
      },
    },
    async (request, reply) => {
      reply.code(202);
      return inbound.renormalize(request.params.id);
    },
  );

  app.post<{
    Body: { instanceId: string; status: 'failed'; since?: string; failedBefore?: string; limit?: number };
  }>(
    '/v1/inbound/renormalize',
    {
      schema: {
        tags,
        summary:
          'Normalize the failed messages of an instance again, oldest first, up to `limit` at a time (event ids stay the same)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['instanceId', 'status'],
          properties: {
            instanceId: { type: 'string', minLength: 1, maxLength: 100 },
            status: {
              type: 'string',
              enum: ['failed'],
              description:
                'Which messages: the failed ones (the only choice, named so a call says what it takes).',
            },
            since: { type: 'string', format: 'date-time', description: 'Only messages received since then.' },
            failedBefore: {
              type: 'string',
              format: 'date-time',
              description:
                'Only messages that failed at or before then (default: now). Pass back the answer’s `failedBefore` to take the next ones: a message that fails again is not taken twice.',
            },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 1000,
              description: 'At most this many (default 100).',
            },
          },
        },
        response: {
          202: object({
            ids: {
              type: 'array',
              items: str,
              description: 'The messages put back in the normalize queue, oldest first.',
            },
            failedBefore: {
              ...dateTime,
              description: 'The bound this call used; pass it back for the next ones.',
            },
            more: { type: 'boolean', description: 'True while more may be left (the call took `limit`).' },
          }),
        },
        problems: { 404: 'SY_PIPELINE_NOT_FOUND: no such instance' },
      },
    },
    async (request, reply) => {
      const { instanceId, since, failedBefore, limit } = request.body;
      const page = await inbound.renormalizeFailed({
        instanceId,
        ...(since ? { since: dateInput('since', since) } : {}),
        ...(failedBefore ? { failedBefore: dateInput('failedBefore', failedBefore) } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      reply.code(202);
      return page;
    },
  );
}
