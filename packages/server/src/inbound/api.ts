/**
 * The `hub.inbound` section: stored vendor messages and re-normalization, built on the declared
 * {@link InboundHost}; and how the API shows a message.
 */
import { type JsonValue, SwitchyardError } from '@switchyard/core';
import type { Kysely } from 'kysely';
import { invalid, notFound } from '../admin/errors.ts';
import { clampLimit, type Page, UUID } from '../admin/page.ts';
import { type HubEvent, toEvent } from '../events/api.ts';
import * as eventStore from '../events/store.ts';
import { databaseNow } from '../storage/db.ts';
import { CHANNEL_NORMALIZE, notify } from '../storage/queues.ts';
import * as inboundStore from './store.ts';

export interface InboundMessage {
  id: string;
  instanceId: string;
  route: string;
  dedupeKey: string;
  vendorType: string;
  orderingKey: string | null;
  occurredAt: string | null;
  gate: boolean;
  origin: 'push' | 'pull';
  status: 'received' | 'normalized' | 'ignored' | 'failed';
  /** Why it was ignored or failed. */
  reason: string | null;
  error: JsonValue | null;
  attempts: number;
  eventCount: number;
  receivedAt: Date;
  processedAt: Date | null;
}

export type InboundMessageDetail = InboundMessage & {
  payload: JsonValue;
  /** The body as received (UTF-8), when it came by push. */
  rawBody: string | null;
  /** Request headers with credentials redacted. */
  headers: Record<string, string> | null;
  events: HubEvent[];
};

/** A message row as the API shows it (no payload, headers or body). @example `const view = toInbound(row);` */
export function toInbound(r: inboundStore.InboundRow): InboundMessage {
  return {
    id: r.id,
    instanceId: r.instance_id,
    route: r.route,
    dedupeKey: r.dedupe_key,
    vendorType: r.vendor_type,
    orderingKey: r.ordering_key,
    occurredAt: r.occurred_at,
    gate: r.gate,
    origin: r.origin,
    status: r.status,
    reason: r.reason,
    error: r.error,
    attempts: r.attempts,
    eventCount: r.event_count,
    receivedAt: r.received_at,
    processedAt: r.processed_at,
  };
}

/**
 * What the inbound API needs of the hub, and nothing more.
 *
 * @example
 * ```ts
 * const api = inboundApi({ db, wakeNormalize: () => rt.wakeNormalize(), redactHeaders });
 * ```
 */
export interface InboundHost {
  /** The hub's database; the API opens its own transactions on it. */
  db: Kysely<unknown>;
  /** Wakes this process's normalize loop (a message was put back in the queue). */
  wakeNormalize(): void;
  /**
   * A stored message's headers as the API shows them: redacted when stored, and again with the
   * instance's credential headers as declared today, for rows stored before the declaration.
   */
  redactHeaders(instanceId: string, headers: Record<string, string>): Promise<Record<string, string>>;
}

