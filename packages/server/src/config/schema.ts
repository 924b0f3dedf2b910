/**
 * The JSON Schema of `switchyard.yaml`, assembled from the hub's own part and every registered
 * connector's `configSchema`. Connector settings are attached with `if`/`then` on the connector name,
 * so an editor that knows the schema completes `settings:` for the connector an instance names.
 *
 * Keywords beyond JSON Schema (editors ignore them; the loader reads them):
 * - `x-secret: true`: the value is a secret. Secret references (`${env:NAME}`, `${file:PATH}`) are
 *   allowed only here, and the value is redacted everywhere.
 * - `x-duration: true`: a duration such as `30s`, `5m`, `2h`, `30d`.
 * - `x-duration-min` / `x-duration-max`: the shortest and longest duration the field accepts, in the
 *   file's spelling (`1s`); the loader checks them (config/load.ts, `DURATION_BOUND_KEYWORDS`).
 * - `x-message`: the message to show instead of ajv's when this schema fails.
 */
import { type Connector, IP_OR_CIDR_SCHEMA, type JsonSchema, type JsonValue } from '@switchyard/core';
import { INSTANCE_FIELDS as I } from '../instances/schema.ts';
import { SUBSCRIPTION_FIELDS as F } from '../subscriptions/schema.ts';

// The gates (a subsystem above config) read a gate's range where they read its defaults: here.
export { GATE_DEADLINE_MS } from '../instances/schema.ts';

/** The `$id` of the assembled schema (also what `# yaml-language-server: $schema=` can point at). */
export const CONFIG_SCHEMA_ID = 'https://switchyard.dev/schemas/switchyard.yaml.json';

/** Units a duration accepts: milliseconds, seconds, minutes, hours, days. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$';
/**
 * What `database.url` and the DATABASE_URL environment variable must look like (the loader checks
 * the variable against it too, since it stands in for `database.url`).
 */
export const DATABASE_URL_PATTERN = '^postgres(ql)?://';
const SIZE_PATTERN = '^[0-9]+(b|kb|mb|gb)$';
const ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
const ID_MESSAGE =
  'must be an id: 1 to 63 lowercase letters, digits, "-" or "_", starting with a letter or digit';

/** The default retry schedule (DESIGN: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
export const DEFAULT_RETRY_SCHEDULE: readonly string[] = ['0s', '5s', '5m', '30m', '2h', '5h', '10h', '10h'];

/**
 * The defaults of the hub's own settings, each in one place: the schema below publishes them as
 * `default` (and so the generated tables of docs/configuration.md), the loader applies them, and
 * the pipeline library (`resolveOptions` in pipeline/runtime.ts) derives its defaults from them.
 *
 * @example
 * ```ts
 * configDurationMs(CONFIG_DEFAULTS.retention.events); // 7776000000 (90 days)
 * ```
 */
