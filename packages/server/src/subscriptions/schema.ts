/**
 * The ONE JSON Schema of a subscription's input: the fastify routes validate request bodies with it,
 * the hub checks every `hub.subscriptions.create` / `update` against it (./input.ts, ajv), and the
 * config file's subscription entry is converted to it and checked by the same function
 * (config/load.ts), while config/schema.ts takes the plain fields from here for editors and the
 * generated reference. Its TypeScript types (./generated/input.ts) are generated from it by
 * `pnpm generate`. Ranges, enums and what is required live here only; the defaults live in
 * `CONFIG_DEFAULTS.subscription` (config/schema.ts) and reach the hub through its options.
 *
 * Where the routes and the file disagreed before, the rule kept is written beside the field
 * (docs/api.md, "Subscription input", says why for the timeout).
 */

import { EVENT_TYPES, type JsonSchema } from '@switchyard/core';
import { SIGNING_SECRET_PATTERN } from '../delivery/sign.ts';

type Schema = JsonSchema;

/** The type of the test event an operator sends a subscription: the catalog's `hub.test` (docs/events.md). */
export const TEST_EVENT_TYPE = 'hub.test';

/** The subscription id the API accepts (config files keep to their stricter instance id rule). */
export const SUBSCRIPTION_ID_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$';

/**
 * An event type pattern: exact (`appointment.created`), a family (`appointment.*`) or `*`. The one
 * form of the rule's syntax; `typeMatches` (./type-patterns.ts) and `typeMatchesAny`
 * (events/store.ts, its SQL form) match with it.
 */
export const EVENT_TYPE_PATTERN = '^(\\*|[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*(\\.\\*)?)$';

/** 100 ms – 120 s: see docs/api.md ("Subscription input") for why these bounds. */
export const TIMEOUT_MS = { minimum: 100, maximum: 120_000 } as const;

/** The body formats a subscriber can get: CloudEvents (default) or FHIR R4 (issue 16, docs/delivery.md). */
export const SUBSCRIPTION_FORMATS = ['cloudevents', 'fhir-r4', 'fhir-r4-notification'] as const;

/** At most 100 attempts, each wait at most 7 days (`validateSchedule` in delivery/retry-schedule.ts). */
const MAX_ATTEMPTS = 100;
const MAX_DELAY_MS = 7 * 24 * 3_600_000;

/**
 * What a subscription's type filter may name: `*`, each family of the catalog (`appointment.*`) and
 * each of its types (docs/events.md). Of EVENT_TYPE_PATTERN's syntax only these can ever match: a
 * misspelt type (`appointment.craeted`) made a subscription that silently never received anything
 * (an operator audit); it is refused where it is written, with the nearest value in a config file.
 */
export const EVENT_TYPE_FILTERS: readonly string[] = [
  '*',
  ...new Set(EVENT_TYPES.map((info) => `${info.type.slice(0, info.type.indexOf('.'))}.*`)),
  ...EVENT_TYPES.map((info) => info.type),
];

const typePatterns = (description: string): Schema => ({
  type: 'array',
  minItems: 1,
  maxItems: 100,
  items: {
    type: 'string',
    enum: [...EVENT_TYPE_FILTERS],
    'x-message':
      'must be an event type of the catalog ("appointment.created", docs/events.md), a family ("appointment.*") or "*"',
  },
  description,
});

const instanceIds = (description: string): Schema => ({
  type: 'array',
  maxItems: 100,
  items: { type: 'string', minLength: 1, maxLength: 100 },
  description,
});

/**
 * Every field a subscription input may carry (besides `id`), in the hub's units (milliseconds).
 * config/schema.ts reuses the fields the file writes the same way.
 */
