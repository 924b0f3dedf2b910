import type { Resource } from '@medplum/fhirtypes';
import { validateEvent } from '@switchyard/core';
import { startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { generateSecret } from '../delivery/sign.ts';
import { BackportReceiver } from '../fhir/backport-receiver.test-support.ts';
import { thirdPartyErrors } from '../fhir/validators.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { applyFileConfig } from '../runtime/apply.ts';
import { call, hookConnector, listen, makeHub, silent } from './app.test-support.ts';

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

describe('subscription format through the admin API', () => {
  it('defaults to cloudevents, is accepted on create and update, and is returned in reads', async () => {
    const plain = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { id: 'plain', url: 'https://crm.example/h' },
    });
    expect(plain.status).toBe(201);
    expect(plain.json.subscription.format).toBe('cloudevents');

    const created = await call(server.base, 'POST', '/v1/subscriptions', {
      body: {
        id: 'ehr',
        url: 'https://ehr.example/fhir-hook',
        eventTypes: ['appointment.*'],
        format: 'fhir-r4',
      },
    });
    expect(created.status).toBe(201);
    expect(created.json.subscription.format).toBe('fhir-r4');
    expect((await call(server.base, 'GET', '/v1/subscriptions/ehr')).json.format).toBe('fhir-r4');

    const patched = await call(server.base, 'PATCH', '/v1/subscriptions/ehr', {
      body: { format: 'fhir-r4-notification' },
    });
    expect(patched.status).toBe(200);
    expect(patched.json.format).toBe('fhir-r4-notification');
    // A patch that leaves format out keeps it.
    const again = await call(server.base, 'PATCH', '/v1/subscriptions/ehr', { body: { timeoutMs: 5000 } });
    expect(again.json.format).toBe('fhir-r4-notification');
    const listed = (await call(server.base, 'GET', '/v1/subscriptions')).json.items;
    expect(listed.map((s: { id: string; format: string }) => [s.id, s.format])).toEqual([
      ['plain', 'cloudevents'],
      ['ehr', 'fhir-r4-notification'],
    ]);
  });

  it('answers an unknown format with 400 problem+json naming the field', async () => {
    const r = await call(server.base, 'POST', '/v1/subscriptions', {
      body: {
        url: 'https://ehr.example/h',
        format: 'hl7v2',
      },
    });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.json.code).toBe('SY_HTTP_VALIDATION');
    expect(r.json.errors).toEqual([expect.objectContaining({ in: 'body', pointer: '/format' })]);
    const p = await call(server.base, 'PATCH', '/v1/subscriptions/plain', { body: { format: 'FHIR-R4' } });
    expect(p.status).toBe(400);
    expect(p.json.errors[0]).toMatchObject({ pointer: '/format' });
  });

  it('refuses a FHIR format on a pull subscription (its feed serves CloudEvents)', async () => {
    const r = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { kind: 'pull', format: 'fhir-r4' },
    });
    // The one subscription schema says it (a pull input may not name a FHIR format): the route's 400.
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('SY_HTTP_VALIDATION');
    expect(r.json.errors).toContainEqual(expect.objectContaining({ in: 'body', pointer: '/format' }));
    // A change that does not repeat the kind is refused on the merged subscription (the hub's 422).
    const feed = await call(server.base, 'POST', '/v1/subscriptions', { body: { id: 'feed', kind: 'pull' } });
    expect(feed.status).toBe(201);
    const p = await call(server.base, 'PATCH', '/v1/subscriptions/feed', { body: { format: 'fhir-r4' } });
    expect(p.status).toBe(422);
    expect(p.json.code).toBe('SY_PIPELINE_INVALID_INPUT');
    expect(p.json.detail).toMatch(/format fhir-r4 is for webhook subscriptions/);
    expect((await call(server.base, 'GET', '/v1/subscriptions/feed')).json.format).toBe('cloudevents');
  });

  it('takes format from the configuration file (subscriptions[].format)', async () => {
    const parsed = parseConfig(
      [
        'version: 1',
        'subscriptions:',
        '  - id: from-file',
        '    kind: webhook',
        '    url: https://ehr.example/notify',
        '    events: ["appointment.*"]',
        '    format: fhir-r4-notification',
        '  - id: from-file-default',
        '    kind: webhook',
        '    url: https://crm.example/h',
        '',
      ].join('\n'),
      { file: '/tmp/switchyard.yaml', connectors: [hookConnector as never], env: {} },
    );
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    await applyFileConfig(hub, parsed.config, silent);
    const got = await call(server.base, 'GET', '/v1/subscriptions/from-file');
    expect(got.json).toMatchObject({ format: 'fhir-r4-notification', managedBy: 'file' });
    expect((await call(server.base, 'GET', '/v1/subscriptions/from-file-default')).json.format).toBe(
      'cloudevents',
    );
  });

  it('refuses a FHIR subscription whose filter has a pattern that can only match types with no FHIR meaning', async () => {
    const assets = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { url: 'https://ehr.example/h', format: 'fhir-r4', eventTypes: ['appointment.*', 'asset.*'] },
    });
    expect(assets.status).toBe(422);
    expect(assets.json.code).toBe('SY_PIPELINE_INVALID_INPUT');
    expect(assets.json.detail).toMatch(
      /^eventTypes asset\.\* can only match event types with no FHIR meaning; FHIR types: appointment\.created/,
    );
    const commands = await call(server.base, 'POST', '/v1/subscriptions', {
      body: {
        url: 'https://ehr.example/h',
        format: 'fhir-r4-notification',
        eventTypes: ['command.succeeded'],
      },
    });
    expect(commands.status).toBe(422);
    // The same filter is fine for CloudEvents, and switching such a subscription to FHIR is refused.
    const plain = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { id: 'catalog', url: 'https://pim.example/h', eventTypes: ['asset.*'] },
    });
    expect(plain.status).toBe(201);
    const switched = await call(server.base, 'PATCH', '/v1/subscriptions/catalog', {
      body: { format: 'fhir-r4' },
    });
    expect(switched.status).toBe(422);
    expect((await call(server.base, 'GET', '/v1/subscriptions/catalog')).json.format).toBe('cloudevents');
    // document.* can map (clinical notes), so it is accepted.
    const notes = await call(server.base, 'POST', '/v1/subscriptions', {
      body: { url: 'https://ehr.example/notes', format: 'fhir-r4', eventTypes: ['document.*'] },
    });
    expect(notes.status).toBe(201);
  });
});

