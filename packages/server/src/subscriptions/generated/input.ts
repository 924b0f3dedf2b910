/* Generated from packages/server/src/subscriptions/schema.ts by pnpm generate. Do not edit. */

export interface SubscriptionCreate {
  /**
   * Default: a random UUID. 1 to 100 letters, digits, `_`, `.`, `-`.
   */
  id?: string;
  /**
   * webhook: the hub POSTs each event to `url`; pull: the subscriber reads `/v1/subscriptions/{id}/events`.
   */
  kind?: "webhook" | "pull";
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
  eventTypes?: string[];
  /**
   * Instance ids whose events to deliver; null or absent: every instance.
   *
   * @maxItems 100
   */
  sources?: string[] | null;
  /**
   * Signing secrets (`whsec_…`), newest first (two during a rotation: the hub signs with each). Absent: the hub generates one (the admin API returns it once).
   *
   * @minItems 1
   * @maxItems 5
   *
   * Items: A Standard Webhooks signing secret, `whsec_` + standard base64 of 24 to 64 bytes.
   */
  secrets?: string[];
  /**
   * The body format: a structured-mode CloudEvent, or plain JSON of the same object.
   */
  contentType?: "application/cloudevents+json" | "application/json";
  /**
   * What each delivery carries: `cloudevents` (the event), `fhir-r4` (the FHIR R4 resource of the event's entity, `application/fhir+json`) or `fhir-r4-notification` (a FHIR Subscriptions Backport notification Bundle). Webhooks only; see docs/fhir.md.
   */
  format?: "cloudevents" | "fhir-r4" | "fhir-r4-notification";
  /**
   * Request timeout for one delivery attempt, ms (100 to 120000).
   */
  timeoutMs?: number;
  /**
   * Ms to wait before each attempt (its length = attempts; ±20% jitter is added); the first attempt goes as soon as the event is stored whatever its entry says (write 0). Null: the hub's schedule.
   *
   * @minItems 1
   * @maxItems 100
   */
  retryScheduleMs?: number[] | null;
  /**
   * Spreads deliveries to this subscriber over time.
   */
  rateLimit?: {
    /**
     * Deliveries per second at most.
     */
    perSecond: number;
  } | null;
  /**
   * hold: a dead delivery holds back later events of the same subject until replayed or skipped; release: later events go on.
   */
  ordering?: "hold" | "release";
  /**
   * Makes this webhook an approver of synchronous approval requests (a `cloudevents` one: the requests are CloudEvents).
   */
  approver?: boolean;
  /**
   * Which approval requests an approver decides; null: every one.
   */
  approverFilters?: {
    /**
     * Approval request types to decide.
     *
     * @minItems 1
     * @maxItems 100
     */
    events?: string[];
    /**
     * The same as `events`.
     *
     * @minItems 1
     * @maxItems 100
     */
    eventTypes?: string[];
    /**
     * Instance ids whose requests to decide; default: every instance.
     *
     * @maxItems 100
     */
    sources?: string[];
  } | null;
  /**
   * Allow a url resolving to private, loopback or link-local addresses (refused by default against SSRF).
   */
  allowPrivateAddresses?: boolean;
  /**
   * Disable the endpoint after this many dead deliveries in a row; null: the hub's default.
   */
  disableAfterConsecutiveDead?: number | null;
}

