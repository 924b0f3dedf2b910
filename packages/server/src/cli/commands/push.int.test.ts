// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config files use ${env:...} references on purpose.
/**
 * `switchyard push` against a running hub (real HTTP, real Postgres): every shipped connector's
 * fixture, sent with the credentials its vendor presents (the connector's `push.sign`), is accepted
 * and stored; a key in the path picks the route that takes it; a config whose credential differs
 * from the hub's gets the hub's refusal and exit code 1; the credential never shows in the output.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureSettings as bookingbugSettings } from '@switchyard/connector-bookingbug/testing';
import { fixtureSettings as clockwiseSettings } from '@switchyard/connector-clockwisemd/testing';
import { fixtureSettings as docplannerSettings } from '@switchyard/connector-docplanner/testing';
import { fixtureSettings as notesSettings } from '@switchyard/connector-instinctive-notes/testing';
import { fixtureSettings as quableSettings } from '@switchyard/connector-quable/testing';
import { fixtureSettings as squareSettings } from '@switchyard/connector-square/testing';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { shippedConnectors } from '../../connectors.ts';
import { call, listen, makeHub, SECRET_KEY, silent } from '../../http/app.test-support.ts';
import type { Hub } from '../../pipeline/hub.ts';
import { applyFileConfig } from '../../runtime/apply.ts';
import { startHubProcess } from '../../runtime/process.ts';
import type { CliIO } from '../command.ts';
import { main } from '../main.ts';

const database = useTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'switchyard-push-'));
const fixtures = (connector: string, file: string) =>
  new URL(`../../../../connectors/${connector}/fixtures/${file}`, import.meta.url).pathname;

const OAUTH = { clientId: 'jrni-client-0123', clientSecret: 'jrni-client-secret-0123456789abcdef' };
const PATH_KEY = 'cw-path-key-0123456789abcdef';

/** The instances: each shipped connector with its fixtures' settings, and two other ways to present. */
const instances = [
  { id: 'dp', connector: 'docplanner', settings: docplannerSettings },
  { id: 'cw', connector: 'clockwisemd', settings: clockwiseSettings },
  { id: 'cw-path', connector: 'clockwisemd', settings: { auth: { mode: 'path', key: PATH_KEY } } },
  { id: 'notes', connector: 'instinctive-notes', settings: notesSettings },
  { id: 'bb', connector: 'bookingbug', settings: bookingbugSettings },
  { id: 'bb-oauth', connector: 'bookingbug', settings: { oauth2: OAUTH } },
  { id: 'quable', connector: 'quable', settings: quableSettings },
];

function configFile(name: string, list = instances): string {
  // JSON is YAML: the settings as the test connectors' exports give them.
  const yaml = [
    'version: 1',
    'instances:',
    ...list.map((i) => `  - ${JSON.stringify({ ...i, mode: 'push' })}`),
    '',
  ].join('\n');
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

function memoryIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: {},
    cwd: dir,
    out: () => out,
    err: () => err,
  };
}

let hub: Hub;
let app: { base: string; close(): Promise<void> };
let config: string;

beforeAll(async () => {
  config = configFile('switchyard.yaml');
  const loaded = await loadConfig(config, { env: {}, connectors: shippedConnectors });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  hub = await makeHub(database.url(), { connectors: [...shippedConnectors] });
  await hub.start();
  await applyFileConfig(hub, loaded.config, silent);
  app = await listen(hub);
}, 60_000);

afterAll(async () => {
  await app?.close();
  await hub?.stop();
});

async function push(args: string[]) {
  const io = memoryIO();
  const code = await main(['push', '--config', config, '--url', app.base, ...args], io);
  return { code, out: io.out(), err: io.err() };
}

async function stored(instanceId: string): Promise<number> {
  const r = await call(app.base, 'GET', `/v1/inbound?instanceId=${instanceId}`);
  expect(r.status).toBe(200);
  return (r.json.items as unknown[]).length;
}

