import { isConnectorError, type VendorHttp } from '@switchyard/core';
import type pino from 'pino';
import { collectSecretValues } from '../delivery/redact.ts';
import { unstorableReason } from '../inbound/storable.ts';
import * as inboundStore from '../inbound/store.ts';
import * as instanceStore from '../instances/store.ts';
import { connectorLogger, secretScrubber } from '../logging/logger.ts';
import { type Executor, newId } from '../storage/db.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';
import { currentTraceparent, currentTracestate, withSpan } from '../telemetry/tracing.ts';
import { PullSpool, spoolFix } from './pull-spool.ts';
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
/** How soon a push instance whose reconciliation does not apply (now) is looked at again. */
const RECONCILE_RECHECK_MS = 60 * 60_000;
/** How soon a reconciliation that failed transiently (without a Retry-After) is tried again. */
const RECONCILE_RETRY_MS = 5 * 60_000;
/**
 * The longest a pull turn the spool refused waits for the next (its interval when longer). The
 * vendor was not asked, so its backoff does not apply: an instance whose spool was refused for a
 * while (the backoff doubled to five minutes, kept in the database across restarts) pulled nothing
 * for up to five more minutes after the volume was mounted and the process restarted.
 */
const SPOOL_RETRY_MS = 30_000;

/** The spool refused the check before a fetch: nothing was asked of the vendor. */
class SpoolRefused extends Error {}

/**
 * A batch the vendor has handed over, until it is stored. Docplanner's pull is destructive (a
 * pulled notification is gone from its queue), so until then this and its spool file are the only
 * copies there are.
 */
interface PulledBatch {
  items: inboundStore.NewInbound[];
  /** The instance's cursor the batch was fetched from. */
  from: string | null;
  /** The cursor to save with it; undefined: the vendor's answer leaves the cursor as it is. */
  cursor: string | null | undefined;
  /** How old its oldest notification was when it arrived, ms (the instance's pull lag). */
  lagMs: number | null;
  /** Its copy in the pull spool, removed once it is stored; undefined: the disk refused it. */
  spoolFile?: string | undefined;
}

/**
 * A turn's lease, as the turn knows it: the holder its claim named (this hub's session tag), and
 * whether the turn has learnt it lost it (a renewal or its cursor's save found another holder: this
 * process looked gone, its sessions ended while it was alive, or its lease lapsed). A turn that lost
 * it fetches nothing more, and its writes are fenced (instances/store.ts, `heldBy`).
 */
interface TurnLease {
  readonly holder: string;
  lost: boolean;
}

