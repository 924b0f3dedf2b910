/**
 * The commands API: `POST /v1/commands`, `GET /v1/commands`, `GET /v1/commands/{id}`,
 * `POST /v1/commands/{id}/retry`, and a subscription's command credentials (`POST` and `GET
 * /v1/subscriptions/{id}/command-credentials`, `DELETE …/command-credentials/{credentialId}`). A thin
 * face over the subsystem (commands.ts). Registered at the root with its own authentication: the
 * admin token (or the dashboard session) as for the rest of `/v1`, or, on the command routes, a
 * subscription's command credential, which acts for that subscription only.
 */
import {
  type CommandType,
  commandSchemaIds,
  commandTypeInfo,
  commandTypes,
  commonSchemaId,
  eventSchemaIds,
  getSchemas,
} from '@switchyard/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerToken, unauthorized } from '../admin/http.ts';
import { cursorParam, limitParam } from '../admin/schemas.ts';
import { requireAdmin } from '../http/plugins/admin-auth.ts';
import type { Executor } from '../storage/db.ts';
import type { CommandInput, CommandListQuery, CommandSender, Commands } from './commands.ts';

type Schema = Record<string, unknown>;

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const nint = { type: ['integer', 'null'] } as const;
const nnum = { type: ['number', 'null'] } as const;
const time = { type: 'string', format: 'date-time' } as const;
const ntime = { type: ['string', 'null'], format: 'date-time' } as const;
const statuses = ['pending', 'running', 'succeeded', 'failed'];

function object(properties: Record<string, unknown>): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

const coreSchemas = new Map(getSchemas().map((schema) => [schema.$id, schema as Schema]));

/**
 * A core schema as an OpenAPI component: without `$schema` and `$id` (an `$id` would make its
 * `$ref`s resolve against switchyard.dev rather than the document), its references to the shared
 * definitions (`../common.json#/$defs/X`, `#/$defs/X` inside common) pointed at `#/components/schemas/X`.
 */
function component(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(component);
  if (value === null || typeof value !== 'object') return value;
  const out: Schema = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$schema' || key === '$id') continue;
    out[key] =
      key === '$ref' && typeof v === 'string'
        ? `#/components/schemas/${v.slice(v.lastIndexOf('/') + 1)}`
        : component(v);
  }
  return out;
}

/** `slot.move_block` → `SlotMoveBlock`. */
const pascal = (type: string) =>
  type
    .split(/[._]/)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');

/**
 * For the OpenAPI document: each command type's body (`<Type>Command`, its `type`, its target and
 * its data, `<Type>Data`, from the type's JSON Schema in the catalog), one of them told by `type`,
 * and the shared definitions they use. A generated client then knows, say, `slot.block`'s data. The
 * route itself validates the looser body and checks the data against the type's schema, so a body
 * that fails it is refused `SY_COMMAND_INVALID` (or `SY_COMMAND_UNKNOWN_TYPE`), as documented.
 */
function documentedCommands(): { body: Schema; components: Schema } {
  const common = coreSchemas.get(commonSchemaId)!.$defs as Schema;
  const components: Schema = component(common) as Schema;
  const mapping: Record<string, string> = {};
  for (const type of commandTypes as readonly CommandType[]) {
    const data = component(coreSchemas.get(commandSchemaIds[type])) as Schema;
    const { description, title, examples } = data;
    delete data.examples;
    const target = commandTypeInfo(type)!.target;
    const name = pascal(type);
    const dataRequired = Array.isArray(data.required) && data.required.length > 0;
    components[`${name}Data`] = data;
    components[`${name}Command`] = {
      type: 'object',
      title,
      description,
      additionalProperties: false,
      required: ['type', target, ...(dataRequired ? ['data'] : [])],
      properties: {
        type: { const: type },
        [target]:
          target === 'subject'
            ? { type: 'string', maxLength: 300, description: `\`${commandTypeInfo(type)!.entity}/<hub id>\`` }
            : { type: 'string', maxLength: 100, description: 'The connector instance id.' },
        data: { $ref: `#/components/schemas/${name}Data` },
      },
      examples,
    };
    mapping[type] = `#/components/schemas/${name}Command`;
  }
  return {
    body: {
      oneOf: Object.values(mapping).map(($ref) => ({ $ref })),
      discriminator: { propertyName: 'type', mapping },
    },
    components,
  };
}

const documented = documentedCommands();

/** What a succeeded command's `result` holds: the `result` of its `command.succeeded` event. */
const resultProperties = (
  (coreSchemas.get(eventSchemaIds['command.succeeded'])!.properties as Schema).result as Schema
).properties;

