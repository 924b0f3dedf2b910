/**
 * Admin API routes of the gate machinery: `GET /v1/gates`, `GET /v1/gates/:id`. Register inside
 * the authenticated `/v1` scope of the app (the admin bearer token applies).
 */
import type { FastifyInstance } from 'fastify';
import { cursorParam, limitParam } from '../admin/schemas.ts';
import type { Gates } from './gates.ts';

type Schema = Record<string, unknown>;

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const nint = { type: ['integer', 'null'] } as const;
const nnum = { type: ['number', 'null'] } as const;
const time = { type: 'string', format: 'date-time' } as const;
const ntime = { type: ['string', 'null'], format: 'date-time' } as const;
const outcome = { type: ['string', 'null'], enum: ['approve', 'refuse', null] } as const;
const reasons = ['approved', 'refused', 'deadline', 'no_approvers', 'unavailable', 'error', 'abandoned'];

function object(properties: Record<string, unknown>): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

const booking = object({
  status: { type: 'string', enum: ['booked', 'not_booked', 'waiting', 'not_expected'] },
  matchedAt: ntime,
  inboundMessageId: nstr,
  vendorType: nstr,
  eventId: nstr,
  subject: nstr,
});

const gateRequestProperties = {
  id: str,
  instanceId: str,
  connector: str,
  vendorType: str,
  type: nstr,
  eventId: nstr,
  inboundMessageId: nstr,
  receivedAt: time,
  deadlineAt: time,
  deadlineMs: { type: 'integer' },
  default: { type: 'string', enum: ['approve', 'refuse'] },
  status: { type: 'string', enum: ['pending', 'deciding', 'decided'] },
  decision: outcome,
  reason: { type: ['string', 'null'], enum: [...reasons, null] },
  decidedBy: nstr,
  refusalReason: nstr,
  vendorErrorCode: nint,
  responseStatus: nint,
  decidedAt: ntime,
  decisionMs: nnum,
  approvers: { type: 'integer' },
  error: nstr,
  booking,
};

/** The gate request as listed (OpenAPI schema). */
export const gateRequestSchema = object(gateRequestProperties);

const answer = object({
  subscriptionId: str,
  startedAt: time,
  latencyMs: nnum,
  answeredAt: ntime,
  statusCode: nint,
  outcome: { type: 'string', enum: ['approve', 'refuse', 'unavailable'] },
  reason: nstr,
  vendorErrorCode: nint,
  responseSnippet: nstr,
  error: nstr,
  afterDecision: { type: 'boolean' },
});

/** A gate request with the approval request sent and every approver's answer (OpenAPI schema). */
export const gateRequestDetailSchema = object({
  ...gateRequestProperties,
  request: { description: 'The CloudEvent sent to approvers (without its data.deadline).' },
  answers: { type: 'array', items: answer },
});

/**
 * Registers `GET /v1/gates` (filters: `instanceId`, `decision`, `reason`; paged with `cursor`)
 * and `GET /v1/gates/:id`.
 *
 * @example
 * ```ts
 * await v1.register(async (scope) => gateRoutes(scope, { gates }));
 * // GET /v1/gates?decision=refuse&limit=20 → { items: [...], nextCursor }
 * ```
 */
export async function gateRoutes(app: FastifyInstance, { gates }: { gates: Gates }): Promise<void> {
  const tags = ['gates'];
  app.get<{
    Querystring: { instanceId?: string; decision?: string; reason?: string; cursor?: string; limit?: number };
  }>(
    '/v1/gates',
    {
      schema: {
        tags,
        summary: 'List gate (approval) requests with their decisions, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            instanceId: { type: 'string', maxLength: 100 },
            decision: { type: 'string', enum: ['approve', 'refuse'] },
            reason: { type: 'string', enum: reasons },
            cursor: cursorParam,
            limit: limitParam,
          },
        },
        response: {
          200: object({
            items: { type: 'array', items: gateRequestSchema },
            nextCursor: {
              ...nstr,
              description: 'Pass as `cursor` for the next page; null when there is no more.',
            },
          }),
        },
      },
    },
    async (request) => gates.list(request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/gates/:id',
    {
      schema: {
        tags,
        summary:
          "Get a gate request: the approval request, every approver's answer, the decision and the booking",
        params: object({ id: { type: 'string', minLength: 1, maxLength: 200 } }),
        response: { 200: gateRequestDetailSchema },
      },
    },
    async (request) => gates.get(request.params.id),
  );
}
