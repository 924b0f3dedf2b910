import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  type PostgresPoolClient,
  type QueryResult,
  type RawBuilder,
  sql,
} from 'kysely';
import pg from 'pg';
import { socketOf, watchUnacknowledged } from './unacknowledged.ts';

/** Every query function takes one of these: the hub's Kysely instance or a transaction of it. */
export type Executor = Kysely<unknown>;

/**
 * A random UUID (v4) for rows whose id needs no stability.
 *
 * @example
 * ```ts
 * const id = newId(); // '3f2b…'
 * ```
 */
export function newId(): string {
  return randomUUID();
}

/** The rows of a query (the store modules' one way to run their SQL). */
export async function rows<T>(
  q: { execute(db: Executor): Promise<{ rows: T[] }> },
  db: Executor,
): Promise<T[]> {
  return (await q.execute(db)).rows;
}

/** The first row of a query, or undefined. */
export async function first<T>(
  q: { execute(db: Executor): Promise<{ rows: T[] }> },
  db: Executor,
): Promise<T | undefined> {
  return (await q.execute(db)).rows[0];
}

/**
 * The database's clock: the one `now()` writes into rows (`processed_at`, `noted_at`), for a bound
 * compared with them later; the process's clock may differ from it.
 *
 * @example
 * ```ts
 * const startedAt = await databaseNow(db); // rows written from here on have a time >= it
 * ```
 */
export async function databaseNow(db: Executor): Promise<Date> {
  return (await first<{ now: Date }>(sql`select now() as now`, db))!.now;
}

/** Where an argument of a {@link statement} goes: a parameter of its compiled text. */
class Slot {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
}

/** A {@link statement} with its arguments: what {@link rows} and {@link first} run. */
export interface BoundStatement {
  execute<R>(db: Executor): Promise<QueryResult<R>>;
}

/**
 * A statement whose text is built and compiled once, at its first run, and whose parameters are
 * filled in by position at every run. For the pipeline's hottest statements: building the
 * normalize commit through kysely (its fragments, then the compile of an 11-kB text with 30
 * parameters) cost 65 µs of the hub's CPU a call, and finding the statement's server-side name by
 * a fresh copy of that text 8.5 µs more; at 200 events/s each event is a commit of its own
 * (bench/analysis.md, session 33). The text, compiled once, is the same string at every run.
 *
 * `build` gets the arguments as slots: each `${args.name}` it puts in the text, itself or through
 * a fragment it calls, becomes that argument's parameter; any other value in the text is a constant
 * of the statement. So `build` must not look into an argument (`args.ids.map(…)`, a test of one):
 * a slot is not the value (reading a property of one throws, or gives undefined). What varies
 * from run to run goes in as an argument the caller computes.
 *
 * @example
 * ```ts
 * const eventsOf = statement<{ ids: string[]; limit: number }>(
 *   (args) => sql`select * from switchyard.events where id = any(${args.ids}::uuid[]) limit ${args.limit}`,
 * );
 * const found = await rows<EventRow>(eventsOf.with({ ids, limit: 10 }), db);
 * ```
 */
export function statement<A extends object>(
  build: (args: A) => RawBuilder<unknown>,
): { with(args: A): BoundStatement } {
  let compiled: { text: string; parameters: readonly unknown[] } | undefined;
  const slots = new Proxy({} as A, { get: (_, key) => new Slot(String(key)) });
  return {
    with: (args) => ({
      async execute<R>(db: Executor): Promise<QueryResult<R>> {
        if (compiled === undefined) {
          const query = build(slots).compile(db);
          compiled = { text: query.sql, parameters: query.parameters };
        }
        const values = compiled.parameters.map((p) =>
          p instanceof Slot ? (args as Record<string, unknown>)[p.key] : p,
        );
        return db.executeQuery<R>(CompiledQuery.raw(compiled.text, values));
      },
    }),
  };
}

/** A value as a `jsonb` parameter. */
export const json = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;

/**
 * SQL: a `from` item that has the statement's own (autocommit) transaction commit without waiting
 * for its WAL flush (`set_config(..., true)` is `SET LOCAL`, read at the commit). Only for a write
 * whose durability a later commit that does wait provides, or that may be lost in a crash: the
 * notifier's NOTIFYs (host/notifier.ts), the gate request's insert (gates/store.ts) and the attempt
 * record (`finishDeliveries`, deliveries/store.ts) say why each.
 *
 * @example
 * ```ts
 * sql`insert into t (a) select ${a}::text from ${NO_FLUSH_WAIT} returning id`;
 * ```
 */
export const NO_FLUSH_WAIT = sql.raw(`set_config('synchronous_commit', 'off', true)`);

