/**
 * Admin routes the dashboard needs that the admin API does not offer: overview aggregates, event
 * search by vendor id, the inbound message of an event, replay progress, and the connectors' settings
 * schemas the instance form is built from. They live under
 * `/v1/dashboard/...`, behind the same admin auth (bearer token or dashboard session).
 */

import { SwitchyardError } from '@switchyard/core';
import type { FastifyInstance } from 'fastify';
import { dateInput } from '../admin/errors.ts';
import { clampLimit } from '../admin/page.ts';
import { cursorParam, idParams, limitParam } from '../admin/schemas.ts';
import { event } from '../events/routes.ts';
import { sequenceAttribute } from '../events/store.ts';
import { adminAuth } from '../http/plugins/admin-auth.ts';
import type { Hub } from '../pipeline/hub.ts';
import { queueDepths } from '../storage/queues.ts';
import { latestDatabaseOutage } from '../storage/unavailable.ts';
import * as q from './queries.ts';

type Schema = Record<string, unknown>;
const tags = ['dashboard'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const counts: Schema = { type: 'object', additionalProperties: { type: 'integer' } };
const nstr = { type: ['string', 'null'] };
const nint = { type: ['integer', 'null'] };
const ntime = { type: ['string', 'null'], format: 'date-time' };
const time = { type: 'string', format: 'date-time' };

function object(properties: Record<string, unknown>): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

const overview = object({
  generatedAt: time,
  process: object({
    databaseOutage: {
      anyOf: [
        object({
          firstAt: time,
          lastAt: time,
          occurrences: { type: 'integer' },
          condition: nstr,
        }),
        { type: 'null' },
      ],
    },
    pullSpoolRefused: { type: 'boolean' },
    pulledNotificationsLost: { type: 'integer' },
    stalledDeliveryRequests: {
      type: 'array',
      items: object({ subscriptionId: { type: 'string' }, requests: { type: 'integer' } }),
    },
  }),
  eventsPerMinute: { type: 'array', items: object({ minute: time, count: { type: 'integer' } }) },
  deliveries: object({ byStatus: counts, completedLastHour: counts }),
  backlog: object({ normalize: { type: 'integer' }, deliver: { type: 'integer' } }),
  dead: {
    type: 'array',
    items: object({
      id: { type: 'string' },
      subscriptionId: { type: 'string' },
      eventId: { type: 'string' },
      subject: { type: 'string' },
      attempts: { type: 'integer' },
      lastStatusCode: nint,
      lastError: nstr,
      completedAt: ntime,
    }),
  },
  disabledSubscriptions: {
    type: 'array',
    items: object({ id: { type: 'string' }, url: nstr, disabledAt: time, disabledReason: nstr }),
  },
  instances: {
    type: 'array',
    items: object({
      id: { type: 'string' },
      connector: { type: 'string' },
      mode: { type: 'string' },
      lastMessageAt: ntime,
      lastError: nstr,
      lastErrorAt: ntime,
      pullLagMs: nint,
      pullConsecutiveFailures: { type: 'integer' },
      pullLastSuccessAt: ntime,
      failedInbound: { type: 'integer' },
    }),
  },
  gates: {
    type: 'array',
    items: object({
      id: { type: 'string' },
      instanceId: { type: 'string' },
      vendorType: { type: 'string' },
      status: { type: 'string' },
      decision: nstr,
      reason: nstr,
      decidedBy: nstr,
      receivedAt: time,
      decisionMs: { type: ['number', 'null'] },
    }),
  },
});

interface SearchQuery {
  vendorId: string;
  instanceId?: string;
  type?: string;
  source?: string;
  since?: string;
  until?: string;
  cursor?: string;
  limit?: number;
}

/**
 * Registers the dashboard's extra admin routes in their own scope with the admin-auth hook.
 *
 * @example
 * ```ts
 * await app.register(async (scope) => dashboardApiRoutes(scope, { hub, adminToken }));
 * // GET /v1/dashboard/overview → { eventsPerMinute, deliveries, dead, instances, gates, ... }
 * ```
 */
export async function dashboardApiRoutes(
  app: FastifyInstance,
  { hub, adminToken }: { hub: Hub; adminToken: string | undefined },
): Promise<void> {
  const db = hub.host.db;
  app.addHook('onRequest', adminAuth(adminToken, db));

  app.get<{ Querystring: { minutes?: number } }>(
    '/v1/dashboard/overview',
    {
      schema: {
        tags,
        summary: 'What the hub is doing: event rate, delivery outcomes, dead letters, instances, gates',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { minutes: { type: 'integer', minimum: 1, maximum: 1440, default: 60 } },
        },
        response: { 200: overview },
      },
    },
    async (request) => {
      const minutes = request.query.minutes ?? 60;
      const [perMinute, byStatus, completed, backlog, dead, disabled, instances, gates] = await Promise.all([
        q.eventsPerMinute(db, minutes),
        q.deliveriesByStatus(db),
        q.deliveriesCompletedSince(db, new Date(Date.now() - 3_600_000)),
        queueDepths(db),
        q.recentDead(db, 10),
        q.disabledSubscriptions(db),
        q.instancesOverview(db),
        q.recentGateDecisions(db, 10),
      ]);
      return {
        generatedAt: new Date(),
        // This process's own: what the metrics' switchyard_pull_spool_refused says, and the
        // outage the logs warned of, which the database's rows cannot show once it is back.
        process: {
          databaseOutage: latestDatabaseOutage() ?? null,
          pullSpoolRefused: hub.pullSpoolRefused(),
          pulledNotificationsLost: hub.pulledNotificationsLost(),
          // switchyard_delivery_requests_stalled: a slow subscriber, seen while it is slow.
          stalledDeliveryRequests: [...hub.stalledDeliveryRequests()].map(([subscriptionId, requests]) => ({
            subscriptionId,
            requests,
          })),
        },
        eventsPerMinute: perMinute,
        deliveries: { byStatus, completedLastHour: completed },
        backlog,
        dead,
        disabledSubscriptions: disabled,
        instances,
        gates,
      };
    },
  );

  app.get<{ Querystring: SearchQuery }>(
    '/v1/dashboard/events',
    {
      schema: {
        tags,
        summary: 'Events about the entity that has (or had) a vendor id, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['vendorId'],
          properties: {
            vendorId: { type: 'string', minLength: 1, maxLength: 300 },
            instanceId: { type: 'string', maxLength: 100, description: 'Only ids known at this instance.' },
            type: { type: 'string', maxLength: 200 },
            source: { type: 'string', maxLength: 100 },
            since: { type: 'string', format: 'date-time' },
            until: { type: 'string', format: 'date-time' },
            cursor: cursorParam,
            limit: limitParam,
          },
        },
        response: {
          200: object({
            items: { type: 'array', items: event },
            nextCursor: nstr,
            subjects: { type: 'array', items: { type: 'string' } },
          }),
        },
      },
    },
    async (request) => {
      const f = request.query;
      // The shared rule of every admin list: 1..1000 taken, at most 500 answered.
      const limit = clampLimit(f.limit);
      const subjects = await q.subjectsOfVendorId(db, f.vendorId, f.instanceId);
      const rows = await q.eventsOfSubjects(db, {
        subjects,
        limit,
        ...(f.type ? { type: f.type } : {}),
        ...(f.source ? { source: f.source } : {}),
        ...(f.since ? { since: dateInput('since', f.since) } : {}),
        ...(f.until ? { until: dateInput('until', f.until) } : {}),
        ...(f.cursor ? { beforeSequence: f.cursor } : {}),
      });
      return {
        items: rows.map((r) => ({ ...r.envelope, sequence: sequenceAttribute(r.sequence) })),
        nextCursor: rows.length === limit ? rows[rows.length - 1]!.sequence : null,
        subjects,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/dashboard/events/:id/inbound',
    {
      schema: {
        tags,
        summary: 'The id of the inbound vendor message an event was normalized from',
        params: idParams,
        response: { 200: object({ eventId: { type: 'string' }, inboundMessageId: nstr }) },
      },
    },
    async (request) => {
      const id = request.params.id;
      const inbound = UUID.test(id) ? await q.inboundMessageOfEvent(db, id) : undefined;
      if (inbound === undefined) {
        throw new SwitchyardError('SY_PIPELINE_NOT_FOUND', `no event ${JSON.stringify(id)}`, {
          details: { event: id },
        });
      }
      return { eventId: id, inboundMessageId: inbound };
    },
  );

  app.get(
    '/v1/dashboard/deliveries/position',
    {
      schema: {
        tags,
        summary: 'The newest delivery position (take it before a replay to follow its progress)',
        response: { 200: object({ position: { type: 'string', pattern: '^[0-9]+$' } }) },
      },
    },
    async () => ({ position: await q.lastDeliverySeq(db) }),
  );

  // The instance form is built from what the hub checks settings against (each connector's own
  // `configSchema`, instances/settings.ts): a field the schema has is a field the form has, and
  // what it refuses comes back as the API's problem+json, by pointer. No value is in a schema.
  app.get(
    '/v1/dashboard/connectors',
    {
      schema: {
        tags,
        summary:
          "The hub's connectors: what each can do (push, pull, gate) and the JSON Schema of its instances' settings",
        response: {
          200: object({
            items: {
              type: 'array',
              items: object({
                name: { type: 'string' },
                displayName: { type: 'string' },
                push: { type: 'boolean' },
                pull: { type: 'boolean' },
                gate: { type: 'boolean' },
                configSchema: { type: 'object', additionalProperties: true },
              }),
            },
          }),
        },
      },
    },
    async () => ({
      items: [...hub.host.connectors.values()].map((c) => ({
        name: c.name,
        displayName: c.displayName,
        push: c.push !== undefined,
        pull: c.pull !== undefined,
        gate: c.gate !== undefined,
        configSchema: c.configSchema,
      })),
    }),
  );

  app.get<{ Params: { id: string }; Querystring: { after: string } }>(
    '/v1/dashboard/subscriptions/:id/replay-progress',
    {
      schema: {
        tags,
        summary: 'Replay deliveries of a subscription created after a position, by status',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['after'],
          properties: { after: cursorParam },
        },
        response: {
          200: object({ byStatus: counts, total: { type: 'integer' }, done: { type: 'integer' } }),
        },
      },
    },
    async (request) => {
      await hub.subscriptions.get(request.params.id);
      const byStatus = await q.replayProgress(db, request.params.id, request.query.after);
      const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
      const done = (byStatus.succeeded ?? 0) + (byStatus.dead ?? 0) + (byStatus.skipped ?? 0);
      return { byStatus, total, done };
    },
  );
}