const commandProperties = {
  id: str,
  type: str,
  status: { type: 'string', enum: statuses },
  subject: {
    ...nstr,
    description:
      'The entity acted on (`appointment/<hub id>`, `slot/<hub id>`); for a booking or a block (`appointment.book`, `slot.block`), set once made.',
  },
  instance: str,
  connector: str,
  data: { type: 'object', additionalProperties: true },
  sentBy: { ...str, description: '`admin` or `subscription:<id>`.' },
  idempotencyKey: nstr,
  run: {
    type: 'integer',
    description: 'The run: 1, then one more per manual retry (which counts attempts from 1 again).',
  },
  attempts: { type: 'integer', description: 'Tries of the current run.' },
  nextAttemptAt: ntime,
  result: {
    type: ['object', 'null'],
    description:
      'Set once succeeded: `appointmentId` (an `appointment.book`), `slotId` (a `slot.block`), `vendorIds`, `alreadyDone`, `unchanged` (no echo will come), as in `command.succeeded`.',
    properties: resultProperties,
    additionalProperties: true,
  },
  error: { type: ['object', 'null'], additionalProperties: true },
  createdAt: time,
  updatedAt: time,
  completedAt: ntime,
};

/** A command as the API shows it (OpenAPI schema). */
export const commandSchema = object(commandProperties);

const call = object({
  run: { type: 'integer', description: 'The run of the command the call belongs to.' },
  attempt: { type: 'integer', description: 'The try within that run.' },
  givenBack: {
    type: 'boolean',
    description:
      "The call's try was given back: the hub's own database failed it (a full disk, out of memory, an outage), so it spent none of the command's tries and the next try has the same attempt number. The call itself was made (it may be the one that did the work).",
  },
  startedAt: time,
  method: str,
  url: { ...str, description: 'Origin and path only (no query string).' },
  statusCode: nint,
  latencyMs: nnum,
  error: nstr,
  responseSnippet: nstr,
});

/** A command with every vendor call (OpenAPI schema). */
export const commandDetailSchema = object({ ...commandProperties, calls: { type: 'array', items: call } });

const senders = new WeakMap<FastifyRequest, CommandSender>();

function senderOf(request: FastifyRequest): CommandSender {
  return senders.get(request) ?? { kind: 'admin' };
}

/**
 * Registers the commands routes.
 *
 * @example
 * ```ts
 * await app.register(async (scope) => commandRoutes(scope, { commands, adminToken, db: hub.host.db }));
 * // POST /v1/commands  Idempotency-Key: crm-1  { "type": "appointment.cancel", "subject": "appointment/…" } → 202
 * ```
 */
