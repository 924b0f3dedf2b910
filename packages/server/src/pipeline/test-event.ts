/**
 * What a subscription's test (`POST /v1/subscriptions/{id}/test`, `switchyard subscriptions test`)
 * sends: a body the subscriber would accept from a real delivery, in the subscription's format.
 * Nothing is stored; the event id is fresh each time.
 */
import {
  type EventEnvelope,
  eventSchemaIds,
  getSchemas,
  isNormalizedEventType,
  type JsonObject,
} from '@switchyard/core';
import { invalid } from '../admin/errors.ts';
import { heartbeatBundle } from '../fhir/notification.ts';
import { FHIR_CONTENT_TYPE, renderFhirDelivery } from '../fhir/render.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';
import { TEST_EVENT_TYPE } from '../subscriptions/schema.ts';

/** The type a `fhir-r4` subscription's test sends when none is asked (`hub.test` has no FHIR meaning). */
const FHIR_TEST_EVENT_TYPE = 'appointment.created';

/** The first example of a type's schema (the event catalog's, valid against the schema). */
function catalogExample(type: keyof typeof eventSchemaIds): EventEnvelope {
  const schema = getSchemas().find((s) => s.$id === eventSchemaIds[type]);
  const example = (schema?.examples as EventEnvelope[] | undefined)?.[0];
  if (!example) throw new Error(`the schema of ${type} has no example`);
  return example;
}

/**
 * The test event of a type. `hub.test` is the catalog's test event (subject `hub/test`,
 * `data.message` saying who asked); another catalog type carries the catalog's example data and
 * subject for it, so that it is valid against the schema the subscriber validates that type with
 * (a `{ message }` in an appointment.created failed it). Either way source, connector and instance
 * are `switchyard` and vendortype `test`.
 */
function testEnvelope(id: string, type: string, askedFrom: string): EventEnvelope {
  const envelope = {
    specversion: '1.0' as const,
    id,
    type,
    source: 'switchyard',
    subject: 'hub/test',
    time: new Date().toISOString(),
    datacontenttype: 'application/json' as const,
    data: { message: `Test event sent from ${askedFrom}.` } as JsonObject,
    connector: 'switchyard',
    instance: 'switchyard',
    vendortype: 'test',
  };
  if (type === TEST_EVENT_TYPE) return envelope as EventEnvelope;
  if (!isNormalizedEventType(type)) {
    throw invalid(`${JSON.stringify(type)} is not an event type of the catalog (docs/events.md)`, { type });
  }
  const example = catalogExample(type);
  return { ...envelope, subject: example.subject, data: example.data } as EventEnvelope;
}

/**
 * The body and content type of a subscription's test: the CloudEvent of {@link testEnvelope}; for a
 * `fhir-r4` subscription the FHIR resource of that event (by default `appointment.created`'s: a FHIR
 * subscription is never sent an event without a FHIR meaning, `hub.test` included, so such a type is
 * refused); for `fhir-r4-notification` the Backport heartbeat notification (it takes no type). A FHIR
 * endpoint was sent a CloudEvent as `application/cloudevents+json`, which it never receives otherwise.
 *
 * @example
 * ```ts
 * const { body, contentType } = testDelivery(sub, eventIdFor(newId(), 0), 'hub.test', 'the admin API');
 * ```
 */
export function testDelivery(
  sub: SubscriptionRow,
  id: string,
  type: string,
  askedFrom: string,
): { body: string; contentType: string } {
  if (sub.format === 'cloudevents') {
    return { body: JSON.stringify(testEnvelope(id, type, askedFrom)), contentType: sub.content_type };
  }
  if (sub.format === 'fhir-r4-notification') {
    if (type !== TEST_EVENT_TYPE) {
      throw invalid(
        `the test of a fhir-r4-notification subscription is a heartbeat notification: it takes no type (${JSON.stringify(type)} given)`,
        { type },
      );
    }
    const bundle = heartbeatBundle({
      subscriptionId: sub.id,
      bundleId: id,
      statusId: id,
      timestamp: new Date().toISOString(),
      eventsSinceSubscriptionStart: sub.notification_events,
    });
    return { body: JSON.stringify(bundle), contentType: FHIR_CONTENT_TYPE };
  }
  const event = testEnvelope(id, type === TEST_EVENT_TYPE ? FHIR_TEST_EVENT_TYPE : type, askedFrom);
  const rendered = renderFhirDelivery({
    format: sub.format,
    event,
    subscriptionId: sub.id,
    deliveryId: id,
    createdAt: new Date(),
    notificationNumber: null,
    eventsSinceSubscriptionStart: sub.notification_events,
  });
  if (rendered.kind === 'none') {
    throw invalid(`${event.type} has no FHIR meaning: a FHIR subscription is never sent it`, { type });
  }
  // The catalog's examples map to valid resources (fhir/map.test.ts maps every one of them).
  if (rendered.kind === 'invalid') throw new Error(rendered.error);
  return { body: rendered.body, contentType: FHIR_CONTENT_TYPE };
}
