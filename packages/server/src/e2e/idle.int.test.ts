// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * A started hub with nothing to do costs nothing measurable: every role on default settings, one
 * push instance and one subscription (nothing that polls a vendor). The hub reaches Postgres
 * through a counting proxy, so the statements it sends while idle are counted exactly (simple
 * queries and executes of the wire protocol), apart from anything else the server runs for that
 * database (autovacuum). Wake-ups come by LISTEN/NOTIFY; polling is only a long backstop.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { freePort, useTestDatabase } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import {
  newSigningSecret,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  webhookSubscription,
  writeConfig,
} from './helpers.test-support.ts';

const db = useTestDatabase();
const dir = tempDir('idle');
const WINDOW_MS = 30_000;
/** Start-up work (migrations, first passes of every loop) is over well within this. */
const SETTLE_MS = 5_000;
const SSL_REQUEST = 80877103;

/**
 * A loopback proxy to Postgres that counts what clients send: `Q` (simple query) and `E`
 * (execute) messages, and connections opened.
 */
async function countingProxy(target: URL) {
  const counts = { statements: 0, connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    counts.connections++;
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let started = false;
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          if (pending.length < 8) break;
          const length = pending.readInt32BE(0);
          if (pending.length < length) break;
          if (pending.readInt32BE(4) !== SSL_REQUEST) started = true;
          pending = pending.subarray(length);
          continue;
        }
        if (pending.length < 5) break;
        const length = pending.readInt32BE(1) + 1;
        if (pending.length < length) break;
        const type = String.fromCharCode(pending[0]!);
        if (type === 'Q' || type === 'E') counts.statements++;
        pending = pending.subarray(length);
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    counts,
    url: (() => {
      const url = new URL(target);
      url.hostname = '127.0.0.1';
      url.port = String((server.address() as net.AddressInfo).port);
      return url.toString();
    })(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** CPU seconds (user + system) a process used so far, from /proc (reported, never asserted). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

describe('an idle hub', () => {
  it('sends at most one statement a second with nothing to do', { timeout: 90_000 }, async () => {
    const proxy = await countingProxy(new URL(db.url()));
    const port = await freePort();
    writeConfig(dir, {
      port,
      database: '${env:SY_E2E_DATABASE_URL}',
      // Never called: nothing is pushed.
      subscriptions: webhookSubscription('crm', 'http://127.0.0.1:9/crm'),
    });
    const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], {
      cwd: dir,
      env: secretEnv(newSigningSecret(), proxy.url),
      port,
    });
    try {
      await hub.ready();
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      const before = { ...proxy.counts };
      const cpuBefore = cpuSeconds(hub.child.pid);
      await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
      const statements = proxy.counts.statements - before.statements;
      const connections = proxy.counts.connections - before.connections;
      const cpu = (100 * (cpuSeconds(hub.child.pid) - cpuBefore)) / (WINDOW_MS / 1000);
      console.info(
        `idle hub: ${statements} statements, ${connections} new connections, ${cpu.toFixed(2)} % CPU (hub process) in ${WINDOW_MS / 1000} s`,
      );
      expect(statements).toBeLessThanOrEqual(WINDOW_MS / 1000);
      // The pools keep their connections between the idle ticks (storage/db.ts, host/boss.ts): a
      // new one would cost Postgres a backend start-up each time.
      expect(connections).toBe(0);
    } finally {
      await hub.stop('SIGTERM');
      await proxy.close();
    }
  });
});