/**
 * A batch's JSON texts as a `jsonb[]` expression sent as ONE `jsonb` parameter: the way to pass
 * the JSON column of a batch (the parallel arrays of `unnest(…)`) instead of `${texts}::jsonb[]`,
 * with the same values and NULLs. Each text must be JSON (`JSON.stringify` output); a null is SQL
 * NULL, distinct from the text `'null'` (jsonb null).
 *
 * Why: pg escapes every element of an array parameter (`escapeElement`: two `replace` passes and
 * a copy of each string), the largest allocation of the hub under load, and Postgres then parses
 * the array literal before parsing each element as jsonb. Here the texts are joined as they are
 * into one JSON array, each wrapped in a one-element array so that SQL NULL can travel as `[]`
 * (`-> 0` gives the value, or SQL NULL for `[]`), and Postgres parses it once
 * (bench/analysis.md, "Hub CPU per event").
 *
 * @example
 * ```ts
 * sql`insert into switchyard.events (id, envelope)
 *     select * from unnest(${ids}::uuid[], ${jsonBatch(events.map((e) => JSON.stringify(e)))})`;
 * ```
 */
export function jsonBatch(texts: readonly (string | null)[]): RawBuilder<unknown> {
  return jsonBatchOf(jsonBatchText(texts));
}

/**
 * The one parameter of {@link jsonBatch}: the texts joined. For a {@link statement}, whose
 * arguments are computed by the caller: its text takes `${jsonBatchOf(args.envelopes)}`, its
 * caller passes `envelopes: jsonBatchText(texts)`.
 */
export function jsonBatchText(texts: readonly (string | null)[]): string {
  let batch = '[';
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    batch += `${i === 0 ? '' : ','}${text === null ? '[]' : `[${text}]`}`;
  }
  return `${batch}]`;
}

/** {@link jsonBatch}'s expression over its parameter, {@link jsonBatchText}'s text. */
export function jsonBatchOf(batch: string): RawBuilder<unknown> {
  return sql`array(select e -> 0 from jsonb_array_elements(${batch}::jsonb) with ordinality as j(e, n) order by n)`;
}

/**
 * The first word of the `application_name` of every session a Switchyard process opens (its pools,
 * its LISTEN connection, pg-boss's): how a process tells, in `pg_stat_activity`, whether any session
 * that is not a Switchyard process's of a version that names its sessions is still connected.
 * Versions before 33edb87 set none (their sessions show `''`), and held a pull turn's lease for a
 * fixed five minutes: a process takes such a lease over at once when no such session is left
 * (instances/store.ts, `claimDuePulls`; docs/operations.md, "Upgrades"). Sessions are named
 * `switchyard <session tag>` ({@link sessionApplicationName}), by which a process's liveness is told
 * ({@link sessionsConnected}); versions from 33edb87 to this one named them `switchyard` alone. A
 * database URL's own `application_name` would take precedence (pg reads the URL last): the hub
 * leaves it out ({@link withoutApplicationName}).
 */
export const SESSION_APPLICATION_NAME = 'switchyard';

/**
 * How long Postgres waits on a silent session of the hub before it gives up on it, ending its
 * backend (its locks, its `pg_stat_activity` row): the bound on telling a process whose host was
 * lost (power, a network partition) from a live one ({@link sessionsConnected}). Without them the
 * kernel's defaults applied, 7200 + 75 × 9 s (about 2 h 11 min), for a gate retry waiting out the
 * request's deadline, a pull lease waiting out its time, a partitioned process's locks held.
 *
 * - Keepalives, for a session that is idle (most are): a probe after 30 s of silence, then every
 *   10 s, three unanswered: gone after about 60 s.
 * - `tcp_user_timeout`, for a backend whose data stays unacknowledged (a NOTIFY or a reply to a
 *   lost host, which the kernel otherwise retransmits for ~15 min, `tcp_retries2`): the same 60 s.
 *   Linux lets it decide for keepalive too (the socket dies at the first probe past it), so the
 *   two agree.
 * - `client_connection_check_interval`, for a backend running a statement: it reads its socket
 *   only when the statement ends, and polls it every second instead, so a killed process's long
 *   statement (a migration, a lock wait) ends within a second rather than when it would have.
 *
 * Why 60 s: a process cut off from the database that long has lost its work leases anyway (30 s,
 * `workers.normalizeLease`, `commands.lease`: it cannot renew them), so taking it for gone then
 * costs nothing a lease would not; and a probe per idle connection every 30 s is nothing beside
 * the hub's own idle ticks. Not a config setting: a different bound is for an unusual network, and
 * the database URL's `options` parameter sets any of these for every session
 * (`?options=-c%20tcp_keepalives_idle%3D120`, read after the hub's: {@link sessionConfig}).
 *
 * Every supported Postgres (15+) has all five; the `tcp_*` ones are startup options (Postgres 12+),
 * `client_connection_check_interval` (14+) is set only where the server knows it
 * ({@link CHECK_CLIENT_SETTING}), so that the hub still starts on an older one.
 */
