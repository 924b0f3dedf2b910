/**
 * A hub process for the reliability tests: `createHub` + `buildApp` from a JSON config on argv,
 * started with `fork()` so the test can talk to it over IPC and kill it with SIGKILL. It logs
 * with pino to stdout at the configured level (the secret scan reads it).
 *
 * IPC: sends `{ type: 'ready', port, pid }` once listening; answers `{ type: 'stats' }` with
 * `{ type: 'stats', webhookIds }` (the `webhook-id` of every delivery POST this process started);
 * `{ type: 'stop' }` stops gracefully and exits 0.
 *
 * Test-only; not exported from the package.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import type { Connector } from '@switchyard/core';
import { shippedConnectors } from '../connectors.ts';
import { type BuildAppOptions, buildApp } from '../http/index.ts';
import { createLogger } from '../logging/logger.ts';
import { createHub } from '../pipeline/hub.ts';
import type { PipelineOptions } from '../pipeline/shared.ts';
import { uiPlugin } from '../ui/plugin.ts';
import { relConnector } from './connector.test-support.ts';

/** What the parent passes (as JSON in argv[2]). */
export interface HubProcessConfig {
  databaseUrl: string;
  secretKey: string;
  adminToken?: string;
  logLevel?: string;
  bodyLimit?: number;
  options?: PipelineOptions;
  /** `buildApp`'s slow-client timeouts (default: the config schema's). */
  timeouts?: BuildAppOptions['timeouts'];
  /** `buildApp`'s bound on unauthenticated body bytes (default: the config schema's). */
  unauthenticatedBodyBytes?: number;
  /** Serve the dashboard (its sign-in and sessions) too. */
  ui?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as HubProcessConfig;
const webhookIds: string[] = [];
diagnostics.subscribe('http.client.request.start', (message) => {
  const id = (message as { request: ClientRequest }).request.getHeader('webhook-id');
  if (typeof id === 'string') webhookIds.push(id);
});

// The production logger, told no secret values: the scan must find structural leaks, which the
// value scrubber would otherwise hide.
const logger = createLogger({
  level: (config.logLevel ?? 'info') as never,
  pretty: false,
  destination: process.stdout,
});
const hub = await createHub({
  databaseUrl: config.databaseUrl,
  connectors: [relConnector as unknown as Connector, ...shippedConnectors],
  secretKey: config.secretKey,
  logger,
  options: { queue: false, ...config.options },
});
await hub.start();
const app = await buildApp({
  hub,
  adminToken: config.adminToken,
  bodyLimit: config.bodyLimit ?? 256 * 1024,
  trustedProxies: [],
  logger,
  // Fuzzing sends hundreds of refused requests from one address on purpose.
  authRateLimit: false,
  ...(config.timeouts ? { timeouts: config.timeouts } : {}),
  ...(config.unauthenticatedBodyBytes ? { unauthenticatedBodyBytes: config.unauthenticatedBodyBytes } : {}),
  ...(config.ui ? { plugins: [uiPlugin({ hub, adminToken: config.adminToken })] } : {}),
});
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stats') process.send?.({ type: 'stats', webhookIds });
  if (message.type === 'stop') {
    void (async () => {
      await app.close();
      await hub.stop({ graceful: true });
      process.exit(0);
    })();
  }
});
process.send?.({ type: 'ready', port, pid: process.pid });
