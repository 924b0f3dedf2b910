/* Generated from the config schema (packages/server/src/config/schema.ts) by pnpm generate. Do not edit. */

/**
 * switchyard.yaml: the configuration of a Switchyard hub.
 */
export interface SwitchyardConfigFile {
  /**
   * The schema this file follows (for editors).
   */
  $schema?: string;
  /**
   * The file format version.
   */
  version: 1;
  /**
   * The HTTP server.
   */
  server?: {
    /**
     * Listen address.
     */
    host?: string;
    /**
     * Listen port.
     */
    port?: number;
    /**
     * The URL vendors and subscribers reach the hub at, without a query or fragment (shown in hook URLs; the base of the hook URL a vendor that signs it, e.g. Square, is verified against).
     */
    publicUrl?: string;
    /**
     * Bearer token for the admin API (at least 16 characters). Without it the admin API is closed.
     */
    adminToken?: string;
    /**
     * Largest request body accepted, e.g. `512kb`, `1mb`.
     */
    bodyLimit?: string;
    /**
     * Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed.
     */
    trustedProxies?: ({
      [k: string]: unknown;
    } & string)[];
    /**
     * How long a client may take to send a request; a slower one gets 408 and its connection closed.
     */
    timeouts?: {
      /**
       * Time to receive the request line and headers (at most `request`). At least 1s.
       */
      headers?: string;
      /**
       * Time to receive the body once the headers are in. At least 1s.
       */
      body?: string;
      /**
       * Time to receive the whole request, headers and body. At least 1s.
       */
      request?: string;
      /**
       * After a refusal sent before the body was read (401, 404, 408, 413, 415, 417, 503, and the 400 or 431 of a request head Node refuses), how long the hub goes on reading and dropping what the client still sends before it closes the connection, so that the client reads the answer instead of a connection reset. At least 1s.
       */
      lingering?: string;
      /**
       * Within `lingering`: how long without a byte from the refused client before the connection is closed. At least 1s.
       */
      lingeringIdle?: string;
    };
    /**
     * Request body bytes held at once, across all connections, for requests whose credentials are not checked yet (bodies a connector verifies itself, e.g. HMAC signatures; dashboard sign-ins; unknown routes). Past it such requests get 503 with Retry-After.
     */
    unauthenticatedBodyBytes?: string;
  };
  /**
   * Postgres. `url`, or `embedded` for a Postgres the hub runs itself. The DATABASE_URL environment variable is used when the file gives no url.
   */
  database?: {
    /**
     * postgres://user:password@host:5432/db (may hold a password: a secret field).
     */
    url?: string;
    /**
     * With a real Postgres (`url` or DATABASE_URL): how long `switchyard start` waits for it to accept connections (refused, unreachable, a name that does not resolve yet, starting up, no connection slot), trying again with backoff, before it exits 1; `0s` gives up at the first failure. Errors waiting cannot fix (a refused password, a missing database, a bad URL, TLS refused) end the start at once. Readiness (`/readyz`) is not served before the database answers and the migrations are done. 0s to 1h.
     */
    startupWait?: string;
    /**
     * Connections of each process's general pool (workers, admin API, gate and command work). A process opens up to this many plus 9 (6 for plan-stable statements, 2 for pg-boss, 1 listener); size Postgres's max_connections for every process. Raise it when `switchyard_database_errors_total{condition="pool_exhausted"}` moves.
     */
    poolSize?: number;
    /**
     * Run an embedded Postgres (development, demos, single-machine installs).
     */
    embedded?: {
      /**
       * Where its data lives, relative to the config file.
       */
      dataDir?: string;
    };
  };
  /**
   * The key that encrypts secrets stored in the database (subscription signing secrets created through the API): a random string of at least 16 characters. Changing it makes stored secrets unreadable: a process started with another key than the one that sealed the stored secrets (instance settings, subscription signing secrets) is refused at start, at this field, before it writes anything.
   */
  secretKey?: string;
  /**
   * Connector instances.
   *
   * Items: A connector instance: one vendor account or tenant connected to the hub.
   */
  instances?: {
    /**
     * Stable id of the instance: the events' `source`, and the path of its hooks (`/hooks/{id}`). Lowercase letters, digits, `-`, `_`.
     */
    id: string;
    /**
     * The connector (vendor) this instance uses.
     */
    connector:
      | "acuity"
      | "bookingbug"
      | "calendly"
      | "cliniko"
      | "clockwisemd"
      | "docplanner"
      | "instinctive-notes"
      | "quable"
      | "square";
    /**
     * Default: push when the connector can be pushed to, else pull. push: the vendor calls `/hooks/{id}`; pull: the hub polls the vendor; both: push, with pull as a reconciliation backstop.
     */
    mode?: "push" | "pull" | "both";
    /**
     * The connector's own settings (credentials, vendor URLs): see the connector's documentation.
     */
    settings?: {};
    /**
     * Polling, for mode pull or both.
     */
    pull?: {
      /**
       * How often to poll (at least 100ms); default: the connector's own interval.
       */
      interval?: string;
    };
    /**
     * Synchronous approval requests (e.g. Docplanner slot-booking): how long to wait and what to answer when no approver decided.
     */
    gate?: {
      /**
       * How long approvers get before the default answer is given (50ms to 30s).
       */
      deadline?: string;
      /**
       * The answer when the deadline passes (or no approver is subscribed).
       */
      default?: "approve" | "refuse";
    };
  }[];
  /**
   * Subscribers.
   *
   * Items: A subscriber: a webhook endpoint the hub calls, or a pull feed the subscriber reads.
   */
  subscriptions?: {
    /**
     * Stable id of the subscription.
     */
    id: string;
    /**
     * webhook: the hub POSTs each event to `url`; pull: the subscriber reads `/v1/subscriptions/{id}/events`.
     */
    kind: "webhook" | "pull";
    /**
     * The endpoint (webhook only).
     */
    url?: string;
    /**
     * Event types to deliver: exact (`appointment.created`), a family (`appointment.*`) or `*`.
     *
     * @minItems 1
     * @maxItems 100
     */
    events?: [string, ...string[]];
    /**
     * Instance ids whose events to deliver; default: every instance.
     *
     * @maxItems 100
     */
    sources?: string[];
    /**
     * Signing secrets (`whsec_…`), newest first (two during a rotation: the hub signs with each). Absent: the hub generates one (the admin API returns it once).
     *
     * @minItems 1
     * @maxItems 5
     *
     * Items: A Standard Webhooks signing secret, `whsec_` + standard base64 of 24 to 64 bytes.
     */
    secrets?:
      | [string]
      | [string, string]
      | [string, string, string]
      | [string, string, string, string]
      | [string, string, string, string, string];
    /**
     * The body format: a structured-mode CloudEvent, or plain JSON of the same object.
     */
    contentType?: "application/cloudevents+json" | "application/json";
    /**
     * What each delivery carries: `cloudevents` (the event), `fhir-r4` (the FHIR R4 resource of the event's entity, `application/fhir+json`) or `fhir-r4-notification` (a FHIR Subscriptions Backport notification Bundle). Webhooks only; see docs/fhir.md.
     */
    format?: "cloudevents" | "fhir-r4" | "fhir-r4-notification";
    /**
     * When failed deliveries are tried again.
     */
    retry?: {
      /**
       * One entry per attempt: the wait before it, ±20% jitter added. The first attempt goes as soon as the event is stored whatever its entry says (write `0s`).
       *
       * @minItems 1
       * @maxItems 100
       *
       * Items: Wait before this attempt.
       */
      schedule?: [string, ...string[]];
    };
    /**
     * Request timeout for one delivery attempt. 100ms to 120s.
     */
    timeout?: string;
    /**
     * Spreads deliveries to this subscriber over time.
     */
    rateLimit?: {
      /**
       * Deliveries per second at most.
       */
      perSecond: number;
    };
    /**
     * hold: a dead delivery holds back later events of the same subject until replayed or skipped; release: later events go on.
     */
    ordering?: "hold" | "release";
    /**
     * Makes this webhook an approver of synchronous approval requests (a `cloudevents` one: the requests are CloudEvents).
     */
    approver?: {
      /**
       * Approval request types to decide.
       *
       * @minItems 1
       * @maxItems 100
       */
      events?: [string, ...string[]];
      /**
       * Instance ids whose requests to decide; default: every instance.
       *
       * @maxItems 100
       */
      sources?: string[];
    };
    /**
     * Allow a url resolving to private, loopback or link-local addresses (refused by default against SSRF).
     */
    allowPrivateAddresses?: boolean;
    /**
     * Disable the endpoint after this many dead deliveries in a row.
     */
    disableAfterConsecutiveDead?: number;
  }[];
  /**
   * How long rows are kept before the cleanup job deletes them.
   */
  retention?: {
    /**
     * Raw vendor messages. At least 1h.
     */
    inboundMessages?: string;
    /**
     * Normalized events (the pull feed and replays reach back this far). At least 1h.
     */
    events?: string;
    /**
     * Delivery attempts, including dead ones. At least 1h.
     */
    deliveries?: string;
    /**
     * How long an event an enabled pull subscription has not acknowledged yet is kept (its reader is slow or stopped), when longer than `events`. Past it the event is removed and the feed answers the gap to that subscription's reader. At least 1h.
     */
    unreadEvents?: string;
  };
  /**
   * The normalize and deliver workers. Each claimed message or delivery is leased to the process working on it; the process renews its leases every third of their length while the work runs, so a lease runs out only when that process died or lost its database, and then another process takes the work over.
   */
  workers?: {
    /**
     * How long a message being normalized stays with its process without a renewal: after a crash, another process takes it (and every later message of the same entity, which waits for it) over after this long. Longer than a few seconds (two renewals may fail before it runs out). At least 3s.
     */
    normalizeLease?: string;
    /**
     * Added to a subscription's `timeout` to make the lease of a delivery attempt, so an attempt still waiting for its subscriber is never sent again by another process; after a crash, the attempt is retried after timeout + this. At least 1s.
     */
    deliveryLeaseMargin?: string;
    /**
     * How long an idle worker waits before looking for work without having been woken. New work wakes workers at once by LISTEN/NOTIFY, retries and expiring leases are timed exactly; this only bounds how late work is found when a notification was lost. At least 1s.
     */
    pollBackstop?: string;
    /**
     * In a process that takes vendor pushes and also runs the workers: while pushes queue for their durable write (32 waiting at once), the normalize worker runs one message run at a time instead of its full concurrency, so the cores go to acknowledging vendors (some disable a webhook after a few slow answers); what was acknowledged waits in the database and is normalized once the queue is gone (200 ms after). Deliveries are not slowed. Set false to keep normalizing at full concurrency during a burst, at the cost of slower acknowledgements.
     */
    ingestFirst?: boolean;
    /**
     * Deliveries one worker process has in flight at once, across all subscriptions: from claim to the attempt's record. A subscriber still gets at most 32 requests at once from one process (its connections); deliveries beyond those wait ready for a connection to come free, their timeout not running meanwhile. Deliveries of one subject always go one after another.
     */
    deliveryConcurrency?: number;
    /**
     * Where the pull worker keeps what a vendor handed over until it is stored (relative to the config file): each pulled batch is written there, encrypted with `secretKey` and fsynced, before it is stored, and removed once stored; what a crash or a stop during a database outage left there is stored at the next start. Docplanner's pull queue forgets a notification once it is handed over: this file is then its only copy. A local disk of the host that runs the workers (not a tmpfs); in a container, a persistent volume (the default is inside a read-only config mount: `switchyard validate` reports it, and the process logs an error and pulls nothing until it can write there). It must belong to the hub's user (or root) and be writable by no other user unless it has the sticky bit (as /tmp); the hub keeps each database's batches in a 0700 subdirectory of it. Otherwise every pull turn fails before it asks the vendor, the instance's health saying why.
     */
    pullSpoolDir?: string;
  };
  /**
   * Commands (`/v1/commands`): how worker processes run them, retry them and match their echoes.
   */
  commands?: {
    /**
     * The wait before each retry after a transient vendor failure (5xx, timeout, 429), each at least 1s; ±20% jitter is added. After the last, the command fails (`exhausted`); a failure of the hub’s own database (a full disk, a deadlock) spends none of these tries: its attempt is given back and the command waits this attempt’s delay again, never failed for it.
     *
     * @minItems 1
     * @maxItems 100
     *
     * Items: Wait before this retry. At least 1s.
     */
    retrySchedule?: [string, ...string[]];
    /**
     * The longest wait a vendor's `Retry-After` may ask for; a longer one is cut to this. It is also the longest a vendor's pause (a `Retry-After` or a rate limit's reset) holds the instance's other commands in the worker process that got it. At least 1s.
     */
    maxRetryAfter?: string;
    /**
     * How long a running command stays with its process: after a crash, another process (or the restarted one) runs it again after this long (at least once). Renewed every third of it while the command runs, so a slow vendor call does not run the command twice. At least 1s.
     */
    lease?: string;
    /**
     * How often a worker process looks for commands whose lease ran out or whose job was lost, and queues them again. At least 100ms.
     */
    sweepInterval?: string;
    /**
     * Commands running at once in one worker process (commands on the same appointment always run one after another).
     */
    concurrency?: number;
    /**
     * Commands of one connector instance running at once in one worker process (at most `commands.concurrency`; default: half of it, rounded up). The rest of the process's slots stay free for the other instances' commands while one vendor is slow or rate-limits the hub.
     */
    instanceConcurrency?: number;
    /**
     * How long after a command succeeded the vendor's push of the change is marked as its echo (`data.causedBy`). At least 1s.
     */
    echoWindow?: string;
    /**
     * Finished commands (with their vendor calls) are deleted this long after they finished (hourly purge); a succeeded booking or block whose entity has no event yet is kept until one arrives. At least 1h.
     */
    retention?: string;
  };
  /**
   * OpenTelemetry export (docs/observability.md). Off unless an endpoint is set here or in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT; a value set here wins over the environment.
   */
  telemetry?: {
    /**
     * Traces, sent as OTLP/HTTP to a collector: protobuf bodies, or JSON when OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL is `http/json`.
     */
    traces?: {
      /**
       * The OTLP/HTTP traces URL, path included (e.g. `http://otel-collector:4318/v1/traces`). Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`; with neither, tracing is off.
       */
      endpoint?: string;
      /**
       * Headers sent with every export (e.g. `x-honeycomb-team`, its value a secret reference to the API key); merged over OTEL_EXPORTER_OTLP_HEADERS (these win).
       */
      headers?: {
        /**
         * A header value (an API key: a secret reference).
         *
         * This interface was referenced by `undefined`'s JSON-Schema definition
         * via the `patternProperty` "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$".
         */
        [k: string]: string;
      };
      /**
       * Share of new traces recorded (a request carrying a sampled `traceparent` follows its caller). Default: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, else 1.
       */
      sampleRatio?: number;
      /**
       * Finished spans waiting for export at most. When the collector is slow or down, spans past it are dropped and counted in switchyard_trace_spans_dropped_total; the pipeline never waits. Default: OTEL_BSP_MAX_QUEUE_SIZE, else 2048.
       */
      queueSize?: number;
    };
  };
  /**
   * Logs go to stdout, one JSON object a line unless pretty.
   */
  logging?: {
    /**
     * The least severe level written. Each answered HTTP request is one line at `debug` (none at `info`); 5xx answers are logged with their cause.
     */
    level?: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
    /**
     * Human-readable logs; default: when stdout is a terminal.
     */
    pretty?: boolean;
  };
}
