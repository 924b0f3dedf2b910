import { type ErrorCode, errorCodes } from './registry.ts';

/**
 * The base of every error Switchyard raises on purpose. `code` is stable and documented in
 * `docs/errors.md`; `details` carries structured context for problem+json answers and logs and must
 * never contain secrets.
 *
 * @example
 * ```ts
 * throw new SwitchyardError('SY_EVENT_UNKNOWN_TYPE', 'no schema for appointment.teleported');
 * ```
 */
export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = errorCodes[code].status;
    this.details = options?.details;
  }

  /** The registry's title for this error's code. */
  get title(): string {
    return errorCodes[this.code].title;
  }
}

/** True for any error that carries a Switchyard code, also across package copies. */
export function isSwitchyardError(error: unknown): error is SwitchyardError {
  return (
    error instanceof SwitchyardError ||
    (typeof error === 'object' &&
      error !== null &&
      typeof (error as { code?: unknown }).code === 'string' &&
      (error as { code: string }).code in errorCodes)
  );
}
