// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * The pull feed's long-poll across hub processes as they are deployed: a `--role http` process and
 * a `--role worker` process (startHubProcess, in this test's process) with one config file and one
 * database. A reader long-polls the HTTP process; a vendor push it takes is normalized by the
 * worker, and the reader has the event well before its wait ends. Stopping the HTTP process answers
 * a waiting reader at once instead of holding the graceful stop for the rest of the wait.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureSettings as quableSettings } from '@switchyard/connector-quable/testing';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { eventually, silent } from '../http/app.test-support.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';

const database = useTestDatabase();
const FEED_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const fixture = readFileSync(
  new URL('../../../connectors/quable/fixtures/document-create.json', import.meta.url),
  'utf8',
);
let http: HubProcess | undefined;
let worker: HubProcess | undefined;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-feed-roles-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'server: { host: 127.0.0.1 }',
      'database: { url: "${env:DB_URL}" }',
      'secretKey: ${env:SECRET_KEY}',
      'instances:',
      `  - ${JSON.stringify({ id: 'quable', connector: 'quable', mode: 'push', settings: quableSettings })}`,
      'subscriptions:',
      '  - { id: warehouse, kind: pull, secrets: ["${env:FEED_SECRET}"] }',
      '',
    ].join('\n'),
  );
  const env = { DB_URL: database.url(), SECRET_KEY: 'feed-roles-secret-key-0123456789', FEED_SECRET };
  const loaded = await loadConfig(file, { env, connectors: shippedConnectors });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const io = { stderr: { write: () => true }, env, cwd: dir };
  http = await startHubProcess(loaded.config, { io, logger: silent, port: 0, role: 'http' });
  worker = await startHubProcess(loaded.config, { io, logger: silent, port: 0, role: 'worker' });
}, 60_000);
afterAll(async () => {
  await http?.stop();
  await worker?.stop();
});

/** A long-poll of the warehouse feed on the HTTP process: its answer and how long it took, ms. */
async function read(query: string) {
  const started = Date.now();
  const res = await fetch(`${http!.url}/v1/subscriptions/warehouse/events?${query}`, {
    headers: { authorization: `Bearer ${FEED_SECRET}` },
  });
  return {
    status: res.status,
    json: (await res.json()) as { events: { type: string }[]; nextCursor: string },
    ms: Date.now() - started,
  };
}

it('a reader waiting on the http process gets what the worker process normalized, well before its wait ends', async () => {
  const { nextCursor } = (await read('')).json;
  const waiting = read(`after=${nextCursor}&wait=25`);
  await eventually(async () => http!.hub.feed.waiting() === 1);
  const pushed = await fetch(`${http!.url}/hooks/quable`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: quableSettings.authorization! },
    body: fixture,
  });
  expect(pushed.status).toBe(200);
  const answer = await waiting;
  expect(answer.status).toBe(200);
  expect(answer.json.events.length).toBeGreaterThan(0);
  expect(answer.ms).toBeLessThan(10_000);
}, 40_000);

it('stopping the http process answers a waiting reader at once, and the stop does not wait for it', async () => {
  const { nextCursor } = (await read('')).json;
  const waiting = read(`after=${nextCursor}&wait=30`);
  await eventually(async () => http!.hub.feed.waiting() === 1);
  const started = Date.now();
  await http!.stop();
  const stopMs = Date.now() - started;
  const answer = await waiting;
  expect(answer.status).toBe(200);
  expect(answer.json).toEqual({ events: [], nextCursor });
  expect(stopMs).toBeLessThan(10_000);
  expect(answer.ms).toBeLessThan(10_000);
  http = undefined;
}, 40_000);
