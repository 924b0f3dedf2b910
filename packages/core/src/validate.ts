/**
 * Validators for the normalized model, built from the core JSON Schemas (draft 2020-12). One ajv
 * instance holds every core schema; each validator is compiled on first use and then reused.
 */
import { Ajv2020, type ErrorObject, type Options, type ValidateFunction } from 'ajv/dist/2020.js';
import * as ajvFormats from 'ajv-formats';
import { SwitchyardError } from './errors/index.ts';
import type { CommandType } from './generated/commands.ts';
import type { NormalizedEventType } from './generated/events.ts';
import {
  COMMAND_SCHEMA_IDS,
  COMMON_SCHEMA_ID,
  CORE_SCHEMAS,
  ENTITY_SCHEMA_IDS,
  ENVELOPE_SCHEMA_ID,
  EVENT_SCHEMA_IDS,
} from './generated/schemas.ts';
import { isJsonObject } from './json.ts';
import type { EventEnvelope } from './model.ts';

// ajv-formats is CommonJS: under Node's ESM loader the plugin is the module itself, under bundlers
// it may sit on `default`.
const addFormats = ((ajvFormats as { default?: unknown }).default ?? ajvFormats) as unknown as (
  ajv: Ajv2020,
) => Ajv2020;

/** A validation problem: a JSON Pointer into the validated value and what is wrong there. */
export interface ValidationIssue {
  /** JSON Pointer (RFC 6901); `''` is the value itself, `/data/start` a field of an event's data. */
  path: string;
  message: string;
}

/** The outcome of a validation: valid, or every problem found. */
export type ValidationResult = { valid: true } | { valid: false; errors: ValidationIssue[] };

/**
 * Annotation keywords the schemas use beyond draft 2020-12. Registered so ajv's strict mode accepts
 * them; they never affect validation.
 * - `x-secret`: a config field holding a secret (redacted in logs, errors and API answers).
 * - `x-vendor-events`: the vendor events that produce an event type (documentation).
 * - `x-entity`: what an event or command type is about (the `<entity>` of its subject).
 * - `x-target`: whether a command names an existing entity (`subject`) or an instance (`instance`).
 */
export const ANNOTATION_KEYWORDS = ['x-secret', 'x-vendor-events', 'x-entity', 'x-target'] as const;

/** The `$id` of the envelope schema. */
export const envelopeSchemaId: string = ENVELOPE_SCHEMA_ID;
/** The `$id` of the shared definitions (`#/$defs/Timestamp`, `#/$defs/VendorId`, ...). */
export const commonSchemaId: string = COMMON_SCHEMA_ID;
/** The `$id` of each entity schema, by entity. */
export const entitySchemaIds: Readonly<Record<keyof typeof ENTITY_SCHEMA_IDS, string>> = ENTITY_SCHEMA_IDS;
/** The `$id` of each event type's data schema. */
export const eventSchemaIds: { readonly [T in NormalizedEventType]: string } = EVENT_SCHEMA_IDS;
/** The `$id` of each command type's data schema. */
export const commandSchemaIds: { readonly [T in CommandType]: string } = COMMAND_SCHEMA_IDS;

/**
 * Every core schema (common, envelope, entities, events), as fresh copies the caller may change: the
 * server builds the config schema and the OpenAPI document from them.
 *
 * @example
 * ```ts
 * const schemas = getSchemas();
 * schemas.find((s) => s.$id === eventSchemaIds['appointment.created']);
 * ```
 */
export function getSchemas(): Array<{ $id: string; [key: string]: unknown }> {
  return structuredClone(CORE_SCHEMAS) as Array<{ $id: string; [key: string]: unknown }>;
}

/**
 * A new ajv (draft 2020-12, all errors, formats) that knows Switchyard's annotation keywords and has
 * every core schema added, so other schemas can `$ref` them by `$id`. Use it to compile schemas that
 * build on the core ones (e.g. the config file schema); for the core schemas themselves use
 * {@link validateEvent} / {@link validateAgainst}, which share one instance.
 *
 * @example
 * ```ts
 * const ajv = createAjv();
 * const validateConfig = ajv.compile(configSchema);
 * ```
 */
export function createAjv(options: Options = {}): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    // Full strict mode, strictRequired included: the schemas compile in a subscriber's strict ajv too
    // (an allOf refinement names each field it requires in `properties`, `{}` for the entity's).
    strict: true,
    ...options,
  });
  addFormats(ajv);
  for (const keyword of ANNOTATION_KEYWORDS) ajv.addKeyword({ keyword });
  for (const schema of getSchemas()) ajv.addSchema(schema);
  return ajv;
}

let shared: Ajv2020 | undefined;
const compiled = new Map<string, ValidateFunction>();

function validatorFor(schemaId: string): ValidateFunction {
  let validate = compiled.get(schemaId);
  if (validate) return validate;
  shared ??= createAjv();
  validate = shared.getSchema(schemaId);
  if (!validate) {
    throw new SwitchyardError('SY_EVENT_SCHEMA_UNKNOWN', `no schema with $id ${JSON.stringify(schemaId)}`, {
      details: { schemaId },
    });
  }
  compiled.set(schemaId, validate);
  return validate;
}

function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function quote(value: unknown): string {
  return JSON.stringify(value);
}

/** One ajv error as a {@link ValidationIssue}, pointing at the offending property itself. */
function toIssue(error: ErrorObject, prefix: string): ValidationIssue {
  const at = `${prefix}${error.instancePath}`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: `${at}/${escapePointer(String(params.missingProperty))}`, message: 'is required' };
    case 'additionalProperties':
      return {
        path: `${at}/${escapePointer(String(params.additionalProperty))}`,
        message: 'is not allowed here (unknown property)',
      };
    case 'const':
      return { path: at, message: `must be ${quote(params.allowedValue)}` };
    case 'enum':
      return {
        path: at,
        message: `must be one of ${(params.allowedValues as unknown[]).map(quote).join(', ')}`,
      };
    default:
      return { path: at, message: error.message ?? `fails ${error.keyword}` };
  }
}

