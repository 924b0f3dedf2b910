import { isConnectorError, type VendorHttp } from '@switchyard/core';
import * as inboundStore from '../inbound/store.ts';
import * as instanceStore from '../instances/store.ts';
import { connectorLogger } from '../logging/logger.ts';
import { newId } from '../storage/db.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { currentTraceparent, withSpan } from '../telemetry/tracing.ts';
import type { Runtime } from './shared.ts';
import { stateStore } from './stores.ts';
import type { TickResult } from './worker-loop.ts';

// A vendor that keeps saying "more" must not hold a turn forever: the turn ends, the instance is
// due again at once, and the next turn (here or in another process) goes on from the cursor.
const MAX_BATCHES_PER_TURN = 50;
/**
 * Pull turns, and as many reconciliations, one process runs at once. Each runs on its own: a
 * vendor that answers slowly holds its own instance, never another's turn (the loop claims the
 * next due instance while it waits).
 */
const MAX_TURNS = 4;
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
 * columns. A pass claims what is due up to {@link MAX_TURNS} in progress and starts it without
 * waiting for it; a turn's end wakes the loop.
 */
export class Poller {
  private readonly rt: Runtime;
  private readonly http: VendorHttp;
  /** Pull turns and reconciliations in progress in this process. */
  private readonly pulling = new Set<Promise<void>>();
  private readonly reconciling = new Set<Promise<void>>();
  /** Set by {@link drain}: a turn in progress ends after the batch it is storing. */
  private stopping = false;

  constructor(rt: Runtime, http: VendorHttp) {
    this.rt = rt;
    this.http = http;
  }

  async tick(): Promise<TickResult> {
    const connectors = this.reconcilingConnectors();
    const pullRoom = MAX_TURNS - this.pulling.size;
    const reconcileRoom = MAX_TURNS - this.reconciling.size;
    const [due, reconcile] = await Promise.all([
      pullRoom > 0 ? instanceStore.claimDuePulls(this.rt.db, LEASE_MS, pullRoom) : [],
      reconcileRoom > 0
        ? instanceStore.claimDueReconciles(this.rt.db, connectors, LEASE_MS, reconcileRoom)
        : [],
    ]);
    for (const row of due) this.run(this.pulling, row, 'pull', () => this.pullInstance(row));
    for (const row of reconcile)
      this.run(this.reconciling, row, 'reconcile', () => this.reconcileInstance(row));
    if (due.length > 0 || reconcile.length > 0) return { busy: true };
    const [pullAt, reconcileAt] = await Promise.all([
      instanceStore.nextPullDue(this.rt.db),
      instanceStore.nextReconcileDue(this.rt.db, connectors),
    ]);
    const next = [pullAt, reconcileAt].filter((d): d is Date => d !== undefined);
    return {
      busy: false,
      nextDueAt: next.length === 0 ? undefined : new Date(Math.min(...next.map((d) => d.getTime()))),
    };
  }

  /**
   * Waits for the turns in progress, after the loop stopped claiming: a pull turn ends after the
   * batch it is storing (each batch is stored with its cursor, so nothing is lost) and leaves its
   * instance due at once for whichever process runs next, instead of holding its lease.
   */
  async drain(): Promise<void> {
    this.stopping = true;
    while (this.pulling.size + this.reconciling.size > 0)
      await Promise.allSettled([...this.pulling, ...this.reconciling]);
  }

  /** Starts one turn, tracked in `set` until it ends; its end wakes the loop to claim the next. */
  private run(
    set: Set<Promise<void>>,
    row: instanceStore.InstanceRow,
    job: 'pull' | 'reconcile',
    turn: () => Promise<unknown>,
  ): void {
    const running: Promise<void> = turn()
      .then(
        () => {},
        (error: unknown) => {
          // A vendor's failure is recorded by the turn itself; what reaches here is the database's
          // (the turn could not record its end): its lease runs out and the instance is tried again.
          const logger = this.rt.logger.child({ instance: row.id, job });
          if (isDatabaseUnavailable(error))
            reportDatabaseUnavailable(logger, error, `the ${job} turn is tried again when its lease ends`);
          else logger.warn({ err: error }, `${job} turn failed; tried again when its lease ends`);
        },
      )
      .finally(() => {
        set.delete(running);
        this.rt.wakePull();
      });
    set.add(running);
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
    // The vendor said it has more when the turn ended (batch limit, or the process stopping), and
    // its last batch brought something: one that says "more" with nothing in it waits its interval
    // like any other, rather than be called again at once forever.
    let more = false;
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
          // The same statement as a push's (no bodies): rows and last_message_at, with the cursor.
          const rows = await inboundStore.storeInbound(trx, items, [], [row.id]);
          await instanceStore.savePullCursor(trx, row.id, batch.cursor, lag);
          return rows.length;
        });
        if (inserted > 0) rt.announceInbound();
        stored += inserted;
        duplicates += items.length - inserted;
        if (batch.cursor !== undefined) cursor = batch.cursor;
        more = batch.more && batch.notifications.length > 0;
        if (!batch.more || this.stopping) break;
      }
      await instanceStore.finishPull(rt.db, row.id, more ? 0 : interval, null);
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
