/**
 * A checked-out connection whose bytes the database host has stopped acknowledging is closed after
 * a bound, as `TCP_USER_TIMEOUT` would close it, which Node cannot set on a socket.
 *
 * Why: a statement sent to a Postgres host that was lost (power, a partition, a failover that took
 * its address away) is retransmitted by the kernel for ~15 minutes (`tcp_retries2`) before the
 * socket fails; TCP keepalive does not probe a socket with data in flight. The plan-stable pool
 * bounds its millisecond statements by silence alone (`PLAN_STABLE_STALL_MS`), but the main pool
 * runs migrations, purges and admin statements that may rightly be silent for minutes, so silence
 * alone says nothing there. Retransmission does: Postgres acknowledges every segment it receives
 * whatever the statement is doing, so a socket still retransmitting its bytes after the bound
 * talks to no one. The kernel tells it in `/proc/net/tcp` (and `tcp6`): the socket's unacknowledged
 * bytes (`tx_queue`) and its retransmission timeouts in a row (`retrnsmt`, back to 0 at the next
 * acknowledgement).
 *
 * Cost: nothing while statements are short. The table is read only while a connection has been
 * checked out for {@link UNACKNOWLEDGED_CHECK_MS} or more, once per that interval, and only such
 * connections are looked up in it. Linux only: where `/proc/net/tcp` cannot be read (another
 * system, a sandbox), nothing is closed and the kernel's own bound applies, as before.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type pg from 'pg';

/** How often the kernel's table is read while a connection has been checked out that long. */
export const UNACKNOWLEDGED_CHECK_MS = 5000;

/** One TCP socket's row of `/proc/net/tcp`, the fields this module reads. */
export interface TcpSocketState {
  /** Bytes sent and not yet acknowledged by the peer, plus those not yet sent (`tx_queue`). */
  unacknowledged: number;
  /** Retransmission timeouts since the last acknowledgement (`retrnsmt`). */
  retransmits: number;
}

/**
 * The sockets of a `/proc/net/tcp` or `/proc/net/tcp6` text by `localPort:remotePort` (decimal),
 * the key {@link socketKey} makes for a Node socket. Addresses are left out of the key: the
 * connection's own two ports name it among this network namespace's sockets but for another
 * socket to the same remote port from the same local port on another address, which the kernel
 * allows and which a hub's few connections to one database do not make.
 *
 * @example
 * ```ts
 * parseProcNetTcp(readFileSync('/proc/net/tcp', 'utf8')).get('41234:5432'); // { unacknowledged: 0, retransmits: 0 }
 * ```
 */
export function parseProcNetTcp(text: string): Map<string, TcpSocketState> {
  const sockets = new Map<string, TcpSocketState>();
  for (const line of text.split('\n')) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
    const f = line.trim().split(/\s+/);
    if (f.length < 7 || !f[0]!.endsWith(':')) continue;
    const local = f[1]!;
    const remote = f[2]!;
    const queues = f[4]!;
    const key = `${parseInt(local.slice(local.lastIndexOf(':') + 1), 16)}:${parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16)}`;
    sockets.set(key, {
      unacknowledged: parseInt(queues.slice(0, queues.indexOf(':')), 16),
      retransmits: parseInt(f[6]!, 16),
    });
  }
  return sockets;
}

/** The key of a Node socket in {@link parseProcNetTcp}'s map, or undefined when it is not TCP. */
export function socketKey(socket: Socket): string | undefined {
  return socket.localPort !== undefined && socket.remotePort !== undefined
    ? `${socket.localPort}:${socket.remotePort}`
    : undefined;
}

/** The kernel's TCP sockets of this network namespace, IPv4 and IPv6; empty where unreadable. */
function readKernelTable(): Map<string, TcpSocketState> {
  const sockets = new Map<string, TcpSocketState>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const [key, state] of parseProcNetTcp(readFileSync(file, 'utf8'))) sockets.set(key, state);
    } catch {
      // Not Linux, or not readable here: nothing to go on.
    }
  }
  return sockets;
}

