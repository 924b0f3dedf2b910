/**
 * A minimal Subscriptions R5 Backport (FHIR R4) notification receiver, written from the guide
 * (http://hl7.org/fhir/uv/subscriptions-backport/, STU 1.1) and its published R4 example
 * notifications, not from the hub's code:
 * - "R4 Notification: Full Resource" (Bundle-r4-notification-full-resource),
 * - "R4 Notification: Id Only" (Bundle-r4-notification-id-only),
 * - "R4 Notification: Multiple Resources" (Bundle-r4-notification-multi-resource),
 * (http://hl7.org/fhir/uv/subscriptions-backport/Bundle-r4-notification-full-resource.html and
 * siblings; their source is input/fsh/BackportNotificationR4.fsh in HL7/fhir-subscription-backport-ig).
 *
 * It does what a receiving client does with a notification: reads the status (the first entry, a
 * `Parameters` with the backport-subscription-status-r4 profile), checks the notification type and
 * the event numbers against what it has seen (a gap means missed events: the guide's error
 * handling), and resolves each event's focus to a resource in the Bundle. Test-only.
 */
import type { Bundle, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';

const STATUS_PROFILE =
  'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4';

/** One notification event the receiver accepted. */
export interface ReceivedEvent {
  subscription: string;
  eventNumber: number;
  /** The focus resource, resolved within the Bundle (full-resource payloads). */
  focus: Resource | undefined;
  /** Additional context resources, resolved within the Bundle. */
  additional: Resource[];
}

/** What a receiver finds wrong with a notification (it would refuse it). */
export class NotificationRejected extends Error {}

function param(status: Parameters, name: string): ParametersParameter[] {
  return (status.parameter ?? []).filter((p) => p.name === name);
}

function one(status: Parameters, name: string): ParametersParameter {
  const found = param(status, name);
  if (found.length !== 1)
    throw new NotificationRejected(`status needs exactly one ${name}, has ${found.length}`);
  return found[0]!;
}

/**
 * A receiver of one endpoint: accepts notification Bundles in order and remembers, per
 * subscription, the last event number and events-since-subscription-start.
 *
 * @example
 * ```ts
 * const receiver = new BackportReceiver();
 * const events = receiver.accept(JSON.parse(body)); // throws NotificationRejected when not valid
 * receiver.missing('Subscription/ehr'); // [] when no event number was skipped
 * ```
 */
export class BackportReceiver {
  readonly #seen = new Map<string, Set<number>>();
  readonly #since = new Map<string, number>();

  /** Reads one notification; returns its events (none for handshake and heartbeat). */
  accept(body: unknown): ReceivedEvent[] {
    const bundle = body as Bundle;
    if (bundle?.resourceType !== 'Bundle') throw new NotificationRejected('not a Bundle');
    if (bundle.type !== 'history')
      throw new NotificationRejected(`Bundle.type is ${bundle.type}, not history`);
    const entries = bundle.entry ?? [];
    const status = entries[0]?.resource as Parameters | undefined;
    // backport-notification-bundle-r4-1: a Parameters as the first entry.
    if (status?.resourceType !== 'Parameters')
      throw new NotificationRejected('first entry is not a Parameters');
    if (!(status.meta?.profile ?? []).includes(STATUS_PROFILE)) {
      throw new NotificationRejected('the status does not claim backport-subscription-status-r4');
    }
    for (const e of entries) {
      // bdl-3 / bdl-4: every entry of a history Bundle has a request and a response.
      if (!e.request?.method || !e.request.url || !e.response?.status) {
        throw new NotificationRejected(`entry ${e.fullUrl ?? '?'} lacks request or response`);
      }
    }
    const subscription = one(status, 'subscription').valueReference?.reference;
    if (!subscription) throw new NotificationRejected('subscription has no reference');
    const state = one(status, 'status').valueCode;
    if (!state) throw new NotificationRejected('status has no code');
    const type = one(status, 'type').valueCode;
    const sinceText = param(status, 'events-since-subscription-start')[0]?.valueString;
    const since = sinceText === undefined ? undefined : Number(sinceText);
    if (since !== undefined && !Number.isInteger(since))
      throw new NotificationRejected('events-since-subscription-start is not a number');
    if (since !== undefined)
      this.#since.set(subscription, Math.max(since, this.#since.get(subscription) ?? 0));
    if (type === 'handshake' || type === 'heartbeat') return [];
    if (type !== 'event-notification') throw new NotificationRejected(`unexpected notification type ${type}`);

    const byUrl = new Map(entries.slice(1).map((e) => [e.fullUrl, e.resource]));
    const seen = this.#seen.get(subscription) ?? new Set<number>();
    this.#seen.set(subscription, seen);
    const events = param(status, 'notification-event');
    if (events.length === 0)
      throw new NotificationRejected('an event-notification without notification-event');
    return events.map((event) => {
      const parts = event.part ?? [];
      const numberText = parts.find((p) => p.name === 'event-number')?.valueString;
      const eventNumber = Number(numberText);
      if (!numberText || !Number.isInteger(eventNumber) || eventNumber < 1) {
        throw new NotificationRejected(`event-number ${numberText} is not a positive integer`);
      }
      if (since !== undefined && eventNumber > since) {
        throw new NotificationRejected(
          `event-number ${eventNumber} is beyond events-since-subscription-start ${since}`,
        );
      }
      seen.add(eventNumber);
      const resolve = (reference: string | undefined): Resource | undefined => {
        if (!reference) return undefined;
        const resource = byUrl.get(reference);
        if (!resource) throw new NotificationRejected(`reference ${reference} is not in the Bundle`);
        return resource;
      };
      return {
        subscription,
        eventNumber,
        focus: resolve(parts.find((p) => p.name === 'focus')?.valueReference?.reference),
        additional: parts
          .filter((p) => p.name === 'additional-context')
          .map((p) => resolve(p.valueReference?.reference))
          .filter((r): r is Resource => r !== undefined),
      };
    });
  }

  /** Event numbers up to the latest events-since-subscription-start not received (missed events). */
  missing(subscription: string): number[] {
    const seen = this.#seen.get(subscription) ?? new Set<number>();
    const since = this.#since.get(subscription) ?? 0;
    const out: number[] = [];
    for (let n = 1; n <= since; n++) if (!seen.has(n)) out.push(n);
    return out;
  }
}
