import { SwitchyardError } from '@switchyard/core';
import { invalid, notFound } from '../../admin/errors.ts';
import { credentialHeaderNames } from '../../delivery/redact.ts';
import * as eventStore from '../../events/store.ts';
import * as inboundStore from '../../inbound/store.ts';
import { CHANNEL_NORMALIZE, notify } from '../../storage/queues.ts';
import type { InboundMessage, InboundMessageDetail, Page } from '../api-types.ts';
import { storedHeaders } from '../ingest.ts';
import { clampLimit, toEvent, toInbound, UUID } from '../views.ts';
import type { HubContext } from './context.ts';

/** The `hub.inbound` section: stored vendor messages and re-normalization. */
export function inboundApi(ctx: HubContext) {
  const { db, rt } = ctx;

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
      // Redacted when stored; again here with today's declaration, for rows stored before it.
      const instance = await rt.loadInstance(row.instance_id).catch(() => undefined);
      const credentialHeaders = instance ? credentialHeaderNames(instance.connector, instance.config) : [];
      return {
        ...toInbound(row),
        payload: row.payload,
        rawBody: body ? body.toString('utf8') : null,
        headers: row.headers && storedHeaders(row.headers, credentialHeaders),
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
      rt.wakeNormalize();
      return toInbound(row);
    },
  };
}
