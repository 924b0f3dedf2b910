/**
 * FHIR R4: the mapping of normalized events to resources and the production validator (docs/fhir.md).
 */
export {
  EVENT_TYPE_TAG_SYSTEM,
  FHIR_EVENT_TYPES,
  FHIR_MAPPINGS,
  type FhirMapping,
  type FhirResource,
  type FhirResult,
  type IdentifierKind,
  identifierSystem,
  mapsToFhir,
  toFhir,
} from './map.ts';
export {
  type FhirProblem,
  preloadFhirValidator,
  VALIDATED_RESOURCE_TYPES,
  validateFhir,
} from './validate.ts';
