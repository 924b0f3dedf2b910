/**
 * The hub's own check of an instance input: the schema of ./schema.ts, so the library API
 * (`hub.instances.upsert`), the routes (fastify, same schema) and the config loader (same function)
 * refuse the same values.
 */
import { type InputError, inputCheck } from '../admin/input.ts';
import type { InstanceCreate } from './generated/input.ts';
import { instanceCreateSchema } from './schema.ts';

/** An input to `hub.instances.upsert`: the schema's fields and who manages it (default `api`). */
export type InstanceInput = InstanceCreate & { managedBy?: 'file' | 'api' };

let check: ReturnType<typeof inputCheck<InstanceCreate>> | undefined;

/**
 * What is wrong with an instance input, as ajv errors; empty when it is valid.
 *
 * @example
 * ```ts
 * instanceInputErrors({ id: 'dp', connector: 'docplanner', settings: {}, pull: { intervalMs: 10 } }); // [{ instancePath: '/pull/intervalMs', ... }]
 * ```
 */
export function instanceInputErrors(input: InstanceCreate): InputError[] {
  check ??= inputCheck<InstanceCreate>(instanceCreateSchema, 'instance');
  return check.errors(input);
}

/**
 * Throws SY_PIPELINE_INVALID_INPUT (422) naming every bad field when the input breaks the schema.
 *
 * @example
 * ```ts
 * checkInstanceInput({ id: 'dp', connector: 'docplanner', settings: {}, mode: 'sometimes' }); // throws
 * ```
 */
export function checkInstanceInput(input: InstanceCreate): void {
  check ??= inputCheck<InstanceCreate>(instanceCreateSchema, 'instance');
  check.check(input);
}
