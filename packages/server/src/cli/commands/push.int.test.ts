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
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { shippedConnectors } from '../../connectors.ts';
import { call, listen, makeHub, silent } from '../../http/app.test-support.ts';
import type { Hub } from '../../pipeline/hub.ts';
import { applyFileConfig } from '../../runtime/apply.ts';
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
