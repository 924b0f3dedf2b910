import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../deps.ts';
import type { RouteEntry, RouteTable } from '../route-table.ts';
import * as s from '../schemas.ts';

type Json = Record<string, unknown>;

/** `/v1/subscriptions/:id` → `/v1/subscriptions/{id}`; a trailing `*` becomes `{path}`. */
function openApiPath(url: string): string {
  return url
    .split('/')
    .map((seg) => (seg === '*' ? '{path}' : seg.startsWith(':') ? `{${seg.slice(1)}}` : seg))
    .join('/');
}

function operationId(method: string, url: string): string {
  const words = url
    .split('/')
    .filter(Boolean)
    .map((seg) => (seg === '*' ? 'path' : seg.startsWith(':') ? `by-${seg.slice(1)}` : seg))
    .flatMap((seg) => seg.split(/[-_.]/))
    .filter(Boolean);
  return [method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

/** Path parameters of a path template (`{id}`) that the route's `params` schema does not declare. */
function undeclaredPathParameters(path: string, declared: Json[]): Json[] {
  const names = new Set(declared.map((p) => p.name));
  return [...path.matchAll(/\{([^}]+)\}/g)]
    .map((m) => m[1]!)
    .filter((name) => !names.has(name))
    .map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
}

function parameters(location: 'path' | 'query' | 'header', schema: unknown): Json[] {
  const obj = schema as { properties?: Record<string, Json>; required?: string[] } | undefined;
  if (!obj?.properties) return [];
  return Object.entries(obj.properties).map(([name, prop]) => {
    const { description, ...rest } = prop as Json & { description?: string };
    return {
      name: name === '*' ? 'path' : name,
      in: location,
      required: location === 'path' || (obj.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: s.problem } },
});

function operation(route: RouteEntry): Json {
  const schema = (route.schema ?? {}) as Json & {
    params?: unknown;
    querystring?: unknown;
    body?: Json & { required?: string[] };
    documentedBody?: Json;
    response?: Record<string, Json>;
    summary?: string;
    description?: string;
    tags?: string[];
  };
  const responses: Json = {};
  for (const [status, body] of Object.entries(schema.response ?? {})) {
    if (body.type === 'null')
      responses[status] = {
        description: typeof body.description === 'string' ? body.description : 'No content',
      };
    else if (body.type === 'string')
      responses[status] = { description: 'OK', content: { 'text/plain': { schema: body } } };
    else responses[status] = { description: 'OK', content: { 'application/json': { schema: body } } };
  }
  if (route.url.startsWith('/hooks/')) {
    responses['200'] = {
      description: 'The connector’s acknowledgement, sent after the notifications are stored.',
    };
  }
  for (const [status, description] of Object.entries(schema.problems ?? {}))
    responses[status] = problemResponse(description);
  // A route's own 401 (what its credential is, when it is checked) says more than the generic one.
  if (route.auth !== 'none') responses['401'] ??= problemResponse('Missing or wrong bearer token');
  // After the problems: a refusal's headers (a 503's Retry-After) are documented as a success's are.
  for (const [status, headers] of Object.entries(schema.responseHeaders ?? {})) {
    if (responses[status]) responses[status] = { ...(responses[status] as Json), headers };
  }
  responses.default = problemResponse('An RFC 9457 problem (docs/errors.md lists the codes)');

  const declared = parameters('path', schema.params);
  const pathParameters = [...declared, ...undeclaredPathParameters(openApiPath(route.url), declared)];
  const op: Json = {
    operationId: operationId(route.method, route.url),
    ...(schema.summary ? { summary: schema.summary } : {}),
    ...(schema.description ? { description: schema.description } : {}),
    ...(schema.tags ? { tags: schema.tags } : {}),
    // Every {name} of the path is declared (OpenAPI requires it), with or without a params schema.
    parameters: [
      ...pathParameters,
      ...parameters('query', schema.querystring),
      ...parameters('header', schema.headers),
    ],
    responses,
    security:
      route.auth === 'admin'
        ? [{ adminToken: [] }]
        : route.auth === 'subscription'
          ? [{ subscriptionSecret: [] }]
          : route.auth === 'command'
            ? [{ adminToken: [] }, { commandCredential: [] }]
            : [],
  };
  if (schema.body) {
    op.requestBody = {
      required: (schema.body.required ?? []).length > 0 || schema.body.minProperties !== undefined,
      content: { 'application/json': { schema: schema.documentedBody ?? schema.body } },
    };
  } else if (route.url.startsWith('/hooks/')) {
    op.requestBody = {
      description: 'The vendor’s body, any content type, passed to the connector as raw bytes.',
      content: { '*/*': { schema: {} } },
    };
  }
  return op;
}

/**
 * Routes that are not part of the API: the document itself, the dashboard (`/ui/…`: its pages,
 * modules and sign-in are for a browser, not for a client generated from this document), and the
 * FHIR endpoint (`/fhir/r4/…`: its contract is the FHIR specification and its CapabilityStatement at
 * `/fhir/r4/metadata`; a FHIR client library, not an OpenAPI generator, talks to it).
 */
function inDocument(url: string): boolean {
  return url !== '/v1/openapi.json' && url !== '/ui' && !url.startsWith('/ui/') && !url.startsWith('/fhir/');
}

/**
 * Builds the OpenAPI 3.1 document of every API route in the table (HEAD twins, the dashboard and the
 * document itself left out) from the routes' JSON Schemas. Throws on two operations with one
 * operationId: a client generator stops there, so it is a bug in the route table.
 *
 * @example
 * ```ts
 * const doc = buildOpenApi(routes, { publicUrl: 'https://hub.example' });
 * ```
 */
export function buildOpenApi(routes: RouteTable, options: { publicUrl?: string | undefined } = {}): Json {
  const paths: Record<string, Json> = {};
  const schemas: Json = {};
  const operationIds = new Map<string, string>();
  for (const route of routes.routes) {
    if (!inDocument(route.url)) continue;
    const path = openApiPath(route.url);
    const item = paths[path] ?? {};
    paths[path] = item;
    const op = operation(route);
    const id = op.operationId as string;
    const taken = operationIds.get(id);
    if (taken)
      throw new Error(`OpenAPI: operationId ${id} of ${route.method} ${route.url} is also ${taken}'s`);
    operationIds.set(id, `${route.method} ${route.url}`);
    item[route.method.toLowerCase()] = op;
    Object.assign(schemas, route.schema?.components);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version: '1',
      description:
        'Vendor webhooks in, normalized CloudEvents out. Admin routes need `Authorization: Bearer <admin token>`; ' +
        'the pull feed of a subscription needs `Authorization: Bearer <one of its signing secrets>`. ' +
        'Every error is an RFC 9457 problem (application/problem+json).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    ...(options.publicUrl ? { servers: [{ url: options.publicUrl }] } : {}),
    paths,
    components: {
      ...(Object.keys(schemas).length > 0 ? { schemas } : {}),
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'server.adminToken from switchyard.yaml' },
        subscriptionSecret: {
          type: 'http',
          scheme: 'bearer',
          description:
            'One of the subscription’s signing secrets (whsec_…) in force; for the pull feed only.',
        },
        commandCredential: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A subscription’s command credential (sycmd_…, POST /v1/subscriptions/{id}/command-credentials); for /v1/commands only.',
        },
      },
    },
  };
}

/** `GET /v1/openapi.json`: public, so clients can generate code before they hold a token. */
export async function openApiRoutes(
  app: FastifyInstance,
  deps: RouteDeps & { routes: RouteTable; publicUrl?: string },
) {
  let cached: string | undefined;
  app.get(
    '/v1/openapi.json',
    { config: { auth: 'none' }, schema: { tags: ['meta'], summary: 'This API as an OpenAPI 3.1 document' } },
    async (_request, reply) => {
      cached ??= JSON.stringify(buildOpenApi(deps.routes, { publicUrl: deps.publicUrl }));
      return reply.type('application/json; charset=utf-8').send(cached);
    },
  );
}
