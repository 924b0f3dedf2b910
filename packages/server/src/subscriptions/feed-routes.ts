/**
 * The pull feed's HTTP face (`GET /v1/subscriptions/{id}/events`, `POST .../ack`): thin over the
 * `hub.feed` API, with its own credential, the subscription's secret.
 */
import { timingSafeEqualString } from '@switchyard/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerToken, unauthorized } from '../admin/http.ts';
import { cursorParam, idParams, limitParam } from '../admin/schemas.ts';
import { event } from '../events/routes.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import type { FeedApi, FeedHost } from './feed.ts';
import { getSubscription } from './store.ts';

const tags = ['feed'];

/**
 * What the feed routes are given: the `hub.feed` API, and for the credential the subscription's
 * row and its secrets in force (the declared host's `db` and `signingSecrets`).
 */
export interface FeedRoutesDeps extends Pick<FeedHost, 'db'> {
  feed: FeedApi;
  /** The subscription's signing secrets in force now, opened (`HubHost.signingSecrets`). */
  signingSecrets(subscription: SubscriptionRow): string[];
}

/**
 * The feed credential: `Authorization: Bearer <secret>` where the secret is one of the
 * subscription's signing secrets still in force (so a rotation's overlap covers the feed too).
 * Every secret is compared in constant time, and an unknown or disabled subscription gets the same
 * 401 as a wrong secret, so the answer says nothing about which ids exist.
 */
async function checkFeedCredential(
  { db, signingSecrets, feed }: FeedRoutesDeps,
  request: FastifyRequest<{ Params: { id: string } }>,
): Promise<void> {
  const presented = bearerToken(request);
  if (!presented) throw unauthorized('the feed needs Authorization: Bearer <subscription secret>');
  // An address over the failed-authentication limit is screened in memory first: its wrong
  // secrets must not each cost a database read (security/auth-rate-limit.ts).
  if (request.authLimited === true && !(await feed.mayBeSecret(request.params.id, presented)))
    throw unauthorized('the feed needs Authorization: Bearer <subscription secret>');
  const row = await getSubscription(db, request.params.id);
  // A disabled subscription's reader is refused like a wrong secret, as its command credentials
  // and FHIR read token are: disabling it (or dropping it from the configuration file) is how an
  // operator stops a subscriber, and its reader went on reading every new event.
  const secrets = row && row.disabled_at === null ? signingSecrets(row) : [];
  let match = false;
  for (const secret of secrets) if (timingSafeEqualString(presented, secret)) match = true;
  if (!match) throw unauthorized('the feed needs Authorization: Bearer <subscription secret>');
}

/**
 * The subscriber pull feed, for systems that cannot expose an endpoint: poll events after a cursor
 * (long-polling with `wait`), acknowledge a position. Authenticated by the subscription's own
 * secret, never the admin token. A long-poll ends when its reader goes away (its place is freed at
 * once) and when the app closes (answered an empty page at once: a graceful stop does not wait
 * for readers' waits to run out).
 *
 * @example
 * ```ts
 * await v1.register((scope) =>
 *   feedRoutes(scope, { feed: hub.feed, db: hub.host.db, signingSecrets: (row) => hub.host.signingSecrets(row) }),
 * );
 * ```
 */
export async function feedRoutes(app: FastifyInstance, deps: FeedRoutesDeps): Promise<void> {
  const { feed } = deps;
  const onRequest = async (request: FastifyRequest) =>
    checkFeedCredential(deps, request as FastifyRequest<{ Params: { id: string } }>);
  // preClose: fastify is closing and waits for the requests in progress, long-polls included.
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());

  app.get<{
    Params: { id: string };
    Querystring: { after?: string; limit?: number; wait?: number };
  }>(
    '/v1/subscriptions/:id/events',
    {
      config: { auth: 'subscription' },
      onRequest,
      schema: {
        tags,
        summary:
          'Read a pull subscription’s events in order after a cursor (default: the acknowledged position), waiting for one with `wait`',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: cursorParam,
            limit: limitParam,
            wait: {
              type: 'integer',
              minimum: 0,
              maximum: feed.longPoll.maxWait,
              description: `Long-poll: with nothing to read, seconds to hold the request until an event is stored (answered at once then), else an empty page with the same cursor. Default ${feed.longPoll.wait}: answer at once.`,
            },
          },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['events', 'nextCursor'],
            properties: {
              events: { type: 'array', items: event },
              nextCursor: {
                type: 'string',
                description: 'Acknowledge it, or pass it as `after` to read on.',
              },
              gap: {
                type: 'object',
                additionalProperties: false,
                required: ['through', 'events'],
                description:
                  'Present when retention removed events after `after` that this subscription would have been served before it acknowledged them (it was disabled, or its reader did not acknowledge them within `retention.unreadEvents`): they cannot be read any more. The page goes on after them. Acknowledging a position at or past `through` clears it.',
                properties: {
                  through: { type: 'string', description: 'The highest number of a removed event.' },
                  events: {
                    type: 'integer',
                    minimum: 1,
                    description: 'How many events were removed unacknowledged (since the gap opened).',
                  },
                },
              },
            },
          },
        },
        // For the OpenAPI document (routes/openapi.ts): the long-poll's own refusals.
        problems: {
          401: 'SY_HTTP_UNAUTHORIZED: no secret, not one of the subscription’s secrets in force, or the subscription is disabled. Checked again when a wait ends: a secret rotated out or a subscription deleted while it waited gets 401, not what the wait read',
          503: `SY_HTTP_FEED_WAITERS_FULL (only with \`wait\`): this process already holds ${feed.longPoll.waiters} long-polls, or ${feed.longPoll.waitersPerSubscription} of this subscription; nothing was read, retry after Retry-After or read without \`wait\``,
        },
        responseHeaders: {
          503: {
            'Retry-After': {
              description: 'Seconds to wait before reading again.',
              schema: { type: 'string', pattern: '^[0-9]+$' },
            },
          },
        },
      },
    },
    async (request, reply) => {
      if ((request.query.wait ?? feed.longPoll.wait) === 0)
        return feed.poll(request.params.id, request.query);
      // The response closed before it was sent: the reader went away, and its place is freed.
      const gone = new AbortController();
      const leave = () => gone.abort();
      reply.raw.once('close', leave);
      try {
        const page = await feed.poll(request.params.id, {
          ...request.query,
          signal: AbortSignal.any([gone.signal, closing.signal]),
        });
        // The credential again: during a wait of up to longPoll.maxWait its secret may have been
        // rotated out (a leaked one revoked) or the subscription deleted, and what the wait then
        // read is not this reader's any more.
        await checkFeedCredential(deps, request as FastifyRequest<{ Params: { id: string } }>);
        return page;
      } finally {
        reply.raw.off('close', leave);
        // Closing: the connection ends with this answer. Kept alive, it would hold the server's
        // close until the client or the keep-alive timeout ended it (fastify closes only the
        // connections idle when the close began, and this one was busy then).
        if (closing.signal.aborted) reply.header('connection', 'close');
      }
    },
  );

  app.post<{ Params: { id: string }; Body: { cursor: string } }>(
    '/v1/subscriptions/:id/ack',
    {
      config: { auth: 'subscription' },
      onRequest,
      schema: {
        tags,
        summary: 'Acknowledge a feed position (it never moves back)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['cursor'],
          properties: { cursor: cursorParam },
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
    async (request) => feed.ack(request.params.id, request.body.cursor),
  );
}
