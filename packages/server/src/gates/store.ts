/**
 * The gates' store: every SQL statement of the gate machinery, one named function each. The tables are created by the
 * `gates` migration in storage/migrations.ts. Functions take an {@link Executor} so callers decide
 * the transaction.
 */
import type { JsonValue } from '@switchyard/core';
import { type RawBuilder, sql } from 'kysely';
import { type Executor, json, NO_FLUSH_WAIT } from '../storage/db.ts';
import type { SubscriptionRow } from '../storage/subscription-row.ts';

/** Channel a decision is announced on (payload: the request id and the decision, as JSON). */
export const CHANNEL_GATE_DECIDED = 'switchyard_gate_decided';
/**
 * Channel a stored gate request is announced on (payload: its instance id): processes learn that
 * bookings of that instance may have a request to match ({@link hasUnmatchedRequests}).
 */
export const CHANNEL_GATE_REQUESTED = 'switchyard_gate_requested';
/**
 * Channel a trigger on `switchyard.subscriptions` notifies when an approver subscription changes
 * (storage migration 5): processes drop their cached approver list on it.
 */
export const CHANNEL_GATE_APPROVERS = 'switchyard_gate_approvers';

export type GateOutcome = 'approve' | 'refuse';
/** Why the vendor got the answer it got. */
export type GateReason =
  | 'approved'
  | 'refused'
  | 'deadline'
  | 'no_approvers'
  | 'unavailable'
  | 'error'
  | 'abandoned';
/** What one approver's call came to. */
export type AnswerOutcome = 'approve' | 'refuse' | 'unavailable';

export interface GateRequestRow {
  seq: string;
  id: string;
  instance_id: string;
  connector: string;
  inbound_message_id: string | null;
  dedupe_key: string;
  vendor_type: string;
  type: string | null;
  event_id: string | null;
  envelope: JsonValue | null;
  match_key: string | null;
  status: 'pending' | 'deciding' | 'decided';
  deadline_ms: number;
  default_outcome: GateOutcome;
  deadline_at: Date;
  received_at: Date;
  claimed_by: string | null;
  claimed_at: Date | null;
  approvers: number;
  decision: GateOutcome | null;
  decision_reason: GateReason | null;
  decided_by: string | null;
  refusal_reason: string | null;
  vendor_error_code: number | null;
  error: string | null;
  response_status: number | null;
  decided_at: Date | null;
  decision_ms: number | null;
  matched_at: Date | null;
  matched_inbound_id: string | null;
  matched_vendor_type: string | null;
  matched_event_id: string | null;
  matched_subject: string | null;
}

export interface GateAnswerRow {
  id: string;
  gate_request_id: string;
  subscription_id: string;
  started_at: Date;
  latency_ms: number | null;
  status_code: number | null;
  outcome: AnswerOutcome;
  reason: string | null;
  vendor_error_code: number | null;
  response_snippet: string | null;
  error: string | null;
  after_decision: boolean;
}

export interface NewGateRequest {
  id: string;
  instanceId: string;
  connector: string;
  inboundMessageId: string | null;
  dedupeKey: string;
  vendorType: string;
  type: string | null;
  eventId: string | null;
  envelope: JsonValue | null;
  matchKey: string | null;
  deadlineMs: number;
  defaultOutcome: GateOutcome;
  deadlineAt: Date;
  receivedAt: Date;
  /** Set when the inserting process decides it itself (no job): the row starts `deciding`. */
  claimedBy: string | null;
}

export interface NewGateAnswer {
  subscriptionId: string;
  startedAt: Date;
  latencyMs: number | null;
  statusCode: number | null;
  outcome: AnswerOutcome;
  reason: string | null;
  vendorErrorCode: number | null;
  responseSnippet: string | null;
  error: string | null;
  afterDecision: boolean;
}

export interface GateDecisionValues {
  decision: GateOutcome;
  reason: GateReason;
  decidedBy: string | null;
  refusalReason: string | null;
  vendorErrorCode: number | null;
  error: string | null;
  responseStatus: number | null;
  decisionMs: number;
  /** null keeps what is recorded (the deadline writer does not know who was asked). */
  approvers: number | null;
}