function collect(validate: ValidateFunction, value: unknown, prefix: string, into: ValidationIssue[]): void {
  if (validate(value)) return;
  const seen = new Set(into.map((e) => `${e.path}\n${e.message}`));
  for (const error of validate.errors ?? []) {
    const issue = toIssue(error, prefix);
    const key = `${issue.path}\n${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    into.push(issue);
  }
}

function result(errors: ValidationIssue[]): ValidationResult {
  return errors.length === 0 ? { valid: true } : { valid: false, errors };
}

/**
 * True when `type` is a normalized event type the core schemas define.
 *
 * @example
 * ```ts
 * isNormalizedEventType('appointment.created'); // true
 * isNormalizedEventType('appointment.teleported'); // false
 * ```
 */
export function isNormalizedEventType(type: unknown): type is NormalizedEventType {
  return typeof type === 'string' && Object.hasOwn(EVENT_SCHEMA_IDS, type);
}

/**
 * Validates a value against any core schema by `$id` (an entity, the envelope, an event's data, or
 * a fragment such as `https://switchyard.dev/schemas/common.json#/$defs/Timestamp`), returning every
 * problem. Throws `SY_EVENT_SCHEMA_UNKNOWN` for an id no core schema has.
 *
 * @example
 * ```ts
 * const r = validateAgainst(entitySchemaIds.appointment, data);
 * if (!r.valid) console.log(r.errors); // [{ path: '/start', message: 'must match format "date-time"' }]
 * ```
 */
export function validateAgainst(schemaId: string, value: unknown): ValidationResult {
  const errors: ValidationIssue[] = [];
  collect(validatorFor(schemaId), value, '', errors);
  return result(errors);
}

/**
 * Validates a normalized event: the envelope, then `data` against the schema of the event's `type`.
 * Every problem is reported (not just the first), each with a JSON Pointer from the event's root, so
 * a data problem reads `/data/start`. An unknown type gives an error at `/type` whose message starts
 * with `SY_EVENT_UNKNOWN_TYPE`.
 *
 * @example
 * ```ts
 * const r = validateEvent(event);
 * if (!r.valid) for (const e of r.errors) console.log(`${e.path}: ${e.message}`);
 * // /data/status: is required
 * // /data/start: must match format "date-time"
 * ```
 */
export function validateEvent(event: unknown): ValidationResult {
  const errors: ValidationIssue[] = [];
  if (!isJsonObject(event)) {
    return result([{ path: '', message: 'must be a JSON object (a CloudEvent)' }]);
  }
  collect(validatorFor(ENVELOPE_SCHEMA_ID), event, '', errors);
  const { type } = event;
  if (typeof type === 'string') {
    if (!isNormalizedEventType(type)) {
      errors.push({
        path: '/type',
        message: `SY_EVENT_UNKNOWN_TYPE: ${quote(type)} is not a normalized event type`,
      });
    } else if (event.data !== undefined) {
      collect(validatorFor(EVENT_SCHEMA_IDS[type]), event.data, '/data', errors);
    }
  }
  return result(errors);
}

/**
 * Like {@link validateEvent}, but throws: `SY_EVENT_UNKNOWN_TYPE` when the type is the only problem,
 * else `SY_EVENT_INVALID`; either way `details.errors` lists every problem.
 *
 * @example
 * ```ts
 * assertValidEvent(event); // event is now typed EventEnvelope
 * ```
 */
export function assertValidEvent(event: unknown): asserts event is EventEnvelope {
  const r = validateEvent(event);
  if (r.valid) return;
  const onlyUnknownType = r.errors.every(
    (e) => e.path === '/type' && e.message.startsWith('SY_EVENT_UNKNOWN_TYPE'),
  );
  const summary = r.errors
    .slice(0, 5)
    .map((e) => `${e.path || '(root)'} ${e.message}`)
    .join('; ');
  const more = r.errors.length > 5 ? ` (and ${r.errors.length - 5} more)` : '';
  throw new SwitchyardError(
    onlyUnknownType ? 'SY_EVENT_UNKNOWN_TYPE' : 'SY_EVENT_INVALID',
    `invalid event: ${summary}${more}`,
    { details: { errors: r.errors } },
  );
}

/**
 * True when `type` is a command type the core schemas define.
 *
 * @example
 * ```ts
 * isCommandType('appointment.cancel'); // true
 * isCommandType('appointment.teleport'); // false
 * ```
 */
export function isCommandType(type: unknown): type is CommandType {
  return typeof type === 'string' && Object.hasOwn(COMMAND_SCHEMA_IDS, type);
}

/**
 * Validates a command's `data` against its type's schema, every problem with a JSON Pointer from
 * the command's root (`/data/start`). Throws `SY_EVENT_SCHEMA_UNKNOWN` for a type no schema has:
 * check it with {@link isCommandType} first.
 *
 * @example
 * ```ts
 * const r = validateCommandData('appointment.reschedule', { start: 'tomorrow' });
 * // { valid: false, errors: [{ path: '/data/start', message: 'must match format "date-time"' }] }
 * ```
 */
export function validateCommandData(type: CommandType, data: unknown): ValidationResult {
  const errors: ValidationIssue[] = [];
  collect(validatorFor(COMMAND_SCHEMA_IDS[type]), data, '/data', errors);
  return result(errors);
}