export async function commandRoutes(
  app: FastifyInstance,
  {
    commands,
    adminToken,
    db,
  }: {
    commands: Commands;
    adminToken: string | undefined;
    /** The hub's database (`hub.host.db`), where the dashboard's sessions are checked. */
    db: Executor;
  },
): Promise<void> {
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.auth !== 'command') return requireAdmin(request, adminToken, db);
    const token = bearerToken(request);
    if (token?.startsWith('sycmd_')) {
      // An address over the failed-authentication limit is screened in memory first: its wrong
      // guesses must not each cost a database read (security/auth-rate-limit.ts).
      if (request.authLimited === true && !(await commands.mayBeCredential(token))) throw unauthorized();
      const sender = await commands.authenticate(token);
      if (!sender) throw unauthorized();
      senders.set(request, sender);
      request.credentialsChecked = true;
      return;
    }
    // The admin token, the dashboard's session, or a refusal: never a request let through for want
    // of a credential (an unauthenticated command would act on a vendor as the admin).
    await requireAdmin(request, adminToken, db);
  });
  const tags = ['commands'];
  const commandAuth = { auth: 'command' } as const;

  app.post<{ Body: CommandInput; Headers: { 'idempotency-key'?: string } }>(
    '/v1/commands',
    {
      config: commandAuth,
      schema: {
        tags,
        summary: 'Send a command to a vendor through the hub (202: queued; the outcome arrives as an event)',
        description:
          'Authenticate with the admin token or a subscription command credential (`sycmd_…`). Refused at once, nothing queued: unknown type, invalid data, unknown or foreign target, unsupported by the connector, no vendor id, appointment already cancelled, calendar block already removed. See docs/commands.md.',
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description:
                'The same key from the same sender returns the first command; with another body: 409.',
            },
          },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { type: 'string', maxLength: 100, examples: ['appointment.cancel', 'slot.block'] },
            subject: {
              type: 'string',
              maxLength: 300,
              examples: [
                'appointment/6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
                'slot/3e2d1c0b-9a8f-4e7d-b6c5-a4b3c2d1e0f9',
              ],
            },
            instance: { type: 'string', maxLength: 100 },
            // Any JSON here: the type's own schema checks it (`SY_COMMAND_INVALID` at `/data`, as
            // documented), where this route answered a `null`, a text or a list the generic 400.
            data: { description: "The command's data: an object, as its type's schema says." },
          },
        },
        // For the OpenAPI document: each type's body (documentedCommands).
        documentedBody: documented.body,
        components: documented.components,
        response: { 200: commandSchema, 202: commandSchema },
        // For the OpenAPI document (routes/openapi.ts): the refusals a sender should handle, and
        // the header that tells a replayed answer (200) from a new command (202).
        problems: {
          409: 'SY_COMMAND_TARGET_STATE (the target cannot take it now, e.g. an appointment already cancelled, a block already removed) or SY_COMMAND_IDEMPOTENCY_CONFLICT (the Idempotency-Key was used with another body; details.commandId names the first)',
          422: 'SY_COMMAND_UNKNOWN_TYPE, SY_COMMAND_INVALID (errors lists each problem), SY_COMMAND_UNKNOWN_TARGET, SY_COMMAND_UNSUPPORTED or SY_COMMAND_NO_VENDOR_ID: nothing was queued',
        },
        responseHeaders: {
          200: {
            'Idempotent-Replayed': {
              description: 'true: the first command sent with this Idempotency-Key, not a new one.',
              schema: { type: 'string', enum: ['true'] },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { command, replayed } = await commands.accept(
        senderOf(request),
        request.body,
        request.headers['idempotency-key'],
      );
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(replayed ? 200 : 202).send(command);
    },
  );

  app.get<{ Querystring: CommandListQuery }>(
    '/v1/commands',
    {
      config: commandAuth,
      schema: {
        tags,
        summary: 'List commands, newest first (a subscription credential sees its own)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: statuses },
            type: { type: 'string', maxLength: 100 },
            instanceId: { type: 'string', maxLength: 100 },
            subject: { type: 'string', maxLength: 300 },
            cursor: cursorParam,
            limit: limitParam,
          },
        },
        response: {
          200: object({
            items: { type: 'array', items: commandSchema },
            nextCursor: {
              ...nstr,
              description: 'Pass as `cursor` for the next page; null when there is no more.',
            },
          }),
        },
      },
    },
    async (request) => commands.list(senderOf(request), request.query),
  );

  const idParams = object({ id: { type: 'string', format: 'uuid' } });
  const subscriptionParams = {
    type: 'object',
    additionalProperties: false,
    required: ['id'],
    properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
  } as const;

  app.get<{ Params: { id: string } }>(
    '/v1/commands/:id',
    {
      config: commandAuth,
      schema: {
        tags,
        summary: 'Get a command with every vendor call made for it and its outcome',
        params: idParams,
        response: { 200: commandDetailSchema },
      },
    },
    async (request) => commands.get(senderOf(request), request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/commands/:id/retry',
    {
      config: commandAuth,
      schema: {
        tags,
        summary:
          'Run a failed command again, with a fresh set of tries (its earlier vendor calls stay listed)',
        description:
          'Checked again as a new command is, and refused alike (nothing queued): the sender may no longer act on the target (422 SY_COMMAND_UNKNOWN_TARGET), the connector no longer carries it out (422 SY_COMMAND_UNSUPPORTED), the appointment is cancelled (the block removed) by now (409 SY_COMMAND_TARGET_STATE). 409 SY_PIPELINE_CONFLICT unless the command is failed.',
        params: idParams,
        response: { 202: commandSchema },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await commands.retry(senderOf(request), request.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/subscriptions/:id/command-credentials',
    {
      schema: {
        tags,
        summary:
          "Create a command credential for a subscription (the token is shown once); it may send commands on the subscription's instances",
        params: subscriptionParams,
        response: {
          201: object({
            id: str,
            subscriptionId: str,
            token: {
              ...str,
              description: 'Send as `Authorization: Bearer <token>` to /v1/commands. Shown only now.',
            },
            hint: str,
          }),
        },
      },
    },
    async (request, reply) => reply.code(201).send(await commands.createCredential(request.params.id)),
  );

  // Admin only, like the create route: a credential may not list or revoke credentials.
  app.get<{ Params: { id: string } }>(
    '/v1/subscriptions/:id/command-credentials',
    {
      schema: {
        tags,
        summary: "List a subscription's command credentials (never their tokens)",
        params: subscriptionParams,
        response: {
          200: object({
            items: {
              type: 'array',
              items: object({
                id: str,
                subscriptionId: str,
                hint: { ...str, description: "The token's first characters, to tell credentials apart." },
                createdAt: time,
              }),
            },
          }),
        },
      },
    },
    async (request) => ({ items: await commands.listCredentials(request.params.id) }),
  );

  app.delete<{ Params: { id: string; credentialId: string } }>(
    '/v1/subscriptions/:id/command-credentials/:credentialId',
    {
      schema: {
        tags,
        summary: 'Revoke a command credential: its token is refused (401) from now on',
        params: object({
          id: subscriptionParams.properties.id,
          credentialId: { type: 'string', minLength: 1, maxLength: 200 },
        }),
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      await commands.deleteCredential(request.params.id, request.params.credentialId);
      return reply.code(204).send();
    },
  );
}