/**
 * Inserts a gate request: the row, undefined when (instance, dedupe key) is already recorded (a
 * vendor retry) or an alias was refused, and the `synchronous_commit` its transaction committed
 * with (read in it; `off`).
 *
 * `aliases` are the CTEs storing what the approval request's normalization made up
 * (`HubHost.deferredAliases`, host/host.ts), stored by this statement instead of one alias write
 * each before it: two fewer writes and round trips in the vendor's wait for a Docplanner
 * `slot-booking`. `refused` is true when one of them cannot stand (the vendor id got another hub
 * id first, from another process or the normalize worker's commit of the same notification): then
 * nothing is stored, and the caller normalizes again with `host.aliases`, which reads it.
 *
 * Its commit does not wait for the WAL flush (`synchronous_commit` off for this statement's
 * transaction only, as host/notifier.ts sends its NOTIFYs): one fsync fewer in the vendor's wait
 * (bench/analysis.md, "The gate request's own flush"). A flush covers every commit written before
 * it, and the vendor's answer waits for a later commit that waits for one: a claimed request's
 * decision (`recordDecision`), a handed-over one's job (pg-boss's `send`). The exception is an
 * answer at the deadline, which waits for no write (recording it must not delay it): a crash
 * within the WAL writer's flush of the request and its aliases (at most three `wal_writer_delay`s,
 * 600 ms by default) can lose the record of a request answered by a deadline shorter than that, as
 * it can lose the deadline's own record.
 *
 * @example
 * ```ts
 * const { row, refused } = await insertGateRequest(host.db, request, deferred.storing());
 * if (refused) // normalize again with host.aliases(instanceId), then insert without `aliases`
 * if (!row) return findGateRequest(host.db, request.instanceId, request.dedupeKey); // asked again
 * ```
 */
export async function insertGateRequest(
  db: Executor,
  r: NewGateRequest,
  aliases?: RawBuilder<unknown>,
): Promise<{ row: GateRequestRow | undefined; refused: boolean; synchronousCommit: string | undefined }> {
  // Announced by the caller after the commit (CHANNEL_GATE_REQUESTED): see gates/unmatched.ts.
  const result = await sql<Partial<GateRequestRow> & { refused: boolean; commit_sync: string | null }>`
    with ${aliases ?? sql`alias_refused as (select where false)`},
    inserted as (
      insert into switchyard.gate_requests (id, instance_id, connector, inbound_message_id, dedupe_key, vendor_type, type,
        event_id, envelope, match_key, status, deadline_ms, default_outcome, deadline_at, received_at, claimed_by, claimed_at)
      -- A select, not values, to read set_config first; its parameters typed (no target column types them).
      select ${r.id}::text, ${r.instanceId}::text, ${r.connector}::text, ${r.inboundMessageId}::uuid, ${r.dedupeKey}::text,
        ${r.vendorType}::text, ${r.type}::text, ${r.eventId}::uuid, ${r.envelope === null ? sql`null::jsonb` : json(r.envelope)},
        ${r.matchKey}::text, ${r.claimedBy === null ? 'pending' : 'deciding'}, ${r.deadlineMs}::integer,
        ${r.defaultOutcome}::text, ${r.deadlineAt}::timestamptz, ${r.receivedAt}::timestamptz, ${r.claimedBy}::text,
        ${r.claimedBy === null ? null : sql`now()`}::timestamptz
      from ${NO_FLUSH_WAIT}
      -- An alias the approval request made up that cannot stand: nothing of the request is stored.
      where not exists (select from alias_refused)
      on conflict do nothing
      returning *, current_setting('synchronous_commit') as commit_sync)
    select exists (select from alias_refused) as refused, i.* from (select) as one left join inserted i on true`.execute(
    db,
  );
  const { refused, commit_sync, ...inserted } = result.rows[0]!;
  if (inserted.id == null) return { row: undefined, refused, synchronousCommit: undefined };
  return { row: inserted as GateRequestRow, refused, synchronousCommit: commit_sync ?? undefined };
}

export async function getGateRequest(db: Executor, id: string): Promise<GateRequestRow | undefined> {
  const r = await sql<GateRequestRow>`select * from switchyard.gate_requests where id = ${id}`.execute(db);
  return r.rows[0];
}

/** The decided requests among `ids` (a process's waiting requests, read again after a reconnect). */
export async function decidedGateRequests(db: Executor, ids: readonly string[]): Promise<GateRequestRow[]> {
  if (ids.length === 0) return [];
  const r = await sql<GateRequestRow>`
    select * from switchyard.gate_requests where id = any(${ids as string[]}::text[]) and decision is not null`.execute(
    db,
  );
  return r.rows;
}

