import {
  type EventEnvelope,
  isConnectorError,
  type JsonObject,
  type JsonValue,
  type NormalizeResult,
  type VendorHttp,
  type VendorNotification,
} from '@switchyard/core';
import type { Kysely } from 'kysely';
import * as q from '../storage/queries.ts';
import { matchesSubscription } from './fanout.ts';
import { eventIdFor, newId } from './ids.ts';
import { connectorLogger, jittered, type Runtime } from './runtime.ts';
import { aliasStore, stateStore } from './stores.ts';
import { type ValidationIssue, validateEnvelope } from './validate.ts';
import type { TickResult } from './wake.ts';

/** Rebuilds the notification the connector produced from its stored row. */
export function notificationOf(row: q.InboundRow): VendorNotification {
  return {
    type: row.vendor_type,
    dedupeKey: row.dedupe_key,
    ...(row.ordering_key !== null ? { orderingKey: row.ordering_key } : {}),
    ...(row.occurred_at !== null ? { occurredAt: row.occurred_at } : {}),
    payload: row.payload,
    ...(row.gate ? { gate: true } : {}),
    ...(row.meta !== null ? { meta: row.meta as JsonObject } : {}),
  };
}

function errorJson(error: unknown): JsonObject {
  if (isConnectorError(error)) {
    return { code: error.code, kind: error.kind, message: error.message };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/**
 * The normalize worker: claims stored inbound messages, runs the connector, validates, stores
 * events and fans out deliveries, all of the storing in one transaction with the status change.
 */
export class Normalizer {
  private readonly rt: Runtime;
  private readonly http: VendorHttp;
  private readonly afterNormalize: AfterNormalize | undefined;
  private active = 0;
  private readonly running = new Set<Promise<void>>();

  constructor(rt: Runtime, http: VendorHttp, afterNormalize?: AfterNormalize) {
    this.rt = rt;
    this.http = http;
    this.afterNormalize = afterNormalize;
  }

  /** One pass: claim what fits in the free concurrency, start it, report whether more may wait. */
  async tick(): Promise<TickResult> {
    const free = this.rt.options.normalizeConcurrency - this.active;
    if (free <= 0) return { busy: false };
    const rows = await q.claimInbound(this.rt.db, this.rt.options.normalizeLeaseMs, free);
    for (const row of rows) {
      this.active++;
      const p = this.process(row)
        .catch((error) => this.rt.logger.error({ err: error, inbound: row.id }, 'normalization crashed'))
        .finally(() => {
          this.active--;
          this.running.delete(p);
          this.rt.wakeNormalize();
        });
      this.running.add(p);
    }
    if (rows.length > 0) return { busy: rows.length === free };
    return { busy: false, nextDueAt: await q.nextInboundDue(this.rt.db) };
  }

  /** Waits for the normalizations in progress. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  async process(row: q.InboundRow): Promise<void> {
    const { rt } = this;
    const token = row.lock_token!;
    const logger = rt.logger.child({
      inbound: row.id,
      instance: row.instance_id,
      vendorType: row.vendor_type,
    });
    let instance: Awaited<ReturnType<Runtime['loadInstance']>>;
    try {
      instance = await rt.loadInstance(row.instance_id);
    } catch (error) {
      await q.finishInbound(
        rt.db,
        row.id,
        token,
        'failed',
        'the instance cannot be loaded',
        errorJson(error),
        0,
      );
      return;
    }
    if (!instance) {
      await q.finishInbound(
        rt.db,
        row.id,
        token,
        'failed',
        'the connector instance no longer exists',
        null,
        0,
      );
      return;
    }
    const { connector, config } = instance;
    const maxAttempts = rt.options.normalizeRetryMs.length + 1;
    let result: NormalizeResult;
    try {
      result = await connector.normalize(notificationOf(row), {
        instanceId: row.instance_id,
        config,
        http: this.http,
        aliases: aliasStore(rt.db, row.instance_id),
        state: stateStore(rt.db, row.instance_id),
        logger: connectorLogger(logger),
        attempt: row.attempts,
        finalAttempt: row.attempts >= maxAttempts,
        receivedAt: row.received_at,
      });
    } catch (error) {
      if (isConnectorError(error) && error.kind === 'transient' && row.attempts < maxAttempts) {
        const delay = Math.max(
          jittered(rt.options.normalizeRetryMs[row.attempts - 1] ?? 0, rt.options.retryJitter),
          error.retryAfterMs ?? 0,
        );
        logger.warn(
          { attempt: row.attempts, delayMs: delay, reason: error.message },
          'normalization will be retried',
        );
        await q.retryInbound(rt.db, row.id, token, delay, errorJson(error));
        return;
      }
      logger.warn({ reason: (error as Error)?.message }, 'normalization failed');
      await q.finishInbound(
        rt.db,
        row.id,
        token,
        'failed',
        (error as Error)?.message ?? 'failed',
        errorJson(error),
        0,
      );
      await q.recordInstanceError(
        rt.db,
        row.instance_id,
        `normalization failed: ${(error as Error)?.message}`,
      );
      return;
    }

    if (result.ignored !== undefined || result.events.length === 0) {
      await q.finishInbound(rt.db, row.id, token, 'ignored', result.ignored ?? 'no events', null, 0);
      return;
    }

    const envelopes: EventEnvelope[] = [];
    const invalid: { index: number; errors: ValidationIssue[] }[] = [];
    result.events.forEach((draft, index) => {
      const envelope = {
        specversion: '1.0',
        id: eventIdFor(row.id, index),
        type: draft.type,
        source: row.instance_id,
        subject: draft.subject,
        time: draft.time,
        datacontenttype: 'application/json',
        data: draft.data,
        connector: connector.name,
        instance: row.instance_id,
        vendortype: draft.vendorType ?? row.vendor_type,
      } as EventEnvelope;
      const check = validateEnvelope(envelope);
      if (!check.valid) invalid.push({ index, errors: check.errors });
      envelopes.push(envelope);
    });
    if (invalid.length > 0) {
      const detail = invalid
        .flatMap((i) => i.errors.map((e) => `event ${i.index}${e.path}: ${e.message}`))
        .join('; ')
        .slice(0, 1000);
      logger.warn({ invalid }, 'normalized output is invalid');
      await q.finishInbound(
        rt.db,
        row.id,
        token,
        'failed',
        `invalid normalized event: ${detail}`,
        { code: 'SY_EVENT_INVALID', validation: invalid as unknown as JsonValue },
        0,
      );
      return;
    }

    const stored = await rt.db
      .transaction()
      .execute(async (trx) => {
        const events = await q.insertEvents(
          trx,
          envelopes.map((e) => ({
            id: e.id,
            type: e.type,
            source: e.source,
            subject: e.subject,
            time: e.time,
            envelope: e as unknown as Record<string, JsonValue>,
            inboundMessageId: row.id,
          })),
        );
        const fanned = await fanOut(trx, events);
        if (!(await q.finishInbound(trx, row.id, token, 'normalized', null, null, envelopes.length))) {
          // Another worker took the message over after our lease ran out: its result counts.
          throw new LeaseLost();
        }
        if (fanned > 0) await q.notify(trx, q.CHANNEL_DELIVER);
        return fanned;
      })
      .catch((error) => {
        if (error instanceof LeaseLost) return -1;
        throw error;
      });
    if (stored > 0) rt.wakeDeliver();
    if (stored >= 0 && this.afterNormalize) {
      // After the commit and best effort: a hook failure never fails or repeats the normalization.
      await this.afterNormalize({
        instanceId: row.instance_id,
        connector: connector.name,
        inboundId: row.id,
        notification: notificationOf(row),
        events: envelopes.map((e) => ({ id: e.id, type: e.type, subject: e.subject })),
      }).catch((error) => logger.warn({ err: error }, 'afterNormalize hook failed'));
    }
  }
}

/**
 * Hook called after a notification's events are stored (HubConfig.afterNormalize); the gate
 * machinery uses it to match a booking to the approval request that preceded it.
 */
export type AfterNormalize = (normalized: {
  instanceId: string;
  connector: string;
  inboundId: string;
  notification: VendorNotification;
  events: readonly { id: string; type: string; subject: string }[];
}) => Promise<void>;

class LeaseLost extends Error {}

/**
 * Creates one delivery per (event, matching active webhook subscription). Idempotent: a re-run
 * finds the deliveries already there. Pull subscriptions read events directly (no rows).
 */
export async function fanOut(db: Kysely<unknown>, events: readonly q.EventRow[]): Promise<number> {
  if (events.length === 0) return 0;
  const subscriptions = await q.listActiveWebhookSubscriptions(db);
  const items: Parameters<typeof q.insertFanoutDeliveries>[1][number][] = [];
  for (const event of events) {
    for (const sub of subscriptions) {
      if (!matchesSubscription(sub, event.type, event.source)) continue;
      items.push({
        id: newId(),
        subscriptionId: sub.id,
        eventId: event.id,
        eventSequence: event.sequence,
        subject: event.subject,
      });
    }
  }
  const inserted = await q.insertFanoutDeliveries(db, items);
  await q.holdBehindDead(
    db,
    items.map((i) => i.id),
  );
  return inserted;
}