export const SUBSCRIPTION_FIELDS = {
  kind: {
    type: 'string',
    enum: ['webhook', 'pull'],
    description:
      'webhook: the hub POSTs each event to `url`; pull: the subscriber reads `/v1/subscriptions/{id}/events`.',
  },
  url: {
    type: 'string',
    format: 'uri',
    maxLength: 2000,
    // No user:password@: every attempt refused such a URL (delivery/ssrf.ts), while the API, the
    // dashboard and the stored row showed the password (an operator audit). Deliveries are
    // authenticated by their signatures.
    pattern: '^https?://[^/?#@]+([/?#]|$)',
    'x-message': 'must be an http:// or https:// URL without user:password@ (deliveries are signed instead)',
    description: 'The endpoint (webhook only).',
  },
  eventTypes: typePatterns(
    'Event types to deliver: exact (`appointment.created`), a family (`appointment.*`) or `*`.',
  ),
  sources: {
    ...instanceIds('Instance ids whose events to deliver; null or absent: every instance.'),
    type: ['array', 'null'],
  },
  secrets: {
    type: 'array',
    minItems: 1,
    maxItems: 5,
    items: {
      type: 'string',
      // The whole rule the secret is sealed under (delivery/sign.ts), not only its prefix: a
      // `whsec_` secret too short passed the schema (the route's 400) and was refused when sealed,
      // 422, unlike every other bad field.
      pattern: SIGNING_SECRET_PATTERN,
      'x-secret': true,
      'x-message': 'must be a Standard Webhooks signing secret (whsec_ + base64 of 24 to 64 bytes)',
      description: 'A Standard Webhooks signing secret, `whsec_` + standard base64 of 24 to 64 bytes.',
    },
    description:
      'Signing secrets (`whsec_…`), newest first (two during a rotation: the hub signs with each). Absent: the hub generates one (the admin API returns it once).',
  },
  contentType: {
    type: 'string',
    enum: ['application/cloudevents+json', 'application/json'],
    description: 'The body format: a structured-mode CloudEvent, or plain JSON of the same object.',
  },
  format: {
    type: 'string',
    enum: [...SUBSCRIPTION_FORMATS],
    description:
      "What each delivery carries: `cloudevents` (the event), `fhir-r4` (the FHIR R4 resource of the event's entity, `application/fhir+json`) or `fhir-r4-notification` (a FHIR Subscriptions Backport notification Bundle). Webhooks only; see docs/fhir.md.",
  },
  timeoutMs: {
    type: 'integer',
    ...TIMEOUT_MS,
    description: 'Request timeout for one delivery attempt, ms (100 to 120000).',
  },
  retryScheduleMs: {
    type: ['array', 'null'],
    minItems: 1,
    maxItems: MAX_ATTEMPTS,
    items: { type: 'integer', minimum: 0, maximum: MAX_DELAY_MS },
    description:
      "Ms to wait before each attempt (its length = attempts; ±20% jitter is added); the first attempt goes as soon as the event is stored whatever its entry says (write 0). Null: the hub's schedule.",
  },
  rateLimit: {
    type: ['object', 'null'],
    additionalProperties: false,
    required: ['perSecond'],
    properties: {
      perSecond: { type: 'number', exclusiveMinimum: 0, description: 'Deliveries per second at most.' },
    },
    description: 'Spreads deliveries to this subscriber over time.',
  },
  ordering: {
    type: 'string',
    enum: ['hold', 'release'],
    description:
      'hold: a dead delivery holds back later events of the same subject until replayed or skipped; release: later events go on.',
  },
  approver: {
    type: 'boolean',
    description:
      'Makes this webhook an approver of synchronous approval requests (a `cloudevents` one: the requests are CloudEvents).',
  },
  approverFilters: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      events: typePatterns('Approval request types to decide.'),
      eventTypes: typePatterns('The same as `events`.'),
      sources: instanceIds('Instance ids whose requests to decide; default: every instance.'),
    },
    description: 'Which approval requests an approver decides; null: every one.',
  },
  allowPrivateAddresses: {
    type: 'boolean',
    description:
      'Allow a url resolving to private, loopback or link-local addresses (refused by default against SSRF).',
  },
  disableAfterConsecutiveDead: {
    type: ['integer', 'null'],
    minimum: 1,
    maximum: 1000,
    description: "Disable the endpoint after this many dead deliveries in a row; null: the hub's default.",
  },
} satisfies Record<string, Schema>;

/**
 * A pull subscription has no url, decides no approvals (approvals are synchronous calls) and gets
 * CloudEvents (its feed serves them; a FHIR client reads current state from /fhir/r4, docs/fhir.md).
 */
const pullRules: Schema = {
  if: { properties: { kind: { const: 'pull' } }, required: ['kind'] },
  // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword, not a thenable.
  then: {
    properties: {
      url: {
        not: {},
        'x-message': 'a pull subscription has no url: its subscriber reads /v1/subscriptions/{id}/events',
      },
      approver: {
        const: false,
        'x-message': 'only a webhook subscription can be an approver (approvals are synchronous calls)',
      },
      format: {
        const: 'cloudevents',
        'x-message':
          'a pull feed serves CloudEvents; FHIR formats are for webhooks (FHIR clients read /fhir/r4)',
      },
    },
  },
  else: { required: ['url'], 'x-message': 'a webhook subscription needs a url' },
};

