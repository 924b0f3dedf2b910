/**
 * The body of a delivery to a FHIR subscription, built by the deliver worker when it sends the
 * delivery (docs/fhir.md, "Delivery formats", says why then and not at fan-out).
 */
import type { Resource } from '@medplum/fhirtypes';
import type { EventEnvelope } from '@switchyard/core';
import { toFhir } from './map.ts';
import { notificationBundle } from './notification.ts';
import { validateFhir } from './validate.ts';

/** The content type of every FHIR delivery (FHIR R4's JSON mime type). */
export const FHIR_CONTENT_TYPE = 'application/fhir+json';

/** The longest validator message kept on a dead delivery. */
const MAX_ERROR_CHARS = 2000;

/** One delivery to render. */
export interface FhirDeliveryInput {
  format: 'fhir-r4' | 'fhir-r4-notification';
  /** The stored event (its envelope). */
  event: EventEnvelope;
  subscriptionId: string;
  deliveryId: string;
  /** When the delivery was created (the fan-out): the notification Bundle's timestamp. */
  createdAt: Date;
  /** fhir-r4-notification: the delivery's event number. */
  notificationNumber: string | null;
  /** fhir-r4-notification: the subscription's events so far. */
  eventsSinceSubscriptionStart: string;
}

/**
 * - `body`: the JSON to POST;
 * - `invalid`: the resource fails validation or cannot be built: the delivery goes dead
 *   with `error`, nothing is sent;
 * - `none`: the event has no FHIR meaning (a replay of a catalog document): nothing to send.
 */
export type FhirDelivery =
  | { kind: 'body'; body: string }
  | { kind: 'invalid'; error: string }
  | { kind: 'none'; reason: string };

/** The resources of a mapping result: a Bundle's entries, or the one resource. */
function resourcesOf(resource: Resource): Resource[] {
  if (resource.resourceType !== 'Bundle') return [resource];
  return (resource.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
}

function problemsText(what: string, problems: ReturnType<typeof validateFhir>): string {
  const text = `${what} failed FHIR R4 validation: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`;
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

/** An event's validated FHIR rendering, or why it has none: the same for every delivery of it. */
type Checked =
  | { kind: 'resource'; mapped: Resource; resources: [Resource, ...Resource[]] }
  | Exclude<FhirDelivery, { kind: 'body' }>;

/**
 * Checked renderings by event id, newest last. An event is immutable and `toFhir` a pure function
 * of it, so each of its deliveries (one per FHIR subscription, and every retry) would map and
 * validate the same resource again; validating is most of a FHIR delivery's CPU when the
 * resource's shape is new (docs/fhir.md). Bounded (the deliveries of one event are claimed close together, as its fan-out made them at
 * once); a process started after a mapping fix starts empty, so a replay then sends the fixed
 * resource.
 */
const checked = new Map<string, Checked>();
const CHECKED_MAX = 500;

function check(event: EventEnvelope): Checked {
  const known = checked.get(event.id);
  if (known) return known;
  const result = checkEvent(event);
  if (checked.size >= CHECKED_MAX) checked.delete(checked.keys().next().value!);
  checked.set(event.id, result);
  return result;
}

function checkEvent(event: EventEnvelope): Checked {
  let mapped: Resource;
  try {
    const result = toFhir(event);
    if (!result) return { kind: 'none', reason: `${event.type} has no FHIR meaning for this event` };
    mapped = result.resource as Resource;
  } catch (error) {
    return { kind: 'invalid', error: `the FHIR mapping failed: ${(error as Error).message}` };
  }
  const [focus, ...rest] = resourcesOf(mapped);
  if (!focus) return { kind: 'invalid', error: `${event.type} mapped to an empty Bundle` };
  const problems = validateFhir(mapped);
  if (problems.length > 0) return { kind: 'invalid', error: problemsText(mapped.resourceType, problems) };
  return { kind: 'resource', mapped, resources: [focus, ...rest] };
}

/**
 * Renders one delivery: the event's FHIR resource (`fhir-r4`) or its Backport notification Bundle
 * (`fhir-r4-notification`); the resource is validated by `validateFhir` before anything is sent,
 * once per event (the outcome is kept by event id for its other deliveries and retries).
 *
 * @example
 * ```ts
 * const r = renderFhirDelivery({ format: 'fhir-r4', event, subscriptionId: 'ehr', deliveryId,
 *   createdAt: new Date(), notificationNumber: null, eventsSinceSubscriptionStart: '0' });
 * if (r.kind === 'body') await post(r.body, FHIR_CONTENT_TYPE);
 * ```
 */
export function renderFhirDelivery(input: FhirDeliveryInput): FhirDelivery {
  const rendered = check(input.event);
  if (rendered.kind !== 'resource') return rendered;
  // fhir-r4: the resource, or the Bundle when the event touches several.
  if (input.format === 'fhir-r4') return { kind: 'body', body: JSON.stringify(rendered.mapped) };

  if (input.notificationNumber === null) {
    // The claim numbers every delivery of a notification subscription (deliveries/store.ts); one
    // without a number is never sent as if it had one.
    return {
      kind: 'invalid',
      error: 'the delivery has no event number',
    };
  }
  const bundle = notificationBundle({
    subscriptionId: input.subscriptionId,
    bundleId: input.deliveryId,
    statusId: input.event.id,
    timestamp: input.createdAt.toISOString(),
    eventNumber: input.notificationNumber,
    eventsSinceSubscriptionStart: input.eventsSinceSubscriptionStart,
    resources: rendered.resources,
  });
  // The Bundle around the validated resource is not validated again here: its shape is fixed by
  // notificationBundle (checked by both third-party validators in the tests for every connector
  // fixture), and validating it would about double the CPU of every notification (docs/fhir.md).
  return { kind: 'body', body: JSON.stringify(bundle) };
}