export const CONFIG_DEFAULTS = {
  server: {
    host: '127.0.0.1',
    port: 8080,
    bodyLimit: '1mb',
    // Against slow and unauthenticated clients (also what buildApp uses when called without them).
    // lingering, lingeringIdle: after a refusal sent before the body was read (401, 404, 408, 413,
    // 415, 417, 503 with Connection: close; Node's 400 and 431), how long the hub keeps reading and dropping what the client
    // still sends, in all and without data, before it closes (http/security/request-limits.ts):
    // closing at once made the client's kernel reset the connection, which often lost the refusal.
    timeouts: { headers: '10s', body: '30s', request: '60s', lingering: '2s', lingeringIdle: '1s' },
    unauthenticatedBodyBytes: '16mb',
  },
  embeddedDataDir: './.switchyard/postgres',
  // How long `switchyard start` waits for a real Postgres that does not accept connections yet (a
  // compose `depends_on` without a healthcheck, a Postgres restarting after an upgrade): long enough
  // for a container's Postgres to start, short enough that a wrong host is reported within a minute.
  // Connections of each process's general pool (workers, admin API); the plan-stable ones, pg-boss's
  // and the listener come on top (docs/operations.md, "The database"). pg's own default.
  database: { startupWait: '60s', poolSize: 10 },
  gate: { deadline: '2s', default: 'approve' },
  subscription: {
    events: ['*'],
    contentType: 'application/cloudevents+json',
    format: 'cloudevents',
    ordering: 'hold',
    allowPrivateAddresses: false,
    retrySchedule: DEFAULT_RETRY_SCHEDULE,
    timeout: '15s',
    approverEvents: ['appointment.booking_requested', 'appointment.reschedule_requested'],
    disableAfterConsecutiveDead: 5,
  },
  // unreadEvents: how long an event an enabled pull subscription has not acknowledged is kept (its
  // reader is slow or stopped): past `events`, up to this; past it the feed reports the gap.
  retention: { inboundMessages: '30d', events: '90d', deliveries: '30d', unreadEvents: '180d' },
  logging: { level: 'info' },
  // Short, because a lease only outlives a process that died or lost its database: a live one
  // renews it every third of its length while the work runs.
  // pollBackstop: work arrives by LISTEN/NOTIFY (and the listener wakes every loop when it
  // reconnects); due retries and expiring leases are timed by the loops themselves. The backstop
  // only covers a notification lost on a connection that looks alive.
  workers: {
    normalizeLease: '30s',
    deliveryLeaseMargin: '15s',
    pollBackstop: '30s',
    ingestFirst: true,
    // Twice the connections a process opens to one subscriber (DELIVERY_SOCKETS_PER_ORIGIN): the
    // rest wait ready for a free connection while the others' records are written
    // (bench/analysis.md, session 32).
    deliveryConcurrency: 64,
    // Beside the embedded database's data: a local disk of the host that runs the pull worker.
    pullSpoolDir: './.switchyard/pull-spool',
  },
  commands: {
    // Shorter than the subscription schedule: a downstream system waits for the outcome.
    retrySchedule: ['1s', '5s', '30s', '2m', '10m', '30m'],
    maxRetryAfter: '1h',
    // Renewed every third of it while the command runs (one renewal at a time), so a run survives a
    // database that misses two renewals; it is also how long a command whose process was killed
    // (kill -9, OOM) stays running before another process takes it over (plus the sweep's wait).
    // 30 s, as workers.normalizeLease: 120 s kept a killed worker's command waiting 80-150 s for
    // 0.025 renewals/s per running command saved (0.1/s now); a run whose renewals fail for 20 s
    // is taken over mid-call, and a handler's mark of the call (ctx.commandState) makes the next
    // run check instead of sending it again (docs/operations.md, "Command leases").
    lease: '30s',
    sweepInterval: '30s',
    concurrency: 8,
    echoWindow: '10m',
    retention: '30d',
  },
  // The pull feed's long-poll (`GET /v1/subscriptions/{id}/events?wait=`, subscriptions/feed.ts):
  // the wait a request gets without `wait` (0: answer at once, as before long-polls), the longest
  // it may ask for, seconds (under server.timeouts.request, and what proxies commonly allow), and
  // how many may wait at once in one process (each holds a socket and a timer; beyond, 503), and
  // how many of those one subscription may hold (one reader's credential must not take them all).
  feed: { wait: 0, maxWait: 30, waiters: 1000, waitersPerSubscription: 100 },
  // The dashboard's sign-in (http/plugins/session.ts): how long a session lasts, and how many the
  // database keeps at once (the oldest go first, so signing in in a loop cannot grow the table).
  // No file setting: an operator signs in again after 12 hours, as before the sessions were stored.
  dashboard: { sessionLifetime: '12h', sessions: 1000 },
  // Tracing is off unless an endpoint is configured (here or by OTEL_EXPORTER_OTLP_*). sampleRatio
  // applies when neither the file nor OTEL_TRACES_SAMPLER sets one; exportTimeout when
  // OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT is not set (it also bounds the final flush at shutdown).
  telemetry: { traces: { sampleRatio: 1, queueSize: 2048, batchDelay: '1s', exportTimeout: '10s' } },
} as const;

/**
 * The shortest (and, where there is one, the longest) value of a duration setting, in the file's
 * spelling. Every duration of the hub's own settings has a floor: `0s` turns a timeout off, makes a
 * loop spin, or hands a lease over at once.
 */
