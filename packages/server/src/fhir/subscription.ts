/**
 * What a FHIR subscription (`format: fhir-r4` or `fhir-r4-notification`) may receive: the rule the
 * subscription check applies to its filter, and the per-event test the fan-out applies (an event
 * with no FHIR meaning is never fanned out to a FHIR subscription).
 */
import { type EventEnvelope, eventTypeMatches } from '@switchyard/core';
import { FHIR_EVENT_TYPES, mapsToFhir } from './map.ts';

/**
 * Why a FHIR subscription's event type filter is refused, or undefined when it is fine. Each
 * pattern must be able to match at least one event type that maps to FHIR ({@link FHIR_EVENT_TYPES}):
 * a pattern that can only match types without FHIR meaning (`asset.*`, `process.completed`,
 * `command.*`) would never deliver anything, so it is a mistake to report, not to keep.
 *
 * @example
 * ```ts
 * fhirFilterProblem(['appointment.*']); // undefined
 * fhirFilterProblem(['asset.*', 'appointment.created']);
 * // 'eventTypes asset.* can only match event types with no FHIR meaning; FHIR types: appointment.created, ...'
 * ```
 */
export function fhirFilterProblem(patterns: readonly string[]): string | undefined {
  const useless = nonFhirPatterns(patterns);
  if (useless.length === 0) return undefined;
  return `eventTypes ${useless.join(', ')} can only match event types with no FHIR meaning; FHIR types: ${FHIR_EVENT_TYPES.join(', ')}`;
}

/**
 * The patterns of a filter that match no event type with a FHIR meaning (see {@link fhirFilterProblem}).
 *
 * @example
 * ```ts
 * nonFhirPatterns(['asset.*', 'appointment.*', 'command.succeeded']); // ['asset.*', 'command.succeeded']
 * ```
 */
export function nonFhirPatterns(patterns: readonly string[]): string[] {
  return patterns.filter((p) => !FHIR_EVENT_TYPES.some((type) => eventTypeMatches(p, type)));
}

/**
 * True when the event becomes a FHIR resource (the mapping decides, e.g. a catalog document does
 * not although `document.created` can). The fan-out sends FHIR subscriptions only such events.
 *
 * @example
 * ```ts
 * hasFhirMeaning(appointmentCreated); // true
 * hasFhirMeaning(quableDocumentCreated); // false (catalog domain)
 * ```
 */
export function hasFhirMeaning(event: EventEnvelope): boolean {
  // The predicate, not the mapping: building (and throwing away) a resource per stored event cost the
  // hot path a full mapping whether or not any FHIR subscription exists. An event whose mapping
  // would fail is still counted, so its delivery goes dead with the error, visible and replayable.
  return mapsToFhir(event);
}
