/**
 * Every SQL statement of the commands subsystem, one named function each (tables: schema.ts).
 */
import { type JsonObject, type JsonValue, storableText } from '@switchyard/core';
import { sql } from 'kysely';
import type { Executor } from '../storage/db.ts';

export type CommandStatus = 'pending' | 'running' | 'succeeded' | 'failed';

/** A `switchyard.commands` row. */
export interface CommandRow {
  seq: string;
  id: string;
  type: string;
  instance_id: string;
  connector: string;
  subject: string | null;
  ordering_key: string | null;
  data: JsonObject;
  sent_by: string;
  idempotency_key: string | null;
  request_hash: string;
  status: CommandStatus;
  /** 1, then one more per manual retry. */
  run: number;
  attempts: number;
  next_attempt_at: Date;
  locked_until: Date | null;
  vendor_ids: string[];
  result: JsonObject | null;
  error: JsonObject | null;
  outcomes: number;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}

/** A `switchyard.command_calls` row. */
export interface CommandCallRow {
  id: string;
  command_id: string;
  run: number;
  attempt: number;
  started_at: Date;
  method: string;
  url: string;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
  response_snippet: string | null;
  /** The call's try was given back ({@link giveBackCommand}): the next try has the same attempt number. */
  given_back: boolean;
}

/** A vendor call as it starts: recorded before the request goes out ({@link startCall}). */
export interface StartedCall {
  commandId: string;
  run: number;
  attempt: number;
  startedAt: Date;
  method: string;
  url: string;
}

/** How a vendor call ended ({@link endCall}). */
export interface CallOutcome {
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  responseSnippet: string | null;
}

/**
 * What a call without a recorded outcome shows: in flight while its try runs; once the command
 * has moved on, its process stopped (or died) while it was in flight. The vendor may have acted
 * on it; the command's next try finds out.
 */
export const CALL_IN_FLIGHT = 'in flight: no answer yet';
export const CALL_UNANSWERED = 'no answer recorded: the process stopped while the call was in flight';

const json = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;

async function first<T>(q: { execute(db: Executor): Promise<{ rows: T[] }> }, db: Executor) {
  return (await q.execute(db)).rows[0];
}

/** What a new command row holds. */
export interface NewCommand {
  id: string;
  type: string;
  instanceId: string;
  connector: string;
  subject: string | null;
  data: JsonObject;
  sentBy: string;
  idempotencyKey: string | null;
  requestHash: string;
}

/**
 * Inserts a command unless the sender already used its idempotency key; returns the row that holds
 * the key (the new one, or the first command) and whether it is new.
 */
export async function insertCommand(
  db: Executor,
  c: NewCommand,
): Promise<{ row: CommandRow; inserted: boolean }> {
  const inserted = await first<CommandRow>(
    sql`insert into switchyard.commands (id, type, instance_id, connector, subject, ordering_key, data, sent_by, idempotency_key, request_hash)
        values (${c.id}, ${c.type}, ${c.instanceId}, ${c.connector}, ${c.subject}, ${c.subject}, ${json(c.data)},
          ${c.sentBy}, ${c.idempotencyKey}, ${c.requestHash})
        on conflict (sent_by, idempotency_key) do nothing
        returning *`,
    db,
  );
  if (inserted) return { row: inserted, inserted: true };
  const existing = await first<CommandRow>(
    sql`select * from switchyard.commands where sent_by = ${c.sentBy} and idempotency_key = ${c.idempotencyKey}`,
    db,
  );
  return { row: existing!, inserted: false };
}

/**
 * Takes a command to run now: it must be due (`pending` and its time has come, or `running` with
 * an expired lease: its process died) and first in line for its entity (no earlier `pending` or
 * `running` command with the same ordering key). Counts the attempt and sets the lease.
 */
export async function claimCommand(
  db: Executor,
  id: string,
  leaseMs: number,
): Promise<CommandRow | undefined> {
  return first<CommandRow>(
    sql`update switchyard.commands c set status = 'running', attempts = c.attempts + 1,
          locked_until = now() + ${leaseMs} * interval '1 millisecond', updated_at = now()
        where c.id = ${id}
          and ((c.status = 'pending' and c.next_attempt_at <= now()) or (c.status = 'running' and c.locked_until < now()))
          and (c.ordering_key is null or not exists (
            select 1 from switchyard.commands p
            where p.ordering_key = c.ordering_key and p.seq < c.seq and p.status in ('pending', 'running')))
        returning *`,
    db,
  );
}

