import type pg from 'pg';

/**
 * Errors a real Postgres raises when it runs out of something or gives a statement up, with the
 * text it gives them, for {@link injectSqlstate}. What the hub must make of each is decided in
 * `unavailable.ts`; these are how a test meets them without filling a disk or breaking one.
 */
export const SQLSTATE_FAULTS = {
  diskFull: {
    sqlstate: '53100',
    message: 'could not extend file "base/16384/16421": No space left on device',
  },
  outOfMemory: { sqlstate: '53200', message: 'out of shared memory' },
  configurationLimit: {
    sqlstate: '53400',
    message: 'temporary file size exceeds temp_file_limit (1024kB)',
  },
  ioError: {
    sqlstate: '58030',
    message: 'could not read block 7 in file "base/16384/16421": Input/output error',
  },
  canceled: { sqlstate: '57014', message: 'canceling statement due to statement timeout' },
  deadlock: { sqlstate: '40P01', message: 'deadlock detected' },
  serialization: {
    sqlstate: '40001',
    message: 'could not serialize access due to concurrent update',
  },
} as const satisfies Record<string, { sqlstate: string; message: string }>;

/** One of {@link SQLSTATE_FAULTS}, or any SQLSTATE with its text. */
export type SqlstateFault = { sqlstate: string; message: string };

/** A fault switched on by {@link injectSqlstate}. */
export interface InjectedFault {
  /** Switches it off: the table's statements go through again. */
  clear(): Promise<void>;
  /** How many rows it failed so far (a sequence, which a rollback does not take back). */
  raised(): Promise<number>;
}

let injected = 0;

/**
 * Makes every `on` statement on a hub table (`switchyard.<table>`, or pg-boss's `switchyard_queue.<table>`) fail with `fault`'s SQLSTATE and
 * text, raised by Postgres itself (a `BEFORE … FOR EACH ROW` trigger), until `clear()`: the error
 * the hub's driver receives is exactly the one a full disk or a cancel sends, root-free and
 * deterministic. `when` narrows it to some rows (a trigger `WHEN` condition over `new`/`old`).
 * `admin` is any connection to the test's database able to create triggers (the hub's own
 * database URL in tests). The trigger takes a brief table lock to install and to drop.
 *
 * @example
 * ```ts
 * const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, { table: 'inbound_messages', on: ['insert'] });
 * // pushes are answered 503 …
 * await full.clear();
 * ```
 */
export async function injectSqlstate(
  admin: pg.Client | pg.Pool,
  fault: SqlstateFault,
  target: {
    table: string;
    on: readonly ('insert' | 'update' | 'delete')[];
    when?: string;
    /** `switchyard_queue` for pg-boss's own tables (its `job`); the hub's by default. */
    schema?: 'switchyard' | 'switchyard_queue';
  },
): Promise<InjectedFault> {
  if (!/^[0-9A-Z]{5}$/.test(fault.sqlstate)) throw new Error(`not a SQLSTATE: ${fault.sqlstate}`);
  if (!/^[a-z_]+$/.test(target.table)) throw new Error(`not a hub table: ${target.table}`);
  const table = `${target.schema ?? 'switchyard'}.${target.table}`;
  const name = `sy_test_fault_${++injected}_${process.pid}`;
  const text = fault.message.replaceAll("'", "''");
  await admin.query(`create sequence public.${name}`);
  await admin.query(`create function public.${name}() returns trigger language plpgsql as $f$
      begin
        perform nextval('public.${name}');
        raise exception '%', '${text}' using errcode = '${fault.sqlstate}';
      end $f$`);
  await admin.query(
    `create trigger ${name} before ${target.on.join(' or ')} on ${table}
       for each row ${target.when ? `when (${target.when})` : ''} execute function public.${name}()`,
  );
  return {
    async clear() {
      await admin.query(`drop trigger if exists ${name} on ${table}`);
      await admin.query(`drop function if exists public.${name}()`);
      await admin.query(`drop sequence if exists public.${name}`);
    },
    async raised() {
      const r = await admin.query(
        `select case when is_called then last_value else 0 end as n from public.${name}`,
      );
      return Number(r.rows[0]?.n ?? 0);
    },
  };
}
