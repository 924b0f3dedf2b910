import type pino from 'pino';
import * as deliveryStore from '../deliveries/store.ts';
import * as inboundStore from '../inbound/store.ts';
import type { Executor } from '../storage/db.ts';
import type { HeldLease } from '../storage/queues.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';

/** The two queues whose rows are leased: inbound messages (normalize) and deliveries. */
export type LeasedQueue = 'inbound' | 'deliveries';

/** What the keeper needs from the hub. */
export interface LeaseKeeperOptions {
  db: Executor;
  logger: pino.Logger;
  /** How often held leases are renewed, ms: a third of the shortest lease, so two renewals may fail in a row. */
  renewEveryMs: number;
  /** Called once rows of a queue were given back, so this process's loop claims them again at once. */
  wake(queue: LeasedQueue): void;
}

/** A lease waiting to be given back, with what its release records ({@link LeaseKeeper.giveBack}). */
type GivenBack = HeldLease & { attempt?: deliveryStore.AttemptRecord };

/** Retry pace for giving leases back while the database is unavailable, ms. */
const RELEASE_RETRY_MS = 500;

/**
 * Keeps this process's leases short and alive. Claims lease a row for a short time (the
 * `normalizeLease` and `deliveryLeaseMargin` settings) and the keeper renews the leases of every row
 * still being worked on, in one statement per queue, every third of the shortest lease: a slow
 * normalization or a long subscriber timeout keeps its row, while a process that dies stops
 * renewing and another process takes its work over once the short lease runs out (not after
 * minutes).
 *
 * Work cut short by a database outage (its outcome could not be stored) is {@link giveBack given
 * back}: the keeper retries the release every half second until the database answers, then wakes
 * the loop, so the same live process picks the rows up again as soon as the database is back
 * instead of sitting on them until its leases expire.
 *
 * @example
 * ```ts
 * const leases = new LeaseKeeper({ db, logger, renewEveryMs: 5000, wake: (queue) => loops[queue].wake() });
 * leases.start();
 * leases.hold('inbound', row.id, row.lock_token!, 30_000);
 * // … on success: leases.done('inbound', row.id); on an outage: leases.giveBack('inbound', row.id);
 * await leases.stop();
 * ```
 */
export class LeaseKeeper {
  private readonly options: LeaseKeeperOptions;
  private readonly held: Record<LeasedQueue, Map<string, HeldLease>> = {
    inbound: new Map(),
    deliveries: new Map(),
  };
  private readonly toRelease: Record<LeasedQueue, Map<string, GivenBack>> = {
    inbound: new Map(),
    deliveries: new Map(),
  };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(options: LeaseKeeperOptions) {
    this.options = options;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(this.options.renewEveryMs);
  }

  /** Renews the lease of a claimed row (token of the claim, lease length) until done or given back. */
  hold(queue: LeasedQueue, id: string, lockToken: string, leaseMs: number): void {
    this.held[queue].set(id, { id, lockToken, leaseMs });
  }

  /** The work on a row ended (its outcome stored, or it is left to expire): stop renewing. */
  done(queue: LeasedQueue, id: string): void {
    this.held[queue].delete(id);
  }

  /**
   * The work on a row was cut short by a database outage: give the row back once the database
   * answers. `unsent`: nothing of it reached anyone (a delivery cut short before its POST), so the
   * attempt its claim counted is taken back ({@link HeldLease.unsent}). `attempt`: a delivery's
   * attempt that was sent but not recorded, recorded with the release (`releaseDeliveries`).
   */
  giveBack(
    queue: LeasedQueue,
    id: string,
    how: { unsent?: boolean; attempt?: deliveryStore.AttemptRecord } = {},
  ): void {
    const lease = this.held[queue].get(id);
    this.held[queue].delete(id);
    if (!lease) return;
    this.toRelease[queue].set(id, { ...lease, ...how });
    if (!this.stopped) this.schedule(RELEASE_RETRY_MS);
  }

  /** Rows being renewed now, per queue (tests, metrics). */
  counts(): Record<LeasedQueue, { held: number; toRelease: number }> {
    return {
      inbound: { held: this.held.inbound.size, toRelease: this.toRelease.inbound.size },
      deliveries: { held: this.held.deliveries.size, toRelease: this.toRelease.deliveries.size },
    };
  }

  /**
   * Stops renewing. With `release`, first tries once to give back what is waiting to be given back
   * (a graceful stop); held leases are left to run out, as after a crash.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (opts.release) await this.release().catch(() => {});
  }

  private schedule(delayMs: number): void {
    // A sooner pass replaces a later one.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // One pass at a time: the pass in progress schedules the next when it ends.
      if (this.running) return;
      this.running = this.pass().finally(() => {
        this.running = undefined;
      });
    }, delayMs);
    this.timer.unref?.();
  }

  private async pass(): Promise<void> {
    try {
      await this.release();
      await this.renew();
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        reportDatabaseUnavailable(this.options.logger, error, 'leases are renewed once it is back');
      } else {
        this.options.logger.warn({ err: error }, 'lease renewal failed; retrying');
      }
    }
    if (this.stopped) return;
    const pending = this.toRelease.inbound.size + this.toRelease.deliveries.size;
    this.schedule(pending > 0 ? RELEASE_RETRY_MS : this.options.renewEveryMs);
  }

  private async release(): Promise<void> {
    for (const queue of ['inbound', 'deliveries'] as const) {
      const waiting = [...this.toRelease[queue].values()];
      if (waiting.length === 0) continue;
      const released =
        queue === 'inbound'
          ? await inboundStore.releaseInbound(this.options.db, waiting)
          : await deliveryStore.releaseDeliveries(this.options.db, waiting);
      for (const lease of waiting) this.forget(this.toRelease[queue], lease);
      // A stopping worker gives back the requests its subscribers left unanswered the same way
      // (deliver.ts): said as an outage's end, an operator read a graceful stop as a database outage.
      this.options.logger.info(
        { queue, released, taken: waiting.length - released },
        this.stopped
          ? 'stopping: work cut short by the stop is given back to the queue'
          : 'the database is back: work cut short by the outage is given back to the queue',
      );
      this.options.wake(queue);
    }
  }

  private async renew(): Promise<void> {
    for (const queue of ['inbound', 'deliveries'] as const) {
      const held = [...this.held[queue].values()];
      if (held.length === 0) continue;
      const renewed =
        queue === 'inbound'
          ? await inboundStore.renewInboundLeases(this.options.db, held)
          : await deliveryStore.renewDeliveryLeases(this.options.db, held);
      // Not renewed: finished meanwhile, or the lease ran out and another process took the row
      // (its result will count, ours is refused by the token check). Nothing left to keep.
      for (const lease of held) if (!renewed.has(lease.id)) this.forget(this.held[queue], lease);
    }
  }

  /** Drops `lease` unless the row was claimed again meanwhile (a newer token under the same id). */
  private forget(map: Map<string, HeldLease>, lease: HeldLease): void {
    if (map.get(lease.id)?.lockToken === lease.lockToken) map.delete(lease.id);
  }
}
