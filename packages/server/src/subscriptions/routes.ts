/**
 * The subscriptions' HTTP face under `/v1/subscriptions` (thin: the `hub.subscriptions` API, plus
 * the rules of an API call: a generated secret shown once, a file-managed subscription changed in
 * the file) and the JSON Schemas of its answers. The pull feed's routes are `feed-routes.ts`.
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../admin/http.ts';
import { idParams, int, listOf, object, str } from '../admin/schemas.ts';
import type { DeliveriesApi } from '../deliveries/api.ts';
import { generateSecret } from '../delivery/sign.ts';
import {
  isNoLongerDeclared,
  type SubscriptionInput,
  type SubscriptionPatch,
  type SubscriptionsApi,
} from './api.ts';
import { subscriptionCreateSchema, subscriptionSchema, subscriptionUpdateSchema } from './schema.ts';

/** What a test event's attempt reports (`POST /v1/subscriptions/{id}/test`). */
export const attemptResult = object(
  {
    ok: { type: 'boolean' },
    statusCode: int,
    latencyMs: { type: 'number' },
    responseSnippet: str,
    error: str,
  },
  ['ok', 'latencyMs'],
);

const tags = ['subscriptions'];
type IdParams = { Params: { id: string } };

/**
 * The rule for file-managed subscriptions (docs/configuration.md, "Managed by the file"): what the
 * file declares is changed in the file only, since the next start applies the file again and would
 * silently undo the change; what it does not declare (enabled or disabled, a generated secret)
 * is the hub's and survives restarts. One the file no longer declares is disabled, and may be
 * deleted here.
 */
function refuseFileManaged(id: string, what = 'is declared in the configuration file'): HttpError {
  return new HttpError('SY_HTTP_FILE_MANAGED', `subscription ${JSON.stringify(id)} ${what}`, {
    details: { subscription: id },
  });
}

/** A subscription with the secret generated for it, shown this once. */
const subscriptionWithSecret = {
  type: 'object',
  additionalProperties: false,
  required: ['subscription'],
  properties: {
    subscription: subscriptionSchema,
    secret: {
      type: 'string',
      description: 'The generated signing secret (also the feed credential). Shown once.',
    },
  },
};

const replayed = {
  type: 'object',
  additionalProperties: false,
  required: ['replayed'],
  properties: { replayed: { type: 'integer', description: 'Deliveries created.' } },
};

/**
 * What the subscriptions' routes are given: the concept's API, the replays of the deliveries' API
 * (a subscription's replays are the deliveries concept's, which the subscriptions concept sits
 * above) and the pipeline's test event.
 */
export interface SubscriptionRoutesDeps {
  subscriptions: SubscriptionsApi;
  deliveries: Pick<DeliveriesApi, 'replayDead' | 'replaySince'>;
  /**
   * Sends a signed test event to a webhook subscription now and reports the attempt (`hub.sendTestEvent`;
   * its answer is serialized through {@link attemptResult}).
   */
  sendTestEvent(subscriptionId: string, type: string): Promise<unknown>;
}

/**
 * Subscriptions: CRUD, disable/enable, secret rotation, test events and replays. A pull
 * subscription created without secrets gets one generated too: it is the credential of its feed.
 *
 * @example
 * ```ts
 * await v1.register((scope) =>
 *   subscriptionRoutes(scope, {
 *     subscriptions: hub.subscriptions,
 *     deliveries: hub.deliveries,
 *     sendTestEvent: (id, type) => sendTestEvent(id, type),
 *   }),
 * );
 * ```
 */
