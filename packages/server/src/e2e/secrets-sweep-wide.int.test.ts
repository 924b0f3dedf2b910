// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} and ${file:...} references on purpose.
/**
 * The secrets sweep, widened (the first, e2e/secrets-sweep.int.test.ts, drives Docplanner,
 * Clockwise.MD, Cliniko and Acuity): a hub started as `switchyard start` starts it, at debug level,
 * with tracing on (the collector's API key in `telemetry.traces.headers`), with instances of
 * Square (a signature over `server.publicUrl` + the body), Calendly (a signing key; an API token for
 * its commands), BookingBug/JRNI (Basic, Basic token, OAuth2 client credentials at the instance's
 * token endpoint; the admin API's login password, App-Key and the Auth-Token it answers), Instinctive
 * Notes (a secret in a header and in the URL path) and Quable (a static Authorization), each pushed
 * to with its key, the key with one character changed and another instance's key; an approver that
 * approves and refuses, quoting the signature headers it got; a pull-feed subscription read with
 * its token, right and wrong; `switchyard listen` serving a subscription; `switchyard validate` of
 * files whose references are wrong. Every table, log line, HTTP answer, CLI output and every span
 * the collector decoded is then searched for each secret (the search of e2e/secrets-sweep.test-support.ts).
 */

import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import {
  closeServer,
  type LocalServer,
  listenLocal,
  readBody,
} from '@switchyard/testing/simulator-kit/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../cli/command.ts';
import { validateCommand } from '../cli/commands/validate.ts';
import type { HubProcess } from '../runtime/process.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../telemetry/otlp-receiver.test-support.ts';
import { fixture } from './connectors/fixtures.test-support.ts';
import { type HubChild, spawnSwitchyard } from './helpers.test-support.ts';
import {
  dumpDatabase,
  eventually,
  hitsIn,
  nearly,
  SweepClient,
  type SweptText,
  startSweepHub,
} from './secrets-sweep.test-support.ts';

const db = useTestDatabase();

/** The port `switchyard listen` serves (this helper's range). */
const LISTEN_PORT = 19901;
/** Where Square is told to notify: the hub behind a TLS-terminating proxy. */
const PUBLIC_URL = 'https://hub.sweep.example';

/** Every secret of the sweep, by what it is; each unlike any other text the hub writes. */
const S = {
  admin: 'sweepWideAdmin-Pq4Rs6Tu8Vw',
  secretKey: 'sweepWideSecretKey-Jk2Lm4No6',
  dbPassword: 'sweepWideDbPass-Gh3Ij5Kl7',
  dpPush: 'sweepWideDpPush-Ab2Cd4Ef6Gh',
  dpClientSecret: 'sweepWideDpClient-Mn8Op0Qr2',
  sqSignature: 'sweepSqSigKey-Vb3Nm5Qw7Er9',
  sqPrevious: 'sweepSqPrevKey-Ty1Ui3Op5As',
  calSigning: 'sweepCalSigningKey-Df6Gh8Jk0L',
  calToken: 'sweepCalApiToken-Zx2Cv4Bn6Mq',
  bbPassword: 'sweepBbBasicPass-Wq9Ea7Rd5Tf',
  bbToken: 'sweepBbBasicToken-Yg3Uh5Ij7Ok',
  bbClientSecret: 'sweepBbClientSecret-Pl1Ok3Ij5Uh7Yg9Tf',
  bbAppKey: 'sweepBbAppKey-Rf4Tg6Yh8Uj',
  bbAdminPassword: 'sweepBbAdminPass-Ik1Ol3Pm5Nb',
  /** What BookingBug's admin login answers: a credential the hub holds and never configured. */
  bbAuthToken: 'sweepBbAuthToken-Vc7Xz9Aq2Ws',
  inSecret: 'sweepInSecret-Ed4Rf6Tg8Yh0',
  qbAuthorization: 'Bearer sweepQbAuth-Uj2Mk4Lo6Np',
  otlpKey: 'sweepOtlpApiKey-Hb5Nj7Mk9Lq',
  otlpUrlPassword: 'sweepOtlpUrlPass-Kq2Wd4Rf6',
  /** A collector header from the environment (OTEL_EXPORTER_OTLP_HEADERS), as OpenTelemetry's exporters read it. */
  otlpEnvKey: 'sweepOtlpEnvKey-Tz8Xc6Vb4Nm',
  inBadPath: 'sweepInBad/Path-Qa1Ws3Ed5Rf',
  /** Shorter than Calendly's 16 characters, long enough to be searched for. */
  shortKey: 'sweepCalShrt-K9',
  signing: `whsec_${Buffer.from('sweep-wide-signing-0123456789ABC').toString('base64')}`,
  approverSigning: `whsec_${Buffer.from('sweep-wide-approver-9876543210XY').toString('base64')}`,
  feed: `whsec_${Buffer.from('sweep-wide-feed-secret-ABCDEFGHIJK').toString('base64')}`,
  listen: `whsec_${Buffer.from('sweep-wide-listen-secret-LMNOPQRST').toString('base64')}`,
} as const;

