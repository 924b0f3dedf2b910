/**
 * The errors every admin concept (subscriptions, instances, deliveries, events, inbound) answers
 * with: one code for "no such row", one for a refused input. Below every concept folder, so each
 * can use them without importing another.
 */
import { SwitchyardError } from '@switchyard/core';

/**
 * SY_PIPELINE_NOT_FOUND (404) for a missing row.
 *
 * @example
 * ```ts
 * throw notFound('subscription', id); // no subscription "crm"
 * ```
 */
export function notFound(what: string, id: string): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_NOT_FOUND', `no ${what} ${JSON.stringify(id)}`, {
    details: { [what]: id },
  });
}

/**
 * SY_PIPELINE_INVALID_INPUT (422) for an input the hub refuses.
 *
 * @example
 * ```ts
 * throw invalid('limit must be a positive integer');
 * ```
 */
export function invalid(message: string, details?: Record<string, unknown>): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_INVALID_INPUT', message, details ? { details } : undefined);
}

/**
 * A `date-time` input of an admin route as a Date, or SY_PIPELINE_INVALID_INPUT (422) naming it. The
 * routes' schemas check RFC 3339, which allows a leap second (`2016-12-31T23:59:60Z`) that `new Date`
 * reads as an invalid date: passed on, it reached the database as text Postgres refused, answered
 * 400 "cannot be used (such as a NUL character)".
 *
 * @example
 * ```ts
 * const since = request.query.since === undefined ? undefined : dateInput('since', request.query.since);
 * ```
 */
export function dateInput(name: string, text: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw invalid(`${name} must be a valid date`);
  return date;
}

/**
 * SY_PIPELINE_CONFLICT (409) for a create whose id is taken (also by a create that won a race).
 *
 * @example
 * ```ts
 * throw exists('subscription', id); // subscription "crm" exists
 * ```
 */
export function exists(what: string, id: string): SwitchyardError {
  return new SwitchyardError('SY_PIPELINE_CONFLICT', `${what} ${JSON.stringify(id)} exists`, {
    details: { [what]: id },
  });
}
