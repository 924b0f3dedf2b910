// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} and ${file:...} references on purpose.
/**
 * An attacker's and an auditor's sweep for secrets: a hub process started as `switchyard start`
 * starts it (config file with `${env:…}` and `${file:…}` references, the logger of the CLI at debug
 * level) with instances of several connectors, each secret a recognisable value, is driven through
 * pushes (right key, the key with one character changed, another instance's key), a pull, commands
 * whose vendor answers errors quoting the credential it was sent, deliveries to a subscriber
 * answering 500 with the request's headers quoted, admin API writes and reads of every GET route,
 * and a restart on a config whose keys were rotated. Then every table of the database (the hub's
 * and pg-boss's), every log line and every HTTP answer (body and headers) is searched for each
 * secret raw, base64 (at any offset: Basic-auth pairs included), URL-encoded and hex.
 */

import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { useTestDatabase } from '@switchyard/testing';
import {
  closeServer,
  type LocalServer,
  listenLocal,
  readBody,
} from '@switchyard/testing/simulator-kit/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO, Command } from '../cli/command.ts';
import { commandsCommand } from '../cli/commands/commands.ts';
import { subscriptionsCommand } from '../cli/commands/subscriptions.ts';
import { validateCommand } from '../cli/commands/validate.ts';
import type { HubProcess } from '../runtime/process.ts';
import { fixture } from './connectors/fixtures.test-support.ts';
import {
  dumpDatabase,
  eventually,
  nearly,
  SweepClient,
  type SweptText,
  startSweepHub,
  hitsIn as sweepHits,
} from './secrets-sweep.test-support.ts';

const db = useTestDatabase();

/** Every secret of the sweep, by what it is; each unlike any other text the hub writes. */
const S = {
  admin: 'sweepAdminTok-Q7x9Lm2Pz4Vb',
  adminRotated: 'sweepAdminTok-R8y0Mn3Qa5Wc',
  secretKey: 'sweepSecretKey-Hk3Jd8Wq5Ze1',
  dpPush: 'sweepDpPushKey-Rv6Tn2Ya8Cx',
  dpPushRotated: 'sweepDpPushKey-Sw7Uo3Zb9Dy',
  dp2Push: 'sweepDp2PushKey-Mf4Gs9Kb1X',
  dpClientSecret: 'sweepDpClientSec-Wj5Pq7Le3N',
  dpAccessToken: 'sweepDpAccessTok-Ga2Hb4Jc6K',
  dp2ClientSecret: 'sweepDp2ClientSec-Lm8Nn0Pp2',
  cwHook: 'sweepCwHookKey-Bz8Vc2Hn6Ud',
  cwApi: 'sweepCwApiKey-Ty3Rk9Fm5Qa',
  clApi: 'sweepClApiKey-Np2Xw6Jg4Ls',
  acApi: 'sweepAcApiKey-Hd4Fs6Ga8Jk',
  acPrevious: 'sweepAcPrevKey-Zx1Cv3Bn5Mq',
  signing: `whsec_${Buffer.from('sweep-signing-secret-0123456789AB').toString('base64')}`,
  approverSigning: `whsec_${Buffer.from('sweep-approver-secret-9876543210CD').toString('base64')}`,
  apiInstanceKey: 'sweepApiInstKey-Ef5Gh7Ij9Kl',
  dbPassword: 'sweepDbPassw0rd-Xy7Zt1Q',
  badPathKey: 'sweepBadPath/Key-Zq9Wx7Vu5',
  shortKey: 'sweepShrt-K9',
  badSigning: 'whsec_sweepBad!!Secret-Kk8Jj6',
  urlPassword: 'sweepUrlPassw-Ab3Cd5Ef7',
  apiSubSigning: `whsec_${Buffer.from('sweep-api-sub-secret-ABCDEFGHIJ01').toString('base64')}`,
} as const;

/** Secrets the API made and showed once (a command credential, …): swept for like those above. */
const madeSecrets: Record<string, string> = {};

/** Where each secret of the sweep (in any form) occurs in `texts`. */
const hitsIn = (texts: readonly SweptText[]) => sweepHits({ ...S, ...madeSecrets }, texts);

const logLines: string[] = [];
/** What the vendors' APIs were sent: the secrets were in play (the sweep's own check). */
const vendorSaw: string[] = [];
let dir: string;
let vendor: LocalServer;
let subscriber: LocalServer;
let cliniko: ClinikoSimulator;
let running: HubProcess | undefined;