/** Records the vendor calls of one attempt of one run. */
/**
 * Records a vendor call before its request goes out, without an outcome ({@link CALL_IN_FLIGHT}
 * while its try runs, {@link CALL_UNANSWERED} after) until {@link endCall}: a call whose process died in flight is still listed on its command (it was lost
 * with the in-memory list the end of the try wrote, and it may be the call that did the work).
 *
 * @example
 * ```ts
 * const id = await startCall(db, { commandId, run: 1, attempt: 2, startedAt: new Date(), method: 'DELETE', url });
 * await endCall(db, id, { statusCode: 204, latencyMs: 87.5, error: null, responseSnippet: '' });
 * ```
 */
export async function startCall(db: Executor, call: StartedCall): Promise<string> {
  const r = await first<{ id: string }>(
    sql`insert into switchyard.command_calls (command_id, run, attempt, started_at, method, url)
        values (${call.commandId}, ${call.run}, ${call.attempt}, ${call.startedAt.toISOString()}::timestamptz,
          ${call.method}, ${call.url})
        returning id::text`,
    db,
  );
  return r!.id;
}

/** Records how a call {@link startCall} recorded ended. */
export async function endCall(db: Executor, id: string, outcome: CallOutcome): Promise<void> {
  // The vendor's text as Postgres takes it: a NUL in its answer failed the record, and the call
  // showed "no answer recorded" (an audit).
  const text = (s: string | null) => (s === null ? null : storableText(s));
  await sql`update switchyard.command_calls set status_code = ${outcome.statusCode}, latency_ms = ${outcome.latencyMs},
      error = ${text(outcome.error)}, response_snippet = ${text(outcome.responseSnippet)}
    where id = ${id}::bigint`.execute(db);
}

/**
 * Which claim of a command a process holds: its attempt count and its count of finished runs, as
 * the claim returned them. The attempt count alone does not tell claims apart: a manual retry
 * starts the count again, so a process that lost its lease in an earlier run could hold the same
 * count as the current run's claim; the finished runs (`outcomes`) differ.
 */
export interface Claim {
  attempts: number;
  outcomes: number;
}

/** Ends a command (still held by this claim: `running`, same attempt and run counts). */
export async function finishCommand(
  db: Executor,
  id: string,
  attempt: Claim,
  f: {
    status: 'succeeded' | 'failed';
    subject: string | null;
    vendorIds: readonly string[];
    result: JsonValue | null;
    error: JsonValue | null;
  },
): Promise<CommandRow | undefined> {
  return first<CommandRow>(
    sql`update switchyard.commands set status = ${f.status}, subject = ${f.subject}, vendor_ids = ${[...f.vendorIds]}::text[],
          result = ${json(f.result)}, error = ${json(f.error)}, outcomes = outcomes + 1, locked_until = null,
          completed_at = now(), updated_at = now()
        where id = ${id} and status = 'running' and attempts = ${attempt.attempts} and outcomes = ${attempt.outcomes}
        returning *`,
    db,
  );
}

/**
 * Holds a running command's lease for another `leaseMs` from now, while this claim still holds it:
 * false when it does not (finished, put back, or taken over after the lease ran out).
 */
export async function extendCommandLease(
  db: Executor,
  id: string,
  attempt: Claim,
  leaseMs: number,
): Promise<boolean> {
  const r = await first<{ id: string }>(
    sql`update switchyard.commands set locked_until = now() + ${leaseMs} * interval '1 millisecond'
        where id = ${id} and status = 'running' and attempts = ${attempt.attempts} and outcomes = ${attempt.outcomes}
        returning id`,
    db,
  );
  return r !== undefined;
}

/** Puts a command back in line after a transient failure, due after `delayMs`. */
export async function retryCommandLater(
  db: Executor,
  id: string,
  attempt: Claim,
  delayMs: number,
  error: JsonValue,
): Promise<CommandRow | undefined> {
  return first<CommandRow>(
    sql`update switchyard.commands set status = 'pending', locked_until = null, error = ${json(error)},
          next_attempt_at = now() + ${delayMs} * interval '1 millisecond', updated_at = now()
        where id = ${id} and status = 'running' and attempts = ${attempt.attempts} and outcomes = ${attempt.outcomes}
        returning *`,
    db,
  );
}