export async function subscriptionRoutes(
  app: FastifyInstance,
  { subscriptions, deliveries, sendTestEvent }: SubscriptionRoutesDeps,
): Promise<void> {
  app.post<{ Body: SubscriptionInput }>(
    '/v1/subscriptions',
    {
      schema: {
        tags,
        summary: 'Create a subscription (the generated secret is returned once)',
        body: subscriptionCreateSchema,
        response: { 201: subscriptionWithSecret },
      },
    },
    async (request, reply) => {
      const input: SubscriptionInput = { ...request.body, managedBy: 'api' };
      let generated: string | undefined;
      if (input.kind === 'pull' && !input.secrets?.length) {
        generated = generateSecret();
        input.secrets = [generated];
      }
      const result = await subscriptions.create(input);
      reply.code(201);
      return {
        subscription: result.subscription,
        ...((result.secret ?? generated) ? { secret: result.secret ?? generated } : {}),
      };
    },
  );

  app.get(
    '/v1/subscriptions',
    { schema: { tags, summary: 'List subscriptions', response: { 200: listOf(subscriptionSchema) } } },
    async () => ({ items: await subscriptions.list() }),
  );

  app.get<IdParams>(
    '/v1/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'Get a subscription',
        params: idParams,
        response: { 200: subscriptionSchema },
      },
    },
    async (request) => subscriptions.get(request.params.id),
  );

  app.patch<IdParams & { Body: SubscriptionPatch }>(
    '/v1/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'Change a subscription (fields left out stay)',
        params: idParams,
        body: subscriptionUpdateSchema,
        response: { 200: subscriptionSchema },
      },
    },
    async (request) => {
      const before = await subscriptions.get(request.params.id);
      if (before.managedBy === 'file') throw refuseFileManaged(request.params.id);
      return subscriptions.update(request.params.id, request.body);
    },
  );

  app.delete<IdParams>(
    '/v1/subscriptions/:id',
    {
      schema: {
        tags,
        summary:
          'Delete a subscription and its deliveries (a file-managed one only once the file no longer declares it)',
        params: idParams,
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      const before = await subscriptions.get(request.params.id);
      // One the file no longer declares stays (disabled) until it is deleted here for good.
      if (before.managedBy === 'file' && !isNoLongerDeclared(before))
        throw refuseFileManaged(request.params.id);
      await subscriptions.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<IdParams & { Body: { reason?: string } | undefined }>(
    '/v1/subscriptions/:id/disable',
    {
      schema: {
        tags,
        summary: 'Stop deliveries to a subscription',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { reason: { type: 'string', maxLength: 500 } },
        },
        response: { 200: subscriptionSchema },
      },
    },
    async (request) => subscriptions.disable(request.params.id, request.body?.reason),
  );

  app.post<IdParams & { Body: { replayMissed?: boolean } | undefined }>(
    '/v1/subscriptions/:id/enable',
    {
      schema: {
        tags,
        summary: 'Re-enable a subscription, optionally sending what it missed',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { replayMissed: { type: 'boolean' } },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['subscription', 'replayed'],
            properties: { subscription: subscriptionSchema, replayed: { type: 'integer' } },
          },
        },
      },
    },
    async (request) =>
      subscriptions.enable(request.params.id, { replayMissed: request.body?.replayMissed === true }),
  );

  app.post<IdParams & { Body: { overlapMs?: number } | undefined }>(
    '/v1/subscriptions/:id/rotate-secret',
    {
      schema: {
        tags,
        summary:
          'Add a new signing secret; the old ones keep signing for overlapMs (returns the new secret once)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { overlapMs: { type: 'integer', minimum: 0, maximum: 30 * 24 * 3_600_000 } },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['subscription', 'secret'],
            properties: { subscription: subscriptionSchema, secret: { type: 'string' } },
          },
        },
      },
    },
    async (request) => {
      const before = await subscriptions.get(request.params.id);
      if (before.managedBy === 'file' && before.secrets.some((x) => x.fromFile)) {
        throw refuseFileManaged(
          request.params.id,
          'has its signing secrets in the configuration file: rotate there (put the new secret first in secrets, keep the old one until the subscriber has switched, then restart)',
        );
      }
      return subscriptions.rotateSecret(
        request.params.id,
        request.body?.overlapMs !== undefined ? { overlapMs: request.body.overlapMs } : {},
      );
    },
  );

  app.post<IdParams & { Body: { type?: string } | undefined }>(
    '/v1/subscriptions/:id/test',
    {
      schema: {
        tags,
        summary: 'Send a signed test event now and report the subscriber’s answer (nothing is stored)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { type: { type: 'string', minLength: 1, maxLength: 200, default: 'switchyard.test' } },
        },
        response: { 200: attemptResult },
      },
    },
    async (request) => sendTestEvent(request.params.id, request.body?.type ?? 'switchyard.test'),
  );

  app.post<IdParams>(
    '/v1/subscriptions/:id/replay-dead',
    {
      schema: {
        tags: ['replay'],
        summary: 'Replay every dead delivery of a subscription',
        params: idParams,
        response: { 200: replayed },
      },
    },
    async (request) => deliveries.replayDead(request.params.id),
  );

  app.post<IdParams & { Body: { since: string } }>(
    '/v1/subscriptions/:id/replay-since',
    {
      schema: {
        tags: ['replay'],
        summary: 'Send again every matching event stored since a time',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['since'],
          properties: { since: { type: 'string', format: 'date-time' } },
        },
        response: { 200: replayed },
      },
    },
    async (request) => deliveries.replaySince(request.params.id, new Date(request.body.since)),
  );
}