/**
 * The vendor pull poller. Each instance in `pull`/`both` mode whose connector can pull is a row
 * with a due time; one process at a time leases it (SKIP LOCKED), fetches, stores each batch with
 * its cursor in ONE transaction before fetching again, and schedules the next turn. A batch whose
 * store fails is held in this process and stored before the next fetch ({@link PulledBatch}: the
 * vendor may no longer have it), and every batch is on disk from its arrival until it is stored
 * (the pull spool, pipeline/pull-spool.ts: a crash loses nothing the vendor handed over); one
 * Postgres refuses for some of its notifications is stored with
 * those altered into a storable form. Push instances of connectors that reconcile (Docplanner's
 * release) are scheduled the same way, on their own columns. A pass claims what is due up to {@link MAX_TURNS} in progress and starts it without
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
  /**
   * Per instance, the pulled batches whose store failed, oldest first: the instance's next turn in
   * this process stores them before it fetches anything new.
   */
  private readonly held = new Map<string, PulledBatch[]>();
  /**
   * Turns cut short by a database outage that could not give their lease back, by job and
   * instance, with the time their lease runs out: given back at the next pass the database answers
   * (while the lease is still this process's), so the instance is due again at once instead of
   * after the rest of its lease.
   */
  private readonly unreleased = new Map<string, { job: 'pull' | 'reconcile'; id: string; until: number }>();

  /** Pulled batches on disk until stored: what a crash leaves there is stored at the next start. */
  private readonly spool: PullSpool;
  /** Whether what an earlier process left in the spool has been stored (done at the first pass the database answers). */
  private spoolReplayed = false;
  /** Whether reading the spool's directory failed (logged once). */
  private spoolUnreadable = false;
  /** Whether the spool refused its last check (reported once at error level until it passes again). */
  private spoolRefused = false;
  /** Whether the spool refused its last check ({@link Hub.pullSpoolRefused}). */
  get spoolRefusing(): boolean {
    return this.spoolRefused;
  }
  /** Whether the first pass with pull instances checked the spool. */
  private spoolChecked = false;

  constructor(rt: Runtime, http: VendorHttp) {
    this.rt = rt;
    this.http = http;
    this.spool = new PullSpool(rt.options.pullSpoolDir, rt.databaseUrl, rt.cipher);
  }

  async tick(): Promise<TickResult> {
    if (!this.spoolReplayed) await this.replaySpool();
    // Checked at the first pass with pull instances, not only at their next turn: after a restart
    // a failing instance's backoff (up to five minutes) would hold back the start's error line.
    if (
      !this.spoolChecked &&
      (await instanceStore.nextPullDue(this.rt.db, this.rt.options.pullLeaseMs)) !== undefined
    ) {
      this.spoolChecked = true;
      await this.checkSpool().catch(() => {});
    }
    await this.giveBackLeases();
    const connectors = this.reconcilingConnectors();
    const pullRoom = MAX_TURNS - this.pulling.size;
    const reconcileRoom = MAX_TURNS - this.reconciling.size;
    const [due, reconcile] = await Promise.all([
      pullRoom > 0
        ? instanceStore.claimDuePulls(this.rt.db, this.rt.options.pullLeaseMs, pullRoom, this.rt.sessionTag)
        : [],
      reconcileRoom > 0
        ? instanceStore.claimDueReconciles(
            this.rt.db,
            connectors,
            this.rt.options.pullLeaseMs,
            reconcileRoom,
            this.rt.sessionTag,
          )
        : [],
    ]);
    for (const row of due) this.run(this.pulling, row, 'pull', (lease) => this.pullInstance(row, lease));
    for (const row of reconcile)
      this.run(this.reconciling, row, 'reconcile', (lease) => this.reconcileInstance(row, lease));
    if (due.length > 0 || reconcile.length > 0) return { busy: true };
    const [pullAt, reconcileAt] = await Promise.all([
      instanceStore.nextPullDue(this.rt.db, this.rt.options.pullLeaseMs),
      instanceStore.nextReconcileDue(this.rt.db, connectors, this.rt.options.pullLeaseMs),
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
   * instance due at once for whichever process runs next, instead of holding its lease. Then
   * batches still held (their store failed) are tried once more; what cannot be stored stays in
   * the pull spool for the next start (only a batch the spool refused too is logged lost).
   */
  async drain(): Promise<void> {
    this.stopping = true;
    while (this.pulling.size + this.reconciling.size > 0)
      await Promise.allSettled([...this.pulling, ...this.reconciling]);
    await this.storeHeldAtStop();
  }

  /**
   * Gives back the leases of turns a database outage cut short ({@link unreleased}), each due again
   * at once, while they are still this process's; a lease that ran out meanwhile is another
   * process's to take. Throws when the database does not answer (the pass fails, as its claim would).
   */
  private async giveBackLeases(): Promise<void> {
    for (const [key, lease] of this.unreleased) {
      if (Date.now() >= lease.until) {
        this.unreleased.delete(key);
        continue;
      }
      const note = 'the turn was cut short by a database outage';
      // A reconciliation is due again in as long as its lease would have held it (Docplanner's
      // release answers 429 more often than once an hour): given back for the record only.
      const holder = this.rt.sessionTag;
      // The database's failure, not the vendor's: not counted as a failed poll.
      if (lease.job === 'pull')
        await instanceStore.finishPull(this.rt.db, lease.id, 0, `pull failed: ${note}`, holder, false);
      else
        await instanceStore.finishReconcile(
          this.rt.db,
          lease.id,
          RECONCILE_RETRY_MS,
          { error: note },
          holder,
        );
      this.unreleased.delete(key);
    }
  }

  /** Starts one turn, tracked in `set` until it ends; its end wakes the loop to claim the next. */
  private run(
    set: Set<Promise<void>>,
    row: instanceStore.InstanceRow,
    job: 'pull' | 'reconcile',
    turn: (lease: TurnLease) => Promise<unknown>,
  ): void {
    // Leased by the claim that just returned, for pullLeaseMs from about now, and renewed every
    // third of it while the turn runs: a process killed in a turn holds its instance only that long
    // (it was a fixed five minutes: a worker killed mid-rollout stopped an instance's pulls for
    // five). `until` is when this process's lease surely still holds, for the give-back.
    const leaseMs = this.rt.options.pullLeaseMs;
    let until = Date.now() + (leaseMs * 2) / 3;
    const lease: TurnLease = { holder: this.rt.sessionTag, lost: false };
    const renewals = setInterval(() => {
      const at = Date.now();
      instanceStore.renewTurnLease(this.rt.db, job, row.id, leaseMs, lease.holder).then(
        (leased) => {
          if (leased) until = at + (leaseMs * 2) / 3;
          else lease.lost = true;
        },
        // An outage: the turn's own statements fail too; once the lease lapses another process
        // may run the next turn, as it would after a crash.
        () => {},
      );
    }, leaseMs / 3);
    renewals.unref();
    const running: Promise<void> = turn(lease)
      .then(
        () => {},
        (error: unknown) => {
          // A vendor's failure is recorded by the turn itself; what reaches here is the database's
          // (the turn could not record its end): its lease is given back once the database answers.
          const logger = this.rt.logger.child({ instance: row.id, job });
          if (isDatabaseUnavailable(error)) {
            this.unreleased.set(`${job}:${row.id}`, { job, id: row.id, until });
            reportDatabaseUnavailable(logger, error, `the ${job} turn is tried again once it is back`);
          } else logger.warn({ err: error }, `${job} turn failed; tried again when its lease ends`);
        },
      )
      .finally(() => {
        clearInterval(renewals);
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
   * failures are tried again after {@link RECONCILE_RETRY_MS}. Exposed for tests and a manual run
   * (without `lease`: its end is written whoever holds the instance's lease).
   */
  async reconcileInstance(
    row: instanceStore.InstanceRow,
    lease?: TurnLease,
  ): Promise<{ ran: boolean; result?: string; error?: string }> {
    const { rt } = this;
    const logger = rt.logger.child({ instance: row.id, job: 'reconcile' });
    const instance = await rt.loadInstance(row.id, true).catch(() => undefined);
    const spec = instance?.connector.reconcile;
    const intervalMs = instance && spec ? spec.intervalMs(instance.config) : undefined;
    if (!instance || !spec || intervalMs === undefined || instance.row.mode !== 'push') {
      // Not for this instance as configured now: look again later (settings may change).
      await instanceStore.finishReconcile(rt.db, row.id, RECONCILE_RECHECK_MS, undefined, lease?.holder);
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
      await instanceStore.finishReconcile(rt.db, row.id, intervalMs, { result }, lease?.holder);
      logger.info({ result }, 'push reconciliation done');
      return { ran: true, result };
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      let next = intervalMs;
      if (isConnectorError(error) && error.kind === 'transient') {
        next = error.retryAfterMs ?? Math.min(intervalMs, RECONCILE_RETRY_MS);
      }
      logger.warn({ reason: message, nextInMs: next }, 'push reconciliation failed');
      await instanceStore.finishReconcile(rt.db, row.id, next, { error: message }, lease?.holder);
      return { ran: true, error: message };
    }
  }

  /**
   * One turn for one instance, under `lease` (a claimed turn's). Exposed for tests and for a
   * manual "pull now", which holds no lease: its writes are made whoever holds it.
   */
  async pullInstance(
    row: instanceStore.InstanceRow,
    lease?: TurnLease,
  ): Promise<{ stored: number; duplicates: number; error?: string }> {
    // A poll has no inbound request: each turn is the root of a trace its notifications continue.
    return withSpan('switchyard.pull', { parent: null, attributes: { 'switchyard.instance': row.id } }, () =>
      this.pullTurn(row, lease),
    );
  }

  private async pullTurn(
    row: instanceStore.InstanceRow,
    lease: TurnLease | undefined,
  ): Promise<{ stored: number; duplicates: number; error?: string }> {
    const { rt } = this;
    const logger = rt.logger.child({ instance: row.id, job: 'pull' });
    let loadError: unknown;
    const instance = await rt.loadInstance(row.id, true).catch((error: unknown) => {
      loadError = error;
      return undefined;
    });
    const pull = instance?.connector.pull;
    if (!instance || !pull) {
      const held = this.held.get(row.id);
      if (held && !instance && loadError === undefined) {
        // The instance was removed: nothing will pull (or store) for it again.
        this.held.delete(row.id);
        this.reportLost(row.id, held, 'its instance was removed');
        for (const batch of held) await this.unspool(batch, logger);
      }
      // Held notifications wait for a turn that can store them: not an hour after a failed read.
      const retry = loadError !== undefined && this.held.has(row.id);
      await instanceStore.finishPull(
        rt.db,
        row.id,
        retry ? this.backoffMs(row, row.pull_interval_ms ?? 30_000) : 3_600_000,
        instance ? null : 'the instance cannot be loaded',
        lease?.holder,
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
    // Batches the vendor has handed over and that are not stored yet, oldest first: those an
    // earlier turn could not store, then the one just fetched. Each is stored before anything new
    // is fetched; on a failure they go back to `held`, never dropped.
    const waiting = this.takeHeld(row.id);
    const storeWaiting = async () => {
      while (waiting.length > 0) {
        const result = await this.storeBatch(row.id, waiting[0]!, cursor, logger, lease);
        await this.unspool(waiting.shift()!, logger);
        if (result.inserted > 0) rt.announceInbound();
        stored += result.inserted;
        duplicates += result.duplicates;
        cursor = result.cursor;
      }
    };
    try {
      // Nothing is taken from the vendor while what it handed over earlier cannot be stored: the
      // first failed store ends the turn here, before the next fetch.
      await storeWaiting();
      for (let turn = 0; turn < MAX_BATCHES_PER_TURN; turn++) {
        // Nor once another process holds the turn: it fetches for itself.
        if (lease?.lost) break;
        // Nor while it could not be kept on disk: a destructive queue's notification would then
        // live in this process's memory only.
        await this.checkSpool();
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
          tracestate: currentTracestate() ?? null,
        }));
        const times = batch.notifications
          .map((n) => (n.occurredAt ? Date.parse(n.occurredAt) : Number.NaN))
          .filter((t) => !Number.isNaN(t));
        const lagMs = times.length > 0 ? Math.max(0, now.getTime() - Math.min(...times)) : null;
        // On disk before anything else: from here on a crash loses nothing the vendor handed over.
        const spoolFile = items.length > 0 ? await this.spoolBatch(row.id, items, logger) : undefined;
        waiting.push({ items, from: cursor, cursor: batch.cursor, lagMs, spoolFile });
        await storeWaiting();
        more = batch.more && batch.notifications.length > 0;
        if (!batch.more || this.stopping || lease?.lost) break;
      }
      if (lease?.lost)
        logger.warn(
          { stored },
          'pull turn ended: another process took its lease over (this one looked gone to it: were its database sessions ended?)',
        );
      await instanceStore.finishPull(rt.db, row.id, more ? 0 : interval, null, lease?.holder);
      return { stored, duplicates };
    } catch (error) {
      // Stored on the instance (its health, the API, the dashboard) and returned to a manual pull:
      // a connector whose message quotes the vendor ("Invalid key <key>") must not store a secret
      // of the instance there, as a command's error does not (commands.ts).
      const message = secretScrubber(collectSecretValues(instance.config, instance.connector.configSchema), {
        cutEnds: true,
      })((error as Error)?.message ?? String(error));
      const backoff = this.backoffMs(instance.row, interval, error);
      const next =
        error instanceof SpoolRefused ? Math.min(backoff, Math.max(interval, SPOOL_RETRY_MS)) : backoff;
      const failures = instance.row.pull_consecutive_failures + 1;
      const count = waiting.reduce((n, b) => n + b.items.length, 0);
      if (count === 0) {
        logger.warn({ reason: message, failures, nextInMs: next }, 'vendor pull failed');
        await instanceStore.finishPull(rt.db, row.id, next, `pull failed: ${message}`, lease?.holder);
        return { stored, duplicates, error: message };
      }
      // The store failed, not the vendor: what it handed over stays in this process and is stored
      // first by the next turn (the vendor no longer has it). Logged before finishPull, which
      // fails too while the database is down.
      this.hold(row.id, waiting);
      const held = this.heldCount(row.id);
      // The hub's own database refused the batch (a full disk, out of memory, a refused session),
      // not the vendor: the next try comes at the instance's interval, not doubled per failure, so
      // that what the vendor handed over is stored soon after the database takes it again. The
      // condition is reported (and counted) as every caller's is; the warning that this process
      // holds the only copy stays, once per turn, without the stack.
      // Nor is it counted as a failed poll (the vendor answered): `SwitchyardPullFailing` stays for
      // the vendor, beside the database's own alert; the instance's last error says what is held.
      const databaseFault = isDatabaseUnavailable(error);
      const nextTry = databaseFault ? Math.min(interval, next) : next;
      if (databaseFault) {
        reportDatabaseUnavailable(
          logger,
          error,
          `${held} pulled notifications not stored: held in this process and the pull spool, stored before the next fetch`,
        );
        const { code, message } = error as { code?: unknown; message?: unknown };
        logger.warn(
          {
            dbError: { code, message: String(message ?? error) },
            held,
            failures: instance.row.pull_consecutive_failures,
            nextInMs: nextTry,
          },
          `${held} pulled notifications not stored: held in this process and stored before the next fetch`,
        );
      } else
        logger.warn(
          { err: error, held, failures, nextInMs: next },
          `${held} pulled notifications not stored: held in this process and stored before the next fetch`,
        );
      await instanceStore.finishPull(
        rt.db,
        row.id,
        nextTry,
        `pull failed: ${held} pulled notifications waiting to be stored (the vendor no longer has them): ${message}`,
        lease?.holder,
        !databaseFault,
      );
      return { stored, duplicates, error: message };
    }
  }

  /**
   * The turn's backoff after a failure: the interval doubled per consecutive failure, at most
   * five minutes (or the interval, when longer), and never before a vendor's Retry-After.
   */
  private backoffMs(row: instanceStore.InstanceRow, interval: number, error?: unknown): number {
    const failures = row.pull_consecutive_failures + 1;
    const next = Math.min(interval * 2 ** Math.min(failures, 10), Math.max(interval, 300_000));
    if (isConnectorError(error) && error.retryAfterMs !== undefined)
      return Math.max(next, error.retryAfterMs);
    return next;
  }

  /**
   * Stores one pulled batch with its cursor in one transaction. The cursor is saved only when the
   * instance's is still the one the batch was fetched from (`current`): a batch held since an
   * earlier turn must not move back a cursor a later turn (another process's) moved on. A batch
   * Postgres refuses as a whole because of some of its notifications is stored again one
   * notification at a time, those altered into a storable form (`storeInboundEach`): a pull cannot
   * refuse them, as a push does (400), since the vendor no longer has them. `current` undefined:
   * the notifications only, neither cursor nor pull health (the last try at shutdown, without the
   * instance's lease). The cursor is not saved once another process holds the turn's `lease`
   * (marked lost): the notifications are stored all the same (the vendor may no longer have them).
   * Returns the instance's cursor after it.
   */
  private async storeBatch(
    instanceId: string,
    batch: PulledBatch,
    current: string | null | undefined,
    logger: pino.Logger,
    lease?: TurnLease,
  ): Promise<{ inserted: number; duplicates: number; cursor: string | null }> {
    const { rt } = this;
    const keepsPosition = current !== undefined;
    const moves = keepsPosition && batch.from === current && batch.cursor !== undefined;
    const position = async (trx: Executor) => {
      if (
        keepsPosition &&
        !(await instanceStore.savePullCursor(
          trx,
          instanceId,
          moves ? batch.cursor : undefined,
          batch.lagMs,
          lease?.holder,
        )) &&
        lease
      )
        lease.lost = true;
    };
    // Before the newer notifications of their keys another process stored meanwhile (a batch held
    // through an outage, or restored from the spool): normalized in the vendor's order.
    let moved = 0;
    const queueBefore = async (trx: Executor) => {
      moved = await inboundStore.queueBefore(trx, instanceId, batch.items);
    };
    let inserted: number;
    try {
      inserted = await rt.db.transaction().execute(async (trx) => {
        // The same statement as a push's (no bodies): rows and last_message_at, with the cursor.
        const rows = await inboundStore.storeInbound(trx, batch.items, [], [instanceId]);
        await queueBefore(trx);
        await position(trx);
        return rows.length;
      });
    } catch (error) {
      const reason = unstorableReason(error);
      if (reason === undefined) throw error;
      const { stored, altered } = await rt.db.transaction().execute(async (trx) => {
        const result = await inboundStore.storeInboundEach(trx, batch.items, [instanceId]);
        await queueBefore(trx);
        await position(trx);
        if (result.altered.length > 0) {
          // Shown as the instance's last error (health, dashboard): the payloads were changed.
          const first = result.altered[0]!;
          await instanceStore.recordInstanceError(
            trx,
            instanceId,
            `pull: ${result.altered.length} pulled notification(s) Postgres refused were stored altered ` +
              `(message ${first.id}, ${first.vendorType}, stored ${first.storedAs}): ${first.reason}`,
          );
        }
        return result;
      });
      for (const a of altered)
        logger.warn(
          { inbound: a.id, vendorType: a.vendorType, storedAs: a.storedAs, reason: a.reason },
          `a pulled notification Postgres refused was stored ${a.storedAs} (meta.unstorable says why)`,
        );
      inserted = stored.length;
    }
    if (moved > 0)
      logger.info(
        { moved, notifications: batch.items.length },
        `pulled notifications stored late: ${moved} newer notifications of their ordering keys, stored meanwhile, now wait behind them`,
      );
    return {
      inserted,
      duplicates: batch.items.length - inserted,
      cursor: moves ? (batch.cursor ?? null) : (current ?? null),
    };
  }

  /** Takes the batches held for an instance, oldest first (a turn running beside sees none). */
  private takeHeld(instanceId: string): PulledBatch[] {
    const held = this.held.get(instanceId) ?? [];
    this.held.delete(instanceId);
    return held;
  }

  /** Gives unstored batches back, before any another turn of the instance held meanwhile. */
  private hold(instanceId: string, batches: readonly PulledBatch[]): void {
    if (batches.length === 0) return;
    this.held.set(instanceId, [...batches, ...(this.held.get(instanceId) ?? [])]);
  }

  private heldCount(instanceId: string): number {
    return (this.held.get(instanceId) ?? []).reduce((n, b) => n + b.items.length, 0);
  }

  /** Logs held notifications that will never be stored: an error, since the vendor no longer has them. */
  /** Pulled notifications this process lost (held unstored when it stopped, or its instance removed). */
  lostCount = 0;

  private reportLost(instanceId: string, batches: readonly PulledBatch[], why: string): void {
    const items = batches.flatMap((b) => b.items);
    this.lostCount += items.length;
    this.rt.logger.error(
      {
        instance: instanceId,
        job: 'pull',
        lost: items.length,
        // What identifies them to the vendor, for a manual recovery; not the payloads (patient data).
        notifications: items.map((i) => ({
          vendorType: i.vendorType,
          occurredAt: i.occurredAt,
          dedupeKey: i.dedupeKey,
        })),
      },
      `${items.length} pulled notifications lost: ${why}, and the vendor no longer has them`,
    );
  }

  /**
   * Writes a batch the vendor just handed over to the spool. The disk refusing now (it was
   * writable before the fetch) does not drop the batch: it is stored from memory as before, and
   * the error says a crash before then would lose it.
   */
  private async spoolBatch(
    instanceId: string,
    items: inboundStore.NewInbound[],
    logger: pino.Logger,
  ): Promise<string | undefined> {
    try {
      return await this.spool.write(instanceId, items);
    } catch (error) {
      logger.error(
        { err: error, dir: this.spool.dir, notifications: items.length },
        'pulled notifications could not be written to the pull spool: held in memory only until stored',
      );
      return undefined;
    }
  }

  /** Removes a stored batch's spool file; a failure leaves a copy that is stored once more (deduplicated). */
  private async unspool(batch: PulledBatch, logger: pino.Logger): Promise<void> {
    if (batch.spoolFile === undefined) return;
    await this.spool.remove(batch.spoolFile).catch((error: unknown) => {
      logger.warn(
        { err: error, file: batch.spoolFile },
        'a stored batch could not be removed from the pull spool',
      );
    });
  }

  /**
   * The check before each fetch (and at the first pass): while the spool refuses, no pull of this
   * process fetches. Each turn's warning says so in its instance's health, but a container whose
   * config directory (where the spool is by default) is a read-only mount started with only those,
   * at warn level, its `/readyz` green: the refusal is logged once at error level with the fix,
   * and again after the spool passed meanwhile.
   */
  private async checkSpool(): Promise<void> {
    try {
      await this.spool.ensure();
    } catch (error) {
      const message = `the pull spool ${this.spool.dir} cannot be written (workers.pullSpoolDir): ${(error as Error).message}`;
      if (!this.spoolRefused)
        this.rt.logger.error(
          { dir: this.spool.dir, setting: 'workers.pullSpoolDir' },
          `${message}: no pull instance of this process takes anything from its vendor until it can; ${spoolFix(this.spool.root)}`,
        );
      this.spoolRefused = true;
      throw new SpoolRefused(message);
    }
    if (this.spoolRefused)
      this.rt.logger.info({ dir: this.spool.dir }, 'the pull spool can be written again: pulls go on');
    this.spoolRefused = false;
  }

  /**
   * Stores what an earlier process left in the pull spool (killed, or stopped while the database
   * was down), before this one pulls or normalizes anything (`hub.start` calls it before its loops
   * start, so its normalizer does not take the newer notifications of their keys first; while the
   * database does not answer, each pull pass tries again): each batch without the instance's cursor (the
   * process that fetched it moved or kept that), deduplicated like every pulled notification, then
   * its file removed. A batch of a removed instance is reported lost. Throws while the database
   * does not answer (the pass fails; the next one tries again). Files that cannot be read (another
   * `secretKey`) stay where they are, reported once.
   */
  async replaySpool(): Promise<void> {
    if (this.spoolReplayed) return;
    const logger = this.rt.logger.child({ job: 'pull' });
    let found: Awaited<ReturnType<PullSpool['pending']>>;
    try {
      found = await this.spool.pending();
    } catch (error) {
      // The directory cannot be read: tried again at each pass (logged once), and every pull turn
      // fails before it fetches, saying why in its instance's health. Reconciliations go on.
      if (!this.spoolUnreadable)
        logger.error(
          { err: error, dir: this.spool.dir },
          'the pull spool cannot be read (workers.pullSpoolDir)',
        );
      this.spoolUnreadable = true;
      return;
    }
    const { batches, unreadable } = found;
    for (const batch of batches) {
      const instance = await this.rt.loadInstance(batch.instanceId, true);
      const pulled: PulledBatch = {
        items: batch.items,
        from: null,
        cursor: undefined,
        lagMs: null,
        spoolFile: batch.file,
      };
      if (!instance) {
        this.reportLost(batch.instanceId, [pulled], 'its instance was removed before the spool was stored');
        await this.unspool(pulled, logger);
        continue;
      }
      let result: Awaited<ReturnType<Poller['storeBatch']>>;
      try {
        result = await this.storeBatch(
          batch.instanceId,
          pulled,
          undefined,
          logger.child({ instance: batch.instanceId }),
        );
      } catch (error) {
        // An outage: the whole replay is tried again at the next pass. Anything else would fail
        // the same way at every pass and hold every pull back: the file stays for an operator.
        if (isDatabaseUnavailable(error)) throw error;
        logger.error(
          { err: error, instance: batch.instanceId, file: batch.file },
          'pulled notifications in the pull spool could not be stored: left in place',
        );
        continue;
      }
      await this.unspool(pulled, logger);
      if (result.inserted > 0) this.rt.announceInbound();
      logger.info(
        { instance: batch.instanceId, stored: result.inserted, duplicates: result.duplicates },
        'pulled notifications an earlier process left in the pull spool stored',
      );
    }
    for (const file of unreadable)
      logger.error(
        { file: file.file, reason: file.reason },
        'a pull spool file cannot be read (sealed with another secretKey?): left in place, its notifications are not stored',
      );
    this.spoolReplayed = true;
  }

  /**
   * At shutdown, after the turns ended: one last try to store what is still held (the outage may
   * be over before the next turn was due), without the instance's lease, so without its cursor;
   * what still fails is reported lost.
   */
  private async storeHeldAtStop(): Promise<void> {
    for (const [instanceId, batches] of [...this.held]) {
      this.held.delete(instanceId);
      const logger = this.rt.logger.child({ instance: instanceId, job: 'pull' });
      for (let i = 0; i < batches.length; i++) {
        try {
          const result = await this.storeBatch(instanceId, batches[i]!, undefined, logger);
          await this.unspool(batches[i]!, logger);
          if (result.inserted > 0) this.rt.announceInbound();
          logger.info({ stored: result.inserted }, 'held pulled notifications stored at shutdown');
        } catch (error) {
          const rest = batches.slice(i);
          const kept = rest.filter((b) => b.spoolFile !== undefined);
          const count = kept.reduce((n, b) => n + b.items.length, 0);
          if (kept.length > 0)
            logger.warn(
              { err: error, spooled: count, dir: this.spool.dir },
              `${count} pulled notifications could not be stored at shutdown: kept in the pull spool, stored at the next start`,
            );
          const lost = rest.filter((b) => b.spoolFile === undefined);
          if (lost.length > 0) {
            logger.error({ err: error }, 'held pulled notifications could not be stored at shutdown');
            this.reportLost(instanceId, lost, 'the process stopped before they could be stored');
          }
          break;
        }
      }
    }
  }
}