describe('the subscription test, as its subscriber reads it', () => {
  // A downstream team pressing "test" (downstream-consumer audit): a typed test of a CloudEvents
  // subscription carried `data: { message }`, which the published schema of that type refuses, and a
  // FHIR subscription was sent that CloudEvent as application/cloudevents+json, which a FHIR endpoint
  // never receives otherwise (nor does the hub send it hub.test).
  it('sends each format a body its subscriber accepts: a schema-valid event, a FHIR resource, a heartbeat', async () => {
    const secret = generateSecret();
    const subscriber = await startRecordingSubscriber({ secrets: secret, rejectInvalidSignatures: true });
    try {
      for (const [id, format] of [
        ['test-ce', 'cloudevents'],
        ['test-r4', 'fhir-r4'],
        ['test-notify', 'fhir-r4-notification'],
      ] as const) {
        const r = await call(server.base, 'POST', '/v1/subscriptions', {
          body: { id, url: `${subscriber.url}${id}`, format, secrets: [secret], allowPrivateAddresses: true },
        });
        expect(r.status, id).toBe(201);
      }
      const test = (id: string, type?: string) =>
        call(server.base, 'POST', `/v1/subscriptions/${id}/test`, { body: type ? { type } : {} });

      // CloudEvents: hub.test by default; another catalog type carries its catalog example's data.
      expect((await test('test-ce', 'appointment.rescheduled')).json).toMatchObject({ ok: true });
      const typed = await subscriber.waitFor((q) => q.path === '/test-ce');
      expect(typed.headers['content-type']).toBe('application/cloudevents+json');
      expect(validateEvent(typed.json)).toEqual({ valid: true });
      expect(typed.json).toMatchObject({ type: 'appointment.rescheduled', vendortype: 'test' });
      const unknown = await test('test-ce', 'appointment.teleported');
      expect(unknown.status).toBe(422);
      expect(unknown.json.code).toBe('SY_PIPELINE_INVALID_INPUT');

      // fhir-r4: a FHIR resource (appointment.created's by default), valid for both validators.
      expect((await test('test-r4')).json).toMatchObject({ ok: true });
      const resource = await subscriber.waitFor((q) => q.path === '/test-r4');
      expect(resource.headers['content-type']).toBe('application/fhir+json');
      expect((resource.json as Resource).resourceType).toBe('Appointment');
      expect(thirdPartyErrors(resource.json as Resource)).toEqual([]);
      const noMeaning = await test('test-r4', 'asset.created');
      expect(noMeaning.status).toBe(422);
      expect(noMeaning.json.detail).toMatch(/no FHIR meaning/);

      // fhir-r4-notification: the Backport heartbeat, which a receiver reads without an event number.
      expect((await test('test-notify')).json).toMatchObject({ ok: true });
      const heartbeat = await subscriber.waitFor((q) => q.path === '/test-notify');
      expect(heartbeat.headers['content-type']).toBe('application/fhir+json');
      expect(thirdPartyErrors(heartbeat.json as Resource)).toEqual([]);
      const receiver = new BackportReceiver();
      expect(receiver.accept(heartbeat.json)).toEqual([]);
      expect(receiver.missing('Subscription/test-notify')).toEqual([]);
      expect((await test('test-notify', 'appointment.created')).status).toBe(422);
      expect(subscriber.requests.every((q) => q.signature.valid)).toBe(true);
    } finally {
      await subscriber.close();
    }
  });
});
