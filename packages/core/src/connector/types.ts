/**
 * The connector contract: everything a vendor connector provides to the hub, and everything the hub
 * hands to it. A connector is data plus pure-ish functions; the hub owns all I/O except the vendor
 * API calls a connector makes through {@link VendorHttp}.
 *
 * Life of a pushed notification:
 * 1. the hub matches `POST /hooks/{instance}/{route}` to one of {@link PushSpec.routes};
 * 2. {@link PushSpec.authenticate} accepts or throws `ConnectorError.auth`, before the body is read
 *    (an unauthenticated client never gets its body held in memory);
 * 3. the hub reads the body; {@link PushSpec.verifyBody}, when the connector has one, checks what
 *    needs the body (an HMAC signature over it);
 * 4. {@link PushSpec.parse} splits the body into {@link VendorNotification}s (with dedupe keys);
 * 5. the hub stores them durably and answers the vendor (gates wait for a decision first); headers
 *    are stored, served and logged without the credentials {@link PushSpec.credentials} declares;
 * 6. later, in a job, {@link ConnectorDefinition.normalize} turns each into zero or more
 *    {@link EventDraft}s, which the hub completes into CloudEvents and delivers.
 */
import type { CommandDataMap, CommandType } from '../generated/commands.ts';
import type { JsonObject, JsonValue } from '../json.ts';
import type { EventEnvelope } from '../model.ts';

/** A JSON Schema (draft 2020-12) object. Fields with `"x-secret": true` are secrets: redacted everywhere. */
export type JsonSchema = { [key: string]: JsonValue };

/** Logs through the hub's logger. Never pass secrets; the hub redacts known secret fields anyway. */
export interface Logger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

/** An inbound HTTP request as a connector sees it. Header names are lowercase. */
export interface InboundRequest {
  /** The name of the matched {@link PushRoute}. */
  route: string;
  /** Path parameters of the matched route, e.g. `{ key: '...' }` for a route `:key`. */
  params: Readonly<Record<string, string>>;
  /** Query string parameters (first value of each). */
  query: Readonly<Record<string, string>>;
  method: string;
  headers: Readonly<Record<string, string | undefined>>;
  /** The body exactly as received. Use `parseJsonBody()` to read JSON with the standard errors. */
  rawBody: Buffer;
  /** The client address after the server's trusted-proxy rules. */
  sourceIp: string;
  receivedAt: Date;
  /**
   * The URL of this push as the vendor was told it, for a vendor that signs the URL with the body
   * (Square: base64 HMAC-SHA256 of `notification URL + body`): `server.publicUrl` followed by the
   * path and query exactly as received (`https://hub.example.com/hooks/sq-main?x=1`). Never built
   * from the request's `Host` or `X-Forwarded-*` headers, which the sender chooses: behind a
   * TLS-terminating proxy the hub itself is `http://internal-host:8080`, and only the operator
   * knows the public name. Undefined when `server.publicUrl` is not set: a connector that needs
   * it refuses the push (`ConnectorError.auth`) saying so.
   *
   * @example
   * ```ts
   * verifyBody(req, config) {
   *   if (req.hookUrl === undefined) throw ConnectorError.auth('set server.publicUrl: the signature covers the hook URL');
   *   const verdict = verifyBodySignature({
   *     header: req.headers['x-square-hmacsha256-signature'],
   *     body: Buffer.concat([Buffer.from(req.hookUrl, 'utf8'), req.rawBody]),
   *     secrets: [config.signatureKey],
   *     encoding: 'base64',
   *   });
   *   if (!verdict.ok) throw ConnectorError.auth(`x-square-hmacsha256-signature: ${verdict.message}`);
   * },
   * ```
   */
  hookUrl?: string;
}

/**
 * What the hub knows of a push request before reading its body: everything of
 * {@link InboundRequest} but `rawBody`. {@link PushSpec.authenticate} gets this.
 */
export type InboundRequestHead = Omit<InboundRequest, 'rawBody'>;

