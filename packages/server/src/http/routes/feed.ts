import { timingSafeEqualString } from '@switchyard/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Hub } from '../../pipeline/hub.ts';
import { getSubscription } from '../../subscriptions/store.ts';
import type { RouteDeps } from '../deps.ts';
import { bearerToken, unauthorized } from '../plugins/admin-auth.ts';
import * as s from '../schemas.ts';

const tags = ['feed'];

/**
 * The feed credential: `Authorization: Bearer <secret>` where the secret is one of the
 * subscription's signing secrets still in force (so a rotation's overlap covers the feed too).
 * Every secret is compared in constant time, and an unknown subscription gets the same 401 as a
 * wrong secret, so the answer says nothing about which ids exist.
 */
export async function checkFeedCredential(
  hub: Hub,
  request: FastifyRequest<{ Params: { id: string } }>,
): Promise<void> {
  const presented = bearerToken(request);
  if (!presented) throw unauthorized('the feed needs Authorization: Bearer <subscription secret>');
  const row = await getSubscription(hub.host.db, request.params.id);
  const secrets = row ? hub.host.signingSecrets(row) : [];
  let match = false;
  for (const secret of secrets) if (timingSafeEqualString(presented, secret)) match = true;
  if (!match) throw unauthorized('the feed needs Authorization: Bearer <subscription secret>');
}

/**
 * The subscriber pull feed, for systems that cannot expose an endpoint: poll events after a cursor,
 * acknowledge a position. Authenticated by the subscription's own secret, never the admin token.
 */
export async function feedRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
  const onRequest = async (request: FastifyRequest) =>
    checkFeedCredential(hub, request as FastifyRequest<{ Params: { id: string } }>);

  app.get<{ Params: { id: string }; Querystring: { after?: string; limit?: number } }>(
    '/v1/subscriptions/:id/events',
    {
      config: { auth: 'subscription' },
      onRequest,
      schema: {
        tags,
        summary:
          'Read a pull subscription’s events in order after a cursor (default: the acknowledged position)',
        params: s.idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { after: s.cursorParam, limit: s.limitParam },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['events', 'nextCursor'],
            properties: {
              events: { type: 'array', items: s.event },
              nextCursor: {
                type: 'string',
                description: 'Acknowledge it, or pass it as `after` to read on.',
              },
            },
          },
        },
      },
    },
    async (request) => hub.feed.poll(request.params.id, request.query),
  );

  app.post<{ Params: { id: string }; Body: { cursor: string } }>(
    '/v1/subscriptions/:id/ack',
    {
      config: { auth: 'subscription' },
      onRequest,
      schema: {
        tags,
        summary: 'Acknowledge a feed position (it never moves back)',
        params: s.idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['cursor'],
          properties: { cursor: s.cursorParam },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['cursor'],
            properties: { cursor: { type: 'string' } },
          },
        },
      },
    },
    async (request) => hub.feed.ack(request.params.id, request.body.cursor),
  );
}
