/**
 * JSON Schemas of the admin API's bodies. Routes declare them so requests are validated and answers
 * serialized through them: a property not listed here (a sealed secret, an internal column) can
 * never reach a client. The OpenAPI document is generated from the same objects.
 */

type Schema = Record<string, unknown>;

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const int = { type: 'integer' } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
/** Any JSON value. */
const anyJson = {} as const;

function object(properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema {
  return { type: 'object', additionalProperties: false, properties, required };
}

/** `{ items: [...], nextCursor }` for cursor-paginated lists. */
export function pageOf(item: Schema): Schema {
  return object({
    items: { type: 'array', items: item },
    nextCursor: {
      ...nullableStr,
      description: 'Pass as `cursor` for the next page; null when there is no more.',
    },
  });
}

/** `{ items: [...] }` for short lists without pagination. */
export function listOf(item: Schema): Schema {
  return object({ items: { type: 'array', items: item } });
}

export const idParams = object({ id: { type: 'string', minLength: 1, maxLength: 200 } });

export const problem: Schema = {
  type: 'object',
  description: 'RFC 9457 problem details.',
  required: ['type', 'title', 'status', 'detail', 'instance', 'code'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: str,
    status: int,
    detail: str,
    instance: str,
    code: { type: 'string', description: 'A code from docs/errors.md.' },
    errors: {
      type: 'array',
      items: object({ in: str, pointer: str, message: str }),
    },
    details: { type: 'object', additionalProperties: true },
  },
};

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

/** A CloudEvent with its feed position; extension attributes pass through. */
export const event: Schema = {
  type: 'object',
  additionalProperties: true,
  required: ['specversion', 'id', 'type', 'source', 'subject', 'time', 'data', 'sequence'],
  properties: {
    specversion: str,
    id: str,
    type: str,
    source: str,
    subject: str,
    time: str,
    datacontenttype: str,
    data: { type: 'object', additionalProperties: true },
    sequence: { type: 'string', description: 'Position in the event log (a feed cursor).' },
  },
};

export const attempt = object({
  attempt: int,
  startedAt: dateTime,
  latencyMs: { type: ['number', 'null'] },
  statusCode: nullableInt,
  responseSnippet: nullableStr,
  error: nullableStr,
  outcome: str,
});

const deliveryStatus = {
  type: 'string',
  enum: ['pending', 'in_flight', 'succeeded', 'dead', 'skipped', 'held'],
} as const;

const deliveryFields: Record<string, Schema> = {
  id: str,
  subscriptionId: str,
  eventId: str,
  eventSequence: str,
  subject: str,
  status: deliveryStatus,
  reason: { type: 'string', enum: ['fanout', 'replay'] },
  replayOf: nullableStr,
  supersededBy: nullableStr,
  attempts: int,
  nextAttemptAt: dateTime,
  lastStatusCode: nullableInt,
  lastError: nullableStr,
  createdAt: dateTime,
  completedAt: nullableDateTime,
};

export const delivery = object(deliveryFields);
export const deliveryWithAttempts = object({
  ...deliveryFields,
  attemptLog: { type: 'array', items: attempt },
});
export { deliveryStatus };

const inboundStatus = { type: 'string', enum: ['received', 'normalized', 'ignored', 'failed'] } as const;

export { inboundStatus };

const inboundFields: Record<string, Schema> = {
  id: str,
  instanceId: str,
  route: str,
  dedupeKey: str,
  vendorType: str,
  orderingKey: nullableStr,
  occurredAt: nullableStr,
  gate: { type: 'boolean' },
  origin: { type: 'string', enum: ['push', 'pull'] },
  status: inboundStatus,
  reason: nullableStr,
  error: anyJson,
  attempts: int,
  eventCount: int,
  receivedAt: dateTime,
  processedAt: nullableDateTime,
};

export const inboundMessage = object(inboundFields);
export const inboundMessageDetail = object({
  ...inboundFields,
  payload: anyJson,
  rawBody: { ...nullableStr, description: 'The body as received (UTF-8), for pushes.' },
  headers: {
    type: ['object', 'null'],
    additionalProperties: { type: 'string' },
    description: 'Credentials redacted.',
  },
  events: { type: 'array', items: event },
});

export const attemptResult = object(
  {
    ok: { type: 'boolean' },
    statusCode: int,
    latencyMs: { type: 'number' },
    responseSnippet: str,
    error: str,
  },
  ['ok', 'latencyMs'],
);

export const cursorParam = { type: 'string', pattern: '^[0-9]+$', maxLength: 20 } as const;
export const limitParam = { type: 'integer', minimum: 1, maximum: 1000 } as const;