export const SESSION_LIVENESS = {
  keepalivesIdleSeconds: 30,
  keepalivesIntervalSeconds: 10,
  keepalivesCount: 3,
  userTimeoutMs: 60_000,
  clientCheckIntervalMs: 1000,
} as const;

/**
 * After how long without a byte this process's own side of a connection probes the database
 * (TCP keepalive, `keepAliveInitialDelayMillis`): how a connection to a lost Postgres host is
 * found dead. Node 24 (libuv 1.49) then probes every second, ten times (strace: `TCP_KEEPINTVL` 1,
 * `TCP_KEEPCNT` 10), so an idle connection is closed ~40 s after the host went silent. Node sets no
 * `TCP_USER_TIMEOUT`, and keepalive does not probe a socket whose bytes the lost host never
 * acknowledged (the kernel retransmits them ~15 min): the plan-stable pool bounds such a statement
 * at {@link PLAN_STABLE_STALL_MS}, the main pool at `SESSION_LIVENESS.userTimeoutMs` of
 * retransmission (storage/unacknowledged.ts).
 */
export const CLIENT_KEEPALIVE_MS = 30_000;

/**
 * SQL: sets `client_connection_check_interval` ({@link SESSION_LIVENESS}) when the server has it
 * (Postgres 14+) and does nothing where it does not: as a startup option, an unknown parameter
 * refuses the connection (`FATAL: unrecognized configuration parameter`), and the hub would not
 * start. Run with the pools' session settings: the hub's statements, migrations and admin
 * statements run there; the LISTEN connection runs none that last, and pg-boss's are its own short
 * ones.
 */
export const CHECK_CLIENT_SETTING = `select set_config(name, '${SESSION_LIVENESS.clientCheckIntervalMs}', false) from pg_settings where name = 'client_connection_check_interval'`;

/**
 * The connection settings of every session the hub opens (its pools, its LISTEN connection,
 * pg-boss's pool and LISTEN connection): the database URL without its `options` parameter, and
 * the startup `options` that give the session its {@link SESSION_LIVENESS} bounds, then
 * `settings` (the caller's own `-c name=value`), then the URL's own `options`. pg reads a URL's
 * parameters after its options, so before, a URL's `options` replaced the hub's; now an operator's
 * `-c` comes last and wins over the hub's for the same parameter. Client-side TCP keepalive too
 * ({@link CLIENT_KEEPALIVE_MS}).
 *
 * @example
 * ```ts
 * new pg.Client({ ...sessionConfig(url, '-c jit=off'), application_name: sessionApplicationName(tag) });
 * sessionConfig('postgres://u@db/sy?options=-c%20tcp_keepalives_idle%3D120').options;
 * // '-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 -c tcp_user_timeout=60000 -c tcp_keepalives_idle=120'
 * ```
 */
export function sessionConfig(
  databaseUrl: string,
  settings = '',
): { connectionString: string; options: string; keepAlive: true; keepAliveInitialDelayMillis: number } {
  const l = SESSION_LIVENESS;
  const own =
    `-c tcp_keepalives_idle=${l.keepalivesIdleSeconds} -c tcp_keepalives_interval=${l.keepalivesIntervalSeconds} ` +
    `-c tcp_keepalives_count=${l.keepalivesCount} -c tcp_user_timeout=${l.userTimeoutMs}`;
  let connectionString = databaseUrl;
  let fromUrl = '';
  try {
    const parsed = new URL(databaseUrl);
    if (parsed.searchParams.has('options')) {
      fromUrl = parsed.searchParams.get('options') ?? '';
      parsed.searchParams.delete('options');
      connectionString = parsed.toString();
    }
  } catch {
    // Not a URL pg could read either: pg reports it at connect.
  }
  return {
    connectionString,
    options: [own, settings, fromUrl].filter((part) => part !== '').join(' '),
    keepAlive: true,
    keepAliveInitialDelayMillis: CLIENT_KEEPALIVE_MS,
  };
}

/** What a session tag looks like: `s` and 16 hex digits (64 random bits), {@link newSessionTag}. */
const SESSION_TAG = /^s[0-9a-f]{16}$/;

/**
 * `url` without its `application_name` parameter, if it has one (else `url` as given). pg reads a
 * URL's parameters after its options, so a URL's `application_name` would replace the name that
 * tells the other processes this one is alive ({@link sessionsConnected}): with it, every process
 * looked gone to the others, and a gate retry took up a live decider's request, a pull claim a live
 * holder's lease. The hub leaves it out and says so (pipeline/hub.ts).
 *
 * @example
 * ```ts
 * withoutApplicationName('postgres://u@db/sy?application_name=crm&sslmode=require'); // 'postgres://u@db/sy?sslmode=require'
 * ```
 */
