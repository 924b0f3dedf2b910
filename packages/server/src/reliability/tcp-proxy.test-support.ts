/**
 * A TCP proxy on loopback that a test can cut and restore: the outage of one dependency (Postgres,
 * a subscriber) for one test, without touching the real server other tests share.
 */
import net from 'node:net';

/** A running proxy; see {@link startTcpProxy}. */
export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /** Connections accepted and forwarded so far. */
  readonly accepted: number;
  /** Whether it is cut now. */
  readonly isCut: boolean;
  /** Destroys every open connection and resets new ones until {@link restore}. */
  cut(): void;
  /**
   * Leaves every open connection up and silent (no byte either way, nothing closed: a half-open
   * connection after a failover or a NAT losing its state); new connections work, or with
   * `{ newConnections: true }` are accepted and stay silent too (a server that hangs) until
   * {@link restore}.
   */
  freeze(options?: { newConnections?: boolean }): void;
  /** Forwards new connections again. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy from 127.0.0.1:<random> to `target`. While cut, every accepted connection is reset
 * at once, which the client sees as ECONNRESET / "Connection terminated": what a dead server or a
 * broken network looks like.
 *
 * @example
 * ```ts
 * const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
 * const url = `postgres://postgres@127.0.0.1:${proxy.port}/db`;
 * proxy.cut(); // … the outage …
 * proxy.restore();
 * ```
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let cut = false;
  let silent = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    if (silent) {
      // Accepted, never answered (the client's connect timeout or the test's end closes it).
      open.add(client);
      client.pause();
      client.on('error', () => client.destroy());
      client.on('close', () => open.delete(client));
      return;
    }
    accepted++;
    const upstream = net.connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
      pairs.delete(pair);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
      for (const socket of open) socket.resetAndDestroy();
      open.clear();
    },
    freeze(options = {}) {
      silent = options.newConnections === true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
    },
    restore() {
      cut = false;
      silent = false;
    },
    close() {
      cut = true;
      for (const socket of open) socket.destroy();
      open.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
