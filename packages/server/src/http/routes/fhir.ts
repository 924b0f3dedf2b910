/**
 * The read-only FHIR R4 endpoint, `/fhir/r4/...` (docs/fhir.md#the-read-endpoint): `metadata`,
 * `Appointment/{id}`, `Appointment?…`, `DocumentReference/{id}`, `DocumentReference?…`, answered
 * `application/fhir+json`, every error an OperationOutcome. And the read-token routes of the admin
 * API, `POST|DELETE /v1/subscriptions/{id}/fhir-read-token`.
 *
 * The FHIR routes are left out of the OpenAPI document (`inDocument` in openapi.ts): their contract
 * is the FHIR specification and the CapabilityStatement at `/fhir/r4/metadata`, generated from the
 * same table the search uses; the token routes are admin API and are in it.
 */
import { SwitchyardError, timingSafeEqualString } from '@switchyard/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, unauthorized } from '../../admin/http.ts';
import { idParams } from '../../admin/schemas.ts';
import {
  type CurrentEntity,
  countCurrentEntities,
  estimateCurrentEntities,
  getCurrentEntity,
  type SearchedEntity,
  searchCurrentEntities,
} from '../../entities/current.ts';
import type { FhirEntity, FhirReadHost } from '../../fhir/host.ts';
import {
  acceptsFhirJson,
  type FhirReader,
  type FhirReadSide,
  isReadableType,
  operationOutcome,
} from '../../fhir/read.ts';
import { handlingOf, type QueryPairs } from '../../fhir/search.ts';
import type { Hub } from '../../pipeline/hub.ts';
import { deleteReadToken, findReadToken, setReadToken } from '../../storage/fhir-tokens.ts';
import { typeMatches } from '../../subscriptions/type-patterns.ts';
import type { RouteDeps } from '../deps.ts';
import { problemFromError } from '../errors.ts';
import { pathOf } from '../plugins/problem.ts';

/** The media type of every answer of the FHIR endpoint. */
export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** Where the endpoint lives. */
export const FHIR_PREFIX = '/fhir/r4';

/**
 * The `Cache-Control` of every answer of the endpoint: a cache may keep a copy for a conditional
 * read (`If-None-Match`, `If-Modified-Since`: 304 when it is current) but must ask the hub before
 * each use, and a shared one must not keep it. A read has carried `Last-Modified` since conditional
 * reads came, and without a directive a cache may then reuse it unasked for a tenth of its age
 * (RFC 9111 §4.2.2, as browsers do): an appointment last changed 10 days ago for about a day, its
 * cancellation unseen, and served to another token, or a revoked one, in the same browser (a
 * browser's cache is keyed by URL, not by `Authorization`).
 */
export const FHIR_CACHE_CONTROL = 'private, no-cache';

function entityOf(row: CurrentEntity | SearchedEntity): FhirEntity {
  return {
    subject: row.subject,
    instanceId: row.instanceId,
    envelope: row.envelope as unknown as FhirEntity['envelope'],
    updatedAt: row.updatedAt,
    ...('orderKey' in row ? { orderKey: row.orderKey } : {}),
  };
}

/**
 * The FHIR read side's host over the hub's database: the current-state projection, the read-token
 * store and the hub's subscription filter rule.
 *
 * @example
 * ```ts
 * const reader = createFhirReader(fhirHost(hub));
 * ```
 */
export function fhirHost(hub: Hub): FhirReadHost {
  const db = hub.host.db;
  return {
    getEntity: async (subject) => {
      const row = await getCurrentEntity(db, subject);
      return row ? entityOf(row) : undefined;
    },
    searchEntities: async (query) => (await searchCurrentEntities(db, query)).map(entityOf),
    countEntities: (query) => countCurrentEntities(db, query),
    estimateEntities: (query) => estimateCurrentEntities(db, query),
    findReadToken: (hash) => findReadToken(db, hash),
    setReadToken: (id, hash, hint) => setReadToken(db, id, hash, hint),
    deleteReadToken: (id) => deleteReadToken(db, id),
    typeMatches: (type, patterns) => patterns.some((p) => typeMatches(p, type)),
  };
}

const readers = new WeakMap<FastifyRequest, FhirReader>();

/** The query string as (name, value) pairs, repeats kept in order. */
function queryPairs(request: FastifyRequest): QueryPairs {
  const q = request.url.indexOf('?');
  return q === -1 ? [] : [...new URLSearchParams(request.url.slice(q + 1))];
}

function sendFhir(reply: FastifyReply, status: number, body: unknown, headers: Record<string, string> = {}) {
  return reply.code(status).headers(headers).type(FHIR_JSON).send(JSON.stringify(body));
}

