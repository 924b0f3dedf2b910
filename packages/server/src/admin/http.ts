/**
 * What every admin route shares, wherever it lives (`http/` or a concept's `routes.ts`): the error
 * an HTTP face raises itself and the bearer-token reading of its credentials. Here, below both the
 * concepts and `http/`, so a concept's routes use them without importing `http/` (which registers
 * the routes: that import would close a cycle). `http/errors.ts` turns an `HttpError` into a
 * problem+json answer.
 */
import { type ErrorCode, SwitchyardError } from '@switchyard/core';
import type { FastifyRequest } from 'fastify';

/** The codes of the HTTP area (`SY_HTTP_*`). */
export type HttpErrorCode = Extract<ErrorCode, `SY_HTTP_${string}`>;

/** One schema violation in a `SY_HTTP_VALIDATION` problem. */
export interface ValidationIssue {
  /** Which part of the request: `body`, `querystring`, `params` or `headers`. */
  in: string;
  /** JSON Pointer to the offending value inside that part (`''` for the part itself). */
  pointer: string;
  message: string;
}

/**
 * An error raised by the HTTP layer itself (authentication, routing, validation, a route's own
 * rule such as "declared in the configuration file").
 *
 * @example
 * ```ts
 * throw new HttpError('SY_HTTP_UNAUTHORIZED', 'missing bearer token');
 * ```
 */
export class HttpError extends SwitchyardError {
  /** Extra headers for the answer, e.g. `WWW-Authenticate` or `Allow`. */
  readonly headers: Record<string, string>;
  readonly issues: ValidationIssue[] | undefined;

  constructor(
    code: HttpErrorCode,
    message: string,
    options?: {
      headers?: Record<string, string>;
      issues?: ValidationIssue[];
      details?: Record<string, unknown>;
    },
  ) {
    super(code, message, options?.details ? { details: options.details } : undefined);
    this.headers = options?.headers ?? {};
    this.issues = options?.issues;
  }
}

const CHALLENGE = { 'www-authenticate': 'Bearer realm="switchyard"' };

/**
 * The token of an `Authorization: Bearer <token>` header, if there is one.
 *
 * @example
 * ```ts
 * const presented = bearerToken(request); // 'whsec_…' or undefined
 * ```
 */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/**
 * The 401 every refused credential gets (the same whatever was wrong, so nothing is revealed).
 *
 * @example
 * ```ts
 * if (!presented) throw unauthorized('the feed needs Authorization: Bearer <subscription secret>');
 * ```
 */
export function unauthorized(detail = 'a valid bearer token is required'): HttpError {
  return new HttpError('SY_HTTP_UNAUTHORIZED', detail, { headers: CHALLENGE });
}

/**
 * The configuration file as a refusal of a file-managed instance or subscription names it (409
 * `SY_HTTP_FILE_MANAGED`): by its path when the hub was started from one (`buildApp`'s
 * `configFile`), so an operator with several files knows which to change; else without.
 *
 * @example
 * ```ts
 * `instance "shop" is declared in ${theConfigFile('/etc/switchyard/switchyard.yaml')}`;
 * // instance "shop" is declared in the configuration file "/etc/switchyard/switchyard.yaml"
 * ```
 */
export function theConfigFile(configFile: string | undefined): string {
  return configFile ? `the configuration file ${JSON.stringify(configFile)}` : 'the configuration file';
}
