// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * A started hub process with one Cliniko pull instance (`cl`, polled every 200 ms) against the
 * Cliniko simulator, and one webhook subscription (`front-desk`) to a recording subscriber: what the
 * Cliniko command tests (cliniko-commands.int, cliniko-block-commands.int) each set up the same way.
 */
import { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { fixtureSettings } from '@switchyard/connector-cliniko/testing';
import { type RecordingSubscriber, startRecordingSubscriber } from '@switchyard/testing';
import pino from 'pino';
import type { CliIO } from '../cli/command.ts';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';

const ADMIN = 'cliniko-hub-admin-token-012345678';
const SIGNING = `whsec_${Buffer.from('cliniko-hub-signing-secret!!!!!!').toString('base64')}`;

const io = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  cwd: process.cwd(),
} as unknown as CliIO;

/** The hub, the simulator and the subscriber of {@link startClinikoHub}, with the tests' helpers. */
export interface ClinikoHub {
  hub: HubProcess;
  sim: ClinikoSimulator;
  subscriber: RecordingSubscriber;
  /** An admin API call; its JSON answer read field by field. */
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** The command, once it succeeded or failed. */
  // biome-ignore lint/suspicious/noExplicitAny: read field by field in the assertions.
  finished(id: string): Promise<any>;
  stop(): Promise<void>;
}

/** Polls `check` every 25 ms until it answers something (its errors read as not yet). */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Cliniko shows updated_at by the second: a write in the second of the last version is not newer. */
export async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

/** An event's `data.causedBy`. */
export const causedBy = (r: { json?: unknown }) => (r.json as { data: { causedBy?: unknown } }).data.causedBy;

/**
 * Starts the hub on the test database `dbUrl`, its subscription taking `events`.
 *
 * @example
 * ```ts
 * const c = await startClinikoHub(db.url(), ['slot.*', 'command.*']);
 * const sent = await c.api('POST', '/v1/commands', { type: 'slot.unblock', subject, data: {} });
 * await c.finished(sent.json.id);
 * await c.stop();
 * ```
 */
export async function startClinikoHub(dbUrl: string, events: readonly string[]): Promise<ClinikoHub> {
  const subscriber = await startRecordingSubscriber({ secrets: SIGNING });
  const sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey });
  await sim.start();
  const text = [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    '  url: ${env:T_DB}',
    'secretKey: t-cliniko-hub-secret-0123456789ab',
    'instances:',
    '  - id: cl',
    '    connector: cliniko',
    '    mode: pull',
    '    settings:',
    `      apiKey: ${fixtureSettings.apiKey}`,
    `      userAgent: ${fixtureSettings.userAgent}`,
    `      apiBaseUrl: ${sim.url}`,
    '    pull: { interval: 200ms }',
    'subscriptions:',
    '  - id: front-desk',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    `    events: ${JSON.stringify(events)}`,
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    '',
  ].join('\n');
  const loaded = parseConfig(text, {
    file: 'cliniko-hub.yaml',
    connectors: shippedConnectors,
    env: { T_ADMIN: ADMIN, T_DB: dbUrl, T_SIGNING: SIGNING },
  });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const hub = await startHubProcess(loaded.config, {
    io,
    logger: pino({ level: 'silent' }),
    pipeline: { pollIntervalMs: 200, retention: { cron: false } },
    commands: {
      retryScheduleMs: [100, 100, 100],
      retryJitter: 0,
      sweepIntervalMs: 200,
      leaseMs: 10_000,
      retentionCron: false,
    },
  });
  const api: ClinikoHub['api'] = async (method, path, body) => {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const answer = await res.text();
    return { status: res.status, json: answer === '' ? undefined : JSON.parse(answer) };
  };
  return {
    hub,
    sim,
    subscriber,
    api,
    finished: (id) =>
      eventually(async () => {
        const c = (await api('GET', `/v1/commands/${id}`)).json;
        return c.status === 'succeeded' || c.status === 'failed' ? c : undefined;
      }, `command ${id} finished`),
    async stop() {
      await hub.stop();
      await subscriber.close();
      await sim.close();
    },
  };
}
