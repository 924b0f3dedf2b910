import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  databaseErrorCounts,
  isDatabaseNotUpYet,
  isDatabaseUnavailable,
  latestDatabaseOutage,
  reportDatabaseUnavailable,
} from './unavailable.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    '55000', // ALTER DATABASE … ALLOW_CONNECTIONS false
    '57P01',
    '57P02',
    '57P03',
    '53300',
    '3D000',
    '25006', // read-only: a standby after a failover, default_transaction_read_only
    '57P04', // the database dropped under the session
    '57P05', // idle_session_timeout
    '53000', // insufficient_resources, the class
    '53100', // disk_full: "could not extend file"
    '53200', // out_of_memory, "out of shared memory" past max_locks_per_transaction too
    '53400', // configuration_limit_exceeded: temp_file_limit
    '58000', // system_error
    '58030', // io_error: "could not read block"
    '57014', // query_canceled: a statement_timeout, pg_cancel_backend
    '40001', // serialization_failure: run again, it goes through
    '40P01', // deadlock_detected: the same
    '08006',
    '08001',
    'ECONNREFUSED',
    'ECONNRESET',
    'ETIMEDOUT',
    'EPIPE',
  ])('says yes to %s', (code) => {
    expect(isDatabaseUnavailable(withCode(code))).toBe(true);
  });

  it('says yes to a statement prepared before a migration changed its columns, and no to any other 0A000', () => {
    // A run given up (storage/db.ts, isStalePlan); 0A000 otherwise is a statement Postgres does not support: a bug.
    expect(isDatabaseUnavailable(withCode('0A000', 'cached plan must not change result type'))).toBe(true);
    expect(isDatabaseUnavailable(withCode('0A000', 'LOCK TABLE is not supported here'))).toBe(false);
  });

  it.each([
    'timeout exceeded when trying to connect',
    'Connection terminated unexpectedly',
    'Client has encountered a connection error and is not queryable',
    'Cannot use a pool after calling end on the pool',
    'driver has already been destroyed',
  ])('says yes to "%s"', (message) => {
    expect(isDatabaseUnavailable(new Error(message))).toBe(true);
  });

  it('looks into an AggregateError (a refused connection to a name with several addresses)', () => {
    expect(isDatabaseUnavailable(new AggregateError([withCode('ECONNREFUSED')], ''))).toBe(true);
  });

  it('says no to statement errors, bugs and a vendor fetch that failed', () => {
    expect(isDatabaseUnavailable(withCode('22P02', 'invalid input syntax for type uuid'))).toBe(false);
    expect(isDatabaseUnavailable(withCode('23505', 'duplicate key'))).toBe(false);
    // A statement the hub got wrong stays a bug: no retry makes it right.
    expect(isDatabaseUnavailable(withCode('42703', 'column "x" does not exist'))).toBe(false);
    expect(isDatabaseUnavailable(withCode('54000', 'statement is too complex'))).toBe(false);
    expect(isDatabaseUnavailable(withCode('P0001', 'raised by a function'))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError('Cannot read properties of undefined'))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') }))).toBe(
      false,
    );
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});

describe('latestDatabaseOutage', () => {
  afterEach(() => vi.useRealTimers());
  const quiet = { warn() {}, debug() {} };
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

  it('joins reports less than a minute apart into one outage and starts another after a minute without', () => {
    vi.useFakeTimers({ now: new Date('2026-03-10T02:00:00Z'), toFake: ['Date'] });
    reportDatabaseUnavailable(quiet, refused, 'a pass');
    vi.setSystemTime(new Date('2026-03-10T02:00:50Z'));
    reportDatabaseUnavailable(quiet, refused, 'a pass');
    vi.setSystemTime(new Date('2026-03-10T02:01:40Z'));
    reportDatabaseUnavailable(quiet, refused, 'a pass');
    expect(latestDatabaseOutage()).toEqual({
      firstAt: new Date('2026-03-10T02:00:00Z'),
      lastAt: new Date('2026-03-10T02:01:40Z'),
      occurrences: 3,
      condition: null,
    });
    // Back for more than a minute, then refused again: a new outage, the old one is not stretched.
    vi.setSystemTime(new Date('2026-03-10T03:00:00Z'));
    reportDatabaseUnavailable(quiet, refused, 'a pass');
    expect(latestDatabaseOutage()).toEqual({
      firstAt: new Date('2026-03-10T03:00:00Z'),
      lastAt: new Date('2026-03-10T03:00:00Z'),
      occurrences: 1,
      condition: null,
    });
    // Then a full disk within the minute: the same outage, named by what Postgres said last.
    vi.setSystemTime(new Date('2026-03-10T03:00:10Z'));
    reportDatabaseUnavailable(
      quiet,
      Object.assign(new Error('could not extend file'), { code: '53100' }),
      'x',
    );
    expect(latestDatabaseOutage()).toMatchObject({
      occurrences: 2,
      condition: 'Postgres is out of disk space',
    });
  });
});