/**
 * Where a push request carries an instance's credentials, for one instance config. The headers
 * named here are redacted from every header set the hub stores, serves and logs
 * (`inbound_messages.headers`, `GET /v1/inbound/{id}`, the dashboard), whatever their names; a
 * name-based guess (`authorization`, names containing `key`, `token`, `secret`…) is only a safety
 * net on top. Query and path parameters are never stored, and the logged URL shows no value below
 * `/hooks/{instance}` nor any query value; declare them all the same, so the declaration stays the
 * one list of where credentials travel. List every place {@link PushSpec.authenticate} or
 * {@link PushSpec.verifyBody} reads a credential from, including configurable names (a custom
 * header name from the instance config).
 *
 * @example
 * ```ts
 * // API key in a header named by the config, or in the path (route `':key'`):
 * credentials: (config) => ({ headers: [config.headerName ?? 'x-api-key'], params: ['key'] }),
 * // HTTP Basic or a bearer token:
 * credentials: () => ({ headers: ['authorization'] }),
 * ```
 */
export interface PushCredentials {
  /** Header names (any case) whose values are credentials: `authorization` for Basic and bearer auth, custom API-key or signature headers. */
  headers?: readonly string[];
  /** Query string parameters whose values are credentials, e.g. `['token']`. */
  query?: readonly string[];
  /** Path parameters of the {@link PushSpec.routes} whose values are credentials, e.g. `['key']` for a route `':key'`. */
  params?: readonly string[];
}

/**
 * Credential values as a request carries them, in the places {@link PushCredentials} names: what
 * {@link PushSpec.sign} adds to a push.
 *
 * @example
 * ```ts
 * const presented: PresentedCredentials = { headers: { 'x-api-key': 'k3y-0123456789' } };
 * const inPath: PresentedCredentials = { params: { key: 'k3y-0123456789' } }; // a route ':key'
 * ```
 */
export interface PresentedCredentials {
  headers?: Record<string, string>;
  /** Path parameters of the route (`':key'`), by name. */
  params?: Record<string, string>;
  query?: Record<string, string>;
}

/** One route a connector answers under `/hooks/{instance}`. */
export interface PushRoute {
  /** A stable name, e.g. `default`, `cancellation`. Passed back in {@link InboundRequest.route}. */
  name: string;
  /**
   * The path below `/hooks/{instance}`: `''` for the instance URL itself, `'cancellation'`, or with
   * parameters in fastify syntax, e.g. `':key'` (Clockwise.MD puts its key in the path).
   */
  path: string;
}

/**
 * One thing the vendor told us, before normalization. Stored as received, deduplicated on
 * (instance, `dedupeKey`).
 */
export interface VendorNotification {
  /** The vendor's own event type, e.g. `slot-booked`, `soap_note.created`, `booking.cancelled`. */
  type: string;
  /**
   * Identifies this notification across redeliveries: the same vendor delivery must always give the
   * same key, two different deliveries different keys. Use the vendor's event id when it has one;
   * otherwise derive it from content (type, entity ids, vendor timestamp) with `dedupeKeyOf()`.
   */
  dedupeKey: string;
  /**
   * Notifications with the same ordering key are normalized one at a time, in arrival order (e.g. the
   * booking or purchase id), so state comparisons see each other's results.
   */
  orderingKey?: string;
  /** When it happened at the vendor, RFC 3339 with the vendor's offset, when the vendor says. */
  occurredAt?: string;
  /** The notification's JSON as the vendor sent it (one element of a batch, or the whole body). */
  payload: JsonValue;
  /** A synchronous approval request: the vendor waits for the hub's answer (see {@link GateSpec}). */
  gate?: boolean;
  /** Facts from the request that normalization needs (e.g. which route was called). */
  meta?: JsonObject;
}

/** The HTTP answer the hub gives the vendor. */
export interface InboundResponse {
  status: number;
  headers?: Record<string, string>;
  body?: JsonValue;
}

