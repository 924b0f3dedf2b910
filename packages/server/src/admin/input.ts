/**
 * The hub's own check of an admin input against its one JSON Schema (each concept's schema.ts): the
 * same schema the routes validate bodies with and the config loader checks the file's converted
 * entries with, compiled by ajv.
 */

import type { JsonSchema } from '@switchyard/core';
import { createAjv } from '@switchyard/core';
import { invalid } from './errors.ts';

// The server depends on ajv through core only: its types come from core's createAjv.
type ValidateFunction = ReturnType<ReturnType<typeof createAjv>['compile']>;
/** One ajv error (`verbose`: it carries its schema, so the config loader words it as its own). */
export type InputError = NonNullable<ValidateFunction['errors']>[number];

let ajv: ReturnType<typeof createAjv> | undefined;

/** A compiled input schema: what is wrong with an input, and the check that throws. */
export interface InputCheck<T> {
  /** Every error of `input`; empty when it is valid. */
  errors(input: T): InputError[];
  /** Throws SY_PIPELINE_INVALID_INPUT (422) naming every bad field. */
  check(input: T): void;
}

/**
 * Compiles an input schema once.
 *
 * @example
 * ```ts
 * const create = inputCheck<SubscriptionCreate>(subscriptionCreateSchema, 'subscription');
 * create.check({ url: 'https://crm.example/hooks', timeoutMs: 50 }); // throws: timeoutMs must be >= 100
 * ```
 */
export function inputCheck<T>(schema: JsonSchema, what: string): InputCheck<T> {
  // strict: false: the schemas carry the config file's annotations (x-message, x-secret).
  ajv ??= createAjv({ allErrors: true, verbose: true, strict: false });
  const validate = ajv.compile(schema);
  const errors = (input: T): InputError[] => {
    if (validate(input)) return [];
    // The `if` of a conditional rule only says which branch failed; the branch's own error says why.
    return (validate.errors ?? []).filter((e) => e.keyword !== 'if');
  };
  return {
    errors,
    check(input) {
      const found = errors(input);
      if (found.length === 0) return;
      const issues = found.map((e) => ({ pointer: e.instancePath, message: inputErrorMessage(e) }));
      throw invalid(issues.map((i) => `${fieldOf(what, i.pointer)} ${i.message}`).join('; '), {
        errors: issues,
      });
    },
  };
}

function fieldOf(what: string, pointer: string): string {
  return pointer === '' ? what : pointer.slice(1).replace(/\//g, '.');
}

/**
 * The words of one input error: the schema's own `x-message`, the unknown field by name (ajv's
 * "must NOT have additional properties" does not say which), else ajv's message. Never the value.
 *
 * @example
 * ```ts
 * inputErrorMessage(error); // 'has an unknown field "regoin"'
 * ```
 */
export function inputErrorMessage(error: InputError): string {
  const own = (error.parentSchema as Record<string, unknown> | undefined)?.['x-message'];
  if (typeof own === 'string') return own;
  if (error.keyword === 'additionalProperties') {
    return `has an unknown field "${String((error.params as { additionalProperty: unknown }).additionalProperty)}"`;
  }
  return error.message ?? error.keyword;
}

/**
 * The closest candidate by edit distance, when close enough to be a likely typo.
 *
 * @example
 * ```ts
 * suggest('docplaner', ['docplanner', 'quable']); // 'docplanner'
 * ```
 */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = levenshtein(input.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
