import {
  type Connector,
  type InboundRequest,
  type InboundRequestHead,
  type InboundResponse,
  inboundRequestHead,
  isConnectorError,
  type JsonValue,
  type VendorNotification,
} from '@switchyard/core';
import type { Kysely } from 'kysely';
import { credentialHeaderNames, redactHeaders } from '../delivery/redact.ts';
import type { GateResponder } from '../host/hooks.ts';
import { storableForms, storableJson, unstorableReason } from '../inbound/storable.ts';
import * as inboundStore from '../inbound/store.ts';
import * as instanceStore from '../instances/store.ts';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { newId } from '../storage/db.ts';
import { GroupCommit } from '../storage/group-commit.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { currentTraceparent, currentTracestate, setSpanAttributes, withSpan } from '../telemetry/tracing.ts';
import type { IngestPressure } from './pressure.ts';
import type { Runtime } from './shared.ts';

/** An RFC 9457 problem, ready for the HTTP layer to send as `application/problem+json`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
}

/**
 * What the hub answers a vendor push. The HTTP layer sends `status` with either `body`/`headers`
 * (the connector's acknowledgement) or `problem`.
 */
export type IngestResult =
  | {
      ok: true;
      status: number;
      headers?: Record<string, string>;
      body?: JsonValue;
      /** Ids of the inbound messages stored by this request (new ones only). */
      stored: string[];
      /** Notifications already stored earlier (acknowledged, not processed twice). */
      duplicates: number;
      /**
       * Present when the request carried gate notifications (synchronous approvals). Gates are
       * stored and normalized like any notification for now; `gateResponder` (createHub option)
       * is where the gate machinery plugs in to decide the answer.
       */
      gate?: { messageIds: string[] };
    }
  | { ok: false; status: number; problem: Problem };

export function problem(status: number, code: string, title: string, detail: string): IngestResult {
  return {
    ok: false,
    status,
    problem: { type: `https://switchyard.dev/problems/${code}`, title, status, detail, code },
  };
}

/**
 * Headers as stored and served: the headers the connector declares as credentials for the instance
 * (`credentialHeaders`, from {@link credentialHeaderNames}) are redacted, and anything whose name
 * suggests a credential too (the safety net).
 */
export function storedHeaders(
  headers: InboundRequest['headers'],
  credentialHeaders: readonly string[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(
    redactHeaders(headers, { extraSecretHeaderNames: credentialHeaders }),
  ))
    if (value !== undefined) out[name] = value;
  return out;
}

/** How often one process moves an instance's `last_message_at` at most. */
const TOUCH_INTERVAL_MS = 1000;

/** One push request as the writer stores it: its notifications and its raw body (stored once). */
export interface InboundWrite {
  items: inboundStore.NewInbound[];
  /** Referenced by `items[].bodyId`; stored only if one of the items is new. */
  body: inboundStore.NewBody | null;
}

/**
 * Group commit for inbound messages: concurrent requests are written together, one INSERT and one
 * COMMIT for many, with at most `maxConcurrent` statements open. Under light load a request
 * is written at once (nothing waits for a timer); under heavy load the batches grow by
 * themselves. Inserting into `inbound_messages` is also the enqueueing of normalization (the table
 * is the queue), so a request costs a share of one INSERT instead of an INSERT plus a job; with a
 * `leaser` (this process's normalize worker) it is also the claim of what the worker can start at
 * once (lease at store: docs/architecture.md).
 */
export class InboundWriter {
  private readonly db: Kysely<unknown>;
  private readonly onCommit: () => void;
  private readonly leaser: InboundLeaser | undefined;
  /** Counts the requests waiting for their write (ingest first, pipeline/pressure.ts). */
  private readonly pressure: IngestPressure | undefined;
  private readonly group: GroupCommit<InboundWrite, { inserted: Set<string> }>;
  /** When this process last moved each instance's `last_message_at`. */
  private readonly touchedAt = new Map<string, number>();

