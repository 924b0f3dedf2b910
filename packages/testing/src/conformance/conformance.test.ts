import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ConnectorDefinition,
  ConnectorError,
  defineConnector,
  isJsonObject,
  type JsonObject,
  validateEvent,
} from '@switchyard/core';
import { afterAll, describe, expect, it } from 'vitest';
import { ACME_API_KEY, type AcmeConfig, acme, acmeDefinition } from './__fixtures__/acme-connector.ts';
import { type ConformanceCheck, type ConformanceOptions, checkConformance } from './check.ts';
import { completeEvent } from './complete-event.ts';
import { describeConformance } from './describe.ts';

const baseOptions: ConformanceOptions<AcmeConfig> = {
  connector: acme,
  config: { apiKey: ACME_API_KEY },
  fixturesDir: new URL('./__fixtures__/acme/', import.meta.url),
  credentials: {
    good: { headers: { 'x-api-key': ACME_API_KEY } },
    wrong: [{ headers: { 'x-api-key': 'nope' } }, { headers: { 'x-api-key': '' } }],
    missing: {},
  },
  fixtures: [
    { file: 'ping.json', expect: 'test' },
    { file: 'booking-created.json', expect: ['appointment.created'] },
    { file: 'booking-noted.json', expect: 'ignored' },
    { file: 'booking-cancelled.json', expect: ['appointment.cancelled'] },
  ],
};

/** The same options with the connector changed. */
function withConnector(changes: Partial<ConnectorDefinition<AcmeConfig>>): ConformanceOptions<AcmeConfig> {
  return { ...baseOptions, connector: defineConnector({ ...acmeDefinition, ...changes }) };
}

function withPush(changes: Partial<NonNullable<ConnectorDefinition<AcmeConfig>['push']>>) {
  return withConnector({ push: { ...acmeDefinition.push!, ...changes } });
}

async function failedChecks(options: ConformanceOptions<AcmeConfig>): Promise<ConformanceCheck[]> {
  const report = await checkConformance(options);
  return [...new Set(report.failures.map((f) => f.check))];
}

async function failuresOf(
  options: ConformanceOptions<AcmeConfig>,
  check: ConformanceCheck,
): Promise<string[]> {
  const report = await checkConformance(options);
  return report.failures.filter((f) => f.check === check).map((f) => `${f.fixture ?? ''}: ${f.message}`);
}

// The suite as connectors use it: the toy connector passes every group.
describeConformance(baseOptions);

