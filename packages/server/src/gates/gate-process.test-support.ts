/**
 * A hub process with the approval gates, for the gate tests that need a process to die: the hub
 * (Docplanner connector, pg-boss), `createGates` and `buildApp` on loopback, from a JSON config on
 * argv, started with `fork()` so the test can SIGKILL it while it decides a request.
 *
 * IPC: sends `{ type: 'ready', port, pid, workerId }` once listening.
 *
 * Test-only; not exported from the package.
 */
import { docplannerConnector } from '@switchyard/connector-docplanner';
import pino from 'pino';
import { buildApp } from '../http/index.ts';
import { createHub } from '../pipeline/hub.ts';
import { createGates } from './gates.ts';

/** What the parent passes (as JSON in argv[2]). */
export interface GateProcessConfig {
  databaseUrl: string;
  secretKey: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as GateProcessConfig;
const logger = pino({ level: 'silent' });
const gates = createGates({ worker: true, approverCacheMs: 0, sweepIntervalMs: 0 });
const hub = await createHub({
  databaseUrl: config.databaseUrl,
  connectors: [docplannerConnector],
  secretKey: config.secretKey,
  logger,
  options: { instanceCacheMs: 0, retention: { cron: false } },
  ...gates.hooks,
});
await hub.start();
await gates.start(hub.host);
const app = await buildApp({ hub, adminToken: undefined, trustedProxies: [], logger, authRateLimit: false });
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.send?.({ type: 'ready', port, pid: process.pid, workerId: gates.workerId });
