import pg from 'pg';
import type pino from 'pino';
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
        else this.logger.warn({ err: error, loop: this.name }, 'worker pass failed; retrying');
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

/**
 * One LISTEN connection per process: every commit that creates work NOTIFYs a channel, and the
 * matching loops wake at once, in this process or any other on the same database. Reconnects on
 * its own; while it is down the loops still poll.
 */
export class Listener {
  private readonly url: string;
  private readonly handlers: Map<string, () => void>;
  private readonly logger: pino.Logger;
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(url: string, handlers: Map<string, () => void>, logger: pino.Logger) {
    this.url = url;
    this.handlers = handlers;
    this.logger = logger;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => this.handlers.get(msg.channel)?.());
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'LISTEN connection lost; polling until it is back');
      this.reconnectLater(client);
    });
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      for (const channel of this.handlers.keys())
        await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      this.client = client;
      // Work committed while we were not listening: one wake-up covers it.
      for (const handler of this.handlers.values()) handler();
    } catch (error) {
      this.logger.warn({ err: error }, 'LISTEN connection failed; polling until it is back');
      this.reconnectLater(client);
    }
  }

  private reconnectLater(client: pg.Client): void {
    if (this.stopped || this.retry) return;
    if (this.client === client) this.client = undefined;
    client.end().catch(() => {});
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect();
    }, 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
