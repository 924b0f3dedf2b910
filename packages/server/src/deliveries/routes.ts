/**
 * The deliveries' HTTP face under `/v1/deliveries` (thin: each route is one call of the
 * `hub.deliveries` API) and the JSON Schemas of a delivery and its attempts, which the routes
 * answer with and the event detail embeds (`http/app.ts` hands them to the events' routes).
 */
import type { FastifyInstance } from 'fastify';
import {
  cursorParam,
  dateTime,
  idParams,
  int,
  limitParam,
  nullableDateTime,
  nullableInt,
  nullableStr,
  object,
  pageOf,
  type Schema,
  str,
} from '../admin/schemas.ts';
import type { DeliveriesApi, Delivery } from './api.ts';

/** One delivery attempt as the API shows it. */
export const attempt = object({
  attempt: int,
  startedAt: dateTime,
  latencyMs: { type: ['number', 'null'] },
  statusCode: nullableInt,
  responseSnippet: nullableStr,
  error: nullableStr,
  outcome: str,
  traceId: nullableStr,
});

export const deliveryStatus = {
  type: 'string',
  enum: ['pending', 'in_flight', 'succeeded', 'dead', 'skipped', 'held'],
} as const;

const deliveryFields: Record<string, Schema> = {
  id: str,
  subscriptionId: str,
  eventId: str,
  eventSequence: str,
  subject: str,
  status: deliveryStatus,
  reason: { type: 'string', enum: ['fanout', 'replay'] },
  replayOf: nullableStr,
  supersededBy: nullableStr,
  attempts: int,
  nextAttemptAt: dateTime,
  lastStatusCode: nullableInt,
  lastError: nullableStr,
  createdAt: dateTime,
  completedAt: nullableDateTime,
};

/** A delivery as the API shows it (the `Delivery` view). */
export const delivery = object(deliveryFields);
/** A delivery with every attempt (the `DeliveryWithAttempts` view). */
export const deliveryWithAttempts = object({
  ...deliveryFields,
  attemptLog: { type: 'array', items: attempt },
});

const tags = ['deliveries'];
type IdParams = { Params: { id: string } };

/** What the deliveries' routes are given: the concept's API, not the hub. */
export interface DeliveryRoutesDeps {
  deliveries: DeliveriesApi;
}

/**
 * Deliveries and their attempts: list, get, replay one, skip one.
 *
 * @example
 * ```ts
 * await v1.register((scope) => deliveryRoutes(scope, { deliveries: hub.deliveries }));
 * ```
 */
export async function deliveryRoutes(
  app: FastifyInstance,
  { deliveries }: DeliveryRoutesDeps,
): Promise<void> {
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
            status: deliveryStatus,
            replayed: {
              type: 'boolean',
              description:
                'true: only deliveries already replayed (supersededBy set); false: only the others (status=dead&replayed=false: the dead letters still waiting)',
            },
            cursor: cursorParam,
            limit: limitParam,
          },
        },
        response: { 200: pageOf(delivery) },
      },
    },
    async (request) => deliveries.list(request.query),
  );

  app.get<IdParams>(
    '/v1/deliveries/:id',
    {
      schema: {
        tags,
        summary: 'Get a delivery with every attempt',
        params: idParams,
        response: { 200: deliveryWithAttempts },
      },
    },
    async (request) => deliveries.get(request.params.id),
  );

  app.post<IdParams & { Body: { force?: boolean } | undefined }>(
    '/v1/deliveries/:id/replay',
    {
      schema: {
        tags: ['replay'],
        summary:
          'Send a finished delivery again (same event id), as a new delivery; once per delivery unless force',
        params: idParams,
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
        response: { 202: delivery },
      },
    },
    async (request, reply) => {
      const replay = await deliveries.replay(request.params.id, {
        force: request.body?.force === true,
      });
      reply.code(202);
      return replay;
    },
  );

  app.post<IdParams>(
    '/v1/deliveries/:id/skip',
    {
      schema: {
        tags,
        summary: 'Give up on a pending, held or dead delivery (its subject stops waiting for it)',
        params: idParams,
        response: { 200: delivery },
      },
    },
    async (request) => deliveries.skip(request.params.id),
  );
}
