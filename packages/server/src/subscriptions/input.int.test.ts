/**
 * One rule set for a subscription's input, whoever sends it: the admin route (fastify, the schema of
 * ./schema.ts), the config file (converted, then the same check) and the library API
 * (`hub.subscriptions.create`, ajv with the same schema) refuse the same bad values and accept the
 * same good ones. Before, the timeout alone was 100 ms–120 s on the route, 1 ms–300 s in the hub and
 * unbounded in the file.
 */
import { isSwitchyardError } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load.ts';
import { call, hookConnector, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { lockWaiters, until } from '../storage/locks.test-support.ts';
import type { SubscriptionInput } from './api.ts';

/** One input in the API's form and in the file's (durations, `events`, `approver: {…}`). */
interface Case {
  name: string;
  api: SubscriptionInput;
  file: Record<string, unknown>;
}

const url = 'https://crm.example/hooks';
const webhook = (api: SubscriptionInput, file: Record<string, unknown>) => ({
  api: { url, ...api },
  file: { kind: 'webhook', url, ...file },
});

const bad: Case[] = [
  { name: 'a timeout under 100 ms', ...webhook({ timeoutMs: 99 }, { timeout: '99ms' }) },
  { name: 'a timeout over 120 s', ...webhook({ timeoutMs: 120_001 }, { timeout: '120001ms' }) },
  { name: 'an unknown format', ...webhook({ format: 'fhir-r5' as never }, { format: 'fhir-r5' }) },
  {
    name: 'an unknown content type',
    ...webhook({ contentType: 'text/plain' as never }, { contentType: 'text/plain' }),
  },
  { name: 'an unknown ordering', ...webhook({ ordering: 'never' as never }, { ordering: 'never' }) },
  {
    name: 'an event type that is no pattern',
    ...webhook({ eventTypes: ['Appointment created'] }, { events: ['Appointment created'] }),
  },
  {
    name: 'a misspelt event type',
    ...webhook({ eventTypes: ['appointment.craeted'] }, { events: ['appointment.craeted'] }),
  },
  {
    name: 'a family not in the catalog',
    ...webhook({ eventTypes: ['apointment.*'] }, { events: ['apointment.*'] }),
  },
  {
    name: 'an approver of a type not in the catalog',
    api: { url, approver: true, eventTypes: ['appointment.booking_request'] },
    file: { kind: 'webhook', url, approver: { events: ['appointment.booking_request'] } },
  },
  { name: 'no event type at all', ...webhook({ eventTypes: [] }, { events: [] }) },
  {
    name: 'no dead deliveries before disabling',
    ...webhook({ disableAfterConsecutiveDead: 0 }, { disableAfterConsecutiveDead: 0 }),
  },
  { name: 'a zero rate', ...webhook({ rateLimit: { perSecond: 0 } }, { rateLimit: { perSecond: 0 } }) },
  { name: 'an empty retry schedule', ...webhook({ retryScheduleMs: [] }, { retry: { schedule: [] } }) },
  { name: 'a webhook without a url', api: { kind: 'webhook' }, file: { kind: 'webhook' } },
  {
    name: 'a url with user:password@',
    ...webhook({ url: 'http://user:pw@crm.example/x' }, { url: 'http://user:pw@crm.example/x' }),
  },
  {
    name: 'a url that is not http',
    ...webhook({ url: 'ftp://crm.example/x' }, { url: 'ftp://crm.example/x' }),
  },
  // whsec_ + base64 of 2 bytes: the schema checked only the prefix, and the hub refused it later,
  // when sealing it (the route answered 422 where every other bad field answers 400).
  { name: 'a whsec_ secret too short', ...webhook({ secrets: ['whsec_AAAA'] }, { secrets: ['whsec_AAAA'] }) },
  {
    name: 'a whsec_ secret that is not base64',
    ...webhook({ secrets: [`whsec_${'!'.repeat(32)}`] }, { secrets: [`whsec_${'!'.repeat(32)}`] }),
  },
  { name: 'a pull subscription with a url', api: { kind: 'pull', url }, file: { kind: 'pull', url } },
  {
    name: 'a pull subscription that approves',
    api: { kind: 'pull', approver: true },
    file: { kind: 'pull', approver: {} },
  },
  {
    name: 'a pull subscription with a FHIR format',
    api: { kind: 'pull', format: 'fhir-r4' },
    file: { kind: 'pull', format: 'fhir-r4' },
  },
];

const good: Case[] = [
  { name: 'the shortest timeout', ...webhook({ timeoutMs: 100 }, { timeout: '100ms' }) },
  { name: 'the longest timeout', ...webhook({ timeoutMs: 120_000 }, { timeout: '2m' }) },
  { name: 'FHIR R4 resources', ...webhook({ format: 'fhir-r4' }, { format: 'fhir-r4' }) },
  {
    name: 'FHIR R4 notifications',
    ...webhook({ format: 'fhir-r4-notification' }, { format: 'fhir-r4-notification' }),
  },
  {
    name: 'families and exact types',
    ...webhook(
      { eventTypes: ['appointment.*', 'slot.blocked', 'command.succeeded'] },
      { events: ['appointment.*', 'slot.blocked', 'command.succeeded'] },
    ),
  },
  { name: 'a pull feed', api: { kind: 'pull' }, file: { kind: 'pull' } },
  {
    name: 'secrets of 24 and 64 bytes',
    ...webhook(
      { secrets: [`whsec_${'A'.repeat(32)}`, `whsec_${'B'.repeat(86)}==`] },
      { secrets: [`whsec_${'A'.repeat(32)}`, `whsec_${'B'.repeat(86)}==`] },
    ),
  },
  {
    name: 'an approver with a schedule and a rate',
    ...webhook(
      { approver: true, retryScheduleMs: [0, 5000], rateLimit: { perSecond: 2.5 } },
      { approver: {}, retry: { schedule: ['0s', '5s'] }, rateLimit: { perSecond: 2.5 } },
    ),
  },
];

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url());
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

