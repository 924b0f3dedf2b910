import {
  type InboundRequest,
  type InboundResponse,
  isConnectorError,
  type JsonValue,
  type VendorNotification,
} from '@switchyard/core';
import type { Kysely } from 'kysely';
import { redactHeaders } from '../delivery/redact.ts';
import * as q from '../storage/queries.ts';
import { GroupCommit } from './group-commit.ts';
import { newId } from './ids.ts';
import type { Runtime } from './runtime.ts';

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

/** Hook for the gate machinery: may replace the acknowledgement of a request carrying gates. */
export type GateResponder = (gate: {
  instanceId: string;
  connector: string;
  notifications: readonly VendorNotification[];
  messageIds: string[];
  config: Record<string, unknown>;
}) => Promise<InboundResponse | undefined>;

export function problem(status: number, code: string, title: string, detail: string): IngestResult {
  return {
    ok: false,
    status,
    problem: { type: `https://switchyard.dev/problems/${code}`, title, status, detail, code },
  };
}

/** Headers as stored: anything that may carry a credential is redacted. */
export function storedHeaders(headers: InboundRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(redactHeaders(headers)))
    if (value !== undefined) out[name] = value;
  return out;
}

/** How often one process moves an instance's `last_message_at` at most. */
const TOUCH_INTERVAL_MS = 1000;

/**
 * Group commit for inbound messages: concurrent requests are written together, one INSERT and one
 * COMMIT for many, with at most `maxConcurrent` statements open. Under light load a request
 * is written at once (nothing waits for a timer); under heavy load the batches grow by
 * themselves. Inserting into `inbound_messages` is also the enqueueing of normalization (the table
 * is the queue), so a request costs a share of one INSERT instead of an INSERT plus a job.
 */
export class InboundWriter {
  private readonly db: Kysely<unknown>;
  private readonly onCommit: () => void;
  private readonly group: GroupCommit<q.NewInbound[], { inserted: Set<string> }>;
  /** When this process last moved each instance's `last_message_at`. */
  private readonly touchedAt = new Map<string, number>();

  constructor(
    db: Kysely<unknown>,
    onCommit: () => void,
    options: { maxConcurrent?: number; maxBatch?: number } = {},
  ) {
    this.db = db;
    this.onCommit = onCommit;
    this.group = new GroupCommit({
      maxInFlight: options.maxConcurrent ?? 4,
      // A batch is capped in rows, not requests: a request may carry many notifications.
      maxBatch: options.maxBatch ?? 500,
      weight: (items) => items.length,
      commit: async (requests) => {
        const inserted = await this.commit(requests.flat());
        return requests.map(() => ({ inserted }));
      },
    });
  }

  /** Resolves once the items are durable; `inserted` holds the ids that were new (not duplicates). */
  write(items: q.NewInbound[]): Promise<{ inserted: Set<string> }> {
    return this.group.write(items);
  }

  private async commit(items: q.NewInbound[]): Promise<Set<string>> {
    // `last_message_at` moves at most once a second per instance (see storeInbound).
    const now = Date.now();
    const touch = [...new Set(items.map((i) => i.instanceId))].filter(
      (id) => now - (this.touchedAt.get(id) ?? 0) >= TOUCH_INTERVAL_MS,
    );
    for (const id of touch) this.touchedAt.set(id, now);
    // One autocommit statement: rows, last_message_at and the NOTIFY, no BEGIN/COMMIT round trips.
    const rows = await q.storeInbound(this.db, items, touch).catch((error: unknown) => {
      for (const id of touch) this.touchedAt.delete(id);
      throw error;
    });
    const inserted = new Set(rows.map((r) => r.id));
    if (inserted.size > 0) this.onCommit();
    return inserted;
  }
}

/** Postgres data exceptions (class 22) and program limits (class 54), or a JS stack overflow while serializing. */
function isUnstorablePayload(error: unknown): boolean {
  if (error instanceof RangeError) return true;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'));
}

function isDatabaseDown(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (
    typeof code === 'string' &&
    (code.startsWith('08') || code === '57P01' || code === '57P03' || code === '53300')
  ) {
    return true;
  }
  const message = String((error as { message?: unknown })?.message ?? '');
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|timeout exceeded when trying to connect|Connection terminated|not queryable|pool.*(ended|destroyed)|Cannot use a pool after calling end/i.test(
    message,
  );
}