/** The hub's HTTP answers, kept for the sweep. */
const client = new SweepClient(() => running!.url, S.admin);
const answers = client.answers;
const call = client.call.bind(client);
const json = client.json.bind(client);

/** The config file's text: instances of four connectors, a subscription, an approver. */
function configText(rotated: boolean): string {
  return [
    'version: 1',
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    `  adminToken: \${env:SW_ADMIN}`,
    'database:',
    '  url: ${env:SW_DB}',
    'secretKey: ${file:secret-key.txt}',
    'logging: { level: debug }',
    'instances:',
    '  - id: dp',
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    `      apiBaseUrl: ${vendor.url}/dp`,
    '      clientId: sweep-client',
    '      clientSecret: ${file:dp-client-secret.txt}',
    '      releaseIntervalMinutes: 0',
    '      pushAuth:',
    '        headerName: x-api-key',
    '        apiKey: ${env:SW_DP_PUSH}',
    '  - id: dp2',
    '    connector: docplanner',
    '    mode: push',
    '    settings:',
    `      apiBaseUrl: ${vendor.url}/dp2`,
    '      clientId: sweep-client-2',
    '      clientSecret: ${env:SW_DP2_CLIENT}',
    '      releaseIntervalMinutes: 0',
    '      pushAuth:',
    '        headerName: x-api-key',
    '        apiKey: ${file:dp2-push.txt}',
    '  - id: cw',
    '    connector: clockwisemd',
    '    mode: push',
    '    settings:',
    '      auth: { mode: either, key: "${env:SW_CW_HOOK}" }',
    '      apiKey: ${env:SW_CW_API}',
    `      apiBaseUrl: ${vendor.url}/cw`,
    '  - id: cl',
    '    connector: cliniko',
    '    mode: pull',
    '    settings:',
    '      apiKey: ${file:cl-api.txt}',
    '      userAgent: Sweep (sweep@example.com)',
    `      apiBaseUrl: ${cliniko.url}`,
    '    pull: { interval: 200ms }',
    '  - id: ac',
    '    connector: acuity',
    '    mode: push',
    '    settings:',
    '      userId: "27238"',
    '      apiKey: ${env:SW_AC_API}',
    '      previousApiKey: ${file:ac-previous.txt}',
    `      apiBaseUrl: ${vendor.url}/ac`,
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
    `    url: ${subscriber.url}/desk`,
    '    events: ["appointment.booking_requested"]',
    '    secrets: ["${file:approver.txt}"]',
    '    allowPrivateAddresses: true',
    '    approver: {}',
    '',
  ]
    .join('\n')
    .replace('${env:SW_DP_PUSH}', rotated ? '${env:SW_DP_PUSH_ROTATED}' : '${env:SW_DP_PUSH}')
    .replace('${env:SW_ADMIN}', rotated ? '${env:SW_ADMIN_ROTATED}' : '${env:SW_ADMIN}');
}

/** The environment the config's `${env:…}` references read. */
function env(): Record<string, string> {
  return {
    SW_ADMIN: S.admin,
    SW_ADMIN_ROTATED: S.adminRotated,
    // Postgres here trusts local connections: the password is not checked, only carried.
    SW_DB: db.url().replace('postgres://postgres@', `postgres://postgres:${S.dbPassword}@`),
    SW_DP_PUSH: S.dpPush,
    SW_DP_PUSH_ROTATED: S.dpPushRotated,
    SW_DP2_CLIENT: S.dp2ClientSecret,
    SW_CW_HOOK: S.cwHook,
    SW_CW_API: S.cwApi,
    SW_SIGNING: S.signing,
    SW_AC_API: S.acApi,
  };
}