/** How a connector is pushed to. */
export interface PushSpec<Config> {
  routes: readonly PushRoute[];
  /**
   * Optional: `true` when the vendor signs the hook URL it was told ({@link InboundRequest.hookUrl},
   * Square), which the hub knows only from `server.publicUrl`: the config check (`switchyard
   * validate`, `start`) then refuses a push instance of the connector in a file without
   * `server.publicUrl`, at the instance's line, rather than every push being refused 401.
   *
   * @example
   * ```ts
   * push: { routes, signsHookUrl: true, authenticate, verifyBody, credentials, sign, parse },
   * ```
   */
  signsHookUrl?: boolean;
  /**
   * Accept the request or throw `ConnectorError.auth(...)`, from what is known before the body is
   * read: headers, path parameters, query, source address. Compare secrets with
   * `timingSafeEqualString()` (constant time). Runs before the body is read, so a client without
   * credentials is refused without the hub holding its body. A connector whose vendor proves
   * itself only with the body (an HMAC signature over it) checks what it can here (the signature
   * header is present) and the rest in {@link PushSpec.verifyBody}.
   */
  authenticate(request: InboundRequestHead, config: Config): void;
  /**
   * Optional: the credential checks that need the body, e.g. an HMAC signature over `rawBody`.
   * Throw `ConnectorError.auth(...)` to refuse. Runs after the body is read and before
   * {@link PushSpec.parse}; until it passes, the body counts against the hub's bound on bytes held
   * for unauthenticated requests (`server.unauthenticatedBodyBytes`).
   *
   * Verify with the helpers of `@switchyard/core` (`verifyTimestampedSignature`,
   * `verifyBodySignature`, `verifyStandardWebhooksSignature`): they compare in constant time,
   * accept several secrets during a rotation and refuse a timestamp outside the tolerance window.
   *
   * @example
   * ```ts
   * verifyBody(req, config) {
   *   const verdict = verifyTimestampedSignature({
   *     header: req.headers['x-acme-signature'], // t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
   *     body: req.rawBody,
   *     secrets: [config.signingSecret, config.previousSigningSecret].filter((s) => s !== undefined),
   *     receivedAt: req.receivedAt,
   *     toleranceSeconds: config.toleranceSeconds, // default 300
   *   });
   *   if (!verdict.ok) throw ConnectorError.auth(`x-acme-signature: ${verdict.message}`);
   * },
   * ```
   */
  verifyBody?(request: InboundRequest, config: Config): void;
  /**
   * Where this instance's credentials travel in a request (see {@link PushCredentials}): the hub
   * redacts them from stored and served headers and from logs. Derive it from the config when the
   * names are configurable.
   */
  credentials(config: Config): PushCredentials;
  /**
   * Optional, and expected of every connector: the credentials the vendor presents on this push, made
   * from the instance's config as the vendor makes them — its API key or Basic header, the key in
   * the path, or a signature over `rawBody` made at `receivedAt`. The inverse of
   * {@link PushSpec.authenticate} and {@link PushSpec.verifyBody}: `switchyard push` sends a file
   * with them (trying an instance by hand, a body-signing vendor included), and the conformance kit
   * checks that what it returns is accepted. Give only what the config holds (a source-address
   * allowlist is not a credential to present).
   *
   * @example
   * ```ts
   * sign: (req, config) => ({
   *   headers: { 'x-acme-signature': signTimestamped(config.signingSecret, req.rawBody, { timestamp: req.receivedAt }) },
   * }),
   * ```
   */
  sign?(request: InboundRequest, config: Config): PresentedCredentials;
  /**
   * Split the request into notifications. Throw `ConnectorError.badRequest(...)` for a body that
   * cannot be understood: the vendor gets a 400 and nothing is stored. Return an empty array for a
   * request that is valid but carries nothing (e.g. a vendor's connectivity check).
   */
  parse(request: InboundRequest, config: Config): VendorNotification[];
  /**
   * The answer after the notifications are stored. Default: 200 `{"status":"accepted"}`. `request`
   * is the authenticated request: a route that serves the vendor something rather than taking
   * notifications (BookingBug's OAuth2 token endpoint) answers from it, and so does a vendor's
   * connectivity check that wants a value echoed (`parse` returned no notification). Called for
   * stored and duplicate notifications alike; a gate's decision replaces it. The hub sends `body` as
   * JSON (`application/json`, whatever `headers` say), or no body when it is undefined.
   *
   * @example
   * ```ts
   * acknowledge(notifications, _config, request) {
   *   // The vendor's URL check: POST {"type":"url_verification","challenge":"…"}, answered with the challenge.
   *   const body = parseJsonObjectBody(request);
   *   if (notifications.length === 0 && typeof body.challenge === 'string') {
   *     return { status: 200, body: { challenge: body.challenge } };
   *   }
   *   return { status: 200, body: { status: 'accepted' } };
   * },
   * ```
   */
  acknowledge?(
    notifications: readonly VendorNotification[],
    config: Config,
    request: InboundRequest,
  ): InboundResponse;
}