export async function findGateRequest(
  db: Executor,
  instanceId: string,
  dedupeKey: string,
): Promise<GateRequestRow | undefined> {
  const r = await sql<GateRequestRow>`
    select * from switchyard.gate_requests where instance_id = ${instanceId} and dedupe_key = ${dedupeKey}`.execute(
    db,
  );
  return r.rows[0];
}

/** The inbound message ids of notifications, by dedupe key (for gates whose ids ingest did not pass). */
export async function inboundIdsByDedupeKey(
  db: Executor,
  instanceId: string,
  dedupeKeys: readonly string[],
): Promise<Map<string, string>> {
  const r = await sql<{ id: string; dedupe_key: string }>`
    select id, dedupe_key from switchyard.inbound_messages
    where instance_id = ${instanceId} and dedupe_key = any(${dedupeKeys as string[]}::text[])`.execute(db);
  return new Map(r.rows.map((row) => [row.dedupe_key, row.id]));
}

/**
 * Takes a pending request for this worker. Undefined when another worker has it, it is decided,
 * or its deadline passed (nobody waits for the answer any more).
 */
export async function claimGateRequest(
  db: Executor,
  id: string,
  worker: string,
): Promise<GateRequestRow | undefined> {
  const r = await sql<GateRequestRow>`
    update switchyard.gate_requests set status = 'deciding', claimed_by = ${worker}, claimed_at = now()
    where id = ${id} and status = 'pending' and deadline_at > now()
    returning *`.execute(db);
  return r.rows[0];
}

/**
 * Takes up an undecided request whose deciding process is gone, for a vendor's retry of it: claimed
 * by `worker` (or left `pending` for a gate job when `worker` is null) with the retry's deadline.
 * Only if nobody decided, claimed or took it up since it was read (`claimed_by` and `deadline_at`
 * as read; a take-up moves the deadline): of several retries one wins. Undefined otherwise.
 *
 * @example
 * ```ts
 * const row = await takeUpGateRequest(db, stale, workerId, new Date(answerBy));
 * if (row) await decider.decide(row); // else wait for the decision of whoever has it
 * ```
 */
export async function takeUpGateRequest(
  db: Executor,
  stale: Pick<GateRequestRow, 'id' | 'claimed_by' | 'deadline_at'>,
  worker: string | null,
  deadlineAt: Date,
): Promise<GateRequestRow | undefined> {
  const r = await sql<GateRequestRow>`
    update switchyard.gate_requests
    set status = ${worker === null ? 'pending' : 'deciding'}, claimed_by = ${worker},
      claimed_at = ${worker === null ? null : sql`now()`}::timestamptz, deadline_at = ${deadlineAt}
    where id = ${stale.id} and decision is null
      and claimed_by is not distinct from ${stale.claimed_by}::text
      -- As read into a JS Date: to the millisecond.
      and date_trunc('milliseconds', deadline_at) = date_trunc('milliseconds', ${stale.deadline_at}::timestamptz)
    returning *`.execute(db);
  return r.rows[0];
}

/**
 * Records the decision unless one is recorded already (the first writer wins: the worker's verdict
 * or the waiting request's deadline). Returns the row as decided, by this call or earlier.
 *
 * `writerDeadline`: the deadline the writer answers by. A request taken up since for a vendor's
 * retry has a later deadline ({@link takeUpGateRequest}) and is no longer this writer's to decide:
 * a decider paused past its deadline (a stopped process resumed) answered its vendor, who retried,
 * the default, and recorded it over the decision the retry's approvers were being asked for; the
 * retry then answered that default too (an approver's refusal lost). Not written then (`won` false).
 */
export async function decideGateRequest(
  db: Executor,
  id: string,
  d: GateDecisionValues,
  writerDeadline?: Date,
): Promise<{ row: GateRequestRow; won: boolean } | undefined> {
  const r = await sql<GateRequestRow>`
    update switchyard.gate_requests set status = 'decided', decision = ${d.decision}, decision_reason = ${d.reason},
      decided_by = ${d.decidedBy}, refusal_reason = ${d.refusalReason}, vendor_error_code = ${d.vendorErrorCode},
      error = ${d.error}, response_status = ${d.responseStatus}, decided_at = now(), decision_ms = ${d.decisionMs},
      approvers = coalesce(${d.approvers}::integer, approvers)
    where id = ${id} and decision is null
      and (${writerDeadline ?? null}::timestamptz is null
           or date_trunc('milliseconds', deadline_at) <= ${writerDeadline ?? null}::timestamptz)
    returning *`.execute(db);
  if (r.rows[0]) return { row: r.rows[0], won: true };
  const existing = await getGateRequest(db, id);
  return existing ? { row: existing, won: false } : undefined;
}