  /**
   * `onCommit` runs after a statement that stored something a claim must take (not only leased
   * messages); `leaser`, this process's normalize worker, gets the messages stored leased for it;
   * `pressure` counts the requests waiting for their write.
   */
  constructor(
    db: Kysely<unknown>,
    onCommit: () => void,
    options: {
      maxConcurrent?: number;
      maxBatch?: number;
      leaser?: InboundLeaser;
      pressure?: IngestPressure;
    } = {},
  ) {
    this.db = db;
    this.onCommit = onCommit;
    this.leaser = options.leaser;
    this.pressure = options.pressure;
    this.group = new GroupCommit({
      maxInFlight: options.maxConcurrent ?? 4,
      // A batch is capped in rows, not requests: a request may carry many notifications.
      maxBatch: options.maxBatch ?? 500,
      weight: (request) => request.items.length,
      commit: async (requests) => {
        const inserted = await this.commit(requests);
        return requests.map(() => ({ inserted }));
      },
    });
  }

  /** Resolves once the items are durable; `inserted` holds the ids that were new (not duplicates). */
  write(request: InboundWrite): Promise<{ inserted: Set<string> }> {
    const pressure = this.pressure;
    if (!pressure) return this.group.write(request);
    pressure.begin();
    return this.group.write(request).finally(() => pressure.end());
  }

  private async commit(requests: InboundWrite[]): Promise<Set<string>> {
    const items = requests.flatMap((r) => r.items);
    const bodies = requests.flatMap((r) => (r.body ? [r.body] : []));
    // `last_message_at` moves at most once a second per instance (see storeInbound).
    const now = Date.now();
    const touch = [...new Set(items.map((i) => i.instanceId))].filter(
      (id) => now - (this.touchedAt.get(id) ?? 0) >= TOUCH_INTERVAL_MS,
    );
    for (const id of touch) this.touchedAt.set(id, now);
    // Lease at store: the first message of each ordering key (and each without one), gate
    // notifications aside, as far as the worker has free slots; the statement leases those of them
    // whose key has nothing waiting.
    const wanted = this.leaser ? leaseCandidates(items) : [];
    const reservation = wanted.length > 0 ? this.leaser!.reserve(wanted.length) : undefined;
    const lease =
      reservation && reservation.slots > 0
        ? { ms: this.leaser!.leaseMs, ids: new Set(wanted.slice(0, reservation.slots).map((i) => i.id)) }
        : undefined;
    let leased: inboundStore.InboundRow[] = [];
    try {
      // One autocommit statement: rows, last_message_at and the NOTIFY, no BEGIN/COMMIT round trips.
      const rows = await inboundStore
        .storeInbound(this.db, items, bodies, touch, lease)
        .catch((error: unknown) => {
          for (const id of touch) this.touchedAt.delete(id);
          throw error;
        });
      const inserted = new Set(rows.map((r) => r.id));
      if (rows.some((r) => r.lock_token === null)) this.onCommit();
      if (lease) leased = leasedRows(items, rows);
      return inserted;
    } finally {
      if (reservation) this.leaser!.take(leased, reservation);
    }
  }
}

/**
 * This process's normalize worker as the ingest statements see it (`Normalizer`): slots promised
 * before a statement, the messages it stored leased handed over after it.
 */
export interface InboundLeaser {
  /** The lease a message stored leased gets (`normalizeLeaseMs`). */
  readonly leaseMs: number;
  /** Promises up to `max` slots (none while the worker does not run or has a backlog). */
  reserve(max: number): InboundReservation;
  /** Takes the messages stored leased (at most the promised slots) and the promise back. */
  take(rows: readonly inboundStore.InboundRow[], reservation: InboundReservation): void;
}

/** What {@link InboundLeaser.reserve} promised an ingest statement; hand it back to `take`. */
export interface InboundReservation {
  /** Slots promised: how many messages the statement may store leased. */
  slots: number;
  /** The worker's count of announced arrivals when it was promised (one since: something may wait behind). */
  arrivals: number;
}

/** The messages of a statement that may be stored leased: the first of each key, no gate notification. */
function leaseCandidates(items: readonly inboundStore.NewInbound[]): inboundStore.NewInbound[] {
  const keys = new Set<string>();
  const out: inboundStore.NewInbound[] = [];
  for (const item of items) {
    if (item.orderingKey !== null) {
      const key = `${item.instanceId}\u0000${item.orderingKey}`;
      if (keys.has(key)) continue;
      keys.add(key);
    }
    // A gate notification is normalized by the gate responder while the vendor waits (gates/),
    // right after this statement: its message stays with the claim, as before, rather than be
    // normalized by the pipeline beside that.
    if (!item.gate) out.push(item);
  }
  return out;
}