interface DurationBounds {
  min: string;
  max?: string;
}

function duration(description: string, defaultValue?: string, bounds?: DurationBounds): JsonSchema {
  const range =
    bounds === undefined
      ? ''
      : bounds.max === undefined
        ? ` At least ${bounds.min}.`
        : ` ${bounds.min} to ${bounds.max}.`;
  const schema: JsonSchema = {
    type: 'string',
    pattern: DURATION_PATTERN,
    'x-duration': true,
    description: `${description}${range}`,
    examples: ['30s'],
  };
  if (bounds !== undefined) schema['x-duration-min'] = bounds.min;
  if (bounds?.max !== undefined) schema['x-duration-max'] = bounds.max;
  if (defaultValue !== undefined) schema.default = defaultValue;
  return schema;
}

// The common floors. A second: the server checks its request clocks once a second, and a lease, a
// poll or a retry of less is as good as none. An hour: the cleanup jobs run hourly, so a shorter
// retention deletes nothing sooner (only everything at once).
const AT_LEAST_A_SECOND: DurationBounds = { min: '1s' };
const AT_LEAST_AN_HOUR: DurationBounds = { min: '1h' };

function secret(description: string): JsonSchema {
  return { type: 'string', minLength: 1, 'x-secret': true, description };
}

function defOf(connectorName: string): string {
  return `connector-${connectorName}`;
}

/** A copy of a connector's settings schema that can live under `$defs` of the assembled schema. */
function embed(connector: Connector): JsonSchema {
  const { $schema: _ignored, ...rest } = connector.configSchema;
  // An own $id keeps the connector's internal `#/$defs/...` references pointing at its own schema.
  return {
    ...rest,
    $id:
      typeof rest.$id === 'string'
        ? rest.$id
        : `https://switchyard.dev/schemas/connectors/${connector.name}.json`,
    description:
      typeof rest.description === 'string'
        ? rest.description
        : `Settings of a ${connector.displayName} instance.`,
  };
}

/**
 * Builds the configuration file's JSON Schema for a set of connectors.
 *
 * @example
 * ```ts
 * const schema = buildConfigSchema(shippedConnectors);
 * writeFileSync('config-schema.json', JSON.stringify(schema, null, 2));
 * ```
 */
