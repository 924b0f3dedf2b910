import type { JsonObject, JsonValue } from '@switchyard/core';
import { SwitchyardError } from '@switchyard/core';
import type { FastifyInstance } from 'fastify';
import { REDACTED } from '../../delivery/redact.ts';
import type { InstanceInput } from '../../instances/input.ts';
import { instanceCreateSchema, instanceReplaceSchema, instanceSchema } from '../../instances/schema.ts';
import type { Hub } from '../../pipeline/hub.ts';
import type { RouteDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import * as s from '../schemas.ts';

const tags = ['instances'];

/**
 * `[redacted]` placeholders in submitted settings keep the stored value, so a client can GET an
 * instance, change one field and PUT it back without knowing (or erasing) its secrets.
 */
export function keepRedacted(input: JsonValue, stored: JsonValue | undefined): JsonValue {
  if (input === REDACTED && stored !== undefined) return stored;
  if (isObject(input) && isObject(stored)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(input)) out[k] = keepRedacted(v, stored[k]);
    return out;
  }
  return input;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function existing(hub: Hub, id: string) {
  try {
    return await hub.instances.get(id);
  } catch (error) {
    if (error instanceof SwitchyardError && error.code === 'SY_PIPELINE_NOT_FOUND') return undefined;
    throw error;
  }
}

function refuseFileManaged(id: string): HttpError {
  return new HttpError(
    'SY_HTTP_FILE_MANAGED',
    `instance ${JSON.stringify(id)} is declared in the configuration file`,
    {
      details: { instance: id },
    },
  );
}

type Body = Omit<InstanceInput, 'id' | 'managedBy'> & { id?: string };

async function save(hub: Hub, id: string, body: Body) {
  const stored = await hub.host.loadInstance(id, true).catch(() => undefined);
  const settings = keepRedacted(body.settings as JsonObject, stored?.config) as JsonObject;
  return hub.instances.upsert({
    id,
    connector: body.connector,
    settings,
    ...(body.mode ? { mode: body.mode } : {}),
    ...(body.pull ? { pull: body.pull } : {}),
    ...(body.gate ? { gate: body.gate } : {}),
    managedBy: 'api',
  });
}

/** Connector instances: list, get, health, create/replace/delete (API-managed ones), pull now. */
export async function instanceRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
  app.get(
    '/v1/instances',
    { schema: { tags, summary: 'List connector instances', response: { 200: s.listOf(instanceSchema) } } },
    async () => ({ items: await hub.instances.list() }),
  );

  app.post<{ Body: Body & { id: string } }>(
    '/v1/instances',
    {
      schema: {
        tags,
        summary: 'Create an API-managed connector instance',
        body: instanceCreateSchema,
        response: { 201: instanceSchema },
      },
    },
    async (request, reply) => {
      if (await existing(hub, request.body.id)) {
        throw new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `instance ${JSON.stringify(request.body.id)} exists`,
        );
      }
      reply.code(201);
      return save(hub, request.body.id, request.body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      schema: {
        tags,
        summary: 'Get a connector instance (secrets redacted)',
        params: s.idParams,
        response: { 200: instanceSchema },
      },
    },
    async (request) => hub.instances.get(request.params.id),
  );

  app.put<{ Params: { id: string }; Body: Body }>(
    '/v1/instances/:id',
    {
      schema: {
        tags,
        summary: 'Create or replace an API-managed connector instance',
        params: s.idParams,
        body: instanceReplaceSchema,
        response: { 200: instanceSchema },
      },
    },
    async (request) => {
      const before = await existing(hub, request.params.id);
      if (before?.managedBy === 'file') throw refuseFileManaged(request.params.id);
      return save(hub, request.params.id, request.body);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      schema: {
        tags,
        summary: 'Delete an API-managed connector instance',
        params: s.idParams,
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      const before = await hub.instances.get(request.params.id);
      if (before.managedBy === 'file') throw refuseFileManaged(request.params.id);
      await hub.instances.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/instances/:id/health',
    {
      schema: {
        tags,
        summary: 'Health of a connector instance',
        params: s.idParams,
        response: { 200: s.instanceHealth },
      },
    },
    async (request) => hub.instances.health(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/instances/:id/pull',
    {
      schema: {
        tags,
        summary: 'Run one vendor pull for the instance now',
        params: s.idParams,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['stored', 'duplicates'],
            properties: {
              stored: { type: 'integer' },
              duplicates: { type: 'integer' },
              error: { type: 'string' },
            },
          },
        },
      },
    },
    async (request) => hub.instances.pullNow(request.params.id),
  );
}
