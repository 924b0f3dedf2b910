/* Generated from packages/core/schemas/envelope.schema.json by pnpm generate. Do not edit. */

/**
 * A normalized event: a CloudEvents 1.0 structured-mode JSON object with Switchyard's extension attributes. `data` is validated against the schema of the event's `type`.
 */
export interface EventEnvelope {
  specversion: "1.0";
  /**
   * The hub's event id: stable across retries and replays, and sent as the `webhook-id` header. Deduplicate on it.
   */
  id: string;
  /**
   * The normalized event type, e.g. appointment.created.
   */
  type: string;
  /**
   * The connector instance the event came from (its id from the config file).
   */
  source: string;
  /**
   * The entity the event is about, as `<entity>/<hub id>`. Deliveries to one subscription are ordered per subject.
   */
  subject: string;
  /**
   * When it happened, by the vendor's clock (RFC 3339, the vendor's offset kept); when the vendor does not date the change, when the hub received it (a BookingBug legacy push, a Clockwise.MD webhook). Times from different clocks do not order an entity's events: `sequence` does.
   */
  time: string;
  datacontenttype: "application/json";
  /**
   * Optional in CloudEvents and not sent by the hub: `type` names the schema `data` conforms to (`https://switchyard.dev/schemas/events/<type>.json`, in the event catalog).
   */
  dataschema?: string;
  /**
   * The normalized entity snapshot; its schema depends on `type` (see the event catalog).
   */
  data: {
    [k: string]: unknown;
  };
  /**
   * Extension: the connector's name, e.g. docplanner.
   */
  connector: string;
  /**
   * Extension: the connector instance id (same as source).
   */
  instance: string;
  /**
   * Extension: the vendor's own name for what happened, e.g. booking-moved.
   */
  vendortype: string;
  /**
   * Extension (CloudEvents sequence): the hub's position of this event in its feed, zero-padded to 19 digits so that comparing two as strings orders them; as a number, a feed cursor. Every delivery and feed event has it; a test event and an approver's approval request, which are not in the feed, do not.
   */
  sequence?: string;
}
