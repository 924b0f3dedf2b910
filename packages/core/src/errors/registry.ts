/**
 * Every error Switchyard raises has a stable code listed here, with the HTTP status it maps to when
 * it reaches an API answer. This is the one registry: areas own a section each, `docs/errors.md`
 * documents every code (a test fails when one is missing), and the server turns any
 * {@link SwitchyardError} into an RFC 9457 problem+json answer using this table.
 *
 * @example
 * ```ts
 * import { errorCodes } from '@switchyard/core';
 * errorCodes.SY_CONNECTOR_AUTH.status; // 401
 * ```
 */
export interface ErrorCodeSpec {
  /** The package area that raises it. */
  area:
    | 'connector'
    | 'event'
    | 'pipeline'
    | 'config'
    | 'http'
    | 'gate'
    | 'storage'
    | 'delivery'
    | 'command'
    | 'fhir';
  /** HTTP status used when the error becomes an API answer. */
  status: number;
  /** Short, human title (the problem+json `title`). */
  title: string;
}

export const errorCodes = {
  // connector: raised by connectors; the class decides whether the pipeline retries.
  SY_CONNECTOR_AUTH: { area: 'connector', status: 401, title: 'Inbound authentication failed' },
  SY_CONNECTOR_BAD_REQUEST: {
    area: 'connector',
    status: 400,
    title: 'The vendor request could not be understood',
  },
  SY_CONNECTOR_TRANSIENT: {
    area: 'connector',
    status: 503,
    title: 'A temporary failure; the work will be retried',
  },
  SY_CONNECTOR_PERMANENT: { area: 'connector', status: 422, title: 'The notification cannot be processed' },
  SY_CONNECTOR_DEFINITION: { area: 'connector', status: 500, title: 'The connector definition is invalid' },

  // event: the normalized model.
  SY_EVENT_INVALID: { area: 'event', status: 422, title: 'The normalized event does not match its schema' },
  SY_EVENT_UNKNOWN_TYPE: { area: 'event', status: 422, title: 'Unknown normalized event type' },
  SY_EVENT_SCHEMA_UNKNOWN: { area: 'event', status: 500, title: 'No core schema has this $id' },

  // storage (packages/testing/src/postgres): the embedded Postgres and the test database harness.
  SY_STORAGE_EMBEDDED_POSTGRES: {
    area: 'storage',
    status: 500,
    title: 'The embedded Postgres could not start',
  },
  SY_STORAGE_TEST_DATABASE: { area: 'storage', status: 500, title: 'No Postgres is available for tests' },
  SY_STORAGE_UNAVAILABLE: { area: 'storage', status: 503, title: 'The database is unavailable' },
  SY_STORAGE_SCHEMA_BEHIND: {
    area: 'storage',
    status: 500,
    title: 'The database schema lacks migrations of this version',
  },
  SY_STORAGE_MIGRATION_BLOCKED: {
    area: 'storage',
    status: 500,
    title: 'A migration could not take its table locks',
  },

  // pipeline (packages/server/src/pipeline): ingest, normalize, fan-out, delivery, replay, feed.
  SY_PIPELINE_NOT_FOUND: { area: 'pipeline', status: 404, title: 'No such resource' },
  SY_PIPELINE_INVALID_INPUT: { area: 'pipeline', status: 422, title: 'The request is not valid' },
  SY_PIPELINE_CONFLICT: {
    area: 'pipeline',
    status: 409,
    title: 'The resource is not in a state that allows this',
  },
  SY_PIPELINE_UNKNOWN_CONNECTOR: {
    area: 'pipeline',
    status: 500,
    title: 'The instance names a connector the hub lacks',
  },
  SY_PIPELINE_PAYLOAD_TOO_LARGE: { area: 'pipeline', status: 413, title: 'The inbound body is too large' },
  SY_PIPELINE_NOT_STORED: { area: 'pipeline', status: 500, title: 'The push could not be stored' },
  SY_PIPELINE_ROUTE_NOT_FOUND: {
    area: 'pipeline',
    status: 404,
    title: 'The connector has no such push route',
  },

  // config (packages/server/src/config, src/cli): the config file and the command line.
  SY_CONFIG_INVALID: { area: 'config', status: 422, title: 'The configuration file has problems' },
  SY_CONFIG_USAGE: { area: 'config', status: 400, title: 'The command line is not valid' },

  // http (packages/server/src/http): the admin API, inbound hooks, feed, health and metrics.
  SY_HTTP_NOT_FOUND: { area: 'http', status: 404, title: 'No such route' },
  SY_HTTP_METHOD_NOT_ALLOWED: { area: 'http', status: 405, title: 'The route does not take this method' },
  SY_HTTP_UNAUTHORIZED: { area: 'http', status: 401, title: 'Missing or wrong credentials' },
  SY_HTTP_BODY_TOO_LARGE: { area: 'http', status: 413, title: 'The request body is too large' },
  SY_HTTP_MALFORMED_BODY: { area: 'http', status: 400, title: 'The request body could not be parsed' },
  SY_HTTP_VALIDATION: { area: 'http', status: 400, title: 'The request does not match its schema' },
  SY_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    area: 'http',
    status: 415,
    title: 'The request content type is not supported',
  },
  SY_HTTP_FILE_MANAGED: {
    area: 'http',
    status: 409,
    title: 'The resource is managed by the configuration file',
  },
  SY_HTTP_SECRETS_REQUIRED: {
    area: 'http',
    status: 400,
    title: 'Changing where secrets are sent needs the secrets sent again',
  },
  SY_HTTP_NOT_READY: { area: 'http', status: 503, title: 'The hub is not ready' },
  SY_HTTP_SHUTTING_DOWN: { area: 'http', status: 503, title: 'The hub is shutting down' },
  SY_HTTP_INTERNAL: { area: 'http', status: 500, title: 'Internal error' },
  SY_HTTP_BAD_REQUEST: { area: 'http', status: 400, title: 'The HTTP request is malformed' },
  SY_HTTP_TOO_MANY_AUTH_FAILURES: {
    area: 'http',
    status: 429,
    title: 'Too many failed authentications from this address',
  },
  SY_HTTP_REQUEST_TIMEOUT: { area: 'http', status: 408, title: 'The request did not arrive in time' },
  SY_HTTP_UNAUTHENTICATED_BODIES_FULL: {
    area: 'http',
    status: 503,
    title: 'Too many request bodies awaiting authentication',
  },
  SY_HTTP_FEED_WAITERS_FULL: {
    area: 'http',
    status: 503,
    title: 'Too many feed long-polls are waiting in this process',
  },

  // delivery: signing, destination checks, retry schedules and sealed secrets (packages/server/src/delivery).
  SY_DELIVERY_SECRET_INVALID: {
    area: 'delivery',
    status: 422,
    title: 'The webhook signing secret is not valid',
  },
  SY_DELIVERY_SECRET_TAMPERED: {
    area: 'delivery',
    status: 500,
    title: 'A stored secret could not be decrypted (tampered or wrong key)',
  },
  SY_DELIVERY_KEY_INVALID: { area: 'delivery', status: 500, title: 'The secret encryption key is not valid' },
  SY_DELIVERY_SCHEDULE_INVALID: { area: 'delivery', status: 422, title: 'The retry schedule is not valid' },
  SY_DELIVERY_DURATION_INVALID: { area: 'delivery', status: 422, title: 'The duration is not valid' },
  SY_DELIVERY_DESTINATION_REFUSED: {
    area: 'delivery',
    status: 422,
    title: 'The subscriber URL points to a refused destination',
  },

  // fhir (packages/server/src/fhir): the read-only FHIR R4 endpoint, answered as OperationOutcome.
  SY_FHIR_NOT_SUPPORTED: {
    area: 'fhir',
    status: 400,
    title: 'The FHIR endpoint does not support this search parameter, modifier or prefix',
  },
  SY_FHIR_INVALID_SEARCH: {
    area: 'fhir',
    status: 400,
    title: 'A FHIR search parameter has a value it cannot read',
  },
  SY_FHIR_NOT_FOUND: { area: 'fhir', status: 404, title: 'No such FHIR resource' },
  SY_FHIR_FORBIDDEN: {
    area: 'fhir',
    status: 403,
    title: "The read token's subscription does not cover this FHIR resource type",
  },
  SY_FHIR_NOT_ACCEPTABLE: {
    area: 'fhir',
    status: 406,
    title: 'The FHIR endpoint answers only JSON, and the request asked for another format',
  },

  // command (packages/server/src/commands): commands refused before anything is queued or sent.
  SY_COMMAND_UNKNOWN_TYPE: { area: 'command', status: 422, title: 'Unknown command type' },
  SY_COMMAND_INVALID: { area: 'command', status: 422, title: 'The command does not match its schema' },
  SY_COMMAND_UNKNOWN_TARGET: {
    area: 'command',
    status: 422,
    title: 'The command names no entity or instance the sender may act on',
  },
  SY_COMMAND_UNSUPPORTED: {
    area: 'command',
    status: 422,
    title: "The target's connector does not support this command",
  },
  SY_COMMAND_NO_VENDOR_ID: {
    area: 'command',
    status: 422,
    title: 'The entity has no vendor id on its connector instance',
  },
  SY_COMMAND_TARGET_STATE: {
    area: 'command',
    status: 409,
    title: 'The entity is in a state that rules the command out',
  },
  SY_COMMAND_IDEMPOTENCY_CONFLICT: {
    area: 'command',
    status: 409,
    title: 'The Idempotency-Key was used for a different command',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof errorCodes;