/**
 * The worker's write, in ONE statement (one round trip on the hot path): the decision (first
 * writer wins) and the answers known so far. Returns the row as decided, by this call or earlier;
 * when this call decided (`won`), the caller announces it to waiting requests in other processes
 * after the commit (`CHANNEL_GATE_DECIDED`, {@link decidedPayload}). `writerDeadline`: the
 * deadline of the claim the decider holds; a request taken up since is not written
 * ({@link decideGateRequest} says why).
 */
export async function recordDecision(
  db: Executor,
  id: string,
  d: GateDecisionValues,
  answers: readonly NewGateAnswer[],
  writerDeadline?: Date,
): Promise<{ row: GateRequestRow; won: boolean } | undefined> {
  const r = await sql<GateRequestRow & { won: boolean }>`
    with decided as (
      update switchyard.gate_requests set status = 'decided', decision = ${d.decision}, decision_reason = ${d.reason},
        decided_by = ${d.decidedBy}, refusal_reason = ${d.refusalReason}, vendor_error_code = ${d.vendorErrorCode},
        error = ${d.error}, response_status = ${d.responseStatus}, decided_at = now(), decision_ms = ${d.decisionMs},
        approvers = coalesce(${d.approvers}::integer, approvers)
      where id = ${id} and decision is null
        and (${writerDeadline ?? null}::timestamptz is null
             or date_trunc('milliseconds', deadline_at) <= ${writerDeadline ?? null}::timestamptz)
      returning *
    ), answers as (
      insert into switchyard.gate_answers (gate_request_id, subscription_id, started_at, latency_ms, status_code, outcome,
        reason, vendor_error_code, response_snippet, error, after_decision)
      select ${id}, * from unnest(
        ${answers.map((a) => a.subscriptionId)}::text[], ${answers.map((a) => a.startedAt.toISOString())}::timestamptz[],
        ${answers.map((a) => a.latencyMs)}::real[], ${answers.map((a) => a.statusCode)}::integer[],
        ${answers.map((a) => a.outcome)}::text[], ${answers.map((a) => a.reason)}::text[],
        ${answers.map((a) => a.vendorErrorCode)}::integer[], ${answers.map((a) => a.responseSnippet)}::text[],
        ${answers.map((a) => a.error)}::text[], ${answers.map((a) => a.afterDecision)}::boolean[])
      returning 1
    )
    select decided.*, true as won, (select count(*) from answers) as n from decided`.execute(db);
  if (r.rows[0]) return { row: r.rows[0], won: true };
  const existing = await getGateRequest(db, id);
  return existing ? { row: existing, won: false } : undefined;
}

export async function insertGateAnswers(
  db: Executor,
  gateRequestId: string,
  answers: readonly NewGateAnswer[],
): Promise<void> {
  if (answers.length === 0) return;
  await sql`
    insert into switchyard.gate_answers (gate_request_id, subscription_id, started_at, latency_ms, status_code, outcome,
      reason, vendor_error_code, response_snippet, error, after_decision)
    select ${gateRequestId}, * from unnest(
      ${answers.map((a) => a.subscriptionId)}::text[], ${answers.map((a) => a.startedAt.toISOString())}::timestamptz[],
      ${answers.map((a) => a.latencyMs)}::real[], ${answers.map((a) => a.statusCode)}::integer[],
      ${answers.map((a) => a.outcome)}::text[], ${answers.map((a) => a.reason)}::text[],
      ${answers.map((a) => a.vendorErrorCode)}::integer[], ${answers.map((a) => a.responseSnippet)}::text[],
      ${answers.map((a) => a.error)}::text[], ${answers.map((a) => a.afterDecision)}::boolean[])`.execute(db);
}

