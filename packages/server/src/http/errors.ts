import { errorCodes, isSwitchyardError } from '@switchyard/core';
import { HttpError, type HttpErrorCode, type ValidationIssue } from '../admin/http.ts';
import { plusAsSpaceHint } from '../fhir/search.ts';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../storage/unavailable.ts';

/**
 * An RFC 9457 problem document as every Switchyard HTTP error answer carries it
 * (`Content-Type: application/problem+json`).
 */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The request path that produced the problem. */
  instance: string;
  code: string;
  errors?: ValidationIssue[];
  /** Structured context from the error (never secrets); only on 4xx answers. */
  details?: Record<string, unknown>;
}

/** Base of the `type` URIs: one per code, documented in docs/errors.md. */
export const PROBLEM_TYPE_BASE = 'https://switchyard.dev/problems/';

/**
 * Builds a problem document for a registered code.
 *
 * @example
 * ```ts
 * problemOf('SY_HTTP_NOT_FOUND', 'no route GET /x', '/x'); // { type: 'https://switchyard.dev/problems/SY_HTTP_NOT_FOUND', status: 404, ... }
 * ```
 */
export function problemOf(
  code: string,
  detail: string,
  instance: string,
  extra: { status?: number; errors?: ValidationIssue[]; details?: Record<string, unknown> } = {},
): ProblemDocument {
  const spec = (errorCodes as Record<string, { status: number; title: string } | undefined>)[code];
  const status = extra.status ?? spec?.status ?? 500;
  return {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: spec?.title ?? 'Error',
    status,
    detail,
    instance,
    code,
    ...(extra.errors ? { errors: extra.errors } : {}),
    ...(extra.details && status < 500 ? { details: extra.details } : {}),
  };
}

/**
 * The answer to a request that met an unavailable database (anything `isDatabaseUnavailable`
 * says yes to): 503 `SY_STORAGE_UNAVAILABLE` with `Retry-After`, so vendors and clients retry.
 *
 * @example
 * ```ts
 * const { problem, headers } = databaseUnavailableAnswer('/hooks/dp');
 * return sendProblem(reply, problem, headers);
 * ```
 */
export function databaseUnavailableAnswer(instance: string): {
  problem: ProblemDocument;
  headers: Record<string, string>;
} {
  return {
    problem: problemOf(
      'SY_STORAGE_UNAVAILABLE',
      'the database cannot be used right now; try again later',
      instance,
    ),
    headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
  };
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: {
    keyword?: string;
    instancePath?: string;
    message?: string;
    params?: Record<string, unknown>;
    /** The schema the failing keyword belongs to (ajv's `verbose`): its `x-message`, when it has one. */
    parentSchema?: Record<string, unknown>;
    /** The value that failed (ajv's `verbose`): read for a hint only, never shown. */
    data?: unknown;
  }[];
  validationContext?: string;
}

const FASTIFY_CODES: Record<string, HttpErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SY_HTTP_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SY_HTTP_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'SY_HTTP_MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'SY_HTTP_MALFORMED_BODY',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SY_HTTP_MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_TYPE: 'SY_HTTP_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'SY_HTTP_UNSUPPORTED_MEDIA_TYPE',
};

function issuePointer(v: { instancePath?: string; params?: Record<string, unknown> }): string {
  const base = v.instancePath ?? '';
  const missing = v.params?.missingProperty ?? v.params?.additionalProperty;
  return typeof missing === 'string' ? `${base}/${missing.replace(/~/g, '~0').replace(/\//g, '~1')}` : base;
}

/**
 * Turns anything thrown while answering a request into a problem document and the headers to send.
 * Unexpected errors become a bare 500 (`internal: true`): the caller logs them, the client learns
 * nothing about internals.
 */