/**
 * Like {@link retryCommandLater}, for a run the hub's own database failed (a full disk, out of
 * memory, a deadlock, a refused connection): the claim's attempt is taken back, as
 * `releaseInbound` does for a normalization, so that a fault of any length spends none of the
 * command's tries (`commands.retrySchedule`); each try of a vendor call the handler made stays in
 * its calls, marked `given_back` in the same statement, since the next try records its calls under
 * the same attempt number. A lost answer to this statement followed by another process's claim would leave that
 * claim with this one's attempt count: `claimedAt` (the claim's `updated_at`, which only a claim and
 * the end of a run set) tells the claims apart.
 *
 * @example
 * ```ts
 * const again = await giveBackCommand(trx, row.id, row, 100, { kind: 'transient', message: 'disk full' });
 * ```
 */
export async function giveBackCommand(
  db: Executor,
  id: string,
  attempt: Claim & { updated_at: Date },
  delayMs: number,
  error: JsonValue,
): Promise<CommandRow | undefined> {
  return first<CommandRow>(
    sql`with given as (
          update switchyard.commands set status = 'pending', locked_until = null, error = ${json(error)},
            attempts = greatest(attempts - 1, 0),
            next_attempt_at = now() + ${delayMs} * interval '1 millisecond', updated_at = now()
          where id = ${id} and status = 'running' and attempts = ${attempt.attempts} and outcomes = ${attempt.outcomes}
            and date_trunc('milliseconds', updated_at) = ${attempt.updated_at.toISOString()}::timestamptz
          returning *),
        marked as (
          update switchyard.command_calls k set given_back = true from given
          where k.command_id = given.id and k.run = given.run and k.attempt = ${attempt.attempts} and not k.given_back)
        select * from given`,
    db,
  );
}

/** A command to send a job for: its id and its connector instance (the job names both). */
export interface CommandRef {
  id: string;
  instance_id: string;
}

/** The first unfinished command of an entity (the one to run next), if any. */
export async function nextInLine(
  db: Executor,
  orderingKey: string,
): Promise<(CommandRef & { next_attempt_at: Date }) | undefined> {
  return first<CommandRef & { next_attempt_at: Date }>(
    sql`select id, instance_id, next_attempt_at from switchyard.commands
        where ordering_key = ${orderingKey} and status in ('pending', 'running') order by seq limit 1`,
    db,
  );
}

/**
 * Commands whose job may be lost: first in line for their entity and `pending` and due for longer
 * than `graceMs`, or `running` with an expired lease (the process running it died). The sweep
 * sends each a job again (a duplicate job is harmless: only one claim succeeds).
 *
 * A command waiting behind an earlier one of its entity is not stranded: its job ran, found it
 * blocked and ended, and the earlier one's end sends it a new one ({@link nextInLine}). Counted as
 * stranded, as they were, the oldest of them (a vendor down, each entity's first command waiting
 * for its retry and the next ones due behind it) took every sweep's `limit`: the sweep re-sent
 * jobs that could only find them blocked, and never reached a command whose job was really lost
 * behind them (`commands/store.int.test.ts`).
 *
 * `held`: commands the sweeping process holds parked (their instance has its share of the
 * process's slots, or its vendor asked for a pause): due and first in line, they are not
 * stranded, and re-sent they only came back to be parked again, the oldest 100 at every sweep.
 * `scope.instance`: only that instance's (the process refilling its parked commands from the
 * database, with `graceMs` 0); `scope.notPendingOf`: not the `pending` ones of these instances
 * (those whose jobs the sweeping process ended unparked, past its bound: it takes them from the
 * database itself as their turn comes, and the sweep's `limit` stays for the other instances).
 *
 * @example
 * ```ts
 * const parked = [...lines.values()].flatMap((line) => [...line.parked.keys()]); // this process's
 * for (const c of await strandedCommands(db, 2000, 100, parked)) await sendJob(c.id, c.instance_id);
 * await strandedCommands(db, 0, 128, parked, { instance: 'dp-main' }); // its next ones to park
 * ```
 */