async function startHub(rotated: boolean): Promise<HubProcess> {
  return startSweepHub(dir, configText(rotated), env(), logLines);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-sweep-'));
  writeFileSync(join(dir, 'secret-key.txt'), `${S.secretKey}\n`);
  writeFileSync(join(dir, 'dp-client-secret.txt'), `${S.dpClientSecret}\n`);
  writeFileSync(join(dir, 'dp2-push.txt'), `${S.dp2Push}\n`);
  writeFileSync(join(dir, 'cl-api.txt'), `${S.clApi}\n`);
  writeFileSync(join(dir, 'ac-previous.txt'), `${S.acPrevious}\n`);
  writeFileSync(join(dir, 'approver.txt'), `${S.approverSigning}\n`);
  // The vendors' APIs as a careless gateway shows them: every error quotes what it was sent.
  vendor = await listenLocal(
    async (req, res) => {
      const body = await readBody(req);
      const headers = JSON.stringify(req.headers);
      vendorSaw.push(`${req.url} ${headers} ${body}`);
      if (req.url === '/dp/oauth/v2/token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: S.dpAccessToken, expires_in: 3600, token_type: 'bearer' }));
        return;
      }
      if (req.url?.startsWith('/dp2/')) {
        const auth = String(req.headers.authorization ?? '');
        const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
        res.writeHead(401, { 'content-type': 'text/html', 'www-authenticate': `Basic realm="${decoded}"` });
        res.end(`<html>invalid_client: ${auth} (${decoded}) form=${body} headers=${headers}</html>`);
        return;
      }
      if (req.url?.startsWith('/ac/')) {
        // Acuity's API behind a proxy whose 403 page quotes the Basic credentials it was sent.
        res.writeHead(403, { 'content-type': 'text/plain' });
        res.end(`Forbidden for ${String(req.headers.authorization)} ${headers}`);
        return;
      }
      if (req.url?.startsWith('/cw/')) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `Invalid Authtoken ${String(req.headers.authtoken)}`, headers }));
        return;
      }
      res.writeHead(502, {
        'content-type': 'text/plain',
        'x-echo-authorization': String(req.headers.authorization),
      });
      res.end(`Bad gateway. Request headers: ${headers} body: ${body}`);
    },
    (_error, _req, res) => res.end(),
  );
  // A subscriber answering 500 with the request's headers (signatures included) quoted.
  subscriber = await listenLocal(
    async (req, res) => {
      await readBody(req);
      res.writeHead(500, {
        'content-type': 'application/json',
        'x-echo-signature': String(req.headers['webhook-signature']),
      });
      res.end(JSON.stringify({ error: 'boom', headers: req.headers }));
    },
    (_error, _req, res) => res.end(),
  );
  cliniko = new ClinikoSimulator({ apiKey: S.clApi });
  await cliniko.start();
  cliniko.put({
    id: '91001',
    created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    starts_at: '2026-03-10T10:00:00Z',
    ends_at: '2026-03-10T10:30:00Z',
    patient_arrived: false,
    did_not_arrive: false,
    notes: null,
    cancelled_at: null,
  });
  running = await startHub(false);
}, 60_000);