let n = 0;
const nextId = () => `case-${++n}`;

/** What each of the three says to one case: refused (true) or accepted (false). */
async function refusals(c: Case): Promise<{ route: number; file: boolean; hub: boolean }> {
  const route = await call(server.base, 'POST', '/v1/subscriptions', { body: { id: nextId(), ...c.api } });
  const loaded = parseConfig(stringify({ version: 1, subscriptions: [{ id: nextId(), ...c.file }] }), {
    file: 'inline.yaml',
    connectors: [hookConnector as never],
  });
  let refusedByHub = false;
  try {
    await hub.subscriptions.create({ id: nextId(), ...c.api });
  } catch (error) {
    if (!isSwitchyardError(error) || error.code !== 'SY_PIPELINE_INVALID_INPUT') throw error;
    refusedByHub = true;
  }
  if (!loaded.ok) expect(loaded.problems[0]?.path).toMatch(/^subscriptions\[0\]/);
  return { route: route.status, file: !loaded.ok, hub: refusedByHub };
}

describe('a subscription input gets the same answer from the route, the config file and the hub', () => {
  for (const c of bad) {
    it(`refuses ${c.name}`, async () => {
      const r = await refusals(c);
      expect(r.route).toBe(400);
      expect(r.file, 'the config loader accepted it').toBe(true);
      expect(r.hub, 'hub.subscriptions.create accepted it').toBe(true);
    });
  }
  for (const c of good) {
    it(`accepts ${c.name}`, async () => {
      expect(await refusals(c)).toEqual({ route: 201, file: false, hub: false });
    });
  }

  it('refuses sources naming no instance in all three, in the same words, and accepts known ones', async () => {
    // The file refused `sources: [shop, shpo]` with the unknown name; the route and the hub saved
    // a subscription that silently never received anything from it.
    await hub.instances.upsert({ id: 'shop', connector: 'hooktest', settings: { apiKey: 'k-1' } });
    const x = 'unknown instance "shpo"; instances: shop; did you mean "shop"?';
    const loaded = parseConfig(
      stringify({
        version: 1,
        instances: [{ id: 'shop', connector: 'hooktest', settings: { apiKey: 'k-1' } }],
        subscriptions: [{ id: nextId(), kind: 'webhook', url, sources: ['shop', 'shpo'] }],
      }),
      { file: 'inline.yaml', connectors: [hookConnector as never] },
    );
    expect(loaded.ok ? [] : loaded.problems.map((p) => [p.path, p.message])).toEqual([
      ['subscriptions[0].sources[1]', x],
    ]);
    const route = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { id: nextId(), url, sources: ['shop', 'shpo'] },
    });
    expect(route.status, JSON.stringify(route.json)).toBe(422);
    expect(route.json.detail).toBe(`sources.1 ${x}`);
    await expect(
      hub.subscriptions.create({ id: nextId(), url, approver: true, approverFilters: { sources: ['shpo'] } }),
    ).rejects.toMatchObject({ code: 'SY_PIPELINE_INVALID_INPUT', message: `approverFilters.sources.0 ${x}` });
    const { subscription } = await hub.subscriptions.create({ id: nextId(), url, sources: ['shop'] });
    const patched = await call(server.base, 'PATCH', `/v1/subscriptions/${subscription.id}`, {
      body: { sources: ['shpo'] },
    });
    expect(patched.status).toBe(422);
    expect((await hub.subscriptions.get(subscription.id)).sources).toEqual(['shop']);
    // The instance the subscription names is not deleted (docs/api.md, DELETE /v1/instances/{id}).
    await expect(hub.instances.remove('shop')).rejects.toMatchObject({
      code: 'SY_PIPELINE_CONFLICT',
      details: { instance: 'shop', subscriptions: [subscription.id] },
    });
    // A change that leaves sources out keeps them, also once their instance is gone (deleted
    // by a version that let it be).
    const client = new pg.Client({ connectionString: database.url() });
    await client.connect();
    await client.query(`delete from switchyard.connector_instances where id = 'shop'`);
    await client.end();
    expect((await hub.subscriptions.update(subscription.id, { timeoutMs: 5000 })).sources).toEqual(['shop']);
  });

  it('a subscription naming an instance another session is deleting waits for the delete, and is refused once it is gone', async () => {
    // Checked unlocked, the instance was found, the delete committed, and the subscription was
    // saved naming no instance (the delete's own check had found no subscription naming it).
    await hub.instances.upsert({ id: 'going', connector: 'hooktest', settings: { apiKey: 'k-1' } });
    const other = new pg.Client({ connectionString: database.url() });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(`delete from switchyard.connector_instances where id = 'going'`);
      const made = call(server.base, 'POST', '/v1/subscriptions', {
        body: { id: nextId(), url, sources: ['going'] },
      });
      const first = await Promise.race([
        made.then(() => 'answered before the delete committed'),
        until(async () => (await lockWaiters(hub.host.db)) === 1).then(() => 'waiting'),
      ]);
      await other.query('commit');
      expect(first).toBe('waiting');
      const answer = await made;
      expect(answer.status).toBe(422);
      expect(answer.json.detail).toContain('unknown instance "going"');
    } finally {
      await other.end();
    }
  });

  it('words a too-short signing secret the same on the route, in the file and in the hub', async () => {
    const x = 'must be a Standard Webhooks signing secret (whsec_ + base64 of 24 to 64 bytes)';
    const route = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { id: nextId(), url, secrets: ['whsec_AAAA'] },
    });
    expect(route.status).toBe(400);
    expect(route.json.errors).toEqual([{ in: 'body', pointer: '/secrets/0', message: x }]);
    const loaded = parseConfig(
      stringify({
        version: 1,
        subscriptions: [{ id: nextId(), kind: 'webhook', url, secrets: ['whsec_AAAA'] }],
      }),
      { file: 'inline.yaml', connectors: [hookConnector as never] },
    );
    expect(loaded.ok).toBe(false);
    if (!loaded.ok) expect(loaded.problems[0]?.message).toContain(x);
    const hubError = await hub.subscriptions
      .create({ id: nextId(), url, secrets: ['whsec_AAAA'] })
      .catch((e) => e);
    expect(hubError.message).toContain(`secrets.0 ${x}`);
  });

  it('says why a conditional rule refused, without the `if` keyword\'s own "must match \\"then\\" schema"', async () => {
    // The route's problem said both (detail `…(FHIR clients read /fhir/r4); body must match "then"
    // schema`, and a second entry in errors[] with the pointer ""); the hub and the file say only why.
    const route = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { id: nextId(), kind: 'pull', format: 'fhir-r4' },
    });
    expect(route.status).toBe(400);
    expect(route.json.errors).toEqual([
      {
        in: 'body',
        pointer: '/format',
        message: 'a pull feed serves CloudEvents; FHIR formats are for webhooks (FHIR clients read /fhir/r4)',
      },
    ]);
    expect(route.json.detail).not.toContain('then');
  });

  it('refuses a FHIR filter pattern with no FHIR meaning in all three (a rule on the merged subscription)', async () => {
    const c = webhook(
      { format: 'fhir-r4', eventTypes: ['appointment.*', 'asset.*'] },
      { format: 'fhir-r4', events: ['appointment.*', 'asset.*'] },
    );
    // The schema cannot say it, so the route hands it to the hub, whose check answers 422.
    expect(await refusals({ name: 'a FHIR filter', ...c })).toEqual({ route: 422, file: true, hub: true });
  });

  it('refuses a FHIR subscription as an approver in all three, and a change that makes one', async () => {
    // The approval request is a CloudEvent (docs/gates.md): a fhir-r4 approver was accepted, got it
    // at its FHIR endpoint as application/cloudevents+json, and a 4xx from that endpoint refused
    // every booking the vendor asked about.
    for (const format of ['fhir-r4', 'fhir-r4-notification'] as const) {
      const c = webhook(
        { format, eventTypes: ['appointment.*'], approver: true },
        { format, events: ['appointment.*'], approver: {} },
      );
      expect(await refusals({ name: `a ${format} approver`, ...c }), format).toEqual({
        route: 422,
        file: true,
        hub: true,
      });
    }
    const loaded = parseConfig(
      stringify({
        version: 1,
        subscriptions: [{ id: 'ehr', ...webhook({}, { format: 'fhir-r4', approver: {} }).file }],
      }),
      { file: 'inline.yaml', connectors: [hookConnector as never] },
    );
    expect(loaded.ok ? [] : loaded.problems.map((p) => p.path)).toEqual(['subscriptions[0].approver']);
    const { subscription } = await hub.subscriptions.create({ url, format: 'fhir-r4' });
    const patched = await call(server.base, 'PATCH', `/v1/subscriptions/${subscription.id}`, {
      body: { approver: true },
    });
    expect(patched.status).toBe(422);
    expect(patched.json.detail).toContain('cannot be an approver');
    const approver = await hub.subscriptions.create({ url, approver: true });
    await expect(
      hub.subscriptions.update(approver.subscription.id, { format: 'fhir-r4' }),
    ).rejects.toMatchObject({
      code: 'SY_PIPELINE_INVALID_INPUT',
    });
  });

  it('words a refused duration in the file as a duration, at the line it is on', () => {
    const loaded = parseConfig(
      'version: 1\nsubscriptions:\n  - id: crm\n    kind: webhook\n    url: https://crm.example/hooks\n    timeout: 5m\n',
      { file: 'inline.yaml', connectors: [hookConnector as never] },
    );
    expect(loaded.problems).toEqual([
      expect.objectContaining({
        line: 6,
        path: 'subscriptions[0].timeout',
        message: '"5m" is too long: must be at most 120s',
      }),
    ]);
  });

  it('refuses a change the same way (PATCH and hub.subscriptions.update)', async () => {
    const { subscription } = await hub.subscriptions.create({ url });
    const patched = await call(server.base, 'PATCH', `/v1/subscriptions/${subscription.id}`, {
      body: { timeoutMs: 50 },
    });
    expect(patched.status).toBe(400);
    await expect(hub.subscriptions.update(subscription.id, { timeoutMs: 50 })).rejects.toMatchObject({
      code: 'SY_PIPELINE_INVALID_INPUT',
    });
    expect((await hub.subscriptions.update(subscription.id, { format: 'fhir-r4' })).format).toBe('fhir-r4');
  });
});