export async function strandedCommands(
  db: Executor,
  graceMs: number,
  limit: number,
  held: readonly string[] = [],
  scope: { instance?: string; notPendingOf?: readonly string[] } = {},
): Promise<CommandRef[]> {
  const r = await sql<CommandRef>`
    select c.id, c.instance_id from switchyard.commands c
    where c.status in ('pending', 'running') and not c.id = any(${[...held]}::uuid[])
      and (${scope.instance ?? null}::text is null or c.instance_id = ${scope.instance ?? null}::text)
      and not (c.status = 'pending' and c.instance_id = any(${[...(scope.notPendingOf ?? [])]}::text[]))
      and ((c.status = 'pending' and c.next_attempt_at < now() - ${graceMs} * interval '1 millisecond')
        or (c.status = 'running' and c.locked_until < now()))
      and (c.ordering_key is null or not exists (
        select 1 from switchyard.commands p
        where p.ordering_key = c.ordering_key and p.seq < c.seq and p.status in ('pending', 'running')))
    order by c.next_attempt_at limit ${limit}`.execute(db);
  return r.rows;
}

/**
 * Makes a failed command pending again (an operator's retry) with a fresh set of tries: its attempt
 * count starts again from 0, so the retry schedule applies in full. Its vendor calls stay (each
 * under the attempt number of its run), and so does its last error until the next outcome.
 *
 * @example
 * ```ts
 * const row = await requeueCommand(db, id); // undefined unless the command is failed
 * ```
 */
export async function requeueCommand(db: Executor, id: string): Promise<CommandRow | undefined> {
  return first<CommandRow>(
    sql`update switchyard.commands set status = 'pending', attempts = 0, run = run + 1, next_attempt_at = now(),
          completed_at = null, updated_at = now()
        where id = ${id} and status = 'failed'
        returning *`,
    db,
  );
}

/** The command a sender made with an idempotency key, if any. */
export async function getCommandByKey(
  db: Executor,
  sentBy: string,
  key: string,
): Promise<CommandRow | undefined> {
  return first<CommandRow>(
    sql`select * from switchyard.commands where sent_by = ${sentBy} and idempotency_key = ${key}`,
    db,
  );
}

export async function getCommand(db: Executor, id: string): Promise<CommandRow | undefined> {
  return first<CommandRow>(sql`select * from switchyard.commands where id = ${id}`, db);
}

/** Filters of {@link listCommands}. */
export interface CommandFilter {
  status?: CommandStatus;
  type?: string;
  instanceId?: string;
  subject?: string;
  sentBy?: string;
  /** Rows with a smaller `seq` than this (paging, newest first). */
  before?: string;
  limit: number;
}

/** Commands newest first. */
export async function listCommands(db: Executor, f: CommandFilter): Promise<CommandRow[]> {
  const r = await sql<CommandRow>`
    select * from switchyard.commands
    where (${f.status ?? null}::text is null or status = ${f.status ?? null})
      and (${f.type ?? null}::text is null or type = ${f.type ?? null})
      and (${f.instanceId ?? null}::text is null or instance_id = ${f.instanceId ?? null})
      and (${f.subject ?? null}::text is null or subject = ${f.subject ?? null})
      and (${f.sentBy ?? null}::text is null or sent_by = ${f.sentBy ?? null})
      and (${f.before ?? null}::bigint is null or seq < ${f.before ?? null}::bigint)
    order by seq desc limit ${f.limit}`.execute(db);
  return r.rows;
}

export async function listCalls(db: Executor, commandId: string): Promise<CommandCallRow[]> {
  const r = await sql<CommandCallRow>`
    select * from switchyard.command_calls where command_id = ${commandId} order by id`.execute(db);
  return r.rows;
}

/**
 * An entity's current-state row: the instance it lives on and its known state (the `data` of the
 * last event the hub stored for it, `switchyard.current_entities`). Not the events: they are purged
 * after the retention period while the entity lives on (DESIGN.md, "Entity state").
 *
 * @example
 * ```ts
 * const target = await currentStateOf(db, 'appointment/6f1c…'); // { instanceId: 'dp', data: { status: 'booked', … } }
 * ```
 */
export async function currentStateOf(db: Executor, subject: string): Promise<KnownState | undefined> {
  return first<KnownState>(
    sql`select instance_id as "instanceId", envelope->'data' as data, envelope->>'type' as "eventType"
        from switchyard.current_entities where subject = ${subject}`,
    db,
  );
}

/**
 * An entity's known state as commands check it: its latest event's ({@link currentStateOf}) or,
 * before any event of it arrived, the creating command's ({@link createdBy}).
 */
