/**
 * No secret leaks: a hub process at debug level runs every shipped connector with distinctive
 * credentials, pushes good and bad requests, fails and succeeds deliveries, and answers every GET
 * of the admin API, metrics and health. Its whole stdout/stderr and every HTTP answer (headers
 * and body) are searched for every secret value.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { createHub } from '../pipeline/hub.ts';
import {
  ADMIN_TOKEN,
  API_KEY,
  eventually,
  FAST_OPTIONS,
  fixtureBodies,
  type HubChild,
  INSTANCE,
  type RealInstance,
  realInstances,
  SECRET_KEY,
  spawnHub,
} from './support.test-support.ts';

const database = useTestDatabase();
const good = generateSecret();
const failing = generateSecret();
let okSubscriber: RecordingSubscriber;
let badSubscriber: RecordingSubscriber;
let child: HubChild;
let real: RealInstance[];
/** Every answer the hub gave: status line, headers and body. */
const answers: string[] = [];

async function call(path: string, init: RequestInit = {}) {
  const res = await fetch(`${child.base}${path}`, init);
  const text = await res.text();
  answers.push(`${res.status}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${text}`);
  return { status: res.status, text };
}
const admin = (path: string, init: RequestInit = {}) =>
  call(path, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.headers as Record<string, string>) },
  });

beforeAll(async () => {
  okSubscriber = await startRecordingSubscriber({ secrets: good });
  // A subscriber that fails loudly: its answers end up in attempt snippets and logs.
  badSubscriber = await startRecordingSubscriber({
    defaultResponse: { status: 500, body: { error: 'boom' } },
  });
  real = realInstances(9);
  const setup = await createHub({
    databaseUrl: database.url(),
    connectors: [
      (await import('./connector.test-support.ts')).relConnector,
      ...(await import('../connectors.ts')).shippedConnectors,
    ],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    options: { workers: false, queue: false },
  });
  await setup.instances.upsert({ id: INSTANCE, connector: 'reltest', settings: { apiKey: API_KEY } });
  for (const r of real)
    await setup.instances.upsert({ id: r.id, connector: r.connector, settings: r.settings as never });
  await setup.subscriptions.create({
    id: 'ok',
    url: `${okSubscriber.url}ok`,
    secrets: [good],
    allowPrivateAddresses: true,
  });
  await setup.subscriptions.create({
    id: 'failing',
    url: `${badSubscriber.url}bad`,
    secrets: [failing],
    allowPrivateAddresses: true,
    retryScheduleMs: [0, 50],
    ordering: 'release',
  });
  await setup.stop();
  child = await spawnHub({
    databaseUrl: database.url(),
    secretKey: SECRET_KEY,
    adminToken: ADMIN_TOKEN,
    logLevel: 'debug',
    options: FAST_OPTIONS,
  });
});

afterAll(async () => {
  await child?.stop();
  await okSubscriber?.close();
  await badSubscriber?.close();
});

it('shows no secret in logs, errors, API answers or metrics during a full run', {
  timeout: 90_000,
}, async () => {
  // Pushes: every fixture of every connector with good credentials, and wrong ones.
  for (const r of real) {
    for (const body of fixtureBodies(r.vendor)) {
      await call(`/hooks/${r.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...r.goodHeaders },
        body,
      });
      await call(`/hooks/${r.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer nope' },
        body,
      });
    }
  }
  for (let n = 0; n < 5; n++) {
    await call(`/hooks/${INSTANCE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ id: `s-${n}`, subject: `s-${n % 2}` }),
    });
  }
  await call(`/hooks/${INSTANCE}/k/${API_KEY}`, {
    method: 'POST',
    body: JSON.stringify({ id: 'keyed', subject: 's' }),
  });
  await admin('/v1/subscriptions', { headers: { authorization: 'Bearer wrong-token' } });
  // Deliveries succeed on one subscription and die on the other.
  let progress = '';
  await eventually(
    'deliveries done',
    async () => {
      const dead = JSON.parse((await admin('/v1/deliveries?status=dead&subscriptionId=failing')).text) as {
        items: unknown[];
      };
      progress = `ok ${okSubscriber.requests.length}, dead ${dead.items.length}`;
      return okSubscriber.requests.length >= 6 && dead.items.length >= 5; // 5 dead disable it
    },
    40_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (${progress})\n${child.output().slice(-3000)}`);
  });
  await admin('/v1/subscriptions/ok/test', { method: 'POST' });
  await admin('/v1/subscriptions/failing/rotate-secret', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });

  // Every GET route of the admin API (from the OpenAPI document), with real ids.
  const openapi = JSON.parse((await admin('/v1/openapi.json')).text) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const list = async (path: string) =>
    (JSON.parse((await admin(path)).text) as { items: { id: string }[] }).items;
  const ids: Record<string, string[]> = {
    instances: real.map((r) => r.id).concat(INSTANCE),
    subscriptions: ['ok', 'failing'],
    events: (await list('/v1/events?limit=5')).map((e) => e.id),
    deliveries: (await list('/v1/deliveries?limit=5')).map((d) => d.id),
    inbound: (await list('/v1/inbound?limit=200')).map((m) => m.id),
  };
  let gets = 0;
  for (const [path, methods] of Object.entries(openapi.paths)) {
    if (!('get' in methods) || !path.startsWith('/v1/')) continue;
    const kind = path.split('/')[2]!;
    for (const id of path.includes('{') ? (ids[kind] ?? []) : ['']) {
      await admin(path.replace(/\{[^}]+\}/g, id));
      gets++;
    }
  }
  expect(gets).toBeGreaterThan(20);
  await call('/metrics');
  await call('/healthz');
  await call('/readyz');
  // Let the process log what is in flight, then stop it so its log is complete.
  await child.stop();
  const output = child.output();

  const secrets = [
    ADMIN_TOKEN,
    SECRET_KEY,
    API_KEY,
    good,
    good.slice('whsec_'.length),
    failing,
    failing.slice('whsec_'.length),
    ...real.flatMap((r) => r.secrets),
  ];
  const haystacks = { logs: output, answers: answers.join('\n----\n') };
  const found: string[] = [];
  for (const [where, text] of Object.entries(haystacks)) {
    for (const secret of secrets) {
      const at = text.indexOf(secret);
      // Name the place (a little context, the secret itself masked) so a failure says what leaked where.
      if (at !== -1)
        found.push(`${where}: …${text.slice(Math.max(0, at - 120), at)}[${secret.slice(0, 4)}…]`);
    }
  }
  console.info('secret scan', {
    logBytes: output.length,
    logLines: output.split('\n').length,
    answers: answers.length,
    adminGets: gets,
    secrets: secrets.length,
    found,
  });
  // The scan saw real traffic: debug logs of requests and failed deliveries.
  expect(output).toContain('"level":20');
  expect(output.split('\n').length).toBeGreaterThan(100);
  expect(found).toEqual([]);
});
