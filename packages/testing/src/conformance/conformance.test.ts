import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ConnectorDefinition,
  ConnectorError,
  defineConnector,
  hmacSha256,
  type InboundRequest,
  type InboundRequestHead,
  isJsonObject,
  type JsonObject,
  parseRetryAfter,
  parseTimestampedSignatureHeader,
  signBody,
  signTimestamped,
  timingSafeEqualString,
  validateEvent,
  verifyBodySignature,
  verifyTimestampedSignature,
} from '@switchyard/core';
import { afterAll, describe, expect, it } from 'vitest';
import { ACME_API_KEY, type AcmeConfig, acme, acmeDefinition } from './__fixtures__/acme-connector.ts';
import {
  type AcmePullConfig,
  acmePull,
  acmePullDefinition,
  acmePullSpec,
  bookingNotification,
} from './__fixtures__/acme-pull-connector.ts';
import {
  applicableChecks,
  CONFORMANCE_REPARSE_DELAY_MS,
  type ConformanceCheck,
  type ConformanceOptions,
  checkConformance,
  DEFAULT_CONFORMANCE_PUBLIC_URL,
  DEFAULT_CONFORMANCE_RECEIVED_AT,
} from './check.ts';
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
      'credentials',
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

  it('fails a connector whose declared credentials miss where the good credentials travel', async () => {
    const options = withPush({ credentials: () => ({ headers: ['authorization'], params: ['x-api-key'] }) });
    expect(await failedChecks(options)).toEqual(['credentials']);
    expect(await failuresOf(options, 'credentials')).toEqual([
      ': the good credentials travel in header x-api-key, which push.credentials(config).headers does not name (declared: authorization): the hub would not redact it',
    ]);
    // Header names are compared without case; query and path parameters are checked by name.
    expect(await failedChecks(withPush({ credentials: () => ({ headers: ['X-API-Key'] }) }))).toEqual([]);
    const inQuery = {
      ...withPush({
        authenticate(request, config) {
          if (!timingSafeEqualString(request.query.token, config.apiKey))
            throw ConnectorError.auth('bad token');
        },
        credentials: () => ({ query: ['key'] }),
      }),
      credentials: {
        good: { query: { token: ACME_API_KEY } },
        wrong: [{ query: { token: 'nope' } }],
        missing: {},
      },
    };
    expect(await failuresOf(inQuery, 'credentials')).toEqual([
      ': the good credentials travel in query parameter token, which push.credentials(config).query does not name (declared: key): the hub would not redact it',
    ]);
    const throwing = withPush({
      credentials: () => {
        throw new Error('no config');
      },
    });
    expect(await failuresOf(throwing, 'credentials')).toEqual([
      ': push.credentials(config) threw Error: no config',
    ]);
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
    expect(messages).toEqual([
      expect.stringContaining('wrong credential headers.x-api-key="nope" were accepted'),
    ]);
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

  it('fails a push.sign whose credentials the connector refuses, and one that throws', async () => {
    const wrongKey = withPush({ sign: () => ({ headers: { 'x-api-key': `${ACME_API_KEY}x` } }) });
    expect(await failedChecks(wrongKey)).toEqual(['auth']);
    expect(await failuresOf(wrongKey, 'auth')).toEqual([
      expect.stringContaining(
        'route default: the credentials push.sign(request, config) presents were refused (auth)',
      ),
    ]);
    const throwing = withPush({
      sign: () => {
        throw new Error('no key in this config');
      },
    });
    expect(await failuresOf(throwing, 'auth')).toEqual([
      expect.stringContaining('push.sign(request, config) presents threw Error: no key in this config'),
    ]);
    // Without sign, nothing is asked of it.
    const { sign: _, ...unsigned } = acmeDefinition.push!;
    expect(await failedChecks(withConnector({ push: unsigned }))).toEqual([]);
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
        const encoded = acme.encode!(event, config);
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

// A vendor that signs: `x-acme-signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, 5 minutes.
interface SignedConfig {
  secrets: string[];
}
const SIGNING_SECRET = 'whsec_acme_0123456789abcdef';
const TOLERANCE = 300;
// As the hub runs it: authenticate sees the head only (the signature header is there), verifyBody
// checks the signature over the body.
const signedPush = (verify = verifyTimestampedSignature) => ({
  ...acmeDefinition.push!,
  authenticate(request: InboundRequestHead) {
    if (!request.headers['x-acme-signature']) throw ConnectorError.auth('x-acme-signature is missing');
  },
  credentials: () => ({ headers: ['x-acme-signature'] }),
  // What `switchyard push` sends: the body signed with the instance's secret when it is sent.
  sign: (request: InboundRequest, config: SignedConfig) => ({
    headers: {
      'x-acme-signature': signTimestamped(config.secrets[0] ?? '', request.rawBody, {
        timestamp: request.receivedAt,
      }),
    },
  }),
  verifyBody(request: InboundRequest, config: SignedConfig) {
    const verdict = verify({
      header: request.headers['x-acme-signature'],
      body: request.rawBody,
      secrets: config.secrets,
      receivedAt: request.receivedAt,
      toleranceSeconds: TOLERANCE,
    });
    if (!verdict.ok) throw ConnectorError.auth(verdict.message);
  },
});
const signedConnector = (push = signedPush()) =>
  defineConnector<SignedConfig>({
    ...(acmeDefinition as unknown as ConnectorDefinition<SignedConfig>),
    configSchema: { type: 'object', properties: { secrets: { type: 'array', 'x-secret': true } } },
    push: push as unknown as NonNullable<ConnectorDefinition<SignedConfig>['push']>,
  });
const signedOptions: ConformanceOptions<SignedConfig, { secret: string }> = {
  ...(baseOptions as unknown as ConformanceOptions<SignedConfig, { secret: string }>),
  connector: signedConnector(),
  config: { secrets: [SIGNING_SECRET] },
  credentials: {
    good: { secret: SIGNING_SECRET },
    wrong: { 'another secret': { secret: 'whsec_other_0123456789abcdef' } },
    missing: {},
  },
  sign: (request, credential, { signedAt }) => ({
    headers: {
      'x-acme-signature': signTimestamped(credential.secret, request.rawBody, { timestamp: signedAt }),
    },
  }),
  replayWindow: { toleranceSeconds: TOLERANCE },
};

// A correct verifier passes every group when the kit signs each request.
describeConformance(signedOptions);

// A vendor that signs the URL it was told with the body (Square: base64 HMAC-SHA256 of `url + body`).
const urlSigned = (url: string | undefined, secret: string, body: Buffer) =>
  hmacSha256(secret, Buffer.concat([Buffer.from(url ?? '', 'utf8'), body]), 'base64');
const urlSignedOptions: ConformanceOptions<SignedConfig, { secret: string }> = {
  ...signedOptions,
  connector: signedConnector({
    ...signedPush(),
    sign: (request: InboundRequest, config: SignedConfig) => ({
      headers: { 'x-acme-signature': urlSigned(request.hookUrl, config.secrets[0] ?? '', request.rawBody) },
    }),
    verifyBody(request: InboundRequest, config: SignedConfig) {
      if (request.hookUrl === undefined) throw ConnectorError.auth('no hook URL: set server.publicUrl');
      const verdict = verifyBodySignature({
        header: request.headers['x-acme-signature'],
        body: Buffer.concat([Buffer.from(request.hookUrl, 'utf8'), request.rawBody]),
        secrets: config.secrets,
        encoding: 'base64',
      });
      if (!verdict.ok) throw ConnectorError.auth(verdict.message);
    },
  }),
  sign: (request, credential) => ({
    headers: { 'x-acme-signature': urlSigned(request.hookUrl, credential.secret, request.rawBody) },
  }),
  replayWindow: undefined,
};

describe('checkConformance with a vendor that signs the hook URL', () => {
  it('gives every request the hook URL under publicUrl, so a URL-bound signature verifies', async () => {
    const urls = new Set<string | undefined>();
    const report = await checkConformance({
      ...urlSignedOptions,
      sign: (request, credential, context) => {
        urls.add(request.hookUrl);
        return urlSignedOptions.sign!(request, credential, context);
      },
    });
    expect(report.failures).toEqual([]);
    expect([...urls]).toEqual([`${DEFAULT_CONFORMANCE_PUBLIC_URL}/hooks/conformance`]);
    const elsewhere = await checkConformance({ ...urlSignedOptions, publicUrl: 'https://other.example/sy/' });
    expect(elsewhere.failures).toEqual([]);
  });
});

describe('checkConformance with sign (vendors that sign each request)', () => {
  it('signs every request over its own body: auth, near-miss, replay-window and round-trip all exercise real signatures', async () => {
    const signed: Array<{ case: string; body: string; signedAt: string; receivedAt: string }> = [];
    const report = await checkConformance({
      ...signedOptions,
      sign: (request, credential, context) => {
        signed.push({
          case: context.case,
          body: request.rawBody.toString(),
          signedAt: context.signedAt.toISOString(),
          receivedAt: request.receivedAt.toISOString(),
        });
        return signedOptions.sign!(request, credential, context);
      },
    });
    expect(report.failures).toEqual([]);
    const passed = (check: ConformanceCheck) =>
      report.results.filter((r) => r.check === check && r.ok).length;
    expect(passed('round-trip')).toBe(2);
    expect(passed('replay-window')).toBe(5);
    expect(report.results.filter((r) => r.check === 'auth-near-miss').map((r) => r.message)).toEqual([
      'route default: credential.secret with its last character changed were refused (auth)',
      'route default: credential.secret with one character appended were refused (auth)',
      'route default: credential.secret with its last character removed were refused (auth)',
      'route default: signature headers.x-acme-signature with its last character changed were refused (auth)',
      'route default: signature headers.x-acme-signature with one character appended were refused (auth)',
      'route default: signature headers.x-acme-signature with its last character removed were refused (auth)',
      'route default: a good signature over a body changed after signing (one trailing space) were refused (auth)',
    ]);
    expect(new Set(signed.map((s) => s.case))).toEqual(
      new Set([
        'good',
        'another secret',
        'credential.secret with its last character changed',
        'credential.secret with one character appended',
        'credential.secret with its last character removed',
      ]),
    );
    // Round trips sign the encoded body, not the fixture's.
    expect(signed.some((s) => s.case === 'good' && s.body.includes('"id":"rt-'))).toBe(true);
    // Only the replay-window check signs at another time than the receive time (the default one):
    // inside and outside before it, inside and outside after it, and the re-dated capture.
    expect(signed.filter((s) => s.signedAt !== s.receivedAt)).toHaveLength(5);
    expect(signed.some((s) => s.receivedAt === DEFAULT_CONFORMANCE_RECEIVED_AT.toISOString())).toBe(true);
  });

  it('fails a verifier that ignores the body, and names the near-miss case', async () => {
    const lax = signedConnector(
      signedPush((options) =>
        verifyTimestampedSignature({
          ...options,
          body: Buffer.from(options.body).toString().replace(/ $/, ''),
        }),
      ),
    );
    expect(await failuresOf({ ...signedOptions, connector: lax } as never, 'auth-near-miss')).toEqual([
      'ping.json: route default: a good signature over a body changed after signing (one trailing space) were accepted',
    ]);
  });

  it('fails a verifier whose window is wider than declared (replays accepted), naming the check', async () => {
    const wide = signedConnector(
      signedPush((options) => verifyTimestampedSignature({ ...options, toleranceSeconds: 3600 })),
    );
    const report = await checkConformance({ ...signedOptions, connector: wide });
    expect([...new Set(report.failures.map((f) => f.check))]).toEqual(['replay-window']);
    expect(report.failures[0]!.message).toContain(
      'signed 301 s before receipt (a replay outside the 300 s window) were accepted',
    );
  });

  it('fails a verifier whose window counts one way only: future-dated signatures accepted, or a clock ahead refused', async () => {
    const oneSided = (accept: (skew: number) => boolean) =>
      signedConnector(
        signedPush((options) => {
          const parsed = parseTimestampedSignatureHeader(options.header ?? '');
          // Receive time minus signing time: negative when the vendor's clock is ahead.
          const skew = Math.floor(options.receivedAt.getTime() / 1000) - (parsed.timestamp ?? Number.NaN);
          if (!accept(skew)) return { ok: false, reason: 'expired', message: 'outside the window' };
          return verifyTimestampedSignature({ ...options, toleranceSeconds: 10 * 365 * 86_400 });
        }),
      );
    const messages = async (connector: ReturnType<typeof signedConnector>) =>
      (await checkConformance({ ...signedOptions, connector })).failures.map((f) => [f.check, f.message]);
    // Only the past is bounded: a signature dated a year ahead stays valid for a year.
    expect(await messages(oneSided((skew) => skew <= TOLERANCE))).toEqual([
      [
        'replay-window',
        'route default: good credentials signed 301 s after receipt (a vendor clock ahead, outside the 300 s window) were accepted',
      ],
    ]);
    // Any future timestamp refused: a vendor whose clock is a few seconds fast is locked out.
    expect(await messages(oneSided((skew) => skew >= 0 && skew <= TOLERANCE))).toEqual([
      [
        'replay-window',
        'route default: good credentials signed 299 s after receipt (a vendor clock ahead, inside the 300 s window) were refused (auth)',
      ],
    ]);
  });

  it('fails a verifier whose signature does not cover the timestamp (a capture re-dated is accepted)', async () => {
    // Built by hand from the parts (§5 "Other schemes"): the window is checked on t=, but the HMAC is
    // over the body alone, so a replayer rewrites t= to now and the signature still matches.
    const bodyOnlyHmac = (secret: string, body: Buffer, at: Date) =>
      `t=${Math.floor(at.getTime() / 1000)},v1=${hmacSha256(secret, body)}`;
    const uncovered = signedConnector({
      ...signedPush((options) => {
        const parsed = parseTimestampedSignatureHeader(options.header ?? '');
        const skew = Math.abs(
          Math.floor(options.receivedAt.getTime() / 1000) - (parsed.timestamp ?? Number.NaN),
        );
        if (!(skew <= TOLERANCE)) return { ok: false, reason: 'expired', message: 'outside the window' };
        const ok = options.secrets.some((secret) =>
          timingSafeEqualString(parsed.signatures[0], hmacSha256(secret, options.body)),
        );
        return ok ? { ok: true, secretIndex: 0 } : { ok: false, reason: 'mismatch', message: 'no match' };
      }),
      sign: (request: InboundRequest, config: SignedConfig) => ({
        headers: {
          'x-acme-signature': bodyOnlyHmac(config.secrets[0] ?? '', request.rawBody, request.receivedAt),
        },
      }),
    });
    const report = await checkConformance({
      ...signedOptions,
      connector: uncovered,
      sign: (request, credential, { signedAt }) => ({
        headers: { 'x-acme-signature': bodyOnlyHmac(credential.secret, request.rawBody, signedAt) },
      }),
    });
    expect(report.failures.map((f) => [f.check, f.message])).toEqual([
      [
        'replay-window',
        'route default: a capture signed 301 s before receipt, its timestamp rewritten to the receive time and its signature kept (the signature must cover the timestamp), were accepted',
      ],
    ]);
  });

  it('checks a secret rotation: the previous secret passes while configured, and only then', async () => {
    const PREVIOUS = 'whsec_previous_0123456789abcdef';
    const rotating = {
      ...signedOptions,
      rotation: { config: { secrets: [SIGNING_SECRET, PREVIOUS] }, previous: { secret: PREVIOUS } },
    };
    const report = await checkConformance(rotating);
    expect(report.failures).toEqual([]);
    expect(report.results.filter((r) => r.message.includes('previous secret')).map((r) => r.message)).toEqual(
      [
        'route default: the previous secret during the rotation (rotation.config) were accepted',
        'route default: the previous secret once it is removed from the settings (config) were refused (auth)',
      ],
    );
    // A verifier that reads the newest secret only: every push signed with the old one is refused
    // until the vendor switches, though the settings list both.
    const newestOnly = signedConnector(
      signedPush((options) =>
        verifyTimestampedSignature({ ...options, secrets: options.secrets.slice(0, 1) }),
      ),
    );
    expect(await failuresOf({ ...rotating, connector: newestOnly } as never, 'auth')).toEqual([
      'ping.json: route default: the previous secret during the rotation (rotation.config) were refused (auth)',
    ]);
  });

  it('names a wrong credential case that is accepted', async () => {
    const report = await checkConformance({
      ...signedOptions,
      config: { secrets: [SIGNING_SECRET, 'whsec_other_0123456789abcdef'] },
    });
    expect(report.failures.map((f) => f.message)).toEqual([
      'route default: wrong credential another secret were accepted',
    ]);
  });

  it('signs at a configurable receive time', async () => {
    const at = new Date('2031-07-01T00:00:00Z');
    const seen: Date[] = [];
    const report = await checkConformance({
      ...signedOptions,
      receivedAt: at,
      sign: (request, credential, context) => {
        seen.push(request.receivedAt);
        return signedOptions.sign!(request, credential, context);
      },
    });
    expect(report.failures).toEqual([]);
    // Every request is received then, except the dedupe-stable re-parse, a fixed delay later.
    expect(new Set(seen.map((d) => d.getTime()))).toEqual(
      new Set([at.getTime(), at.getTime() + CONFORMANCE_REPARSE_DELAY_MS]),
    );
  });

  it('says what to do when credentials are not request parts and no sign is given', async () => {
    const { sign: _sign, replayWindow: _window, ...unsigned } = signedOptions;
    const report = await checkConformance(unsigned);
    expect(report.failures.find((f) => f.check === 'auth')?.message).toContain(
      'credential case good is not request parts ({ headers?, params?, query? }): declare sign(request, credential, context)',
    );
  });

  it('drives a vendor that signs the body alone (GitHub style), with no replay window', async () => {
    const connector = signedConnector({
      ...acmeDefinition.push!,
      authenticate(request: InboundRequestHead) {
        if (!request.headers['x-hub-signature-256']) throw ConnectorError.auth('no signature');
      },
      credentials: () => ({ headers: ['x-hub-signature-256'] }),
      sign: (request: InboundRequest, config: SignedConfig) => ({
        headers: {
          'x-hub-signature-256': signBody(config.secrets[0] ?? '', request.rawBody, { prefix: 'sha256=' }),
        },
      }),
      verifyBody(request: InboundRequest, config: SignedConfig) {
        const verdict = verifyBodySignature({
          header: request.headers['x-hub-signature-256'],
          body: request.rawBody,
          secrets: config.secrets,
          prefix: 'sha256=',
        });
        if (!verdict.ok) throw ConnectorError.auth(verdict.message);
      },
    } as never);
    const { replayWindow: _none, ...rest } = signedOptions;
    const report = await checkConformance({
      ...rest,
      connector,
      sign: (request, credential) => ({
        headers: {
          'x-hub-signature-256': signBody(credential.secret, request.rawBody, { prefix: 'sha256=' }),
        },
      }),
    });
    expect(report.failures).toEqual([]);
    expect(report.results.filter((r) => r.check === 'round-trip' && r.ok)).toHaveLength(2);
    expect(report.results.filter((r) => r.check === 'replay-window')).toEqual([]);
  });

  it('admits as the hub does: authenticate gets the head, and a verifier reading the body there fails auth', async () => {
    const { verifyBody, ...push } = signedPush();
    const inAuthenticate = signedConnector({
      ...push,
      authenticate: (request: InboundRequest, config: SignedConfig) => verifyBody(request, config),
    } as never);
    const report = await checkConformance({ ...signedOptions, connector: inAuthenticate });
    const auth = report.failures.filter((f) => f.check === 'auth');
    expect(auth.map((f) => f.message)).toContain(
      'route default: good credentials threw TypeError: push.authenticate runs before the body is read: check what needs the body in push.verifyBody',
    );
    expect(report.failures.some((f) => f.check === 'round-trip')).toBe(true);
  });

  it('checks the signature where the connector verifies it: a connector without verifyBody lets a wrong secret through', async () => {
    const { verifyBody: _verifyBody, ...headOnly } = signedPush();
    const report = await checkConformance({
      ...signedOptions,
      connector: signedConnector(headOnly as never),
    });
    expect(report.failures.map((f) => f.message)).toContain(
      'route default: wrong credential another secret were accepted',
    );
  });

  it('fails a signing connector that does not declare its signature header as a credential', async () => {
    const undeclared = signedConnector({ ...signedPush(), credentials: () => ({ headers: ['x-acme-id'] }) });
    const report = await checkConformance({ ...signedOptions, connector: undeclared });
    expect(report.failures.map((f) => `${f.check}: ${f.message}`)).toEqual([
      'credentials: the good credentials travel in header x-acme-signature, which push.credentials(config).headers does not name (declared: x-acme-id): the hub would not redact it',
    ]);
  });

  it('needs sign for a replay window', async () => {
    const messages = await failuresOf(
      { ...baseOptions, replayWindow: { toleranceSeconds: 300 } },
      'replay-window',
    );
    expect(messages).toEqual([expect.stringContaining('replayWindow needs sign')]);
  });
});

describe('checkConformance on a pull-only connector', () => {
  const pullOptions: ConformanceOptions<AcmePullConfig> = {
    connector: acmePull,
    config: { apiKey: ACME_API_KEY, apiBaseUrl: 'https://acme.test/api' },
    fixturesDir: new URL('./__fixtures__/acme-pull/', import.meta.url),
    fixtures: [
      { file: 'page-created.json', expect: ['appointment.created', 'appointment.created'] },
      { file: 'page-cancelled.json', expect: ['appointment.cancelled'] },
      { file: 'page-noted.json', expect: 'ignored' },
      { file: 'page-empty.json', expect: 'test', description: 'an empty page' },
    ],
  };
  const withFetch = (fetch: (typeof acmePullSpec)['fetch']): ConformanceOptions<AcmePullConfig> => ({
    ...pullOptions,
    connector: defineConnector({ ...acmePullDefinition, pull: { ...acmePullSpec, fetch } }),
  });

  it('pulls each fixture through pull.fetch and checks what it can without push routes', async () => {
    const report = await checkConformance(pullOptions);
    expect(report.failures).toEqual([]);
    const groups = new Set(report.results.map((r) => r.check));
    for (const check of [
      'fixtures',
      'malformed',
      'normalize',
      'event-valid',
      'event-map',
      'dedupe-stable',
      'dedupe-distinct',
      'pull-errors',
    ] as const) {
      expect(groups.has(check), check).toBe(true);
    }
    // Push matters are not checked, rather than failed.
    for (const check of ['auth', 'credentials', 'round-trip', 'gate'] as const) {
      expect(groups.has(check), check).toBe(false);
    }
    expect(report.results.find((r) => r.check === 'normalize' && r.fixture === 'page-empty.json')?.ok).toBe(
      true,
    );
  });

  it('answers fetch from options.pull.answer, falling through to vendorApi', async () => {
    const seen: string[] = [];
    const report = await checkConformance({
      ...pullOptions,
      connector: defineConnector({
        ...acmePullDefinition,
        pull: {
          ...acmePullSpec,
          async fetch(ctx, cursor) {
            const token = await ctx.http.request({ method: 'POST', url: 'https://acme.test/token' });
            seen.push(`${cursor} ${JSON.stringify(token.body)}`);
            return acmePullSpec.fetch(ctx, cursor);
          },
        },
      }),
      pull: {
        cursor: '2026-03-01T00:00:00Z',
        answer: (request, fixture) =>
          request.url.endsWith('/token') ? undefined : { status: 200, headers: {}, body: fixture.json },
      },
      vendorApi: () => ({ status: 200, headers: {}, body: { token: 't' } }),
    });
    expect(report.failures).toEqual([]);
    expect(seen[0]).toBe('2026-03-01T00:00:00Z {"token":"t"}');
  });

  it('checks the poll, not the OAuth2 token call before it, on broken pages, outages and rate limits', async () => {
    // Careful with its token (any failure a transient ConnectorError, Retry-After kept), careless
    // with its list: it crashes on a page that is not one and takes a rate limit for an empty page.
    const tokenFirst = withFetch(async (ctx, cursor) => {
      const token = await ctx.http.request({ method: 'POST', url: 'https://acme.test/oauth/token' });
      if (token.status !== 200 || !isJsonObject(token.body) || typeof token.body.access_token !== 'string') {
        throw ConnectorError.transient(`no token (${token.status})`, {
          retryAfterMs: parseRetryAfter(token.headers['retry-after']),
        });
      }
      const res = await ctx.http.request({ url: `${ctx.config.apiBaseUrl}/bookings` });
      if (res.status === 429) return { notifications: [], cursor, more: false };
      if (res.status >= 500) return acmePullSpec.fetch(ctx, cursor);
      const bookings = (res.body as { bookings: JsonObject[] }).bookings;
      return { notifications: bookings.map(bookingNotification), cursor, more: false };
    });
    const report = await checkConformance({
      ...tokenFirst,
      pull: {
        answer: (request, fixture) =>
          request.url.endsWith('/oauth/token')
            ? { status: 200, headers: {}, body: { access_token: 't', expires_in: 3600 } }
            : { status: 200, headers: {}, body: fixture.json },
      },
    });
    const failures = report.failures.map((f) => `${f.check}: ${f.message}`).join('\n');
    expect(failures).toContain('malformed: JSON null: pull.fetch threw TypeError');
    expect(failures).toContain(
      'pull-errors: the vendor answered 429 with Retry-After: 7: pull.fetch returned 0 notification(s) instead of throwing a transient ConnectorError',
    );
    expect(report.failures.filter((f) => f.check === 'pull-errors')).toHaveLength(1);
  });

  it('fails a fetch that crashes on an answer that is not a page', async () => {
    const report = await checkConformance(
      withFetch(async (ctx, cursor) => {
        const res = await ctx.http.request({ url: `${ctx.config.apiBaseUrl}/bookings` });
        if (res.status >= 500 || res.status === 429) return acmePullSpec.fetch(ctx, cursor);
        const bookings = (res.body as { bookings: JsonObject[] }).bookings;
        return { notifications: bookings.map(bookingNotification), cursor, more: false };
      }),
    );
    const malformed = report.failures.filter((f) => f.check === 'malformed').map((f) => f.message);
    expect(malformed.join('\n')).toContain('JSON null: pull.fetch threw TypeError');
  });

  it('fails a fetch that takes a vendor error for an empty page, or drops the Retry-After', async () => {
    const report = await checkConformance(
      withFetch(async (ctx, cursor) => {
        const res = await ctx.http.request({ url: `${ctx.config.apiBaseUrl}/bookings` });
        if (res.status === 429) throw ConnectorError.transient('rate limited');
        if (res.status >= 500) return { notifications: [], cursor, more: false };
        return acmePullSpec.fetch(ctx, cursor);
      }),
    );
    expect(report.failures.filter((f) => f.check === 'pull-errors').map((f) => f.message)).toEqual([
      'the vendor answered 503: pull.fetch returned 0 notification(s) instead of throwing a transient ConnectorError',
      'the vendor answered 429 with Retry-After: 7: pull.fetch threw a transient error with retryAfterMs undefined, expected 7000 (parseRetryAfter)',
    ]);
  });

  it('fails dedupe keys that change when the same page is pulled again', async () => {
    let pulls = 0;
    const report = await checkConformance(
      withFetch(async (ctx, cursor) => {
        pulls += 1;
        const batch = await acmePullSpec.fetch(ctx, cursor);
        return {
          ...batch,
          notifications: batch.notifications.map((n) => ({ ...n, dedupeKey: `${n.dedupeKey}#${pulls}` })),
        };
      }),
    );
    expect(
      report.failures.some((f) => f.check === 'dedupe-stable' && f.fixture === 'page-created.json'),
    ).toBe(true);
  });

  it('applies the pull groups to a pull-only connector and the push groups to a push one', () => {
    expect(applicableChecks(acmePull)).toEqual([
      'fixtures',
      'malformed',
      'normalize',
      'event-valid',
      'event-map',
      'dedupe-stable',
      'dedupe-distinct',
      'pull-errors',
    ]);
    expect(applicableChecks(acme)).not.toContain('pull-errors');
    expect(applicableChecks(acme)).toContain('auth');
  });

  it('still asks a push connector for credentials', async () => {
    const { credentials: _credentials, ...noCredentials } = baseOptions;
    const report = await checkConformance(noCredentials);
    expect(report.failures.map((f) => [f.check, f.message])).toEqual([
      [
        'auth',
        'connector acme has push routes: give credentials ({ good, wrong, missing }) for the kit to send',
      ],
    ]);
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