export function withoutApplicationName(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!parsed.searchParams.has('application_name')) return url;
  parsed.searchParams.delete('application_name');
  return parsed.toString();
}

/**
 * A new session tag: what names every session of one hub (one `openDatabase` and the LISTEN
 * connection and pg-boss of its hub) in `pg_stat_activity`, so that another process, on any host,
 * tells whether this one is alive by asking the database ({@link sessionsConnected}). Random, not
 * the worker id itself: a worker id (hostname, boot id, pid namespace, pid) may pass the 63 bytes
 * Postgres keeps of an `application_name`; the tag ends the worker ids that carry it
 * ({@link sessionTagOf}).
 *
 * @example
 * ```ts
 * newSessionTag(); // 's3f9a0c1e2b4d5f67'
 * ```
 */
export function newSessionTag(): string {
  return `s${randomBytes(8).toString('hex')}`;
}

/**
 * The `application_name` of the sessions of the hub tagged `tag` (28 bytes).
 *
 * @example
 * ```ts
 * new pg.Client({ connectionString: url, application_name: sessionApplicationName(tag) });
 * ```
 */
export function sessionApplicationName(tag: string): string {
  return `${SESSION_APPLICATION_NAME} ${tag}`;
}

/**
 * The session tag a worker id ends with (`….<tag>`: gate worker ids, pull lease holders), or
 * undefined for an id that carries none (an earlier version's, a test's): the liveness of such a
 * worker cannot be asked of the database.
 *
 * @example
 * ```ts
 * sessionTagOf('hub-1#0c9e1d2a77f3.4026531836/812/1a2b3c4d.s3f9a0c1e2b4d5f67'); // 's3f9a0c1e2b4d5f67'
 * sessionTagOf('hub-1/812/1a2b3c4d'); // undefined
 * ```
 */
export function sessionTagOf(workerId: string | null): string | undefined {
  const tag = workerId?.slice(workerId.lastIndexOf('.') + 1);
  return tag !== undefined && SESSION_TAG.test(tag) ? tag : undefined;
}

/**
 * Whether a session named for the hub tagged `tag` (a text expression) is connected to the cluster:
 * the one test of another process's liveness, in SQL for statements that decide by it (the pull
 * lease takeover). Every hub keeps its LISTEN connection open for its whole life, reconnecting
 * within a second when it drops, so a live hub has a session; Postgres ends a process's sessions
 * when their sockets close: at once when the process is killed (its kernel closes them), and when
 * its host is lost only once Postgres gives up on their silent sockets, about 60 s
 * ({@link SESSION_LIVENESS}; docs/operations.md, "Telling a dead process from a live one"). Any
 * role sees every session's `application_name`, whether or not it may see the rest of the row
 * (`pg_read_all_stats`), and with `track_activities` off.
 *
 * `since`: when the hub last wrote what is being judged (a lease's renewal, a claim). Postgres
 * (re)started after it (a restart, a failover) ended every process's sessions, and a live one may
 * not have reconnected yet (its LISTEN connection comes back a second after it dropped): then the
 * hub counts as connected, and the caller keeps its rule for a holder it cannot tell (waits out
 * the lease, the deadline). A hub that wrote after the start had reconnected, and its absence now
 * means it is gone.
 *
 * When this server started serving: its postmaster's start, or for a standby promoted since (a
 * failover), the commit of the last transaction it replayed. A standby runs long before it is
 * promoted, so its `pg_postmaster_start_time()` is older than any lease the old primary wrote, and
 * with it alone every live hub looked gone for the second it took to reconnect to the new primary
 * (measured on a promoted Postgres 15 standby: start 02:55:32.44, lease written 02:55:40.79, last
 * replayed commit 02:55:40.82). A claim or lease present on the promoted server was replayed, so
 * its write committed before that last replayed commit. Null (ignored by `greatest`) on a server
 * that never replayed.
 */
export function sessionsConnected(
  tag: RawBuilder<unknown> | string,
  since: RawBuilder<unknown> | Date,
): RawBuilder<boolean> {
  return sql<boolean>`(greatest(pg_postmaster_start_time(), pg_last_xact_replay_timestamp()) >= ${since}
    or exists (select from pg_stat_activity a
    where a.application_name = ${SESSION_APPLICATION_NAME} || ' ' || ${tag}))`;
}

/**
 * Whether the worker `workerId`, which wrote at `since` (its claim), is known to be gone, by the
 * database: its id carries a session tag ({@link sessionTagOf}), Postgres has not restarted since
 * it wrote, and no session of that tag is connected ({@link sessionsConnected}). An id without a
 * tag, or no `since`, is never known gone. Works across hosts, containers and restarts; a host
 * lost is told only once Postgres has ended its sessions ({@link SESSION_LIVENESS}).
 *
 * @example
 * ```ts
 * if (await workerGone(db, row.claimed_by, row.claimed_at)) takeItUp(row);
 * ```
 */