/**
 * The rows of the messages stored leased, as the claim would return them, built from what was
 * inserted (nothing read back: the payload is the parsed object that was stored).
 */
function leasedRows(
  items: readonly inboundStore.NewInbound[],
  stored: readonly inboundStore.StoredInbound[],
): inboundStore.InboundRow[] {
  const byId = new Map(items.map((i) => [i.id, i]));
  const out: inboundStore.InboundRow[] = [];
  for (const s of stored) {
    const item = byId.get(s.id);
    if (s.lock_token === null || item === undefined) continue;
    out.push({
      seq: s.seq,
      id: item.id,
      instance_id: item.instanceId,
      route: item.route,
      dedupe_key: item.dedupeKey,
      vendor_type: item.vendorType,
      ordering_key: item.orderingKey,
      occurred_at: item.occurredAt,
      gate: item.gate,
      payload: item.payload,
      meta: item.meta,
      body_id: item.bodyId,
      headers: item.headers,
      source_ip: item.sourceIp,
      origin: item.origin,
      status: 'received',
      reason: null,
      error: null,
      attempts: 1,
      next_attempt_at: item.receivedAt,
      lock_token: s.lock_token,
      event_count: 0,
      received_at: item.receivedAt,
      processed_at: null,
      traceparent: item.traceparent ?? null,
      tracestate: item.tracestate ?? null,
    });
  }
  return out;
}

/**
 * A push request the hub let in before reading its body: the instance exists and takes pushes, the
 * route is the connector's, and `push.authenticate` accepted what the head carries. Made by
 * {@link admit}, consumed by {@link accept}.
 */
export interface Admission {
  instanceId: string;
  /** The matched route's name. */
  route: string;
  connector: Connector;
  config: Record<string, unknown>;
  /**
   * True when the connector checks credentials in the body too (`push.verifyBody`): until that
   * passes, the body's bytes are held for a request that is not authenticated yet.
   */
  verifiesBody: boolean;
}

/**
 * Refusals a fault repeats for every request (a connector bug on a vendor's new payload, payloads
 * Postgres refuses): warned about at most once a minute per instance, by each hub (logging/repeats.ts).
 */
const refusalWarnings = new WeakMap<Runtime, Record<'parseBug' | 'unstorable', RepeatedWarning>>();

function refusalWarning(rt: Runtime, kind: 'parseBug' | 'unstorable'): RepeatedWarning {
  let warnings = refusalWarnings.get(rt);
  if (!warnings) {
    warnings = { parseBug: new RepeatedWarning(), unstorable: new RepeatedWarning() };
    refusalWarnings.set(rt, warnings);
  }
  return warnings[kind];
}

/** The problem {@link ingest} and {@link admit} answer when a connector refuses the credentials. */
function refusedAuthentication(rt: Runtime, instanceId: string, error: { code: string; message: string }) {
  rt.logger.info({ instance: instanceId, reason: error.message }, 'inbound request refused: authentication');
  return failed(401, error.code, 'Inbound authentication failed', 'authentication failed');
}

/**
 * The first half of the push path, before the body is read: the instance (404 when it is unknown or
 * pull-only), the route (404) and the connector's `push.authenticate` on the head of the request
 * (401). A database outage answers 503.
 *
 * @example
 * ```ts
 * const admitted = await admit(rt, 'dp-main', { route: 'default', params: {}, query: {}, method: 'POST', headers, sourceIp, receivedAt });
 * if (!admitted.ok) return admitted; // problem
 * ```
 */
