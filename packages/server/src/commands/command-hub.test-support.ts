// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * A started hub process for the command tests: the instances a test names (YAML lines), at most
 * one webhook subscription to a recording subscriber, the command machinery with short retries, and
 * the helpers every command test used to write again (an admin API call, send a command, wait for
 * it to finish, wait for a delivered event). The vendor-specific setups (docplanner-hub,
 * cliniko-hub) and the files that run several vendors at once are built on it.
 */

import type { AddressInfo } from 'node:net';
import { type RecordingSubscriber, startRecordingSubscriber } from '@switchyard/testing';
import pino from 'pino';
import { expect } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import {
  type HubProcess,
  type ProcessIO,
  type StartHubProcessOptions,
  startHubProcess,
} from '../runtime/process.ts';

const ADMIN = 'command-hub-admin-token-0123456789';
const SIGNING = `whsec_${Buffer.from('command-hub-e2e-signing-secret!!').toString('base64')}`;

const io: ProcessIO = { stderr: { write: () => true }, env: {}, cwd: process.cwd() };

/** An event's or a command's `data`, read field by field in the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
export type Data = Record<string, any>;

/** What {@link startCommandHub} starts. */
export interface CommandHubOptions {
  /** The config's `instances:` entries, as YAML lines indented under it (`'  - id: dp'`, …). */
  instances: readonly string[];
  /** The one webhook subscription (`id`, its `events` and `sources`), to a recording subscriber; none when absent. */
  subscription?: { id: string; events: readonly string[]; sources?: readonly string[] };
  /** Values of the `${env:…}` references the instance lines make. */
  env?: Record<string, string>;
  /** The command machinery's options; default: three retries 100 ms apart, a 10 s lease, no retention. */
  commands?: StartHubProcessOptions['commands'];
  /** The config file's name in error messages. */
  file: string;
  /**
   * `server.publicUrl`: a connector whose vendor signs the hook URL (Square) is refused by the
   * config without one, also in a test that sends it commands only. The hub still listens on a free
   * port (a fixed one could be taken by a test file running beside it); pushes signed over this URL
   * go to {@link CommandHub.url}, as through a proxy. Default: none.
   */
  publicUrl?: string;
}

/** The hub, its subscriber and the tests' helpers. */
export interface CommandHub {
  hub: HubProcess;
  /** Where the hub listens (`hub.url` is `server.publicUrl` when one is given). */
  url: string;
  /** The subscription's recording subscriber (started only with a subscription). */
  subscriber: RecordingSubscriber;
  /** An admin API call; its JSON answer read field by field. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Data }>;
  /** Sends a command (202 expected) and returns its id. */
  send(body: object): Promise<string>;
  /** The command as the API shows it, once it succeeded or failed (`ms`, default 15 s). */
  finished(id: string, ms?: number): Promise<Data>;
  /** The command's outcome event (`command.succeeded` / `command.failed`) as delivered. */
  outcomeOf(id: string): Promise<{ type: string; data: Data }>;
  /** The `data` of the delivered event of `type` on `subject`, once there. */
  delivered(type: string, subject: string): Promise<Data>;
  stop(): Promise<void>;
}

/**
 * A Docplanner push instance's `instances:` lines against a simulator (or a proxy in front of it) at
 * `apiBaseUrl`, its push key from `${env:T_PUSH}`.
 *
 * @example
 * ```ts
 * startCommandHub(url, { instances: docplannerInstance('dp', sim.url), env: { T_PUSH: key }, file: 'x.yaml' });
 * ```
 */
export const docplannerInstance = (id: string, apiBaseUrl: string): string[] => [
  `  - id: ${id}`,
  '    connector: docplanner',
  '    mode: push',
  '    settings:',
  `      apiBaseUrl: ${apiBaseUrl}`,
  '      clientId: sim-client',
  '      clientSecret: sim-secret',
  '      releaseIntervalMinutes: 0',
  '      pushAuth:',
  '        headerName: x-api-key',
  '        apiKey: ${env:T_PUSH}',
];

/**
 * A Clockwise.MD push instance's `instances:` lines: its hook key in a header, its API at `apiBaseUrl`.
 *
 * @example
 * ```ts
 * clockwiseInstance('cw', { hookKey, apiKey, apiBaseUrl: cwSim.apiBaseUrl });
 * ```
 */
