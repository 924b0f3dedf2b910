import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Connector, JsonObject, PullSpec } from '../packages/core/src/index.ts';
import {
  checkCommandConformance,
  checkConformance,
  fetchVendorHttp,
  inboundRequest,
  memoryCommandContext,
  memoryNormalizeContext,
} from '../packages/testing/src/index.ts';
import {
  AUTH_SHAPES,
  ConnectorNameError,
  camelCase,
  EXAMPLE_FIXTURE,
  EXAMPLE_FIXTURE_READERS,
  generateConnector,
  nextSteps,
  titleCase,
  validateConnectorName,
} from './new-connector/generate.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const script = fileURLToPath(new URL('./new-connector.ts', import.meta.url));
const guide = join(repo, 'docs', 'writing-a-connector.md');

/**
 * The files a recipe of the guide gives whole: each ```ts block right after a
 * `<!-- recipe <name>: <path> -->` marker, by its path in the connector's package.
 * (scripts/new-connector.int.test.ts reads them the same way.)
 */
function recipeFiles(recipe: string): Map<string, string> {
  const files = new Map<string, string>();
  const marker = /<!-- recipe ([\w-]+): (\S+) -->\n```ts\n([\s\S]*?)\n```\n/g;
  for (const [, name, path, code] of readFileSync(guide, 'utf8').matchAll(marker)) {
    if (name === recipe) files.set(path!, `${code}\n`);
  }
  return files;
}

/** The standard connector file set (see docs on writing a connector). */
const expectedFiles = (name: string) =>
  [
    `docs/connectors/${name}.md`,
    `packages/connectors/${name}/fixtures/README.md`,
    `packages/connectors/${name}/fixtures/booking-created.json`,
    `packages/connectors/${name}/package.json`,
    ...[
      'auth.test.ts',
      'auth.ts',
      'config.ts',
      'conformance.test.ts',
      'encode.test.ts',
      'encode.ts',
      'index.ts',
      'normalize.test.ts',
      'normalize.ts',
      'parse.test.ts',
      'parse.ts',
      'simulator.test.ts',
      'simulator.ts',
      'testing.ts',
      'vendor.ts',
    ].map((file) => `packages/connectors/${name}/src/${file}`),
    `packages/server/src/e2e/connectors/${name}.int.test.ts`,
  ].sort();

/** A pull-only connector's file set: its list is polled; no push route, auth, parse or encode. */
const expectedPullFiles = (name: string) =>
  [
    `docs/connectors/${name}.md`,
    `packages/connectors/${name}/fixtures/README.md`,
    `packages/connectors/${name}/fixtures/page-cancelled.json`,
    `packages/connectors/${name}/fixtures/page-created.json`,
    `packages/connectors/${name}/fixtures/page-empty.json`,
    `packages/connectors/${name}/package.json`,
    ...[
      'config.ts',
      'conformance.test.ts',
      'index.ts',
      'normalize.test.ts',
      'normalize.ts',
      'pull.test.ts',
      'pull.ts',
      'simulator.test.ts',
      'simulator.ts',
      'testing.ts',
      'vendor.ts',
    ].map((file) => `packages/connectors/${name}/src/${file}`),
    `packages/server/src/e2e/connectors/${name}.int.test.ts`,
  ].sort();

