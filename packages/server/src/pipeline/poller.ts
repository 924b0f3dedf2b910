import { isConnectorError, type VendorHttp } from '@switchyard/core';
import * as inboundStore from '../inbound/store.ts';
import * as instanceStore from '../instances/store.ts';
import { connectorLogger } from '../logging/logger.ts';
import { newId } from '../storage/db.ts';
import { currentTraceparent, withSpan } from '../telemetry/tracing.ts';
import type { Runtime } from './shared.ts';
import { stateStore } from './stores.ts';
import type { TickResult } from './worker-loop.ts';

// A vendor that keeps saying "more" must not hold a worker forever; the next tick continues.
const MAX_BATCHES_PER_TURN = 50;
const LEASE_MS = 5 * 60_000;
/** How soon a push instance whose reconciliation does not apply (now) is looked at again. */
const RECONCILE_RECHECK_MS = 60 * 60_000;
/** How soon a reconciliation that failed transiently (without a Retry-After) is tried again. */
const RECONCILE_RETRY_MS = 5 * 60_000;

/**
 * The vendor pull poller. Each instance in `pull`/`both` mode whose connector can pull is a row
 * with a due time; one process at a time leases it (SKIP LOCKED), fetches, stores each batch with
 * its cursor in ONE transaction before fetching again, and schedules the next turn. Push instances
 * of connectors that reconcile (Docplanner's release) are scheduled the same way, on their own
 * columns.
 */
export class Poller {
  private readonly rt: Runtime;
  private readonly http: VendorHttp;

  constructor(rt: Runtime, http: VendorHttp) {
    this.rt = rt;
    this.http = http;
  }

  async tick(): Promise<TickResult> {
    const reconciling = this.reconcilingConnectors();
    const [due, reconcile] = await Promise.all([
      instanceStore.claimDuePulls(this.rt.db, LEASE_MS, 4),
      instanceStore.claimDueReconciles(this.rt.db, reconciling, LEASE_MS, 4),
    ]);
    await Promise.all([
      ...due.map((row) => this.pullInstance(row)),
      ...reconcile.map((row) => this.reconcileInstance(row)),
    ]);
    if (due.length > 0 || reconcile.length > 0) return { busy: true };
    const [pullAt, reconcileAt] = await Promise.all([
      instanceStore.nextPullDue(this.rt.db),
      instanceStore.nextReconcileDue(this.rt.db, reconciling),
    ]);
    const next = [pullAt, reconcileAt].filter((d): d is Date => d !== undefined);
    return {
      busy: false,
      nextDueAt: next.length === 0 ? undefined : new Date(Math.min(...next.map((d) => d.getTime()))),
    };
  }

  /** Names of the connectors that reconcile push mode (Docplanner's release). */
  private reconcilingConnectors(): string[] {
    return [...this.rt.connectors.values()].filter((c) => c.push && c.reconcile).map((c) => c.name);
  }

  /**
   * One reconciliation of a push instance (the connector's `reconcile.run`, e.g. Docplanner's
   * `POST /notifications/release`), then the next one is due after the connector's interval. A
   * vendor's Retry-After (Docplanner allows one release an hour) sets the next try; other transient
   * failures are tried again after {@link RECONCILE_RETRY_MS}. Exposed for tests and a manual run.
   */
  async reconcileInstance(
    row: instanceStore.InstanceRow,
  ): Promise<{ ran: boolean; result?: string; error?: string }> {
    const { rt } = this;
    const logger = rt.logger.child({ instance: row.id, job: 'reconcile' });
    const instance = await rt.loadInstance(row.id, true).catch(() => undefined);
    const spec = instance?.connector.reconcile;
    const intervalMs = instance && spec ? spec.intervalMs(instance.config) : undefined;
    if (!instance || !spec || intervalMs === undefined || instance.row.mode !== 'push') {
      // Not for this instance as configured now: look again later (settings may change).
      await instanceStore.finishReconcile(rt.db, row.id, RECONCILE_RECHECK_MS, undefined);
      return { ran: false };
    }
    try {
      const result = await spec.run({
        instanceId: row.id,
        config: instance.config,
        http: this.http,
        state: stateStore(rt.db, row.id),
        logger: connectorLogger(logger),
      });
      await instanceStore.finishReconcile(rt.db, row.id, intervalMs, { result });
      logger.info({ result }, 'push reconciliation done');
      return { ran: true, result };
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      let next = intervalMs;
      if (isConnectorError(error) && error.kind === 'transient') {
        next = error.retryAfterMs ?? Math.min(intervalMs, RECONCILE_RETRY_MS);
      }
      logger.warn({ reason: message, nextInMs: next }, 'push reconciliation failed');
      await instanceStore.finishReconcile(rt.db, row.id, next, { error: message });
      return { ran: true, error: message };
    }
  }

