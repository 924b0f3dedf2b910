/**
 * The hub's own check of a subscription input: the schema of ./schema.ts, so the library API
 * (`hub.subscriptions.create` / `update`), the routes (fastify, same schema) and the config loader
 * (same function) refuse the same values. The rules a schema cannot say, on the merged subscription
 * (a change may set `format` on a subscription whose kind or filter it does not repeat), are
 * {@link subscriptionRuleErrors} / {@link checkSubscriptionRules}, used by the hub and the loader alike.
 */
import { invalid } from '../admin/errors.ts';
import { type InputError, inputCheck, suggest } from '../admin/input.ts';
import { FHIR_EVENT_TYPES } from '../fhir/map.ts';
import { fhirFilterProblem, nonFhirPatterns } from '../fhir/subscription.ts';
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

/** The fields the merged-subscription rules read. */
export interface SubscriptionRuleFields {
  kind: 'webhook' | 'pull';
  format: 'cloudevents' | 'fhir-r4' | 'fhir-r4-notification';
  eventTypes: readonly string[];
  approver: boolean;
}

/**
 * Why a FHIR subscription cannot be an approver: the approval request is a CloudEvent
 * (docs/gates.md) with no FHIR meaning, and a FHIR endpoint answering it with a 4xx refused every
 * booking the vendor asked about.
 */
function fhirApproverProblem(format: string): string {
  return `format ${format} cannot be an approver: approval requests are CloudEvents with no FHIR meaning (a FHIR endpoint's 4xx to one refuses the booking); make a cloudevents subscription the approver`;
}

/**
 * The rules on a merged subscription a schema cannot express, as input errors (paths in the input's
 * terms, a message of their own), empty when it is fine: a FHIR format is for a webhook (the pull
 * feed serves CloudEvents) that is not an approver (approval requests are CloudEvents), and each
 * type pattern of a FHIR subscription must be able to match an event type with a FHIR meaning
 * (`fhirFilterProblem`, fhir/subscription.ts). The config loader
 * reports these at the file's lines; {@link checkSubscriptionRules} throws them.
 *
 * @example
 * ```ts
 * subscriptionRuleErrors({ kind: 'webhook', format: 'fhir-r4', eventTypes: ['asset.*'], approver: false });
 * // [{ instancePath: '/eventTypes/0', message: 'can only match event types with no FHIR meaning, ...' }]
 * ```
 */
export function subscriptionRuleErrors(s: SubscriptionRuleFields): InputError[] {
  if (s.format === 'cloudevents') return [];
  if (s.kind !== 'webhook') {
    return [
      ruleError('/format', `format ${s.format} is for webhook subscriptions; a pull feed serves CloudEvents`),
    ];
  }
  const useless = new Set(nonFhirPatterns(s.eventTypes));
  const errors: InputError[] = s.approver ? [ruleError('/approver', fhirApproverProblem(s.format))] : [];
  s.eventTypes.forEach((pattern, i) => {
    if (!useless.has(pattern)) return;
    errors.push(
      ruleError(
        `/eventTypes/${i}`,
        `can only match event types with no FHIR meaning, so format ${s.format} would never deliver it; FHIR types: ${FHIR_EVENT_TYPES.join(', ')}`,
      ),
    );
  });
  return errors;
}

/**
 * Throws SY_PIPELINE_INVALID_INPUT (422) when the merged subscription breaks a rule of
 * {@link subscriptionRuleErrors}, worded for the whole filter (`fhirFilterProblem`).
 *
 * @example
 * ```ts
 * checkSubscriptionRules({ kind: 'pull', format: 'fhir-r4', eventTypes: ['*'], approver: false }); // throws
 * ```
 */
export function checkSubscriptionRules(s: SubscriptionRuleFields): void {
  if (s.format === 'cloudevents') return;
  if (s.kind !== 'webhook') {
    // The pull feed serves CloudEvents; a FHIR client reads current state from /fhir/r4 instead
    // (docs/delivery.md, "Formats").
    throw invalid(`format ${s.format} is for webhook subscriptions; a pull feed serves CloudEvents`, {
      format: s.format,
    });
  }
  if (s.approver) throw invalid(fhirApproverProblem(s.format), { format: s.format, approver: true });
  const problem = fhirFilterProblem(s.eventTypes);
  if (problem) throw invalid(problem, { format: s.format, eventTypes: [...s.eventTypes] });
}

// An error of a rule of our own, shaped as ajv's so one reporter words both (`x-message`).
function ruleError(instancePath: string, message: string): InputError {
  return {
    instancePath,
    schemaPath: '#/rules',
    keyword: 'rule',
    params: {},
    message,
    parentSchema: { 'x-message': message },
  };
}

/**
 * How a subscription's `sources` (or `approverFilters.sources`) entry naming no instance is worded,
 * in the config file (config/load.ts, with file and line) and by the API ({@link checkSources}).
 *
 * @example
 * ```ts
 * unknownInstanceMessage('dp-mian', ['dp-main']); // 'unknown instance "dp-mian"; instances: dp-main; did you mean "dp-main"?'
 * ```
 */
export function unknownInstanceMessage(source: string, instances: readonly string[]): string {
  const hint = suggest(source, instances);
  return `unknown instance "${source}"; instances: ${instances.join(', ') || '(none)'}${hint ? `; did you mean "${hint}"?` : ''}`;
}

/**
 * Throws SY_PIPELINE_INVALID_INPUT (422) naming each entry of the input's `sources` and
 * `approverFilters.sources` that is no instance of `instances`: such a subscription silently never
 * received anything from it. Only the lists the input gives are checked (a change that leaves them
 * out keeps them, also a source whose instance was deleted since).
 *
 * @example
 * ```ts
 * checkSources({ sources: ['dp-mian'] }, ['dp-main']); // throws: sources[0] unknown instance "dp-mian"; …
 * ```
 */
export function checkSources(
  input: Pick<SubscriptionUpdate, 'sources' | 'approverFilters'>,
  instances: readonly string[],
): void {
  const known = new Set(instances);
  const errors: { path: string; message: string }[] = [];
  const look = (list: readonly string[] | null | undefined, at: string) =>
    list?.forEach((source, i) => {
      if (!known.has(source))
        errors.push({ path: `${at}/${i}`, message: unknownInstanceMessage(source, instances) });
    });
  look(input.sources, '/sources');
  look(input.approverFilters?.sources, '/approverFilters/sources');
  if (errors.length === 0) return;
  throw invalid(errors.map((e) => `${e.path.slice(1).replaceAll('/', '.')} ${e.message}`).join('; '), {
    errors,
  });
}
