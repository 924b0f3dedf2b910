/**
 * The hub's own check of a subscription input: the schema of ./schema.ts compiled by ajv, so the
 * library API (`hub.subscriptions.create` / `update`), the routes (fastify, same schema) and the
 * config loader (same function) refuse the same values.
 */
import { createAjv } from '@switchyard/core';
import { invalid } from '../admin/errors.ts';
import type { SubscriptionCreate, SubscriptionUpdate } from './generated/input.ts';
import { subscriptionCreateSchema, subscriptionUpdateSchema } from './schema.ts';

// The server depends on ajv through core only: its types come from core's createAjv.
type ValidateFunction = ReturnType<ReturnType<typeof createAjv>['compile']>;
type ErrorObject = NonNullable<ValidateFunction['errors']>[number];

let validators: { create: ValidateFunction; update: ValidateFunction } | undefined;

function validatorsOf() {
  if (!validators) {
    // strict: false: the schema carries the config file's annotations (x-message, x-secret).
    const ajv = createAjv({ allErrors: true, verbose: true, strict: false });
    validators = {
      create: ajv.compile(subscriptionCreateSchema),
      update: ajv.compile(subscriptionUpdateSchema),
    };
  }
  return validators;
}

/**
 * What is wrong with a subscription input, as ajv errors (`verbose`: each carries its schema, so the
 * config loader words them as it words its own); empty when it is valid.
 *
 * @example
 * ```ts
 * subscriptionInputErrors('create', { url: 'https://crm.example/hooks', timeoutMs: 50 }); // [{ instancePath: '/timeoutMs', keyword: 'minimum', ... }]
 * ```
 */
export function subscriptionInputErrors(
  kind: 'create' | 'update',
  input: SubscriptionCreate | SubscriptionUpdate,
): ErrorObject[] {
  const validate = validatorsOf()[kind];
  if (validate(input)) return [];
  // The `if` of the pull rule only says which branch failed; the branch's own error says why.
  return (validate.errors ?? []).filter((e) => e.keyword !== 'if');
}

/**
 * Throws SY_PIPELINE_INVALID_INPUT (422) naming every bad field when the input breaks the schema.
 *
 * @example
 * ```ts
 * checkSubscriptionInput('update', { ordering: 'hold' }); // passes
 * checkSubscriptionInput('update', { timeoutMs: 0 });     // throws: timeoutMs must be >= 100
 * ```
 */
export function checkSubscriptionInput(
  kind: 'create' | 'update',
  input: SubscriptionCreate | SubscriptionUpdate,
): void {
  const errors = subscriptionInputErrors(kind, input);
  if (errors.length === 0) return;
  const issues = errors.map((e) => ({
    pointer: e.instancePath,
    message: messageOf(e),
  }));
  throw invalid(issues.map((i) => `${fieldOf(i.pointer)} ${i.message}`).join('; '), { errors: issues });
}

function fieldOf(pointer: string): string {
  return pointer === '' ? 'subscription' : pointer.slice(1).replace(/\//g, '.');
}

function messageOf(error: ErrorObject): string {
  const own = (error.parentSchema as Record<string, unknown> | undefined)?.['x-message'];
  if (typeof own === 'string') return own;
  if (error.keyword === 'additionalProperties') {
    return `has an unknown field "${String((error.params as { additionalProperty: unknown }).additionalProperty)}"`;
  }
  return error.message ?? error.keyword;
}