// After latestDatabaseOutage's cases: its reports count in the process's outage.
describe('reportDatabaseUnavailable', () => {
  it('says what a 57P01 ("terminating connection due to administrator command") means for the operator', () => {
    const warned: object[] = [];
    const debugged: object[] = [];
    const logger = { warn: (o: object) => warned.push(o), debug: (o: object) => debugged.push(o) };
    const terminated = withCode('57P01', 'terminating connection due to administrator command');
    reportDatabaseUnavailable(logger, terminated, 'pg-boss retries');
    reportDatabaseUnavailable(logger, terminated, 'pg-boss retries');
    const [line] = [...warned, ...debugged] as { dbError: { code: string; meaning?: string } }[];
    expect(line!.dbError.code).toBe('57P01');
    expect(line!.dbError.meaning).toMatch(
      /^Postgres ended this session: the server is stopping or restarting/,
    );
    expect(line!.dbError.meaning).toMatch(/pg_terminate_backend/);
    expect((debugged[0] as { dbError: { meaning?: string } }).dbError.meaning).toBe(line!.dbError.meaning);
    // A refused connection says what it says: no meaning added.
    reportDatabaseUnavailable(logger, withCode('ECONNREFUSED', 'connect ECONNREFUSED'), 'a pass');
    expect(JSON.stringify([...warned, ...debugged].at(-1))).not.toContain('meaning');
  });

  it.each([
    [
      '53100',
      'could not extend file "base/16384/16400": No space left on device',
      'Postgres is out of disk space',
    ],
    ['53200', 'out of shared memory', 'Postgres is out of memory'],
    [
      '58030',
      'could not read block 7 in file "base/16384/16400": Input/output error',
      'Postgres met an I/O error',
    ],
  ])('names the condition of a %s in its warning and says what to do', (code, message, condition) => {
    const warned: { obj: { dbError: { meaning?: string } }; msg: string }[] = [];
    const logger = {
      warn: (obj: object, msg: string) => warned.push({ obj: obj as never, msg }),
      debug() {},
    };
    reportDatabaseUnavailable(logger, withCode(code, message), 'pushes are answered 503');
    // Warned although another condition was warned of within 30 s (the case before): a new
    // condition is never hidden behind another's warning.
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toBe(
      `the database is unavailable (${condition}): pushes are answered 503 (further occurrences within 30 s are logged at debug)`,
    );
    expect(warned[0]!.obj.dbError.meaning).toMatch(/the hub|nothing can be stored/);
  });

  it('reports a deadlock, a serialization conflict or a cancel, but not as an outage', () => {
    vi.useFakeTimers({ now: new Date('2026-05-01T00:00:00Z'), toFake: ['Date'] });
    try {
      const before = latestDatabaseOutage();
      const warned: string[] = [];
      const logger = { warn: (_: object, msg: string) => warned.push(msg), debug() {} };
      reportDatabaseUnavailable(logger, withCode('40P01', 'deadlock detected'), 'the pass runs again');
      reportDatabaseUnavailable(
        logger,
        withCode('57014', 'canceling statement due to statement timeout'),
        'x',
      );
      expect(warned).toEqual([
        'a database statement was aborted (a deadlock): the pass runs again (further occurrences within 30 s are logged at debug)',
        'a database statement was aborted (canceled): x (further occurrences within 30 s are logged at debug)',
      ]);
      expect(latestDatabaseOutage()).toEqual(before);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('databaseErrorCounts', () => {
  it('counts every operation reported, warned or not, under a fixed condition label', () => {
    const logger = { warn() {}, debug() {} };
    const before = new Map(databaseErrorCounts());
    const moved = (label: string) =>
      (databaseErrorCounts().get(label as never) ?? 0) - (before.get(label as never) ?? 0);
    for (let i = 0; i < 3; i++)
      reportDatabaseUnavailable(logger, withCode('53100', 'could not extend file'), 'x');
    reportDatabaseUnavailable(logger, withCode('53200', 'out of shared memory'), 'x');
    reportDatabaseUnavailable(logger, withCode('53400', 'temp_file_limit'), 'x');
    reportDatabaseUnavailable(logger, withCode('58030', 'could not read block'), 'x');
    reportDatabaseUnavailable(logger, withCode('25006', 'read-only transaction'), 'x');
    reportDatabaseUnavailable(logger, withCode('40P01', 'deadlock detected'), 'x');
    reportDatabaseUnavailable(logger, withCode('ECONNREFUSED', 'connect ECONNREFUSED'), 'x');
    reportDatabaseUnavailable(logger, withCode('57P01', 'terminating connection'), 'x');
    reportDatabaseUnavailable(logger, new Error('Connection terminated unexpectedly'), 'x');
    expect(
      Object.fromEntries(
        [
          'disk_full',
          'out_of_memory',
          'resource_limit',
          'io_error',
          'read_only',
          'aborted',
          'unreachable',
        ].map((l) => [l, moved(l)]),
      ),
    ).toEqual({
      disk_full: 3,
      out_of_memory: 1,
      resource_limit: 1,
      io_error: 1,
      read_only: 1,
      aborted: 1,
      unreachable: 3,
    });
  });
});

describe('isDatabaseNotUpYet', () => {
  it('waits out a refused, unreachable or starting Postgres, not a refused password, a missing database or bad TLS', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', '57P03', '53300', '08006'])
      expect(isDatabaseNotUpYet(withCode(code)), code).toBe(true);
    expect(isDatabaseNotUpYet(new AggregateError([withCode('ECONNREFUSED')], ''))).toBe(true);
    for (const code of ['28P01', '28000', '3D000', '57P04', 'ERR_INVALID_URL', 'DEPTH_ZERO_SELF_SIGNED_CERT'])
      expect(isDatabaseNotUpYet(withCode(code)), code).toBe(false);
    expect(isDatabaseNotUpYet(new Error('The server does not support SSL connections'))).toBe(false);
  });
});

describe('a pool with no connection free', () => {
  it('is its own condition, worded as the pool, counted as pool_exhausted, and no outage', () => {
    vi.useFakeTimers({ now: new Date('2026-06-01T00:00:00Z'), toFake: ['Date'] });
    try {
      const before = latestDatabaseOutage();
      const counted = databaseErrorCounts().get('pool_exhausted') ?? 0;
      const warned: string[] = [];
      const logger = { warn: (_: object, msg: string) => warned.push(msg), debug() {} };
      // What pg's pool says to a caller queued behind every connection checked out (storage/db.ts).
      const exhausted = new Error('timeout exceeded when trying to connect');
      expect(isDatabaseUnavailable(exhausted)).toBe(true);
      reportDatabaseUnavailable(logger, exhausted, 'the pass runs again');
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatch(
        /^no database connection was free \(no connection of the hub's pool came free in time/,
      );
      expect(warned[0]).not.toMatch(/the database is unavailable/);
      expect(databaseErrorCounts().get('pool_exhausted')).toBe(counted + 1);
      expect(latestDatabaseOutage()).toEqual(before);
      // A new connection Postgres is slow to accept is the database's, as before.
      reportDatabaseUnavailable(logger, new Error('Connection terminated due to connection timeout'), 'x');
      expect(warned[1]).toMatch(/^the database is unavailable: x/);
    } finally {
      vi.useRealTimers();
    }
  });
});
