import type pino from 'pino';
import { RepeatedWarning, warnRepeated } from '../logging/repeats.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';

/** What one pass of a worker loop reports. */
export interface TickResult {
  /** True when the pass found work: the loop runs again at once. */
  busy: boolean;
  /** When the next known piece of work becomes due (retries, leases), to sleep exactly that long. */
  nextDueAt?: Date | undefined;
}

/**
 * Runs a worker pass again and again: at once while there is work, else after the earliest known
 * due time, a wake-up (LISTEN/NOTIFY or an in-process signal), or the polling backstop, whichever
 * comes first. Polling only covers lost notifications; latency comes from the wake-ups.
 */
export class WorkerLoop {
  readonly name: string;
  private readonly tick: () => Promise<TickResult>;
  private readonly pollMs: number;
  private readonly logger: pino.Logger;
  private running = false;
  private wakeRequested = false;
  private timer: NodeJS.Timeout | undefined;
  private sleeper: (() => void) | undefined;
  private done: Promise<void> | undefined;
  /** A fault that fails every pass (a bug, a broken dependency): its stack once, then counted. */
  private readonly failedWarning = new RepeatedWarning();

  constructor(name: string, tick: () => Promise<TickResult>, pollMs: number, logger: pino.Logger) {
    this.name = name;
    this.tick = tick;
    this.pollMs = pollMs;
    this.logger = logger;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.done = this.run();
  }

  /** Runs a pass as soon as possible (safe to call often: wake-ups coalesce). */
  wake(): void {
    this.wakeRequested = true;
    this.sleeper?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sleeper?.();
    await this.done;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.wakeRequested = false;
      let result: TickResult;
      try {
        result = await this.tick();
        failures = 0;
      } catch (error) {
        failures++;
        // An outage fails every pass of every loop the same way: said once, not a stack per pass.
        if (isDatabaseUnavailable(error))
          reportDatabaseUnavailable(this.logger, error, `the ${this.name} loop retries until it is back`);
        else
          warnRepeated(
            this.logger,
            this.failedWarning.take(this.name),
            { err: error, loop: this.name },
            'worker pass failed; retrying',
          );
        result = { busy: false, nextDueAt: new Date(Date.now() + Math.min(200 * 2 ** failures, 5000)) };
      }
      if (!this.running) break;
      if (result.busy || this.wakeRequested) continue;
      let waitMs = this.pollMs;
      if (result.nextDueAt)
        waitMs = Math.max(0, Math.min(waitMs, result.nextDueAt.getTime() - Date.now() + 2));
      await new Promise<void>((resolve) => {
        this.sleeper = resolve;
        this.timer = setTimeout(resolve, waitMs);
      });
      clearTimeout(this.timer);
      this.sleeper = undefined;
    }
  }
}