export interface KnownState {
  instanceId: string;
  /** The `data` of the entity's latest event (or of the command that created it: `createdBy`). */
  data: JsonValue;
  /**
   * That event's type (a removed calendar block's is `slot.unblocked`, its data the block as it
   * was); null when the state is a creating command's (no event of the entity yet).
   */
  eventType: string | null;
  /**
   * The command that created the entity through the hub, when its data stands for the state: no
   * notification of the entity has arrived yet (see `targetStateOf` in commands.ts).
   */
  createdBy?: string;
}

/**
 * The succeeded creating command of type `type` (`appointment.book`, `slot.block`) that made
 * `subject` (its `result.appointmentId` / `result.slotId`), if one did, with its data: the entity
 * exists at the vendor, under the vendor id the command's result aliased to it, made as the data
 * asked (its place, its times). Kept past `commands.retention` until the entity has an event
 * ({@link purgeCommands}).
 *
 * @example
 * ```ts
 * const made = await createdBy(db, 'slot/3e2d…', 'slot.block'); // { id: '…', instanceId: 'dp-main', data: { start: '…', location: { id: '221304' }, … } }
 * ```
 */
export async function createdBy(
  db: Executor,
  subject: string,
  type: string,
): Promise<{ id: string; instanceId: string; data: JsonObject } | undefined> {
  return first<{ id: string; instanceId: string; data: JsonObject }>(
    sql`select id, instance_id as "instanceId", data from switchyard.commands
        where subject = ${subject} and type = ${type} and status = 'succeeded'
        order by seq desc limit 1`,
    db,
  );
}

/**
 * A succeeded command that a vendor notification may echo, with the echo it already took: the
 * marks of the drafts that were marked as its echo (see {@link claimEcho}), or null while none was.
 */
export interface EchoCandidate {
  id: string;
  type: string;
  subject: string | null;
  /** The command's data: a move's echo is at the times it asked for. */
  data: JsonObject;
  vendor_ids: string[];
  echo: string[] | null;
}

/**
 * Commands on these entities that succeeded since `since` (echo candidates), oldest first: of two
 * changes made through the hub, the first echo belongs to the first. Not those done without a
 * change (`result.unchanged`, the connector's `CommandResult.unchanged`): the vendor notifies
 * nothing of them, and the next notification of their type is someone else's change.
 */
export async function recentSuccesses(
  db: Executor,
  instanceId: string,
  subjects: readonly string[],
  since: Date,
): Promise<EchoCandidate[]> {
  const r = await sql<EchoCandidate>`
    select id, type, subject, data, vendor_ids, result->'echo' as echo from switchyard.commands
    where status = 'succeeded' and instance_id = ${instanceId} and subject = any(${[...subjects]}::text[])
      and completed_at >= ${since.toISOString()}::timestamptz
      and not coalesce(result @> '{"unchanged": true}'::jsonb, false)
    order by completed_at, seq`.execute(db);
  return r.rows;
}

/**
 * Records that these drafts (their marks: type, subject, time and vendor id) are a succeeded
 * command's echo, unless another notification was recorded first. Returns the marks recorded now
 * (those given, or the earlier ones): a draft is the command's echo when its mark is among them.
 *
 * Kept in the command row (`result.echo`, which the API does not show) rather than in a process:
 * any process normalizing a later notification about the entity finds the command used up, and
 * one normalizing the same notification again (its commit refused an alias, or failed) finds its
 * own marks and marks it again. The update takes the row lock, so of two processes claiming at
 * once one wins and the other reads the winner's marks.
 *
 * @example
 * ```ts
 * const marks = await claimEcho(db, commandId, ['appointment.arrived|appointment/6f1c…|2026-03-10T11:31:00+01:00|2087456123']);
 * ```
 */
export async function claimEcho(
  db: Executor,
  commandId: string,
  marks: readonly string[],
): Promise<string[]> {
  const claimed = await first<{ echo: string[] }>(
    sql`update switchyard.commands set result = coalesce(result, '{}'::jsonb) || jsonb_build_object('echo', ${json(marks)})
        where id = ${commandId} and status = 'succeeded' and not coalesce(result ? 'echo', false)
        returning result->'echo' as echo`,
    db,
  );
  if (claimed) return claimed.echo;
  // Another claim came first (this statement's snapshot may predate it: read it with a new one).
  const earlier = await first<{ echo: string[] | null }>(
    sql`select result->'echo' as echo from switchyard.commands where id = ${commandId}`,
    db,
  );
  return earlier?.echo ?? [];
}

