import { getSchemas } from '@switchyard/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { problemOf } from '../errors.ts';
import { etagOf, notModified } from '../etag.ts';
import { sendProblem } from '../plugins/problem.ts';

/** Where every core schema's `$id` starts; the rest of it is the path the hub serves it at. */
const SCHEMA_ID_BASE = 'https://switchyard.dev/schemas/';

/** The content type of a JSON Schema document (draft 2020-12, section 14.1 of its core spec). */
const SCHEMA_CONTENT_TYPE = 'application/schema+json';

/**
 * How long a client may use a schema without asking again, then revalidates with its ETag (a 304
 * when unchanged). The schemas change only with a hub release, but at the same paths: a day-long
 * or `immutable` lifetime would keep a subscriber validating against the old release's schema
 * that long after an upgrade; five minutes bounds that, and a revalidation costs a 304.
 */
const SCHEMA_CACHE_CONTROL = 'public, max-age=300, must-revalidate';

/** The longest request path a 404 repeats (its `instance`); a longer one is cut, with `…`. */
const MAX_ECHOED_PATH = 200;

/** For the OpenAPI document (routes/openapi.ts): the answer to an `If-None-Match` naming the copy's ETag. */
const NOT_MODIFIED = {
  type: 'null',
  description: 'Not Modified: the copy named by If-None-Match is current',
};

/** For the OpenAPI document: the headers a client caches by, on a 200 and a 304 alike. */
const CACHE_HEADERS = Object.fromEntries(
  [200, 304].map((status) => [
    status,
    {
      ETag: { description: 'A strong tag of the document, for If-None-Match.', schema: { type: 'string' } },
      'Cache-Control': {
        description: `${SCHEMA_CACHE_CONTROL}: use a copy five minutes, then revalidate.`,
        schema: { type: 'string' },
      },
    },
  ]),
);

/** Sends a cacheable document: 304 without a body when the client's copy is current. */
function sendCached(request: FastifyRequest, reply: FastifyReply, text: string, etag: string, type: string) {
  reply.header('etag', etag).header('cache-control', SCHEMA_CACHE_CONTROL);
  if (notModified(request, etag)) return reply.code(304).send();
  return reply.type(type).send(text);
}

/**
 * `/schemas/...`: the JSON Schemas this hub validates its events and commands with (docs/events.md),
 * each at the path of its `$id` (`https://switchyard.dev/schemas/events/appointment.created.json` at
 * `/schemas/events/appointment.created.json`), and `/schemas/index.json` listing them. A subscriber
 * validates what it receives with the schemas of the very hub it reads, not a copy of the repository
 * of another version; they lived only in the repository (downstream-consumer audit). Public like
 * `/healthz` and `/fhir/r4/metadata`: they hold no secret. Each answer carries an ETag and a
 * Cache-Control ({@link SCHEMA_CACHE_CONTROL}); `If-None-Match` with the ETag answers 304.
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
  const etags = new Map([...byPath].map(([path, text]) => [path, etagOf(text)]));
  // Sent as its text, like the schemas, so its ETag is of the very bytes sent.
  const index = JSON.stringify({
    schemas: [...byPath.keys()].map((path) => ({
      $id: `${SCHEMA_ID_BASE}${path}`,
      path: `/schemas/${path}`,
    })),
  });
  const indexEtag = etagOf(index);

  app.get(
    '/schemas/index.json',
    {
      schema: {
        tags: ['schemas'],
        summary: 'Every published JSON Schema (envelope, entities, events, commands): its $id and path here',
        responseHeaders: CACHE_HEADERS,
        response: {
          304: NOT_MODIFIED,
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
    async (request, reply) => sendCached(request, reply, index, indexEtag, 'application/json; charset=utf-8'),
  );

  app.get<{ Params: { '*': string } }>(
    '/schemas/*',
    {
      schema: {
        tags: ['schemas'],
        summary: 'One published JSON Schema, at the path of its $id',
        // The document as stored, sent as its text (a string payload is not serialized again).
        response: { 200: { type: 'object', additionalProperties: true }, 304: NOT_MODIFIED },
        responseHeaders: CACHE_HEADERS,
      },
    },
    async (request, reply) => {
      const path = request.params['*'];
      const body = byPath.get(path);
      if (body !== undefined) return sendCached(request, reply, body, etags.get(path)!, SCHEMA_CONTENT_TYPE);
      // The path once, as the problem's instance, and cut: the error handler's answer said it three
      // times (detail, details, instance), each as long as the request line allowed.
      const asked = `/schemas/${path}`;
      const instance = asked.length > MAX_ECHOED_PATH ? `${asked.slice(0, MAX_ECHOED_PATH)}…` : asked;
      return sendProblem(
        reply,
        problemOf(
          'SY_HTTP_NOT_FOUND',
          'no schema is published at this path; GET /schemas/index.json lists them',
          instance,
        ),
      );
    },
  );
}
