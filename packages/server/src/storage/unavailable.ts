/**
 * The one answer to "is this error the database being unavailable?", used by every caller that
 * must tell an outage (answer 503, release leases, retry later) from a real fault (a bug, bad
 * input). Keeping it here, beside the storage code, is what stops two copies from drifting.
 */

/**
 * SQLSTATEs that mean the database refuses or dropped the session, not that a statement was wrong:
 * 55000 the database does not accept connections (`ALTER DATABASE … ALLOW_CONNECTIONS false`),
 * 57P01/57P02/57P03 terminated by an administrator / crash shutdown / cannot connect now
 * (starting, stopping, recovering), 57P04 the database was dropped under the session, 57P05 the
 * session was ended by `idle_session_timeout`, 3D000 the database does not exist, 25006 the session
 * cannot write (a standby the database's address points at after a failover,
 * `default_transaction_read_only` set for maintenance or by a provider whose disk is full; the hub
 * never opens a read-only transaction itself), 58000/58030 a system or I/O error of the server (a
 * failing disk). Class 08 (connection exceptions) and class 53 (insufficient resources: 53100 disk
 * full, 53200 out of memory, including "out of shared memory" for locks past
 * `max_locks_per_transaction`, 53300 too many connections, 53400 a configuration limit such as
 * `temp_file_limit`) are matched as classes: the server cannot do the work now, whatever the
 * statement, and the operator has to free the resource.
 */
const UNAVAILABLE_SQLSTATES = new Set([
  '55000',
  '57P01',
  '57P02',
  '57P03',
  '57P04',
  '57P05',
  '3D000',
  '25006',
  '58000',
  '58030',
]);

/**
 * SQLSTATEs that say nothing of the statement or of the database's health, only that this run of
 * it did not finish: 40001 serialization failure and 40P01 deadlock (Postgres aborted the
 * transaction to let another go on: run again, it goes through), 57014 query canceled (the hub
 * sets no `statement_timeout`: a role's, database's or pooler's one, or an operator's
 * `pg_cancel_backend`). The work is retried as after an outage, never counted as the message's,
 * delivery's or command's own failure; they are not reported as an outage.
 */
const RETRY_SQLSTATES = new Set(['40001', '40P01', '57014']);

/**
 * The text of 0A000 when a statement prepared on a connection before a migration changed the
 * columns it returns is run again (storage/db.ts, `isStalePlan`): like {@link RETRY_SQLSTATES}, this
 * run was given up (its connection is closed, the next prepares it afresh). Only with this text:
 * 0A000 is also what Postgres answers a statement it does not support, which is a bug.
 */
const STALE_PLAN = /cached plan must not change result type/;

/** Whether an error with this code and message is a run given up ({@link RETRY_SQLSTATES}, {@link STALE_PLAN}). */
function isGivenUp(code: string | undefined, message: unknown): boolean {
  if (code === undefined) return false;
  return (
    RETRY_SQLSTATES.has(code) || (code === '0A000' && typeof message === 'string' && STALE_PLAN.test(message))
  );
}

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
 * True when `error` means Postgres cannot do the work right now (refused, unreachable, dropped,
 * out of disk, memory or locks, an I/O error, shutting down; or this one run of it was aborted by a
 * deadlock, a serialization conflict or a cancel): the caller should answer 503 with `Retry-After`
 * or try again later, never treat it as a bug, as bad input or as a failure of the message,
 * delivery or command it was working on. Looks into the `errors` of an `AggregateError` (Node reports
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
    if (
      code.startsWith('08') ||
      code.startsWith('53') ||
      UNAVAILABLE_SQLSTATES.has(code) ||
      isGivenUp(code, message) ||
      NETWORK_CODES.has(code)
    )
      return true;
  }
  if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
  return Array.isArray(errors) && errors.some((e) => isDatabaseUnavailable(e, depth + 1));
}

/**
 * SQLSTATEs {@link isDatabaseUnavailable} says yes to that waiting does not cure at a first
 * connection: 3D000 the database does not exist, 57P04 it was dropped. Someone has to create it.
 */
const NOT_CURED_BY_WAITING = new Set(['3D000', '57P04']);

/**
 * The first connection failed in a way that may pass by itself: Postgres refused or did not answer
 * (not started yet, restarting, a host name that does not resolve yet), says it is starting up
 * (57P03) or has no connection slot free. What `switchyard start` waits out
 * (`database.startupWait`). Not a refused password (class 28), a missing database (3D000), a URL
 * the driver cannot parse or a TLS failure: those end the start at once.
 *
 * @example
 * ```ts
 * if (!isDatabaseNotUpYet(error)) throw error; // else wait and try again
 * ```
 */
export function isDatabaseNotUpYet(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return isDatabaseUnavailable(error) && !(typeof code === 'string' && NOT_CURED_BY_WAITING.has(code));
}