export async function listGateAnswers(db: Executor, ids: readonly string[]): Promise<GateAnswerRow[]> {
  if (ids.length === 0) return [];
  const r = await sql<GateAnswerRow>`
    select * from switchyard.gate_answers where gate_request_id = any(${ids as string[]}::text[]) order by id`.execute(
    db,
  );
  return r.rows;
}

/**
 * The `CHANNEL_GATE_DECIDED` payload announcing a decision to waiting requests in every process:
 * `{"id": ..., "v": verdict}`, so the waiter needs no query.
 */
export function decidedPayload(id: string, d: GateDecisionValues): string {
  return JSON.stringify({
    id,
    v: {
      outcome: d.decision,
      reason: d.reason,
      decidedBy: d.decidedBy,
      refusalReason: d.refusalReason,
      vendorErrorCode: d.vendorErrorCode,
    },
  });
}

/** Approver subscriptions that may be asked (active webhooks with the approver role). */
export async function listApprovers(db: Executor): Promise<SubscriptionRow[]> {
  const r = await sql<SubscriptionRow>`
    select * from switchyard.subscriptions
    where approver and kind = 'webhook' and disabled_at is null and url is not null
      -- The request is a CloudEvent: a FHIR subscription stored as an approver before the input
      -- rule refused one (subscriptions/input.ts) is not asked; its endpoint's 4xx refused bookings.
      and format = 'cloudevents'
    order by id`.execute(db);
  return r.rows;
}

/** A request closed by {@link closeAbandoned}. */
export interface AbandonedGate {
  id: string;
  instance_id: string;
  decision: GateOutcome;
}

/**
 * Closes requests nobody will decide any more: still open (`pending` or `deciding`) `graceMs`
 * past their deadline, because the process deciding or waiting for them stopped (or lost the
 * database) before recording anything. Recorded as the configured default with reason
 * `abandoned`; `response_status` stays null: nobody knows what the vendor got (the default at the
 * deadline, or a broken connection). At most `batch` rows; SKIP LOCKED so concurrent sweeps in
 * several processes never wait on each other.
 */
export async function closeAbandoned(
  db: Executor,
  graceMs: number,
  batch: number,
  error: string,
): Promise<AbandonedGate[]> {
  const r = await sql<AbandonedGate>`
    update switchyard.gate_requests g set status = 'decided', decision = g.default_outcome,
      decision_reason = 'abandoned', error = ${error}, decided_at = now(),
      decision_ms = extract(epoch from (now() - g.received_at)) * 1000
    where g.id in (
      select id from switchyard.gate_requests
      where status <> 'decided' and decision is null
        and deadline_at < now() - make_interval(secs => ${graceMs / 1000})
      order by deadline_at
      limit ${batch}
      for update skip locked)
      and g.decision is null
    returning g.id, g.instance_id, g.decision`.execute(db);
  return r.rows;
}

/**
 * Deletes up to `batch` approver answers of gate requests received before `olderThan` (retention).
 * Answers go first so each statement stays short however many approvers a request had.
 */