export async function admit(
  rt: Runtime,
  instanceId: string,
  head: InboundRequestHead,
): Promise<{ ok: true; admission: Admission } | Extract<IngestResult, { ok: false }>> {
  let instance: Awaited<ReturnType<Runtime['loadInstance']>>;
  try {
    instance = await rt.loadInstance(instanceId);
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      reportDatabaseUnavailable(rt.logger, error, 'pushes are answered 503');
      return failed(503, 'SY_STORAGE_UNAVAILABLE', 'The database is unavailable', 'try again later');
    }
    throw error;
  }
  if (!instance || instance.row.mode === 'pull') {
    return failed(
      404,
      'SY_PIPELINE_NOT_FOUND',
      'No such resource',
      `no push instance ${JSON.stringify(instanceId)}`,
    );
  }
  // A disabled instance (the config file dropped it) answers as a deleted one did; its row stays.
  if (instance.row.disabled_at !== null) {
    return failed(
      404,
      'SY_PIPELINE_NOT_FOUND',
      'No such resource',
      `instance ${JSON.stringify(instanceId)} is disabled (${instance.row.disabled_reason ?? 'no reason'})`,
    );
  }
  const { connector, config } = instance;
  const push = connector.push;
  if (!push) {
    return failed(
      404,
      'SY_PIPELINE_NOT_FOUND',
      'No such resource',
      `connector ${connector.name} takes no pushes`,
    );
  }
  if (!push.routes.some((r) => r.name === head.route)) {
    return failed(
      404,
      'SY_PIPELINE_ROUTE_NOT_FOUND',
      'The connector has no such push route',
      `no route ${JSON.stringify(head.route)}`,
    );
  }
  try {
    push.authenticate(inboundRequestHead(head), config);
  } catch (error) {
    if (isConnectorError(error) && error.kind === 'auth') return refusedAuthentication(rt, instanceId, error);
    throw error;
  }
  return {
    ok: true,
    admission: {
      instanceId,
      route: head.route,
      connector: connector as Connector,
      config,
      verifiesBody: typeof push.verifyBody === 'function',
    },
  };
}

function failed(status: number, code: string, title: string, detail: string) {
  return problem(status, code, title, detail) as Extract<IngestResult, { ok: false }>;
}

/**
 * The push path: authenticate, parse, store durably (deduplicated), answer. Nothing is
 * acknowledged before it is committed; a database outage answers 503 so the vendor retries.
 * It is {@link admit} then {@link accept}; the HTTP layer calls the two itself, with the body read
 * in between, so an unauthenticated client never gets its body held.
 */
export async function ingest(
  rt: Runtime,
  writer: InboundWriter,
  gateResponder: GateResponder | undefined,
  instanceId: string,
  request: InboundRequest,
): Promise<IngestResult> {
  const admitted = await admit(rt, instanceId, request);
  if (!admitted.ok) return admitted;
  return accept(rt, writer, gateResponder, admitted.admission, request);
}

/**
 * The second half of the push path, once the body is read: size limit (413), `push.verifyBody`
 * (401), `push.parse` (400), the durable write (503 when the database is down) and the answer.
 */
