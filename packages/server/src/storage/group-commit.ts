/** What `GroupCommit` needs to know about the store it writes to. */
export interface GroupCommitOptions<In, Out> {
  /** Commits running at once at most; a function is read at every scheduling decision. */
  maxInFlight: number | (() => number);
  /**
   * Weight of one commit at most, as the sum of `weight` over its items. A single item heavier
   * than this is still committed, alone.
   */
  maxBatch: number;
  /** How much of `maxBatch` an item uses (default 1: `maxBatch` counts items). */
  weight?: (item: In) => number;
  /**
   * Gather the items written in the same synchronous run of code before committing (one microtask
   * later), so calls made together (`Promise.all` of two look-ups) share one commit even while no
   * commit is running. Default false: an item written alone is committed at once.
   */
  sameTick?: boolean;
  /**
   * How long an item waits for others before a commit starts for it, in ms (default 0: at once).
   * For writes nobody is waiting on: each statement has a fixed cost (its transaction, its plan,
   * its commit) that a batch shares. The wait ends early once `maxBatch` is queued or at
   * {@link GroupCommit.commitQueued}; items written while a commit runs go in the next one as soon as it
   * ends, as without a wait.
   */
  lingerMs?: number;
  /**
   * Stores `items` in one go and returns one result per item, in the same order. Throwing fails
   * the whole batch; each item is then retried alone so only the bad ones reject.
   */
  commit: (items: In[]) => Promise<Out[]>;
}

interface Pending<In, Out> {
  item: In;
  resolve(result: Out): void;
  reject(error: unknown): void;
}

/**
 * Group commit: concurrent writers share one statement (or transaction) instead of paying a round
 * trip and a COMMIT each. There is no timer: an item written while fewer than `maxInFlight` commits
 * run is committed at once, alone; items written while the commits are busy queue up and go
 * together in the next one, so batches grow with the load and shrink back when it falls.
 *
 * When a batch of several items fails, each item is retried alone: one item the database refuses
 * (say, a payload it cannot store) rejects by itself while its neighbours resolve. A batch of one
 * just rejects.
 *
 * @example
 * const writer = new GroupCommit<NewRow, boolean>({
 *   maxInFlight: 2,
 *   maxBatch: 256,
 *   commit: async (rows) => {
 *     const inserted = await insertRows(db, rows); // one INSERT ... RETURNING id for all
 *     return rows.map((r) => inserted.has(r.id));
 *   },
 * });
 * // Called from many concurrent requests; each awaits its own result.
 * const isNew = await writer.write(row);
 */
export class GroupCommit<In, Out> {
  private readonly maxInFlight: () => number;
  private readonly maxBatch: number;
  private readonly weight: (item: In) => number;
  private readonly commit: (items: In[]) => Promise<Out[]>;
  private readonly sameTick: boolean;
  private readonly lingerMs: number;
  /** The timer of a linger in progress. */
  private lingering: NodeJS.Timeout | undefined;
  private queue: Pending<In, Out>[] = [];
  /** The weight of `queue`. */
  private queued = 0;
  private active = 0;
  private pumpQueued = false;

  constructor(options: GroupCommitOptions<In, Out>) {
    const { maxInFlight } = options;
    this.maxInFlight = typeof maxInFlight === 'number' ? () => maxInFlight : maxInFlight;
    this.maxBatch = options.maxBatch;
    this.weight = options.weight ?? (() => 1);
    this.commit = options.commit;
    this.sameTick = options.sameTick ?? false;
    this.lingerMs = options.lingerMs ?? 0;
  }

  /** Resolves with the item's result once its commit succeeded; rejects with its own error. */
  write(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.queued += this.weight(item);
      if (this.lingerMs > 0) {
        if (this.queued >= this.maxBatch) this.pump();
        else this.lingering ??= setTimeout(() => this.pump(), this.lingerMs);
        return;
      }
      if (!this.sameTick) {
        this.pump();
        return;
      }
      if (this.pumpQueued) return;
      this.pumpQueued = true;
      queueMicrotask(() => {
        this.pumpQueued = false;
        this.pump();
      });
    });
  }

  /** Starts commits now for what is queued, ending a linger (as far as `maxInFlight` allows). */
  commitQueued(): void {
    this.pump();
  }

  private pump(): void {
    clearTimeout(this.lingering);
    this.lingering = undefined;
    while (this.active < this.maxInFlight() && this.queue.length > 0) {
      const batch: Pending<In, Out>[] = [];
      let size = 0;
      while (
        this.queue.length > 0 &&
        (batch.length === 0 || size + this.weight(this.queue[0]!.item) <= this.maxBatch)
      ) {
        const next = this.queue.shift()!;
        batch.push(next);
        size += this.weight(next.item);
      }
      this.queued -= size;
      this.active++;
      void this.flush(batch).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  private async flush(batch: Pending<In, Out>[]): Promise<void> {
    try {
      const results = await this.commit(batch.map((p) => p.item));
      for (const [i, p] of batch.entries()) p.resolve(results[i]!);
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad item must not fail its neighbours: retry each alone.
      for (const p of batch) {
        try {
          p.resolve((await this.commit([p.item]))[0]!);
        } catch (single) {
          p.reject(single);
        }
      }
    }
  }
}
