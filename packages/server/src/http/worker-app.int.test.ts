// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config file uses ${env:...} references on purpose.
/**
 * The HTTP server of a `--role worker` process (health and metrics only) holds slow clients to the
 * configured `server.timeouts` as the full app does: a client that never finishes its headers is
 * answered 408 problem+json and its connection closed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestDatabase } from '@switchyard/testing';
import { expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { startHubProcess } from '../runtime/process.ts';
import { silent } from './app.test-support.ts';

const db = useTestDatabase();

/** Sends `head` without the blank line that ends it and returns what the server answers before closing. */
function unfinishedHeaders(port: number, head: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
  });
}

it('a worker process answers a client that never finishes its headers 408 after server.timeouts.headers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-worker-app-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'server:',
      '  host: 127.0.0.1',
      '  timeouts: { headers: 1s, body: 1s, request: 2s }',
      'database:',
      '  url: ${env:DB_URL}',
      'secretKey: ${env:SECRET_KEY}',
      '',
    ].join('\n'),
  );
  const env = { DB_URL: db.url(), SECRET_KEY: 'worker-app-secret-key-0123456789' };
  const loaded = await loadConfig(file, { env, connectors: shippedConnectors });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const worker = await startHubProcess(loaded.config, {
    role: 'worker',
    io: { stderr: { write: () => true }, env, cwd: dir },
    logger: silent,
    port: 0,
  });
  try {
    const address = worker.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    // Before: Node's own defaults (60 s for the headers, 300 s for the request), whatever the file said.
    const answer = await unfinishedHeaders(port, 'GET /metrics HTTP/1.1\r\nHost: worker\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('application/problem+json');
    expect(answer).toContain('SY_HTTP_REQUEST_TIMEOUT');
  } finally {
    await worker.stop();
  }
}, 30_000);