export interface SubscriptionUpdate {
  /**
   * webhook: the hub POSTs each event to `url`; pull: the subscriber reads `/v1/subscriptions/{id}/events`.
   */
  kind?: "webhook" | "pull";
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
  eventTypes?: string[];
  /**
   * Instance ids whose events to deliver; null or absent: every instance.
   *
   * @maxItems 100
   */
  sources?: string[] | null;
  /**
   * Signing secrets (`whsec_…`), newest first (two during a rotation: the hub signs with each). Absent: the hub generates one (the admin API returns it once).
   *
   * @minItems 1
   * @maxItems 5
   *
   * Items: A Standard Webhooks signing secret, `whsec_` + standard base64 of 24 to 64 bytes.
   */
  secrets?: string[];
  /**
   * The body format: a structured-mode CloudEvent, or plain JSON of the same object.
   */
  contentType?: "application/cloudevents+json" | "application/json";
  /**
   * What each delivery carries: `cloudevents` (the event), `fhir-r4` (the FHIR R4 resource of the event's entity, `application/fhir+json`) or `fhir-r4-notification` (a FHIR Subscriptions Backport notification Bundle). Webhooks only; see docs/fhir.md.
   */
  format?: "cloudevents" | "fhir-r4" | "fhir-r4-notification";
  /**
   * Request timeout for one delivery attempt, ms (100 to 120000).
   */
  timeoutMs?: number;
  /**
   * Ms to wait before each attempt (its length = attempts; ±20% jitter is added); the first attempt goes as soon as the event is stored whatever its entry says (write 0). Null: the hub's schedule.
   *
   * @minItems 1
   * @maxItems 100
   */
  retryScheduleMs?: number[] | null;
  /**
   * Spreads deliveries to this subscriber over time.
   */
  rateLimit?: {
    /**
     * Deliveries per second at most.
     */
    perSecond: number;
  } | null;
  /**
   * hold: a dead delivery holds back later events of the same subject until replayed or skipped; release: later events go on.
   */
  ordering?: "hold" | "release";
  /**
   * Makes this webhook an approver of synchronous approval requests (a `cloudevents` one: the requests are CloudEvents).
   */
  approver?: boolean;
  /**
   * Which approval requests an approver decides; null: every one.
   */
  approverFilters?: {
    /**
     * Approval request types to decide.
     *
     * @minItems 1
     * @maxItems 100
     */
    events?: string[];
    /**
     * The same as `events`.
     *
     * @minItems 1
     * @maxItems 100
     */
    eventTypes?: string[];
    /**
     * Instance ids whose requests to decide; default: every instance.
     *
     * @maxItems 100
     */
    sources?: string[];
  } | null;
  /**
   * Allow a url resolving to private, loopback or link-local addresses (refused by default against SSRF).
   */
  allowPrivateAddresses?: boolean;
  /**
   * Disable the endpoint after this many dead deliveries in a row; null: the hub's default.
   */
  disableAfterConsecutiveDead?: number | null;
}

export interface Subscription {
  id: string;
  /**
   * webhook: the hub POSTs each event to `url`; pull: the subscriber reads `/v1/subscriptions/{id}/events`.
   */
  kind: "webhook" | "pull";
  url: string | null;
  eventTypes: string[];
  sources: string[] | null;
  /**
   * Hints of the signing secrets; never the secrets.
   */
  secrets: {
    secretHint: string;
    createdAt: string;
    expiresAt: string | null;
    /**
     * Declared in the configuration file: rotate it there
     */
    fromFile: boolean;
  }[];
  /**
   * The body format: a structured-mode CloudEvent, or plain JSON of the same object.
   */
  contentType: "application/cloudevents+json" | "application/json";
  /**
   * What each delivery carries: `cloudevents` (the event), `fhir-r4` (the FHIR R4 resource of the event's entity, `application/fhir+json`) or `fhir-r4-notification` (a FHIR Subscriptions Backport notification Bundle). Webhooks only; see docs/fhir.md.
   */
  format: "cloudevents" | "fhir-r4" | "fhir-r4-notification";
  timeoutMs: number;
  retryScheduleMs: number[] | null;
  rateLimit: {
    [k: string]: unknown;
  } | null;
  /**
   * hold: a dead delivery holds back later events of the same subject until replayed or skipped; release: later events go on.
   */
  ordering: "hold" | "release";
  /**
   * Makes this webhook an approver of synchronous approval requests (a `cloudevents` one: the requests are CloudEvents).
   */
  approver: boolean;
  approverFilters: {
    [k: string]: unknown;
  } | null;
  /**
   * Allow a url resolving to private, loopback or link-local addresses (refused by default against SSRF).
   */
  allowPrivateAddresses: boolean;
  disableAfterConsecutiveDead: number | null;
  consecutiveDead: number;
  disabledAt: Date | null;
  disabledReason: string | null;
  managedBy: "file" | "api";
  createdAt: Date;
  updatedAt: Date;
}