/** A vendor API response as seen through {@link VendorHttp}. */
export interface VendorResponse {
  status: number;
  headers: Readonly<Record<string, string>>;
  /** Parsed JSON when the response was JSON, else the text. */
  body: JsonValue | string;
}

/** Options for one vendor API call. */
export interface VendorRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** JSON body (sent as application/json) or a form (sent as application/x-www-form-urlencoded). */
  json?: JsonValue;
  form?: Record<string, string>;
  /** Default 10 s. */
  timeoutMs?: number;
}

/**
 * The HTTP client the hub lends connectors for vendor API calls. It resolves for every HTTP status
 * (the connector decides what a 404 means; a 3xx is the answer, never followed) and throws
 * `ConnectorError.transient` on network errors, timeouts and a name that does not resolve. It
 * throws `ConnectorError.permanent`, without calling, for a URL it will not call: a path holding a
 * `.` or `..` segment (an id of `..` put in a path with `encodeURIComponent`, which leaves it as it
 * is, would make the call another path's) or a cloud metadata endpoint; and for an answer over
 * 16 MiB. So an id need not be checked for `..` before it goes into a path.
 *
 * @example
 * ```ts
 * const res = await ctx.http.request({ url: `${base}/appointments/${id}`, headers: { Authtoken: config.apiKey } });
 * if (res.status >= 500 || res.status === 429) throw ConnectorError.transient(`Clockwise API ${res.status}`);
 * ```
 */
export interface VendorHttp {
  request(request: VendorRequest): Promise<VendorResponse>;
}

/** The kinds of entity the hub keeps ids for. */
export type EntityKind =
  | 'appointment'
  | 'slot'
  | 'schedule'
  | 'document'
  | 'asset'
  | 'process'
  | 'approval_request';

/**
 * Maps vendor ids to the hub's stable ids, per connector instance. A Docplanner move gives the
 * booking a new vendor id: `link()` the new id to the existing hub id so the appointment keeps one
 * identity.
 */
export interface AliasStore {
  /** The hub id for this vendor id, created on first sight. */
  hubId(entity: EntityKind, vendorId: string): Promise<string>;
  /** The hub id for this vendor id, if it was seen before. */
  find(entity: EntityKind, vendorId: string): Promise<string | undefined>;
  /**
   * `hubId(entity, vendorId)`, unless `vendorId` was never seen and `other` (another vendor id of
   * the same entity kind) was: then nothing is created and `other`'s hub id comes back instead,
   * for the connector to decide (adopt it with `link`, or call `hubId`). One round trip where
   * `find` of both and then `hubId` cost two in a row.
   *
   * @example
   * ```ts
   * const r = await ctx.aliases.hubIdUnless('appointment', bookingId, `gate:${requestKey}`);
   * if ('hubId' in r) return r.hubId; // known, or created now
   * // r.other: the gate request's provisional id, never linked to a booking yet?
   * ```
   */
  hubIdUnless(
    entity: EntityKind,
    vendorId: string,
    other: string,
  ): Promise<{ hubId: string } | { other: string }>;
  /** Make `vendorId` another name of `hubId`. Idempotent. */
  link(entity: EntityKind, vendorId: string, hubId: string): Promise<void>;
  /** Every vendor id known for a hub id, oldest first. */
  vendorIds(entity: EntityKind, hubId: string): Promise<string[]>;
}

/**
 * Remembers the last known state of vendor entities, per connector instance, for vendors whose
 * notifications do not say what changed (BookingBug sends the whole purchase; Clockwise.MD's
 * `remove` means no-show or cancellation depending on whether the patient had checked in).
 *
 * In `normalize`, writes (`set`, `delete`) are stored together with the notification's events, in
 * the same statement: a notification that fails or will be retried leaves no state change behind,
 * so a retry reads the state as it was before its first try. `get` sees the notification's own
 * writes and those of the notifications of the same ordering key normalized before it. Elsewhere
 * (pull, commands) writes are stored when the returned promise resolves.
 *
 * Values are JSON: declare the type you read with `type`, not `interface` (TypeScript gives an
 * interface no index signature, so `get<Seen>` of an `interface Seen` does not compile), with no
 * `undefined` fields (leave them out).
 *
 * @example
 * ```ts
 * type Seen = { status: string; updatedAt: string };
 * const seen = await ctx.state.get<Seen>(`seen:${subject}`);
 * const last = await ctx.state.get<{ bookings: string[] }>('purchase/42');
 * await ctx.state.set('purchase/42', { bookings: [...(last?.bookings ?? []), 'b7'] });
 * ```
 */