/**
 * `POST /v1/subscriptions`, `hub.subscriptions.create`, a config file's subscription.
 *
 * @example
 * ```ts
 * app.post('/v1/subscriptions', { schema: { body: subscriptionCreateSchema } }, handler);
 * ```
 */
export const subscriptionCreateSchema: Schema = {
  title: 'SubscriptionCreate',
  type: 'object',
  additionalProperties: false,
  properties: {
    id: {
      type: 'string',
      pattern: SUBSCRIPTION_ID_PATTERN,
      description: 'Default: a random UUID. 1 to 100 letters, digits, `_`, `.`, `-`.',
    },
    ...SUBSCRIPTION_FIELDS,
  },
  ...pullRules,
};

/**
 * `PATCH /v1/subscriptions/{id}` and `hub.subscriptions.update`: fields left out stay. Whether a
 * webhook has its url is checked on the merged subscription (./input.ts).
 *
 * @example
 * ```ts
 * app.patch('/v1/subscriptions/:id', { schema: { body: subscriptionUpdateSchema } }, handler);
 * ```
 */
export const subscriptionUpdateSchema: Schema = {
  title: 'SubscriptionUpdate',
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: SUBSCRIPTION_FIELDS,
};

// The library API hands out Date objects at the top level (./generate.ts types them so); JSON has strings.
const dateTime = { type: 'string', format: 'date-time' } as const;

/** A signing secret as the API shows it (never the secret itself). */
const secretInfoSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['secretHint', 'createdAt', 'expiresAt', 'fromFile'],
  properties: {
    secretHint: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: ['string', 'null'], format: 'date-time' },
    fromFile: { type: 'boolean', description: 'Declared in the configuration file: rotate it there' },
  },
};

/**
 * A subscription as the API answers it. Routes serialize through it, so a column not listed here
 * (a sealed secret, `disabled_at_sequence`) never reaches a client; `Subscription` is generated from it.
 *
 * @example
 * ```ts
 * app.get('/v1/subscriptions/:id', { schema: { response: { 200: subscriptionSchema } } }, handler);
 * ```
 */
export const subscriptionSchema: Schema = {
  title: 'Subscription',
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    kind: SUBSCRIPTION_FIELDS.kind,
    url: { type: ['string', 'null'] },
    eventTypes: { type: 'array', items: { type: 'string' } },
    sources: { type: ['array', 'null'], items: { type: 'string' } },
    secrets: {
      type: 'array',
      items: secretInfoSchema,
      description: 'Hints of the signing secrets; never the secrets.',
    },
    contentType: SUBSCRIPTION_FIELDS.contentType,
    format: SUBSCRIPTION_FIELDS.format,
    timeoutMs: { type: 'integer' },
    retryScheduleMs: { type: ['array', 'null'], items: { type: 'integer' } },
    rateLimit: { type: ['object', 'null'], additionalProperties: true },
    ordering: SUBSCRIPTION_FIELDS.ordering,
    approver: SUBSCRIPTION_FIELDS.approver,
    approverFilters: { type: ['object', 'null'], additionalProperties: true },
    allowPrivateAddresses: SUBSCRIPTION_FIELDS.allowPrivateAddresses,
    disableAfterConsecutiveDead: { type: ['integer', 'null'] },
    consecutiveDead: { type: 'integer' },
    disabledAt: { ...dateTime, type: ['string', 'null'] },
    disabledReason: { type: ['string', 'null'] },
    managedBy: { type: 'string', enum: ['file', 'api'] },
    createdAt: dateTime,
    updatedAt: dateTime,
  },
  required: [
    'id',
    'kind',
    'url',
    'eventTypes',
    'sources',
    'secrets',
    'contentType',
    'format',
    'timeoutMs',
    'retryScheduleMs',
    'rateLimit',
    'ordering',
    'approver',
    'approverFilters',
    'allowPrivateAddresses',
    'disableAfterConsecutiveDead',
    'consecutiveDead',
    'disabledAt',
    'disabledReason',
    'managedBy',
    'createdAt',
    'updatedAt',
  ],
};