export const clockwiseInstance = (
  id: string,
  o: { hookKey: string; apiKey: string; apiBaseUrl: string },
): string[] => [
  `  - id: ${id}`,
  '    connector: clockwisemd',
  '    mode: push',
  '    settings:',
  `      auth: { mode: header, key: ${o.hookKey} }`,
  `      apiKey: ${o.apiKey}`,
  `      apiBaseUrl: ${o.apiBaseUrl}`,
];

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

/** An event's `data.causedBy`. */
export const causedBy = (r: { json?: unknown }) => (r.json as { data: { causedBy?: unknown } }).data.causedBy;

/**
 * Starts the hub on the test database `dbUrl`.
 *
 * @example
 * ```ts
 * const c = await startCommandHub(db.url(), {
 *   file: 'my.yaml',
 *   instances: ['  - id: cw', '    connector: clockwisemd', …],
 *   subscription: { id: 'crm', events: ['appointment.*', 'command.*'] },
 * });
 * const id = await c.send({ type: 'appointment.cancel', subject, data: {} });
 * expect((await c.finished(id)).status).toBe('succeeded');
 * await c.stop();
 * ```
 */
export async function startCommandHub(dbUrl: string, options: CommandHubOptions): Promise<CommandHub> {
  const sub = options.subscription;
  const subscriber = sub ? await startRecordingSubscriber({ secrets: SIGNING }) : undefined;
  const text = [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    ...(options.publicUrl ? [`  publicUrl: ${options.publicUrl}`] : []),
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    '  url: ${env:T_DB}',
    'secretKey: t-command-hub-secret-key-01234567',
    'instances:',
    ...options.instances,
    ...(sub && subscriber
      ? [
          'subscriptions:',
          `  - id: ${sub.id}`,
          '    kind: webhook',
          `    url: ${subscriber.url}`,
          `    events: ${JSON.stringify(sub.events)}`,
          ...(sub.sources ? [`    sources: ${JSON.stringify(sub.sources)}`] : []),
          '    secrets: ["${env:T_SIGNING}"]',
          '    allowPrivateAddresses: true',
          '    retry: { schedule: ["0s", "1s"] }',
        ]
      : []),
    '',
  ].join('\n');
  const loaded = parseConfig(text, {
    file: options.file,
    connectors: shippedConnectors,
    env: { ...options.env, T_ADMIN: ADMIN, T_DB: dbUrl, T_SIGNING: SIGNING },
  });
  if (!loaded.ok) {
    await subscriber?.close();
    throw new Error(JSON.stringify(loaded.problems));
  }
  const hub = await startHubProcess(loaded.config, {
    io,
    logger: pino({ level: 'silent' }),
    pipeline: { pollIntervalMs: 200, retention: { cron: false } },
    commands: options.commands ?? {
      retryScheduleMs: [100, 100, 100],
      retryJitter: 0,
      sweepIntervalMs: 200,
      leaseMs: 10_000,
      retentionCron: false,
    },
  });
  const url = `http://127.0.0.1:${(hub.app.server.address() as AddressInfo).port}`;
  const api: CommandHub['api'] = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
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
  const recording = () => {
    if (!subscriber) throw new Error('this hub was started without a subscription');
    return subscriber;
  };
  return {
    hub,
    url,
    get subscriber() {
      return recording();
    },
    api,
    async send(body) {
      const r = await api('POST', '/v1/commands', body);
      expect(r.status, JSON.stringify(r.json)).toBe(202);
      return r.json.id as string;
    },
    finished: (id, ms = 15_000) =>
      eventually(
        async () => {
          const c = (await api('GET', `/v1/commands/${id}`)).json;
          return c.status === 'succeeded' || c.status === 'failed' ? c : undefined;
        },
        `command ${id} finished`,
        ms,
      ),
    async outcomeOf(id) {
      const r = await recording().waitFor(
        (x) =>
          (x.type === 'command.succeeded' || x.type === 'command.failed') && x.subject === `command/${id}`,
        15_000,
      );
      return { type: r.type!, data: (r.json as { data: Data }).data };
    },
    async delivered(type, subject) {
      const r = await recording().waitFor((x) => x.type === type && x.subject === subject, 15_000);
      return (r.json as { data: Data }).data;
    },
    async stop() {
      await hub.stop();
      await subscriber?.close();
    },
  };
}