describe('checkConformance', () => {
  it('passes a well-behaved connector and covers every group it can', async () => {
    const report = await checkConformance(baseOptions);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    const groups = new Set(report.results.map((r) => r.check));
    for (const check of [
      'fixtures',
      'auth',
      'auth-near-miss',
      'malformed',
      'normalize',
      'event-valid',
      'event-map',
      'dedupe-stable',
      'dedupe-distinct',
      'round-trip',
    ] as const) {
      expect(groups.has(check), check).toBe(true);
    }
  });

  it('fails when parse crashes on a malformed body', async () => {
    const options = withPush({
      parse(request) {
        const body = JSON.parse(request.rawBody.toString()) as JsonObject;
        const booking = body.booking as JsonObject;
        if ((body.event as string).toString() === 'ping') return [];
        return [
          {
            type: body.event as string,
            dedupeKey: body.id as string,
            occurredAt: body.occurred_at as string,
            orderingKey: booking.id as string,
            payload: body,
          },
        ];
      },
    });
    expect(await failedChecks(options)).toEqual(['malformed']);
    const messages = await failuresOf(options, 'malformed');
    expect(messages.some((m) => /empty body: parse threw SyntaxError/.test(m))).toBe(true);
    expect(messages.some((m) => /empty object: parse threw TypeError/.test(m))).toBe(true);
  });

  it('fails when a connector-specific malformed body is accepted', async () => {
    const messages = await failuresOf(
      {
        ...baseOptions,
        malformedBodies: ['{"event":"booking.created","id":"x","occurred_at":"t","booking":{"id":"1"}}'],
      },
      'malformed',
    );
    expect(messages).toEqual([
      expect.stringMatching(/connector malformed body #1: parse returned 1 notification/),
    ]);
  });

  it('fails when dedupe keys are unstable', async () => {
    const options = withPush({
      parse(request, config) {
        return acmeDefinition.push!.parse(request, config).map((n) => ({
          ...n,
          dedupeKey: `${n.dedupeKey}@${request.receivedAt.toISOString()}`,
        }));
      },
    });
    expect(await failedChecks(options)).toEqual(['dedupe-stable']);
  });

  it('accepts receive-time dedupe keys only when the connector declares them', async () => {
    const options = {
      ...withPush({
        parse(request, config) {
          return acmeDefinition.push!.parse(request, config).map((n) => ({
            ...n,
            dedupeKey: `${n.dedupeKey}@${request.receivedAt.toISOString()}`,
          }));
        },
      }),
      dedupeKeysUseReceiveTime: true,
    };
    expect(await failedChecks(options)).toEqual([]);
  });

  it('fails when dedupe keys collide', async () => {
    const options = withPush({
      parse(request, config) {
        return acmeDefinition.push!.parse(request, config).map((n) => ({ ...n, dedupeKey: 'acme' }));
      },
    });
    expect(await failedChecks(options)).toEqual(['dedupe-distinct']);
    expect(await failuresOf(options, 'dedupe-distinct')).toEqual([
      expect.stringContaining('shared by booking-created.json, booking-noted.json, booking-cancelled.json'),
    ]);
  });

  it('fails when wrong credentials are accepted', async () => {
    const options = withPush({
      authenticate(request) {
        if (!request.headers['x-api-key']) throw ConnectorError.auth('no key');
      },
    });
    const messages = await failuresOf(options, 'auth');
    expect(messages).toEqual([expect.stringContaining('wrong credential #1 were accepted')]);
  });

  it('fails when missing credentials are accepted', async () => {
    const options = withPush({
      authenticate(request, config) {
        const key = request.headers['x-api-key'];
        if (key !== undefined && key !== config.apiKey) throw ConnectorError.auth('bad key');
      },
    });
    expect(await failedChecks(options)).toEqual(['auth']);
    expect(await failuresOf(options, 'auth')).toEqual([
      expect.stringContaining('missing credentials were accepted'),
    ]);
  });

  it('fails when a near-miss credential is accepted (prefix compare)', async () => {
    const options = withPush({
      authenticate(request, config) {
        const key = request.headers['x-api-key'] ?? '';
        if (key.length < 8 || !config.apiKey.startsWith(key.slice(0, 16)))
          throw ConnectorError.auth('bad key');
      },
    });
    expect(await failedChecks(options)).toEqual(['auth-near-miss']);
    const messages = await failuresOf(options, 'auth-near-miss');
    expect(messages).toHaveLength(3);
  });

  it('fails when auth throws something other than an auth error', async () => {
    const options = withPush({
      authenticate(request, config) {
        if (request.headers['x-api-key'] !== config.apiKey) throw new Error('boom');
      },
    });
    const messages = await failuresOf(options, 'auth');
    expect(messages.some((m) => m.includes('threw Error: boom'))).toBe(true);
  });

  it('fails when normalize throws on an unknown type', async () => {
    const options = withConnector({
      async normalize(notification, ctx) {
        if (notification.type === 'booking.noted') throw new Error(`unknown type ${notification.type}`);
        return acmeDefinition.normalize(notification, ctx);
      },
    });
    expect(await failedChecks(options)).toEqual(['normalize']);
    expect(await failuresOf(options, 'normalize')).toEqual([
      expect.stringMatching(/^booking-noted\.json: normalize\(booking\.noted\) threw Error: unknown type/),
    ]);
  });

  it('fails when an emitted event is invalid', async () => {
    const options = withConnector({
      async normalize(notification, ctx) {
        const result = await acmeDefinition.normalize(notification, ctx);
        for (const event of result.events) event.data = { ...event.data, status: 'sort-of-booked' };
        return result;
      },
    });
    expect(await failedChecks(options)).toEqual(['event-valid']);
    expect(await failuresOf(options, 'event-valid')).toEqual([
      expect.stringMatching(/booking-created\.json: appointment\.created is invalid: \/data\/status/),
      expect.stringMatching(/booking-cancelled\.json: appointment\.cancelled is invalid/),
    ]);
  });

  it('fails when a produced type is not in the eventMap', async () => {
    const options = withConnector({
      eventMap: acmeDefinition.eventMap.filter((row) => row.vendorType !== 'booking.cancelled'),
    });
    expect(await failuresOf(options, 'event-map')).toEqual([
      'booking-cancelled.json: eventMap has no row for vendor type booking.cancelled, which produced appointment.cancelled',
    ]);
  });

  it('fails when encode does not round-trip', async () => {
    const options = withConnector({
      encode(event, config) {
        const encoded = acmeDefinition.encode(event, config);
        const body = encoded.body as JsonObject;
        return { ...encoded, body: { ...body, event: 'booking.cancelled' } };
      },
    });
    expect(await failedChecks(options)).toEqual(['round-trip']);
    expect(await failuresOf(options, 'round-trip')).toEqual([
      expect.stringMatching(
        /booking-created\.json: appointment\.created appointment\/\S+ came back as \[appointment\.cancelled/,
      ),
    ]);
  });

  it('round-trips stateful connectors from the state before the fixture', async () => {
    // Emits created only for a booking it has not seen: a round trip replayed on the final state would fail.
    const options = withConnector({
      async normalize(notification, ctx) {
        const booking = (notification.payload as JsonObject).booking as JsonObject;
        if (notification.type === 'booking.created' && (await ctx.state.get(`booking:${booking.id}`))) {
          return { events: [], ignored: 'already known' };
        }
        return acmeDefinition.normalize(notification, ctx);
      },
    });
    expect(await failedChecks(options)).toEqual([]);
  });

  it('fails on an orphan fixture', async () => {
    const options = {
      ...baseOptions,
      fixtures: baseOptions.fixtures.filter((f) => f.file !== 'booking-noted.json'),
    };
    expect(await failedChecks(options)).toEqual(['fixtures']);
    expect(await failuresOf(options, 'fixtures')).toEqual([
      'booking-noted.json: orphan fixture: booking-noted.json is in the folder but not listed',
    ]);
  });

  it('fails on wrong expected types', async () => {
    const options: ConformanceOptions<AcmeConfig> = {
      ...baseOptions,
      fixtures: baseOptions.fixtures.map((f) =>
        f.file === 'booking-created.json' ? { ...f, expect: ['appointment.updated'] } : f,
      ),
    };
    expect(await failedChecks(options)).toEqual(['normalize']);
    expect(await failuresOf(options, 'normalize')).toEqual([
      'booking-created.json: expected [appointment.updated], got [appointment.created]',
    ]);
  });

  it('fails when an ignored fixture emits events, or a test fixture yields notifications', async () => {
    const options: ConformanceOptions<AcmeConfig> = {
      ...baseOptions,
      fixtures: baseOptions.fixtures.map((f) =>
        f.file === 'booking-created.json' ? { ...f, expect: 'ignored' } : f.file === 'ping.json' ? f : f,
      ),
    };
    expect(await failuresOf(options, 'normalize')).toEqual([
      'booking-created.json: expected an ignored result (with a reason), got events appointment.created',
    ]);
    const asTest: ConformanceOptions<AcmeConfig> = {
      ...baseOptions,
      fixtures: baseOptions.fixtures.map((f) =>
        f.file === 'booking-noted.json' ? { ...f, expect: 'test' } : f,
      ),
    };
    expect(await failuresOf(asTest, 'normalize')).toEqual([
      'booking-noted.json: expected no notification (test request), parse returned booking.noted',
    ]);
  });

  describe('fixture folder problems', () => {
    const dirs: string[] = [];
    afterAll(async () => {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    });

    it('fails on a listed file that is missing or not JSON', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sy-conformance-'));
      dirs.push(dir);
      await writeFile(join(dir, 'broken.json'), '{"event": "booking.created",');
      const messages = await failuresOf(
        {
          ...baseOptions,
          fixturesDir: dir,
          fixtures: [
            { file: 'broken.json', expect: ['appointment.created'] },
            { file: 'absent.json', expect: ['appointment.created'] },
          ],
        },
        'fixtures',
      );
      expect(messages).toEqual([
        expect.stringMatching(/^broken\.json: broken\.json is not valid JSON/),
        expect.stringMatching(/^absent\.json: absent\.json is listed but not in/),
      ]);
    });
  });

  describe('gates', () => {
    const gateParse: NonNullable<ConnectorDefinition<AcmeConfig>['push']>['parse'] = (request, config) =>
      acmeDefinition
        .push!.parse(request, config)
        .map((n) => (n.type === 'booking.noted' ? { ...n, gate: true } : n));

    it('fails for a gate notification without a gate spec', async () => {
      const options = withConnector({ push: { ...acmeDefinition.push!, parse: gateParse } });
      expect(await failuresOf(options, 'gate')).toEqual([
        'booking-noted.json: booking.noted is a gate but the connector has no gate spec',
      ]);
    });

    it('checks approve → 2xx and refuse → non-2xx', async () => {
      const gate = (refuseStatus: number) => ({
        respond: (decision: { outcome: 'approve' | 'refuse' }) => ({
          status: decision.outcome === 'approve' ? 200 : refuseStatus,
        }),
        matchKey: () => undefined,
      });
      const good = withConnector({ push: { ...acmeDefinition.push!, parse: gateParse }, gate: gate(409) });
      expect(await failedChecks(good)).toEqual([]);
      const bad = withConnector({ push: { ...acmeDefinition.push!, parse: gateParse }, gate: gate(204) });
      expect(await failuresOf(bad, 'gate')).toEqual([
        'booking-noted.json: booking.noted: approve → 200, refuse → 204',
      ]);
    });
  });
});

describe('completeEvent', () => {
  const notification = { type: 'booking.created', dedupeKey: 'evt-1' };
  const draft = {
    type: 'appointment.created',
    subject: 'appointment/6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
    time: '2026-03-08T18:04:11+01:00',
    data: {
      id: '6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
      vendorIds: [{ system: 'acme', value: 'B-77' }],
      status: 'booked',
    },
  };

  it('completes a draft into a valid CloudEvent with a deterministic id', () => {
    const event = completeEvent(draft, { instanceId: 'acme-main', connector: acme, notification, index: 0 });
    expect(event).toMatchObject({
      specversion: '1.0',
      source: 'acme-main',
      instance: 'acme-main',
      connector: 'acme',
      vendortype: 'booking.created',
      datacontenttype: 'application/json',
    });
    expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(validateEvent(event)).toEqual({ valid: true });
    const again = completeEvent(draft, {
      instanceId: 'acme-main',
      connector: 'acme',
      notification,
      index: 0,
    });
    expect(again.id).toBe(event.id);
    const second = completeEvent(draft, {
      instanceId: 'acme-main',
      connector: 'acme',
      notification,
      index: 1,
    });
    expect(second.id).not.toBe(event.id);
  });

  it('prefers the draft vendorType', () => {
    const event = completeEvent(
      { ...draft, vendorType: 'booking.created.v2' },
      { instanceId: 'i', connector: 'acme', notification, index: 0 },
    );
    expect(event.vendortype).toBe('booking.created.v2');
    expect(isJsonObject(event.data)).toBe(true);
  });
});
