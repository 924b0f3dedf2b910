/**
 * The pure rules of approval gates: the instance policy, which approvers are asked, what an
 * approver's answer means, and how answers become a decision. No I/O (unit tested on their own).
 */
import { isJsonObject, type JsonValue, storableText } from '@switchyard/core';
import { CONFIG_DEFAULTS, GATE_DEADLINE_MS } from '../config/schema.ts';
import { configDurationMs } from '../config/units.ts';
import type { PostWebhookResult } from '../delivery/http-post.ts';
import { typeMatches } from '../subscriptions/type-patterns.ts';
import type { AnswerOutcome, GateOutcome, GateReason } from './store.ts';

/** The gate policy of one instance, resolved. */
export interface GatePolicy {
  /** The vendor gets its answer within this long of the request reaching the gate machinery. */
  deadlineMs: number;
  /** The answer when approvers cannot decide in time, none is configured, or none can be reached. */
  defaultOutcome: GateOutcome;
}

/** The policy of an instance that sets none: `CONFIG_DEFAULTS.gate`, the config file's defaults. */
export const DEFAULT_POLICY: GatePolicy = {
  deadlineMs: configDurationMs(CONFIG_DEFAULTS.gate.deadline)!,
  defaultOutcome: CONFIG_DEFAULTS.gate.default,
};
/** Shortest and longest deadlines accepted (a vendor's budget is seconds, not minutes): the instance schema's. */
export const MIN_DEADLINE_MS = GATE_DEADLINE_MS.min;
export const MAX_DEADLINE_MS = GATE_DEADLINE_MS.max;

function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 1);
}

/**
 * Reads an instance's stored `gate` policy. Accepts what the config loader resolves
 * (`{ deadlineMs, default }`) and the file spelling (`{ deadline: '2s' | 2000, default }`); anything
 * missing or unusable falls back to {@link DEFAULT_POLICY} (2 s / approve), and the deadline is
 * clamped to 50 ms..30 s (the schema refuses others now; a policy stored before it did may have one).
 *
 * @example
 * ```ts
 * resolvePolicy({ deadline: '1.5s', default: 'refuse' }); // { deadlineMs: 1500, defaultOutcome: 'refuse' }
 * resolvePolicy(null); // { deadlineMs: 2000, defaultOutcome: 'approve' }
 * ```
 */
export function resolvePolicy(gate: JsonValue | null | undefined): GatePolicy {
  if (!isJsonObject(gate)) return { ...DEFAULT_POLICY };
  const raw = durationMs(gate.deadlineMs) ?? durationMs(gate.deadline) ?? DEFAULT_POLICY.deadlineMs;
  const deadlineMs = Math.round(Math.min(MAX_DEADLINE_MS, Math.max(MIN_DEADLINE_MS, raw)));
  const defaultOutcome =
    gate.default === 'refuse'
      ? 'refuse'
      : gate.default === 'approve'
        ? 'approve'
        : DEFAULT_POLICY.defaultOutcome;
  return { deadlineMs, defaultOutcome };
}

/**
 * True when an approver subscription decides requests of this type from this source. Its
 * `approverFilters` (`{ events | eventTypes, sources }`) decide; absent filters mean every approval
 * request from every instance. The subscription's ordinary `eventTypes` do not apply: they are
 * about what it receives as events, not what it approves.
 *
 * @example
 * ```ts
 * approverMatches({ approver_filters: { sources: ['dp-main'] } }, 'appointment.booking_requested', 'dp-main'); // true
 * ```
 */
export function approverMatches(
  sub: { approver_filters: JsonValue | null },
  type: string,
  source: string,
): boolean {
  const f = isJsonObject(sub.approver_filters) ? sub.approver_filters : {};
  const types = Array.isArray(f.events) ? f.events : Array.isArray(f.eventTypes) ? f.eventTypes : undefined;
  if (types && !types.some((p) => typeof p === 'string' && typeMatches(p, type))) return false;
  if (Array.isArray(f.sources) && !f.sources.includes(source)) return false;
  return true;
}

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

/** What one approver's call means. */
export interface ApproverAnswer {
  outcome: AnswerOutcome;
  /** The approver's reason (refusals), or why it could not be reached. */
  reason: string | null;
  vendorErrorCode: number | null;
}