export async function accept(
  rt: Runtime,
  writer: InboundWriter,
  gateResponder: GateResponder | undefined,
  admission: Admission,
  request: InboundRequest,
): Promise<IngestResult> {
  const { instanceId, connector, config } = admission;
  const push = connector.push!;
  if (request.rawBody.length > rt.options.maxBodyBytes) {
    return problem(
      413,
      'SY_PIPELINE_PAYLOAD_TOO_LARGE',
      'The inbound body is too large',
      `the body has ${request.rawBody.length} bytes; the limit is ${rt.options.maxBodyBytes}`,
    );
  }
  let notifications: VendorNotification[];
  try {
    push.verifyBody?.(request, config);
    notifications = push.parse(request, config);
  } catch (error) {
    if (isConnectorError(error) && error.kind === 'auth') return refusedAuthentication(rt, instanceId, error);
    if (isConnectorError(error) && error.kind === 'bad_request') {
      return problem(400, error.code, 'The vendor request could not be understood', error.message);
    }
    if (!isConnectorError(error)) {
      // A connector bug on hostile input (or a body too deeply nested to walk): a 5xx would make
      // the vendor retry it forever. Nothing was stored; the log has the error for the fix.
      warnRepeated(
        rt.logger,
        refusalWarning(rt, 'parseBug').take(instanceId),
        { instance: instanceId, err: error },
        'inbound request refused: the connector could not parse it',
      );
      return problem(
        400,
        'SY_CONNECTOR_BAD_REQUEST',
        'The vendor request could not be understood',
        'the request body could not be parsed',
      );
    }
    throw error;
  }

  // The hook request's span continues in the worker that normalizes these messages.
  const traceparent = currentTraceparent() ?? null;
  const tracestate = traceparent === null ? null : (currentTracestate() ?? null);
  setSpanAttributes({
    'switchyard.connector': connector.name,
    'switchyard.instance': instanceId,
    'switchyard.route': request.route,
    'switchyard.notifications': notifications.length,
  });
  const headers = storedHeaders(request.headers, credentialHeaderNames(connector, config));
  // One body row per request, however many notifications it carried (see inboundStore.storeInbound).
  const body: inboundStore.NewBody = { id: newId(), body: request.rawBody, receivedAt: request.receivedAt };
  const items: inboundStore.NewInbound[] = notifications.map((n) => ({
    id: newId(),
    instanceId,
    route: request.route,
    dedupeKey: n.dedupeKey,
    vendorType: n.type,
    orderingKey: n.orderingKey ?? null,
    occurredAt: n.occurredAt ?? null,
    gate: n.gate === true,
    payload: n.payload,
    meta: n.meta ?? null,
    bodyId: body.id,
    headers,
    sourceIp: request.sourceIp,
    origin: 'push',
    receivedAt: request.receivedAt,
    traceparent,
    tracestate,
  }));
  // The gate machinery stores what it normalizes from them: in the form Postgres takes, as the
  // notifications themselves are stored when they must be (writeStorable). Each the same object
  // when it has nothing Postgres refuses.
  const gates = notifications.filter((n) => n.gate).map(storableGate);
  // The vendor's waiting request: from its gate notifications to the decision it gets (undefined:
  // no gate machinery, or it leaves the acknowledgement as it is).
  const askGates = (messageIds: Promise<string[]>) =>
    gates.length === 0 || !gateResponder
      ? Promise.resolve(undefined)
      : withSpan('switchyard.gate.wait', { attributes: { 'switchyard.instance': instanceId } }, () =>
          gateResponder({
            instanceId,
            connector: connector.name,
            notifications: gates,
            messageIds,
            config,
            receivedAt: request.receivedAt,
          }),
        );
  const writing: Promise<Set<string>> =
    items.length === 0
      ? Promise.resolve(new Set())
      : withSpan(
          'switchyard.store',
          { attributes: { 'switchyard.instance': instanceId, 'switchyard.notifications': items.length } },
          () => writeStorable(rt, writer, { items, body }),
        ).then((r) => r.inserted);
  // The gate machinery is asked while the write runs: a vendor waiting on an approval has a
  // deadline of seconds, and a write on a silent database connection is given up after 15 s (the
  // vendor had the instance's default 15 to 25 s late, long after its own timeout).
  const gateIdsOf = (inserted: Set<string>) =>
    items.filter((i) => i.gate && inserted.has(i.id)).map((i) => i.id);
  // The responder may answer without looking at the write's outcome, or look only later (after
  // reading the instance): a write failing meanwhile must not be an unhandled rejection, which ends
  // the process (an outage during an approval request did). Its failure is handled below.
  const storedGateIds = writing.then(gateIdsOf);
  storedGateIds.catch(() => {});
  const gateAnswer = gates.length > 0 && gateResponder ? askGates(storedGateIds) : undefined;
  gateAnswer?.catch(() => {});
  let inserted: Set<string>;
  try {
    const first = gateAnswer
      ? await Promise.race([
          writing.then((w) => ({ written: w })),
          gateAnswer.then((a) => (a ? { answered: a } : undefined)),
        ])
      : undefined;
    if (first && 'answered' in first) {
      // Answered by its deadline before the write ended: what it stores later is normalized as usual.
      writing.catch((e) =>
        rt.logger.warn({ instance: instanceId, err: e }, 'a gate push not stored after its answer'),
      );
      return acknowledged(first.answered, [], 0, []);
    }
    inserted = first?.written ?? (await writing);
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      reportDatabaseUnavailable(rt.logger, error, 'pushes are not stored and are answered 503');
      // A vendor's approval request waits for its answer, and for Docplanner anything but a 2xx
      // refuses the booking: a 503 would refuse every booking while the database is down, whatever
      // the instance's configured default. The gate machinery answers that default (it can store
      // nothing either); the vendor's notification of the booking that follows is retried by it.
      const answer = await askGates(Promise.resolve([]));
      if (answer) return acknowledged(answer, [], 0, []);
      return problem(503, 'SY_STORAGE_UNAVAILABLE', 'The database is unavailable', 'try again later');
    }
    const unstorable = unstorableReason(error);
    if (unstorable !== undefined) {
      // Valid JSON that Postgres refuses even sanitized (writeStorable), such as a payload too deep
      // to serialize: a client error, not a reason for the vendor to retry.
      warnRepeated(
        rt.logger,
        refusalWarning(rt, 'unstorable').take(instanceId),
        { instance: instanceId, err: error },
        'inbound request refused: the payload cannot be stored',
      );
      return problem(
        400,
        'SY_CONNECTOR_BAD_REQUEST',
        'The vendor request could not be understood',
        unstorable,
      );
    }
    // The hub's own failure: nothing was stored, and a 5xx makes the vendor send it again (a 4xx
    // would make it drop a notification the hub never took).
    rt.logger.error(
      { instance: instanceId, err: error, notifications: items.length, bytes: request.rawBody.length },
      'inbound request not stored: the hub failed to write it',
    );
    return problem(
      500,
      'SY_PIPELINE_NOT_STORED',
      'The push could not be stored',
      'the hub failed to store the request (its log has the cause); nothing was stored, send it again',
    );
  }
  const stored = items.filter((i) => inserted.has(i.id)).map((i) => i.id);
  setSpanAttributes({
    'switchyard.stored': stored.length,
    'switchyard.dedupe_hit': stored.length < items.length,
  });
  const gateIds = gateIdsOf(inserted);
  const answer: InboundResponse = (await gateAnswer) ??
    push.acknowledge?.(notifications, config, request) ?? { status: 200, body: { status: 'accepted' } };
  return acknowledged(answer, stored, items.length - stored.length, gates.length > 0 ? gateIds : undefined);
}

