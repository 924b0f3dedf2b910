/**
 * Commands: a downstream system asks the hub to act on a vendor (cancel, move, book an
 * appointment...) in the normalized vocabulary. See docs/commands.md and docs/api.md#commands.
 *
 * How a command runs:
 * - `accept` checks everything that can be checked at once (type, schema, target, the connector's
 *   support, a vendor id, the known state) and refuses with a registered code; otherwise it inserts
 *   the command row and a pg-boss job in one transaction (the 202 follows the commit).
 * - The job only says "look at command X". The row is the truth: a worker claims it when it is due
 *   and first in line for its entity (per-subject order: a command waits while an earlier one of the
 *   same subject is pending or running, also across a transient failure's retry wait), runs the
 *   connector's handler with a recording VendorHttp, and in one transaction records the calls, the
 *   outcome, the outcome event (`command.succeeded` / `command.failed`, fanned out like any event)
 *   and the job of the next command in line.
 * - A crash leaves the row `running` with a lease; the sweep re-sends its job when the lease ends,
 *   so the command runs again (at least once: handlers treat "already so" as done).
 * - The vendor's later push of the change is marked `data.causedBy` by `markEchoes` (matched by
 *   instance, entity, vendor id, event type and a time window): its first push only, recorded on
 *   the command, so a later change of the entity by someone else is not taken for the command's.
 * - A failed command can be retried by hand (`retry`): checked again as a new command is, then run
 *   with a fresh set of tries.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandType,
  commandTypeInfo,
  commandTypes,
  type EntityKind,
  type EventDraft,
  type EventEnvelope,
  isCommandType,
  isConnectorError,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  mapJsonStrings,
  type StateStore,
  SwitchyardError,
  storableText,
  type VendorHttp,
  type VendorRequest,
  validateCommandData,
} from '@switchyard/core';
import { CompiledQuery, type Kysely } from 'kysely';
import type { PgBoss } from 'pg-boss';
import type pino from 'pino';
import { Counter, Gauge, Histogram } from 'prom-client';
import { notFound } from '../admin/errors.ts';
import type { Page } from '../admin/page.ts';
import { clampLimit, UUID } from '../admin/page.ts';
import { CONFIG_DEFAULTS } from '../config/schema.ts';
import { configDurationMs } from '../config/units.ts';
import {
  collectSecretValues,
  isSecretHeaderName,
  redactSecretFields,
  secretFieldValues,
} from '../delivery/redact.ts';
import { jittered } from '../delivery/retry-schedule.ts';
import { eventIdFor } from '../events/ids.ts';
import { NOTIFY_BACKSTOP_SECONDS, SCHEDULED_POLL_SECONDS } from '../host/boss.ts';
import type { HostInstance, HubHost } from '../host/host.ts';
import { connectorLogger, secretScrubber } from '../logging/logger.ts';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { CredentialSnapshot } from '../storage/credential-snapshot.ts';
import { type Executor, newId } from '../storage/db.ts';
import { isSubscriptionGone } from '../storage/subscription-gone.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import {
  currentTraceparent,
  currentTracestate,
  SpanKind,
  setSpanAttributes,
  withSpan,
} from '../telemetry/tracing.ts';
import * as q from './store.ts';

/** The pg-boss queue of command jobs (schema `switchyard_queue`). */
export const COMMAND_QUEUE = 'switchyard-command';
/** The pg-boss queue of the scheduled purge of finished commands. */
export const COMMAND_RETENTION_QUEUE = 'switchyard-command-retention';

function defaultMs(duration: string): number {
  return configDurationMs(duration)!;
}

/**
 * Options of {@link createCommands}. The defaults of the tunable ones are the config file's
 * (`commands.*` in CONFIG_DEFAULTS, docs/configuration.md), the one place they are set.
 */
export interface CommandsOptions {
  /** Run command jobs in this process. Default true. */
  worker?: boolean;
  /** Commands running at once in this process. Default `commands.concurrency`. */
  concurrency?: number;
  /**
   * Commands of one connector instance running at once in this process, at most `concurrency`.
   * Default `commands.instanceConcurrency`, else half of `concurrency` (rounded up).
   */
  instanceConcurrency?: number;
  /** Delays before each retry after a transient failure, ms. Default `commands.retrySchedule`. */
  retryScheduleMs?: readonly number[];
  /** Jitter on each retry delay, as a fraction. Default 0.2 (as for deliveries). */
  retryJitter?: number;
  /** Longest wait a vendor's Retry-After may ask for, ms. Default `commands.maxRetryAfter`. */
  maxRetryAfterMs?: number;
  /** How long a running command is held before another process may take it over (its process died), ms. Default `commands.lease`. */
  leaseMs?: number;
  /** How often a worker re-sends the jobs of stranded commands, ms; 0 never. Default `commands.sweepInterval`. */
  sweepIntervalMs?: number;
  /** How long after a command succeeded the vendor's push of the change is marked as its echo, ms. Default `commands.echoWindow`. */
  echoWindowMs?: number;
  /** Finished commands (with their vendor calls) are deleted this long after they finished, ms. Default `commands.retention`. */
  retentionMs?: number;
  /** pg-boss cron of the purge, or false to not schedule it (call `purge()`). Default hourly, at minute 23. */
  retentionCron?: string | false;
}

/** Who sent a command: the admin token, or a subscription's command credential. */
export type CommandSender =
  | { kind: 'admin' }
  | { kind: 'subscription'; subscriptionId: string; credentialId: string; sources: string[] | null };

/** The body of `POST /v1/commands`. */
export interface CommandInput {
  type: string;
  /** `appointment/<hub id>`, for a command on an existing entity. */
  subject?: string;
  /** A connector instance id, for a command that creates its entity (`appointment.book`). */
  instance?: string;
  data?: JsonValue;
}

/** One vendor call as the API shows it. */
export interface CommandCall {
  /** The run of the command it belongs to (1, then one more per manual retry). */
  run: number;
  /** The try within that run. */
  attempt: number;
  /**
   * Its try was given back (the hub's own database failed it): it spent none of the tries, and the
   * next try has the same attempt number.
   */
  givenBack: boolean;
  startedAt: string;
  method: string;
  url: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
  responseSnippet: string | null;
}

