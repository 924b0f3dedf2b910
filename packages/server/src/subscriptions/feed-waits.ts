/**
 * The pull feed's long-polls of one process: who waits for which subscription, bounded in number,
 * woken by `CHANNEL_FEED` (sent by whichever process stored matching events, heard on the host's
 * LISTEN connection), by a timer, by the reader going away, or by the process closing.
 */
import { HttpError } from '../admin/http.ts';
import { CHANNEL_FEED } from '../storage/queues.ts';

/** How the host's LISTEN connection is asked to run a handler (`HubListener.listen`). */
export type Listen = (channel: string, handler: (payload: string | undefined) => void) => Promise<unknown>;

/** Why {@link FeedWait.next} returned. */
export type WaitOutcome = 'woken' | 'timeout' | 'ended';

/** Seconds a reader refused for a full process is asked to wait before trying again. */
const FULL_RETRY_AFTER_SECONDS = 1;

/**
 * One long-poll's place: taken before its first read, so a NOTIFY that arrives between a read and
 * the wait is not lost (it is remembered, and the next {@link next} returns at once).
 */
export class FeedWait {
  /** A wake-up arrived while nobody waited: the next wait returns at once. */
  private pending = false;
  private settle: ((outcome: WaitOutcome) => void) | undefined;
  /** Set once the process closes: every wait returns at once from then on. */
  ended = false;

  readonly subscriptionId: string;
  private readonly owner: FeedWaits;

  constructor(subscriptionId: string, owner: FeedWaits) {
    this.subscriptionId = subscriptionId;
    this.owner = owner;
  }

  /** Marks it woken (a NOTIFY for its subscription, a reconnect, the process closing). */
  wake(outcome: 'woken' | 'ended' = 'woken'): void {
    if (outcome === 'ended') this.ended = true;
    if (this.settle) this.settle(outcome);
    else this.pending = true;
  }

  /**
   * Resolves when woken, after `ms`, or when `signal` aborts or the process closes ('ended').
   *
   * @example
   * ```ts
   * const outcome = await wait.next(5000, request.signal); // 'woken' | 'timeout' | 'ended'
   * ```
   */
  next(ms: number, signal: AbortSignal): Promise<WaitOutcome> {
    if (this.ended || signal.aborted) return Promise.resolve('ended');
    if (this.pending) {
      this.pending = false;
      return Promise.resolve('woken');
    }
    return new Promise<WaitOutcome>((resolve) => {
      const done = (outcome: WaitOutcome) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', aborted);
        this.settle = undefined;
        resolve(outcome);
      };
      const aborted = () => done('ended');
      const timer = setTimeout(() => done('timeout'), Math.max(0, ms));
      signal.addEventListener('abort', aborted, { once: true });
      this.settle = done;
    });
  }

  /** Gives the place back (always, in a `finally`). */
  leave(): void {
    this.owner.leave(this);
  }
}

/**
 * The long-polls of this process. LISTENs on `CHANNEL_FEED` at the first wait (a process whose
 * readers never wait listens to nothing more). A payload lists the subscriptions served new events;
 * '' (too many to list) or a reconnect of the LISTEN connection (notifications may have been missed)
 * wakes every wait, each of which reads its page again.
 *
 * @example
 * ```ts
 * const waits = new FeedWaits(host.listener.listen.bind(host.listener), 1000, 100);
 * const wait = await waits.enter('erp'); // throws 503 SY_HTTP_FEED_WAITERS_FULL when 1000 wait, or 100 of 'erp'
 * try { await wait.next(30_000, signal); } finally { wait.leave(); }
 * ```
 */
export class FeedWaits {
  private readonly bySubscription = new Map<string, Set<FeedWait>>();
  private count = 0;
  private listening: Promise<unknown> | undefined;
  private closed = false;

  private readonly listen: Listen;
  private readonly max: number;
  private readonly perSubscription: number;

  /**
   * `max` waits in the process, at most `perSubscription` of them for one subscription (default
   * `max`): one reader's credential, a buggy loop or a hostile subscriber, would otherwise take
   * every place, and every other subscription's long-polls were refused 503 while it held them.
   */
  constructor(listen: Listen, max: number, perSubscription: number = max) {
    this.listen = listen;
    this.max = max;
    this.perSubscription = perSubscription;
  }

  /** Long-polls waiting in this process now. */
  get waiting(): number {
    return this.count;
  }

  /**
   * Takes a place for a long-poll of `subscriptionId`, once the LISTEN is in place. Throws 503
   * `SY_HTTP_FEED_WAITERS_FULL` (with `Retry-After`) when {@link max} already wait, or
   * `perSubscription` of this subscription.
   */
  async enter(subscriptionId: string): Promise<FeedWait> {
    if (this.count >= this.max)
      throw new HttpError(
        'SY_HTTP_FEED_WAITERS_FULL',
        `this hub process holds ${this.max} waiting feed reads, as many as it allows; retry shortly (or without wait)`,
        { headers: { 'retry-after': String(FULL_RETRY_AFTER_SECONDS) } },
      );
    let set = this.bySubscription.get(subscriptionId);
    if (set && set.size >= this.perSubscription)
      throw new HttpError(
        'SY_HTTP_FEED_WAITERS_FULL',
        `this hub process holds ${this.perSubscription} waiting feed reads of this subscription, as many as one subscription may have; retry shortly (or without wait)`,
        { headers: { 'retry-after': String(FULL_RETRY_AFTER_SECONDS) } },
      );
    const wait = new FeedWait(subscriptionId, this);
    this.count++;
    if (!set) {
      set = new Set();
      this.bySubscription.set(subscriptionId, set);
    }
    set.add(wait);
    if (this.closed) wait.wake('ended');
    try {
      this.listening ??= this.listen(CHANNEL_FEED, (payload) => this.heard(payload));
      await this.listening;
    } catch (error) {
      this.listening = undefined;
      wait.leave();
      throw error;
    }
    return wait;
  }

  /** Removes a wait (its reader was answered or went away). */
  leave(wait: FeedWait): void {
    const set = this.bySubscription.get(wait.subscriptionId);
    if (!set?.delete(wait)) return;
    this.count--;
    if (set.size === 0) this.bySubscription.delete(wait.subscriptionId);
  }

  /** A `CHANNEL_FEED` payload (undefined: the LISTEN connection came back). */
  heard(payload: string | undefined): void {
    if (!payload) {
      for (const set of this.bySubscription.values()) for (const wait of set) wait.wake();
      return;
    }
    for (const id of payload.split(',')) for (const wait of this.bySubscription.get(id) ?? []) wait.wake();
  }

  /**
   * The process is closing: every wait ends now (its reader is answered an empty page at once),
   * and later ones do not wait.
   */
  close(): void {
    this.closed = true;
    for (const set of this.bySubscription.values()) for (const wait of set) wait.wake('ended');
  }
}