/** Seconds a client is asked to wait (`Retry-After`) when the database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * What an operator reading the log should take from the SQLSTATEs whose text ("terminating
 * connection due to administrator command", "could not extend file") reads like a fault of the
 * hub's, or says nothing of what to do: none is a fault of the hub's or of the work it was doing,
 * and the hub carries on by itself once the cause is gone. 57P01 (admin_shutdown) came with no word
 * on who ended the session; a graceful stop of the hub's own makes none (its connections are closed
 * before its embedded Postgres stops: e2e/clean-stop.int.test.ts).
 */
const MEANINGS: Readonly<Record<string, string>> = {
  '57P01':
    'Postgres ended this session: the server is stopping or restarting (a maintenance, a failover), or an administrator ended it (pg_terminate_backend, DROP DATABASE … WITH (FORCE)); the hub reconnects once Postgres accepts connections again',
  '57P02':
    'Postgres ended this session because another server process crashed; it restarts and the hub reconnects',
  '57P03': 'Postgres does not accept connections yet (starting, stopping or recovering); the hub tries again',
  '57P04': "the hub's database was dropped; nothing can be stored until it is restored",
  '57P05': 'Postgres ended this idle session (idle_session_timeout); the hub reconnects',
  '25006':
    'the database accepts no writes (a standby after a failover, or default_transaction_read_only); the hub tries again',
  '53100':
    'Postgres is out of disk space: nothing can be stored until space is freed; pushes are answered 503 (the vendor keeps them) and the hub’s work waits, none of it counted as failed',
  '53200':
    'Postgres is out of memory, or of shared memory for locks (max_locks_per_transaction); the hub tries again, none of its work counted as failed',
  '53300': 'Postgres has no connection slot free (max_connections); the hub tries again',
  '53400': 'a Postgres configuration limit was reached (temp_file_limit, …); the hub tries again',
  '58000': 'Postgres met a system error; check the server; the hub tries again',
  '58030':
    'Postgres could not read or write a data file (an I/O error): check the server’s disks; the hub tries again, none of its work counted as failed',
  '57014':
    'Postgres canceled the statement: a statement_timeout (the hub sets none: the role’s, the database’s or a pooler’s) or an operator (pg_cancel_backend); the work is run again, not counted as failed',
  '40001': 'a serialization conflict with another transaction aborted this one; the work is run again',
  '40P01': 'a deadlock with another transaction aborted this one; the work is run again',
  '0A000':
    'a statement this process prepared before a migration changed the columns it returns (a rolling upgrade); its connection is closed and the work is run again on another',
};

/**
 * The `condition` label of `switchyard_database_errors_total` for a SQLSTATE (or a socket error,
 * `undefined` for none): a fixed, small set, so that the series stay few whatever Postgres sends.
 */
export type DatabaseErrorCondition =
  | 'disk_full'
  | 'out_of_memory'
  | 'no_connection_slot'
  | 'resource_limit'
  | 'io_error'
  | 'read_only'
  | 'aborted'
  | 'pool_exhausted'
  | 'unreachable';

/** A condition as the metric labels it and, where Postgres says what it is, as the warning and the dashboard word it. */
interface Condition {
  label: DatabaseErrorCondition;
  words?: string;
}

/** The conditions by SQLSTATE; another of class 53 is a `resource_limit`, anything else `unreachable`. */
const CONDITIONS: Readonly<Record<string, Condition>> = {
  '53100': { label: 'disk_full', words: 'Postgres is out of disk space' },
  '53200': { label: 'out_of_memory', words: 'Postgres is out of memory' },
  '53300': { label: 'no_connection_slot', words: 'Postgres has no connection slot free' },
  '53400': { label: 'resource_limit', words: 'a Postgres configuration limit was reached' },
  '58000': { label: 'io_error' },
  '58030': { label: 'io_error', words: 'Postgres met an I/O error' },
  '25006': { label: 'read_only', words: 'Postgres accepts no writes' },
};

/**
 * What the pg pool says when no connection of its own came free within its connect timeout
 * (`connectionTimeoutMillis`, storage/db.ts): said only to a caller queued behind a full pool,
 * every connection checked out by the hub itself. Postgres may be answering well: the
 * connections are busy (long transactions, statements waiting for locks). Reported as an outage
 * ("the database is unavailable"), it sent an operator after a Postgres outage that never
 * happened. A new connection Postgres is slow to accept fails otherwise ("Connection terminated
 * due to connection timeout"): that one is `unreachable`.
 */
const POOL_EXHAUSTED = /timeout exceeded when trying to connect/;

/** The pool's condition: what its warning says. */
const POOL_CONDITION: Condition = {
  label: 'pool_exhausted',
  words:
    "no connection of the hub's pool came free in time: every one was busy with the hub's own work (long transactions, statements waiting for locks); Postgres itself may be answering",
};

/** The runs given up ({@link isGivenUp}), by SQLSTATE: what aborted them. */
const ABORTED: Readonly<Record<string, string>> = {
  '57014': 'canceled',
  '40P01': 'a deadlock',
  '40001': 'a serialization conflict',
  '0A000': 'prepared before a migration',
};

