// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * A started hub process with one Docplanner push instance (`dp`) against the Docplanner simulator
 * (its write API echoing each change to the hub's hook), and one webhook subscription (`rota`) to a
 * recording subscriber: what the Docplanner command tests (slot-commands.int,
 * block-before-echo.int) each set up the same way.
 */
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { type RecordingSubscriber, startRecordingSubscriber } from '@switchyard/testing';
import pino from 'pino';
import { expect } from 'vitest';
import type { CliIO } from '../cli/command.ts';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';

const ADMIN = 'docplanner-hub-admin-token-0123456789';
const PUSH_KEY = 'dp-hub-push-key-9f8e7d6c';
const SIGNING = `whsec_${Buffer.from('docplanner-hub-e2e-signing-32b!!').toString('base64')}`;

/** The simulated account's place (facility, doctor, address) the tests act at. */
export const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

const io = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  cwd: process.cwd(),
} as unknown as CliIO;

/** An event's `data`, read field by field in the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
export type Data = Record<string, any>;

/** A `slot.block`'s data at {@link PLACE}. */
export const blockData = (start: string, end: string, reason?: string) => ({
  start,
  end,
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  organization: { id: PLACE.facility },
  ...(reason === undefined ? {} : { reason }),
});

/** The hub, the simulator and the subscriber of {@link startDocplannerHub}, with the tests' helpers. */
export interface DocplannerHub {
  hub: HubProcess;
  sim: DocplannerSimulator;
  subscriber: RecordingSubscriber;
  /** An admin API call; its JSON answer read field by field. */
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** Sends a command (202 expected) and returns its id. */
  send(body: object): Promise<string>;
  /** The command's outcome event (`command.succeeded` / `command.failed`) as delivered. */
  outcomeOf(id: string): Promise<{ type: string; data: Data }>;
  /** The `data` of the delivered event of `type` on `subject`, once there. */
  delivered(type: string, subject: string): Promise<Data>;
  stop(): Promise<void>;
}

/**
 * Starts the hub on the test database `dbUrl`, its subscription taking `events`.
 *
 * @example
 * ```ts
 * const d = await startDocplannerHub(db.url(), ['slot.*', 'command.*']);
 * const id = await d.send({ type: 'slot.block', instance: 'dp', data: blockData(start, end) });
 * const { data } = await d.outcomeOf(id); // data.result.slotId
 * await d.stop();
 * ```
 */
export async function startDocplannerHub(dbUrl: string, events: readonly string[]): Promise<DocplannerHub> {
  const subscriber = await startRecordingSubscriber({ secrets: SIGNING });
  const sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  const text = [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    '  adminToken: ${env:T_ADMIN}',
    'database:',
    '  url: ${env:T_DB}',
    'secretKey: t-docplanner-hub-secret-key-0123',
    'instances:',
    '  - id: dp',
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    `      apiBaseUrl: ${sim.url}`,
    '      clientId: sim-client',
    '      clientSecret: sim-secret',
    '      releaseIntervalMinutes: 0',
    '      pushAuth:',
    '        headerName: x-api-key',
    '        apiKey: ${env:T_PUSH}',
    'subscriptions:',
    '  - id: rota',
    '    kind: webhook',
    `    url: ${subscriber.url}`,
    `    events: ${JSON.stringify(events)}`,
    '    sources: [dp]',
    '    secrets: ["${env:T_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "1s"] }',
    '',
  ].join('\n');
  const loaded = parseConfig(text, {
    file: 'docplanner-hub.yaml',
    connectors: shippedConnectors,
    env: { T_ADMIN: ADMIN, T_DB: dbUrl, T_PUSH: PUSH_KEY, T_SIGNING: SIGNING },
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
  sim.writes.hookUrl = `${hub.url}/hooks/dp`;
  const api: DocplannerHub['api'] = async (method, path, body) => {
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
    async send(body) {
      const r = await api('POST', '/v1/commands', body);
      expect(r.status, JSON.stringify(r.json)).toBe(202);
      return r.json.id as string;
    },
    async outcomeOf(id) {
      const r = await subscriber.waitFor(
        (x) =>
          (x.type === 'command.succeeded' || x.type === 'command.failed') && x.subject === `command/${id}`,
        15_000,
      );
      return { type: r.type!, data: (r.json as { data: Data }).data };
    },
    async delivered(type, subject) {
      const r = await subscriber.waitFor((x) => x.type === type && x.subject === subject, 15_000);
      return (r.json as { data: Data }).data;
    },
    async stop() {
      await hub.stop();
      await sim.close();
      await subscriber.close();
    },
  };
}