let root: string;
beforeEach(() => {
  // A workspace-shaped folder: generated code finds @switchyard/* the way `pnpm install` links them.
  root = mkdtempSync(join(tmpdir(), 'switchyard-new-connector-'));
  mkdirSync(join(root, 'packages', 'connectors'), { recursive: true });
  mkdirSync(join(root, 'docs', 'connectors'), { recursive: true });
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function linkWorkspacePackages(packageDir: string): void {
  mkdirSync(join(packageDir, 'node_modules', '@switchyard'), { recursive: true });
  for (const pkg of ['core', 'testing']) {
    symlinkSync(join(repo, 'packages', pkg), join(packageDir, 'node_modules', '@switchyard', pkg), 'dir');
  }
}

describe('generateConnector', () => {
  it('writes the standard file set with every placeholder filled', async () => {
    const result = await generateConnector({ name: 'acme-booking', root });
    expect(result).toMatchObject({
      name: 'acme-booking',
      camelName: 'acmeBooking',
      displayName: 'Acme Booking',
    });
    expect(result.files).toEqual(expectedFiles('acme-booking'));
    for (const file of result.files) {
      const text = readFileSync(join(root, file), 'utf8');
      expect(text, file).not.toMatch(/\{\{\w+\}\}/);
    }
    const pkg = JSON.parse(readFileSync(join(result.packageDir, 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({
      name: '@switchyard/connector-acme-booking',
      type: 'module',
      exports: {
        '.': './src/index.ts',
        './testing': './src/testing.ts',
        './simulator': './src/simulator.ts',
      },
      dependencies: { '@switchyard/core': 'workspace:*' },
      devDependencies: { '@switchyard/testing': 'workspace:*' },
    });
    expect(readFileSync(join(result.packageDir, 'src/index.ts'), 'utf8')).toContain(
      'export const acmeBookingConnector = defineConnector<Config>({',
    );
    expect(readFileSync(join(root, 'docs/connectors/acme-booking.md'), 'utf8')).toMatch(/^# Acme Booking\n/);
  });

  it('generates a connector that passes the conformance suite and normalizes its fixture', async () => {
    const result = await generateConnector({ name: 'acme-booking', root, displayName: 'Acme Booking Pro' });
    linkWorkspacePackages(result.packageDir);
    const module = (await import(pathToFileURL(join(result.packageDir, 'src/index.ts')).href)) as {
      default: Connector<{ apiKey: string; headerName?: string }>;
      acmeBookingConnector: Connector<{ apiKey: string }>;
    };
    const connector = module.default;
    expect(module.acmeBookingConnector).toBe(connector);
    expect(connector).toMatchObject({
      name: 'acme-booking',
      displayName: 'Acme Booking Pro',
      version: '0.1.0',
    });

    const apiKey = 'test-api-key-0123456789abcdef';
    const report = await checkConformance({
      connector,
      config: { apiKey },
      fixturesDir: join(result.packageDir, 'fixtures'),
      credentials: {
        good: { headers: { 'x-api-key': apiKey } },
        wrong: [{ headers: { 'x-api-key': 'test-api-key-wrong-0000000000' } }],
        missing: {},
      },
      fixtures: [{ file: 'booking-created.json', expect: ['appointment.created'] }],
    });
    expect(report.failures).toEqual([]);
    expect(report.results.filter((r) => r.check === 'round-trip' && r.ok)).toHaveLength(1);

    const body = JSON.parse(
      readFileSync(join(result.packageDir, 'fixtures/booking-created.json'), 'utf8'),
    ) as JsonObject;
    const request = inboundRequest({ headers: { 'x-api-key': apiKey }, body });
    connector.push!.authenticate(request, { apiKey });
    const [notification] = connector.push!.parse(request, { apiKey });
    const normalized = await connector.normalize(
      notification!,
      memoryNormalizeContext({ config: { apiKey } }),
    );
    expect(normalized.events[0]).toMatchObject({ type: 'appointment.created', data: { status: 'booked' } });
  });

  it('generates code Biome accepts as it is', async () => {
    const result = await generateConnector({ name: 'a-long-connector-name-to-test-line-width', root });
    const biome = join(repo, 'node_modules', '.bin', 'biome');
    const run = spawnSync(
      biome,
      ['check', '--config-path', join(repo, 'biome.json'), '--vcs-enabled=false', result.packageDir],
      { encoding: 'utf8' },
    );
    expect(run.stdout + run.stderr).toContain('Checked 16 files');
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const pulled = await generateConnector({
      name: 'a-long-pulled-connector-name-to-test-wid',
      root,
      pull: true,
    });
    const pullRun = spawnSync(
      biome,
      ['check', '--config-path', join(repo, 'biome.json'), '--vcs-enabled=false', pulled.packageDir],
      { encoding: 'utf8' },
    );
    expect(pullRun.stdout + pullRun.stderr).toContain('Checked 12 files');
    expect(pullRun.status, pullRun.stdout + pullRun.stderr).toBe(0);
    // With --commands, both shapes (commands.ts and its test, the API settings of a push config).
    for (const options of [{ auth: 'basic' as const }, { pull: true }]) {
      const made = await generateConnector({
        name: `a-long-name-with-commands-${options.pull ? 'pull' : 'push'}`,
        root,
        ...options,
        commands: true,
      });
      const check = spawnSync(
        biome,
        ['check', '--config-path', join(repo, 'biome.json'), '--vcs-enabled=false', made.packageDir],
        { encoding: 'utf8' },
      );
      expect(check.stdout + check.stderr).toContain(`Checked ${options.pull ? 14 : 18} files`);
      expect(check.status, check.stdout + check.stderr).toBe(0);
    }
    // The check can fail: the same run on a deliberately mis-formatted file does.
    writeFileSync(join(result.packageDir, 'src/extra.ts'), 'export const x = "double quotes"\n');
    const bad = spawnSync(
      biome,
      ['check', '--config-path', join(repo, 'biome.json'), '--vcs-enabled=false', result.packageDir],
      { encoding: 'utf8' },
    );
    expect(bad.status).not.toBe(0);
  });

  it('adds the connector to the dependencies of the server package, sorted, and not of testing', async () => {
    const manifest = (dir: string) =>
      `${JSON.stringify({ name: `@switchyard/${dir}`, dependencies: { '@switchyard/core': 'workspace:*', pg: '^8' } }, null, 2)}\n`;
    for (const dir of ['testing', 'server']) {
      mkdirSync(join(root, 'packages', dir), { recursive: true });
      writeFileSync(join(root, 'packages', dir, 'package.json'), manifest(dir));
    }
    const result = await generateConnector({ name: 'acme', root });
    expect(result.dependents).toEqual(['packages/server/package.json']);
    const server = JSON.parse(readFileSync(join(root, 'packages/server/package.json'), 'utf8'));
    expect(Object.entries(server.dependencies)).toEqual([
      ['@switchyard/connector-acme', 'workspace:*'],
      ['@switchyard/core', 'workspace:*'],
      ['pg', '^8'],
    ]);
    // The simulator is in the connector's package: testing depends on no connector (no workspace cycle).
    expect(readFileSync(join(root, 'packages/testing/package.json'), 'utf8')).toBe(manifest('testing'));
    expect(nextSteps(result)).toContain(
      'Added @switchyard/connector-acme to the dependencies of packages/server/package.json.',
    );
    // The end-to-end test imports the connector and its simulator by package name, never by path.
    for (const file of result.files.filter((f) => !f.startsWith('packages/connectors/'))) {
      expect(readFileSync(join(root, file), 'utf8'), file).not.toContain('/connectors/acme/src/');
    }
    expect(readFileSync(join(root, 'packages/server/src/e2e/connectors/acme.int.test.ts'), 'utf8')).toContain(
      "from '@switchyard/connector-acme/simulator';",
    );
    // The simulator, inside the package, imports the connector by relative path, never its own name.
    const simulator = readFileSync(join(result.packageDir, 'src/simulator.ts'), 'utf8');
    expect(simulator).toContain("from './testing.ts';");
    expect(simulator).toContain("from '@switchyard/testing/simulator-kit/push';");
    expect(simulator).not.toContain("from '@switchyard/connector-acme");
  });

  it('writes a pull-only connector with --pull: pull.ts, pages as fixtures, no push files', async () => {
    const result = await generateConnector({ name: 'acme-polled', root, pull: true });
    expect([result.pull, result.auth]).toEqual([true, undefined]);
    expect(result.files).toEqual(expectedPullFiles('acme-polled'));
    const index = readFileSync(join(result.packageDir, 'src/index.ts'), 'utf8');
    expect(index).toContain('  pull,\n');
    expect(index).not.toMatch(/push|encode/);
    expect(readFileSync(join(root, 'docs/connectors/acme-polled.md'), 'utf8')).toContain(
      './sy new-connector acme-polled --pull',
    );
    const text = nextSteps(result);
    expect(text).toContain('Created the Acme Polled connector, pull-only');
    expect(text).toContain('its list call and cursor in packages/connectors/acme-polled/src/pull.ts');
    await expect(generateConnector({ name: 'acme-both', root, pull: true, auth: 'hmac' })).rejects.toThrow(
      /--auth is for pushes/,
    );
  });

  it('generates a pull connector that pages by keyset: a booking changed while a round pages skips no other', async () => {
    const result = await generateConnector({ name: 'acme-polled', root, pull: true });
    linkWorkspacePackages(result.packageDir);
    type PullConfig = {
      apiBaseUrl: string;
      apiKey: string;
      perPage?: number;
      overlapSeconds?: number;
      startFrom?: string;
    };
    const { default: connector } = (await import(
      pathToFileURL(join(result.packageDir, 'src/index.ts')).href
    )) as {
      default: Connector<PullConfig>;
    };
    const { AcmePolledSimulator } = (await import(
      pathToFileURL(join(result.packageDir, 'src/simulator.ts')).href
    )) as {
      AcmePolledSimulator: new (options: {
        apiKey: string;
        now: () => Date;
      }) => {
        start(): Promise<string>;
        close(): Promise<void>;
        put(booking: JsonObject & { id: string }): JsonObject;
      };
    };
    let now = new Date('2026-03-01T10:00:00Z');
    const apiKey = 'test-api-key-0123456789abcdef';
    const sim = new AcmePolledSimulator({ apiKey, now: () => now });
    try {
      const config: PullConfig = {
        apiBaseUrl: await sim.start(),
        apiKey,
        perPage: 2,
        overlapSeconds: 0,
        startFrom: '2026-01-01T00:00:00Z',
      };
      const ctx = memoryNormalizeContext({ config, vendorApi: fetchVendorHttp.request });
      // Five bookings written in one second (an import): more than a page shares one updated_at.
      const ids = ['B-1', 'B-2', 'B-3', 'B-4', 'B-5'];
      for (const id of ids) sim.put({ id, status: 'booked' });
      const seen: string[] = [];
      let cursor: string | null = null;
      const fetchOnce = async () => {
        const batch = await connector.pull!.fetch(ctx, cursor);
        seen.push(...batch.notifications.map((n) => n.dedupeKey));
        if (batch.cursor !== undefined) cursor = batch.cursor;
        return batch.more;
      };
      expect([await fetchOnce(), await fetchOnce()]).toEqual([true, true]);
      // B-1 changes between two pages of the round: it moves to the end of the list, every later
      // booking a place up. Paged by number, the next page began past B-3, never listed again.
      now = new Date('2026-03-01T10:00:01Z');
      sim.put({ id: 'B-1', status: 'cancelled' });
      for (let turn = 0; turn < 10 && (await fetchOnce()); turn += 1);
      // The next round, from the watermark, as the poller's next interval does.
      for (let turn = 0; turn < 10 && (await fetchOnce()); turn += 1);
      expect(new Set(seen)).toEqual(
        new Set([
          ...ids.map((id) => `booking:${id}@2026-03-01T10:00:00.000Z`),
          'booking:B-1@2026-03-01T10:00:01.000Z',
        ]),
      );
      expect(ctx.vendorRequests.map((r) => new URL(r.url).searchParams.has('page'))).not.toContain(true);
    } finally {
      await sim.close();
    }
  });

  it('generates a pull connector whose first poll is bounded (startFrom, else 30 days back), not the whole history', async () => {
    const result = await generateConnector({ name: 'acme-polled', root, pull: true });
    linkWorkspacePackages(result.packageDir);
    const { default: connector } = (await import(
      pathToFileURL(join(result.packageDir, 'src/index.ts')).href
    )) as {
      default: Connector<JsonObject>;
    };
    const firstSince = async (settings: JsonObject) => {
      const ctx = memoryNormalizeContext({
        config: {
          apiBaseUrl: 'https://api.acme.test/v1',
          apiKey: 'test-api-key-0123456789abcdef',
          ...settings,
        },
        vendorApi: () => ({ status: 200, headers: {}, body: { bookings: [], has_more: false } }),
      });
      const batch = await connector.pull!.fetch(ctx, null);
      return {
        since: new URL(ctx.vendorRequests[0]!.url).searchParams.get('updated_since'),
        cursor: batch.cursor,
      };
    };
    // The start is kept in the cursor: the next poll goes on from it, however long the first took.
    expect(await firstSince({ startFrom: '2026-01-01T00:00:00Z', overlapSeconds: 0 })).toEqual({
      since: '2026-01-01T00:00:00.000Z',
      cursor: '2026-01-01T00:00:00.000Z',
    });
    const { since } = await firstSince({ overlapSeconds: 0 });
    const daysBack = (Date.now() - Date.parse(since ?? '')) / 86_400_000;
    expect(daysBack).toBeGreaterThan(29.9);
    expect(daysBack).toBeLessThan(30.1);
    expect(connector.configSchema.properties).toHaveProperty('startFrom');
  });

  it('generates a pull connector whose watermark never passes the time of the poll (one booking dated 2099)', async () => {
    const result = await generateConnector({ name: 'acme-polled', root, pull: true });
    linkWorkspacePackages(result.packageDir);
    const { default: connector } = (await import(
      pathToFileURL(join(result.packageDir, 'src/index.ts')).href
    )) as {
      default: Connector<JsonObject>;
    };
    const future = { id: 'B-1', status: 'booked', updated_at: '2099-01-01T00:00:00Z' };
    const ctx = memoryNormalizeContext({
      config: { apiBaseUrl: 'https://api.acme.test/v1', apiKey: 'test-api-key-0123456789abcdef' },
      vendorApi: () => ({ status: 200, headers: {}, body: { bookings: [future], has_more: false } }),
    });
    const before = Date.now();
    const { cursor } = await connector.pull!.fetch(ctx, '2026-03-10T10:00:00.000Z');
    // At 2099 every real change after it would go unread until then; the booking is listed again
    // each round instead (its dedupe key stores it once).
    expect(Date.parse(cursor ?? '')).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(cursor ?? '')).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('with --commands, writes book and cancel for a push and a pull connector: a booking is done only when the answer names it', async () => {
    const push = await generateConnector({ name: 'acme-signed', root, auth: 'hmac', commands: true });
    const pulled = await generateConnector({ name: 'acme-polled', root, pull: true, commands: true });
    const plain = await generateConnector({ name: 'acme-plain', root, auth: 'hmac' });
    expect([push.commands, pulled.commands, plain.commands]).toEqual([true, true, false]);
    for (const result of [push, pulled]) {
      const dir = `packages/connectors/${result.name}/src/`;
      expect(result.files).toEqual(expect.arrayContaining([`${dir}commands.test.ts`, `${dir}commands.ts`]));
      expect(readFileSync(join(root, `docs/connectors/${result.name}.md`), 'utf8')).toContain(
        '| `appointment.book` |',
      );
    }
    expect(plain.files.filter((f) => f.includes('commands'))).toEqual([]);
    const load = async (dir: string) => {
      linkWorkspacePackages(dir);
      return (
        (await import(pathToFileURL(join(dir, 'src/index.ts')).href)) as { default: Connector<JsonObject> }
      ).default;
    };
    const signed = await load(push.packageDir);
    const settings = { signingSecret: 'test-signing-secret-0123456789abcdef' };
    // Pushes need no API settings; commands do, and the hub refuses them at once without.
    expect(signed.commandsUnavailable?.(settings)).toMatch(/apiBaseUrl and apiToken/);
    const config = {
      ...settings,
      apiBaseUrl: 'https://api.acme.test',
      apiToken: 'test-api-token-0123456789abcdef',
    };
    expect(signed.commandsUnavailable?.(config)).toBeUndefined();
    const polled = await load(pulled.packageDir);
    const pullConfig = { apiBaseUrl: 'https://api.acme.test/v1', apiKey: 'test-api-key-0123456789abcdef' };
    for (const [connector, settingsOf] of [
      [signed, config],
      [polled, pullConfig],
    ] as const) {
      const samples = {
        'appointment.book': {
          data: { start: '2026-03-10T11:30:00+01:00', patient: { name: 'Ada Lovelace' } },
        },
        'appointment.cancel': { data: {}, vendorIds: ['bk_1'] },
      };
      expect(Object.keys(connector.commands ?? {}).sort()).toEqual([
        'appointment.book',
        'appointment.cancel',
      ]);
      const floor = await checkCommandConformance({ connector, config: settingsOf, samples });
      expect(floor.filter((r) => !r.ok)).toEqual([]);
      const book = {
        id: 'cmd-1',
        type: 'appointment.book' as const,
        instance: 'main',
        data: samples['appointment.book'].data,
      };
      const ctx = memoryCommandContext({
        config: settingsOf,
        vendorApi: () => ({ status: 201, headers: {}, body: { booking: { id: 'bk_9' } } }),
      });
      expect(await connector.commands!['appointment.book']!(book, ctx)).toMatchObject({
        outcome: 'done',
        vendorIds: ['bk_9'],
      });
      expect(ctx.vendorRequests[0]!.headers).toMatchObject({ 'idempotency-key': 'cmd-1' });
      // "Already cancelled" is done and says so: alreadyDone, as command.succeeded reports it.
      const again = memoryCommandContext({
        config: settingsOf,
        vendorIds: ['bk_1'],
        vendorApi: () => ({ status: 409, headers: {}, body: { error: 'already cancelled' } }),
      });
      const cancel = {
        id: 'cmd-2',
        type: 'appointment.cancel' as const,
        subject: 'appointment/hub-1',
        data: {},
      };
      expect(await connector.commands!['appointment.cancel']!(cancel, again)).toMatchObject({
        outcome: 'done',
        alreadyDone: true,
      });
    }
  });

  it('never overwrites: a second run with the same name fails and leaves the files as they were', async () => {
    const first = await generateConnector({ name: 'acme', root });
    const index = join(first.packageDir, 'src/index.ts');
    writeFileSync(index, '// edited by hand\n');
    await expect(generateConnector({ name: 'acme', root })).rejects.toThrow(/already exists/);
    expect(readFileSync(index, 'utf8')).toBe('// edited by hand\n');
  });

  it('writes each auth shape with its own config, auth, tests and docs, and the same file set', async () => {
    const texts: Record<string, string> = {};
    for (const auth of AUTH_SHAPES) {
      const result = await generateConnector({ name: `acme-${auth}`, root, auth });
      expect(result.auth).toBe(auth);
      expect(result.files).toEqual(expectedFiles(`acme-${auth}`));
      texts[auth] = readFileSync(join(result.packageDir, 'src/auth.ts'), 'utf8');
      // The example settings name this connector's own variables (nothing left from another name).
      const env = `\${env:ACME_${auth.toUpperCase().replace(/-/g, '_')}_`;
      expect(readFileSync(join(result.packageDir, 'src/index.ts'), 'utf8')).toContain(env);
      const docs = readFileSync(join(root, `docs/connectors/acme-${auth}.md`), 'utf8');
      expect(docs).toContain(`./sy new-connector acme-${auth} --auth ${auth}`);
    }
    expect(texts['header-key']).toContain('timingSafeEqualString(presented, expected)');
    expect(texts.basic).toContain('Basic');
    expect(texts.hmac).toContain('verifyTimestampedSignature');
    const conformance = readFileSync(
      join(root, 'packages/connectors/acme-hmac/src/conformance.test.ts'),
      'utf8',
    );
    expect(conformance).toContain('sign: (request, credential, { signedAt })');
    expect(conformance).toContain('replayWindow');
    // The previous secret of a rotation is checked too (accepted while configured, then refused).
    expect(conformance).toContain('rotation: {');
    // A vendor that signs a timestamp: its end-to-end test replays a capture over HTTP after the
    // tolerance (refused) and inside it (stored once); the others have no signature to replay.
    const e2eTest = (auth: string) =>
      readFileSync(join(root, `packages/server/src/e2e/connectors/acme-${auth}.int.test.ts`), 'utf8');
    expect(e2eTest('hmac')).toContain("it.runIf(signsTime)('refuses a capture replayed after the tolerance");
    expect(e2eTest('hmac')).toContain("it('stores one signed request sent twice once");
    expect(e2eTest('header-key')).not.toContain('replayed');
    // Both push a notification not stored before, made in one place that says which field the
    // dedupe key comes from: a vendor keyed on anything but the example's \`id\` saw a duplicate
    // (Calendly, keyed on the invitee URI: "expected 5 to be 6", with nothing pointing at the cause).
    expect(e2eTest('hmac')).toContain('const freshNotification = (tag: string) =>');
    expect(e2eTest('hmac')).toContain("freshNotification('stale')");
    expect(e2eTest('hmac')).toContain("freshNotification('replayed')");
    // Mapping booking.cancelled (Medirota's second step) broke the generated encode test, whose
    // example of a type the vendor cannot send was appointment.cancelled.
    const encodeTest = readFileSync(join(root, 'packages/connectors/acme-hmac/src/encode.test.ts'), 'utf8');
    expect(encodeTest).toContain("type: 'document.created'");
    expect(encodeTest).not.toMatch(/type: 'appointment\./);
  });

  it('writes a fixtures README that asks for the source of each fixture, the generated one listed', async () => {
    const result = await generateConnector({ name: 'acme', root, displayName: 'Acme Booking' });
    const readme = readFileSync(join(result.packageDir, 'fixtures/README.md'), 'utf8');
    expect(readme).toMatch(/^# Acme Booking fixtures\n/);
    expect(readme).toContain('| `booking-created.json` | TODO');
    expect(readme).toContain('Say where each one comes from');
    // What the ./testing entry's fixtureUrl doc points to now exists.
    expect(readFileSync(join(result.packageDir, 'src/testing.ts'), 'utf8')).toContain(
      "sources cited in the folder's README",
    );
  });

  it("turns an hmac connector into a body-only one with the guide's recipe, which the kit then accepts", async () => {
    const recipe = recipeFiles('body-only-hmac');
    expect([...recipe.keys()].sort()).toEqual([
      'src/auth.test.ts',
      'src/auth.ts',
      'src/config.ts',
      'src/conformance.test.ts',
    ]);
    const result = await generateConnector({ name: 'acme-hub', root, auth: 'hmac' });
    for (const [path, code] of recipe) {
      // Each replaces a generated file: the recipe adds none and keeps the file set.
      expect(readFileSync(join(result.packageDir, path), 'utf8'), path).not.toBe(code);
      writeFileSync(join(result.packageDir, path), code);
    }
    linkWorkspacePackages(result.packageDir);
    type BodyConfig = { signingSecret: string };
    const module = (await import(pathToFileURL(join(result.packageDir, 'src/index.ts')).href)) as {
      default: Connector<BodyConfig>;
      credentialHeaders: (config: BodyConfig, rawBody: Buffer, at: Date) => Record<string, string>;
    };
    const config: BodyConfig = { signingSecret: 'test-signing-secret-0123456789abcdef' };
    expect(Object.keys(module.default.configSchema.properties as object)).not.toContain('toleranceSeconds');
    const options = {
      connector: module.default,
      config,
      fixturesDir: join(result.packageDir, 'fixtures'),
      credentials: {
        good: { secret: config.signingSecret },
        wrong: { 'another secret': { secret: 'test-signing-secret-wrong-00000000' } },
        missing: {},
      },
      // Signed as the vendor (the recipe's simulator side) signs, at the time the kit asks.
      sign: (request: { rawBody: Buffer }, credential: { secret: string }, at: { signedAt: Date }) => ({
        headers: module.credentialHeaders({ signingSecret: credential.secret }, request.rawBody, at.signedAt),
      }),
      fixtures: [{ file: 'booking-created.json', expect: ['appointment.created'] as string[] }],
    };
    const report = await checkConformance(options);
    expect(report.failures).toEqual([]);
    expect(report.results.filter((r) => r.check === 'auth-near-miss' && r.ok).length).toBeGreaterThan(0);
    // Why the recipe drops replayWindow: a signature over the body alone is the same at any time, so
    // the push signed outside the window is accepted and the check fails.
    const replay = await checkConformance({ ...options, replayWindow: { toleranceSeconds: 300 } });
    expect([...new Set(replay.failures.map((f) => f.check))]).toEqual(['replay-window']);
    expect(replay.failures[0]!.message).toContain('outside the 300 s window) were accepted');
  });

  it("runs the guide's clientCredentials example (§9) as a tiny pull connector against a token endpoint", async () => {
    // The §9 block as the guide has it: the helper configured at module level, then one call.
    const guideText = readFileSync(guide, 'utf8');
    const block = /\n```ts\n(\/\/ [^\n]+\nconst oauth = clientCredentials<Config>\(\{[\s\S]*?)\n```\n/.exec(
      guideText,
    )?.[1];
    expect(block, 'the §9 clientCredentials example').toBeDefined();
    const [declaration, use] = block!.split(/^(?=const res = )/m);
    expect(use, 'the example ends with its call').toMatch(/^const res = await oauth\.request\(ctx, /);
    // What the example names of Docplanner's pull.ts: its Config, apiBase and rate-limit reader.
    const source = [
      "import { clientCredentials, isJsonObject, type PullContext, type PullSpec, parseRetryAfter, type VendorResponse } from '@switchyard/core';",
      'type Config = { apiBaseUrl: string; clientId?: string; clientSecret?: string };',
      'const apiBase = (config: Config) => config.apiBaseUrl;',
      "const retryAfterMs = (res: VendorResponse) => parseRetryAfter(res.headers['x-ratelimit-reset']);",
      declaration,
      'export const pull: PullSpec<Config> = {',
      '  defaultIntervalMs: 60_000,',
      '  async fetch(ctx: PullContext<Config>) {',
      `    ${use!.trim()}`,
      '    const items = isJsonObject(res.body) && Array.isArray(res.body._items) ? res.body._items : [];',
      "    return { notifications: items.map((item) => ({ type: 'notification', dedupeKey: String(item), payload: { item } })), cursor: undefined, more: false };",
      '  },',
      '};',
      '',
    ].join('\n');
    linkWorkspacePackages(root);
    writeFileSync(join(root, 'pull.ts'), source);
    // Compiled as the workspace compiles a connector (its tsconfig), so a wrong option or type fails.
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(root, 'tsconfig.json'),
      JSON.stringify({
        extends: join(repo, 'tsconfig.base.json'),
        compilerOptions: { typeRoots: [join(repo, 'node_modules', '@types')] },
        files: ['pull.ts'],
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', root],
      {
        encoding: 'utf8',
      },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    const { pull } = (await import(pathToFileURL(join(root, 'pull.ts')).href)) as {
      pull: PullSpec<{ apiBaseUrl: string; clientId?: string; clientSecret?: string }>;
    };

    // A token endpoint as RFC 6749 §4.4 has it (Basic client authentication, a form), and a list
    // that takes only its current token.
    const clientId = 'client-id-0123';
    const clientSecret = 'client-secret-0123456789';
    const forms: string[] = [];
    let issued = 0;
    let tokenStatus = 200;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/oauth/v2/token') {
          forms.push(body);
          const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
          if (tokenStatus !== 200) {
            res.writeHead(tokenStatus, { 'x-ratelimit-reset': '7' }).end('{}');
          } else if (req.headers.authorization !== basic) {
            res.writeHead(401).end('{"error":"invalid_client"}');
          } else {
            issued += 1;
            res.end(
              JSON.stringify({ access_token: `token-${issued}`, token_type: 'bearer', expires_in: 3600 }),
            );
          }
        } else if (req.url === '/api/v3/integration/notifications') {
          if (req.headers.authorization !== `Bearer token-${issued}`) res.writeHead(401).end('{}');
          else res.end(JSON.stringify({ _items: [`n-${issued}`] }));
        } else {
          res.writeHead(404).end('{}');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const apiBaseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const ctx = memoryNormalizeContext({
        config: { apiBaseUrl, clientId, clientSecret },
        vendorApi: fetchVendorHttp.request,
      });
      // One token for both turns, asked with the grant and the scope the example configures.
      expect((await pull.fetch(ctx, null)).notifications.map((n) => n.dedupeKey)).toEqual(['n-1']);
      expect((await pull.fetch(ctx, null)).notifications.map((n) => n.dedupeKey)).toEqual(['n-1']);
      expect(forms).toEqual(['grant_type=client_credentials&scope=integration']);
      // The vendor revoked it (another token issued): a 401 gets a new one, and the call is sent again.
      issued += 1;
      expect((await pull.fetch(ctx, null)).notifications.map((n) => n.dedupeKey)).toEqual(['n-3']);
      // Wrong credentials: permanent, worded as the example's comment says, no secret in it.
      const wrong = memoryNormalizeContext({
        instanceId: 'wrong',
        config: { apiBaseUrl, clientId, clientSecret: 'another-secret-0123456' },
        vendorApi: fetchVendorHttp.request,
      });
      const refused = await pull.fetch(wrong, null).catch((error: unknown) => error);
      expect(refused).toMatchObject({
        kind: 'permanent',
        message: 'Docplanner refused the client credentials (token endpoint answered 401)',
      });
      // The token endpoint's 429: transient, with the wait the example's retryAfterMs reads.
      tokenStatus = 429;
      const limited = memoryNormalizeContext({
        instanceId: 'limited',
        config: { apiBaseUrl, clientId, clientSecret },
        vendorApi: fetchVendorHttp.request,
      });
      expect(await pull.fetch(limited, null).catch((error: unknown) => error)).toMatchObject({
        kind: 'transient',
        retryAfterMs: 7000,
      });
      // No credentials: the example's missingCredentials, without a call.
      const calls = forms.length;
      const none = memoryNormalizeContext({
        instanceId: 'none',
        config: { apiBaseUrl },
        vendorApi: fetchVendorHttp.request,
      });
      expect(await pull.fetch(none, null).catch((error: unknown) => error)).toMatchObject({
        kind: 'permanent',
        message: 'Docplanner pull needs settings.clientId and settings.clientSecret',
      });
      expect(forms).toHaveLength(calls);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses a name whose end-to-end test exists', async () => {
    mkdirSync(join(root, 'packages/server/src/e2e/connectors'), { recursive: true });
    writeFileSync(join(root, 'packages/server/src/e2e/connectors/acme.int.test.ts'), '// taken\n');
    await expect(generateConnector({ name: 'acme', root })).rejects.toThrow(
      /packages\/server\/src\/e2e\/connectors\/acme.int.test.ts already exists/,
    );
  });

  it('refuses a name whose docs page exists', async () => {
    writeFileSync(join(root, 'docs/connectors/acme.md'), '# Acme\n');
    await expect(generateConnector({ name: 'acme', root })).rejects.toThrow(
      /docs\/connectors\/acme.md already exists/,
    );
  });

  it('refuses display names that would break the generated code', async () => {
    await expect(generateConnector({ name: 'acme', root, displayName: "O'Brien */" })).rejects.toThrow(
      ConnectorNameError,
    );
  });
});

describe('validateConnectorName', () => {
  it.each([
    ['', /give the connector a name/],
    ['Acme', /not valid.*\(e\.g\. "acme"\)/],
    ['AcmeBooking', /\(e\.g\. "acme-booking"\)/],
    ['acme_booking', /\(e\.g\. "acme-booking"\)/],
    ['acme--booking', /not valid/],
    ['-acme', /not valid/],
    ['acme-', /not valid/],
    ['9acme', /not valid/],
    ['a', /2 to 40 characters/],
    ['a'.repeat(41), /2 to 40 characters/],
  ])('refuses %j', (name, message) => {
    expect(() => validateConnectorName(name, root)).toThrow(message);
  });

  it('accepts lowercase names with digits and single dashes, and refuses the shipped ones', () => {
    expect(validateConnectorName('acme-booking-2', root)).toBe('acme-booking-2');
    expect(() => validateConnectorName('quable', repo)).toThrow(
      /already exists \(packages\/connectors\/quable\)/,
    );
  });

  it('derives code and display names', () => {
    expect(camelCase('acme-booking-2')).toBe('acmeBooking2');
    expect(titleCase('acme-booking')).toBe('Acme Booking');
  });
});

describe('the new-connector script', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', cwd: repo });

  it('prints the files and next steps (no install where no workspace package depends on it)', () => {
    const result = run('acme-booking', '--root', root);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('packages/connectors/acme-booking/src/index.ts');
    expect(result.stdout).not.toMatch(/\bpnpm (install|vitest|generate)/);
    expect(result.stderr).not.toContain('pnpm install');
    expect(result.stdout).toContain('./sy vitest run packages/connectors/acme-booking');
  });

  it('exits 1 with a clear message on a bad name, and 2 on bad usage', () => {
    const bad = run('Acme', '--root', root);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('connector name "Acme" is not valid');
    expect(run('a', 'b', '--root', root).status).toBe(2);
    expect(run('--nope').status).toBe(2);
    const both = run('acme', '--pull', '--auth', 'basic', '--root', root);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('--auth is for pushes; --pull writes a pull-only connector');
    const auth = run('acme', '--auth', 'oauth', '--root', root);
    expect(auth.status).toBe(2);
    expect(auth.stderr).toContain('--auth must be one of header-key, basic, hmac (got "oauth")');
  });

  it('says in its help that it writes push connectors, and where a polled vendor is shown', () => {
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain(
      'Writes a push connector, or with --pull a pull-only one (a vendor without webhooks whose list is polled)',
    );
  });

  describe('linking the package', () => {
    /** A workspace-shaped root (so the install runs) and a `pnpm` on PATH that does what `body` says. */
    const withFakePnpm = (body: string, ...args: string[]) => {
      for (const dir of ['packages/testing', 'packages/server']) {
        mkdirSync(join(root, dir), { recursive: true });
        writeFileSync(join(root, dir, 'package.json'), JSON.stringify({ name: dir, dependencies: {} }));
      }
      const bin = join(root, 'fake-bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'pnpm'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return spawnSync(process.execPath, [script, 'acme', '--root', root, ...args], {
        encoding: 'utf8',
        cwd: repo,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
    };

    it('says so when pnpm install fails, and keeps the files', () => {
      const result = withFakePnpm('exit 3');
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('`pnpm install --prefer-offline` failed (exit 3): run `./sy install`');
      expect(readFileSync(join(root, 'packages/connectors/acme/src/index.ts'), 'utf8')).toContain('acme');
    });

    it('stops an install that outlasts --install-timeout, with a clear message', () => {
      // exec: the signal reaches the sleeping process itself, which holds no pipe of ours open after.
      const result = withFakePnpm('exec sleep 60', '--install-timeout', '1');
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('failed (stopped after 1 s: is a registry it needs out of reach?)');
    });

    it('rejects an --install-timeout that is not a whole number of seconds', () => {
      const result = run('acme', '--root', root, '--install-timeout', '0.5');
      expect(result.status).toBe(2);
      expect(result.stderr).toContain('--install-timeout must be a whole number of seconds ≥ 1 (got "0.5")');
    });
  });

  it('lists the next steps for what it generated', async () => {
    const result = await generateConnector({ name: 'acme', root });
    const text = nextSteps(result);
    expect(text).toContain(`Created the Acme connector, auth header-key (${result.files.length} files)`);
    expect(text).toContain('Fill the TODOs in docs/connectors/acme.md');
    // It writes push connectors only; a polled vendor learns where to go (§9, Cliniko).
    expect(text).toContain(
      'A vendor without webhooks (its list or queue is polled): ./sy new-connector <name> --pull',
    );
    expect(text).toContain('packages/connectors/cliniko is a pull-only connector with commands');
  });

  // Replacing the example fixture with real payloads broke the generated simulator test
  // (ENOENT on booking-created.json): the next steps named only the conformance and end-to-end tests.
  it.each(['header-key', 'basic', 'hmac'] as const)(
    'names, with --auth %s, every generated test that reads the example fixture',
    async (auth) => {
      const result = await generateConnector({ name: 'acme', root, auth });
      // Code that reads it (doc comments that show it as an example do not count).
      const reads = (file: string) =>
        readFileSync(join(root, file), 'utf8')
          .split('\n')
          .some((line) => !line.trim().startsWith('*') && line.includes(`${EXAMPLE_FIXTURE}'`));
      const readers = result.files.filter((f) => f.endsWith('.ts') && reads(f));
      const inPackage = readers.filter((f) => f.startsWith('packages/connectors/acme/'));
      expect(inPackage.map((f) => f.slice('packages/connectors/acme/'.length)).sort()).toEqual([
        ...EXAMPLE_FIXTURE_READERS,
      ]);
      expect(readers.filter((f) => !inPackage.includes(f))).toEqual([
        'packages/server/src/e2e/connectors/acme.int.test.ts',
      ]);
      expect(nextSteps(result)).toContain(
        `fixtures/${EXAMPLE_FIXTURE} is read by ${EXAMPLE_FIXTURE_READERS.join(', ')} and the end-to-end test`,
      );
    },
  );
});
