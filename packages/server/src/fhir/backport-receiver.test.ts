/**
 * The test receiver against the Subscriptions Backport guide's own R4 example notifications,
 * transcribed from their definitions (input/fsh/BackportNotificationR4.fsh of
 * HL7/fhir-subscription-backport-ig; published as
 * http://hl7.org/fhir/uv/subscriptions-backport/Bundle-r4-notification-full-resource.html and
 * Bundle-r4-notification-handshake.html). The example Encounter is abridged to its id and required
 * elements. A receiver that accepted anything would make the hub's notification test worthless, so
 * it is shown to refuse what the guide forbids and to notice a missed event.
 */
import type { Bundle, Parameters } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { BackportReceiver, NotificationRejected } from './backport-receiver.test-support.ts';

const SUB = 'https://example.org/fhir/Subscription/admission';
const ENCOUNTER = 'https://example.org/fhir/Encounter/86009987-eabe-42bf-8c02-b112b18cb616';

function example(type: string, since: string, number?: string): Bundle {
  const parameter: Parameters = {
    resourceType: 'Parameters',
    id: '2d5afc69-6ef2-420f-a8d1-8500c99eb96c',
    meta: {
      profile: [
        'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4',
      ],
    },
    parameter: [
      { name: 'subscription', valueReference: { reference: SUB } },
      { name: 'topic', valueCanonical: 'http://hl7.org/SubscriptionTopic/admission' },
      { name: 'status', valueCode: 'active' },
      { name: 'type', valueCode: type },
      { name: 'events-since-subscription-start', valueString: since },
      ...(number
        ? [
            {
              name: 'notification-event',
              part: [
                { name: 'event-number', valueString: number },
                { name: 'timestamp', valueInstant: '2020-05-29T11:44:13.1882432-05:00' },
                { name: 'focus', valueReference: { reference: ENCOUNTER } },
              ],
            },
          ]
        : []),
    ],
  };
  return {
    resourceType: 'Bundle',
    id: 'r4-notification-full-resource',
    type: 'history',
    timestamp: '2020-05-29T11:44:13.1882432-05:00',
    entry: [
      {
        fullUrl: 'urn:uuid:2d5afc69-6ef2-420f-a8d1-8500c99eb96c',
        resource: parameter,
        request: { method: 'GET', url: `${SUB}/$status` },
        response: { status: '200' },
      },
      ...(number
        ? [
            {
              fullUrl: ENCOUNTER,
              resource: {
                resourceType: 'Encounter' as const,
                id: '86009987-eabe-42bf-8c02-b112b18cb616',
                status: 'in-progress' as const,
                class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR' },
              },
              request: { method: 'POST' as const, url: 'Encounter' },
              response: { status: '201' },
            },
          ]
        : []),
    ],
  };
}

describe('the Backport test receiver, on the guide’s R4 examples', () => {
  it('accepts the handshake and the full-resource notification, resolving the focus', () => {
    const receiver = new BackportReceiver();
    expect(receiver.accept(example('handshake', '0'))).toEqual([]);
    const [event] = receiver.accept(example('event-notification', '1', '1'));
    expect(event).toMatchObject({ subscription: SUB, eventNumber: 1, focus: { resourceType: 'Encounter' } });
    expect(receiver.missing(SUB)).toEqual([]);
  });

  it('notices a missed event from the event numbers', () => {
    const receiver = new BackportReceiver();
    receiver.accept(example('event-notification', '2', '2'));
    expect(receiver.missing(SUB)).toEqual([1]);
  });

  it('refuses what the guide does not allow', () => {
    const receiver = new BackportReceiver();
    const notHistory = { ...example('event-notification', '1', '1'), type: 'collection' as const };
    expect(() => receiver.accept(notHistory)).toThrow(NotificationRejected);
    const noStatus = example('event-notification', '1', '1');
    noStatus.entry = noStatus.entry!.slice(1);
    expect(() => receiver.accept(noStatus)).toThrow(/first entry is not a Parameters/);
    const noRequest = example('event-notification', '1', '1');
    delete noRequest.entry![1]!.request;
    expect(() => receiver.accept(noRequest)).toThrow(/lacks request or response/);
    expect(() => receiver.accept(example('event-notification', '1', '2'))).toThrow(/beyond/);
    const dangling = example('event-notification', '1', '1');
    dangling.entry![1]!.fullUrl = 'urn:uuid:00000000-0000-4000-8000-000000000000';
    expect(() => receiver.accept(dangling)).toThrow(/not in the Bundle/);
  });
});