describe('switchyard push', () => {
  it.each([
    ['dp', 'docplanner', 'slot-booked.json'],
    ['cw', 'clockwisemd', 'create.json'],
    ['cw-path', 'clockwisemd', 'create.json'],
    ['notes', 'instinctive-notes', 'soap-note-created.json'],
    ['bb', 'bookingbug', 'created.json'],
    ['bb-oauth', 'bookingbug', 'created.json'],
    ['quable', 'quable', 'doc-example-document-update.json'],
  ])('sends %s a %s fixture as its vendor would: accepted and stored', async (id, connector, file) => {
    const r = await push(['--instance', id, fixtures(connector, file)]);
    expect(r.out).toMatch(/^200 OK\n/);
    expect(r.code).toBe(0);
    expect(await stored(id)).toBe(1);
    // The route that takes the key in the path, when the instance wants it there.
    expect(r.err).toContain(id === 'cw-path' ? 'route key' : 'route default');
    for (const secret of [PATH_KEY, OAUTH.clientSecret, docplannerSettings.pushAuth?.apiKey ?? '-'])
      expect(r.out + r.err).not.toContain(secret);
  });

  it('signs for a vendor that signs the hook URL (Square) over server.publicUrl + the path, as the hub verifies it', async () => {
    // The hub behind a proxy: reached at app.base, publicly https://hub.example.com.
    await hub.instances.upsert({
      id: 'sq',
      connector: 'square',
      mode: 'push',
      settings: { ...squareSettings },
    });
    const proxied = await listen(hub, { publicUrl: 'https://hub.example.com' });
    try {
      const file = join(dir, 'square.yaml');
      writeFileSync(
        file,
        [
          'version: 1',
          'server: { publicUrl: "https://hub.example.com" }',
          'instances:',
          `  - ${JSON.stringify({ id: 'sq', connector: 'square', mode: 'push', settings: squareSettings })}`,
          '',
        ].join('\n'),
      );
      const io = memoryIO();
      const code = await main(
        [
          'push',
          '--config',
          file,
          '--url',
          proxied.base,
          '--instance',
          'sq',
          fixtures('square', 'booking-created.json'),
        ],
        io,
      );
      expect(io.out()).toMatch(/^200 OK\n/);
      expect(code).toBe(0);
      expect(await stored('sq')).toBe(1);
    } finally {
      await proxied.close();
    }
  });

  it("prints the hub's refusal and exits 1 when the file's credential is not the hub's", async () => {
    const other = configFile('other.yaml', [
      { id: 'quable', connector: 'quable', settings: { authorization: 'Bearer not-the-hubs-0123456789' } },
    ]);
    const io = memoryIO();
    const code = await main(
      [
        'push',
        '--config',
        other,
        '--url',
        app.base,
        '--instance',
        'quable',
        fixtures('quable', 'bulk-edit-finish.json'),
      ],
      io,
    );
    expect(code).toBe(1);
    expect(io.out()).toMatch(/^401 Unauthorized\n\{.*"code":"SY_CONNECTOR_AUTH"/);
    expect(io.out() + io.err()).not.toContain('not-the-hubs');
  });

  it("needs only its instance's credentials: not the hub's secretKey or database, nor another vendor's", async () => {
    // A copy of the hub's file on an operator's machine, where only this vendor's secret is set.
    const yaml = [
      'version: 1',
      'secretKey: ${env:SWITCHYARD_SECRET_KEY}',
      'database: { url: "${env:SWITCHYARD_DATABASE_URL}" }',
      'instances:',
      `  - ${JSON.stringify({ id: 'quable', connector: 'quable', mode: 'push', settings: { authorization: '${env:QUABLE_AUTH}' } })}`,
      `  - ${JSON.stringify({ id: 'notes', connector: 'instinctive-notes', mode: 'push', settings: { auth: { secret: '${env:NOTES_SECRET}' } } })}`,
      '',
    ].join('\n');
    const file = join(dir, 'operator.yaml');
    writeFileSync(file, yaml);
    const send = async (env: Record<string, string>) => {
      const io = { ...memoryIO(), env: { ...env } };
      const args = ['push', '--config', file, '--url', app.base, '--instance', 'quable'];
      const code = await main([...args, fixtures('quable', 'document-create.json')], io);
      return { code, out: io.out(), err: io.err() };
    };
    const sent = await send({ QUABLE_AUTH: quableSettings.authorization });
    expect(sent.err).not.toContain('problem');
    expect(sent.out).toMatch(/^200 OK\n/);
    expect(sent.code).toBe(0);
    // Its own instance's credential must resolve: nothing is sent without it.
    const unset = await send({});
    expect(unset.code).toBe(1);
    expect(unset.err).toContain('instances[0].settings.authorization: secret reference ${env:QUABLE_AUTH}');
    expect(unset.err).toContain('operator.yaml: 1 problem; nothing sent');
  });

  it('presents the credentials as made at --signed-at: a token issued two hours ago is refused, one a minute ago is not', async () => {
    const file = fixtures('bookingbug', 'created.json');
    const late = await push(['--instance', 'bb-oauth', '--signed-at', '2h', file]);
    expect(late.out).toMatch(/^401 Unauthorized\n/);
    expect(late.code).toBe(1);
    const recent = await push([
      '--instance',
      'bb-oauth',
      '--signed-at',
      new Date(Date.now() - 60_000).toISOString(),
      file,
    ]);
    expect(recent.out).toMatch(/^200 OK\n/);
    const wrong = await push(['--instance', 'bb-oauth', '--signed-at', 'yesterday', file]);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toContain('--signed-at must be an ISO date-time');
  });

  it('explains what it needs: an instance of the file, a file, a route the connector has', async () => {
    const file = fixtures('quable', 'bulk-edit-finish.json');
    expect((await push(['--instance', 'nope', file])).code).toBe(2);
    expect((await push(['--instance', 'quable'])).code).toBe(2);
    const route = await push(['--instance', 'quable', '--route', 'cancel', file]);
    expect(route.code).toBe(2);
    expect(route.err).toContain('connector quable has no push route cancel; its routes: default');
    const missing = await push(['--instance', 'quable', join(dir, 'absent.json')]);
    expect(missing.err).toContain('cannot read');
    expect(missing.code).toBe(2);
  });
});

describe('switchyard push without --url', () => {
  it('finds the running hub of its config file where --port put it, and says which URL it tried and that --url exists', async () => {
    // server.port 1: nothing listens there; the hub runs on another port, as `./sy start --port`.
    const own = mkdtempSync(join(tmpdir(), 'switchyard-push-port-'));
    const file = join(own, 'switchyard.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'server: { host: 127.0.0.1, port: 1 }',
        'database: { url: "${env:DB_URL}" }',
        'secretKey: ${env:SECRET_KEY}',
        'instances:',
        `  - ${JSON.stringify({ id: 'quable', connector: 'quable', mode: 'push', settings: quableSettings })}`,
        '',
      ].join('\n'),
    );
    // The hub's database and key: the instances of this file's other tests are stored there.
    const env = { DB_URL: database.url(), SECRET_KEY };
    const loaded = await loadConfig(file, { env, connectors: shippedConnectors });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const send = async () => {
      const io = { ...memoryIO(), env, cwd: own };
      const code = await main(
        ['push', '--config', file, '--instance', 'quable', fixtures('quable', 'document-create.json')],
        io,
      );
      return { code, out: io.out(), err: io.err() };
    };
    const running = await startHubProcess(loaded.config, {
      io: { stderr: { write: () => true }, env, cwd: own },
      logger: silent,
      port: 0,
      role: 'http',
    });
    let stopped = false;
    try {
      const sent = await send();
      expect(sent.out).toMatch(/^200 OK\n/);
      expect(sent.code).toBe(0);
      expect(sent.err).toContain(`POST ${running.url}/hooks/quable`);
      await running.stop();
      stopped = true;
      // Stopped: the file's own address is tried, and the answer says so.
      const none = await send();
      expect(none.code).toBe(1);
      expect(none.err).toContain('POST http://127.0.0.1:1/hooks/quable: no answer');
      expect(none.err).toContain('server.host and server.port of switchyard.yaml');
      expect(none.err).toContain('--url URL names another');
    } finally {
      if (!stopped) await running.stop();
    }
  }, 60_000);
});
