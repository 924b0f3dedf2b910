import { SwitchyardError } from './switchyard-error.ts';

/**
 * How a connector failure is handled:
 * - `auth`: the inbound request is refused with 401; nothing is stored.
 * - `bad_request`: the inbound request is refused with 400; nothing is stored.
 * - `transient`: the work is retried with backoff (vendor API down, timeout, 5xx, 429).
 * - `permanent`: the inbound message is marked failed with the reason, visible and replayable.
 */
export type ConnectorErrorKind = 'auth' | 'bad_request' | 'transient' | 'permanent';

const codeOf = {
  auth: 'SY_CONNECTOR_AUTH',
  bad_request: 'SY_CONNECTOR_BAD_REQUEST',
  transient: 'SY_CONNECTOR_TRANSIENT',
  permanent: 'SY_CONNECTOR_PERMANENT',
} as const;

/**
 * The one error class connectors throw. Use the static constructors; the kind decides the retry.
 *
 * @example
 * ```ts
 * if (!timingSafeEqualString(given, config.apiKey)) throw ConnectorError.auth('API key does not match');
 * if (res.status >= 500) throw ConnectorError.transient(`vendor API answered ${res.status}`, { retryAfterMs: 5000 });
 * ```
 */
export class ConnectorError extends SwitchyardError {
  readonly kind: ConnectorErrorKind;
  /** For transient errors: the earliest sensible retry, e.g. from a vendor's Retry-After. */
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: ConnectorErrorKind,
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown; retryAfterMs?: number },
  ) {
    super(codeOf[kind], message, options);
    this.kind = kind;
    this.retryAfterMs = options?.retryAfterMs;
  }

  static auth(message: string, details?: Record<string, unknown>): ConnectorError {
    return new ConnectorError('auth', message, { details });
  }

  static badRequest(message: string, details?: Record<string, unknown>): ConnectorError {
    return new ConnectorError('bad_request', message, { details });
  }

  static transient(
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown; retryAfterMs?: number },
  ): ConnectorError {
    return new ConnectorError('transient', message, options);
  }

  static permanent(
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown },
  ): ConnectorError {
    return new ConnectorError('permanent', message, options);
  }
}

/** True when `error` is a ConnectorError (also across package copies). */
export function isConnectorError(error: unknown): error is ConnectorError {
  return (
    error instanceof ConnectorError ||
    (typeof error === 'object' &&
      error !== null &&
      typeof (error as { kind?: unknown }).kind === 'string' &&
      typeof (error as { code?: unknown }).code === 'string' &&
      (error as { code: string }).code.startsWith('SY_CONNECTOR_'))
  );
}