export interface StateStore {
  get<T extends JsonValue>(key: string): Promise<T | undefined>;
  set(key: string, value: JsonValue): Promise<void>;
  delete(key: string): Promise<void>;
}

/** What the hub passes to {@link ConnectorDefinition.normalize}. */
export interface NormalizeContext<Config> {
  /** The connector instance id from the config file (the events' `source`). */
  instanceId: string;
  /** The instance config, secrets resolved. */
  config: Config;
  http: VendorHttp;
  aliases: AliasStore;
  state: StateStore;
  logger: Logger;
  /** 1 on the first try of this notification's normalization. */
  attempt: number;
  /**
   * True on the last try the hub will make. A connector that enriches from a vendor API should then
   * emit what it has (marked `enrichment: 'failed'`) instead of throwing a transient error again.
   */
  finalAttempt: boolean;
  /** When the hub received the notification. */
  receivedAt: Date;
}

/**
 * One normalized event, as a connector produces it. The hub completes it into a CloudEvent
 * ({@link EventEnvelope}): it assigns `id` (stable across retries), `source`, `specversion`,
 * `datacontenttype` and the `connector` / `instance` / `vendortype` extensions, then validates it.
 */
export interface EventDraft {
  /** A normalized type, e.g. `appointment.created`. */
  type: string;
  /** `<entity>/<hub id>`, e.g. `appointment/3f0c...`: the ordering key for delivery. */
  subject: string;
  /**
   * When it happened at the vendor (RFC 3339, offset kept), or when the hub received it if the
   * vendor does not date the change. Not an order: the hub's current state of the entity is its last
   * event stored, so refuse (`ignore`) a notification older than what was applied.
   */
  time: string;
  data: JsonObject;
  /** The vendor's type; defaults to the notification's `type`. */
  vendorType?: string;
}

/**
 * What normalization produced: events, or a reason the notification maps to nothing (stored as
 * `ignored`, never dropped silently).
 */
export type NormalizeResult = { events: EventDraft[]; ignored?: undefined } | { events: []; ignored: string };

/** What the hub passes to {@link PullSpec.fetch}. */
export interface PullContext<Config> {
  instanceId: string;
  config: Config;
  http: VendorHttp;
  /**
   * Per-instance storage, kept as it is in the hub's database: what the vendor does not say (the
   * last page's item ids at a watermark, say). Never a secret such as an OAuth2 access token: keep
   * those in the process's memory (`clientCredentials`, client-credentials.ts, caches its tokens per instance and
   * credentials).
   */
  state: StateStore;
  logger: Logger;
}

/** One batch from a vendor's pull queue. */
export interface PullBatch {
  notifications: VendorNotification[];
  /**
   * Where to continue next time: stored by the hub with the batch, in the same transaction, and
   * passed to the next `fetch`. `null` resets it (the next `fetch` gets `null`); undefined leaves
   * the instance's cursor as it was (a queue that forgets on read needs none).
   */
  cursor?: string | null;
  /** True when the vendor has more right now: the hub calls `fetch` again at once. */
  more: boolean;
}

/**
 * How a connector pulls from a vendor queue. The hub calls `fetch`, stores the batch durably, and
 * only then calls again: a vendor that forgets a pulled notification never loses one.
 */
export interface PullSpec<Config> {
  /** Used when the instance config sets no interval. */
  defaultIntervalMs: number;
  fetch(ctx: PullContext<Config>, cursor: string | null): Promise<PullBatch>;
  /**
   * Why an instance with these settings cannot pull (its API credentials are missing, say), or
   * undefined when it can. Asked when an instance in `pull` or `both` mode is saved (the config
   * file's check, `POST /v1/instances`): a reason refuses it there, instead of every pull failing
   * with a warning once the hub runs.
   *
   * @example
   * ```ts
   * unavailable: (config) => (config.clientId ? undefined : 'pulling needs settings.clientId'),
   * ```
   */
  unavailable?(config: Config): string | undefined;
}

