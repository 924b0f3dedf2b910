import type { Bundle } from '@medplum/fhirtypes';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { toFhir } from './map.ts';
import { type FhirDeliveryInput, renderFhirDelivery } from './render.ts';

const examples: EventEnvelope[] = getSchemas().flatMap((s) =>
  ((s as { examples?: EventEnvelope[] }).examples ?? []).filter((e) => e.specversion),
);

function example(type: string, id: string): EventEnvelope {
  const found = examples.find((e) => e.type === type);
  if (!found) throw new Error(`no example of ${type}`);
  return { ...structuredClone(found), id };
}

function input(event: EventEnvelope, format: FhirDeliveryInput['format']): FhirDeliveryInput {
  return {
    format,
    event,
    subscriptionId: 'ehr',
    deliveryId: '0b7e2a52-5f43-4c5b-9d36-0d1f3c1e2a10',
    createdAt: new Date('2026-03-10T08:00:00Z'),
    notificationNumber: '3',
    eventsSinceSubscriptionStart: '4',
  };
}

/**
 * The event with a service id that cannot be an R4 code (no whitespace but single spaces between
 * words). A blank comment was the example once; the mapping now leaves blank text out.
 */
function withInvalidServiceCode(event: EventEnvelope): EventEnvelope {
  const data = event.data as Record<string, unknown>;
  return { ...event, data: { ...data, service: { id: 'consult  30' } } } as EventEnvelope;
}

describe('renderFhirDelivery', () => {
  it('sends the mapped resource, and the same resource inside the notification', () => {
    const event = example('appointment.created', '6f1d7e7a-8a3c-4c55-a4a8-7a0f0d2e1b01');
    const resource = JSON.parse(JSON.stringify(toFhir(event)!.resource));
    const plain = renderFhirDelivery(input(event, 'fhir-r4'));
    expect(plain.kind === 'body' && JSON.parse(plain.body)).toEqual(resource);
    const notified = renderFhirDelivery(input(event, 'fhir-r4-notification'));
    const bundle = (notified.kind === 'body' && JSON.parse(notified.body)) as Bundle;
    expect(bundle.entry?.[1]?.resource).toEqual(resource);
  });

  it('never sends a resource that fails validation, on any delivery of the event', () => {
    const event = withInvalidServiceCode(
      example('appointment.created', '6f1d7e7a-8a3c-4c55-a4a8-7a0f0d2e1b02'),
    );
    for (const format of ['fhir-r4', 'fhir-r4-notification', 'fhir-r4'] as const) {
      const r = renderFhirDelivery(input(event, format));
      expect(r.kind, format).toBe('invalid');
      expect(r.kind === 'invalid' && r.error).toMatch(
        /^Appointment failed FHIR R4 validation: .*Appointment\.serviceType/,
      );
    }
  });

  it('checks an event once: its later deliveries get the outcome of its first', () => {
    // Event ids are unique and stored events immutable, so the outcome is kept by event id: a
    // different body under a known id (which the hub never produces) gets the known outcome.
    const id = '6f1d7e7a-8a3c-4c55-a4a8-7a0f0d2e1b03';
    const valid = example('appointment.created', id);
    expect(renderFhirDelivery(input(valid, 'fhir-r4')).kind).toBe('body');
    expect(renderFhirDelivery(input(withInvalidServiceCode(valid), 'fhir-r4')).kind).toBe('body');
    const other = withInvalidServiceCode(
      example('appointment.created', '6f1d7e7a-8a3c-4c55-a4a8-7a0f0d2e1b04'),
    );
    expect(renderFhirDelivery(input(other, 'fhir-r4')).kind).toBe('invalid');
  });
});