/** Secrets the hub made and showed once (an OAuth2 access token): swept for like those above. */
const madeSecrets: Record<string, string> = {};
const secrets = () => ({ ...S, ...madeSecrets });

const logLines: string[] = [];
/** What the vendors' APIs were sent: the secrets were in play (the sweep's own check). */
const vendorSaw: string[] = [];
/** What the approver was asked, and answered. */
const approverSaw: string[] = [];
/** The CLI's outputs: `listen`'s and `validate`'s. */
const outputs: SweptText[] = [];
let dir: string;
let vendor: LocalServer;
let subscriber: LocalServer;
let approver: LocalServer;
let otlp: OtlpReceiver;
let listener: HubChild | undefined;
let running: HubProcess | undefined;
/** The hub's own address: `running.url` is server.publicUrl, the proxy's. */
const localUrl = () => `http://127.0.0.1:${(running!.app.server.address() as AddressInfo).port}`;
const client = new SweepClient(localUrl, S.admin);
const { call, json } = { call: client.call.bind(client), json: client.json.bind(client) };

/** The config file's text: instances of six connectors, tracing, a subscriber, an approver, a feed, a listener. */
function configText(): string {
  return [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    '  adminToken: ${env:SW_ADMIN}',
    `  publicUrl: ${PUBLIC_URL}`,
    'database:',
    '  url: ${env:SW_DB}',
    'secretKey: ${file:secret-key.txt}',
    'logging: { level: debug }',
    'telemetry:',
    '  traces:',
    `    endpoint: ${otlp.url.replace('http://', `http://sweep-otlp:${S.otlpUrlPassword}@`)}`,
    '    sampleRatio: 1',
    '    headers:',
    '      x-api-key: ${env:SW_OTLP_KEY}',
    'instances:',
    '  - id: dp',
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    `      apiBaseUrl: ${vendor.url}/dp`,
    '      clientId: sweep-client',
    '      clientSecret: ${file:dp-client-secret.txt}',
    '      releaseIntervalMinutes: 0',
    '      pushAuth: { headerName: x-api-key, apiKey: "${env:SW_DP_PUSH}" }',
    '  - id: sq',
    '    connector: square',
    '    mode: push',
    '    settings:',
    '      signatureKey: ${env:SW_SQ}',
    '      previousSignatureKey: ${file:sq-previous.txt}',
    '  - id: cal',
    '    connector: calendly',
    '    mode: push',
    '    settings:',
    '      signingKey: ${env:SW_CAL_SIGNING}',
    '      apiToken: ${file:cal-token.txt}',
    `      apiBaseUrl: ${vendor.url}/cal`,
    '  - id: bb',
    '    connector: bookingbug',
    '    mode: push',
    '    settings:',
    '      basicAuth: { username: sweep-bb, password: "${env:SW_BB_PASSWORD}" }',
    '      basicToken: ${env:SW_BB_TOKEN}',
    '      oauth2: { clientId: sweep-jrni, clientSecret: "${file:bb-client-secret.txt}" }',
    '      adminApi:',
    `        baseUrl: ${vendor.url}/bb`,
    '        appId: sweep-app',
    '        appKey: ${env:SW_BB_APP_KEY}',
    '        email: admin@sweep.example',
    '        password: ${file:bb-admin.txt}',
    '  - id: in',
    '    connector: instinctive-notes',
    '    mode: push',
    '    settings:',
    '      auth: { mode: either, secret: "${env:SW_IN}" }',
    '  - id: qb',
    '    connector: quable',
    '    mode: push',
    '    settings:',
    '      authorization: ${env:SW_QB}',
    'subscriptions:',
    '  - id: crm',
    '    kind: webhook',
    `    url: ${subscriber.url}/crm`,
    '    events: ["*"]',
    '    secrets: ["${env:SW_SIGNING}"]',
    '    allowPrivateAddresses: true',
    '    retry: { schedule: ["0s", "200ms"] }',
    '  - id: desk',
    '    kind: webhook',
    `    url: ${approver.url}/desk`,
    '    events: ["appointment.booking_requested"]',
    '    secrets: ["${file:approver.txt}"]',
    '    allowPrivateAddresses: true',
    '    approver: {}',
    '  - id: feed',
    '    kind: pull',
    '    events: ["*"]',
    '    secrets: ["${env:SW_FEED}"]',
    '  - id: listener',
    '    kind: webhook',
    `    url: http://127.0.0.1:${LISTEN_PORT}/listen`,
    '    events: ["*"]',
    '    secrets: ["${env:SW_LISTEN}"]',
    '    allowPrivateAddresses: true',
    '',
  ].join('\n');
}