/**
 * The push path: authenticate, parse, store durably (deduplicated), answer. Nothing is
 * acknowledged before it is committed; a database outage answers 503 so the vendor retries.
 */
export async function ingest(
  rt: Runtime,
  writer: InboundWriter,
  gateResponder: GateResponder | undefined,
  instanceId: string,
  request: InboundRequest,
): Promise<IngestResult> {
  let instance: Awaited<ReturnType<Runtime['loadInstance']>>;
  try {
    instance = await rt.loadInstance(instanceId);
  } catch (error) {
    if (isDatabaseDown(error)) {
      return problem(503, 'SY_STORAGE_UNAVAILABLE', 'The database is unreachable', 'try again later');
    }
    throw error;
  }
  if (!instance || instance.row.mode === 'pull') {
    return problem(
      404,
      'SY_PIPELINE_NOT_FOUND',
      'No such resource',
      `no push instance ${JSON.stringify(instanceId)}`,
    );
  }
  const { connector, config } = instance;
  const push = connector.push;
  if (!push) {
    return problem(
      404,
      'SY_PIPELINE_NOT_FOUND',
      'No such resource',
      `connector ${connector.name} takes no pushes`,
    );
  }
  if (!push.routes.some((r) => r.name === request.route)) {
    return problem(
      404,
      'SY_PIPELINE_ROUTE_NOT_FOUND',
      'The connector has no such push route',
      `no route ${JSON.stringify(request.route)}`,
    );
  }
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
    push.authenticate(request, config);
    notifications = push.parse(request, config);
  } catch (error) {
    if (isConnectorError(error) && error.kind === 'auth') {
      rt.logger.info(
        { instance: instanceId, reason: error.message },
        'inbound request refused: authentication',
      );
      return problem(401, error.code, 'Inbound authentication failed', 'authentication failed');
    }
    if (isConnectorError(error) && error.kind === 'bad_request') {
      return problem(400, error.code, 'The vendor request could not be understood', error.message);
    }
    if (!isConnectorError(error)) {
      // A connector bug on hostile input (or a body too deeply nested to walk): a 5xx would make
      // the vendor retry it forever. Nothing was stored; the log has the error for the fix.
      rt.logger.warn(
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

  const headers = storedHeaders(request.headers);
  const items: q.NewInbound[] = notifications.map((n) => ({
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
    rawBody: request.rawBody,
    headers,
    sourceIp: request.sourceIp,
    origin: 'push',
    receivedAt: request.receivedAt,
  }));
  let inserted: Set<string>;
  try {
    inserted = items.length === 0 ? new Set() : (await writer.write(items)).inserted;
  } catch (error) {
    if (isDatabaseDown(error)) {
      rt.logger.warn(
        { instance: instanceId, err: error },
        'inbound request not stored: database unreachable',
      );
      return problem(503, 'SY_STORAGE_UNAVAILABLE', 'The database is unreachable', 'try again later');
    }
    if (isUnstorablePayload(error)) {
      // Valid JSON that Postgres refuses (\u0000, lone surrogates, NUL in a key) or too deep to
      // serialize: a client error, not a reason for the vendor to retry.
      rt.logger.warn(
        { instance: instanceId, err: error },
        'inbound request refused: the payload cannot be stored',
      );
      return problem(
        400,
        'SY_CONNECTOR_BAD_REQUEST',
        'The vendor request could not be understood',
        'the payload cannot be stored (NUL characters, unpaired surrogates or too deeply nested)',
      );
    }
    throw error;
  }
  const stored = items.filter((i) => inserted.has(i.id)).map((i) => i.id);
  const gateIds = items.filter((i) => i.gate && inserted.has(i.id)).map((i) => i.id);
  let answer: InboundResponse = push.acknowledge?.(notifications, config, request) ?? {
    status: 200,
    body: { status: 'accepted' },
  };
  if (notifications.some((n) => n.gate) && gateResponder) {
    answer =
      (await gateResponder({
        instanceId,
        connector: connector.name,
        notifications: notifications.filter((n) => n.gate),
        messageIds: gateIds,
        config,
      })) ?? answer;
  }
  return {
    ok: true,
    status: answer.status,
    ...(answer.headers ? { headers: answer.headers } : {}),
    ...(answer.body !== undefined ? { body: answer.body } : {}),
    stored,
    duplicates: items.length - stored.length,
    ...(notifications.some((n) => n.gate) ? { gate: { messageIds: gateIds } } : {}),
  };
}
