/**
 * Subscriptions R5 Backport (R4) notification Bundles, for `format: fhir-r4-notification`.
 *
 * Written from HL7's "Subscriptions R5 Backport" implementation guide (STU 1.1,
 * http://hl7.org/fhir/uv/subscriptions-backport/), its R4 profiles
 * `backport-subscription-notification-r4` (a `history` Bundle whose first entry is the status) and
 * `backport-subscription-status-r4` (the R5 SubscriptionStatus as a `Parameters`), following its
 * published example "R4 Notification: Full Resource"
 * (http://hl7.org/fhir/uv/subscriptions-backport/Bundle-r4-notification-full-resource.html):
 *
 * - entry[0]: the status `Parameters` (subscription, topic, status `active`, type
 *   `event-notification`, events-since-subscription-start, one notification-event with event-number,
 *   timestamp and focus), with the request of a `$status` read, as the guide fills it to satisfy
 *   the history Bundle's bdl-3/bdl-4;
 * - entry[1..]: the full resource(s), the focus first, each with a PUT request (the entity's current
 *   state replaces the receiver's copy) and a 200 response.
 */
import type { Bundle, BundleEntry, Parameters, Resource } from '@medplum/fhirtypes';

/** The Backport IG's profile URLs, as the guide publishes them. */
export const BACKPORT_NOTIFICATION_PROFILE =
  'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4';
export const BACKPORT_STATUS_PROFILE =
  'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4';

/**
 * The topic every Switchyard notification names: "the hub's normalized events, as FHIR". The
 * subscription's own filter (event types, sources) narrows it; the event type is each resource's
 * `meta.tag`.
 */
export const SWITCHYARD_TOPIC = 'https://switchyard.dev/fhir/SubscriptionTopic/events';

/** What one notification is about. */
export interface NotificationInput {
  /** The hub subscription id; referenced as `Subscription/{id}`. */
  subscriptionId: string;
  /** The Bundle's id (the delivery id: one Bundle per delivery, the same on every retry). */
  bundleId: string;
  /** The status entry's id: a UUID (the event id: the same for every delivery of the event). */
  statusId: string;
  /** When the notification was generated (the fan-out), an instant. */
  timestamp: string;
  /** This event's number in the subscription (gapless, from 1). */
  eventNumber: string;
  /** Events numbered for the subscription so far (at least `eventNumber`). */
  eventsSinceSubscriptionStart: string;
  /** The resources: the focus (the event's entity) first, then any other the event touches. */
  resources: readonly [Resource, ...Resource[]];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An absolute `fullUrl` for a resource the hub has no RESTful address for in the Bundle. */
function fullUrlOf(resource: Resource): string {
  const id = resource.id ?? '';
  return UUID.test(id) ? `urn:uuid:${id}` : `urn:switchyard:${resource.resourceType}:${id}`;
}

/**
 * The notification Bundle for one event.
 *
 * @example
 * ```ts
 * const bundle = notificationBundle({
 *   subscriptionId: 'ehr', bundleId: delivery.id, statusId: event.id, timestamp: new Date().toISOString(),
 *   eventNumber: '7', eventsSinceSubscriptionStart: '7', resources: [appointment],
 * });
 * bundle.type; // 'history'
 * bundle.entry?.[0]?.resource?.resourceType; // 'Parameters'
 * ```
 */
export function notificationBundle(input: NotificationInput): Bundle {
  const [focus] = input.resources;
  const focusUrl = fullUrlOf(focus);
  const event: Parameters['parameter'] = [
    { name: 'event-number', valueString: input.eventNumber },
    ...(focus.meta?.lastUpdated ? [{ name: 'timestamp', valueInstant: focus.meta.lastUpdated }] : []),
    { name: 'focus', valueReference: { reference: focusUrl } },
    ...input.resources
      .slice(1)
      .map((r) => ({ name: 'additional-context', valueReference: { reference: fullUrlOf(r) } })),
  ];
  const entries: BundleEntry[] = input.resources.map((resource) => ({
    fullUrl: fullUrlOf(resource),
    resource,
    request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
    response: { status: '200' },
  }));
  return historyBundle(input, 'event-notification', [{ name: 'notification-event', part: event }], entries);
}

/**
 * The history Bundle of a notification: the status `Parameters` first (subscription, topic, status
 * `active`, the notification type, events-since-subscription-start, then `statusParameters`), with
 * the request of a `$status` read, then `entries`.
 */
function historyBundle(
  input: Omit<NotificationInput, 'eventNumber' | 'resources'>,
  type: 'event-notification' | 'heartbeat',
  statusParameters: NonNullable<Parameters['parameter']>,
  entries: BundleEntry[],
): Bundle {
  const status: Parameters = {
    resourceType: 'Parameters',
    id: input.statusId,
    meta: { profile: [BACKPORT_STATUS_PROFILE] },
    parameter: [
      { name: 'subscription', valueReference: { reference: `Subscription/${input.subscriptionId}` } },
      { name: 'topic', valueCanonical: SWITCHYARD_TOPIC },
      { name: 'status', valueCode: 'active' },
      { name: 'type', valueCode: type },
      { name: 'events-since-subscription-start', valueString: input.eventsSinceSubscriptionStart },
      ...statusParameters,
    ],
  };
  return {
    resourceType: 'Bundle',
    id: input.bundleId,
    meta: { profile: [BACKPORT_NOTIFICATION_PROFILE] },
    type: 'history',
    timestamp: input.timestamp,
    entry: [
      {
        fullUrl: `urn:uuid:${input.statusId}`,
        resource: status,
        request: { method: 'GET', url: `Subscription/${input.subscriptionId}/$status` },
        response: { status: '200' },
      },
      ...entries,
    ],
  };
}

/** What a heartbeat notification says: no event, only the subscription's status. */
export type HeartbeatInput = Omit<NotificationInput, 'eventNumber' | 'resources'>;

/**
 * A `heartbeat` notification Bundle: the Backport IG's way to show a subscriber its channel works
 * without an event (notification type `heartbeat`, no notification-event, no resource; see the
 * guide's "Heartbeat" notification shape). The subscription test of a `fhir-r4-notification`
 * subscription sends it: an event-notification would take an event number the subscriber counts
 * to find missed notifications.
 *
 * @example
 * ```ts
 * const bundle = heartbeatBundle({ subscriptionId: 'ehr', bundleId: id, statusId: id,
 *   timestamp: new Date().toISOString(), eventsSinceSubscriptionStart: '7' });
 * bundle.entry?.length; // 1
 * ```
 */
export function heartbeatBundle(input: HeartbeatInput): Bundle {
  return historyBundle(input, 'heartbeat', [], []);
}
