import { type Kysely, sql } from 'kysely';
import type pino from 'pino';
import { NO_FLUSH_WAIT } from '../storage/db.ts';

/**
 * The NOTIFYs of a process's own autocommit writes, sent after their commit on a transaction of
 * their own that does not wait for its WAL flush.
 *
 * Why not `pg_notify` inside the writing statement: Postgres serializes every transaction that
 * sends a NOTIFY, cluster-wide, on one lock taken before its commit and released after it, the
 * commit's fsync included (async.c `PreCommit_Notify`: queue entries must appear in commit order).
 * Ten gate requests at once, each with three NOTIFYing commits (the ingest statement, the request,
 * the decision), committed one after another instead of sharing their flushes (bench/analysis.md,
 * "Gates ten at once": `Lock:object` waits on the request insert and the decision). A notify-only
 * transaction still takes an xid (every queue entry carries one), so it is sent with
 * `synchronous_commit` off: it holds the lock for the time of writing its commit record, not of
 * flushing it. A wake-up lost in a crash between the two commits is what the listeners' backstops
 * (`pollBackstop`, the gates' trust windows and deadlines) already cover.
 *
 * Sent in order of request, coalesced: one statement at a time, and what is asked while it runs
 * goes in the next, each (channel, payload) once. A statement inside a caller's transaction (a
 * pull's, an admin action's, hub-made events) still NOTIFYs at its commit: only there is the commit
 * the caller's.
 *
 * @example
 * ```ts
 * const notifier = new Notifier(db, logger);
 * await storeSomething(db); // autocommit: durable now
 * notifier.notify('switchyard_normalize'); // heard by every process's LISTEN connection shortly
 * await notifier.flush(); // everything asked so far was sent (or failed and was logged)
 * ```
 */
export class Notifier {
  private readonly db: Kysely<unknown>;
  private readonly logger: pino.Logger;
  /** Asked for since the statement in flight started: channel → payloads. */
  private pending = new Map<string, Set<string>>();
  /** The statement in flight and those queued behind it; resolves when what was asked is sent. */
  private sending: Promise<void> | undefined;

  constructor(db: Kysely<unknown>, logger: pino.Logger) {
    this.db = db;
    this.logger = logger;
  }

  /**
   * Sends `NOTIFY channel, payload` (after what is in flight), after the caller's write committed.
   * Never throws; resolves when it was sent or failed (a failure is logged: the listeners' backstops
   * find the work). Awaiting it is only for a caller whose answer promises that others heard.
   */
  notify(channel: string, payload = ''): Promise<void> {
    let payloads = this.pending.get(channel);
    if (!payloads) {
      payloads = new Set();
      this.pending.set(channel, payloads);
    }
    payloads.add(payload);
    if (!this.sending) this.sending = this.drain();
    return this.sending;
  }

  /** Resolves once everything asked so far was sent (or failed): before the pool closes. */
  flush(): Promise<void> {
    return this.sending ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    // Asked while a statement runs: waits for it, then goes in the next.
    await Promise.resolve();
    while (this.pending.size > 0) {
      const batch = this.pending;
      this.pending = new Map();
      const channels: string[] = [];
      const payloads: string[] = [];
      for (const [channel, set] of batch) {
        for (const payload of set) {
          channels.push(channel);
          payloads.push(payload);
        }
      }
      try {
        await sendNotifications(this.db, channels, payloads);
      } catch (error) {
        this.logger.warn(
          { err: error, channels: [...batch.keys()] },
          'NOTIFY not sent; other processes find the work by their backstop',
        );
      }
    }
    this.sending = undefined;
  }
}

/**
 * One autocommit statement: the NOTIFYs, its own commit not waiting for the WAL flush
 * (`set_config(..., true)` is `SET LOCAL`: this transaction only, read at its commit). Returns how
 * many were sent and the `synchronous_commit` the transaction commits with.
 */
export async function sendNotifications(
  db: Kysely<unknown>,
  channels: readonly string[],
  payloads: readonly string[],
): Promise<{ sent: number; synchronousCommit: string }> {
  const r = await sql<{ sent: number; sync: string }>`
    select count(pg_notify(n.channel, n.payload))::integer as sent,
      min(current_setting('synchronous_commit')) as sync
    from ${NO_FLUSH_WAIT},
      unnest(${channels as string[]}::text[], ${payloads as string[]}::text[]) as n(channel, payload)`.execute(
    db,
  );
  return { sent: r.rows[0]?.sent ?? 0, synchronousCommit: r.rows[0]?.sync ?? '' };
}