/** A command as the API shows it. */
export interface CommandView {
  id: string;
  type: string;
  status: q.CommandStatus;
  subject: string | null;
  instance: string;
  connector: string;
  data: JsonObject;
  sentBy: string;
  idempotencyKey: string | null;
  /** 1, then one more per manual retry (which gives a fresh set of tries). */
  run: number;
  /** Tries of the current run. */
  attempts: number;
  nextAttemptAt: string | null;
  result: JsonObject | null;
  error: JsonObject | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

/** A command credential as the API lists it (never its token). */
export interface CommandCredentialView {
  id: string;
  subscriptionId: string;
  /** The token's first characters, to tell credentials apart. */
  hint: string;
  createdAt: string;
}

/** A command with every vendor call made for it. */
export interface CommandDetail extends CommandView {
  calls: CommandCall[];
}

/** Filters of {@link Commands.list}. */
export interface CommandListQuery {
  status?: q.CommandStatus;
  type?: string;
  instanceId?: string;
  subject?: string;
  cursor?: string;
  limit?: number;
}

/** Which event types echo which command (what the vendor later pushes about the change). */
const ECHOES: Readonly<Record<CommandType, readonly string[]>> = {
  'appointment.book': ['appointment.created'],
  // Clockwise.MD notifies a `remove` before check-in as a no-show.
  'appointment.cancel': ['appointment.cancelled', 'appointment.no_show'],
  'appointment.reschedule': ['appointment.rescheduled'],
  'appointment.confirm': ['appointment.confirmed'],
  'appointment.mark_arrived': ['appointment.arrived'],
  'appointment.mark_no_show': ['appointment.no_show'],
  // Not `appointment.updated` (which Cliniko told a cleared flag as before `status_reverted`): a
  // clear with nothing to clear is done without a change and no echo, and then took the next
  // appointment.updated within the window, the notes the CRM wrote or a change at the front desk.
  'appointment.clear_presence': ['appointment.status_reverted'],
  'appointment.update': ['appointment.updated'],
  'slot.block': ['slot.blocked'],
  'slot.move_block': ['slot.block_moved'],
  'slot.unblock': ['slot.unblocked'],
};

/** Command types that make no sense on a closed entity (a cancelled appointment, a removed block: {@link CLOSED}). */
const NOT_WHEN_CLOSED = new Set<string>([
  'appointment.cancel',
  'appointment.reschedule',
  'appointment.confirm',
  'appointment.mark_arrived',
  'appointment.mark_no_show',
  'appointment.clear_presence',
  'appointment.update',
  'slot.move_block',
  'slot.unblock',
]);

/**
 * When the hub's known state of an entity says it is closed, by entity: what it is then (the word
 * the refusal names) and the command that closes it. An appointment is closed when its status is
 * `cancelled`; a calendar block when its latest event is `slot.unblocked` (which carries the block
 * as it was, its status unchanged). The closing command is refused on a closed entity when it is
 * sent, but once accepted it is the connector's to judge: its own earlier try may be what closed it.
 */
const CLOSED: Readonly<
  Record<string, { state: string; by: CommandType; when(known: q.KnownState): boolean }>
> = {
  appointment: {
    state: 'cancelled',
    by: 'appointment.cancel',
    when: (known) => isJsonObject(known.data) && known.data.status === 'cancelled',
  },
  slot: { state: 'removed', by: 'slot.unblock', when: (known) => known.eventType === 'slot.unblocked' },
};

/** What closed state (e.g. `cancelled`) rules a command of this type out on an entity so known, if any. */
function closedFor(type: string, entity: string, known: q.KnownState | undefined): string | undefined {
  const closed = CLOSED[entity];
  return closed && known && NOT_WHEN_CLOSED.has(type) && closed.when(known) ? closed.state : undefined;
}

/**
 * The kind of entity (its known state's `kind`) a command type acts on, where one `<entity>` has
 * several: the calendar-block commands act on a block, while a `slot/…` may also be a Docplanner
 * availability (`slot.changed`, kind `availability`), which no break call addresses. Such a move or
 * unblock was accepted (202) and then failed at the connector, "not a calendar block"; it is
 * refused at once now, as one on a removed block ({@link CLOSED}). A known state without a `kind`
 * (the creating command's data, an event that does not say) cannot rule it out.
 */
const ACTS_ON_KIND: Readonly<Partial<Record<CommandType, string>>> = {
  'slot.move_block': 'block',
  'slot.unblock': 'block',
};

/** The known kind of the target when it is not the one a command of this type acts on ({@link ACTS_ON_KIND}), if so. */
function wrongKindFor(type: string, known: q.KnownState | undefined): string | undefined {
  const wanted = ACTS_ON_KIND[type as CommandType];
  const kind = known && isJsonObject(known.data) ? known.data.kind : undefined;
  return wanted !== undefined && typeof kind === 'string' && kind !== wanted ? kind : undefined;
}

/** The entity a command type acts on (`appointment`, `slot`): the `<entity>` of its subject and of its target's aliases. */
function entityOf(type: string): EntityKind {
  // The catalog's x-entity is one of the kinds (core's generator reads it from each schema).
  return (commandTypeInfo(type)?.entity ?? 'appointment') as EntityKind;
}

/** The command types that create their entity (named by `instance`): their outcome names a new hub id. */
const CREATING_TYPES: readonly CommandType[] = commandTypes.filter(
  (t) => commandTypeInfo(t)!.target === 'instance',
);

/**
 * What the hub knows of a command's target, `subject` (an entity of kind `entity`): the data of
 * its latest event ({@link q.currentStateOf}) or, while no event of it has arrived, the data of
 * the command that created it through the hub ({@link q.createdBy}: `createdBy` names it), which
 * asked the vendor for it as it is (its place, its times) and whose result aliased its vendor id.
 * Undefined when neither: the hub does not know the entity.
 *
 * Why not wait for the vendor's notification (as commands once had to, refused 409 "try again
 * shortly"): it may never come (a lost Docplanner push, a pull instance behind), and a block or
 * booking the hub made could then never be moved, removed or cancelled through it. The known-state
 * checks ({@link CLOSED}) read the latest event once there is one; before it, nothing closed it
 * that the hub was told of. `accept` and the run (the handler's `current`) read it alike.
 *
 * @example
 * ```ts
 * await targetStateOf(db, 'slot/3e2d…', 'slot'); // { instanceId: 'dp', data: { start: '…', location: { id: '221304' }, … }, eventType: null, createdBy: '…' }
 * ```
 */
async function targetStateOf(
  db: Executor,
  subject: string,
  entity: string,
): Promise<q.KnownState | undefined> {
  const known = await q.currentStateOf(db, subject);
  if (known) return known;
  const creating = CREATING_TYPES.find((t) => entityOf(t) === entity);
  const made = creating && (await q.createdBy(db, subject, creating));
  return made
    ? { instanceId: made.instanceId, data: made.data, eventType: null, createdBy: made.id }
    : undefined;
}

/** The entities commands act on: only their events may be a command's echo. */
const COMMAND_ENTITIES: ReadonlySet<string> = new Set(commandTypes.map(entityOf));

const SNIPPET_CHARS = 500;

/**
 * How long an echo's normalization waits for a command still running at the vendor, or waiting for
 * a retry due within this long after a try went out, ms. The retry's wait: a call whose answer was
 * lost (a 502 after Docplanner cancelled) puts the command back for a retry, and the vendor's
 * notification of the change, arriving meanwhile, was normalized without `causedBy`, before the
 * retry found the change done (a commands audit).
 */
const ECHO_WAIT_MS = 3000;
/**
 * Between two looks at whether the awaited commands still run, when no wake-up came (a NOTIFY
 * lost, the LISTEN connection down): the first pause, doubled after each look up to the last.
 */
const ECHO_RECHECK_FIRST_MS = 50;
const ECHO_RECHECK_MAX_MS = 1000;

/** NOTIFY channel: a command stopped running (payload: its id); wakes normalizations waiting for it. */
export const CHANNEL_COMMAND_SETTLED = 'switchyard_command_settled';

/** A command job's data: "look at command X" (of connector instance `instance`). */
interface CommandJob {
  id: string;
  /** Absent in jobs queued by an older version: such a job takes a slot without a share. */
  instance?: string;
  traceparent?: string | null;
  /** The W3C tracestate of that trace, resumed with it (absent: none, or an older version's job). */
  tracestate?: string | null;
}

/**
 * A worker process's commands of one connector instance. At most `instanceConcurrency` of them
 * run at once, so one slow vendor (5 s answers) or a queue of one instance's commands does not
 * take every slot while the other instances' commands wait behind it; a job that comes while
 * the instance has its share is parked (its row stays `pending`) and starts when one of them
 * ends. `pausedUntil`: the vendor asked not to be called before then ({@link pause}).
 */
interface InstanceLine {
  instance: string;
  running: number;
  /** Parked jobs by command id, oldest first; at most {@link MAX_PARKED_PER_INSTANCE}. */
  parked: Map<string, CommandJob>;
  /**
   * Jobs ended unparked since the last refill that found nothing more (the line was full): their
   * commands wait in the database, and {@link refill} parks them as the line empties.
   */
  overflow: number;
  /** A refill in progress. */
  refilling?: Promise<void>;
  pausedUntil: number;
  wake?: NodeJS.Timeout;
}

/**
 * The most jobs of one instance a worker process keeps parked. Beyond it a job ends without
 * being parked: its command stays `pending` in the database, and the process reads the next ones
 * from there once fewer than half this many are parked. Unbounded, a flood for one slow vendor
 * moved the whole pg-boss queue into the process's memory: 20,000 bookings for a vendor answering
 * in 2 s parked 19,938 (9.8 MB of heap, about 490 bytes each; a million, half a gigabyte), and the
 * sweep sent all their ids with every query. 256 keeps an instance's share of the slots busy for
 * many of its commands' runs between two refills, each one query.
 */
const MAX_PARKED_PER_INSTANCE = 256;

/**
 * A count of slots: `take` waits while all are taken, `free` gives one back (to the oldest waiter).
 * Bounds the commands running at once in a worker process.
 */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
  free(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

/**
 * A handler's storage of one command (`CommandContext.commandState`): a column of the command's
 * row, so the retention purge that deletes the command deletes it too.
 */
function commandStateStore(db: Executor, commandId: string): StateStore {
  return {
    async get<T extends JsonValue>(key: string) {
      return (await q.getCommandState(db, commandId, key)) as T | undefined;
    },
    set: (key, value) => q.setCommandState(db, commandId, key, value),
    delete: (key) => q.setCommandState(db, commandId, key, undefined),
  };
}

function iso(d: Date | null): string | null {
  return d === null ? null : new Date(d).toISOString();
}

/** JSON with object keys sorted: the same body always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The shape of a token {@link createCommands}' `createCredential` makes: 24 random bytes, base64url. */
const COMMAND_TOKEN = /^sycmd_[A-Za-z0-9_-]{32}$/;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The catalog's rule a JSON Schema cannot state: a span's `end` (a calendar block's) is after its
 * `start`, for every connector. Checked with the schema, so a CRM gets `SY_COMMAND_INVALID` at
 * `/data/end` as for any other field; it answered `SY_COMMAND_UNSUPPORTED` from the connector
 * ("connector docplanner cannot carry out…"), which reads as a connector limit (a commands audit).
 *
 * @example
 * ```ts
 * spanIssues({ start: '2026-03-11T14:00:00+01:00', end: '2026-03-11T13:00:00+01:00' });
 * // [{ path: '/data/end', message: 'must be after /data/start (2026-03-11T14:00:00+01:00)' }]
 * ```
 */
function spanIssues(data: JsonObject): { path: string; message: string }[] {
  const { start, end } = data;
  if (typeof start !== 'string' || typeof end !== 'string') return [];
  return Date.parse(end) > Date.parse(start)
    ? []
    : [{ path: '/data/end', message: `must be after /data/start (${start})` }];
}

function senderLabel(sender: CommandSender): string {
  return sender.kind === 'admin' ? 'admin' : `subscription:${sender.subscriptionId}`;
}

function mayActOn(sender: CommandSender, instanceId: string): boolean {
  return sender.kind === 'admin' || sender.sources === null || sender.sources.includes(instanceId);
}

function refuse(
  code:
    | 'SY_COMMAND_UNKNOWN_TYPE'
    | 'SY_COMMAND_INVALID'
    | 'SY_COMMAND_UNKNOWN_TARGET'
    | 'SY_COMMAND_UNSUPPORTED'
    | 'SY_COMMAND_NO_VENDOR_ID'
    | 'SY_COMMAND_TARGET_STATE'
    | 'SY_COMMAND_IDEMPOTENCY_CONFLICT',
  message: string,
  details?: Record<string, unknown>,
): SwitchyardError {
  return new SwitchyardError(code, message, details ? { details } : undefined);
}

/** A command's result as the API shows it: without the echo it took (hub bookkeeping, `q.claimEcho`). */
function shownResult(result: JsonObject | null): JsonObject | null {
  if (result === null || !('echo' in result)) return result;
  const { echo: _echo, ...shown } = result;
  return shown;
}

function view(row: q.CommandRow): CommandView {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    subject: row.subject,
    instance: row.instance_id,
    connector: row.connector,
    data: row.data,
    sentBy: row.sent_by,
    idempotencyKey: row.idempotency_key,
    run: row.run,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    result: shownResult(row.result),
    error: row.error,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    completedAt: iso(row.completed_at),
  };
}

/** The vendor id an event says is current (`vendorIds[].current`, else the last listed). */
function currentVendorId(data: JsonObject): string | undefined {
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  const current = ids.find((v) => v.current === true) ?? ids[ids.length - 1];
  return typeof current?.value === 'string' ? current.value : undefined;
}

/** The vendor ids an event names as no longer current (`vendorIds[].current: false`). */
function formerVendorIds(data: JsonObject): string[] {
  const ids = Array.isArray(data.vendorIds) ? data.vendorIds.filter(isJsonObject) : [];
  return ids.filter((v) => v.current === false && typeof v.value === 'string').map((v) => v.value as string);
}

/**
 * What tells one vendor notification's draft from another's across normalizations: its type,
 * entity, vendor time and current vendor id. The same notification normalized again gives the same
 * mark; the vendor's next change of the entity has another time.
 */
function echoMark(draft: EventDraft): string {
  return [draft.type, draft.subject, draft.time, currentVendorId(draft.data) ?? ''].join('|');
}

function refId(value: JsonValue | undefined): string | undefined {
  return isJsonObject(value) && typeof value.id === 'string' && value.id !== '' ? value.id : undefined;
}

/**
 * Whether a draft may be the vendor's echo of a command still running, so that its normalization
 * should wait for the command's outcome. A command on an entity: the same entity, and a type its
 * change is notified as. A booking (its appointment unknown until the vendor answers): an
 * `appointment.created` for its slot, i.e. the same start instant and, where both name them, the
 * same practitioner, place and organization. What a draft does not say cannot rule it out.
 *
 * @example
 * ```ts
 * mayEcho({ id, type: 'appointment.book', subject: null, data: { start: '2026-03-10T11:30:00+01:00', practitioner: { id: '182733' } } },
 *   { type: 'appointment.created', subject, time, data: { start: '2026-03-10T10:30:00Z', practitioner: { id: '182733' } } }); // true
 * ```
 */
function mayEcho(command: q.RunningCommand, draft: EventDraft): boolean {
  const types = ECHOES[command.type as CommandType] ?? [];
  if (!types.includes(draft.type)) return false;
  if (command.subject !== null) return command.subject === draft.subject;
  if (!CREATING_TYPES.includes(command.type as CommandType)) return false;
  const wanted = command.data;
  const got = draft.data;
  if (typeof got.start === 'string' && typeof wanted.start === 'string') {
    const a = Date.parse(got.start);
    const b = Date.parse(wanted.start);
    if (!Number.isNaN(a) && !Number.isNaN(b) && a !== b) return false;
  }
  for (const field of ['practitioner', 'location', 'organization']) {
    const a = refId(got[field]);
    const b = refId(wanted[field]);
    if (a !== undefined && b !== undefined && a !== b) return false;
  }
  return true;
}

/** The commands that move their entity: their echo reports the entity at the times they asked for. */
const MOVES: ReadonlySet<string> = new Set<CommandType>(['appointment.reschedule', 'slot.move_block']);

/**
 * Whether a draft may be this command's echo by what it says, beyond its type and entity. A move
 * (reschedule, move_block): the draft's `start` (and `end`, when the move names one) is the instant
 * the move asked for. An `appointment.update` of the `comment` alone: the draft's `changes` names
 * `comment` (custom fields are told as each vendor sees them: any change may be theirs). Any other
 * command, and what a draft does not say (no `changes`, or none named), cannot rule it out.
 *
 * A command done without a change notifies nothing: a block moved to its own times (Docplanner
 * refuses it "Same Date Range"), notes written as they already were (Cliniko saves nothing), an
 * arrival marked on an appointment already arrived, a note or custom field a vendor never notifies
 * (BookingBug, Clockwise.MD). Matched by type alone it took the next notification of its type
 * within the window as its echo: the next move's, each later move's echo then going to the move
 * before it, or a practitioner changed at the front desk, which a CRM skipping its echoes would
 * have lost (a commands audit). What the draft says ties it here; where it cannot (a presence mark's
 * notification says only "arrived"), the connector says the command changed nothing
 * (`CommandResult.unchanged`: the target already so before the call) and the command takes no
 * echo at all ({@link q.recentSuccesses}). The connector, not the hub, decides it: it knows whether
 * its vendor notifies a write that changes nothing, and which read or known field shows the state.
 *
 * @example
 * ```ts
 * fitsCommand({ type: 'slot.move_block', data: { start: '2026-05-14T09:00:00+02:00', end: '2026-05-14T10:00:00+02:00' } },
 *   { type: 'slot.block_moved', data: { start: '2026-05-14T11:00:00+02:00', … }, … }); // false
 * fitsCommand({ type: 'appointment.update', data: { comment: 'x' } },
 *   { type: 'appointment.updated', data: { changes: ['practitioner'], … }, … }); // false
 * fitsCommand({ type: 'appointment.update', data: { customFields: { '104': 'x' } } },
 *   { type: 'appointment.updated', data: { changes: ['patient'], … }, … }); // false
 * ```
 */
export function fitsCommand(command: Pick<q.EchoCandidate, 'type' | 'data'>, draft: EventDraft): boolean {
  if (command.type === 'appointment.update') {
    const changes = draft.data.changes;
    // None named (a version stored before Cliniko kept them): it cannot tell.
    if (!Array.isArray(changes) || changes.length === 0) return true;
    // Each field the update wrote, by the name `changes` gives it. Custom fields: no shipped
    // connector names them (Clockwise.MD's webhook says only `demographics_update`, `patient`,
    // whatever changed, and its read's `extra_fields[]` are not tied to the write's field ids), so
    // such an update takes no echo rather than a front-desk change of the patient's details.
    const wrote = Object.keys(command.data).filter(
      (field) => field === 'comment' || field === 'customFields',
    );
    return wrote.some((field) => changes.includes(field));
  }
  if (!MOVES.has(command.type)) return true;
  return ['start', 'end'].every((field) => {
    const asked = command.data[field];
    const got = draft.data[field];
    if (typeof asked !== 'string' || typeof got !== 'string') return true;
    const a = Date.parse(asked);
    const b = Date.parse(got);
    return Number.isNaN(a) || Number.isNaN(b) || a === b;
  });
}

/**
 * What a command that ends unsent must add when an earlier try of it wrote to the vendor without an
 * answer that refused it (no answer, a 5xx, a 2xx): that write may have been carried out. A book
 * whose answer was lost, waiting for its lookup when its instance was retired, failed saying only
 * "not sent", and the sender took it for no booking while the vendor had made one; a move whose
 * answer was lost, its appointment cancelled before the retry, alike.
 */
async function mayHaveActed(db: Executor, commandId: string): Promise<string> {
  const wrote = (await q.listCalls(db, commandId)).some(
    (c) => c.method !== 'GET' && !(c.status_code !== null && c.status_code >= 400 && c.status_code < 500),
  );
  return wrote
    ? '; an earlier try wrote to the vendor without an answer that refused it (see calls): it may have been carried out'
    : '';
}

/** Why a disabled instance carries out no command (`details.reason` of the refusal). */
function disabledReason(instance: HostInstance): string {
  return `it is disabled (${instance.row.disabled_reason ?? 'no reason given'})`;
}

/** pg-boss's `{ db }` option over a kysely transaction: the job commits with the command row. */
function bossDb(trx: Kysely<unknown>) {
  return {
    executeSql: async (text: string, values?: unknown[]) => {
      const r = await trx.executeQuery(CompiledQuery.raw(text, values ?? []));
      return { rows: r.rows as unknown[] };
    },
  };
}

/**
 * The credentials a command's calls carried (the values of their secret-named headers, the token
 * of an `Authorization` scheme, and the values of their secret-named form fields), to scrub from
 * what the vendor answered: a token the connector got at run time (Docplanner's OAuth2 access
 * token, BookingBug's admin Auth-Token) is no value of the instance's settings, and an answer
 * quoting it (a gateway's error page showing the request's headers) kept it in the call's snippet
 * and the command's error, a live credential shown to the command's sender (a commands audit). A
 * form field: the SDK's clientCredentials in `authentication: 'body'` mode sends `client_secret` in
 * the form, as a password, refresh-token or JWT-assertion grant sends its credential; a token
 * endpoint's error page showing the form back kept it whenever it was no `x-secret` setting (a
 * secrets audit). Which names are secret is {@link secretFieldValues}'s one list (delivery/redact.ts).
 *
 * @example
 * ```ts
 * const sent = new SentCredentials();
 * sent.add({ headers: { authorization: 'Bearer tok-0123456789' } });
 * sent.scrub('headers: authorization=Bearer tok-0123456789'); // 'headers: authorization=[redacted]'
 * sent.add({ form: { grant_type: 'client_credentials', client_secret: 'cs-0123456789' } });
 * sent.scrub('form=grant_type=client_credentials&client_secret=cs-0123456789'); // '…client_secret=[redacted]'
 * ```
 */
export class SentCredentials {
  readonly #values = new Set<string>();
  #scrub: ((text: string) => string) | undefined;

  add(request: Pick<VendorRequest, 'headers' | 'form'>): void {
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (typeof value !== 'string' || !isSecretHeaderName(name)) continue;
      const scheme = /^\s*[A-Za-z][\w-]*\s+(\S+)\s*$/.exec(value);
      for (const secret of scheme ? [scheme[1]!, value] : [value]) this.#remember(secret);
    }
    // secretScrubber also finds a value form-encoded, as a page quoting the form shows it.
    for (const secret of secretFieldValues(request.form ?? {})) this.#remember(secret);
  }

  #remember(secret: string): void {
    if (secret === '' || this.#values.has(secret)) return;
    this.#values.add(secret);
    this.#scrub = undefined;
  }

  scrub(text: string): string {
    if (this.#values.size === 0) return text;
    this.#scrub ??= secretScrubber([...this.#values], { cutEnds: true });
    return this.#scrub(text);
  }
}

/**
 * Wraps VendorHttp so every call is recorded (origin and path only: query strings may hold keys):
 * a row before the request goes out, its outcome once it ends (store.ts `startCall`).
 */
function recordingHttp(
  http: VendorHttp,
  db: Kysely<unknown>,
  at: Omit<q.StartedCall, 'startedAt' | 'method' | 'url'>,
  scrub: (text: string) => string,
  sent: SentCredentials,
): VendorHttp {
  return {
    async request(request: VendorRequest) {
      sent.add(request);
      const scrubAll = (text: string) => sent.scrub(scrub(text));
      const startedAt = new Date();
      const method =
        request.method ?? (request.json !== undefined || request.form !== undefined ? 'POST' : 'GET');
      let url = '(invalid URL)';
      try {
        const u = new URL(request.url);
        url = `${u.origin}${u.pathname}`;
      } catch {
        // keep the placeholder
      }
      // Recorded first: the database refusing means no call is made (the try is transient).
      const id = await q.startCall(db, { ...at, startedAt, method, url });
      const started = performance.now();
      const latencyMs = () => Math.round((performance.now() - started) * 10) / 10;
      // The vendor's answer goes to the handler whatever happens to its record: a record that cannot
      // be written keeps saying "no answer recorded" rather than turning an answer into a failure.
      const end = (outcome: q.CallOutcome) => q.endCall(db, id, outcome).catch(() => {});
      try {
        const res = await http.request(request);
        // A login's answer carries a token: kept on the command, so its secret fields are redacted.
        const body =
          typeof res.body === 'string'
            ? redactSecretFields(res.body)
            : JSON.stringify(redactSecretFields(res.body));
        await end({
          statusCode: res.status,
          latencyMs: latencyMs(),
          error: null,
          responseSnippet: scrubAll(body).slice(0, SNIPPET_CHARS),
        });
        return res;
      } catch (error) {
        await end({
          statusCode: null,
          latencyMs: latencyMs(),
          error: scrubAll((error as Error).message ?? String(error)),
          responseSnippet: null,
        });
        throw error;
      }
    },
  };
}

interface Attached {
  host: HubHost;
  logger: pino.Logger;
  /** The host's pg-boss instance (the commands never start or stop it). */
  boss: PgBoss;
  /**
   * Set by `stop`: a job that gets its slot after this starts nothing; its command is handed over
   * ({@link handBack}).
   */
  stopping?: boolean;
  /**
   * Commands this process set aside and will not run, since it is stopping: parked, or given a slot
   * after the stop. `stop` sends their jobs again, so another process runs them at once; before,
   * they waited for another process's sweep (`commands.sweepInterval`, 30 s).
   */
  handBack: Map<string, CommandJob>;
  /** This process's pg-boss worker on the command queue (worker processes only). */
  bossWorkerId?: string;
  /** Timers that wake that worker when a delayed job it queued comes due ({@link sendJob}). */
  wakeTimers: Set<NodeJS.Timeout>;
  /**
   * "command will be retried", bounded per instance: a vendor down says it for every command and
   * attempt (logging/repeats.ts).
   */
  retryWarning: RepeatedWarning;
}

/**
 * A delayed job's wake comes this long after its `startAfter`, so the fetch (pg-boss compares with
 * the database's clock) finds it due.
 */
const DUE_WAKE_MARGIN_MS = 250;

/**
 * The longest delay Node's timers take (2^31 - 1 ms, 24.8 days): a longer one fires after 1 ms,
 * with a TimeoutOverflowWarning on stderr. A wait can be longer (`commands.maxRetryAfter` and
 * `retrySchedule` have no upper bound, and a vendor may ask for years): its timer is armed for this
 * long and, firing early, armed again for what is left.
 */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * How long pg-boss lets the command worker's handler hold a batch of jobs, seconds. The handler
 * holds them only until each command has a slot (not while it runs: the command's own lease,
 * `commands.lease`, covers that); past this pg-boss fails the batch's jobs and fetches nothing
 * until the handler returns (the commands still start: the row is the truth). It was the lease,
 * 120 s by default; tied to the 30 s lease, a handler waiting half a minute for a slot behind slow
 * vendors would have been an overrun.
 */
const JOB_EXPIRE_SECONDS = 120;

/** How often a command cut short by a database outage is offered back (runCommand's giveBack), ms. */
const GIVE_BACK_RETRY_MS = 500;

/**
 * The shortest interval between renewals of a running command's lease, ms; it is renewed every
 * third of the lease (10 s by default), so a lease survives two failed renewals.
 */
const LEASE_RENEW_MIN_MS = 200;

/**
 * {@link CommandsOptions} with every default applied: the tunable ones from the config file's
 * defaults (`CONFIG_DEFAULTS.commands`), so the library and `switchyard.yaml` never disagree.
 *
 * @example
 * ```ts
 * resolveCommandsOptions().leaseMs; // 30000
 * resolveCommandsOptions({ leaseMs: 2000 }).leaseMs; // 2000
 * resolveCommandsOptions({ concurrency: 8 }).instanceConcurrency; // 4
 * ```
 */
export function resolveCommandsOptions(options: CommandsOptions = {}): Required<CommandsOptions> {
  const defaults = CONFIG_DEFAULTS.commands;
  const concurrency = options.concurrency ?? defaults.concurrency;
  return {
    worker: options.worker ?? true,
    concurrency,
    instanceConcurrency: Math.min(options.instanceConcurrency ?? Math.ceil(concurrency / 2), concurrency),
    retryScheduleMs: options.retryScheduleMs ?? defaults.retrySchedule.map(defaultMs),
    retryJitter: options.retryJitter ?? 0.2,
    maxRetryAfterMs: options.maxRetryAfterMs ?? defaultMs(defaults.maxRetryAfter),
    leaseMs: options.leaseMs ?? defaultMs(defaults.lease),
    sweepIntervalMs: options.sweepIntervalMs ?? defaultMs(defaults.sweepInterval),
    echoWindowMs: options.echoWindowMs ?? defaultMs(defaults.echoWindow),
    retentionMs: options.retentionMs ?? defaultMs(defaults.retention),
    retentionCron: options.retentionCron ?? '23 * * * *',
  };
}

/**
 * Creates the commands subsystem. Wire `hooks` into `createHub`, then `start(host)` it.
 *
 * @example
 * ```ts
 * const commands = createCommands();
 * const hub = await createHub({ databaseUrl, connectors, secretKey, ...commands.hooks });
 * await hub.start();
 * await commands.start(hub.host);
 * const accepted = await commands.accept({ kind: 'admin' }, { type: 'appointment.cancel', subject: 'appointment/6f1c…', data: { reason: 'patient called' } }, 'crm-7781-cancel');
 * // accepted.command.status === 'pending'; later GET /v1/commands/{id} shows the vendor calls
 * ```
 */
export function createCommands(options: CommandsOptions = {}) {
  const isWorker = options.worker ?? true;
  const {
    concurrency,
    instanceConcurrency,
    retryScheduleMs,
    retryJitter,
    maxRetryAfterMs,
    leaseMs,
    sweepIntervalMs,
    echoWindowMs,
    retentionMs,
    retentionCron,
  } = resolveCommandsOptions(options);
  const workerId = `${hostname()}/${process.pid}/${newId().slice(0, 8)}`;
  const running = new Set<Promise<unknown>>();
  let state: Attached | undefined;
  let starting: Promise<void> | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let metrics:
    | {
        outcomes: Counter<'instance' | 'type' | 'outcome'>;
        vendor: Histogram<'connector' | 'type'>;
        parked: Gauge<'instance'>;
      }
    | undefined;
  // Echo marking is on the normalize path: ask the database only when a command may have succeeded
  // within the window (here: known at once; in another process: checked at most every 2 s).
  let lastLocalSuccessAt = 0;
  let localRunning = 0;
  // Until when a command this process put back for a retry may still be awaited by an echo.
  let localRetryUntil = 0;
  let echoCheck: { at: number; latest: number; running: boolean } | undefined;
  let echoChecking: Promise<void> | undefined;
  // Normalizations waiting for a running command (by its id), woken when it stops running.
  const echoWaiters = new Map<string, Set<() => void>>();
  // This worker process's commands by connector instance (see InstanceLine).
  const lines = new Map<string, InstanceLine>();
  let unlisten: (() => void) | undefined;
  // The token hashes of the credentials in force, for limited addresses (mayBeCredential).
  const credentialHashes = new CredentialSnapshot({
    load: () => q.listCredentialHashes(attached().host.db),
  });

  function attached(): Attached {
    if (!state) throw new SwitchyardError('SY_PIPELINE_CONFLICT', 'the commands subsystem is not started');
    return state;
  }

  async function counted<T>(p: Promise<T>): Promise<T> {
    localRunning++;
    try {
      return await p;
    } finally {
      localRunning--;
    }
  }

  function track<T>(p: Promise<T>): Promise<T> {
    running.add(p);
    void p.finally(() => running.delete(p)).catch(() => {});
    return p;
  }

  /**
   * Queues "look at command X". The job carries the W3C traceparent (and tracestate) of the request
   * that sent (or retried) the command, so its run continues that trace; a job for the next command of a subject
   * or from the sweep carries none (the run starts a trace of its own). It names the command's
   * connector instance too, so a worker can hold it back while that instance has its share of the
   * worker's slots (or its vendor asked for a pause) without reading the row first.
   */
  async function sendJob(
    s: Attached,
    db: Kysely<unknown>,
    command: q.CommandRef,
    startAfter?: Date,
    traceparent: string | null = null,
    tracestate: string | null = null,
  ): Promise<void> {
    const delayed = startAfter && startAfter.getTime() > Date.now() + 50;
    const job: CommandJob = { id: command.id, instance: command.instance_id, traceparent, tracestate };
    await s.boss.send(COMMAND_QUEUE, job, {
      db: bossDb(db),
      ...(delayed ? { startAfter } : {}),
      retryLimit: 0,
      expireInSeconds: JOB_EXPIRE_SECONDS,
    });
    // pg-boss's NOTIFY goes out when the job is inserted, not when it comes due: a retry waited for
    // the worker's 30 s backstop poll or the sweep (a 1 s retry ran after 5-20 s, a vendor's
    // Retry-After overshot the same way: a commands audit). This process wakes its own worker then.
    const worker = s.bossWorkerId;
    if (delayed && worker !== undefined) {
      const timer = setTimeout(
        () => {
          s.wakeTimers.delete(timer);
          s.boss.notifyWorker(worker);
        },
        // Firing early for a longer wait only wakes the worker once for nothing: the job is not due.
        Math.min(startAfter.getTime() - Date.now() + DUE_WAKE_MARGIN_MS, MAX_TIMER_MS),
      );
      timer.unref();
      s.wakeTimers.add(timer);
    }
  }

  function outcomeEvent(row: q.CommandRow): EventEnvelope {
    const data: JsonObject = {
      commandId: row.id,
      commandType: row.type,
      instance: row.instance_id,
      attempts: row.attempts,
      sentBy: row.sent_by,
    };
    if (row.subject !== null) data.target = row.subject;
    if (row.idempotency_key !== null) data.idempotencyKey = row.idempotency_key;
    if (row.status === 'succeeded') data.result = row.result ?? {};
    else data.error = row.error ?? { kind: 'permanent', message: 'failed' };
    return {
      specversion: '1.0',
      // One outcome per run to completion: a retried failed command announces its new outcome under a new id.
      id: eventIdFor(row.id, row.outcomes - 1),
      type: row.status === 'succeeded' ? 'command.succeeded' : 'command.failed',
      source: row.instance_id,
      subject: `command/${row.id}`,
      time: new Date(row.completed_at ?? Date.now()).toISOString(),
      datacontenttype: 'application/json',
      data,
      connector: row.connector,
      instance: row.instance_id,
      vendortype: 'command',
    } as EventEnvelope;
  }

  /**
   * Runs one command if it is due and first in line; every outcome is stored before it returns.
   * Once it is no longer running here (finished, put back for a retry, or its lease lost), the
   * normalizations waiting for it ({@link awaitCommands}) are woken: in this process at once, in
   * the others by a NOTIFY.
   */
  async function runCommand(s: Attached, id: string): Promise<void> {
    const row = await q.claimCommand(s.host.db, id, leaseMs);
    if (!row) return;
    let leaseEndsAt = Date.now() + leaseMs;
    // The lease is held for as long as the run lasts: a handler's vendor calls (a Docplanner cancel
    // makes up to three of up to 10 s each) could outlast a short `commands.lease`, and the sweep
    // then ran the command again beside this run, calling the vendor twice (a commands audit: a
    // 5 s lease and a 15 s answer ran it twice). A failed renewal (the database away) is left to
    // the lease: the run's outcome is stored only while this claim still holds it.
    // One renewal at a time: a renewal the database holds up (a lock on the row, a slow database)
    // was joined by another every third of the lease, each waiting on a pooled connection the
    // other work of the process needs (an attacker audit: six waiting after 2 s of a 1 s lease).
    let renewing = false;
    const renewal = setInterval(
      () => {
        if (renewing) return;
        renewing = true;
        const at = Date.now();
        q.extendCommandLease(s.host.db, row.id, row, leaseMs)
          .then(
            (held) => {
              if (held) leaseEndsAt = at + leaseMs;
              else clearInterval(renewal);
            },
            () => {},
          )
          .finally(() => {
            renewing = false;
          });
      },
      Math.max(LEASE_RENEW_MIN_MS, leaseMs / 3),
    );
    renewal.unref?.();
    try {
      await runClaimed(s, row);
    } catch (error) {
      // The database went away before the outcome was stored: given back as soon as it answers
      // again, as a normalization or a delivery cut short is, instead of `running` until its lease
      // runs out (30 s by default) and the sweep after it (30 s) for a blip of a second.
      if (isDatabaseUnavailable(error)) void track(giveBack(s, row, leaseEndsAt));
      throw error;
    } finally {
      clearInterval(renewal);
      settled(row.id);
      void s.host.notify(CHANNEL_COMMAND_SETTLED, row.id);
    }
  }

  /**
   * Puts a command this process claimed back to `pending`, due now, with its job, once the
   * database answers (tried every {@link GIVE_BACK_RETRY_MS}). Run again, a handler whose vendor
   * call went through answers as after a crash (at least once: an idempotent call, or the
   * handler's own record of a call the vendor cannot deduplicate). Gives up when the claim is no
   * longer this process's (the outcome did commit, or another process took it over), when its
   * lease has run out (the sweep's turn then) or when the process stops: then it says so, since
   * the command stays `running` until its lease ends (`commands.lease`, 30 s by default) with no
   * process working on it.
   */
  async function giveBack(s: Attached, row: q.CommandRow, leaseEndsAt: number): Promise<void> {
    for (;;) {
      if (s.stopping) {
        // A graceful stop while the database is away: nothing else can be done for the command
        // now, but an operator watching it sit `running` learns why and until when.
        s.logger.warn(
          {
            command: row.id,
            type: row.type,
            instance: row.instance_id,
            leaseEndsAt: new Date(leaseEndsAt).toISOString(),
          },
          'stopped with a command the database outage cut short: it stays running until its lease ends, then another process (or this one, started again) runs it again',
        );
        return;
      }
      if (Date.now() >= leaseEndsAt) return;
      await new Promise((resolve) => setTimeout(resolve, GIVE_BACK_RETRY_MS).unref?.());
      try {
        await s.host.db.transaction().execute(async (trx) => {
          const again = await q.giveBackCommand(trx, row.id, row, 0, {
            kind: 'transient',
            message: 'the database became unavailable before the outcome was stored',
          });
          if (again) await sendJob(s, trx, row);
        });
        return;
      } catch (error) {
        if (!isDatabaseUnavailable(error)) {
          s.logger.warn({ err: error, command: row.id }, 'giving a command back failed; its lease runs out');
          return;
        }
      }
    }
  }

  /** Runs a command this process has claimed, and stores its outcome (see {@link runCommand}). */
  async function runClaimed(s: Attached, row: q.CommandRow): Promise<void> {
    const { host } = s;
    const logger = s.logger.child({ command: row.id, type: row.type, instance: row.instance_id });
    setSpanAttributes({
      'switchyard.command.type': row.type,
      'switchyard.instance': row.instance_id,
      'switchyard.attempt': row.attempts,
    });
    const started = performance.now();
    let result: CommandResult;
    // The hub's own database failed this try (its aliases, state or call records: a full disk, a
    // deadlock, a cancel), not the vendor: retried, never the command's last attempt ({@link isDatabaseUnavailable}).
    let databaseFault = false;
    let hubId: string | undefined = row.subject?.slice(row.subject.indexOf('/') + 1);
    const entity = entityOf(row.type);
    let targetVendorIds: string[] = [];
    // The instance's secret values (its API key, OAuth2 client secret, admin password): a vendor
    // that quotes one in its answer ("Invalid Authtoken <key>") had it stored in the call's snippet
    // and the command's error, shown by the API and delivered in command.failed to every subscriber
    // (a commands audit).
    let scrub = (text: string) => text;
    // And what this try's calls carried (a token got at run time): {@link SentCredentials}.
    const sentCredentials = new SentCredentials();
    try {
      const instance = await host.loadInstance(row.instance_id);
      if (instance)
        scrub = secretScrubber(collectSecretValues(instance.config, instance.connector.configSchema), {
          cutEnds: true,
        });
      // Indexed by a runtime type: the handler's own CommandRequest<T> is the request built below.
      const handler = instance?.connector.commands?.[row.type as CommandType] as
        | ((command: CommandRequest, ctx: CommandContext<Record<string, unknown>>) => Promise<CommandResult>)
        | undefined;
      if (!instance || !handler || instance.row.disabled_at !== null) {
        result = {
          outcome: 'permanent',
          message:
            (!instance
              ? `connector instance ${row.instance_id} no longer exists`
              : instance.row.disabled_at !== null
                ? `connector instance ${row.instance_id} cannot carry out commands: ${disabledReason(instance)}; not sent`
                : `connector ${instance.connector.name} no longer supports ${row.type}`) +
            (await mayHaveActed(host.db, row.id)),
        };
      } else {
        const aliases = host.aliases(row.instance_id);
        targetVendorIds = hubId !== undefined ? await aliases.vendorIds(entity, hubId) : [];
        const known = row.subject ? await targetStateOf(host.db, row.subject, entity) : undefined;
        const closedSince = CLOSED[entity]?.by === row.type ? undefined : closedFor(row.type, entity, known);
        const request = {
          id: row.id,
          type: row.type as CommandType,
          data: row.data,
          ...(row.subject ? { subject: row.subject } : {}),
        } as CommandRequest;
        try {
          // Cancelled since it was accepted (a retry waiting while the vendor's cancellation came
          // in): refused as a new command would be, not sent to a vendor that refuses it anyway
          // (a commands audit: a reschedule's retry called Docplanner and failed on its 409). A
          // cancel (an unblock) is the connector's to judge: its own earlier try may be what
          // cancelled it ({@link CLOSED}).
          result = closedSince
            ? {
                outcome: 'permanent',
                message:
                  `${row.subject} was ${closedSince} since the command was accepted; not sent` +
                  (await mayHaveActed(host.db, row.id)),
              }
            : await handler(request, {
                instanceId: row.instance_id,
                config: instance.config,
                http: recordingHttp(
                  host.vendorHttp,
                  host.db,
                  { commandId: row.id, run: row.run, attempt: row.attempts },
                  scrub,
                  sentCredentials,
                ),
                vendorIds: targetVendorIds,
                ...(known && isJsonObject(known.data) ? { current: known.data } : {}),
                state: host.state(row.instance_id),
                commandState: commandStateStore(host.db, row.id),
                logger: connectorLogger(logger),
                attempt: row.attempts,
              });
        } catch (error) {
          // A handler should answer, not throw; a ConnectorError still says what kind of failure it is.
          const message = (error as Error)?.message ?? String(error);
          databaseFault = !isConnectorError(error) && isDatabaseUnavailable(error);
          result =
            isConnectorError(error) &&
            (error.kind === 'permanent' || error.kind === 'bad_request' || error.kind === 'auth')
              ? { outcome: 'permanent', message }
              : {
                  outcome: 'transient',
                  message,
                  ...(isConnectorError(error) && error.retryAfterMs !== undefined
                    ? { retryAfterMs: error.retryAfterMs }
                    : {}),
                };
        }
        setSpanAttributes({ 'switchyard.command.outcome': result.outcome });
        // A failure from here on (the database) turns the vendor's success into a transient failure,
        // and the retry calls the handler again. One mechanism keeps that from repeating a vendor
        // call: a handler whose call the vendor cannot deduplicate (Docplanner's book and move,
        // Clockwise.MD's create) records the call's outcome in the command's state, in the same
        // write that ends its "sent" mark, and answers the recorded result on a later try without
        // calling the vendor. The hub does not record the result as well: its record could only be
        // written after the handler returned, so the handler's own record is needed anyway for a
        // failure before that write, and two records of one fact would be two ways of doing it.
        // Idempotent calls (a cancel that finds the booking cancelled) need no record at all.
        if (result.outcome === 'done' && result.vendorIds && result.vendorIds.length > 0) {
          // New vendor ids name the same entity (a move's new booking id) or a new one (a booking, a block).
          if (hubId === undefined) hubId = await aliases.hubId(entity, result.vendorIds[0]!);
          for (const vendorId of result.vendorIds) await aliases.link(entity, vendorId, hubId);
        }
      }
    } catch (error) {
      // Loading the instance or the aliases, or linking the vendor's new ids, failed (the
      // database): try again later. The vendor may have carried it out: its recorded answer (or
      // an idempotent call) makes the retry succeed without a second effect.
      databaseFault = isDatabaseUnavailable(error);
      result = { outcome: 'transient', message: (error as Error)?.message ?? String(error) };
    }
    metrics?.vendor.observe(
      { connector: row.connector, type: row.type },
      (performance.now() - started) / 1000,
    );
    if (result.outcome === 'transient' && result.retryAfterMs !== undefined && result.retryAfterMs > 0)
      pause(s, row.instance_id, Math.min(result.retryAfterMs, maxRetryAfterMs));

    const maxAttempts = retryScheduleMs.length + 1;
    // The failure as the command's `error` and its command.failed event store it: the vendor's
    // answer with its secret fields redacted and the instance's secret values scrubbed, as a call's
    // snippet is, and its words as Postgres takes them. A NUL in a vendor's 4xx body, or an emoji
    // the 2,000-character cut split in two, failed the outcome's write: the command stayed
    // 'running' until its lease ran out and was sent to the vendor again, every lease, for as long
    // as the vendor answered so (a commands audit).
    // The vendor answer's own token fields, as its body shows them redacted: the message may quote
    // that answer's text whole (a connector does with an answer it could not parse).
    const answered = result.outcome === 'done' ? [] : secretFieldValues(result.vendor?.body);
    const fieldScrub = answered.length === 0 ? undefined : secretScrubber(answered);
    const scrubAll = (text: string) => {
      const scrubbed = sentCredentials.scrub(scrub(text));
      return fieldScrub ? fieldScrub(scrubbed) : scrubbed;
    };
    const failure = (kind: string, r: Exclude<CommandResult, { outcome: 'done' }>): JsonObject => {
      const shown = (text: string) => storableText(scrubAll(text));
      try {
        const vendor = r.vendor && {
          status: r.vendor.status,
          body: truncate(mapJsonStrings(redactSecretFields(r.vendor.body), scrubAll)),
        };
        return mapJsonStrings(
          { kind, message: r.message, ...(vendor ? { vendor } : {}) },
          shown,
        ) as JsonObject;
      } catch (error) {
        // A body nested too deeply to walk (or to store): its status and the message say enough.
        if (!(error instanceof RangeError)) throw error;
        return {
          kind,
          message: shown(r.message),
          ...(r.vendor ? { vendor: { status: r.vendor.status } } : {}),
        };
      }
    };
    const finished = await host.db.transaction().execute(async (trx) => {
      let done: q.CommandRow | undefined;
      if (result.outcome === 'done') {
        const subject = hubId !== undefined ? `${entity}/${hubId}` : row.subject;
        const current = targetVendorIds[targetVendorIds.length - 1];
        const resultJson: JsonObject = { vendorIds: result.vendorIds ?? [] };
        // `appointmentId` for a booking, `slotId` for a block (command.succeeded's schema).
        if (row.subject === null && subject !== null) resultJson[`${entity}Id`] = hubId!;
        if (result.alreadyDone) resultJson.alreadyDone = true;
        // Shown (the sender knows no echo will come) and read by `recentSuccesses`: no echo taken.
        if (result.unchanged) resultJson.unchanged = true;
        done = await q.finishCommand(trx, row.id, row, {
          status: 'succeeded',
          subject,
          vendorIds: [...(current ? [current] : []), ...(result.vendorIds ?? [])],
          result: resultJson,
          error: null,
        });
      } else if (result.outcome === 'transient' && (row.attempts < maxAttempts || databaseFault)) {
        // A database fault is never the command's failure (command.failed to its sender for the
        // hub's own disk being full would report a vendor call that may have succeeded as not
        // done): its attempt is given back, and it waits this attempt's delay again and again.
        const delay = Math.min(
          Math.max(
            jittered(retryScheduleMs[Math.min(row.attempts, maxAttempts - 1) - 1] ?? 0, retryJitter),
            Math.min(result.retryAfterMs ?? 0, maxRetryAfterMs),
          ),
          Math.max(maxRetryAfterMs, ...retryScheduleMs),
        );
        // The database's fault gives the attempt back: it spends none of the command's tries.
        const again = databaseFault
          ? await q.giveBackCommand(trx, row.id, row, delay, failure('transient', result))
          : await q.retryCommandLater(trx, row.id, row, delay, failure('transient', result));
        if (again)
          await sendJob(
            s,
            trx,
            row,
            again.next_attempt_at,
            currentTraceparent() ?? null,
            currentTracestate() ?? null,
          );
        if (delay <= ECHO_WAIT_MS)
          localRetryUntil = Math.max(localRetryUntil, Date.now() + delay + ECHO_WAIT_MS);
        warnRepeated(
          logger,
          s.retryWarning.take(row.instance_id),
          { attempt: row.attempts, delayMs: delay, reason: scrubAll(result.message) },
          'command will be retried',
        );
        return undefined;
      } else {
        done = await q.finishCommand(trx, row.id, row, {
          status: 'failed',
          subject: row.subject,
          vendorIds: [],
          result: null,
          error: failure(result.outcome === 'permanent' ? 'permanent' : 'exhausted', result),
        });
      }
      if (!done) return undefined; // the lease was lost: another process owns the command now
      if (done.ordering_key !== null) {
        const next = await q.nextInLine(trx, done.ordering_key);
        if (next) await sendJob(s, trx, next, next.next_attempt_at);
      }
      // The outcome event last, right before the commit: its sequence is drawn as it is inserted,
      // and the pull feed serves past a sequence still uncommitted once the event after it is
      // FEED_COMMIT_WINDOW_S old (events/store.ts), losing it to a reader that moves on. Stored
      // before the next command's job, a wait for the job table's lock (pg-boss at work, a
      // database slow to answer) held the event uncommitted for as long: a pull reader never got
      // a command.succeeded held 7 s so (a fault-injection audit).
      await host.storeEvents(trx, [outcomeEvent(done)]);
      return done;
    });
    if (finished) {
      metrics?.outcomes.inc({ instance: row.instance_id, type: row.type, outcome: finished.status });
      if (finished.status === 'succeeded') {
        lastLocalSuccessAt = Date.now();
        logger.info({ status: finished.status, attempts: finished.attempts }, 'command succeeded');
      } else {
        // A warning, as each retry before it is: the vendor did not carry it out, and only this line
        // and the command's record say why (its `error`, already scrubbed of secrets, cut short).
        const error = finished.error ?? {};
        const vendor = error.vendor as { status?: number } | undefined;
        logger.warn(
          {
            status: finished.status,
            attempts: finished.attempts,
            kind: error.kind,
            reason: error.message,
            ...(vendor?.status !== undefined ? { vendorStatus: vendor.status } : {}),
          },
          'command failed: a command.failed event went to subscribers; the command shows the vendor answer (GET /v1/commands/{id}, the dashboard), and POST /v1/commands/{id}/retry sends it again',
        );
      }
    }
  }

  function truncate(body: JsonValue | string): JsonValue {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    if (text.length <= 2000) return body as JsonValue;
    return `${text.slice(0, 2000)}…`;
  }

  async function purge(s: Attached, now: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await q.purgeCommands(s.host.db, new Date(now.getTime() - retentionMs), 1000, CREATING_TYPES);
      total += n;
      if (n < 1000) return total;
    }
  }

  /**
   * Sends the jobs of the commands this stopping process set aside ({@link Attached.handBack}):
   * another process's worker hears them at once. A command run meanwhile is not claimed twice (the
   * claim takes only a due `pending` one). A failure leaves them to the sweep, as before.
   */
  async function handOver(s: Attached): Promise<void> {
    // A job of an older version names no instance: the sweep's, as before.
    const jobs = [...s.handBack.values()].filter((job) => job.instance !== undefined);
    s.handBack.clear();
    if (jobs.length === 0) return;
    try {
      for (const job of jobs)
        await sendJob(
          s,
          s.host.db,
          { id: job.id, instance_id: job.instance! },
          undefined,
          job.traceparent ?? null,
          job.tracestate ?? null,
        );
      s.logger.info(
        { commands: jobs.length },
        'stopping: commands not started here were handed to the other processes',
      );
    } catch (error) {
      s.logger.warn(
        { err: error, commands: jobs.length },
        "stopping: commands not started here could not be handed over: another process's sweep sends them",
      );
    }
  }

  async function sweep(s: Attached): Promise<number> {
    const overflowing = [...lines.values()].filter((line) => line.overflow > 0).map((line) => line.instance);
    const stranded = await q.strandedCommands(s.host.db, 2000, 100, parkedIds(), {
      notPendingOf: overflowing,
    });
    for (const command of stranded) await sendJob(s, s.host.db, command);
    return stranded.length;
  }

  /**
   * Whether any command succeeded within the echo window or is running: known at once for this
   * process's own commands, read from the database at most every 2 s for other processes' (so the
   * normalize path costs no query while the hub sends no commands).
   */
  async function mayHaveEchoes(s: Attached): Promise<boolean> {
    const now = Date.now();
    if (now - lastLocalSuccessAt < echoWindowMs || localRunning > 0 || now < localRetryUntil) return true;
    if (!echoCheck || now - echoCheck.at > 2000) {
      // One read for every normalization asking meanwhile: without it, each of the workers asking
      // while the first read was on its way sent its own (0.2 ms of Postgres CPU per event at 200/s).
      echoChecking ??= q
        .echoActivity(s.host.db, new Date(now - echoWindowMs), ECHO_WAIT_MS)
        .then((activity) => {
          echoCheck = {
            at: now,
            latest: activity.latest ? new Date(activity.latest).getTime() : 0,
            running: activity.running,
          };
        })
        .finally(() => {
          echoChecking = undefined;
        });
      await echoChecking;
    }
    const check = echoCheck!;
    return check.running || now - check.latest < echoWindowMs;
  }

  /** Wakes the normalizations waiting for this command (or, with no id, for any: a reconnect). */
  function settled(commandId: string | undefined): void {
    const woken =
      commandId === undefined ? [...echoWaiters.values()] : [echoWaiters.get(commandId) ?? new Set()];
    for (const set of woken) for (const wake of [...set]) wake();
  }

  /**
   * Waits until none of these commands runs any longer, at most until `deadline` (ms since the
   * epoch). Woken when one of them stops running: by this process's own run of it at once, by
   * another process's NOTIFY ({@link CHANNEL_COMMAND_SETTLED}); in between, a look by id with a
   * growing pause (50 ms, doubled up to 1 s), a bound for a lost wake-up and not a poll: at most
   * about six looks in 3 s where the loop this replaced read the commands every 25 ms (~120).
   */
  async function awaitCommands(s: Attached, ids: readonly string[], deadline: number): Promise<void> {
    let running = [...ids];
    let pause = ECHO_RECHECK_FIRST_MS;
    while (running.length > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          for (const id of running) echoWaiters.get(id)?.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(pause, left));
        for (const id of running) {
          let set = echoWaiters.get(id);
          if (!set) {
            set = new Set();
            echoWaiters.set(id, set);
          }
          set.add(wake);
        }
      });
      for (const id of running) if (echoWaiters.get(id)?.size === 0) echoWaiters.delete(id);
      pause = Math.min(pause * 2, ECHO_RECHECK_MAX_MS);
      running = await q.stillRunning(s.host.db, running, ECHO_WAIT_MS);
    }
  }

  /**
   * The `markEchoes` hook: sets `data.causedBy` on drafts that are the vendor's echo of a command.
   *
   * A command's echo is the first vendor notification that matches it (instance, entity, an event
   * type the command's change is notified as, the vendor id, within `echoWindowMs`); it is
   * recorded on the command ({@link q.claimEcho}), so a later change of the same entity within the
   * window (staff editing the appointment the CRM just updated) is not marked, whichever process
   * normalizes it. Of two commands that match, the one that succeeded first takes the first echo.
   *
   * A vendor may notify a change before the hub has recorded the vendor's answer to the call that
   * made it (Docplanner's `slot-booked` can overtake the answer to the booking call): the message's
   * normalization then waits for that command (at most `ECHO_WAIT_MS`) before matching. Only for a
   * command the drafts may echo ({@link mayEcho}): one on the draft's entity whose change is
   * notified as the draft's type, or a booking whose slot is the draft's. A booking waiting for a
   * slow vendor no longer holds up every other appointment notification of its instance.
   */
  async function markEchoes(instanceId: string, drafts: EventDraft[]): Promise<void> {
    const s = state;
    if (!s) return;
    const candidates = drafts.filter((d) => COMMAND_ENTITIES.has(d.subject.slice(0, d.subject.indexOf('/'))));
    if (candidates.length === 0) return;
    const subjects = [...new Set(candidates.map((d) => d.subject))];
    if (!(await mayHaveEchoes(s))) return;
    // The creating commands (a booking, a block) these drafts may echo: their entity is not known
    // until they finish.
    const creating = CREATING_TYPES.filter((t) => candidates.some((d) => ECHOES[t].includes(d.type)));
    const running = await q.runningCommands(s.host.db, instanceId, subjects, creating, ECHO_WAIT_MS);
    // A command that starts running from here on cannot have caused this notification: only the
    // ones running now are awaited.
    const awaited = running.filter((c) => candidates.some((d) => mayEcho(c, d)));
    if (awaited.length > 0) {
      await awaitCommands(
        s,
        awaited.map((c) => c.id),
        Date.now() + ECHO_WAIT_MS,
      );
    }
    const rows = await q.recentSuccesses(
      s.host.db,
      instanceId,
      subjects,
      new Date(Date.now() - echoWindowMs),
    );
    if (rows.length === 0) return;
    const matches = (r: q.EchoCandidate, draft: EventDraft) => {
      const vendorId = currentVendorId(draft.data);
      return (
        r.subject === draft.subject &&
        (ECHOES[r.type as CommandType] ?? []).includes(draft.type) &&
        fitsCommand(r, draft) &&
        (vendorId === undefined ||
          r.vendor_ids.length === 0 ||
          r.vendor_ids.includes(vendorId) ||
          // The change away from the booking the command acted on, to one it did not learn: a move
          // whose answer was lost and a later try found done (Docplanner: the old booking reads
          // cancelled). Its booking-moved names the new booking, current, and the old one, which
          // is all the command knows: unmarked before (a commands audit).
          (r.vendor_ids.length === 1 && formerVendorIds(draft.data).includes(r.vendor_ids[0]!)))
      );
    };
    const unmarked = new Map<EventDraft, string>();
    for (const draft of candidates) {
      const mark = echoMark(draft);
      // A draft a command already took as its echo: this notification is being normalized again.
      const owner = rows.find((r) => r.echo?.includes(mark) && matches(r, draft));
      if (owner) draft.data.causedBy = { commandId: owner.id };
      else unmarked.set(draft, mark);
    }
    // The rest go to the oldest command not used up that matches them, all its drafts of this
    // notification at once (one claim: this notification is its echo).
    for (const r of rows) {
      if (r.echo !== null) continue;
      const mine = [...unmarked].filter(([draft]) => matches(r, draft));
      if (mine.length === 0) continue;
      const taken = await q.claimEcho(s.host.db, r.id, [...new Set(mine.map(([, mark]) => mark))]);
      for (const [draft, mark] of mine) {
        if (!taken.includes(mark)) continue;
        draft.data.causedBy = { commandId: r.id };
        unmarked.delete(draft);
      }
    }
  }

  /**
   * The checks of a command's target, against what the hub knows now: whether the sender may act
   * on it, whether its connector instance carries the command out (with this data), whether it has
   * a vendor id and is not cancelled. `accept` makes them before queueing a command, and `retry` again before
   * running a failed one anew (the sender's instances, the appointment or the instance may have
   * changed since), so both refuse alike, with the same registered codes.
   *
   * @example
   * ```ts
   * const { instanceId } = await checkTarget(s, { kind: 'admin' }, 'appointment.cancel', { subject: 'appointment/6f1c…' }, {});
   * ```
   */
  async function checkTarget(
    s: Attached,
    sender: CommandSender,
    type: CommandType,
    target: { subject: string } | { instance: string },
    data: JsonObject,
  ): Promise<{ instanceId: string; connector: string }> {
    const info = commandTypeInfo(type)!;
    let instanceId: string;
    let subject: string | null = null;
    let known: q.KnownState | undefined;
    if ('subject' in target) {
      subject = target.subject;
      const unknown = () =>
        refuse(
          'SY_COMMAND_UNKNOWN_TARGET',
          `no ${info.entity} ${JSON.stringify(subject)} the sender may act on`,
          {
            subject,
          },
        );
      if (!subject.startsWith(`${info.entity}/`) || subject.length <= info.entity.length + 1) throw unknown();
      // An entity made through the hub moments ago is known by its creating command until the
      // vendor's notification of it arrives ({@link targetStateOf}).
      known = await targetStateOf(s.host.db, subject, info.entity);
      if (!known) throw unknown();
      if (!mayActOn(sender, known.instanceId)) throw unknown();
      instanceId = known.instanceId;
    } else {
      instanceId = target.instance;
    }
    const instance = await s.host.loadInstance(instanceId);
    if (!instance || !mayActOn(sender, instanceId)) {
      throw refuse(
        'SY_COMMAND_UNKNOWN_TARGET',
        `no connector instance ${JSON.stringify(instanceId)} the sender may act on`,
        {
          instance: instanceId,
        },
      );
    }
    if (!instance.connector.commands?.[type]) {
      throw refuse(
        'SY_COMMAND_UNSUPPORTED',
        `connector ${instance.connector.name} (instance ${instanceId}) does not support ${type}`,
        { connector: instance.connector.name, type },
      );
    }
    // A disabled instance (the config file no longer declares it) acts on its vendor no more, as it
    // takes no pushes and is not pulled: commands were still sent through it (a commands audit).
    const unavailable =
      instance.row.disabled_at !== null
        ? disabledReason(instance)
        : instance.connector.commandsUnavailable?.(instance.config);
    if (unavailable !== undefined) {
      throw refuse(
        'SY_COMMAND_UNSUPPORTED',
        `connector instance ${instanceId} cannot carry out commands: ${unavailable}`,
        { connector: instance.connector.name, type, reason: unavailable },
      );
    }
    const unsupported = instance.connector.commandUnsupported?.(
      { type, data } as CommandData,
      instance.config,
    );
    if (unsupported !== undefined) {
      throw refuse(
        'SY_COMMAND_UNSUPPORTED',
        `connector ${instance.connector.name} (instance ${instanceId}) cannot carry out this ${type}: ${unsupported}`,
        { connector: instance.connector.name, type, reason: unsupported },
      );
    }
    if (subject !== null) {
      const hubId = subject.slice(subject.indexOf('/') + 1);
      const vendorIds = await s.host.aliases(instanceId).vendorIds(entityOf(type), hubId);
      if (vendorIds.length === 0) {
        throw refuse('SY_COMMAND_NO_VENDOR_ID', `${subject} has no vendor id on instance ${instanceId}`, {
          subject,
          instance: instanceId,
        });
      }
      const kind = wrongKindFor(type, known);
      if (kind !== undefined) {
        throw refuse(
          'SY_COMMAND_TARGET_STATE',
          `${subject} is not a calendar block (kind ${JSON.stringify(kind)}): ${type} acts on a block only`,
          { subject, kind },
        );
      }
      const closed = closedFor(type, info.entity, known);
      if (closed !== undefined) {
        throw refuse('SY_COMMAND_TARGET_STATE', `${subject} is already ${closed}`, {
          subject,
          status: closed,
        });
      }
    }
    return { instanceId, connector: instance.connector.name };
  }

  function lineOf(instance: string): InstanceLine {
    let line = lines.get(instance);
    if (!line) {
      line = { instance, running: 0, parked: new Map(), overflow: 0, pausedUntil: 0 };
      lines.set(instance, line);
    }
    return line;
  }

  /** Whether a command of this instance may start in this process now. */
  function mayStart(line: InstanceLine): boolean {
    return line.running < instanceConcurrency && line.pausedUntil <= Date.now();
  }

  /**
   * Runs a command job in the slot (and, with `line`, the instance's share) it has taken, and
   * gives both back when the command ends; then the instance's parked commands may start.
   */
  function launch(s: Attached, slots: Slots, job: CommandJob, line: InstanceLine | undefined): void {
    const run = () =>
      withSpan(
        'switchyard.command',
        {
          kind: SpanKind.CONSUMER,
          parent: job.traceparent ?? null,
          parentState: job.tracestate ?? null,
          attributes: {
            'messaging.system': 'switchyard',
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.destination.name': 'commands',
            'messaging.message.id': job.id,
          },
        },
        () => runCommand(s, job.id),
      );
    void track(counted(run()))
      .catch((error) => {
        // The database went away mid-command: the command is given back once it answers
        // again (runCommand), or runs again once its lease runs out (at least once). An
        // outage fails every command the same way: said once per 30 s, not an error with a
        // stack per command.
        if (isDatabaseUnavailable(error))
          reportDatabaseUnavailable(
            s.logger.child({ command: job.id }),
            error,
            'a command cut short is given back once it answers again',
          );
        else s.logger.error({ err: error, command: job.id }, 'command job failed');
      })
      .finally(() => {
        slots.free();
        if (line) {
          line.running--;
          release(s, slots, line);
        }
      });
  }

  /**
   * Starts an instance's parked commands, oldest first, as far as its share of the slots allows;
   * while its vendor's pause lasts, none, and a timer releases them when it ends. A parked command
   * run meanwhile by another process (the sweep re-sent its job) is not claimed again: its run
   * here ends at once and the next one starts.
   */
  function release(s: Attached, slots: Slots, line: InstanceLine): void {
    if (s.stopping) return;
    const wait = line.pausedUntil - Date.now();
    if (wait > 0) {
      if (line.parked.size > 0 && line.wake === undefined) {
        const timer = setTimeout(
          () => {
            s.wakeTimers.delete(timer);
            line.wake = undefined;
            release(s, slots, line);
            // A pause longer than a timer's reach: release() arms it again for what is left.
          },
          Math.min(wait, MAX_TIMER_MS),
        );
        timer.unref();
        line.wake = timer;
        s.wakeTimers.add(timer);
      }
      return;
    }
    while (line.running < instanceConcurrency && line.parked.size > 0) {
      const [id, job] = line.parked.entries().next().value!;
      line.parked.delete(id);
      line.running++;
      void slots.take().then(() => {
        if (s.stopping) {
          slots.free();
          line.running--;
          s.handBack.set(id, job);
          return;
        }
        launch(s, slots, job, line);
      });
    }
    if (line.overflow > 0 && line.parked.size < MAX_PARKED_PER_INSTANCE / 2) refill(s, slots, line);
  }

  /**
   * Parks the instance's next commands from the database (due and first in line, oldest first, as
   * the sweep finds them), up to {@link MAX_PARKED_PER_INSTANCE}: those whose jobs ended unparked
   * while the line was full. Once a refill finds fewer than it asked for and no job was turned away
   * meanwhile, the database holds no more of them. A failed read leaves them to the sweep (the
   * instance counts as overflowing no more, so the sweep looks at them again).
   */
  function refill(s: Attached, slots: Slots, line: InstanceLine): void {
    if (line.refilling || s.stopping) return;
    const seen = line.overflow;
    const room = MAX_PARKED_PER_INSTANCE - line.parked.size;
    line.refilling = q
      .strandedCommands(s.host.db, 0, room, parkedIds(), { instance: line.instance })
      .then((found) => {
        for (const c of found)
          if (!line.parked.has(c.id)) line.parked.set(c.id, { id: c.id, instance: c.instance_id });
        if (found.length < room && line.overflow === seen) line.overflow = 0;
      })
      .catch((error: unknown) => {
        line.overflow = 0;
        s.logger.warn(
          { err: error, instance: line.instance },
          "the instance's next commands could not be read: the sweep sends their jobs again",
        );
      })
      .finally(() => {
        line.refilling = undefined;
        if (lines.get(line.instance) === line) release(s, slots, line);
      });
  }

  /** The ids of every command this process holds parked. */
  function parkedIds(): string[] {
    return [...lines.values()].flatMap((line) => [...line.parked.keys()]);
  }

  /**
   * The vendor asked not to be called for `ms` (a Retry-After, a rate limit's reset): this
   * process starts no other command of the instance until then, and its parked commands go out
   * after it, at most `instanceConcurrency` at once, instead of each calling the vendor for a 429
   * of its own (a try used up each) and all of them coming back at the reset together.
   */
  function pause(s: Attached, instance: string, ms: number): void {
    const line = lineOf(instance);
    const until = Date.now() + ms;
    if (until <= line.pausedUntil) return;
    line.pausedUntil = until;
    s.logger.warn(
      { instance, pausedUntil: new Date(until).toISOString() },
      "the vendor asked the hub to wait: this process starts none of the instance's commands until then",
    );
  }

  async function startWith(host: HubHost): Promise<void> {
    const logger = host.logger.child({ component: 'commands' });
    metrics ??= {
      outcomes: new Counter({
        name: 'switchyard_commands_total',
        help: 'Commands finished by this process, by instance, type and outcome (succeeded, failed).',
        labelNames: ['instance', 'type', 'outcome'],
        registers: [host.metrics],
      }),
      vendor: new Histogram({
        name: 'switchyard_command_vendor_seconds',
        help: "Time a command's handler took (its vendor calls), by connector and type, seconds.",
        labelNames: ['connector', 'type'],
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [host.metrics],
      }),
      parked: new Gauge({
        name: 'switchyard_commands_parked',
        help: `Commands this worker process holds parked, by instance (its share of the slots is taken, or its vendor asked for a pause): at most ${MAX_PARKED_PER_INSTANCE} per instance, the rest wait in the database.`,
        labelNames: ['instance'],
        registers: [host.metrics],
        collect() {
          // By instance: a backlog is one vendor's (slow, or pausing the hub), and the total did not
          // say whose. Lines are kept per instance, so the label values are the configured instances.
          this.reset();
          for (const line of lines.values())
            if (line.parked.size > 0) this.set({ instance: line.instance }, line.parked.size);
        },
      }),
    };
    // Accepting a command sends its job in the same transaction, so every role needs the queue.
    const boss = host.queue;
    if (!boss)
      throw new SwitchyardError('SY_PIPELINE_CONFLICT', "the commands need the hub's queue (pg-boss)");
    await boss.createQueue(COMMAND_QUEUE, { notify: true, retryLimit: 0 });
    const s: Attached = {
      host,
      logger,
      boss,
      wakeTimers: new Set(),
      handBack: new Map(),
      retryWarning: new RepeatedWarning(),
    };
    // Any process may normalize the echo of a command another one runs (undefined: reconnected,
    // a stop may have been missed: every waiter looks again).
    unlisten = await host.listener.listen(CHANNEL_COMMAND_SETTLED, (commandId) => settled(commandId));
    if (isWorker) {
      // One pg-boss worker fetches and this process keeps `concurrency` slots. Its handler returns
      // once each job of the batch has a slot and its command has started, not when the commands
      // end, so a slow vendor call holds its slot only: the next job is fetched as soon as a slot
      // is free, and commands on other subjects run beside the slow one. Waiting for the whole
      // batch (as before) made one slow call hold back every command accepted after it.
      // Not `localConcurrency: concurrency`: that is `concurrency` fetch loops, each polling and
      // each woken by every NOTIFY, i.e. `concurrency` fetch queries per new job; here it is one.
      // The job is only "look at command X" and the row is the truth, so ending the job before
      // the command ends loses nothing: a command that dies unclaimed stays `pending` and one that
      // dies running keeps its lease; the sweep re-sends the job of either.
      const slots = new Slots(concurrency);
      s.bossWorkerId = await boss.work<CommandJob>(
        COMMAND_QUEUE,
        {
          batchSize: concurrency,
          pollingIntervalSeconds: 0.5,
          notifyPollingIntervalSeconds: NOTIFY_BACKSTOP_SECONDS,
          burstWhenBatchFull: true,
        },
        async (jobs) => {
          // Different entities in parallel; one entity's commands are kept in order by the claim.
          for (const job of jobs) {
            // A job of an instance that has its share of the slots here, or whose vendor asked for a
            // pause, is parked (its row stays pending) and ends: it neither waits for a slot in
            // this loop, holding back the fetch of every other instance's jobs, nor calls a vendor
            // that said not yet.
            const line = job.data.instance !== undefined ? lineOf(job.data.instance) : undefined;
            if (line && !mayStart(line)) {
              // Past the bound the job ends unparked: its command waits in the database, where
              // refill() finds it (the fetch goes on for the other instances' jobs either way).
              if (line.parked.has(job.data.id)) {
                // re-sent while parked: nothing to add
              } else if (line.parked.size < MAX_PARKED_PER_INSTANCE) line.parked.set(job.data.id, job.data);
              else line.overflow++;
              release(s, slots, line);
              continue;
            }
            if (line) line.running++;
            await slots.take();
            if (s.stopping) {
              slots.free();
              if (line) line.running--;
              // This job and the batch's others after it: handed over, not left to a sweep.
              for (const rest of jobs.slice(jobs.indexOf(job))) s.handBack.set(rest.data.id, rest.data);
              return;
            }
            launch(s, slots, job.data, line);
          }
        },
      );
      if (retentionCron !== false) {
        await boss.createQueue(COMMAND_RETENTION_QUEUE);
        await boss.schedule(COMMAND_RETENTION_QUEUE, retentionCron);
        await boss.work(
          COMMAND_RETENTION_QUEUE,
          { pollingIntervalSeconds: SCHEDULED_POLL_SECONDS },
          async () => {
            logger.info({ commands: await purge(s, new Date()) }, 'command retention purge');
          },
        );
      }
      if (sweepIntervalMs > 0) {
        sweepTimer = setInterval(() => {
          void sweep(s).catch((error) => {
            // Every sweep fails while the database is away (every 30 s by default, as often as
            // `commands.sweepInterval` says): once per 30 s, as the worker loops say it.
            if (isDatabaseUnavailable(error))
              reportDatabaseUnavailable(logger, error, 'the command sweep runs again once it is back');
            else logger.warn({ err: error }, 'command sweep failed');
          });
        }, sweepIntervalMs);
        sweepTimer.unref();
      }
    }
    state = s;
  }

  return {
    /** Pass these to `createHub` (`{ ...config, ...commands.hooks }`). */
    hooks: { markEchoes },
    /** This process's worker id. */
    workerId,

    /** Attaches to the host: creates its queues and, in a worker process, works command jobs. */
    start(host: HubHost): Promise<void> {
      starting ??= startWith(host);
      return starting;
    },

    /** Stops working jobs and waits for the commands in progress. */
    async stop(opts: { graceful?: boolean } = {}): Promise<void> {
      const s = state;
      state = undefined;
      clearInterval(sweepTimer);
      sweepTimer = undefined;
      starting = undefined;
      unlisten?.();
      unlisten = undefined;
      if (!s) return;
      s.stopping = true;
      // Parked commands are pending in the database, without a lease: their jobs are sent again
      // once this process's worker no longer fetches, for another process to run them at once
      // (after a hard stop, another process's sweep, or this one's started again, sends them).
      for (const line of lines.values()) for (const [id, job] of line.parked) s.handBack.set(id, job);
      lines.clear();
      for (const timer of s.wakeTimers) clearTimeout(timer);
      s.wakeTimers.clear();
      const graceful = opts.graceful ?? true;
      // The host's pg-boss instance outlives us: only our workers stop (the hub stops the instance).
      const off = (queue: string) => s.boss.offWork(queue, { wait: graceful }).catch(() => {});
      await Promise.all([off(COMMAND_QUEUE), off(COMMAND_RETENTION_QUEUE)]);
      if (!graceful) return;
      await handOver(s);
      await Promise.allSettled([...running]);
      // Those given a slot by a run that ended meanwhile.
      await handOver(s);
    },

    /**
     * Checks a command and queues it, or refuses it with a registered code (nothing queued). With an
     * idempotency key, a sender's repeated command returns the first (`replayed: true`); the same key
     * with another body is `SY_COMMAND_IDEMPOTENCY_CONFLICT`.
     *
     * @example
     * ```ts
     * const { command, replayed } = await commands.accept({ kind: 'admin' }, { type: 'appointment.cancel', subject, data: {} }, 'key-1');
     * ```
     */
    async accept(
      sender: CommandSender,
      input: CommandInput,
      idempotencyKey?: string,
    ): Promise<{ command: CommandView; replayed: boolean }> {
      const s = attached();
      const db = s.host.db;
      const sentBy = senderLabel(sender);
      let requestHash: string;
      try {
        requestHash = sha256(
          canonical({
            type: input.type,
            subject: input.subject,
            instance: input.instance,
            data: input.data === undefined ? {} : input.data,
          }),
        );
      } catch (error) {
        // Data nested deeper than canonical's stack (`{"x": [[[…]]]}` 50,000 deep, which JSON.parse
        // and the route's schema let through) is the sender's input: it answered 500.
        if (!(error instanceof RangeError)) throw error;
        throw refuse('SY_COMMAND_INVALID', 'invalid command: /data is nested too deeply', {
          errors: [{ path: '/data', message: 'is nested too deeply' }],
        });
      }
      const replay = (row: q.CommandRow) => {
        if (row.request_hash !== requestHash) {
          throw refuse(
            'SY_COMMAND_IDEMPOTENCY_CONFLICT',
            `Idempotency-Key ${JSON.stringify(idempotencyKey)} was used for another command`,
            { commandId: row.id },
          );
        }
        return { command: view(row), replayed: true };
      };
      if (idempotencyKey !== undefined) {
        // Before any check: the first command may have changed what the checks see (a cancel done).
        const existing = await q.getCommandByKey(db, sentBy, idempotencyKey);
        if (existing) return replay(existing);
      }

      const type = input.type;
      if (!isCommandType(type)) {
        throw refuse(
          'SY_COMMAND_UNKNOWN_TYPE',
          `${JSON.stringify(type)} is not a command type (see docs/commands.md)`,
          {
            type,
          },
        );
      }
      const info = commandTypeInfo(type)!;
      // Absent is `{}`; anything else given (a `null` too) is checked as sent.
      const data = input.data === undefined ? {} : input.data;
      const shapeIssues: { path: string; message: string }[] = [];
      if (info.target === 'subject') {
        if (typeof input.subject !== 'string')
          shapeIssues.push({ path: '/subject', message: `is required for ${type}` });
        if (input.instance !== undefined)
          shapeIssues.push({ path: '/instance', message: `is not taken by ${type} (it names its subject)` });
      } else {
        if (typeof input.instance !== 'string')
          shapeIssues.push({ path: '/instance', message: `is required for ${type}` });
        if (input.subject !== undefined)
          shapeIssues.push({ path: '/subject', message: `is not taken by ${type} (it creates its entity)` });
      }
      const checked = validateCommandData(type, data);
      const issues = [...shapeIssues, ...(checked.valid ? spanIssues(data as JsonObject) : checked.errors)];
      if (issues.length > 0) {
        throw refuse(
          'SY_COMMAND_INVALID',
          `invalid ${type} command: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
          { errors: issues },
        );
      }

      const subject = info.target === 'subject' ? input.subject! : null;
      const { instanceId, connector } = await checkTarget(
        s,
        sender,
        type,
        subject !== null ? { subject } : { instance: input.instance! },
        data as JsonObject,
      );

      const id = newId();
      const out = await db.transaction().execute(async (trx) => {
        const { row, inserted } = await q.insertCommand(trx, {
          id,
          type,
          instanceId,
          connector,
          subject,
          data: data as JsonObject,
          sentBy,
          idempotencyKey: idempotencyKey ?? null,
          requestHash,
        });
        if (inserted)
          await sendJob(s, trx, row, undefined, currentTraceparent() ?? null, currentTracestate() ?? null);
        return { row, inserted };
      });
      if (!out.inserted) return replay(out.row); // the same key raced in from another request
      return { command: view(out.row), replayed: false };
    },

    /**
     * Lists commands, newest first; a subscription's credential sees its own only.
     *
     * @example
     * ```ts
     * const { items, nextCursor } = await commands.list({ kind: 'admin' }, { status: 'failed', limit: 20 });
     * ```
     */
    async list(sender: CommandSender, f: CommandListQuery = {}): Promise<Page<CommandView>> {
      const limit = clampLimit(f.limit);
      const rows = await q.listCommands(attached().host.db, {
        ...(f.status ? { status: f.status } : {}),
        ...(f.type ? { type: f.type } : {}),
        ...(f.instanceId ? { instanceId: f.instanceId } : {}),
        ...(f.subject ? { subject: f.subject } : {}),
        ...(sender.kind === 'subscription' ? { sentBy: senderLabel(sender) } : {}),
        ...(f.cursor ? { before: f.cursor } : {}),
        limit: limit + 1,
      });
      const items = rows.slice(0, limit);
      return {
        items: items.map(view),
        nextCursor: rows.length > limit ? items[items.length - 1]!.seq : null,
      };
    },

    /**
     * One command with every vendor call made for it (each attempt's calls, in order).
     *
     * @example
     * ```ts
     * const c = await commands.get({ kind: 'admin' }, id); // { status: 'succeeded', calls: [{ method: 'DELETE', statusCode: 204, ... }] }
     * ```
     */
    async get(sender: CommandSender, id: string): Promise<CommandDetail> {
      const db = attached().host.db;
      // The id column is a uuid: any other text would reach Postgres as a type error, not a 404.
      if (!UUID.test(id)) throw notFound('command', id);
      const row = await q.getCommand(db, id);
      if (!row || (sender.kind === 'subscription' && row.sent_by !== senderLabel(sender)))
        throw notFound('command', id);
      const calls = await q.listCalls(db, id);
      // A call without an outcome (latency not recorded): in flight if it belongs to the try that
      // runs now (a given-back try with its attempt number is not that one), else its process
      // stopped before the answer.
      const current = (c: q.CommandCallRow) =>
        row.status === 'running' && c.run === row.run && c.attempt === row.attempts && !c.given_back;
      return {
        ...view(row),
        calls: calls.map((c) => ({
          run: c.run,
          attempt: c.attempt,
          givenBack: c.given_back,
          startedAt: iso(c.started_at)!,
          method: c.method,
          url: c.url,
          statusCode: c.status_code,
          latencyMs: c.latency_ms,
          error: c.latency_ms === null ? (current(c) ? q.CALL_IN_FLIGHT : q.CALL_UNANSWERED) : c.error,
          responseSnippet: c.response_snippet,
        })),
      };
    },

    /**
     * Runs a failed command again, with a fresh set of tries (its attempt count starts again, so
     * the retry schedule applies in full; the vendor calls of its earlier tries stay listed). 409
     * unless it is failed. The target is checked again as `accept` checks a new command, and
     * refused alike (nothing queued): the sender may no longer act on the instance, the
     * appointment is cancelled by now, the connector no longer carries the command out.
     *
     * @example
     * ```ts
     * await commands.retry({ kind: 'admin' }, id); // { status: 'pending', attempts: 0, ... }
     * ```
     */
    async retry(sender: CommandSender, id: string): Promise<CommandView> {
      const s = attached();
      // The id column is a uuid: any other text would reach Postgres as a type error, not a 404.
      if (!UUID.test(id)) throw notFound('command', id);
      const existing = await q.getCommand(s.host.db, id);
      if (!existing || (sender.kind === 'subscription' && existing.sent_by !== senderLabel(sender)))
        throw notFound('command', id);
      const conflict = (status: string) =>
        new SwitchyardError(
          'SY_PIPELINE_CONFLICT',
          `command ${id} is ${status}: only a failed command can be retried`,
          {
            details: { status },
          },
        );
      if (existing.status !== 'failed') throw conflict(existing.status);
      const type = existing.type;
      if (!isCommandType(type)) {
        throw refuse('SY_COMMAND_UNKNOWN_TYPE', `${JSON.stringify(type)} is no longer a command type`, {
          type,
        });
      }
      const { instanceId } = await checkTarget(
        s,
        sender,
        type,
        existing.subject !== null && commandTypeInfo(type)!.target === 'subject'
          ? { subject: existing.subject }
          : { instance: existing.instance_id },
        existing.data,
      );
      if (instanceId !== existing.instance_id) {
        // The appointment is known on another instance now: this command's vendor ids are not its.
        throw refuse(
          'SY_COMMAND_UNKNOWN_TARGET',
          `no ${existing.subject} on instance ${existing.instance_id} the sender may act on`,
          { subject: existing.subject },
        );
      }
      const row = await s.host.db.transaction().execute(async (trx) => {
        const again = await q.requeueCommand(trx, id);
        if (again)
          await sendJob(s, trx, again, undefined, currentTraceparent() ?? null, currentTracestate() ?? null);
        return again;
      });
      if (!row) {
        // Retried meanwhile by another request.
        throw conflict((await q.getCommand(s.host.db, id))?.status ?? existing.status);
      }
      return view(row);
    },

    /**
     * Creates a command credential for a subscription: the token is returned once, only its hash is
     * kept. It may send commands on the instances the subscription covers (`sources`; all when none).
     *
     * @example
     * ```ts
     * const { token } = await commands.createCredential('crm'); // 'sycmd_…'
     * ```
     */
    async createCredential(
      subscriptionId: string,
    ): Promise<{ id: string; subscriptionId: string; token: string; hint: string }> {
      const db = attached().host.db;
      if (!(await q.subscriptionExists(db, subscriptionId))) throw notFound('subscription', subscriptionId);
      const token = `sycmd_${randomBytes(24).toString('base64url')}`;
      const id = `cred_${newId().slice(0, 8)}`;
      const hint = `${token.slice(0, 10)}…`;
      await q
        .insertCredential(db, { id, subscriptionId, tokenHash: sha256(token), hint })
        .catch((error: unknown) => {
          // Deleted since it was looked up: answered as the lookup would now, not as a 500.
          throw isSubscriptionGone(error) ? notFound('subscription', subscriptionId) : error;
        });
      credentialHashes.invalidate();
      return { id, subscriptionId, token, hint };
    },

    /**
     * A subscription's command credentials, oldest first: id, hint and creation time, never the
     * token (only its hash is kept, and not shown either). 404 for an unknown subscription.
     *
     * @example
     * ```ts
     * await commands.listCredentials('crm'); // [{ id: 'cred_1a2b3c4d', subscriptionId: 'crm', hint: 'sycmd_Ab3x…', createdAt: '2026-…' }]
     * ```
     */
    async listCredentials(subscriptionId: string): Promise<CommandCredentialView[]> {
      const db = attached().host.db;
      if (!(await q.subscriptionExists(db, subscriptionId))) throw notFound('subscription', subscriptionId);
      return (await q.listCredentials(db, subscriptionId)).map((c) => ({
        id: c.id,
        subscriptionId: c.subscription_id,
        hint: c.hint,
        createdAt: iso(c.created_at)!,
      }));
    },

    /**
     * Revokes a command credential: its token is refused (401) from the next request on. 404 when
     * the subscription has no credential with that id.
     *
     * @example
     * ```ts
     * await commands.deleteCredential('crm', 'cred_1a2b3c4d');
     * ```
     */
    async deleteCredential(subscriptionId: string, credentialId: string): Promise<void> {
      const db = attached().host.db;
      if (!(await q.deleteCredential(db, subscriptionId, credentialId)))
        throw notFound('credential', credentialId);
    },

    /**
     * Whether `token` may be a command credential in force, answered from memory: its shape
     * (`sycmd_` and 32 base64url characters) and the token hashes of the credentials in force,
     * read in one statement at most once per 5 s when a token misses (at once after
     * {@link createCredential} here). The routes ask it before {@link authenticate} for an address
     * over the failed-authentication limit, so its wrong guesses cost no database read each; a
     * credential created in another process within those 5 s is refused to that address until
     * the next read. True is no verdict: {@link authenticate} still decides.
     *
     * @example
     * ```ts
     * await commands.mayBeCredential('sycmd_guess'); // false, without a database read
     * ```
     */
    async mayBeCredential(token: string): Promise<boolean> {
      if (!COMMAND_TOKEN.test(token)) return false;
      return credentialHashes.mayHold(sha256(token));
    },

    /**
     * The sender a command credential stands for, or undefined for an unknown or revoked token and
     * for a credential whose subscription is disabled.
     */
    async authenticate(token: string): Promise<CommandSender | undefined> {
      const row = await q.findCredential(attached().host.db, sha256(token));
      if (!row) return undefined;
      return {
        kind: 'subscription',
        subscriptionId: row.subscription_id,
        credentialId: row.id,
        sources: row.sources,
      };
    },

    /**
     * Deletes finished commands older than `retentionMs` now (worker processes run it on
     * `retentionCron`); returns how many.
     *
     * @example
     * ```ts
     * const removed = await commands.purge(); // 0 on a young hub
     * ```
     */
    async purge(now = new Date()): Promise<number> {
      return purge(attached(), now);
    },

    /** Re-sends the jobs of stranded commands now (workers do it every `sweepIntervalMs`). */
    async sweep(): Promise<number> {
      return sweep(attached());
    },

    /** Waits for the commands being run in this process (tests, shutdown). */
    async drain(): Promise<void> {
      await Promise.allSettled([...running]);
    },
  };
}

/** The commands subsystem of one process (what {@link createCommands} returns). */
export type Commands = ReturnType<typeof createCommands>;
