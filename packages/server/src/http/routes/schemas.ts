import { getSchemas } from '@switchyard/core';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../admin/errors.ts';

/** Where every core schema's `$id` starts; the rest of it is the path the hub serves it at. */
const SCHEMA_ID_BASE = 'https://switchyard.dev/schemas/';

/** The content type of a JSON Schema document (draft 2020-12, section 14.1 of its core spec). */
const SCHEMA_CONTENT_TYPE = 'application/schema+json';

/**
 * `/schemas/...`: the JSON Schemas this hub validates its events and commands with (docs/events.md),
 * each at the path of its `$id` (`https://switchyard.dev/schemas/events/appointment.created.json` at
 * `/schemas/events/appointment.created.json`), and `/schemas/index.json` listing them. A subscriber
 * validates what it receives with the schemas of the very hub it reads, not a copy of the repository
 * of another version; they lived only in the repository (downstream-consumer audit). Public like
 * `/healthz` and `/fhir/r4/metadata`: they hold no secret.
 *
 * @example
 * ```ts
 * await app.register(schemaRoutes);
 * // GET /schemas/index.json → { schemas: [{ $id, path: '/schemas/envelope.json' }, ...] }
 * ```
 */
export async function schemaRoutes(app: FastifyInstance): Promise<void> {
  const byPath = new Map(
    getSchemas()
      .filter((schema) => schema.$id.startsWith(SCHEMA_ID_BASE))
      .map((schema) => [schema.$id.slice(SCHEMA_ID_BASE.length), JSON.stringify(schema)]),
  );
  const index = {
    schemas: [...byPath.keys()].map((path) => ({
      $id: `${SCHEMA_ID_BASE}${path}`,
      path: `/schemas/${path}`,
    })),
  };

  app.get(
    '/schemas/index.json',
    {
      schema: {
        tags: ['schemas'],
        summary: 'Every published JSON Schema (envelope, entities, events, commands): its $id and path here',
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['schemas'],
            properties: {
              schemas: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['$id', 'path'],
                  properties: { $id: { type: 'string' }, path: { type: 'string' } },
                },
              },
            },
          },
        },
      },
    },
    async () => index,
  );

  app.get<{ Params: { '*': string } }>(
    '/schemas/*',
    {
      schema: {
        tags: ['schemas'],
        summary: 'One published JSON Schema, at the path of its $id',
        // The document as stored, sent as its text (a string payload is not serialized again).
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async (request, reply) => {
      const body = byPath.get(request.params['*']);
      if (body === undefined) throw notFound('schema', `/schemas/${request.params['*']}`);
      return reply.type(SCHEMA_CONTENT_TYPE).send(body);
    },
  );
}