/**
 * Reconciliation for push mode: a vendor call the hub makes on a schedule so that pushes the
 * vendor failed to deliver are sent again (Docplanner's `POST /notifications/release`). The hub runs
 * it for instances in `push` mode only (a pulling instance drains the vendor's queue itself), one
 * process at a time per instance, and shows when it last ran on the instance.
 *
 * @example
 * ```ts
 * reconcile: {
 *   intervalMs: (config) => (config.clientId ? 3_600_000 : undefined),
 *   async run(ctx) {
 *     const res = await ctx.http.request({ method: 'POST', url: `${ctx.config.apiBase}/release` });
 *     if (res.status >= 500) throw ConnectorError.transient(`release answered ${res.status}`);
 *     return 'released';
 *   },
 * },
 * ```
 */
export interface ReconcileSpec<Config> {
  /**
   * Time between two runs for an instance with this config, in ms; undefined when reconciliation
   * does not apply to it (say, it has no API credentials, or the setting turns it off).
   */
  intervalMs(config: Config): number | undefined;
  /**
   * Runs once and returns a short summary for the record (e.g. `released 3`). Throws a
   * {@link ConnectorError} when it failed: `transient` with `retryAfterMs` is tried again after that
   * long, anything else at the next interval.
   */
  run(ctx: PullContext<Config>): Promise<string>;
}

/** The hub's decision on an approval request. */
export interface GateDecision {
  outcome: 'approve' | 'refuse';
  /** approved, refused, deadline, no_approvers, or an approver's reason text. */
  reason: string;
  /** A vendor-specific refusal code an approver asked for (Docplanner `error_code`). */
  vendorErrorCode?: number;
}

/** How a connector answers synchronous approval requests (gate notifications). */
export interface GateSpec<Config> {
  /** Turn the hub's decision into the vendor's expected HTTP answer. */
  respond(decision: GateDecision, config: Config): InboundResponse;
  /**
   * A key that a gate notification and the booking notification that follows it share (e.g. doctor,
   * address, start time and patient), so the hub can tell whether an approved request became a
   * booking. Return undefined for notifications that cannot be matched.
   */
  matchKey(notification: VendorNotification): string | undefined;
}

/** A vendor push request made from a normalized event (for simulators and round-trip tests). */
export interface EncodedNotification {
  /** The {@link PushRoute} name to call. */
  route: string;
  params?: Record<string, string>;
  /** Headers other than authentication (the simulator adds those). */
  headers?: Record<string, string>;
  body: JsonValue;
}

/**
 * A connector. Make one with `defineConnector()`.
 *
 * @example
 * ```ts
 * export default defineConnector({
 *   name: 'acme',
 *   version: '1.0.0',
 *   displayName: 'Acme Booking',
 *   configSchema: { type: 'object', required: ['apiKey'], properties: { apiKey: { type: 'string', 'x-secret': true } } },
 *   push: {
 *     routes: [{ name: 'default', path: '' }],
 *     authenticate(req, config) {
 *       if (!timingSafeEqualString(req.headers['x-api-key'], config.apiKey)) throw ConnectorError.auth('bad API key');
 *     },
 *     credentials: () => ({ headers: ['x-api-key'] }),
 *     parse(req) {
 *       const body = parseJsonBody(req);
 *       return [{ type: body.event, dedupeKey: body.id, payload: body }];
 *     },
 *   },
 *   async normalize(n, ctx) {
 *     if (n.type !== 'booking.created') return ignore(`no mapping for ${n.type}`);
 *     const id = await ctx.aliases.hubId('appointment', n.payload.booking.id);
 *     return emit({ type: 'appointment.created', subject: `appointment/${id}`, time: n.occurredAt, data: {...} });
 *   },
 *   encode(event) { return { route: 'default', body: {...} }; },
 * });
 * ```
 */