/** The `hub.inbound` section: stored vendor messages and re-normalization. */
export function inboundApi(host: InboundHost) {
  const { db } = host;

  return {
    /**
     * Lists stored inbound messages, newest first.
     *
     * @example
     * ```ts
     * const failed = await hub.inbound.list({ status: 'failed', instanceId: 'dp-main' });
     * ```
     */
    async list(
      f: { status?: InboundMessage['status']; instanceId?: string; cursor?: string; limit?: number } = {},
    ): Promise<Page<InboundMessage>> {
      const limit = clampLimit(f.limit);
      if (f.cursor !== undefined && !/^\d+$/.test(f.cursor)) throw invalid('cursor is not valid');
      const rows = await inboundStore.listInbound(db, {
        ...(f.status ? { status: f.status } : {}),
        ...(f.instanceId ? { instanceId: f.instanceId } : {}),
        ...(f.cursor ? { beforeSeq: f.cursor } : {}),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      return {
        items: page.map(toInbound),
        nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null,
      };
    },

    /** One message with its payload, redacted headers, raw body and the events it produced. */
    async get(id: string): Promise<InboundMessageDetail> {
      if (!UUID.test(id)) throw notFound('inbound message', id);
      const row = await inboundStore.getInbound(db, id);
      if (!row) throw notFound('inbound message', id);
      const events = await eventStore.listEventsOfInbound(db, id);
      const body = row.body_id === null ? undefined : await inboundStore.getInboundBody(db, row.body_id);
      return {
        ...toInbound(row),
        payload: row.payload,
        rawBody: body ? body.toString('utf8') : null,
        headers: row.headers && (await host.redactHeaders(row.instance_id, row.headers)),
        events: events.map(toEvent),
      };
    },

    /**
     * Runs normalization again for a failed or ignored message (after a connector fix). Event ids
     * stay the same, so nothing already delivered is duplicated.
     *
     * @example
     * ```ts
     * await hub.inbound.renormalize(messageId);
     * ```
     */
    async renormalize(id: string): Promise<InboundMessage> {
      if (!UUID.test(id)) throw notFound('inbound message', id);
      const row = await db.transaction().execute(async (trx) => {
        const r = await inboundStore.requeueInbound(trx, id);
        if (r) await notify(trx, CHANNEL_NORMALIZE);
        return r;
      });
      if (!row) {
        const existing = await inboundStore.getInbound(db, id);
        if (!existing) throw notFound('inbound message', id);
        throw new SwitchyardError('SY_PIPELINE_CONFLICT', `inbound message ${id} is ${existing.status}`);
      }
      host.wakeNormalize();
      return toInbound(row);
    },

    /**
     * Runs normalization again for the failed messages of an instance (after a connector fix), up
     * to `limit` at a time (1..1000, default 100), oldest first; `since`: only those received since
     * then. Each answer names `failedBefore`, the moment it counted from: pass it back to take the
     * next ones (`more` is true while some may be left), so a message that fails again is not taken
     * a second time. Event ids stay the same, as with {@link renormalize}.
     *
     * @example
     * ```ts
     * let page = await hub.inbound.renormalizeFailed({ instanceId: 'dp-main' });
     * while (page.more) page = await hub.inbound.renormalizeFailed({ instanceId: 'dp-main', failedBefore: page.failedBefore });
     * ```
     */
    async renormalizeFailed(f: {
      instanceId: string;
      since?: Date;
      failedBefore?: Date;
      limit?: number;
    }): Promise<{ ids: string[]; failedBefore: Date; more: boolean }> {
      const limit = clampLimit(f.limit, 1000, 100);
      for (const [name, date] of [
        ['since', f.since],
        ['failedBefore', f.failedBefore],
      ] as const)
        if (date !== undefined && (!(date instanceof Date) || Number.isNaN(date.getTime())))
          throw invalid(`${name} must be a valid date`);
      if (!(await inboundStore.instanceExists(db, f.instanceId))) throw notFound('instance', f.instanceId);
      const failedBefore = f.failedBefore ?? (await databaseNow(db));
      const ids = await db.transaction().execute(async (trx) => {
        const taken = await inboundStore.requeueFailedInbound(trx, {
          instanceId: f.instanceId,
          ...(f.since ? { since: f.since } : {}),
          failedBefore,
          limit,
        });
        if (taken.length > 0) await notify(trx, CHANNEL_NORMALIZE);
        return taken;
      });
      if (ids.length > 0) host.wakeNormalize();
      return { ids, failedBefore, more: ids.length === limit };
    },

    /**
     * How many of the given messages are in each status (the CLI follows a re-normalization with
     * it): `{ received: 3, normalized: 40, failed: 2 }`; ids that are not stored count nowhere.
     */
    async statusCounts(ids: readonly string[]): Promise<Partial<Record<InboundMessage['status'], number>>> {
      return inboundStore.statusCounts(
        db,
        ids.filter((id) => UUID.test(id)),
      );
    },
  };
}

/** The `hub.inbound` section, as the inbound routes take it. */
export type InboundApi = ReturnType<typeof inboundApi>;