function parseBody(snippet: string | undefined): Record<string, unknown> | undefined {
  if (!snippet) return undefined;
  try {
    const value = JSON.parse(snippet) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The approver protocol (docs/gates.md): a 2xx approves unless its JSON body says
 * `"decision": "refuse"` (a JSON object that cannot be read, or a `decision` other than `approve`
 * and `refuse`, is no answer: `unavailable`); a 4xx refuses; the body may carry `reason` (text, ≤ 500 characters kept)
 * and `vendorErrorCode` (a 32-bit integer passed to the vendor, e.g. Docplanner's `error_code`; any
 * other value is ignored). A 5xx, a
 * redirect, a timeout or a connection failure is no answer at all: `unavailable`.
 *
 * @example
 * ```ts
 * readAnswer({ ok: false, status: 409, latencyMs: 3, responseSnippet: '{"reason":"slot taken","vendorErrorCode":7}' });
 * // { outcome: 'refuse', reason: 'slot taken', vendorErrorCode: 7 }
 * ```
 */
export function readAnswer(result: PostWebhookResult): ApproverAnswer {
  if (result.status === undefined)
    return { outcome: 'unavailable', reason: result.error ?? 'no answer', vendorErrorCode: null };
  const status = result.status;
  const body = parseBody(result.responseSnippet);
  // NUL (a `\u0000` escape in the JSON) is what Postgres refuses in text (storableText): kept, it failed the
  // statement that records the decision, and the request stayed `deciding` until the sweep.
  const reason =
    typeof body?.reason === 'string' && body.reason !== '' ? storableText(body.reason.slice(0, 500)) : null;
  const code = body?.vendorErrorCode;
  // The code is stored as a Postgres integer and sent to the vendor as a JSON integer: one outside
  // that range (`1e300`) failed the recording statement, and the vendor got `{"error_code":1e+300}`.
  const vendorErrorCode =
    typeof code === 'number' && Number.isInteger(code) && code >= INT32_MIN && code <= INT32_MAX
      ? code
      : null;
  if (status >= 200 && status < 300) {
    if (body?.decision === 'refuse') return { outcome: 'refuse', reason, vendorErrorCode };
    // A JSON object the hub cannot read cannot say what it decided: one cut at the read limit (a
    // refusal with a long reason, `{"decision":"refuse","reason":"…2 KB…"}`) and a malformed one
    // (`{"decision":"refuse"` without its brace) were read as unparseable, and so approved.
    if (body === undefined && result.responseSnippet?.trimStart().startsWith('{'))
      return {
        outcome: 'unavailable',
        reason: result.responseTruncated
          ? 'the JSON answer is longer than the hub reads and could not be understood'
          : 'the answer starts as a JSON object but is not valid JSON',
        vendorErrorCode: null,
      };
    // A decision the protocol does not have (`"REFUSE"`, `"reject"`, `false`) is not an approval:
    // the approver meant something, and approving was the one reading sure to be wrong for a no.
    if (body !== undefined && 'decision' in body && body.decision !== 'approve')
      return {
        outcome: 'unavailable',
        reason: `the answer's decision ${storableText(JSON.stringify(body.decision) ?? 'undefined').slice(0, 100)} is neither "approve" nor "refuse"`,
        vendorErrorCode: null,
      };
    return { outcome: 'approve', reason: null, vendorErrorCode: null };
  }
  if (status >= 400 && status < 500)
    return { outcome: 'refuse', reason: reason ?? `HTTP ${status}`, vendorErrorCode };
  return { outcome: 'unavailable', reason: `HTTP ${status}`, vendorErrorCode: null };
}

/** A decision as recorded and as handed to the connector's `gate.respond`. */
export interface Verdict {
  outcome: GateOutcome;
  reason: GateReason;
  /** The refusing approver (subscription id). */
  decidedBy: string | null;
  refusalReason: string | null;
  vendorErrorCode: number | null;
}

/**
 * Folds the answers received so far into a decision, or undefined while it is still open: the
 * first refusal decides; when everyone answered, all approvals approve, and any unavailable
 * approver gives the default.
 *
 * @example
 * ```ts
 * decide([{ subscriptionId: 'a', outcome: 'approve', ... }], 2, policy); // undefined: b has not answered
 * ```
 */
export function decide(
  answers: readonly (ApproverAnswer & { subscriptionId: string })[],
  approvers: number,
  policy: GatePolicy,
): Verdict | undefined {
  if (approvers === 0) return fallback('no_approvers', policy);
  const refusal = answers.find((a) => a.outcome === 'refuse');
  if (refusal) {
    return {
      outcome: 'refuse',
      reason: 'refused',
      decidedBy: refusal.subscriptionId,
      refusalReason: refusal.reason,
      vendorErrorCode: refusal.vendorErrorCode,
    };
  }
  if (answers.length < approvers) return undefined;
  if (answers.every((a) => a.outcome === 'approve')) {
    return {
      outcome: 'approve',
      reason: 'approved',
      decidedBy: null,
      refusalReason: null,
      vendorErrorCode: null,
    };
  }
  return fallback('unavailable', policy);
}

/** The configured default, for a reason that is not an approver's word. */
export function fallback(reason: GateReason, policy: GatePolicy): Verdict {
  return {
    outcome: policy.defaultOutcome,
    reason,
    decidedBy: null,
    refusalReason: null,
    vendorErrorCode: null,
  };
}

/**
 * The time the worker leaves itself to record a decision before the vendor must have its answer:
 * 10% of the deadline, between 20 and 150 ms.
 *
 * @example
 * ```ts
 * recordMargin(2000); // 150
 * ```
 */
export function recordMargin(deadlineMs: number): number {
  return Math.round(Math.min(150, Math.max(20, deadlineMs * 0.1)));
}