/** A running command whose echo a notification about to be normalized may be. */
export interface RunningCommand {
  id: string;
  type: string;
  subject: string | null;
  data: JsonObject;
}

/**
 * A command whose outcome may come within `withinMs`: running, or waiting for a retry due by then
 * after a try went out (its change may be made at the vendor, the answer lost: the vendor's
 * notification of it can arrive before the retry finds it done).
 */
const UNSETTLED = (withinMs: number) =>
  sql`(status = 'running' or (status = 'pending' and attempts > 0
        and next_attempt_at <= now() + ${withinMs} * interval '1 millisecond'))`;

/**
 * The commands at the vendor on this instance that these entities' events may echo (running, or
 * waiting for a retry due within `withinMs` after a try went out): those on these subjects, and
 * those of the `creating` types (a booking, a block), whose entity is not known until they
 * finish. The caller compares each with the drafts ({@link RunningCommand.data}: a booking's slot).
 */
export async function runningCommands(
  db: Executor,
  instanceId: string,
  subjects: readonly string[],
  creating: readonly string[],
  withinMs: number,
): Promise<RunningCommand[]> {
  const r = await sql<RunningCommand>`
    select id, type, subject, data from switchyard.commands
    where ${UNSETTLED(withinMs)} and instance_id = ${instanceId}
      and (subject = any(${[...subjects]}::text[]) or (subject is null and type = any(${[...creating]}::text[])))`.execute(
    db,
  );
  return r.rows;
}

/** Which of these commands have no outcome yet that may come within `withinMs` (see {@link runningCommands}). */
export async function stillRunning(
  db: Executor,
  ids: readonly string[],
  withinMs: number,
): Promise<string[]> {
  const r = await sql<{ id: string }>`
    select id from switchyard.commands where id = any(${[...ids]}::uuid[]) and ${UNSETTLED(withinMs)}`.execute(
    db,
  );
  return r.rows.map((x) => x.id);
}

/**
 * The latest success since `since` (if any), and whether any command is running now or waits for
 * a retry due within `withinMs` after a try went out.
 */
export async function echoActivity(
  db: Executor,
  since: Date,
  withinMs: number,
): Promise<{ latest: Date | undefined; running: boolean }> {
  const r = await first<{ at: Date | null; running: boolean }>(
    sql`select (select max(completed_at) from switchyard.commands
                where status = 'succeeded' and completed_at >= ${since.toISOString()}::timestamptz) as at,
               exists (select 1 from switchyard.commands where ${UNSETTLED(withinMs)}) as running`,
    db,
  );
  return { latest: r?.at ?? undefined, running: r?.running ?? false };
}

/** A command credential with the subscription it acts for. */
export interface CredentialRow {
  id: string;
  subscription_id: string;
  hint: string;
  created_at: Date;
  /** The subscription's instance filter: null means every instance. */
  sources: string[] | null;
}

export async function insertCredential(
  db: Executor,
  c: { id: string; subscriptionId: string; tokenHash: string; hint: string },
): Promise<void> {
  await sql`insert into switchyard.command_credentials (id, subscription_id, token_hash, hint)
      values (${c.id}, ${c.subscriptionId}, ${c.tokenHash}, ${c.hint})`.execute(db);
}

/**
 * The credential a token hash belongs to, with its subscription's instance filter; undefined for an
 * unknown hash, and for a credential whose subscription is disabled (`disabled_at` set: by an
 * operator, after its endpoint answered 410, or after too many dead deliveries): a subscription
 * switched off must not go on acting on vendors through its credentials. Enabling it again lets
 * them in again.
 *
 * @example
 * ```ts
 * const cred = await findCredential(db, sha256(token)); // { id: 'cred_…', subscription_id: 'crm', sources: ['dp'], … }
 * ```
 */
export async function findCredential(db: Executor, tokenHash: string): Promise<CredentialRow | undefined> {
  return first<CredentialRow>(
    sql`select c.id, c.subscription_id, c.hint, c.created_at, s.sources
        from switchyard.command_credentials c join switchyard.subscriptions s on s.id = c.subscription_id
        where c.token_hash = ${tokenHash} and s.disabled_at is null`,
    db,
  );
}