/**
 * A conditional read's answer (R4 http.html#cread, RFC 9110 §13.1): `If-None-Match` naming the
 * resource's ETag (weak comparison, or `*`), else `If-Modified-Since` not before its last change
 * (HTTP dates have whole seconds; `meta.lastUpdated` has milliseconds).
 */
function notModified(
  request: FastifyRequest,
  etag: string | undefined,
  lastModified: Date | undefined,
): boolean {
  const match = request.headers['if-none-match'];
  if (match !== undefined) {
    const tags = match.split(',').map((t) => t.trim().replace(/^W\//, ''));
    return etag !== undefined && (tags.includes('*') || tags.includes(etag.replace(/^W\//, '')));
  }
  const since = Date.parse(request.headers['if-modified-since'] ?? '');
  return (
    lastModified !== undefined &&
    !Number.isNaN(since) &&
    Math.floor(lastModified.getTime() / 1000) * 1000 <= since
  );
}

/** The endpoint's own URL: the configured public URL, else what the request was sent to. */
function baseUrlOf(request: FastifyRequest, publicUrl: string | undefined): string {
  const base = publicUrl ? publicUrl.replace(/\/+$/, '') : `${request.protocol}://${request.host}`;
  return `${base}${FHIR_PREFIX}`;
}

/**
 * Registers `/fhir/r4/...`; register it with `{ prefix: '/fhir/r4' }` so its not-found and error
 * handlers (OperationOutcome) cover every path below.
 *
 * @example
 * ```ts
 * await app.register((scope) => fhirRoutes(scope, { ...deps, reader, adminToken }), { prefix: '/fhir/r4' });
 * ```
 */
export async function fhirRoutes(
  app: FastifyInstance,
  {
    reader,
    adminToken,
    publicUrl,
  }: { reader: FhirReadSide; adminToken: string | undefined; publicUrl?: string | undefined },
): Promise<void> {
  // Every answer below /fhir/r4 has FHIR_CACHE_CONTROL, and every error answer is an
  // OperationOutcome: the app's problem documents (from its hooks: rate limits, body limits,
  // shutdown) are rewritten here, in one place.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', FHIR_CACHE_CONTROL);
    const type = String(reply.getHeader('content-type') ?? '');
    if (!type.startsWith('application/problem+json') || typeof payload !== 'string') return payload;
    const problem = JSON.parse(payload) as { status: number; code: string; detail?: string; title?: string };
    reply.type(FHIR_JSON);
    return JSON.stringify(
      operationOutcome(problem.status, problem.code, problem.detail ?? problem.title ?? ''),
    );
  });
  app.setErrorHandler((error, request, reply) => {
    const { problem, headers, internal } = problemFromError(error, pathOf(request));
    if (internal) request.log.error({ err: error }, 'unexpected error answering a FHIR request');
    return sendFhir(
      reply,
      problem.status,
      operationOutcome(problem.status, problem.code, problem.detail),
      headers,
    );
  });
  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request);
    // A write, or a POST search, on a path the endpoint reads: the interaction exists in FHIR but
    // not here, which is 405 with what is allowed (R4 allows 405 for one of GET or POST search).
    const below = path.slice(path.indexOf(FHIR_PREFIX) + FHIR_PREFIX.length);
    const [, type] = /^\/([A-Za-z]+)(?:\/[^/]+)?$/.exec(below) ?? [];
    if (type !== undefined && (type === 'metadata' || isReadableType(type))) {
      const what = below.endsWith('/_search')
        ? `search with GET ${FHIR_PREFIX}/${type}?…; POST _search is not supported`
        : 'the endpoint is read-only';
      return sendFhir(
        reply,
        405,
        operationOutcome(
          405,
          'SY_HTTP_METHOD_NOT_ALLOWED',
          `${request.method} is not allowed on ${path}: ${what}`,
        ),
        { allow: 'GET, HEAD' },
      );
    }
    return sendFhir(
      reply,
      404,
      operationOutcome(404, 'SY_HTTP_NOT_FOUND', `no FHIR interaction ${request.method} ${path}`),
    );
  });

  app.addHook('onRequest', async (request) => {
    const formats = queryPairs(request)
      .filter(([k]) => k === '_format')
      .map(([, v]) => v);
    if (!acceptsFhirJson(formats, request.headers.accept)) {
      throw new SwitchyardError(
        'SY_FHIR_NOT_ACCEPTABLE',
        `this endpoint answers application/fhir+json only (asked: ${formats.length > 0 ? `_format=${formats.join(',')}` : `Accept: ${request.headers.accept?.slice(0, 200)}`})`,
      );
    }
    if (request.routeOptions.config.auth === 'none') return;
    const token = bearerToken(request);
    if (token && adminToken && timingSafeEqualString(token, adminToken)) {
      readers.set(request, { kind: 'admin' });
      request.credentialsChecked = true;
      return;
    }
    const found = token ? await reader.authenticate(token) : undefined;
    if (!found) throw unauthorized('an admin token or a FHIR read token (syfhir_…) is required');
    readers.set(request, found);
    request.credentialsChecked = true;
  });

  /** A resource type this endpoint does not serve: 404, as for an unknown path. */
  const notServed = (reply: FastifyReply, type: string) =>
    sendFhir(
      reply,
      404,
      operationOutcome(404, 'SY_HTTP_NOT_FOUND', `the resource type ${type} is not served here`),
    );

  app.get('/metadata', { config: { auth: 'none' } }, async (request, reply) => {
    // R4's capabilities interaction takes `mode`: only `full` is what this answer is (no
    // TerminologyCapabilities, no normative subset); anything else is refused like a search's.
    const other = queryPairs(request).filter(([k, v]) => k !== '_format' && !(k === 'mode' && v === 'full'));
    if (other.length > 0 && handlingOf(request.headers.prefer) === 'strict') {
      return sendFhir(
        reply,
        400,
        operationOutcome(
          400,
          'SY_FHIR_NOT_SUPPORTED',
          `metadata takes only mode=full and _format (got ${other.map(([k, v]) => `${k}=${v}`).join(', ')})`,
        ),
      );
    }
    return sendFhir(reply, 200, reader.capabilityStatement(baseUrlOf(request, publicUrl)));
  });

  app.get<{ Params: { type: string } }>('/:type', async (request, reply) => {
    const { type } = request.params;
    if (!isReadableType(type)) return notServed(reply, type);
    const bundle = await reader.search(
      readers.get(request)!,
      type,
      queryPairs(request),
      baseUrlOf(request, publicUrl),
      handlingOf(request.headers.prefer),
    );
    return sendFhir(reply, 200, bundle);
  });

  app.get<{ Params: { type: string; id: string } }>('/:type/:id', async (request, reply) => {
    const { type, id } = request.params;
    if (!isReadableType(type)) return notServed(reply, type);
    const query = queryPairs(request).filter(([k]) => k !== '_format');
    // Lenient handling ignores what a read does not take (R4 search.html#errors, for any parameter).
    if (query.length > 0 && handlingOf(request.headers.prefer) === 'strict') {
      return sendFhir(
        reply,
        400,
        operationOutcome(
          400,
          'SY_FHIR_NOT_SUPPORTED',
          `a read takes no parameters (got ${query.map(([k]) => k).join(', ')})`,
        ),
      );
    }
    const resource = await reader.read(readers.get(request)!, type, id);
    const { versionId, lastUpdated } = resource.meta ?? {};
    const etag = versionId ? `W/"${versionId}"` : undefined;
    const lastModified = lastUpdated ? new Date(lastUpdated) : undefined;
    const headers: Record<string, string> = {
      ...(etag ? { etag } : {}),
      ...(lastModified ? { 'last-modified': lastModified.toUTCString() } : {}),
    };
    if (notModified(request, etag, lastModified)) return reply.code(304).headers(headers).send();
    return sendFhir(reply, 200, resource, headers);
  });
}