afterAll(async () => {
  await running?.stop();
  if (vendor) await closeServer(vendor.server);
  if (subscriber) await closeServer(subscriber.server);
  await cliniko?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the secrets sweep', () => {
  it('finds no secret in any stored row, log line or HTTP answer', async () => {
    const booking = JSON.stringify(fixture('docplanner', 'booking-confirmed.json'));
    // Pushes: right key, nearly the key, another instance's key, in the header and as Basic/Bearer.
    for (const key of [S.dpPush, nearly(S.dpPush), S.dp2Push, S.cwHook]) {
      await call('/hooks/dp', { method: 'POST', admin: false, headers: { 'x-api-key': key }, body: booking });
      await call('/hooks/dp', {
        method: 'POST',
        admin: false,
        headers: { authorization: `Basic ${Buffer.from(`dp:${key}`).toString('base64')}` },
        body: booking,
      });
    }
    await call(`/hooks/dp2?key=${S.dp2Push}`, { method: 'POST', admin: false, body: booking });
    const cwPush = JSON.stringify({ appointment_id: 12345, event_type: 'create' });
    for (const key of [S.cwHook, nearly(S.cwHook), S.dpPush]) {
      await call(`/hooks/cw/${encodeURIComponent(key)}`, { method: 'POST', admin: false, body: cwPush });
      await call('/hooks/cw', { method: 'POST', admin: false, headers: { authtoken: key }, body: cwPush });
    }
    // Acuity: signed with its key, its previous key, nearly its key, another instance's key, the key itself as the signature.
    const scheduled = 'action=scheduled&id=54321&calendarID=27238&appointmentTypeID=1'; // acuity/fixtures/appointment-scheduled.form
    const signed = (key: string) => createHmac('sha256', key).update(scheduled).digest('base64');
    for (const signature of [
      signed(S.acApi),
      signed(S.acPrevious),
      signed(nearly(S.acApi)),
      signed(S.cwApi),
      S.acApi,
    ])
      await call('/hooks/ac', {
        method: 'POST',
        admin: false,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-acuity-signature': signature },
        body: scheduled,
      });

    // The admin API with nearly the token, and another secret as the token.
    await call('/v1/instances', { admin: nearly(S.admin) });
    await call('/v1/events', { admin: S.dpPush });

    // Commands to vendors whose errors quote the credential they were sent.
    const book = (instance: string, start: string) =>
      json('/v1/commands', {
        method: 'POST',
        body: JSON.stringify({
          type: 'appointment.book',
          instance,
          data: {
            start,
            durationMinutes: 30,
            patient: { name: 'Anna', phone: '+48500100200' },
            practitioner: { id: '182733' },
            location: { id: '221304' },
            organization: { id: '90211' },
            service: { id: '4455661' },
          },
        }),
      });
    const sent = [
      await book('dp', '2026-03-10T11:30:00+01:00'),
      await book('dp2', '2026-03-10T12:30:00+01:00'),
    ];
    for (const s of sent) expect(s.status, JSON.stringify(s.json)).toBe(202);
    for (const s of sent)
      await eventually(async () => {
        const c = (await json(`/v1/commands/${s.json.id}`)).json;
        return c.status === 'succeeded' || c.status === 'failed' ? c : undefined;
      }, `command ${s.json.id}`);

    // Admin writes with secrets: an instance and a subscription made through the API.
    const made = await json('/v1/instances', {
      method: 'POST',
      body: JSON.stringify({
        id: 'api-cw',
        connector: 'clockwisemd',
        mode: 'push',
        settings: { auth: { mode: 'header', key: S.apiInstanceKey }, apiBaseUrl: `${vendor.url}/cw` },
      }),
    });
    expect(made.status, JSON.stringify(made.json)).toBeLessThan(300);
    await call('/hooks/api-cw', {
      method: 'POST',
      admin: false,
      headers: { authtoken: S.apiInstanceKey },
      body: cwPush,
    });
    const sub = await json('/v1/subscriptions', {
      method: 'POST',
      body: JSON.stringify({
        id: 'api-sub',
        url: `${subscriber.url}/api-sub`,
        eventTypes: ['*'],
        secrets: [S.apiSubSigning],
        allowPrivateAddresses: true,
      }),
    });
    expect(sub.status, JSON.stringify(sub.json)).toBeLessThan(300);
    // A bad write quoting a secret back: its problem answer.
    await call('/v1/instances', {
      method: 'POST',
      body: JSON.stringify({
        id: 'bad',
        connector: 'clockwisemd',
        mode: 'push',
        settings: { auth: { key: S.apiInstanceKey, mode: 7 } },
      }),
    });

    // Secrets the API shows once, in the answer that makes them (that answer alone may show them),
    // then used: a command credential, a FHIR read token, a rotated signing secret.
    const shownOnce = async (name: string, path: string, field: string) => {
      const r = await json(path, { method: 'POST', body: '{}' });
      expect(r.status, JSON.stringify(r.json)).toBeLessThan(300);
      madeSecrets[name] = r.json[field];
      answers.pop();
      return r.json[field] as string;
    };
    const credential = await shownOnce(
      'commandCredential',
      '/v1/subscriptions/crm/command-credentials',
      'token',
    );
    const fhirToken = await shownOnce('fhirReadToken', '/v1/subscriptions/crm/fhir-read-token', 'token');
    const rotated = await shownOnce('rotatedSigning', '/v1/subscriptions/api-sub/rotate-secret', 'secret');
    await call('/v1/commands', {
      method: 'POST',
      admin: credential,
      body: JSON.stringify({ type: 'appointment.cancel', subject: 'appointment/nope', data: {} }),
    });
    await call('/v1/commands', { admin: nearly(credential) });
    await call('/fhir/r4/Appointment', { admin: fhirToken });
    await call('/fhir/r4/Appointment', { admin: nearly(fhirToken) });
    for (const secret of [S.signing, rotated, nearly(rotated), S.apiSubSigning])
      for (const id of ['crm', 'api-sub']) await call(`/v1/subscriptions/${id}/events`, { admin: secret });

    // A slot booking asking the approver (answering 500 with the request quoted) for a decision.
    await call('/hooks/dp', {
      method: 'POST',
      admin: false,
      headers: { 'x-api-key': S.dpPush },
      body: JSON.stringify(fixture('docplanner', 'slot-booking.json')),
    });

    // Bad writes carrying secrets: each problem answer must not quote them back.
    const bad = [
      [
        '/v1/instances',
        {
          id: 'bad-path',
          connector: 'clockwisemd',
          mode: 'push',
          settings: { auth: { mode: 'path', key: S.badPathKey } },
        },
      ],
      [
        '/v1/instances',
        {
          id: 'bad-short',
          connector: 'clockwisemd',
          mode: 'push',
          settings: { auth: { mode: 'header', key: S.shortKey } },
        },
      ],
      [
        '/v1/subscriptions',
        {
          id: 'bad-sig',
          url: `${subscriber.url}/x`,
          eventTypes: ['*'],
          secrets: [S.badSigning],
          allowPrivateAddresses: true,
        },
      ],
      [
        '/v1/subscriptions',
        {
          id: 'url-pass',
          url: `http://sweeper:${S.urlPassword}@127.0.0.1:9/x`,
          eventTypes: ['*'],
          allowPrivateAddresses: true,
        },
      ],
    ] as const;
    for (const [path, body] of bad) await call(path, { method: 'POST', body: JSON.stringify(body) });
    await call('/v1/instances/api-cw', {
      method: 'PUT',
      body: JSON.stringify({
        connector: 'clockwisemd',
        mode: 'push',
        settings: { auth: { mode: 'path', key: S.badPathKey } },
      }),
    });

    // The pull, and deliveries answered 500 until dead.
    await eventually(async () => {
      const page = (await json('/v1/inbound?instanceId=cl')).json;
      return page.items.length > 0 ? page : undefined;
    }, 'a pulled message of cl');
    await eventually(async () => {
      const page = (await json('/v1/deliveries?status=dead&limit=5')).json;
      return page.items.length > 0 ? page : undefined;
    }, 'a dead delivery');

    // Every GET route of the app, with the ids the lists show.
    await client.readEverything(running!.app);
    // A restart on a config whose push key and admin token were rotated, then the reads again.
    await running!.stop();
    running = await startHub(true);
    await call('/hooks/dp', {
      method: 'POST',
      admin: false,
      headers: { 'x-api-key': S.dpPush },
      body: booking,
    });
    await call('/hooks/dp', {
      method: 'POST',
      admin: false,
      headers: { 'x-api-key': S.dpPushRotated },
      body: booking,
    });
    // The secrets made through the API, first used by this process before it read them: its log
    // scrubber knows the config file's secrets only.
    await call(`/hooks/api-cw/${S.apiInstanceKey}`, { method: 'POST', admin: false, body: cwPush });
    await call('/hooks/api-cw', {
      method: 'POST',
      admin: false,
      headers: { authtoken: S.apiInstanceKey },
      body: cwPush,
    });
    await call('/v1/commands', { admin: madeSecrets.commandCredential });
    await call('/fhir/r4/Appointment', { admin: madeSecrets.fhirReadToken });
    await client.readEverything(running!.app, S.adminRotated);
    await running!.stop();

    // The CLI on the same config: its stdout and stderr.
    const cli = async (
      command: Command,
      positionals: string[],
      values: Record<string, string | boolean> = {},
    ) => {
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
      const code = await command
        .run({ values: { config: join(dir, 'switchyard.yaml'), ...values }, positionals }, io)
        .catch((error: Error) => `threw ${error.message}`);
      answers.push({ where: `switchyard ${command.name} ${positionals.join(' ')} → ${code}`, text: out });
    };
    await cli(validateCommand, []);
    await cli(subscriptionsCommand, ['test'], { id: 'crm' });
    await cli(commandsCommand, ['show', sent[1]!.json.id]);
    // A config whose secrets are each refused: `validate` names the problem, not the value.
    writeFileSync(
      join(dir, 'switchyard.yaml'),
      configText(false)
        .replace('${env:SW_SIGNING}', S.badSigning)
        .replace(
          'auth: { mode: either, key: "${env:SW_CW_HOOK}" }',
          `auth: { mode: path, key: "${S.badPathKey}" }`,
        )
        .replace('secretKey: ${file:secret-key.txt}', `secretKey: ${S.shortKey}`),
    );
    await cli(validateCommand, []);

    // The sweep finds what is there: the vendors were sent the credentials their errors quoted.
    const sentOut = hitsIn(vendorSaw.map((text) => ({ where: 'vendor', text }))).map((h) => h.split(' ')[0]);
    for (const name of ['dpAccessToken', 'dp2ClientSecret', 'cwApi', 'dpClientSecret', 'acApi'])
      expect(sentOut).toContain(name);

    const tables = await dumpDatabase(db.url());
    const hits = hitsIn([
      ...tables,
      ...logLines.map((text, i) => ({ where: `log line ${i}`, text })),
      ...answers,
    ]);
    expect(hits).toEqual([]);
    running = undefined;
  }, 90_000);
});