export async function purgeGateAnswers(db: Executor, olderThan: Date, batch: number): Promise<number> {
  const r = await sql`
    delete from switchyard.gate_answers where id in (
      select a.id from switchyard.gate_answers a
      join switchyard.gate_requests g on g.id = a.gate_request_id
      where g.received_at < ${olderThan}
      limit ${batch}
      for update of a skip locked)`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

/** Deletes up to `batch` gate requests received before `olderThan` (late answers cascade). */
export async function purgeGateRequests(db: Executor, olderThan: Date, batch: number): Promise<number> {
  const r = await sql`
    delete from switchyard.gate_requests where id in (
      select id from switchyard.gate_requests
      where received_at < ${olderThan}
      order by received_at
      limit ${batch}
      for update skip locked)`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

/**
 * Whether the instance has a gate request not matched to a booking yet, received within `windowMs`:
 * only then can a booking of it be matched ({@link matchBookings}).
 */
export async function hasUnmatchedRequests(
  db: Executor,
  instanceId: string,
  windowMs: number,
): Promise<boolean> {
  const r = await sql<{ found: boolean }>`
    select exists (select 1 from switchyard.gate_requests
      where instance_id = ${instanceId} and matched_at is null
        and received_at > now() - make_interval(secs => ${windowMs / 1000})) as found`.execute(db);
  return r.rows[0]?.found === true;
}

/** A booking to link to the gate request that preceded it ({@link matchBookings}). */
export interface BookingMatch {
  instanceId: string;
  matchKey: string;
  inboundId: string;
  vendorType: string;
  eventId: string | null;
  subject: string | null;
}

/**
 * Links bookings to the gate requests that preceded them, in one statement: for each booking, the
 * newest unmatched request of its instance with the same match key, received within `windowMs`
 * before now (an approved one first). Returns the linked request id per booking, in order
 * (undefined: none). The bookings must have distinct (instance, match key) pairs: one statement
 * cannot give two bookings of one key two different requests in order (the gates send repeats of a
 * key in a later statement).
 *
 * @example
 * ```ts
 * const [requestId] = await matchBookings(db, [{ instanceId: 'dp', matchKey: 'k', inboundId, vendorType: 'slot-booked', eventId, subject }], 86_400_000);
 * ```
 */
export async function matchBookings(
  db: Executor,
  bookings: readonly BookingMatch[],
  windowMs: number,
): Promise<(string | undefined)[]> {
  if (bookings.length === 0) return [];
  const r = await sql<{ n: string; id: string }>`
    with v as (
      select * from unnest(${bookings.map((b) => b.instanceId)}::text[], ${bookings.map((b) => b.matchKey)}::text[],
        ${bookings.map((b) => b.inboundId)}::uuid[], ${bookings.map((b) => b.vendorType)}::text[],
        ${bookings.map((b) => b.eventId)}::uuid[], ${bookings.map((b) => b.subject)}::text[])
        with ordinality as v(instance_id, match_key, inbound_id, vendor_type, event_id, subject, n)),
    picked as (
      select v.n, g.id from v cross join lateral (
        select r.id from switchyard.gate_requests r
        where r.instance_id = v.instance_id and r.match_key = v.match_key and r.matched_at is null
          and r.received_at > now() - make_interval(secs => ${windowMs / 1000})
        order by (r.decision = 'approve') desc nulls last, r.seq desc
        limit 1
        for update skip locked) g)
    update switchyard.gate_requests r set matched_at = now(), matched_inbound_id = v.inbound_id,
      matched_vendor_type = v.vendor_type, matched_event_id = v.event_id, matched_subject = v.subject
    from picked p join v on v.n = p.n
    where r.id = p.id
    returning p.n, r.id`.execute(db);
  const linked = new Map(r.rows.map((x) => [Number(x.n), x.id]));
  return bookings.map((_, i) => linked.get(i + 1));
}

export interface GateListFilter {
  instanceId?: string;
  decision?: GateOutcome;
  reason?: GateReason;
  /** Only requests with a seq below this (the page cursor). */
  beforeSeq?: string;
  limit: number;
}

export async function listGateRequests(db: Executor, f: GateListFilter): Promise<GateRequestRow[]> {
  const conditions = [sql`true`];
  if (f.instanceId !== undefined) conditions.push(sql`instance_id = ${f.instanceId}`);
  if (f.decision !== undefined) conditions.push(sql`decision = ${f.decision}`);
  if (f.reason !== undefined) conditions.push(sql`decision_reason = ${f.reason}`);
  if (f.beforeSeq !== undefined) conditions.push(sql`seq < ${f.beforeSeq}`);
  if (f.instanceId !== undefined && f.decision === undefined && f.reason === undefined) {
    // One instance's requests, decided or not: their seqs first from gate_requests_instance_idx
    // (instance_id, seq desc), in order, then each request by its key. In one statement Postgres
    // took the instance's requests as spread evenly over the table and walked the seq key backward
    // from the newest request, throwing away every newer one of the other instances (33,000 for an
    // instance whose requests are older: gates/list-cost.int.test.ts). The sorted subquery and its
    // limit keep the two steps apart, as listEvents does for a source (events/store.ts).
    const r = await sql<GateRequestRow>`
      select g.* from (
        select seq from switchyard.gate_requests where ${sql.join(conditions, sql` and `)}
        order by seq desc limit ${f.limit}) s
      cross join lateral (select * from switchyard.gate_requests g where g.seq = s.seq limit 1) g
      order by s.seq desc`.execute(db);
    return r.rows;
  }
  const r = await sql<GateRequestRow>`
    select * from switchyard.gate_requests where ${sql.join(conditions, sql` and `)}
    order by seq desc limit ${f.limit}`.execute(db);
  return r.rows;
}
