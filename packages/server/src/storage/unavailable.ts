/**
 * The one answer to "is this error the database being unavailable?", used by every caller that
 * must tell an outage (answer 503, release leases, retry later) from a real fault (a bug, bad
 * input). Keeping it here, beside the storage code, is what stops two copies from drifting.
 */

/**
 * SQLSTATEs that mean the database refuses or dropped the session, not that a statement was wrong:
 * 55000 the database does not accept connections (`ALTER DATABASE … ALLOW_CONNECTIONS false`),
 * 57P01/57P02/57P03 terminated by an administrator / crash shutdown / cannot connect now
 * (starting, stopping, recovering), 53300 too many connections, 3D000 the database does not exist,
 * 25006 the session cannot write (a standby the database's address points at after a failover,
 * `default_transaction_read_only` set for maintenance or by a provider whose disk is full; the
 * hub never opens a read-only transaction itself). Class 08 (connection exceptions) is matched as
 * a class.
 */
const UNAVAILABLE_SQLSTATES = new Set(['55000', '57P01', '57P02', '57P03', '53300', '3D000', '25006']);

/** Node socket error codes on the way to the database. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * What the driver, the pool and Kysely say when there is no usable connection: a pool connect
 * timeout, a connection that ended mid-query, a client left unusable by a connection error, a pool
 * or Kysely instance already closed (a process shutting down), and socket errors that come as
 * text only.
 */
const UNAVAILABLE_MESSAGE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|timeout exceeded when trying to connect|Connection terminated|not queryable|pool.*(ended|destroyed)|Cannot use a pool after calling end|driver has already been destroyed/i;

/**
 * True when `error` means Postgres cannot be used right now (refused, unreachable, dropped, full,
 * shutting down): the caller should answer 503 with `Retry-After` or try again later, never
 * treat it as a bug or as bad input. Looks into the `errors` of an `AggregateError` (Node reports
 * a refused connection to a name with several addresses that way, with an empty message). Not
 * into `cause`: a failed `fetch` to a vendor carries ECONNREFUSED there, and that is no outage
 * of ours.
 *
 * @example
 * ```ts
 * try { await q.getInstance(db, id); }
 * catch (error) { if (isDatabaseUnavailable(error)) return answer503(); throw error; }
 * ```
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 4) return false;
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string') {
    if (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) || NETWORK_CODES.has(code)) return true;
  }
  if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
  return Array.isArray(errors) && errors.some((e) => isDatabaseUnavailable(e, depth + 1));
}

/** Seconds a client is asked to wait (`Retry-After`) when the database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * What an operator reading the log should take from the SQLSTATEs whose text ("terminating
 * connection due to administrator command") reads like a fault of the hub's: none is, and the hub
 * reconnects on its own. 57P01 (admin_shutdown) came with no word on who ended the session; a
 * graceful stop of the hub's own makes none (its connections are closed before its embedded
 * Postgres stops: e2e/clean-stop.int.test.ts).
 */
const MEANINGS: Readonly<Record<string, string>> = {
  '57P01':
    'Postgres ended this session: the server is stopping or restarting (a maintenance, a failover), or an administrator ended it (pg_terminate_backend, DROP DATABASE … WITH (FORCE)); the hub reconnects once Postgres accepts connections again',
  '57P02':
    'Postgres ended this session because another server process crashed; it restarts and the hub reconnects',
  '57P03': 'Postgres does not accept connections yet (starting, stopping or recovering); the hub tries again',
  '25006':
    'the database accepts no writes (a standby after a failover, or default_transaction_read_only); the hub tries again',
};

/** At most one warning per this many ms about the database being unavailable; the rest are debug. */
const WARN_EVERY_MS = 30_000;
let lastWarnedAt = 0;
let unreported = 0;

/**
 * Logs that an operation met an unavailable database: a warning (code and message, no stack, and
 * for a SQLSTATE whose text misleads, what it means: `dbError.meaning`) at most once every 30 s per process, debug lines otherwise. An outage makes every request and
 * worker pass fail the same way; one line says it, thousands of stacks would bury it.
 *
 * @example
 * ```ts
 * if (isDatabaseUnavailable(error)) reportDatabaseUnavailable(request.log, error, 'answering 503');
 * ```
 */
export function reportDatabaseUnavailable(
  logger: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void },
  error: unknown,
  what: string,
): void {
  const e = (error ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const meaning = code === undefined ? undefined : MEANINGS[code];
  const fields = {
    dbError: { code, message: String(e.message ?? e), ...(meaning ? { meaning } : {}) },
  };
  const now = Date.now();
  noteOutage(now);
  if (now - lastWarnedAt >= WARN_EVERY_MS) {
    lastWarnedAt = now;
    logger.warn(
      { ...fields, similarSinceLastWarning: unreported },
      `the database is unavailable: ${what} (further occurrences within 30 s are logged at debug)`,
    );
    unreported = 0;
    return;
  }
  unreported++;
  logger.debug(fields, `the database is unavailable: ${what}`);
}

/**
 * Two reports further apart than this are two outages: every worker pass and request meets an
 * outage within seconds, so a minute of silence means the database answered meanwhile.
 */
const OUTAGE_GAP_MS = 60_000;

/** The latest outage this process met: when it first and last met it, and how many operations. */
export interface DatabaseOutage {
  firstAt: Date;
  lastAt: Date;
  occurrences: number;
}

let latestOutage: { firstAt: number; lastAt: number; occurrences: number } | undefined;

function noteOutage(now: number): void {
  if (latestOutage && now - latestOutage.lastAt <= OUTAGE_GAP_MS) {
    latestOutage.lastAt = now;
    latestOutage.occurrences++;
  } else {
    latestOutage = { firstAt: now, lastAt: now, occurrences: 1 };
  }
}

/**
 * The latest database outage this process met (every operation {@link reportDatabaseUnavailable}
 * was told of), or undefined when none since it started. The logs' warnings say the same once
 * every 30 s; this is what the dashboard's overview shows an operator after the fact. Process
 * memory: a restart forgets it, another replica has its own.
 *
 * @example
 * ```ts
 * const o = latestDatabaseOutage(); // { firstAt, lastAt, occurrences: 412 }
 * ```
 */
export function latestDatabaseOutage(): DatabaseOutage | undefined {
  return latestOutage
    ? {
        firstAt: new Date(latestOutage.firstAt),
        lastAt: new Date(latestOutage.lastAt),
        occurrences: latestOutage.occurrences,
      }
    : undefined;
}