  /** One turn for one instance. Exposed for tests and for a manual "pull now". */
  async pullInstance(
    row: instanceStore.InstanceRow,
  ): Promise<{ stored: number; duplicates: number; error?: string }> {
    // A poll has no inbound request: each turn is the root of a trace its notifications continue.
    return withSpan('switchyard.pull', { parent: null, attributes: { 'switchyard.instance': row.id } }, () =>
      this.pullTurn(row),
    );
  }

  private async pullTurn(
    row: instanceStore.InstanceRow,
  ): Promise<{ stored: number; duplicates: number; error?: string }> {
    const { rt } = this;
    const logger = rt.logger.child({ instance: row.id, job: 'pull' });
    const instance = await rt.loadInstance(row.id, true).catch(() => undefined);
    const pull = instance?.connector.pull;
    if (!instance || !pull) {
      await instanceStore.finishPull(
        rt.db,
        row.id,
        3_600_000,
        instance ? null : 'the instance cannot be loaded',
      );
      return { stored: 0, duplicates: 0 };
    }
    const interval = instance.row.pull_interval_ms ?? pull.defaultIntervalMs;
    let cursor = instance.row.pull_cursor;
    let stored = 0;
    let duplicates = 0;
    try {
      for (let turn = 0; turn < MAX_BATCHES_PER_TURN; turn++) {
        const batch = await pull.fetch(
          {
            instanceId: row.id,
            config: instance.config,
            http: this.http,
            state: stateStore(rt.db, row.id),
            logger: connectorLogger(logger),
          },
          cursor,
        );
        const now = new Date();
        const items: inboundStore.NewInbound[] = batch.notifications.map((n) => ({
          id: newId(),
          instanceId: row.id,
          route: 'pull',
          dedupeKey: n.dedupeKey,
          vendorType: n.type,
          orderingKey: n.orderingKey ?? null,
          occurredAt: n.occurredAt ?? null,
          gate: n.gate === true,
          payload: n.payload,
          meta: n.meta ?? null,
          bodyId: null,
          headers: null,
          sourceIp: null,
          origin: 'pull',
          receivedAt: now,
          traceparent: currentTraceparent() ?? null,
        }));
        const times = batch.notifications
          .map((n) => (n.occurredAt ? Date.parse(n.occurredAt) : Number.NaN))
          .filter((t) => !Number.isNaN(t));
        const lag = times.length > 0 ? Math.max(0, now.getTime() - Math.min(...times)) : null;
        const inserted = await rt.db.transaction().execute(async (trx) => {
          // The same statement as a push's (no bodies): rows, last_message_at and the wake-up together.
          const rows = await inboundStore.storeInbound(trx, items, [], [row.id]);
          await instanceStore.savePullCursor(trx, row.id, batch.cursor, lag);
          return rows.length;
        });
        if (inserted > 0) rt.wakeNormalize();
        stored += inserted;
        duplicates += items.length - inserted;
        if (batch.cursor !== undefined) cursor = batch.cursor;
        if (!batch.more) break;
      }
      await instanceStore.finishPull(rt.db, row.id, interval, null);
      return { stored, duplicates };
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      const failures = instance.row.pull_consecutive_failures + 1;
      let next = Math.min(interval * 2 ** Math.min(failures, 10), Math.max(interval, 300_000));
      if (isConnectorError(error) && error.retryAfterMs !== undefined)
        next = Math.max(next, error.retryAfterMs);
      logger.warn({ reason: message, failures, nextInMs: next }, 'vendor pull failed');
      await instanceStore.finishPull(rt.db, row.id, next, `pull failed: ${message}`);
      return { stored, duplicates, error: message };
    }
  }
}