/** What {@link watchUnacknowledged} takes. */
export interface UnacknowledgedWatchOptions {
  /**
   * How long a checked-out connection may go on retransmitting bytes its database host never
   * acknowledged before it is closed. The hub passes the bound Postgres holds its sessions to from
   * its side (`SESSION_LIVENESS.userTimeoutMs` in db.ts, 60 s), so that both ends give up on a lost
   * peer alike.
   */
  boundMs: number;
  /** {@link UNACKNOWLEDGED_CHECK_MS} unless given (also how long a checkout lasts before it is looked at). */
  everyMs?: number;
  /** The sockets' kernel state; the kernel's table unless given (tests). */
  read?: () => Map<string, TcpSocketState>;
}

/** The socket under a pg client (pg keeps it as `connection.stream`). */
export function socketOf(client: pg.PoolClient | pg.Client): Socket | undefined {
  return (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;
}

/**
 * Watches `pool`'s checked-out connections and closes one whose socket has had unacknowledged bytes
 * under retransmission for `boundMs` (checked every `everyMs`), with an `ETIMEDOUT` error, so that
 * its statement fails as in an outage (storage/unavailable.ts) and the pool opens a new connection.
 * Returns a function that stops the watch.
 *
 * @example
 * ```ts
 * const stop = watchUnacknowledged(pool, { boundMs: 60_000 }); // looked at every 5 s
 * // ... when the pool ends:
 * stop();
 * ```
 */
export function watchUnacknowledged(pool: pg.Pool, options: UnacknowledgedWatchOptions): () => void {
  const { boundMs } = options;
  const everyMs = options.everyMs ?? UNACKNOWLEDGED_CHECK_MS;
  const read = options.read ?? readKernelTable;
  /** Checked-out clients: when each was taken, and since when its bytes have gone unacknowledged. */
  const held = new Map<pg.PoolClient, { since: number; unacknowledgedSince?: number }>();
  let timer: NodeJS.Timeout | undefined;

  const look = () => {
    // Stopped here, not at each release: checkouts come and go hundreds of times a second, and a
    // timer made and cleared for each would cost more than this one tick every `everyMs`.
    if (held.size === 0) {
      clearInterval(timer);
      timer = undefined;
      return;
    }
    const now = Date.now();
    const long = [...held].filter(([, h]) => now - h.since >= everyMs);
    if (long.length === 0) return;
    const table = read();
    for (const [client, h] of long) {
      const socket = socketOf(client);
      const key = socket ? socketKey(socket) : undefined;
      const state = key ? table.get(key) : undefined;
      if (!socket || !state || state.unacknowledged === 0 || state.retransmits === 0) {
        delete h.unacknowledgedSince;
        continue;
      }
      h.unacknowledgedSince ??= now;
      if (now - h.unacknowledgedSince < boundMs) continue;
      held.delete(client);
      // Coded as the socket timeout it is: every caller takes it for an outage (a push answered
      // 503 with Retry-After, a worker giving its work back), as the plan-stable pool's bound.
      socket.destroy(
        Object.assign(
          new Error(`the database acknowledged nothing sent to it for ${boundMs} ms: connection closed`),
          { code: 'ETIMEDOUT' },
        ),
      );
    }
  };
  const forget = (client: pg.PoolClient) => {
    held.delete(client);
  };
  const onAcquire = (client: pg.PoolClient) => {
    held.set(client, { since: Date.now() });
    timer ??= setInterval(look, everyMs).unref();
  };
  const onRelease = (_error: Error | undefined, client: pg.PoolClient) => forget(client);
  pool.on('acquire', onAcquire);
  pool.on('release', onRelease);
  pool.on('remove', forget);
  return () => {
    pool.off('acquire', onAcquire);
    pool.off('release', onRelease);
    pool.off('remove', forget);
    held.clear();
    if (timer) clearInterval(timer);
    timer = undefined;
  };
}
