import * as core from '@switchyard/core';

/** One reason an event is invalid. */
export interface ValidationIssue {
  path: string;
  message: string;
}

export type ValidationResult = { valid: true } | { valid: false; errors: ValidationIssue[] };

type Validator = (event: unknown) => ValidationResult;

// core's `validateEvent` (envelope plus the `data` schema of the type) is being written in
// parallel; until it is exported, the envelope rules below still keep malformed events out.
const fromCore = (core as unknown as { validateEvent?: Validator }).validateEvent;

const TYPE = /^[a-z_]+\.[a-z_]+$/;
const SUBJECT = /^[a-z_]+\/.+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function envelopeRules(event: unknown): ValidationResult {
  const e = event as Record<string, unknown>;
  const errors: ValidationIssue[] = [];
  if (typeof e.type !== 'string' || !TYPE.test(e.type))
    errors.push({ path: '/type', message: `must match ${TYPE}` });
  if (typeof e.subject !== 'string' || !SUBJECT.test(e.subject)) {
    errors.push({ path: '/subject', message: `must match ${SUBJECT}` });
  }
  if (typeof e.time !== 'string' || !RFC3339.test(e.time) || Number.isNaN(Date.parse(e.time))) {
    errors.push({ path: '/time', message: 'must be an RFC 3339 date-time' });
  }
  if (typeof e.data !== 'object' || e.data === null || Array.isArray(e.data)) {
    errors.push({ path: '/data', message: 'must be an object' });
  }
  return errors.length === 0 ? { valid: true } : { valid: false, errors };
}

/**
 * Validates a completed envelope: the envelope rules always (the pipeline relies on them: `time`
 * becomes a timestamptz, `subject` the ordering key), then core's schemas when available.
 *
 * @example
 * ```ts
 * const r = validateEnvelope(envelope);
 * if (!r.valid) console.log(r.errors); // [{ path: '/time', message: '...' }]
 * ```
 */
export function validateEnvelope(event: unknown): ValidationResult {
  const basic = envelopeRules(event);
  if (!basic.valid) return basic;
  return fromCore ? fromCore(event) : basic;
}
