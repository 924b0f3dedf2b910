import {
  type EventDraft,
  type EventEnvelope,
  isConnectorError,
  type JsonObject,
  type JsonValue,
  type NormalizeResult,
  type ValidationIssue,
  type VendorHttp,
  type VendorNotification,
  validateEvent,
} from '@switchyard/core';
import * as instanceStore from '../instances/store.ts';
import * as q from '../storage/queries.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { GroupCommit } from './group-commit.ts';
import { eventIdFor } from './ids.ts';
import type { LeaseKeeper } from './leases.ts';
import { connectorLogger, jittered, type Runtime } from './runtime.ts';
import { aliasStore, stateStore } from './stores.ts';
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
  private readonly markEchoes: MarkEchoes | undefined;
  private readonly committer: NormalizedWriter;
  private readonly leases: LeaseKeeper;
  private active = 0;
  private readonly running = new Set<Promise<void>>();

  constructor(
    rt: Runtime,
    http: VendorHttp,
    leases: LeaseKeeper,
    afterNormalize?: AfterNormalize,
    markEchoes?: MarkEchoes,
  ) {
    this.rt = rt;
    this.http = http;
    this.leases = leases;
    this.afterNormalize = afterNormalize;
    this.markEchoes = markEchoes;
    this.committer = new NormalizedWriter(rt);
  }

  /**
   * One pass: claim a batch that fits in the free concurrency, start it, report whether more may
   * wait. While most slots are busy it claims nothing: a claim per finished message would cost a
   * query per message; waiting for a quarter of the slots makes each claim fetch a batch.
   */
  async tick(): Promise<TickResult> {
    const concurrency = this.rt.options.normalizeConcurrency;
    const free = concurrency - this.active;
    if (free <= 0 || (this.active > 0 && free < Math.ceil(concurrency / 4))) return { busy: false };
    const limit = Math.min(free, CLAIM_BATCH);
    const leaseMs = this.rt.options.normalizeLeaseMs;
    const rows = await q.claimInbound(this.rt.db, leaseMs, limit);
    for (const row of rows) {
      this.active++;
      // The lease is short and renewed while the work runs (LeaseKeeper): a process that dies
      // loses its messages to another within one lease.
      this.leases.hold('inbound', row.id, row.lock_token!, leaseMs);
      const p = this.process(row)
        .then(
          () => this.leases.done('inbound', row.id),
          (error: unknown) => {
            if (isDatabaseUnavailable(error)) {
              // Nothing of it was stored: the same process takes it again once the database is back.
              this.leases.giveBack('inbound', row.id);
              reportDatabaseUnavailable(
                this.rt.logger,
                error,
                'normalizations cut short are given back when it is back',
              );
              return;
            }
            this.leases.done('inbound', row.id);
            this.rt.logger.error(
              { err: error, inbound: row.id },
              'normalization crashed; it is tried again when its lease runs out',
            );
          },
        )
        .finally(() => {
          this.active--;
          this.running.delete(p);
          this.rt.wakeNormalize();
        });
      this.running.add(p);
    }
    if (rows.length > 0) return { busy: rows.length === limit && this.active < concurrency };
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
      if (isDatabaseUnavailable(error)) throw error;
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
      // The hub's own database failing under the connector (its alias or state store) says nothing
      // about the notification: not a failure of it, the work is given back (see tick).
      if (!isConnectorError(error) && isDatabaseUnavailable(error)) throw error;
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
      await instanceStore.recordInstanceError(
        rt.db,
        row.instance_id,
        `normalization failed: ${(error as Error)?.message}`,
      );
      return;
    }

    if (result.ignored !== undefined || result.events.length === 0) {
      // Through the batched commit too: with many ignored notifications, a statement each adds up.
      await this.committer.write({ row, token, events: [], ignored: result.ignored ?? 'no events' });
      return;
    }

    if (this.markEchoes) {
      // Best effort: an event not marked as an echo is still the right event.
      await this.markEchoes(row.instance_id, result.events).catch((error) =>
        logger.warn({ err: error }, 'marking command echoes failed'),
      );
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
      const check = validateEvent(envelope);
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

    const stored = await this.committer.write({
      row,
      token,
      events: envelopes.map((e) => ({
        id: e.id,
        type: e.type,
        source: e.source,
        subject: e.subject,
        time: e.time,
        envelope: e as unknown as Record<string, JsonValue>,
        inboundMessageId: row.id,
      })),
    });
    if (stored && this.afterNormalize) {
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

/**
 * Hook called with a notification's event drafts before they are validated and stored
 * (HubConfig.markEchoes); it may set `data.causedBy` on drafts that echo a hub command.
 */
export type MarkEchoes = (instanceId: string, drafts: EventDraft[]) => Promise<void>;

/** Messages claimed per query at most (a claim costs about the same for 1 row or 64). */
const CLAIM_BATCH = 64;

interface Normalized {
  row: q.InboundRow;
  token: string;
  events: q.NewEvent[];
  /** Set when the connector ignored the notification: the reason stored with status `ignored`. */
  ignored?: string;
}

/**
 * Group commit for normalized messages: the results of every message finished while a commit was
 * running are stored together in the next one. One statement per batch (`commitNormalized`)
 * finishes the messages (checking each lease token), stores their events in order, fans out
 * deliveries and sends one NOTIFY: a single round trip, where a transaction cost seven. Nothing waits on a timer: a message finished alone is committed at once; under load
 * batches grow by themselves. Ordering holds because a message stays `received` (blocking its
 * successors) until its batch commits.
 */
class NormalizedWriter {
  private readonly rt: Runtime;
  private readonly group: GroupCommit<Normalized, boolean>;

  constructor(rt: Runtime) {
    this.rt = rt;
    this.group = new GroupCommit({
      maxInFlight: MAX_COMMITS,
      maxBatch: MAX_COMMIT_BATCH,
      commit: async (items) => {
        const stored = await this.commit(items);
        return items.map((i) => stored.has(i.row.id));
      },
    });
  }

  /** Resolves true once stored, false when the lease was lost (another worker's result counts). */
  write(item: Normalized): Promise<boolean> {
    return this.group.write(item);
  }

  private async commit(items: Normalized[]): Promise<Set<string>> {
    // Arrival order, so events of different messages get sequences in the order they came in. A
    // sorted copy: the caller maps results back onto `items` in its own order.
    const ordered = [...items].sort((a, b) => (BigInt(a.row.seq) < BigInt(b.row.seq) ? -1 : 1));
    const { finished, fanned } = await q.commitNormalized(
      this.rt.db,
      ordered.map((i) => ({
        id: i.row.id,
        lockToken: i.token,
        status: i.ignored === undefined ? ('normalized' as const) : ('ignored' as const),
        reason: i.ignored ?? null,
        eventCount: i.events.length,
      })),
      ordered.flatMap((i) => i.events),
    );
    if (fanned > 0) this.rt.wakeDeliver();
    return finished;
  }
}

/** Commits running at once, and messages per commit at most. */
const MAX_COMMITS = 2;
const MAX_COMMIT_BATCH = 256;
