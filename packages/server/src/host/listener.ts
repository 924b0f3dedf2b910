import pg from 'pg';
import type pino from 'pino';
import { SESSION_APPLICATION_NAME, sessionApplicationName, sessionConfig } from '../storage/db.ts';
import { socketOf } from '../storage/unacknowledged.ts';
import { isDatabaseUnavailable, reportDatabaseUnavailable } from '../storage/unavailable.ts';

/**
 * How often the LISTEN connection is checked when it has heard nothing since the last look, and
 * how long the check's `select 1` may go unanswered before the connection is taken for lost and
 * opened again. A connection whose server vanished without a FIN or a reset (a failover, a dropped
 * NAT entry) carries no NOTIFY and tells nothing: TCP keepalive found it only ~42 s later (30 s idle,
 * ten probes, the reconnect), every wake-up lost meanwhile and the workers on their 30 s polling
 * backstop. With the check it is found within 15 s (docs/operations.md). An idle process pays one
 * `select 1` each 10 s; a busy one, hearing NOTIFYs, none.
 */
export const LISTEN_CHECK = { everyMs: 10_000, answerWithinMs: 5_000 };

/** Hears a channel's NOTIFYs; `payload` is undefined after a (re)connect (see {@link HubListener.listen}). */
export type NotificationHandler = (payload: string | undefined) => void;

/**
 * The one LISTEN connection of a process. Every commit that creates work, or decides something a
 * waiting request needs, NOTIFYs a channel; the handlers of that channel run at once, in this
 * process or any other on the same database. Reconnects on its own; while it is down, nothing is
 * heard (the pipeline's loops poll, a gate's waiting requests read their rows when it is back).
 *
 * @example
 * ```ts
 * const listener = new HubListener(databaseUrl, logger);
 * await listener.start();
 * const stop = await listener.listen('switchyard_deliver', () => deliverLoop.wake());
 * stop(); // this handler hears nothing more
 * await listener.stop();
 * ```
 */
export class HubListener {
  private readonly url: string;
  private readonly logger: pino.Logger;
  private readonly applicationName: string;
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private client: pg.Client | undefined;
  private started = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly check: { everyMs: number; answerWithinMs: number };
  private checkTimer: NodeJS.Timeout | undefined;

  /**
   * `sessionTag`: the hub's ({@link Database.sessionTag}): the connection is named with it, and as
   * the one session a process keeps for its whole life, it is what tells the other processes that
   * this one is alive (storage/db.ts, `sessionsConnected`). Without one, `switchyard` alone.
   * `check`: {@link LISTEN_CHECK} unless given (tests of the bound).
   */
  constructor(
    url: string,
    logger: pino.Logger,
    sessionTag?: string,
    check: { everyMs: number; answerWithinMs: number } = LISTEN_CHECK,
  ) {
    this.url = url;
    this.logger = logger;
    this.check = check;
    this.applicationName =
      sessionTag === undefined ? SESSION_APPLICATION_NAME : sessionApplicationName(sessionTag);
  }

  /**
   * True while the connection is up: a NOTIFY sent now will be heard. A cache kept fresh by
   * notifications (the gates' approver list) may be trusted only then.
   */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /**
   * Runs `handler` with each NOTIFY's payload on `channel`, and with `undefined` each time the
   * connection is (re)established, since notifications sent while nobody listened were missed (one
   * wake-up covers them). Resolves once the channel is listened to (at once when the connection is
   * down: it listens on reconnect), with a function that removes the handler.
   */
  async listen(channel: string, handler: NotificationHandler): Promise<() => void> {
    let set = this.handlers.get(channel);
    const fresh = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    const client = this.client;
    if (fresh && client) {
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`).catch((error: unknown) => {
        this.logger.warn({ err: error, channel }, 'LISTEN failed; reconnecting');
        this.reconnectLater(client);
      });
    }
    return () => {
      set.delete(handler);
    };
  }

  /** Opens the connection (idempotent); a failure is retried in the background, never thrown. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.connect();
  }

  private notify(channel: string, payload: string | undefined): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(payload);
      } catch (error) {
        this.logger.warn({ err: error, channel }, 'notification handler failed');
      }
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // The session that tells the others this process is alive: bounded like every other
    // (storage/db.ts, `SESSION_LIVENESS`), and found dead on this side when Postgres's host is lost
    // (it carries nothing while idle, so without keepalive it would wait for a NOTIFY forever).
    const client = new pg.Client({ ...sessionConfig(this.url), application_name: this.applicationName });
    let heard = false;
    client.on('notification', (msg) => {
      heard = true;
      this.notify(msg.channel, msg.payload);
    });
    client.on('error', (error) => {
      // An outage is said once per 30 s with every other report of it; anything else at once.
      if (isDatabaseUnavailable(error))
        reportDatabaseUnavailable(
          this.logger,
          error,
          'the LISTEN connection is lost; polling until it is back',
        );
      else this.logger.warn({ err: error }, 'LISTEN connection lost; polling until it is back');
      this.reconnectLater(client);
    });
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      const channels = [...this.handlers.keys()];
      if (channels.length > 0)
        await client.query(channels.map((c) => `LISTEN ${client.escapeIdentifier(c)}`).join('; '));
      this.client = client;
      this.watch(client, () => {
        const was = heard;
        heard = false;
        return was;
      });
      // A channel added while we connected is listened to now.
      for (const channel of this.handlers.keys())
        if (!channels.includes(channel)) await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      // Work committed while we were not listening: one wake-up covers it.
      for (const channel of this.handlers.keys()) this.notify(channel, undefined);
    } catch (error) {
      // Tried again every second: while the database is down, one warning per 30 s (the others
      // at debug), as every other report of the outage, not a warning with a stack each second.
      if (isDatabaseUnavailable(error))
        reportDatabaseUnavailable(this.logger, error, 'LISTEN connection failed; polling until it is back');
      else this.logger.warn({ err: error }, 'LISTEN connection failed; polling until it is back');
      this.reconnectLater(client);
    }
  }

  /**
   * Checks `client` every `check.everyMs` while it is this listener's connection, unless it heard a
   * NOTIFY since the last look (`heardSince` says, and resets): a `select 1` unanswered within
   * `check.answerWithinMs` destroys its socket with `ETIMEDOUT`, taken for an outage like every other
   * lost connection, and the 'error' handler reconnects.
   */
  private watch(client: pg.Client, heardSince: () => boolean): void {
    clearInterval(this.checkTimer);
    let checking = false;
    this.checkTimer = setInterval(() => {
      if (this.client !== client) return;
      if (heardSince() || checking) return;
      checking = true;
      const socket = socketOf(client);
      const late = setTimeout(() => {
        socket?.destroy(
          Object.assign(
            new Error(
              `no answer on the LISTEN connection for ${this.check.answerWithinMs} ms: connection closed`,
            ),
            { code: 'ETIMEDOUT' },
          ),
        );
      }, this.check.answerWithinMs).unref();
      // A failure is the connection's 'error' (reconnecting), not this check's to report.
      client
        .query('select 1')
        .catch(() => {})
        .finally(() => {
          clearTimeout(late);
          checking = false;
        });
    }, this.check.everyMs).unref();
  }

  private reconnectLater(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      clearInterval(this.checkTimer);
    }
    if (this.stopped || this.retry) return;
    client.end().catch(() => {});
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect();
    }, 1000);
  }

  /** Closes the connection; no handler runs after it resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.checkTimer);
    const client = this.client;
    this.client = undefined;
    this.handlers.clear();
    await client?.end().catch(() => {});
  }
}
