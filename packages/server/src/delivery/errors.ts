import { type ErrorCode, SwitchyardError } from '@switchyard/core';

/** The codes {@link DeliveryError} carries (the `delivery` section of the error registry). */
export type DeliveryErrorCode = Extract<ErrorCode, `SY_DELIVERY_${string}`>;

/**
 * The error the delivery primitives throw: bad signing secrets, tampered sealed secrets, invalid
 * retry schedules or durations, refused destinations. `details` never contains secret material.
 *
 * @example
 * ```ts
 * throw new DeliveryError('SY_DELIVERY_SCHEDULE_INVALID', 'retry schedule must not be empty', {
 *   details: { path: 'subscriptions[0].retrySchedule' },
 * });
 * ```
 */
export class DeliveryError extends SwitchyardError {
  declare readonly code: DeliveryErrorCode;

  constructor(
    code: DeliveryErrorCode,
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * True when `error` is a {@link DeliveryError} (also across package copies, by code prefix).
 *
 * @example
 * ```ts
 * try { openSecret(sealed, key); } catch (e) { if (isDeliveryError(e) && e.code === 'SY_DELIVERY_SECRET_TAMPERED') ... }
 * ```
 */
export function isDeliveryError(error: unknown): error is DeliveryError {
  return (
    error instanceof DeliveryError ||
    (typeof error === 'object' &&
      error !== null &&
      typeof (error as { code?: unknown }).code === 'string' &&
      (error as { code: string }).code.startsWith('SY_DELIVERY_'))
  );
}