export async function workerGone(
  db: Executor,
  workerId: string | null,
  since: Date | null,
): Promise<boolean> {
  const tag = sessionTagOf(workerId);
  if (tag === undefined || since === null) return false;
  const r = await first<{ connected: boolean }>(
    sql`select ${sessionsConnected(tag, sql`${since}::timestamptz`)} as connected`,
    db,
  );
  return r?.connected === false;
}

/**
 * How long a pool keeps an idle connection (pg's default is 10 s). The hub's idle work comes in
 * ticks 30 s apart (the workers' poll backstop, the commands and gates sweeps, pg-boss's
 * backstops), so with 10 s every tick found its connections closed and opened new ones, a backend
 * start-up each in Postgres (4 new connections in the 30 s of e2e/idle.int.test.ts). Connections a
 * burst opened still close, five minutes after it.
 */
export const POOL_IDLE_TIMEOUT_MS = 5 * 60_000;

/**
 * How long a connection of the plan-stable pool may be checked out with no byte to or from the
 * database before it is taken for dead and closed (its statement fails, as in an outage, and the
 * pool opens a new connection). A connection left half-open (a failover behind a virtual address,
 * a NAT or firewall losing its state) carries nothing and reports nothing: its statement waited
 * until the kernel gave up, ~15 minutes, and the ingest statements queued behind it left every
 * vendor push unanswered while `/readyz`, on a fresh connection, said ready. The pool runs only the
 * hot path's single statements (ingest, the claims, the normalize commit, the attempt record),
 * milliseconds each; the other pool, where migrations and long admin statements run, has no such
 * bound.
 */
export const PLAN_STABLE_STALL_MS = 15_000;

/** The hub's database handles: one pool shared by the API and the workers. */
export interface Database {
  /** Connections that plan every statement afresh (`force_custom_plan`): all but plan-stable statements. */
  pool: pg.Pool;
  /**
   * Connections that run cached generic plans (`force_generic_plan`, with only nested loops over
   * index lookups to choose from: {@link PLAN_STABLE_SETTINGS}), for plan-stable statements run on
   * their own ({@link PLAN_STABLE}); absent unless `openDatabase` was asked for them.
   */
  planStablePool?: pg.Pool;
  db: Kysely<unknown>;
  /**
   * What names every session of these pools (`switchyard <tag>`, {@link sessionApplicationName}):
   * the hub names its LISTEN connection and pg-boss's sessions with it too, so that other processes
   * tell whether this one is alive ({@link workerGone}).
   */
  sessionTag: string;
  close(): Promise<void>;
}

// bigint columns (sequences, lags) come back as strings (pg's default): a sequence beyond 2^53
// never loses precision; convert where a number is safe.

/**
 * Opens the pools and a Kysely instance on them: `max` connections for every statement, and
 * `planStable` more (default none) for plan-stable statements run on their own (see
 * {@link PLAN_STABLE}): as many as such statements run at once, so that none waits for another.
 *
 * @example
 * ```ts
 * const { db, close } = openDatabase('postgres://postgres@127.0.0.1:5432/switchyard', { max: 10 });
 * ```
 */
export function openDatabase(
  databaseUrl: string,
  options: {
    max?: number;
    planStable?: number;
    /** {@link PLAN_STABLE_STALL_MS} unless given (tests of the bound). */
    planStableStallMs?: number;
    /** {@link SESSION_LIVENESS}`.userTimeoutMs` unless given (tests of the bound, storage/unacknowledged.ts). */
    unacknowledgedMs?: number;
    /** The tag that names the sessions ({@link Database.sessionTag}); a new one unless given. */
    sessionTag?: string;
  } = {},
): Database {
  const sessionTag = options.sessionTag ?? newSessionTag();
  const applicationName = sessionApplicationName(sessionTag);
  const pool = openPool(databaseUrl, applicationName, options.max ?? 10, PLANNED_SETTINGS);
  // The main pool's statements may rightly be silent for minutes (migrations, purges), so it is
  // bounded by what the kernel says of its bytes instead (storage/unacknowledged.ts).
  const unwatch = watchUnacknowledged(pool, {
    boundMs: options.unacknowledgedMs ?? SESSION_LIVENESS.userTimeoutMs,
  });
  const planStablePool =
    (options.planStable ?? 0) > 0
      ? openPool(
          databaseUrl,
          applicationName,
          options.planStable!,
          PLAN_STABLE_SETTINGS,
          options.planStableStallMs ?? PLAN_STABLE_STALL_MS,
        )
      : undefined;
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: {
        connect: async () => preparing(pool, planStablePool),
        end: async () => {
          await Promise.all([pool.end(), planStablePool?.end()]);
        },
        options: pool.options,
        Client: pg.Client,
      },
    }),
  });
  let closed = false;
  return {
    pool,
    planStablePool,
    db,
    sessionTag,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
      unwatch();
      // pg's pool.end() resolves once it has asked each connection to end, before Postgres has
      // closed them: the embedded Postgres, stopped right after, terminated those still open
      // ("FATAL: terminating connection due to administrator command", 57P01, in half of the
      // graceful stops). The stop waits for them, at most SOCKETS_CLOSE_MS.
      await socketsClosed([pool, planStablePool]);
    },
  };
}

