/**
 * The hub's own check of a subscription input: the schema of ./schema.ts, so the library API
 * (`hub.subscriptions.create` / `update`), the routes (fastify, same schema) and the config loader
 * (same function) refuse the same values.
 */
import { type InputError, inputCheck } from '../admin/input.ts';
import type { SubscriptionCreate, SubscriptionUpdate } from './generated/input.ts';
import { subscriptionCreateSchema, subscriptionUpdateSchema } from './schema.ts';

let checks:
  | {
      create: ReturnType<typeof inputCheck<SubscriptionCreate>>;
      update: ReturnType<typeof inputCheck<SubscriptionUpdate>>;
    }
  | undefined;

function checksOf() {
  checks ??= {
    create: inputCheck<SubscriptionCreate>(subscriptionCreateSchema, 'subscription'),
    update: inputCheck<SubscriptionUpdate>(subscriptionUpdateSchema, 'subscription'),
  };
  return checks;
}

/**
 * What is wrong with a subscription input, as ajv errors; empty when it is valid.
 *
 * @example
 * ```ts
 * subscriptionInputErrors('create', { url: 'https://crm.example/hooks', timeoutMs: 50 }); // [{ instancePath: '/timeoutMs', keyword: 'minimum', ... }]
 * ```
 */
export function subscriptionInputErrors(
  kind: 'create' | 'update',
  input: SubscriptionCreate | SubscriptionUpdate,
): InputError[] {
  return checksOf()[kind].errors(input);
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
  checksOf()[kind].check(input);
}