export function problemFromError(
  error: unknown,
  instance: string,
): { problem: ProblemDocument; headers: Record<string, string>; internal: boolean } {
  const e = (error ?? {}) as FastifyLikeError;
  if (Array.isArray(e.validation)) {
    const where = e.validationContext ?? 'body';
    // The `if` of a conditional rule only says which branch failed; the branch's own error says why
    // (as admin/input.ts and the config loader drop it). Kept if it were the only one.
    const failed = e.validation.filter((v) => v.keyword !== 'if');
    const all = (failed.length > 0 ? failed : e.validation).map((v) => ({
      in: where,
      pointer: issuePointer(v),
      message:
        typeof v.parentSchema?.['x-message'] === 'string'
          ? v.parentSchema['x-message']
          : // A date whose zone's `+` came unescaped (a space) says so, as FHIR date search does.
            `${v.message ?? 'is not valid'}${v.keyword === 'format' && where === 'querystring' ? plusAsSpaceHint(v.data) : ''}`,
    }));
    // Several keywords of one field failing say its `x-message` once each (a cursor too long for
    // `maxLength` and `pattern` alike): the answer named the same words twice.
    const issues = all.filter(
      (i, n) => all.findIndex((o) => o.pointer === i.pointer && o.message === i.message) === n,
    );
    const summary = issues.map((i) => `${i.in}${i.pointer} ${i.message}`).join('; ');
    return {
      problem: problemOf('SY_HTTP_VALIDATION', summary, instance, { errors: issues }),
      headers: {},
      internal: false,
    };
  }
  if (error instanceof HttpError) {
    return {
      problem: problemOf(error.code, error.message, instance, {
        ...(error.issues ? { errors: error.issues } : {}),
        ...(error.details ? { details: error.details } : {}),
      }),
      headers: error.headers,
      internal: false,
    };
  }
  if (isSwitchyardError(error) && error.code === 'SY_STORAGE_UNAVAILABLE') {
    return { ...databaseUnavailableAnswer(instance), internal: false };
  }
  if (isSwitchyardError(error)) {
    const internal = error.status >= 500;
    const issues = bodyIssues(error.details?.errors);
    return {
      problem: problemOf(error.code, internal ? 'an unexpected error occurred' : error.message, instance, {
        ...(issues && !internal ? { errors: issues } : {}),
        ...(error.details ? { details: error.details } : {}),
      }),
      headers: {},
      internal,
    };
  }
  if (typeof e.code === 'string' && e.code in FASTIFY_CODES) {
    return {
      problem: problemOf(FASTIFY_CODES[e.code]!, e.message ?? '', instance),
      headers: {},
      internal: false,
    };
  }
  if (isDatabaseUnavailable(error)) return { ...databaseUnavailableAnswer(instance), internal: false };
  if (typeof e.code === 'string' && /^22[0-9A-Z]{3}$/.test(e.code)) {
    // A Postgres data exception from a request value (a NUL in a path id, a malformed cursor):
    // the client's input, not a server fault.
    return {
      problem: problemOf(
        'SY_HTTP_BAD_REQUEST',
        'the request carries a value that cannot be used (such as a NUL character)',
        instance,
      ),
      headers: {},
      internal: false,
    };
  }
  const status = e.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // A 400 without a code of its own is the JSON parser's (a poisoned prototype key); any other
    // status is a condition of the request a library could not meet (the dashboard's files: a
    // Range past the end, 416; an If-Match, 412), not a body that could not be parsed.
    const code: HttpErrorCode =
      status === 404
        ? 'SY_HTTP_NOT_FOUND'
        : status === 413
          ? 'SY_HTTP_BODY_TOO_LARGE'
          : status === 415
            ? 'SY_HTTP_UNSUPPORTED_MEDIA_TYPE'
            : status === 400
              ? 'SY_HTTP_MALFORMED_BODY'
              : 'SY_HTTP_BAD_REQUEST';
    return { problem: problemOf(code, e.message ?? '', instance, { status }), headers: {}, internal: false };
  }
  return {
    problem: problemOf(
      'SY_HTTP_INTERNAL',
      'an unexpected error occurred; the server log has the details',
      instance,
    ),
    headers: {},
    internal: true,
  };
}

/**
 * A subsystem's refusal that lists what is wrong with the request's body (`details.errors`, each
 * `{ path, message }` with a JSON Pointer: `SY_COMMAND_INVALID`) in the form every validation
 * problem has, top-level `errors` of `{ in: 'body', pointer, message }`, so a client reads one shape
 * (`details.errors` stays, as before).
 */
function bodyIssues(list: unknown): ValidationIssue[] | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const issues: ValidationIssue[] = [];
  for (const item of list) {
    const { path, message } = (item ?? {}) as { path?: unknown; message?: unknown };
    if (typeof path !== 'string' || typeof message !== 'string') return undefined;
    issues.push({ in: 'body', pointer: path, message });
  }
  return issues;
}