/** `POST|DELETE /v1/subscriptions/{id}/fhir-read-token`, under the admin API's authentication. */
export async function fhirTokenRoutes(
  app: FastifyInstance,
  { reader }: RouteDeps & { reader: FhirReadSide },
) {
  const tags = ['subscriptions'];
  app.post<{ Params: { id: string } }>(
    '/v1/subscriptions/:id/fhir-read-token',
    {
      schema: {
        tags,
        summary:
          "Create or rotate the subscription's FHIR read token (shown once; the previous one stops working); it reads /fhir/r4 for the instances and types the subscription covers",
        params: idParams,
        response: {
          201: {
            type: 'object',
            additionalProperties: false,
            required: ['subscriptionId', 'token', 'hint'],
            properties: {
              subscriptionId: { type: 'string' },
              token: {
                type: 'string',
                description: 'Send as `Authorization: Bearer <token>` to /fhir/r4. Shown only now.',
              },
              hint: { type: 'string' },
            },
          },
        },
      },
    },
    async (request, reply) => reply.code(201).send(await reader.createReadToken(request.params.id)),
  );
  app.delete<{ Params: { id: string } }>(
    '/v1/subscriptions/:id/fhir-read-token',
    {
      schema: {
        tags,
        summary: "Revoke the subscription's FHIR read token",
        params: idParams,
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      await reader.deleteReadToken(request.params.id);
      return reply.code(204).send();
    },
  );
}
