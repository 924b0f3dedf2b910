/**
 * The connector instances' HTTP face under `/v1/instances` (thin: the `hub.instances` API, plus
 * the rules of an API call: `[redacted]` keeps a stored secret, but not across a change of where
 * secrets are sent; a file-managed instance is changed in the file) and the JSON Schema of an
 * instance's health.
 */
import type { JsonObject, JsonSchema } from '@switchyard/core';
import type { FastifyInstance } from 'fastify';
import { HttpError, theConfigFile } from '../admin/http.ts';
import { idParams, int, listOf, nullableDateTime, nullableStr, object, str } from '../admin/schemas.ts';
import { markedValues, REDACTED } from '../delivery/redact.ts';
import { type InstancesApi, isNoLongerDeclared, type KeptSettings } from './api.ts';
import type { InstanceInput } from './input.ts';
import { instanceCreateSchema, instanceReplaceSchema, instanceSchema } from './schema.ts';
import { checkedSettings, type SettingsOwner, URL_FORMATS } from './settings.ts';

/** An instance's health as the API shows it (the `InstanceHealth` view). */
export const instanceHealth = object({
  id: str,
  lastMessageAt: nullableDateTime,
  lastError: nullableStr,
  lastErrorAt: nullableDateTime,
  pull: {
    anyOf: [
      { type: 'null' },
      object({
        cursor: nullableStr,
        nextAt: nullableDateTime,
        lastSuccessAt: nullableDateTime,
        consecutiveFailures: int,
        lagMs: { type: ['number', 'null'] },
      }),
    ],
  },
  reconcile: {
    description:
      'Push mode’s scheduled catch-up call to the vendor (Docplanner POST /notifications/release); null when the instance does not push or its connector has none.',
    anyOf: [
      { type: 'null' },
      object({
        nextAt: nullableDateTime,
        lastRunAt: nullableDateTime,
        lastSuccessAt: nullableDateTime,
        lastResult: nullableStr,
        lastError: nullableStr,
      }),
    ],
  },
  inbound: object({ received: int, failed: int, lastDay: object({ received: int, failed: int }) }),
});

const tags = ['instances'];

/**
 * The pointers of the URL-valued settings (a `format` of {@link URL_FORMATS} in the connector's
 * schema, so no connector is named here) whose value differs between `before` (as stored: defaults
 * filled in) and `after`, whose defaults are filled in the same way first.
 */
function changedUrls(before: JsonObject, after: JsonObject, connector: SettingsOwner): string[] {
  const isUrl = (schema: JsonSchema) => typeof schema.format === 'string' && URL_FORMATS.has(schema.format);
  const was = markedValues(before, connector.configSchema, isUrl);
  const is = markedValues(checkedSettings(connector, after), connector.configSchema, isUrl);
  const changed: string[] = [];
  for (const at of new Set([...was.keys(), ...is.keys()]))
    if (JSON.stringify(was.get(at)) !== JSON.stringify(is.get(at))) changed.push(at);
  return changed.sort();
}

function refuseFileManaged(id: string, configFile: string | undefined): HttpError {
  return new HttpError(
    'SY_HTTP_FILE_MANAGED',
    `instance ${JSON.stringify(id)} is declared in ${theConfigFile(configFile)}`,
    {
      details: { instance: id },
    },
  );
}

/** What the instances' routes are given: the concept's API, not the hub. */
export interface InstanceRoutesDeps {
  instances: InstancesApi;
  /** The config file the hub was started from, named in a 409 `SY_HTTP_FILE_MANAGED`. Absent: not named. */
  configFile?: string;
  /** The hub's `server.publicUrl` (absent: none): an instance whose vendor signs the hook URL needs it. */
  publicUrl?: string | undefined;
}

type Body = Omit<InstanceInput, 'id' | 'managedBy'> & { id?: string };

/**
 * What a replacement may not do to the instance stored (vetted under its row's lock): change a
 * file-managed one, or send kept secrets elsewhere.
 */
function vetReplacement(id: string, body: Body, configFile: string | undefined) {
  return ({ managedBy, stored, connector, settings, kept }: KeptSettings) => {
    if (managedBy === 'file') throw refuseFileManaged(id, configFile);
    if (kept.length > 0) refuseRedirectedSecrets(id, body, { config: stored, connector }, settings, kept);
  };
}