/**
 * The token hashes of every command credential an enabled subscription holds: what a limited
 * address's `sycmd_` credential is screened against in memory before {@link findCredential}
 * (commands.ts, `mayBeCredential`). One statement, whatever the number of guesses.
 *
 * @example
 * ```ts
 * const hashes = await listCredentialHashes(db); // ['9f86d081…', …]
 * ```
 */
export async function listCredentialHashes(db: Executor): Promise<string[]> {
  const r = await sql<{ token_hash: string }>`
    select c.token_hash
    from switchyard.command_credentials c join switchyard.subscriptions s on s.id = c.subscription_id
    where s.disabled_at is null`.execute(db);
  return r.rows.map((row) => row.token_hash);
}

/** A subscription's command credentials, oldest first (hash never read). */
export async function listCredentials(db: Executor, subscriptionId: string): Promise<CredentialRow[]> {
  const r = await sql<CredentialRow>`
    select c.id, c.subscription_id, c.hint, c.created_at, s.sources
    from switchyard.command_credentials c join switchyard.subscriptions s on s.id = c.subscription_id
    where c.subscription_id = ${subscriptionId} order by c.created_at, c.id`.execute(db);
  return r.rows;
}

/** Deletes one of a subscription's credentials; false when it has none with that id. */
export async function deleteCredential(db: Executor, subscriptionId: string, id: string): Promise<boolean> {
  const r = await sql`delete from switchyard.command_credentials
      where id = ${id} and subscription_id = ${subscriptionId}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

export async function subscriptionExists(db: Executor, id: string): Promise<boolean> {
  return (await first(sql`select 1 from switchyard.subscriptions where id = ${id}`, db)) !== undefined;
}

/** One key of a command's handler state (`CommandContext.commandState`), or undefined. */
export async function getCommandState(db: Executor, id: string, key: string): Promise<JsonValue | undefined> {
  const row = await first<{ value: JsonValue | null }>(
    sql`select handler_state -> ${key} as value from switchyard.commands where id = ${id}`,
    db,
  );
  return row?.value ?? undefined;
}

/**
 * Sets (or, with undefined, deletes) one key of a command's handler state. One statement on the
 * command's row, touching only that column, so the hub's own updates of the row lose nothing.
 */
export async function setCommandState(
  db: Executor,
  id: string,
  key: string,
  value: JsonValue | undefined,
): Promise<void> {
  await (value === undefined
    ? sql`update switchyard.commands set handler_state = handler_state - ${key} where id = ${id}`
    : sql`update switchyard.commands
        set handler_state = handler_state || jsonb_build_object(${key}::text, ${json(value)})
        where id = ${id}`
  ).execute(db);
}

/**
 * Deletes finished commands (with their calls and handler state) completed before `olderThan`, at
 * most `batch`. Not a succeeded creating command (of `creatingTypes`: a booking, a block) whose
 * entity has no event yet (no `current_entities` row): it is the hub's only knowledge of an entity
 * that stands at the vendor ({@link createdBy}), its notification lost. Purged, a block made for a
 * leave months ahead could no longer be moved or removed through its hub id (422
 * SY_COMMAND_UNKNOWN_TARGET), nor a booking cancelled. It goes with the next purge after the
 * entity's first event arrives (which then stands for it).
 *
 * @example
 * ```ts
 * await purgeCommands(db, new Date(Date.now() - 30 * 86_400_000), 1000, ['appointment.book', 'slot.block']); // 1000 while a backlog lasts
 * ```
 */
export async function purgeCommands(
  db: Executor,
  olderThan: Date,
  batch: number,
  creatingTypes: readonly string[],
): Promise<number> {
  // Succeeded and failed ones apart, each through its own index (commands_succeeded_idx by
  // completion, commands_status_idx for the failed, the few): "status in (both)" matched no index
  // and read every command kept, in each batch and in the last one of every hourly run (a
  // sequential scan, 150 ms at 50,000 commands).
  const before = olderThan.toISOString();
  const r = await sql`
    delete from switchyard.commands where id in (
      select id from (
        (select id from switchyard.commands c
          where status = 'succeeded' and completed_at < ${before}::timestamptz
            and (c.type <> all(${[...creatingTypes]}::text[]) or c.subject is null
              or exists (select 1 from switchyard.current_entities e where e.subject = c.subject))
          limit ${batch})
        union all
        (select id from switchyard.commands
          where status = 'failed' and completed_at < ${before}::timestamptz limit ${batch})
      ) finished limit ${batch})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