export function buildConfigSchema(connectors: readonly Connector[]): JsonSchema {
  const sorted = [...connectors].sort((a, b) => a.name.localeCompare(b.name));
  const defs: Record<string, JsonValue> = {};
  const settingsRules: JsonValue[] = [];
  for (const connector of sorted) {
    defs[defOf(connector.name)] = embed(connector);
    const required = connector.configSchema.required;
    const then: JsonSchema = { properties: { settings: { $ref: `#/$defs/${defOf(connector.name)}` } } };
    if (Array.isArray(required) && required.length > 0) {
      then.required = ['settings'];
      then['x-message'] = `a ${connector.name} instance needs settings (required: ${required.join(', ')})`;
    }
    settingsRules.push({
      if: { properties: { connector: { const: connector.name } }, required: ['connector'] },
      then,
    });
  }

  const instance: JsonSchema = {
    type: 'object',
    description: 'A connector instance: one vendor account or tenant connected to the hub.',
    required: ['id', 'connector'],
    additionalProperties: false,
    properties: {
      id: {
        type: 'string',
        pattern: ID_PATTERN,
        'x-message': ID_MESSAGE,
        description:
          "Stable id of the instance: the events' `source`, and the path of its hooks (`/hooks/{id}`). Lowercase letters, digits, `-`, `_`.",
      },
      connector: {
        type: 'string',
        enum: sorted.map((c) => c.name),
        description: 'The connector (vendor) this instance uses.',
      },
      mode: I.mode,
      settings: {
        type: 'object',
        description:
          "The connector's own settings (credentials, vendor URLs): see the connector's documentation.",
      },
      pull: {
        type: 'object',
        additionalProperties: false,
        description: 'Polling, for mode pull or both.',
        properties: {
          interval: duration("How often to poll (at least 100ms); default: the connector's own interval."),
        },
      },
      gate: {
        type: 'object',
        additionalProperties: false,
        description:
          'Synchronous approval requests (e.g. Docplanner slot-booking): how long to wait and what to answer when no approver decided.',
        properties: {
          // The range is the instance input's (checked on the converted entry, instances/schema.ts).
          deadline: duration(
            `How long approvers get before the default answer is given (${I.gate.properties.deadlineMs.minimum}ms to ${I.gate.properties.deadlineMs.maximum / 1000}s).`,
            CONFIG_DEFAULTS.gate.deadline,
          ),
          default: { ...I.gate.properties.default, default: CONFIG_DEFAULTS.gate.default },
        },
      },
    },
    allOf: settingsRules,
  };

  const subscription: JsonSchema = {
    type: 'object',
    description: 'A subscriber: a webhook endpoint the hub calls, or a pull feed the subscriber reads.',
    required: ['id', 'kind'],
    additionalProperties: false,
    properties: {
      id: {
        type: 'string',
        pattern: ID_PATTERN,
        'x-message': ID_MESSAGE,
        description: 'Stable id of the subscription.',
      },
      kind: F.kind,
      url: F.url,
      events: {
        ...F.eventTypes,
        default: [...CONFIG_DEFAULTS.subscription.events],
      },
      sources: {
        ...F.sources,
        type: 'array',
        description: 'Instance ids whose events to deliver; default: every instance.',
      },
      secrets: {
        ...F.secrets,
        // Each secret is checked whole by the loader (parseSecret: whsec_ and base64), which also
        // covers the input schema's whsec_ pattern; the references (${env:...}) resolve first.
        items: secret(String(F.secrets.items.description)),
      },
      contentType: { ...F.contentType, default: CONFIG_DEFAULTS.subscription.contentType },
      format: { ...F.format, default: CONFIG_DEFAULTS.subscription.format },
      retry: {
        type: 'object',
        additionalProperties: false,
        description: 'When failed deliveries are tried again.',
        properties: {
          schedule: {
            type: 'array',
            minItems: F.retryScheduleMs.minItems,
            maxItems: F.retryScheduleMs.maxItems,
            items: duration('Wait before this attempt.'),
            default: [...CONFIG_DEFAULTS.subscription.retrySchedule],
            description:
              'One entry per attempt: the wait before it, ±20% jitter added. The first attempt goes as soon as the event is stored whatever its entry says (write `0s`).',
          },
        },
      },
      // The input's bounds, in the file's spelling, so the file's schema reports them as well: the
      // converted input's check runs only on an entry with no other fault.
      timeout: duration('Request timeout for one delivery attempt.', CONFIG_DEFAULTS.subscription.timeout, {
        min: `${F.timeoutMs.minimum}ms`,
        max: `${F.timeoutMs.maximum / 1000}s`,
      }),
      rateLimit: { ...F.rateLimit, type: 'object' },
      ordering: { ...F.ordering, default: CONFIG_DEFAULTS.subscription.ordering },
      approver: {
        type: 'object',
        additionalProperties: false,
        description:
          'Makes this webhook an approver of synchronous approval requests (a `cloudevents` one: the requests are CloudEvents).',
        properties: {
          events: {
            ...F.approverFilters.properties.events,
            default: [...CONFIG_DEFAULTS.subscription.approverEvents],
          },
          sources: F.approverFilters.properties.sources,
        },
      },
      allowPrivateAddresses: {
        ...F.allowPrivateAddresses,
        default: CONFIG_DEFAULTS.subscription.allowPrivateAddresses,
      },
      disableAfterConsecutiveDead: {
        ...F.disableAfterConsecutiveDead,
        type: 'integer',
        default: CONFIG_DEFAULTS.subscription.disableAfterConsecutiveDead,
        description: 'Disable the endpoint after this many dead deliveries in a row.',
      },
    },
    // Which fields a webhook or a pull subscription needs or may not have: the one subscription
    // schema's rules (subscriptions/schema.ts), checked by the loader on the converted entry.
  };

  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: CONFIG_SCHEMA_ID,
    title: 'SwitchyardConfig',
    description: 'switchyard.yaml: the configuration of a Switchyard hub.',
    type: 'object',
    required: ['version'],
    additionalProperties: false,
    properties: {
      $schema: { type: 'string', description: 'The schema this file follows (for editors).' },
      version: { const: 1, description: 'The file format version.' },
      server: {
        type: 'object',
        additionalProperties: false,
        description: 'The HTTP server.',
        properties: {
          host: {
            type: 'string',
            minLength: 1,
            default: CONFIG_DEFAULTS.server.host,
            description: 'Listen address.',
          },
          port: {
            type: 'integer',
            minimum: 0,
            maximum: 65535,
            default: CONFIG_DEFAULTS.server.port,
            description: 'Listen port.',
          },
          publicUrl: {
            type: 'string',
            format: 'uri',
            // Hook URLs are this followed by /hooks/{instance}: a query or fragment would end up before it.
            pattern: '^https?://[^?#]*$',
            'x-message': 'must be an http:// or https:// URL without a query or fragment',
            description:
              'The URL vendors and subscribers reach the hub at, without a query or fragment (shown in hook URLs; the base of the hook URL a vendor that signs it, e.g. Square, is verified against).',
          },
          adminToken: {
            ...secret(
              'Bearer token for the admin API (at least 16 characters). Without it the admin API is closed.',
            ),
            minLength: 16,
          },
          bodyLimit: {
            type: 'string',
            pattern: SIZE_PATTERN,
            'x-message': 'must be a size: a whole number and a unit (b, kb, mb, gb), e.g. "512kb" or "1mb"',
            default: CONFIG_DEFAULTS.server.bodyLimit,
            description: 'Largest request body accepted, e.g. `512kb`, `1mb`.',
          },
          trustedProxies: {
            type: 'array',
            // Checked here: a bad entry passed `validate` and crashed `start` after it had migrated
            // and applied the file (an operator audit).
            items: IP_OR_CIDR_SCHEMA,
            default: [],
            description: 'Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed.',
          },
          timeouts: {
            type: 'object',
            additionalProperties: false,
            default: {},
            description:
              'How long a client may take to send a request; a slower one gets 408 and its connection closed.',
            properties: {
              headers: duration(
                'Time to receive the request line and headers (at most `request`).',
                CONFIG_DEFAULTS.server.timeouts.headers,
                AT_LEAST_A_SECOND,
              ),
              body: duration(
                'Time to receive the body once the headers are in.',
                CONFIG_DEFAULTS.server.timeouts.body,
                AT_LEAST_A_SECOND,
              ),
              request: duration(
                'Time to receive the whole request, headers and body.',
                CONFIG_DEFAULTS.server.timeouts.request,
                AT_LEAST_A_SECOND,
              ),
              lingering: duration(
                'After a refusal sent before the body was read (401, 404, 408, 413, 415, 417, 503, and the 400 or 431 of a request head Node refuses), how long the hub goes on reading and dropping what the client still sends before it closes the connection, so that the client reads the answer instead of a connection reset.',
                CONFIG_DEFAULTS.server.timeouts.lingering,
                AT_LEAST_A_SECOND,
              ),
              lingeringIdle: duration(
                'Within `lingering`: how long without a byte from the refused client before the connection is closed.',
                CONFIG_DEFAULTS.server.timeouts.lingeringIdle,
                AT_LEAST_A_SECOND,
              ),
            },
          },
          unauthenticatedBodyBytes: {
            type: 'string',
            pattern: SIZE_PATTERN,
            'x-message': 'must be a size such as "512kb" or "16mb"',
            default: CONFIG_DEFAULTS.server.unauthenticatedBodyBytes,
            description:
              'Request body bytes held at once, across all connections, for requests whose credentials are not checked yet (bodies a connector verifies itself, e.g. HMAC signatures; dashboard sign-ins; unknown routes). Past it such requests get 503 with Retry-After.',
          },
        },
      },
      database: {
        type: 'object',
        additionalProperties: false,
        description:
          'Postgres. `url`, or `embedded` for a Postgres the hub runs itself. The DATABASE_URL environment variable is used when the file gives no url.',
        properties: {
          url: {
            type: 'string',
            pattern: DATABASE_URL_PATTERN,
            'x-message': 'must be a postgres:// URL',
            'x-secret': true,
            description: 'postgres://user:password@host:5432/db (may hold a password: a secret field).',
          },
          startupWait: duration(
            'With a real Postgres (`url` or DATABASE_URL): how long `switchyard start` waits for it to accept connections (refused, unreachable, a name that does not resolve yet, starting up, no connection slot), trying again with backoff, before it exits 1; `0s` gives up at the first failure. Errors waiting cannot fix (a refused password, a missing database, a bad URL, TLS refused) end the start at once. Readiness (`/readyz`) is not served before the database answers and the migrations are done.',
            CONFIG_DEFAULTS.database.startupWait,
            { min: '0s', max: '1h' },
          ),
          poolSize: {
            type: 'integer',
            minimum: 2,
            maximum: 200,
            default: CONFIG_DEFAULTS.database.poolSize,
            description:
              'Connections of each process\'s general pool (workers, admin API, gate and command work). A process opens up to this many plus 9 (6 for plan-stable statements, 2 for pg-boss, 1 listener); size Postgres\'s max_connections for every process. Raise it when `switchyard_database_errors_total{condition="pool_exhausted"}` moves.',
          },
          embedded: {
            type: 'object',
            additionalProperties: false,
            description: 'Run an embedded Postgres (development, demos, single-machine installs).',
            properties: {
              dataDir: {
                type: 'string',
                minLength: 1,
                default: CONFIG_DEFAULTS.embeddedDataDir,
                description: 'Where its data lives, relative to the config file.',
              },
            },
          },
        },
        allOf: [
          { not: { required: ['url', 'embedded'] }, 'x-message': 'give either url or embedded, not both' },
        ],
      },
      secretKey: {
        ...secret(
          'The key that encrypts secrets stored in the database (subscription signing secrets created through the API): a random string of at least 16 characters. Changing it makes stored secrets unreadable: a process started with another key than the one that sealed the stored secrets (instance settings, subscription signing secrets) is refused at start, at this field, before it writes anything.',
        ),
        minLength: 16,
      },
      instances: { type: 'array', items: instance, default: [], description: 'Connector instances.' },
      subscriptions: { type: 'array', items: subscription, default: [], description: 'Subscribers.' },
      retention: {
        type: 'object',
        additionalProperties: false,
        description: 'How long rows are kept before the cleanup job deletes them.',
        properties: {
          inboundMessages: duration(
            'Raw vendor messages.',
            CONFIG_DEFAULTS.retention.inboundMessages,
            AT_LEAST_AN_HOUR,
          ),
          events: duration(
            'Normalized events (the pull feed and replays reach back this far).',
            CONFIG_DEFAULTS.retention.events,
            AT_LEAST_AN_HOUR,
          ),
          deliveries: duration(
            'Delivery attempts, including dead ones.',
            CONFIG_DEFAULTS.retention.deliveries,
            AT_LEAST_AN_HOUR,
          ),
          unreadEvents: duration(
            "How long an event an enabled pull subscription has not acknowledged yet is kept (its reader is slow or stopped), when longer than `events`. Past it the event is removed and the feed answers the gap to that subscription's reader.",
            CONFIG_DEFAULTS.retention.unreadEvents,
            AT_LEAST_AN_HOUR,
          ),
        },
      },
      workers: {
        type: 'object',
        additionalProperties: false,
        description:
          'The normalize and deliver workers. Each claimed message or delivery is leased to the process working on it; the process renews its leases every third of their length while the work runs, so a lease runs out only when that process died or lost its database, and then another process takes the work over.',
        properties: {
          normalizeLease: duration(
            'How long a message being normalized stays with its process without a renewal: after a crash, another process takes it (and every later message of the same entity, which waits for it) over after this long. Longer than a few seconds (two renewals may fail before it runs out).',
            CONFIG_DEFAULTS.workers.normalizeLease,
            // Renewed every third of its length: two renewals may fail, a second apart, before it runs out.
            { min: '3s' },
          ),
          deliveryLeaseMargin: duration(
            "Added to a subscription's `timeout` to make the lease of a delivery attempt, so an attempt still waiting for its subscriber is never sent again by another process; after a crash, the attempt is retried after timeout + this.",
            CONFIG_DEFAULTS.workers.deliveryLeaseMargin,
            AT_LEAST_A_SECOND,
          ),
          pollBackstop: duration(
            'How long an idle worker waits before looking for work without having been woken. New work wakes workers at once by LISTEN/NOTIFY, retries and expiring leases are timed exactly; this only bounds how late work is found when a notification was lost.',
            CONFIG_DEFAULTS.workers.pollBackstop,
            AT_LEAST_A_SECOND,
          ),
          ingestFirst: {
            type: 'boolean',
            description:
              'In a process that takes vendor pushes and also runs the workers: while pushes queue for their durable write (32 waiting at once), the normalize worker runs one message run at a time instead of its full concurrency, so the cores go to acknowledging vendors (some disable a webhook after a few slow answers); what was acknowledged waits in the database and is normalized once the queue is gone (200 ms after). Deliveries are not slowed. Set false to keep normalizing at full concurrency during a burst, at the cost of slower acknowledgements.',
            default: CONFIG_DEFAULTS.workers.ingestFirst,
          },
          deliveryConcurrency: {
            type: 'integer',
            minimum: 1,
            maximum: 1000,
            default: CONFIG_DEFAULTS.workers.deliveryConcurrency,
            description:
              "Deliveries one worker process has in flight at once, across all subscriptions: from claim to the attempt's record. A subscriber still gets at most 32 requests at once from one process (its connections); deliveries beyond those wait ready for a connection to come free, their timeout not running meanwhile. Deliveries of one subject always go one after another.",
          },
          pullSpoolDir: {
            type: 'string',
            minLength: 1,
            default: CONFIG_DEFAULTS.workers.pullSpoolDir,
            description:
              "Where the pull worker keeps what a vendor handed over until it is stored (relative to the config file): each pulled batch is written there, encrypted with `secretKey` and fsynced, before it is stored, and removed once stored; what a crash or a stop during a database outage left there is stored at the next start. Docplanner's pull queue forgets a notification once it is handed over: this file is then its only copy. A local disk of the host that runs the workers (not a tmpfs); in a container, a persistent volume (the default is inside a read-only config mount: `switchyard validate` reports it, and the process logs an error and pulls nothing until it can write there). It must belong to the hub's user (or root) and be writable by no other user unless it has the sticky bit (as /tmp); the hub keeps each database's batches in a 0700 subdirectory of it. Otherwise every pull turn fails before it asks the vendor, the instance's health saying why.",
          },
        },
      },
      commands: {
        type: 'object',
        additionalProperties: false,
        description:
          'Commands (`/v1/commands`): how worker processes run them, retry them and match their echoes.',
        properties: {
          retrySchedule: {
            type: 'array',
            minItems: 1,
            maxItems: 100,
            // A retry at once after a vendor's 5xx or 429 only adds to its trouble.
            items: duration('Wait before this retry.', undefined, AT_LEAST_A_SECOND),
            default: [...CONFIG_DEFAULTS.commands.retrySchedule],
            description: `The wait before each retry after a transient vendor failure (5xx, timeout, 429), each at least ${AT_LEAST_A_SECOND.min}; ±20% jitter is added. After the last, the command fails (\`exhausted\`); a failure of the hub’s own database (a full disk, a deadlock) spends none of these tries: its attempt is given back and the command waits this attempt’s delay again, never failed for it.`,
          },
          maxRetryAfter: duration(
            "The longest wait a vendor's `Retry-After` may ask for; a longer one is cut to this. It is also the longest a vendor's pause (a `Retry-After` or a rate limit's reset) holds the instance's other commands in the worker process that got it.",
            CONFIG_DEFAULTS.commands.maxRetryAfter,
            AT_LEAST_A_SECOND,
          ),
          lease: duration(
            'How long a running command stays with its process: after a crash, another process (or the restarted one) runs it again after this long (at least once). Renewed every third of it while the command runs, so a slow vendor call does not run the command twice.',
            CONFIG_DEFAULTS.commands.lease,
            AT_LEAST_A_SECOND,
          ),
          sweepInterval: duration(
            'How often a worker process looks for commands whose lease ran out or whose job was lost, and queues them again.',
            CONFIG_DEFAULTS.commands.sweepInterval,
            // 0 means never. A sweep is one small query, so a fraction of a second stays allowed (the
            // crash test, reliability/command-crash.int.test.ts, sweeps every 200 ms).
            { min: '100ms' },
          ),
          concurrency: {
            type: 'integer',
            minimum: 1,
            maximum: 1000,
            default: CONFIG_DEFAULTS.commands.concurrency,
            description:
              'Commands running at once in one worker process (commands on the same appointment always run one after another).',
          },
          instanceConcurrency: {
            type: 'integer',
            minimum: 1,
            maximum: 1000,
            description:
              "Commands of one connector instance running at once in one worker process (at most `commands.concurrency`; default: half of it, rounded up). The rest of the process's slots stay free for the other instances' commands while one vendor is slow or rate-limits the hub.",
          },
          echoWindow: duration(
            "How long after a command succeeded the vendor's push of the change is marked as its echo (`data.causedBy`).",
            CONFIG_DEFAULTS.commands.echoWindow,
            AT_LEAST_A_SECOND,
          ),
          retention: duration(
            'Finished commands (with their vendor calls) are deleted this long after they finished (hourly purge); a succeeded booking or block whose entity has no event yet is kept until one arrives.',
            CONFIG_DEFAULTS.commands.retention,
            AT_LEAST_AN_HOUR,
          ),
        },
      },
      telemetry: {
        type: 'object',
        additionalProperties: false,
        description:
          'OpenTelemetry export (docs/observability.md). Off unless an endpoint is set here or in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT; a value set here wins over the environment.',
        properties: {
          traces: {
            type: 'object',
            additionalProperties: false,
            description:
              'Traces, sent as OTLP/HTTP to a collector: protobuf bodies, or JSON when OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL is `http/json`.',
            properties: {
              endpoint: {
                type: 'string',
                format: 'uri',
                pattern: '^https?://',
                'x-message': 'must be an http:// or https:// URL',
                description:
                  'The OTLP/HTTP traces URL, path included (e.g. `http://otel-collector:4318/v1/traces`). Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`; with neither, tracing is off.',
              },
              headers: {
                type: 'object',
                // An HTTP field name (RFC 9110 token): the exporter's request with any other name is
                // refused by Node, every export lost to a warning, where the file could say so.
                patternProperties: {
                  "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$": secret('A header value (an API key: a secret reference).'),
                },
                additionalProperties: false,
                'x-message': "is not an HTTP header name (letters, digits and !#$%&'*+.^_`|~-, no spaces)",
                description:
                  'Headers sent with every export (e.g. `x-honeycomb-team`, its value a secret reference to the API key); merged over OTEL_EXPORTER_OTLP_HEADERS (these win).',
              },
              sampleRatio: {
                type: 'number',
                minimum: 0,
                maximum: 1,
                description: `Share of new traces recorded (a request carrying a sampled \`traceparent\` follows its caller). Default: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, else ${CONFIG_DEFAULTS.telemetry.traces.sampleRatio}.`,
              },
              queueSize: {
                type: 'integer',
                minimum: 1,
                maximum: 1000000,
                default: CONFIG_DEFAULTS.telemetry.traces.queueSize,
                description: `Finished spans waiting for export at most. When the collector is slow or down, spans past it are dropped and counted in switchyard_trace_spans_dropped_total; the pipeline never waits. Default: OTEL_BSP_MAX_QUEUE_SIZE, else ${CONFIG_DEFAULTS.telemetry.traces.queueSize}.`,
              },
            },
          },
        },
      },
      logging: {
        type: 'object',
        additionalProperties: false,
        description: 'Logs go to stdout, one JSON object a line unless pretty.',
        properties: {
          level: {
            type: 'string',
            enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
            default: CONFIG_DEFAULTS.logging.level,
            description:
              'The least severe level written. Each answered HTTP request is one line at `debug` (none at `info`); 5xx answers are logged with their cause.',
          },
          pretty: {
            type: 'boolean',
            description: 'Human-readable logs; default: when stdout is a terminal.',
          },
        },
      },
    },
    $defs: defs,
  };
}
