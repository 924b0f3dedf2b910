/**
 * Ingest first: whether this process's vendor pushes are queueing for their durable write. While
 * they are, the process's normalize worker gives way (one run at a time instead of
 * `normalizeConcurrency`, each followed by a rest {@link INGEST_FIRST_REST} times as long as it
 * took): on the two cores a hub shares with its Postgres, every millisecond spent normalizing is
 * one the acknowledgements wait for, and a vendor that gets slow answers retries or disables the
 * webhook (Quable: after three answers slower than 5 s). What was acknowledged waits in the table,
 * durable, and the worker is back at its full concurrency once the queue is gone. Deliveries do
 * not give way: they wait mostly on subscribers, not on the CPU.
 *
 * Measured (bench/analysis.md, "Ingest first"): `pnpm bench ingest` as started 0.61–0.66× the
 * floor against 0.24–0.33× without, end to end unchanged (the backlog drains in larger batches).
 */

/**
 * While pushes queue, the normalize worker rests this many times as long as its last run took
 * before it claims the next: it normalizes at most a fifth of the time, in full runs (up to 32
 * messages, one claim and one commit for all of them), so what it does normalize costs the least
 * Postgres work per message. Against runs of one message with no rest, the rule before
 * (bench/analysis.md, "Ingest first rests"): acknowledgements and end to end the same within the
 * noise, ~1.5x as many messages normalized during the ingest benchmark's burst.
 */
export const INGEST_FIRST_REST = 4;

/**
 * The longest rest, ms. A run that waited on a slow vendor API took long without taking the CPU;
 * resting four times that would hold the worker back for nothing, and past the queue's end (the
 * loop sleeps until the rest is over, or until a push wakes it).
 */
export const INGEST_FIRST_REST_MAX_MS = 1000;

/**
 * Pushes waiting for their durable write at once from which the worker gives way. At 200 pushes/s
 * that many arrive in 160 ms, far more than a stall of the process or a slow commit holds up: with 8
 * (40 ms of them) such stalls made the worker give way at an even rate too, and push → subscriber
 * p99 at 200/s went from 64–131 ms to 111–200 ms (`pnpm bench latency`, same session); with 32 it
 * read 63–88 ms. Under the ingest benchmark's 50 connections 32 wait most of the time.
 */
export const INGEST_PRESSURE_WAITING = 32;

/**
 * How long the worker keeps giving way after the last moment that many waited. The count drops to
 * nearly nothing whenever a group commit answers its batch, and climbs again as the next requests
 * arrive; without a hold the worker's claims fell into those gaps and it ran 22–32 of its 32 slots
 * under the ingest benchmark anyway.
 */
export const INGEST_PRESSURE_HOLD_MS = 200;

/**
 * Counts the pushes waiting for their durable write (`InboundWriter` calls {@link begin} and
 * {@link end} around each) and says whether they queue.
 *
 * @example
 * ```ts
 * const pressure = new IngestPressure(INGEST_PRESSURE_WAITING);
 * pressure.begin();
 * try { await storeIt(); } finally { pressure.end(); }
 * const concurrency = pressure.pressed ? 1 : 32;
 * ```
 */
export class IngestPressure {
  private waiting = 0;
  /** The last moment `threshold` pushes waited at once (−∞: never). */
  private lastAt = Number.NEGATIVE_INFINITY;
  /** Whether that many still wait (then it is pressed, the hold counts from when they no longer do). */
  private above = false;
  /** Time pressed before `lastAt`. */
  private pressedBeforeMs = 0;
  private readonly threshold: number;
  private readonly holdMs: number;
  private readonly now: () => number;

  /**
   * `threshold`: waiting pushes that make a queue (`Infinity`: never, ingest first turned off);
   * `now`: the clock in ms (tests pass their own).
   */
  constructor(
    threshold: number,
    holdMs = INGEST_PRESSURE_HOLD_MS,
    now: () => number = () => performance.now(),
  ) {
    this.threshold = threshold;
    this.holdMs = holdMs;
    this.now = now;
  }

  /** A push starts waiting for its durable write. */
  begin(): void {
    if (++this.waiting >= this.threshold) this.mark(true);
  }

  /** That push was written (or failed). */
  end(): void {
    // The moment the queue drops below the threshold is the last one it was there: the hold starts.
    if (this.waiting-- >= this.threshold && this.waiting < this.threshold) this.mark(false);
  }

  /**
   * Whether `threshold` pushes wait now, or did within the last `holdMs`. Now counts however long
   * they have waited: a slow commit (a checkpoint, a stalled disk) holding that many for longer
   * than the hold is the queue at its worst, not its end.
   */
  get pressed(): boolean {
    return this.above || this.now() - this.lastAt < this.holdMs;
  }

  /** How long it has been pressed in all, in seconds (the `switchyard_ingest_first_seconds_total` metric). */
  get pressedSeconds(): number {
    if (this.lastAt === Number.NEGATIVE_INFINITY) return 0;
    return (this.pressedBeforeMs + this.since(this.now())) / 1000;
  }

  /** Pressed time from `lastAt` to `now`: all of it while above, else at most the hold. */
  private since(now: number): number {
    return this.above ? now - this.lastAt : Math.min(now - this.lastAt, this.holdMs);
  }

  private mark(above: boolean): void {
    const now = this.now();
    if (this.lastAt !== Number.NEGATIVE_INFINITY) this.pressedBeforeMs += this.since(now);
    this.lastAt = now;
    this.above = above;
  }
}