/**
 * A stored secret kept through `[redacted]` goes only where it went before: whoever holds an admin
 * session may read settings redacted, but must not learn a vendor secret by pointing the URL it is
 * sent to (an `apiBaseUrl`, an `adminApi.baseUrl`) at their own host, or by handing it to another
 * connector. Such a change needs the secrets sent again, by someone who knows them.
 */
function refuseRedirectedSecrets(
  id: string,
  body: Body,
  stored: { config: JsonObject; connector: SettingsOwner },
  settings: JsonObject,
  kept: string[],
): void {
  const secrets = kept.sort();
  if (body.connector !== stored.connector.name) {
    throw new HttpError(
      'SY_HTTP_SECRETS_REQUIRED',
      `instance ${JSON.stringify(id)} changes connector from ${stored.connector.name} to ${body.connector}: send its secrets again instead of "${REDACTED}"`,
      { details: { instance: id, connector: body.connector, secrets } },
    );
  }
  const urls = changedUrls(stored.config, settings, stored.connector);
  if (urls.length === 0) return;
  throw new HttpError(
    'SY_HTTP_SECRETS_REQUIRED',
    `instance ${JSON.stringify(id)} changes where it sends requests (${urls.map((u) => `/settings${u}`).join(', ')}): send its secrets again instead of "${REDACTED}"`,
    {
      details: {
        instance: id,
        settings: urls.map((u) => `/settings${u}`),
        secrets: secrets.map((s) => `/settings${s}`),
      },
    },
  );
}

/** The instance fields of a request body (what it leaves out stays out). */
function instanceFields(body: Body) {
  return {
    connector: body.connector,
    settings: body.settings as JsonObject,
    ...(body.mode ? { mode: body.mode } : {}),
    ...(body.pull ? { pull: body.pull } : {}),
    ...(body.gate ? { gate: body.gate } : {}),
  };
}

/**
 * Connector instances: list, get, health, create/replace/delete (API-managed ones), pull now.
 *
 * @example
 * ```ts
 * await v1.register((scope) =>
 *   instanceRoutes(scope, { instances: hub.instances, loadInstance: (id) => hub.host.loadInstance(id, true) }),
 * );
 * ```
 */
export async function instanceRoutes(app: FastifyInstance, deps: InstanceRoutesDeps): Promise<void> {
  const { instances, configFile } = deps;
  const rules = { publicUrl: deps.publicUrl };
  app.get(
    '/v1/instances',
    { schema: { tags, summary: 'List connector instances', response: { 200: listOf(instanceSchema) } } },
    async () => ({ items: await instances.list() }),
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
      const created = await instances.create(
        {
          ...instanceFields(request.body),
          id: request.body.id,
          managedBy: 'api',
        },
        rules,
      );
      reply.code(201);
      return created;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      schema: {
        tags,
        summary: 'Get a connector instance (secrets redacted)',
        params: idParams,
        response: { 200: instanceSchema },
      },
    },
    async (request) => instances.get(request.params.id),
  );

  app.put<{ Params: { id: string }; Body: Body }>(
    '/v1/instances/:id',
    {
      schema: {
        tags,
        summary: 'Create or replace an API-managed connector instance',
        params: idParams,
        body: instanceReplaceSchema,
        response: { 200: instanceSchema },
      },
    },
    async (request) =>
      instances.replace(
        { ...instanceFields(request.body), id: request.params.id, managedBy: 'api' },
        vetReplacement(request.params.id, request.body, configFile),
        rules,
      ),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      schema: {
        tags,
        summary:
          'Delete an API-managed connector instance, or a file-managed one the file no longer declares',
        description:
          'Refused with 409 SY_PIPELINE_CONFLICT while a subscription names the instance in sources or approverFilters.sources (details.subscriptions): take it out of those lists, or delete those subscriptions, first.',
        params: idParams,
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      const before = await instances.get(request.params.id);
      // One the file no longer declares stays (disabled) until it is deleted here for good.
      if (before.managedBy === 'file' && !isNoLongerDeclared(before))
        throw refuseFileManaged(request.params.id, configFile);
      await instances.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/instances/:id/health',
    {
      schema: {
        tags,
        summary: 'Health of a connector instance',
        params: idParams,
        response: { 200: instanceHealth },
      },
    },
    async (request) => instances.health(request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/instances/:id/pull',
    {
      schema: {
        tags,
        summary: 'Run one vendor pull for the instance now',
        params: idParams,
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
    async (request) => instances.pullNow(request.params.id),
  );
}