/** A gate notification whose payload has no NUL or lone surrogate (U+FFFD in their place). */
function storableGate(notification: VendorNotification): VendorNotification {
  const payload = storableJson(notification.payload);
  return payload === undefined || payload === notification.payload
    ? notification
    : { ...notification, payload };
}

/**
 * Writes a push's notifications; when Postgres refuses one of them as it is (a NUL `\u0000` or a
 * lone surrogate such as `\ud83d`, from a vendor that cut a string in the middle of an emoji), writes
 * them again with every such character replaced by U+FFFD, as a pull stores them
 * (`storableForms`, inbound/storable.ts), each altered one marked in its `meta.unstorable`, logged and
 * named in the instance's `lastError`. A push answered 400 for that was lost: a vendor drops a 4xx,
 * and its retry is the same bytes (a booking whose patient comment held one stray character never
 * reached the clinic's systems; a gate request was refused). The raw body is stored as it came. A
 * payload no replacement makes storable (nested too deep) still rejects with the refusal.
 */
async function writeStorable(
  rt: Runtime,
  writer: InboundWriter,
  request: InboundWrite,
): Promise<{ inserted: Set<string> }> {
  try {
    return await writer.write(request);
  } catch (error) {
    const reason = unstorableReason(error);
    if (reason === undefined) throw error;
    const altered: inboundStore.NewInbound[] = [];
    const items = request.items.map((item) => {
      const sanitized = storableForms(item, reason).find((form) => form.storedAs === 'sanitized');
      if (!sanitized) return item;
      altered.push(sanitized.item);
      return sanitized.item;
    });
    if (altered.length === 0) throw error;
    const written = await writer.write({ items, body: request.body });
    const stored = altered.filter((item) => written.inserted.has(item.id));
    if (stored.length > 0) {
      const first = stored[0]!;
      rt.logger.warn(
        { instance: first.instanceId, messages: stored.map((item) => item.id), reason },
        'a pushed notification Postgres refused was stored with its refused characters replaced (U+FFFD)',
      );
      await instanceStore
        .recordInstanceError(
          rt.db,
          first.instanceId,
          `push: ${stored.length} notification(s) Postgres refused were stored altered ` +
            `(message ${first.id}, ${first.vendorType}, stored sanitized): ${reason}`,
        )
        .catch(() => {});
    }
    return written;
  }
}

/** A push's answer: what the vendor gets, with what was stored (and its gate messages, if any). */
function acknowledged(
  answer: InboundResponse,
  stored: string[],
  duplicates: number,
  gateIds: string[] | undefined,
): IngestResult {
  return {
    ok: true,
    status: answer.status,
    ...(answer.headers ? { headers: answer.headers } : {}),
    ...(answer.body !== undefined ? { body: answer.body } : {}),
    stored,
    duplicates,
    ...(gateIds ? { gate: { messageIds: gateIds } } : {}),
  };
}