export interface ConnectorDefinition<Config = Record<string, unknown>> {
  /** Lowercase, `a-z0-9-`: the value of `connector:` in the config file. */
  name: string;
  version: string;
  displayName: string;
  /** JSON Schema of an instance's connector-specific settings (`settings:` in the config file). */
  configSchema: JsonSchema;
  /** Vendor event types this connector knows, each with the normalized types it can produce. */
  eventMap: readonly EventMapping[];
  push?: PushSpec<Config>;
  pull?: PullSpec<Config>;
  /** Push mode's scheduled catch-up call to the vendor, where the vendor offers one. */
  reconcile?: ReconcileSpec<Config>;
  normalize(notification: VendorNotification, ctx: NormalizeContext<Config>): Promise<NormalizeResult>;
  gate?: GateSpec<Config>;
  /**
   * Normalized event → the vendor push that would have produced it (simulators, the conformance
   * round trip). Required with {@link ConnectorDefinition.push} (`defineConnector` refuses a push
   * connector without it); a pull-only connector has no push to encode to and leaves it out. The
   * hub itself never calls it.
   */
  encode?(event: EventEnvelope, config: Config): EncodedNotification;
}

/** A row of a connector's mapping table (also rendered into its docs). */
export interface EventMapping {
  vendorType: string;
  /** Normalized types it can become; empty when it is stored as ignored. */
  normalizedTypes: readonly string[];
  note?: string;
}

/** A connector as the hub holds it: the definition, checked and frozen. */
export type Connector<Config = Record<string, unknown>> = Readonly<ConnectorDefinition<Config>>;

// ---------------------------------------------------------------------------------------------
// Commands: the "from the model" half. A downstream system sends a normalized command
// (docs/commands.md); the hub resolves the target's vendor ids and calls the connector's handler
// for that type, which calls the vendor through VendorHttp and says how it went.
// ---------------------------------------------------------------------------------------------

/** A command as a handler receives it (validated against its type's schema). */
export interface CommandRequest<T extends CommandType = CommandType> {
  /** The hub's command id: log it; the vendor's echo of the change is tied back to it. */
  id: string;
  type: T;
  data: CommandDataMap[T];
  /** `appointment/<hub id>`; absent for a command that creates its entity (`appointment.book`). */
  subject?: string;
}

/** What the hub passes to a {@link CommandHandler}. */
export interface CommandContext<Config> {
  /** The connector instance the target belongs to (or the one named by `appointment.book`). */
  instanceId: string;
  /** The instance config, secrets resolved. */
  config: Config;
  /** Every call made through it is recorded on the command (method, URL without query, status, time). */
  http: VendorHttp;
  /** The target's vendor ids at this instance from the alias table, oldest first (the last is the current one); empty for `appointment.book`. */
  vendorIds: readonly string[];
  /**
   * The target's last known normalized state (the data of its latest event), when the hub has one.
   * Before the vendor's first notification of an entity a command created through the hub (a
   * `slot.block`, an `appointment.book`) has arrived, that command's data instead: what the vendor
   * was asked to make, in the same vocabulary (`start`, `practitioner`, `location`,
   * `organization`…; no `status`), so a move, cancel or unblock right after it finds its place.
   */
  current?: JsonObject;
  /**
   * Per-instance storage, kept as it is in the hub's database: what the vendor does not say (a
   * moved booking's new place, say). Never a secret such as an access token: keep those in the
   * process's memory.
   */
  state: StateStore;
  /**
   * Storage of this command alone, kept as long as the command is and deleted with it by the
   * retention purge (`commands.retention`): what a handler must remember between tries of one
   * command, such as a record that a write the vendor cannot deduplicate went out. (In `state`
   * such a record would outlive the command: one row per command, for good.)
   *
   * @example
   * ```ts
   * if ((await ctx.commandState.get('sent')) !== undefined) return { outcome: 'permanent', message: 'may have been booked' };
   * await ctx.commandState.set('sent', true);
   * ```
   */
  commandState: StateStore;
  logger: Logger;
  /** 1 on the first try; a retry after a crash or a transient failure counts up. */
  attempt: number;
}

/** The vendor's answer that decided an outcome, kept on the command and passed on in `command.failed`. */
export interface VendorAnswer {
  status: number;
  body: JsonValue | string;
}

