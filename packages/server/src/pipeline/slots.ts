/**
 * The slots of a worker (normalize or deliver) that a previous stage may fill directly: the
 * normalize worker's are promised to ingest statements (lease at store), the deliver worker's to
 * normalize commits (lease at fan-out). One ledger for both, so the two workers count, promise and
 * give back the same way.
 */
export class SlotLedger {
  /** Slots in use (work started, not finished). */
  active = 0;
  /** Slots promised to statements in progress: the worker's own claim, or a previous stage's. */
  private reserved = 0;
  /** Whether a previous stage may be promised slots (the worker's loop runs). */
  private accepting = false;
  /**
   * Claimable work may wait: the last pass could not claim (too few free slots) or filled its
   * batch. Then nothing is promised (a backlog goes first, in the claim's order), and every
   * finished piece of work wakes the loop.
   */
  behind = false;
  /** A pass found its slots promised to a statement in progress: that statement's end wakes the loop. */
  private skippedForReserved = false;

  private readonly capacity: () => number;
  private readonly wake: () => void;

  /**
   * `capacity`: the worker's concurrency; `wake`: runs a pass of its loop.
   *
   * @example
   * ```ts
   * const slots = new SlotLedger(() => options.deliveryConcurrency, () => loop.wake());
   * const limit = slots.claimable(64);
   * const works = limit > 0 ? await slots.claim(limit, () => claimWork(limit), (w) => w.length) : [];
   * ```
   */
  constructor(capacity: () => number, wake: () => void) {
    this.capacity = capacity;
    this.wake = wake;
  }

  /**
   * The slots a pass of the loop may claim for, at most `batch`; 0 while most slots are busy, so
   * that each claim fetches a batch rather than one piece of work per finish (the pass is then
   * marked behind, unless the busy slots are promised to a statement that will wake it).
   */
  claimable(batch: number): number {
    const capacity = this.capacity();
    const free = capacity - this.active - this.reserved;
    if (free <= 0 || (this.active > 0 && free < Math.ceil(capacity / 4))) {
      if (this.reserved > 0) this.skippedForReserved = true;
      else this.behind = true;
      return 0;
    }
    return Math.min(free, batch);
  }

  /**
   * Runs the worker's claim of at most `limit` with those slots promised to it while it runs (a
   * statement starting meanwhile is promised only what is left); the `taken` of its result (the
   * pieces of work it claimed, one slot each) are in use when it resolves, the rest given back in
   * the same step: a reservation made between the claim's end and its caller starting the work
   * would otherwise see them free. Behind when `taken` is the whole `limit`. The caller starts the
   * work and calls {@link done} as each piece ends.
   */
  async claim<T>(limit: number, run: () => Promise<T>, taken: (result: T) => number): Promise<T> {
    this.reserved += limit;
    let result: T;
    try {
      result = await run();
    } catch (error) {
      this.reserved -= limit;
      throw error;
    }
    const n = taken(result);
    this.reserved -= limit;
    this.active += n;
    this.behind = n === limit;
    return result;
  }

  /** A piece of work started by {@link claim} or {@link release} ended: its slot is free. */
  done(): void {
    this.active--;
  }

  /** Lets a previous stage be promised slots (the hub calls it once the worker's loop runs). */
  accept(accepting: boolean): void {
    this.accepting = accepting;
  }

  /** Whether a previous stage may be promised slots now. */
  get accepts(): boolean {
    return this.accepting;
  }

  /** Promises up to `max` free slots; none while not accepting or behind. Give them back with {@link release}. */
  reserve(max: number): number {
    if (!this.accepting || this.behind) return 0;
    const n = Math.max(0, Math.min(max, this.capacity() - this.active - this.reserved));
    this.reserved += n;
    return n;
  }

  /**
   * Takes back `slots` promised by {@link reserve}, `started` of them (at most `slots`) now in use
   * by the work the statement handed over (end each with {@link done}); wakes a pass that skipped
   * for them.
   */
  release(slots: number, started = 0): void {
    this.reserved -= slots;
    this.active += started;
    if (this.skippedForReserved) {
      this.skippedForReserved = false;
      this.wake();
    }
  }
}
