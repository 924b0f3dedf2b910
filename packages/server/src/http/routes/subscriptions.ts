import type { FastifyInstance } from 'fastify';
import { generateSecret } from '../../delivery/sign.ts';
import type { SubscriptionInput, SubscriptionPatch } from '../../subscriptions/api.ts';
import {
  subscriptionCreateSchema,
  subscriptionSchema,
  subscriptionUpdateSchema,
} from '../../subscriptions/schema.ts';
import type { RouteDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import * as s from '../schemas.ts';

const tags = ['subscriptions'];
type IdParams = { Params: { id: string } };

/**
 * The rule for file-managed subscriptions (docs/configuration.md, "Managed by the file"): what the
 * file declares is changed in the file only, since the next start applies the file again and would
 * silently undo the change; what it does not declare (enabled or disabled, a generated secret)
 * is the hub's and survives restarts.
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
 * Subscriptions: CRUD, disable/enable, secret rotation, test events and replays. A pull
 * subscription created without secrets gets one generated too: it is the credential of its feed.
 */
export async function subscriptionRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
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
      const result = await hub.subscriptions.create(input);
      reply.code(201);
      return {
        subscription: result.subscription,
        ...((result.secret ?? generated) ? { secret: result.secret ?? generated } : {}),
      };
    },
  );

  app.get(
    '/v1/subscriptions',
    { schema: { tags, summary: 'List subscriptions', response: { 200: s.listOf(subscriptionSchema) } } },
    async () => ({ items: await hub.subscriptions.list() }),
  );

  app.get<IdParams>(
    '/v1/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'Get a subscription',
        params: s.idParams,
        response: { 200: subscriptionSchema },
      },
    },
    async (request) => hub.subscriptions.get(request.params.id),
  );

  app.patch<IdParams & { Body: SubscriptionPatch }>(
    '/v1/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'Change a subscription (fields left out stay)',
        params: s.idParams,
        body: subscriptionUpdateSchema,
        response: { 200: subscriptionSchema },
      },
    },
    async (request) => {
      const before = await hub.subscriptions.get(request.params.id);
      if (before.managedBy === 'file') throw refuseFileManaged(request.params.id);
      return hub.subscriptions.update(request.params.id, request.body);
    },
  );

  app.delete<IdParams>(
    '/v1/subscriptions/:id',
    {
      schema: {
        tags,
        summary: 'Delete a subscription and its deliveries',
        params: s.idParams,
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      const before = await hub.subscriptions.get(request.params.id);
      if (before.managedBy === 'file') throw refuseFileManaged(request.params.id);
      await hub.subscriptions.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<IdParams & { Body: { reason?: string } | undefined }>(
    '/v1/subscriptions/:id/disable',
    {
      schema: {
        tags,
        summary: 'Stop deliveries to a subscription',
        params: s.idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { reason: { type: 'string', maxLength: 500 } },
        },
        response: { 200: subscriptionSchema },
      },
    },
    async (request) => hub.subscriptions.disable(request.params.id, request.body?.reason),
  );

  app.post<IdParams & { Body: { replayMissed?: boolean } | undefined }>(
    '/v1/subscriptions/:id/enable',
    {
      schema: {
        tags,
        summary: 'Re-enable a subscription, optionally sending what it missed',
        params: s.idParams,
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
      hub.subscriptions.enable(request.params.id, { replayMissed: request.body?.replayMissed === true }),
  );

  app.post<IdParams & { Body: { overlapMs?: number } | undefined }>(
    '/v1/subscriptions/:id/rotate-secret',
    {
      schema: {
        tags,
        summary:
          'Add a new signing secret; the old ones keep signing for overlapMs (returns the new secret once)',
        params: s.idParams,
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
      const before = await hub.subscriptions.get(request.params.id);
      if (before.managedBy === 'file' && before.secrets.some((x) => x.fromFile)) {
        throw refuseFileManaged(
          request.params.id,
          'has its signing secrets in the configuration file: rotate there (put the new secret first in secrets, keep the old one until the subscriber has switched, then restart)',
        );
      }
      return hub.subscriptions.rotateSecret(
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
        params: s.idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { type: { type: 'string', minLength: 1, maxLength: 200, default: 'switchyard.test' } },
        },
        response: { 200: s.attemptResult },
      },
    },
    async (request) => hub.sendTestEvent(request.params.id, request.body?.type ?? 'switchyard.test'),
  );

  app.post<IdParams>(
    '/v1/subscriptions/:id/replay-dead',
    {
      schema: {
        tags: ['replay'],
        summary: 'Replay every dead delivery of a subscription',
        params: s.idParams,
        response: { 200: replayed },
      },
    },
    async (request) => hub.deliveries.replayDead(request.params.id),
  );

  app.post<IdParams & { Body: { since: string } }>(
    '/v1/subscriptions/:id/replay-since',
    {
      schema: {
        tags: ['replay'],
        summary: 'Send again every matching event stored since a time',
        params: s.idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['since'],
          properties: { since: { type: 'string', format: 'date-time' } },
        },
        response: { 200: replayed },
      },
    },
    async (request) => hub.deliveries.replaySince(request.params.id, new Date(request.body.since)),
  );
}