/** The environment the config's `${env:…}` references read. */
function env(): Record<string, string> {
  return {
    SW_ADMIN: S.admin,
    // Postgres here trusts local connections: the password is not checked, only carried.
    SW_DB: db.url().replace('postgres://postgres@', `postgres://postgres:${S.dbPassword}@`),
    SW_OTLP_KEY: S.otlpKey,
    // Read by OpenTelemetry's exporter itself (from process.env, set from here in beforeAll).
    OTEL_EXPORTER_OTLP_HEADERS: `x-tenant-key=${S.otlpEnvKey}`,
    SW_DP_PUSH: S.dpPush,
    SW_SQ: S.sqSignature,
    SW_CAL_SIGNING: S.calSigning,
    SW_BB_PASSWORD: S.bbPassword,
    SW_BB_TOKEN: S.bbToken,
    SW_BB_APP_KEY: S.bbAppKey,
    SW_IN: S.inSecret,
    SW_QB: S.qbAuthorization,
    SW_SIGNING: S.signing,
    SW_FEED: S.feed,
    SW_LISTEN: S.listen,
  };
}

async function startHub(): Promise<HubProcess> {
  return startSweepHub(dir, configText(), env(), logLines);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-sweep-wide-'));
  const files = {
    'secret-key.txt': S.secretKey,
    'dp-client-secret.txt': S.dpClientSecret,
    'sq-previous.txt': S.sqPrevious,
    'cal-token.txt': S.calToken,
    'bb-client-secret.txt': S.bbClientSecret,
    'bb-admin.txt': S.bbAdminPassword,
    'approver.txt': S.approverSigning,
  };
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), `${value}\n`);
  otlp = await startOtlpReceiver();
  // The vendors' APIs as a careless gateway shows them: every error quotes what it was sent.
  vendor = await listenLocal(
    async (req, res) => {
      const body = await readBody(req);
      const headers = JSON.stringify(req.headers);
      vendorSaw.push(`${req.url} ${headers} ${body}`);
      if (req.url === '/bb/api/v1/login' && body.includes(S.bbAdminPassword)) {
        // BookingBug's admin login (dev.bookingbug.com, "Authentication"): the Auth-Token the
        // hub then sends on each call.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ email: 'admin@sweep.example', auth_token: S.bbAuthToken }));
        return;
      }
      if (req.url?.startsWith('/bb/')) {
        // JRNI's "400 Validation Error" (dev.jrni.com), its detail quoting the request.
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: 'Validation error', detail: `Request headers: ${headers} body: ${body}` }),
        );
        return;
      }
      if (req.url?.startsWith('/cal/')) {
        // Calendly's error shape (developer.calendly.com, "Errors": title, message, details).
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            title: 'Permission Denied',
            message: `You do not have permission with ${String(req.headers.authorization)}`,
            details: [{ parameter: 'headers', message: headers }],
          }),
        );
        return;
      }
      res.writeHead(502, {
        'content-type': 'application/json',
        'x-echo-authorization': String(req.headers.authorization),
        'x-echo-auth-token': String(req.headers['auth-token']),
      });
      res.end(
        JSON.stringify({ error: `Bad gateway. Request headers: ${headers} body: ${body}`, message: headers }),
      );
    },
    (_error, _req, res) => res.end(),
  );
  // A subscriber answering 500 with the request's headers (signatures included) quoted.
  subscriber = await listenLocal(
    async (req, res) => {
      await readBody(req);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'boom', headers: req.headers }));
    },
    (_error, _req, res) => res.end(),
  );
  // An approver that decides: it refuses the booking of 11 March and approves the rest, each answer
  // quoting the signature headers it was sent (docs/gates.md, "The approver protocol"), the refusal
  // also the secret it verifies with (a debug page's habit).
  approver = await listenLocal(
    async (req, res) => {
      const body = await readBody(req);
      const quoted = `webhook-id=${String(req.headers['webhook-id'])} webhook-timestamp=${String(req.headers['webhook-timestamp'])} webhook-signature=${String(req.headers['webhook-signature'])}`;
      const approve = !body.includes('2026-03-11');
      approverSaw.push(`${JSON.stringify(req.headers)} ${body}`);
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo-signature': quoted });
      res.end(
        JSON.stringify(
          approve
            ? { decision: 'approve', note: `checked ${quoted}` }
            : {
                decision: 'refuse',
                reason: `slot taken; you sent ${quoted}; I verify with ${S.approverSigning}`,
                vendorErrorCode: 7,
              },
        ),
      );
    },
    (_error, _req, res) => res.end(),
  );
  process.env.OTEL_EXPORTER_OTLP_HEADERS = env().OTEL_EXPORTER_OTLP_HEADERS;
  running = await startHub();
  // `switchyard listen` serving the listener subscription's URL, printing every event in full.
  listener = spawnSwitchyard(
    ['listen', '--config', 'switchyard.yaml', '--subscription', 'listener', '--print-body'],
    { cwd: dir, env: env() },
  );
  await eventually(
    async () => (listener!.stderr().includes('listening for listener') ? true : undefined),
    `switchyard listen (${listener.stderr()})`,
    30_000,
  );
}, 90_000);