/**
 * How a command handler's call went.
 * - `done`: the vendor did it, or says it was already so (`alreadyDone`: a repeated call after a
 *   crash). `vendorIds`: new vendor ids of the target (a Docplanner move's new booking id, a new
 *   booking's id), aliased by the hub to the target's hub id (a new hub id for `appointment.book`).
 *   `unchanged`: done, and this command changed nothing at the vendor, so no notification of it
 *   will come (the target was already in the requested state before the call: an arrival marked
 *   on an appointment the hub knows as arrived). The hub then takes no echo for the command
 *   (docs/events.md, "Echoes of commands"); matched by type alone, such a command took the next
 *   notification of its type within the echo window, staff's own change, which a system skipping
 *   its echoes then lost. Not `alreadyDone`, which a repeat after a lost answer also says while
 *   the first call's notification may still come. Say it only when sure: a wrong `unchanged`
 *   leaves the echo unmarked (the sender sees its own change once more), a missing one lets the
 *   command take someone else's change.
 * - `transient`: try again later (5xx, 429, timeout); `retryAfterMs` is honoured when given, and
 *   is read as the vendor's "do not call me before then": the worker process starts none of the
 *   instance's other commands until it passes (cut to `commands.maxRetryAfter`). A wait of this
 *   command's own (a booking that may still land) leaves it out and goes on the retry schedule.
 * - `permanent`: the vendor refused (4xx); retrying will not help. The vendor's answer is passed through.
 *
 * @example
 * ```ts
 * if (res.status === 409) return { outcome: 'permanent', message: 'the slot is taken', vendor: { status: 409, body: res.body } };
 * ```
 */
export type CommandResult =
  | {
      outcome: 'done';
      vendorIds?: string[];
      alreadyDone?: boolean;
      unchanged?: boolean;
      vendor?: VendorAnswer;
    }
  | { outcome: 'transient'; message: string; retryAfterMs?: number; vendor?: VendorAnswer }
  | { outcome: 'permanent'; message: string; vendor?: VendorAnswer };

/**
 * One command type's handler. It must be safe to call again for the same command (the hub runs
 * commands at least once): treat "already in the requested state" as done, and check before
 * repeating a call the vendor cannot deduplicate.
 */
export type CommandHandler<Config, T extends CommandType = CommandType> = {
  // Method syntax: parameters compare bivariantly, as for `normalize`, so a connector typed with its
  // own Config still fits where the hub holds `Connector<Record<string, unknown>>`.
  handle(command: CommandRequest<T>, ctx: CommandContext<Config>): Promise<CommandResult>;
}['handle'];

/** The commands a connector supports: one handler per supported type; a missing type is refused at once. */
export type CommandSpec<Config> = { readonly [T in CommandType]?: CommandHandler<Config, T> };

/** Adds the `commands` part to the contract (kept in this block: see {@link CommandSpec}). */
export interface ConnectorDefinition<Config = Record<string, unknown>> {
  /**
   * The commands the connector can carry out at its vendor (docs/commands.md). Absent: none.
   *
   * @example
   * ```ts
   * commands: { 'appointment.cancel': async (command, ctx) => { ...; return { outcome: 'done' }; } },
   * ```
   */
  commands?: CommandSpec<Config>;
  /**
   * Why this instance cannot carry out commands (its vendor API settings are missing), or
   * undefined when it can. Asked when a command is accepted: a reason refuses the command at once
   * (`SY_COMMAND_UNSUPPORTED`, with the reason), so nothing is queued that could only fail.
   *
   * @example
   * ```ts
   * commandsUnavailable: (config) => (config.adminApi ? undefined : 'settings.adminApi is not configured'),
   * ```
   */
  commandsUnavailable?(config: Config): string | undefined;
  /**
   * Why this instance cannot carry out this command as it is sent (data its vendor has no place
   * for), or undefined when it can. Asked after the command's schema check, when it is accepted and
   * when a failed one is retried: a reason refuses it at once (`SY_COMMAND_UNSUPPORTED`, with the
   * reason), so nothing is queued that could only fail. The handler is still the last word (a
   * command queued before the connector refused such data reaches it).
   *
   * @example
   * ```ts
   * commandUnsupported: (command) =>
   *   command.type === 'appointment.update' && command.data.comment !== undefined ? 'no writable comment' : undefined,
   * ```
   */
  commandUnsupported?(command: CommandData, config: Config): string | undefined;
}

/** A command's type and data (validated against its schema), before it has an id or a target. */
export type CommandData = { [T in CommandType]: { type: T; data: CommandDataMap[T] } }[CommandType];