/** The condition of an error {@link isDatabaseUnavailable} said yes to. */
function conditionOf(code: string | undefined, message: unknown): Condition {
  if (code === undefined)
    return typeof message === 'string' && POOL_EXHAUSTED.test(message)
      ? POOL_CONDITION
      : { label: 'unreachable' };
  if (isGivenUp(code, message)) return { label: 'aborted', words: ABORTED[code] };
  return CONDITIONS[code] ?? { label: code.startsWith('53') ? 'resource_limit' : 'unreachable' };
}

/** What a warning says a condition is, so that a new one is never hidden behind another's warning. */
function warningOf(condition: Condition): string {
  if (condition.label === 'aborted') return `a database statement was aborted (${condition.words})`;
  if (condition.label === 'pool_exhausted') return `no database connection was free (${condition.words})`;
  return condition.words ? `the database is unavailable (${condition.words})` : 'the database is unavailable';
}

/** Operations {@link reportDatabaseUnavailable} was told of since the process started, by condition. */
const errorCounts = new Map<DatabaseErrorCondition, number>();

/**
 * How many operations of this process met each database condition since it started (every call of
 * {@link reportDatabaseUnavailable}, warned or not): what `switchyard_database_errors_total`
 * serves. `/readyz` and `switchyard_database_up` only read, and a full disk answers reads; this is
 * what moves when Postgres refuses the hub's writes. Process memory, like {@link latestDatabaseOutage}.
 *
 * @example
 * ```ts
 * databaseErrorCounts().get('disk_full'); // 3
 * ```
 */
export function databaseErrorCounts(): ReadonlyMap<DatabaseErrorCondition, number> {
  return errorCounts;
}

/** At most one warning per this many ms about the same condition; the rest are debug. */
const WARN_EVERY_MS = 30_000;
let lastWarnedAt = 0;
let lastWarnedCondition = '';
let unreported = 0;

/**
 * Logs that an operation met an unavailable database: a warning (code and message, no stack, and
 * for a SQLSTATE whose text misleads, what it means: `dbError.meaning`) at most once every 30 s
 * per process and condition (its message names it: "the database is unavailable (Postgres is out
 * of disk space): …"), debug lines otherwise. An outage makes every request and worker pass fail
 * the same way; one line says it, thousands of stacks would bury it. A statement aborted by a
 * deadlock, a serialization conflict or a cancel, and a pool with no connection free (every one
 * busy: `pool_exhausted`), are reported the same way but are no outage: they are not counted in
 * {@link latestDatabaseOutage}.
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
  const found = conditionOf(code, e.message);
  const condition = warningOf(found);
  errorCounts.set(found.label, (errorCounts.get(found.label) ?? 0) + 1);
  const now = Date.now();
  // Neither is the database being unavailable: an aborted run goes again, a busy pool is the hub's own.
  if (found.label !== 'aborted' && found.label !== 'pool_exhausted') noteOutage(now, found.words ?? null);
  if (now - lastWarnedAt >= WARN_EVERY_MS || condition !== lastWarnedCondition) {
    lastWarnedAt = now;
    lastWarnedCondition = condition;
    logger.warn(
      { ...fields, similarSinceLastWarning: unreported },
      `${condition}: ${what} (further occurrences within 30 s are logged at debug)`,
    );
    unreported = 0;
    return;
  }
  unreported++;
  logger.debug(fields, `${condition}: ${what}`);
}

/**
 * Two reports further apart than this are two outages: every worker pass and request meets an
 * outage within seconds, so a minute of silence means the database answered meanwhile.
 */
const OUTAGE_GAP_MS = 60_000;

/**
 * The latest outage this process met: when it first and last met it, how many operations, and the
 * condition it last met when Postgres named one ("Postgres is out of disk space"; null for a
 * refused, dropped or unreachable session), so that the dashboard says what the warnings say.
 */
export interface DatabaseOutage {
  firstAt: Date;
  lastAt: Date;
  occurrences: number;
  condition: string | null;
}

let latestOutage:
  | { firstAt: number; lastAt: number; occurrences: number; condition: string | null }
  | undefined;

function noteOutage(now: number, condition: string | null): void {
  if (latestOutage && now - latestOutage.lastAt <= OUTAGE_GAP_MS) {
    latestOutage.lastAt = now;
    latestOutage.occurrences++;
    latestOutage.condition = condition;
  } else {
    latestOutage = { firstAt: now, lastAt: now, occurrences: 1, condition };
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
 * const o = latestDatabaseOutage(); // { firstAt, lastAt, occurrences: 412, condition: 'Postgres is out of disk space' }
 * ```
 */
export function latestDatabaseOutage(): DatabaseOutage | undefined {
  return latestOutage
    ? {
        firstAt: new Date(latestOutage.firstAt),
        lastAt: new Date(latestOutage.lastAt),
        occurrences: latestOutage.occurrences,
        condition: latestOutage.condition,
      }
    : undefined;
}