/** The longest {@link Database.close} waits for its connections to be closed by Postgres. */
const SOCKETS_CLOSE_MS = 2000;

/** Per pool, a promise per connection it opened, resolved once Postgres closed it (its `end`). */
const connectionEnds = new WeakMap<pg.Pool, Set<Promise<void>>>();

/** Resolves once every connection the pools opened has ended, or after {@link SOCKETS_CLOSE_MS}. */
async function socketsClosed(pools: readonly (pg.Pool | undefined)[]): Promise<void> {
  const ends = pools.flatMap((p) => (p ? [...(connectionEnds.get(p) ?? [])] : []));
  if (ends.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(ends),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SOCKETS_CLOSE_MS);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * Session settings of the pool's connections: every statement planned for the tables as they are
 * now, and never compiled by JIT. Postgres JIT-compiles a plan whose estimated cost passes
 * `jit_above_cost` (100,000 by default, JIT on by default since Postgres 12), on every execution of
 * a statement planned each time: on a table of a backlog's size the idle pass of the deliver worker
 * passed it, and compiling added 18–32 ms to each execution (~200 ms to a session's first) of a
 * statement that ran in ~180 ms (bench/analysis.md, session 24). The hub's statements are short lookups and writes that compiling never pays for.
 * pg-boss's sessions get the same (`bossSession` in host/boss.ts).
 */
const PLANNED_SETTINGS = `set plan_cache_mode = force_custom_plan; set jit = off; ${CHECK_CLIENT_SETTING}`;

/**
 * Session settings of the plan-stable pool's connections. A generic plan is made once, often while
 * the queue tables are empty and never analyzed, when every index and every scan looks like one
 * row: left free, the planner hashes a sequential scan of the table against a statement's few
 * `unnest()` rows, or scans a bitmap of a whole partial index, plans that stay cached as the table
 * grows. With sequential scans, bitmap scans, hash and merge joins off, what is left for a table
 * joined to parameters is a nested loop probing an index with each row, the plan that is right at
 * any size. (Off only adds a huge cost: a table with no usable index is still scanned, so a marked
 * statement must have one; a configuration-sized table such as `subscriptions` is scanned.) Which
 * index is still a plan choice: see {@link PLAN_STABLE} for what a marked statement must avoid.
 * JIT is off because that added cost passes `jit_above_cost`: the delivery claim's plan was then
 * compiled on every execution, 0.6 s each (the plpgsql claim functions turn it off for the same
 * reason).
 */
const PLAN_STABLE_SETTINGS =
  'set plan_cache_mode = force_generic_plan; set enable_seqscan = off; set enable_bitmapscan = off; ' +
  `set enable_hashjoin = off; set enable_mergejoin = off; set jit = off; ${CHECK_CLIENT_SETTING}`;

/**
 * A pool whose sessions start with `settings` (one round trip, before any statement of the pool's
 * user); with `stallMs`, a checked-out connection silent that long is closed
 * ({@link PLAN_STABLE_STALL_MS}). TCP keepalive, both sides, finds idle connections that died
 * ({@link sessionConfig}).
 */
function openPool(
  databaseUrl: string,
  applicationName: string,
  max: number,
  settings: string,
  stallMs?: number,
): pg.Pool {
  const pool = new pg.Pool({
    ...sessionConfig(databaseUrl),
    application_name: applicationName,
    max,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
  });
  if (stallMs !== undefined) {
    // Only while checked out: an idle connection in the pool is silent by right.
    pool.on('acquire', (client) => socketOf(client)?.setTimeout(stallMs));
    pool.on('release', (_error, client) => socketOf(client)?.setTimeout(0));
  }
  // An idle client losing its connection (Postgres restart) must not crash the process.
  pool.on('error', () => {});
  // A checked-out client (mid-transaction, between statements) that loses its connection emits
  // 'error' with no listener attached: without this, a database outage crashes the process. The
  // next statement on that client fails instead, and the caller answers 503 / retries.
  const ends = new Set<Promise<void>>();
  connectionEnds.set(pool, ends);
  pool.on('connect', (client) => {
    client.on('error', () => {});
    const ended: Promise<void> = new Promise<void>((resolve) => client.once('end', () => resolve())).then(
      () => {
        ends.delete(ended);
      },
    );
    ends.add(ended);
    if (stallMs !== undefined) {
      const socket = socketOf(client);
      // Coded as the socket timeout it is, so every caller takes it for an outage (a push answered
      // 503 with Retry-After, a worker giving its work back: storage/unavailable.ts) rather than
      // for a fault (500 and a stack per push before).
      socket?.on('timeout', () =>
        socket.destroy(
          Object.assign(new Error(`no answer from the database for ${stallMs} ms: connection closed`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
    }
    // Queued before any statement of the pool's user.
    client.query(settings).catch(() => {});
  });
  return pool;
}

const PLAN_STABLE_MARK = '/* plan-stable */';

/**
 * Marks a statement as plan-stable: its generic plan is right at any size of the tables it touches,
 * so it may run a plan cached once per connection instead of being planned on every execution.
 * Put it first in the statement's text (`sql\`${PLAN_STABLE}with ins as (…\``). The plan is made
 * once, whenever the connection first runs the statement: often while the queue tables are empty
 * and never analyzed, when every scan and every index looks like a row or two. The plan-stable
 * sessions leave the planner only nested loops over index lookups ({@link PLAN_STABLE_SETTINGS}),
 * so a statement may be marked only if, besides tables sized by configuration (instances,
 * subscriptions):
 *
 * - every traffic-sized table it reads is joined by a key to parameters (`unnest()` of arrays) or
 *   to rows found that way: the probe of that key's index is then the cheapest plan left;
 * - no condition with a constant lets an index be walked instead: `m.status = 'received'` makes
 *   every partial index `where status = 'received'` (and every index led by `status`) usable by
 *   itself, a walk of one row at empty tables and of the whole queue later. Write such a check
 *   `is not distinct from` (no index serves it, the rows come by their key). A parameter instead
 *   of the constant is not enough: `status = $1` still lets an index with `status` as a later
 *   column be walked (`renewLeases` in storage/queues.ts walked `deliveries_sub_idx` so). The one
 *   walk left on purpose is the
 *   fan-out's hold check in the normalize commit (events/store.ts `fanOutStoredEvents`): it reads
 *   the dead entries of `deliveries_settled_idx`, as planned at analyzed tables, bounded by the
 *   dead deliveries retention keeps.
 *
 * `ON CONFLICT` on a unique key is resolved through the index at execution, whatever the plan.
 * Check a statement with `set plan_cache_mode = force_generic_plan` and the settings above,
 * `explain execute …` at empty tables, then at large ones without an ANALYZE, and add it to
 * storage/db.int.test.ts, which holds each marked statement to the scans of its cached plan.
 *
 * Why two kinds of connections: every other statement must be planned for the tables as they are
 * now (`force_custom_plan`). The queue tables start empty and fill in bursts, statistics lag behind
 * (pipeline/statistics.ts), and a generic plan made while a queue table was small joined a claim's
 * 32 rows by hashing every delivery and event, and stayed until the next ANALYZE. The settings are
 * session settings, and switching a connection for each plan-stable statement cost a `SET` round
 * trip each way, as much Postgres CPU as the planning it saved (docs/pipeline.md). So a statement
 * that starts a checkout with this mark (one run alone: not inside a transaction) runs on a
 * connection of `Database.planStablePool` when one is free; otherwise (none free, none asked for,
 * or inside a transaction) it is planned like any other.
 */
export const PLAN_STABLE = sql.raw(`${PLAN_STABLE_MARK} `);

/** Distinct statement texts this process prepares at most; others are sent unnamed (planned each time). */
const MAX_PREPARED = 512;
const statementNames = new Map<string, string>();

/**
 * The server-side name of a statement text, so each pool connection parses and analyzes it once
 * instead of on every call. The pipeline's statements are few and fixed (lists travel as array
 * parameters). Planning still happens per execution, except for plan-stable statements. Statements
 * without parameters, and texts beyond `MAX_PREPARED` (say, ad-hoc filter combinations), stay
 * unnamed.
 */
function statementName(text: string): string | undefined {
  const known = statementNames.get(text);
  if (known !== undefined || statementNames.size >= MAX_PREPARED || !text.includes('$1')) return known;
  const name = `sy_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
  statementNames.set(text, name);
  return name;
}

/**
 * A Kysely connection whose parameterized statements are prepared (named) per pool connection.
 * The pool connection is taken at the first statement, not before: a plan-stable statement that
 * comes first runs alone on a connection of `stable` when one is free (given back at once; a later
 * statement of the same checkout takes one of `pool`, which the hub never does: its checkouts are
 * single statements or transactions, which start with `begin`). Needs a session-level connection
 * to Postgres: behind a transaction-pooling proxy, use one that tracks prepared statements
 * (PgBouncer >= 1.21 with max_prepared_statements).
 */
function preparing(pool: pg.Pool, stable: pg.Pool | undefined): PostgresPoolClient {
  let held: Promise<pg.PoolClient> | undefined;
  // Set when a statement failed in a way that leaves the held connection's protocol state unknown;
  // it is then closed on release instead of going back to the pool (see isPoisoning).
  let poisoned = false;
  return {
    query: (async (text: string, values?: readonly unknown[]) => {
      if (
        held === undefined &&
        stable !== undefined &&
        text.startsWith(PLAN_STABLE_MARK) &&
        hasRoom(stable)
      ) {
        return sendAlone(stable, text, values, pool);
      }
      const first = held === undefined;
      held ??= pool.connect();
      try {
        return await send(await held, text, values);
      } catch (error) {
        if (first && isStalePlan(error)) {
          // The checkout's first statement (no transaction begun): its connection is closed and
          // the statement run on another, which prepares it afresh.
          (await held).release(true);
          held = pool.connect();
          return await send(await held, text, values);
        }
        if (isPoisoning(error)) poisoned = true;
        throw error;
      }
    }) as unknown as PostgresPoolClient['query'],
    release: (destroy?: boolean) => {
      held?.then(
        (client) => client.release(destroy === true || poisoned ? true : destroy),
        () => {},
      );
    },
  };
}

/**
 * Sends a statement, named (prepared) when it has parameters.
 *
 * Why a callback and not the promise pg makes itself (`client.query(config)` without one): with
 * pg's promise, what a statement allocated (its flattened text, its Bind message, its rows) outlived
 * two young-generation collections and was promoted to the old generation, which only a full
 * collection frees: 25 % of the bytes 3,000 statements allocated, against 1.3 % with a callback
 * (`promotion.int.test.ts`, 8 MB semi-spaces as `./sy start` runs). In the hub at 200 events/s that
 * was a full collection every ~1.6 s, each a pause of 6–19 ms, and 13 % of the hub's CPU per event
 * (bench/analysis.md, "Promoted by pg's promise"). The rejection's stack is the driver's;
 * Kysely appends the caller's (`extendStackTrace`).
 */
function send(
  client: pg.PoolClient,
  text: string,
  values: readonly unknown[] | undefined,
): Promise<pg.QueryResult> {
  const name = statementName(text);
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, result: pg.QueryResult) => (error ? reject(error) : resolve(result));
    if (name === undefined) client.query(text, values as unknown[], done);
    else client.query({ name, text, values: values as unknown[] }, done);
  });
}

/**
 * Runs one statement on a connection of `pool` taken for it alone, given back at once (closed if the
 * statement left it unusable). A statement whose prepared plan a migration made stale
 * ({@link isStalePlan}) runs once more on a connection of `retryOn`, which prepares it afresh.
 */
async function sendAlone(
  pool: pg.Pool,
  text: string,
  values: readonly unknown[] | undefined,
  retryOn?: pg.Pool,
): Promise<pg.QueryResult> {
  const client = await pool.connect();
  let broken = false;
  try {
    return await send(client, text, values);
  } catch (error) {
    broken = isPoisoning(error);
    if (retryOn !== undefined && isStalePlan(error)) return await sendAlone(retryOn, text, values);
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Whether a prepared statement failed because a migration changed the columns it returns
 * ("cached plan must not change result type", 0A000): a statement prepared on a connection keeps
 * the row type it was prepared with, and Postgres refuses to run it once a column was added to a
 * table it reads with `*` (migration 45 did so to `connector_instances`: every push a process of
 * the previous version answered during that upgrade was a 500). The statement fails the same way on
 * that connection for as long as it lives, so the connection is closed ({@link isPoisoning}); a
 * statement alone in its checkout is run again on another connection, which prepares it afresh;
 * one inside a transaction fails its transaction, which its caller runs again
 * (`isDatabaseUnavailable`: a run given up, not a fault of the work).
 */
export function isStalePlan(error: unknown): boolean {
  return (
    error instanceof pg.DatabaseError &&
    error.code === '0A000' &&
    /cached plan must not change result type/.test(error.message)
  );
}

/** Whether `pool` has a connection free or room for one (a plan-stable statement never waits for it). */
function hasRoom(pool: pg.Pool): boolean {
  return pool.idleCount > 0 || pool.totalCount < (pool.options.max ?? 10);
}

/**
 * Whether a failed statement may have left its connection unusable, so it must not be reused.
 * An error Postgres sent (a `DatabaseError`) leaves the connection in a known state, the driver
 * having synced after it, except "prepared statement does not exist" (26000): the driver believes
 * a statement is prepared that the server does not have. Any error raised in this process while
 * the driver was writing a statement (say, `RangeError: Invalid string length` while encoding a
 * huge parameter) is worse: pg 8 had already sent the Parse, then closes the statement on the
 * server but still records it as prepared on the connection, so every later use of that statement
 * there failed with "prepared statement sy_… does not exist".
 */
function isPoisoning(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) return error.code === '26000' || isStalePlan(error);
  return true;
}