afterAll(async () => {
  delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
  if (listener) {
    listener.child.kill('SIGTERM');
    await listener.exited;
  }
  await running?.stop();
  for (const s of [vendor, subscriber, approver]) if (s) await closeServer(s.server);
  await otlp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The statuses of the pushes since the last look: each right key taken, each wrong one refused. */
const pushed: number[] = [];
/** A POST to an instance's hook, no admin token. */
async function push(path: string, body: string, headers: Record<string, string> = {}) {
  const r = await call(path, { method: 'POST', admin: false, headers, body });
  pushed.push(r.status);
  return r;
}

/** The subject of the last event of `source` whose type is `type`. */
async function subjectOf(source: string, type: string): Promise<string> {
  return eventually(async () => {
    const page = (await json(`/v1/events?source=${source}&type=${type}`)).json;
    return page.items.at(-1)?.subject as string | undefined;
  }, `a ${type} event of ${source}`);
}

/** Sends a command and waits for it to end (it fails: the vendors answer errors). */
async function command(type: string, subject: string): Promise<JsonObject> {
  const sent = await json('/v1/commands', {
    method: 'POST',
    body: JSON.stringify({ type, subject, data: {} }),
  });
  expect(sent.status, JSON.stringify(sent.json)).toBe(202);
  return eventually(async () => {
    const c = (await json(`/v1/commands/${sent.json.id}`)).json;
    return c.status === 'succeeded' || c.status === 'failed' ? c : undefined;
  }, `command ${type}`);
}

describe('the secrets sweep, widened', () => {
  it('finds no secret in any stored row, log line, HTTP answer, CLI output or exported span', async () => {
    // Square: signed over server.publicUrl + the path + the body, with the key, the previous key,
    // nearly the key, another instance's key, and the key itself as the signature.
    const sqBody = JSON.stringify(fixture('square', 'booking-created.json'));
    const sqSigned = (key: string, path = '/hooks/sq') =>
      createHmac('sha256', key).update(`${PUBLIC_URL}${path}${sqBody}`).digest('base64');
    for (const signature of [
      sqSigned(S.sqSignature),
      sqSigned(S.sqPrevious),
      sqSigned(nearly(S.sqSignature)),
      sqSigned(S.calSigning),
      S.sqSignature,
    ])
      await push('/hooks/sq', sqBody, { 'x-square-hmacsha256-signature': signature });
    // A query string carrying the key (a proxy's habit): the URL is signed as received.
    const sqQuery = `/hooks/sq?key=${S.sqSignature}`;
    await push(sqQuery, sqBody, { 'x-square-hmacsha256-signature': sqSigned(S.sqSignature, sqQuery) });
    expect(pushed.splice(0)).toEqual([200, 200, 401, 401, 401, 200]);

    // Calendly: `t=<unix>,v1=<hex HMAC of "<t>.<body>">` with the key, nearly it, another's key.
    const calBody = JSON.stringify(fixture('calendly', 'invitee-created.json'));
    const calSigned = (key: string) => {
      const t = Math.floor(Date.now() / 1000);
      return `t=${t},v1=${createHmac('sha256', key).update(`${t}.${calBody}`).digest('hex')}`;
    };
    for (const key of [S.calSigning, nearly(S.calSigning), S.sqSignature])
      await push('/hooks/cal', calBody, { 'calendly-webhook-signature': calSigned(key) });
    await push('/hooks/cal', calBody, { 'calendly-webhook-signature': `t=1,v1=${S.calSigning}` });
    expect(pushed.splice(0)).toEqual([200, 401, 401, 401]);

    // BookingBug / JRNI: Basic user:password, the Basic token, and a token from the OAuth2 endpoint.
    const basic = (user: string, password: string) =>
      `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const bbLegacy = JSON.stringify(fixture('bookingbug', 'created.json'));
    const bbJrni = JSON.stringify(fixture('bookingbug', 'jrni-data-create.json'));
    for (const password of [S.bbPassword, nearly(S.bbPassword), S.bbToken])
      await push('/hooks/bb', bbLegacy, { authorization: basic('sweep-bb', password) });
    for (const token of [S.bbToken, nearly(S.bbToken), S.bbPassword])
      await push('/hooks/bb', bbJrni, { authorization: `Basic ${token}` });
    expect(pushed.splice(0)).toEqual([200, 401, 401, 200, 401, 401]);
    const tokenForm = (secret: string) =>
      `grant_type=client_credentials&client_id=sweep-jrni&client_secret=${encodeURIComponent(secret)}`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    for (const secret of [nearly(S.bbClientSecret), S.bbPassword])
      await push('/hooks/bb/oauth/token', tokenForm(secret), form);
    await push('/hooks/bb/oauth/token', 'grant_type=client_credentials', {
      ...form,
      authorization: basic('sweep-jrni', nearly(S.bbClientSecret)),
    });
    await push(`/hooks/bb/oauth/token?client_id=sweep-jrni&client_secret=${S.bbClientSecret}`, '', form);
    await push(
      '/hooks/bb/oauth/token',
      JSON.stringify({ client_id: 'sweep-jrni', client_secret: S.bbToken }),
    );
    // The right client: the answer shows the access token (that answer alone may), then it is used.
    const issued = await push('/hooks/bb/oauth/token', tokenForm(S.bbClientSecret), form);
    expect(issued.status, issued.text).toBe(200);
    client.answers.pop();
    madeSecrets.bbAccessToken = JSON.parse(issued.text).access_token;
    await push('/hooks/bb/oauth/token', 'grant_type=client_credentials', {
      ...form,
      authorization: basic('sweep-jrni', S.bbClientSecret),
    });
    client.answers.pop();
    for (const token of [madeSecrets.bbAccessToken!, nearly(madeSecrets.bbAccessToken!)])
      await push('/hooks/bb', bbJrni, { authorization: `Bearer ${token}` });
    // Four wrong clients refused, two right ones served, the issued token taken and nearly it refused.
    expect(pushed.splice(0)).toEqual([401, 401, 401, 401, 401, 200, 200, 200, 401]);

    // Instinctive Notes: the secret as the last path segment and in its header.
    const inBody = JSON.stringify(fixture('instinctive-notes', 'soap-note-created.json'));
    for (const secret of [S.inSecret, nearly(S.inSecret), S.calToken]) {
      await push(`/hooks/in/${encodeURIComponent(secret)}`, inBody);
      await push('/hooks/in', inBody, { 'x-instinctive-secret': secret });
    }
    await push(`/hooks/in/${S.inSecret}?secret=${S.inSecret}`, inBody);
    expect(pushed.splice(0)).toEqual([200, 200, 401, 401, 401, 401, 200]);

    // Quable: the static Authorization value, nearly it, another instance's.
    const qbBody = JSON.stringify(fixture('quable', 'document-create.json'));
    for (const authorization of [S.qbAuthorization, nearly(S.qbAuthorization), `Bearer ${S.bbToken}`])
      await push('/hooks/qb', qbBody, { authorization });
    expect(pushed.splice(0)).toEqual([200, 401, 401]);

    // Docplanner slot bookings asking the approver: the first approved, the second refused.
    const slot = fixture('docplanner', 'slot-booking.json');
    const second = structuredClone(slot);
    Object.assign((second.data as JsonObject).visit_booking_request as JsonObject, {
      start_at: '2026-03-11T09:00:00+01:00',
      end_at: '2026-03-11T09:20:00+01:00',
      signature: '5c2e11bb',
    });
    for (const body of [slot, second])
      await push('/hooks/dp', JSON.stringify(body), { 'x-api-key': S.dpPush });
    // Approved, then refused: Docplanner is answered 409 (docs/gates.md).
    expect(pushed.splice(0)).toEqual([200, 409]);
    expect(approverSaw.length).toBeGreaterThanOrEqual(2);

    // Commands to vendors whose errors quote what they were sent: Calendly's API token,
    // BookingBug's login (password, App-Key) and then its Auth-Token.
    const calSubject = await subjectOf('cal', 'appointment.created');
    await command('appointment.cancel', calSubject);
    await command('appointment.mark_no_show', calSubject);
    const bbSubject = await subjectOf('bb', 'appointment.created');
    await command('appointment.cancel', bbSubject);
    await command('appointment.mark_no_show', bbSubject);

    // The pull feed: its secret, nearly it, another subscription's secret, the admin token.
    const read: number[] = [];
    for (const token of [S.feed, nearly(S.feed), S.listen, S.admin]) {
      read.push((await call('/v1/subscriptions/feed/events?limit=5', { admin: token })).status);
      await call('/v1/subscriptions/feed/ack', { method: 'POST', admin: token, body: '{"cursor":"0"}' });
    }
    expect(read).toEqual([200, 401, 401, 401]);

    // Deliveries: to `listen` (it answers 200) and to the subscriber answering 500 until dead.
    await eventually(
      async () => (listener!.stdout().includes('signature ok') ? true : undefined),
      'a delivery printed by switchyard listen',
    );
    await eventually(async () => {
      const page = (await json('/v1/deliveries?status=dead&limit=5')).json;
      return page.items.length > 0 ? page : undefined;
    }, 'a dead delivery');

    // Every GET route of the app, with the ids the lists show.
    await client.readEverything(running!.app);
    // The spans of the hook requests (their url.path) and of the commands' vendor calls, exported.
    await otlp.waitFor(
      (spans) =>
        spans.some((s) => String(s.attributes['url.path'] ?? '').startsWith('/hooks/in/')) &&
        spans.some((s) => String(s.attributes['url.full'] ?? '').includes('/bb/api/v1/login')),
      30_000,
    );
    // The collector refusing an export, its answer (reason phrase and body) quoting the keys it was sent.
    otlp.status = 401;
    otlp.failure = (headers) => ({
      reason: `Invalid API key ${String(headers['x-api-key'])} for tenant ${String(headers['x-tenant-key'])} (${String(headers.authorization)})`,
      body: JSON.stringify({ code: 16, message: `invalid API key ${String(headers['x-api-key'])}`, headers }),
    });
    const refusedBefore = otlp.requests;
    await call('/v1/instances');
    await eventually(
      async () =>
        otlp.requests > refusedBefore && logLines.some((l) => l.includes('the collector did not take'))
          ? true
          : undefined,
      'an export refused by the collector, logged',
    );
    await running!.stop();
    running = undefined;
    listener!.child.kill('SIGTERM');
    await listener!.exited;
    outputs.push({ where: 'switchyard listen', text: `${listener!.stdout()}\n${listener!.stderr()}` });
    listener = undefined;

    // `switchyard validate` of files whose references are wrong: a variable that is not set, a file
    // that is not there, and secrets referenced where a setting of another shape is due.
    const validate = async (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      let out = '';
      const io: CliIO = {
        stdout: { write: (t: string) => (out += t) },
        stderr: {
          write: (t: string) => {
            out += t;
            return true;
          },
        },
        env: env(),
        cwd: dir,
      };
      const code = await validateCommand
        .run({ values: { config: join(dir, name) }, positionals: [] }, io)
        .catch((error: Error) => `threw ${error.message}`);
      outputs.push({ where: `switchyard validate ${name} → ${code}`, text: out });
      return code;
    };
    const good = configText();
    const wrong: Array<[string, string, string]> = [
      ['unset.yaml', 'signingKey: ${env:SW_CAL_SIGNING}', 'signingKey: ${env:SW_CAL_SIGNING_TYPO}'],
      ['missing-file.yaml', 'apiToken: ${file:cal-token.txt}', 'apiToken: ${file:cal-token.txt.old}'],
      ['url.yaml', `apiBaseUrl: ${vendor.url}/cal`, 'apiBaseUrl: ${env:SW_CAL_SIGNING}'],
      [
        'enum.yaml',
        'auth: { mode: either, secret: "${env:SW_IN}" }',
        'auth: { mode: "${env:SW_IN}", secret: "${env:SW_QB}" }',
      ],
      [
        'short.yaml',
        'signatureKey: ${env:SW_SQ}',
        'signatureKey: ${env:SW_SQ}x${env:SW_BB_TOKEN}\n      bogus: ${env:SW_BB_TOKEN}',
      ],
      [
        'header.yaml',
        'x-api-key: ${env:SW_OTLP_KEY}',
        'x-api-key: ${env:SW_OTLP_KEY_OLD}\n      x-api-secret: ${vault:SW_OTLP_KEY}',
      ],
      ['port.yaml', '  port: 0', '  port: ${env:SW_BB_PASSWORD}'],
      // Secrets pasted as they are into settings of another shape (an operator's slip).
      ['pasted-url.yaml', `apiBaseUrl: ${vendor.url}/cal`, `apiBaseUrl: ${S.calToken}`],
      [
        'pasted-enum.yaml',
        'auth: { mode: either, secret: "${env:SW_IN}" }',
        `auth: { mode: "${S.inSecret}", secret: "${S.inBadPath}" }`,
      ],
      [
        'pasted-path.yaml',
        'auth: { mode: either, secret: "${env:SW_IN}" }',
        `auth: { mode: path, secret: "${S.inBadPath}" }`,
      ],
      ['pasted-port.yaml', '  port: 0', `  port: ${S.bbPassword}`],
      ['pasted-short.yaml', 'signingKey: ${env:SW_CAL_SIGNING}', `signingKey: ${S.shortKey}`],
    ];
    for (const [name, from, to] of wrong) {
      expect(good, name).toContain(from);
      expect(await validate(name, good.replace(from, to)), name).not.toBe(0);
    }

    // The sweep finds what is there: the secrets were in play where they were due.
    const sentOut = hitsIn(
      secrets(),
      vendorSaw.map((text) => ({ where: 'vendor', text })),
    ).map((h) => h.split(' ')[0]);
    for (const name of ['calToken', 'bbAdminPassword', 'bbAppKey', 'bbAuthToken'])
      expect(sentOut, name).toContain(name);
    // The collector's API key reached it as a header of every export, and spans were exported.
    expect(otlp.headers.length).toBeGreaterThan(0);
    for (const headers of otlp.headers) {
      expect(headers['x-api-key']).toBe(S.otlpKey);
      expect(headers['x-tenant-key']).toBe(S.otlpEnvKey);
      // The endpoint's user:password@, sent as Basic auth.
      expect(headers.authorization).toBe(
        `Basic ${Buffer.from(`sweep-otlp:${S.otlpUrlPassword}`).toString('base64')}`,
      );
    }
    // The approver decided both ways, and the hub recorded its decisions.
    const gates = JSON.stringify(client.answers.filter((a) => a.where.startsWith('GET /v1/gates')));
    expect(gates).toContain('refuse');
    expect(gates).toContain('approve');

    const spans = otlp.spans.map((s) => ({
      where: `span ${s.name}`,
      text: JSON.stringify({
        name: s.name,
        attributes: s.attributes,
        resource: s.resource,
        state: s.traceState,
      }),
    }));
    expect(spans.length).toBeGreaterThan(10);
    const tables = await dumpDatabase(db.url());
    const hits = hitsIn(secrets(), [
      ...tables,
      ...logLines.map((text, i) => ({ where: `log line ${i}`, text })),
      ...client.answers,
      ...outputs,
      ...spans,
    ]);
    expect(hits).toEqual([]);
  }, 120_000);
});
