/**
 * Scaffolds a connector from the templates beside this file: the standard file set of the guide
 * (docs/writing-a-connector.md §2): a working minimal connector (`booking.created` →
 * `appointment.created`, encode) with the auth shape the vendor uses (a static API key header, HTTP
 * Basic, or an HMAC signature over the body), one fixture and the fixtures README that cites each
 * fixture's source, unit and conformance tests, the vendor simulator and its test, the end-to-end
 * test, and a docs skeleton. With `pull`, a pull-only connector instead (a vendor without webhooks
 * whose booking list is polled by `updated_at`: `pull.ts`, pages as fixtures, the conformance suite
 * over them, a simulator serving the list, an end-to-end test in `pull` mode), no push files. The
 * output passes typecheck, Biome and its tests as generated.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the templates live: `connector/**` → `packages/connectors/<name>/**` (the vendor simulator
 * too: `connector/src/simulator{,.test}.ts`, the package's `./simulator` entry), `docs/connector.md` →
 * `docs/connectors/<name>.md`, `e2e/connector.int.test.ts` →
 * `packages/server/src/e2e/connectors/<name>.int.test.ts`. A template named `<file>.<auth>.tmpl` is
 * used only for that auth shape (push connectors); one named `<file>.pull.tmpl` only for a pull-only
 * connector, where it replaces `<file>.tmpl`. A pull-only connector gets no push template but
 * {@link SHARED_WITH_PULL}. One named `<file>.commands.tmpl` is written only with `commands`, for
 * either shape.
 */
export const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/** The auth shapes vendors use, as `--auth` takes them. */
export const AUTH_SHAPES = ['header-key', 'basic', 'hmac'] as const;
export type AuthShape = (typeof AUTH_SHAPES)[number];
/** What `--auth` defaults to. */
export const DEFAULT_AUTH: AuthShape = 'header-key';

/** The templates a pull-only connector shares with push ones (the rest of its set is `*.pull.tmpl`). */
const SHARED_WITH_PULL: ReadonlySet<string> = new Set(['connector/package.json']);

/** The same rule `defineConnector()` applies, minus leading, trailing and doubled dashes. */
const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const MAX_NAME_LENGTH = 40;
/** Display names go into string literals and doc comments: no quotes, backslashes or comment ends. */
const DISPLAY_NAME = /^[\p{L}\p{N}][\p{L}\p{N} .&+()-]{0,59}$/u;

/** A connector name that cannot be used, with why and what to do. */
export class ConnectorNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectorNameError';
  }
}

/** Options of {@link generateConnector}. */
export interface GenerateOptions {
  /** Lowercase letters, digits and single dashes, e.g. `acme-booking`. */
  name: string;
  /** The workspace root (holding `packages/connectors/` and `docs/`). */
  root: string;
  /** Human name; default from the name (`acme-booking` → `Acme Booking`). */
  displayName?: string;
  /** How the vendor authenticates its pushes; default {@link DEFAULT_AUTH}. Not with `pull`. */
  auth?: AuthShape;
  /** A pull-only connector (a vendor without webhooks whose list is polled) instead of a push one. */
  pull?: boolean;
  /**
   * Commands too (a vendor whose API writes): `src/commands.ts` books (`createdOutcome`, an
   * idempotency key) and cancels, with its tests; a push connector gains the API settings
   * (`apiBaseUrl`, `apiToken`) and `commandsUnavailable` while they are missing.
   */
  commands?: boolean;
}

/** What {@link generateConnector} wrote. */
export interface GeneratedConnector {
  name: string;
  camelName: string;
  pascalName: string;
  displayName: string;
  /** The push auth shape; undefined for a pull-only connector. */
  auth: AuthShape | undefined;
  /** True for a pull-only connector. */
  pull: boolean;
  /** True when `src/commands.ts` was written. */
  commands: boolean;
  /** The package folder. */
  packageDir: string;
  /** Every file written, relative to the root, with `/` separators, sorted. */
  files: string[];
  /**
   * The workspace manifests that now depend on the connector (`packages/server/package.json`, for the
   * end-to-end test and, once registered, the server's list), relative to the root; those missing
   * under the root are skipped. `@switchyard/testing` never does: the simulator lives in the
   * connector's own package, so testing depends on no connector (no workspace cycle).
   */
  dependents: string[];
}

/** Biome's `lineWidth` (biome.json), so generated imports come out formatted. */
const LINE_WIDTH = 110;

/**
 * A named import as Biome formats it: one line when it fits (a single name always stays on it),
 * else one name a line.
 *
 * @example
 * ```ts
 * importStatement(['type Config', 'encode'], '@switchyard/connector-acme/testing');
 * // "import { type Config, encode } from '@switchyard/connector-acme/testing';"
 * ```
 */
export function importStatement(names: readonly string[], from: string): string {
  const line = `import { ${names.join(', ')} } from '${from}';`;
  if (line.length <= LINE_WIDTH || names.length === 1) return line;
  return `import {\n${names.map((n) => `  ${n},\n`).join('')}} from '${from}';`;
}

/**
 * The template values that import the connector's test entries: the simulator and its test (in the
 * package) by relative path, the end-to-end test (in the server) by package name.
 */
function importValues(name: string, pull: boolean): Record<string, string> {
  const connector = `${camelCase(name)}Connector as connector`;
  if (pull) {
    return {
      endToEndConnectorImport: importStatement(
        [connector, 'fixtureSettings'],
        `@switchyard/connector-${name}/testing`,
      ),
      endToEndSimulatorImport: importStatement(
        [`${pascalCase(name)}Simulator as Simulator`],
        `@switchyard/connector-${name}/simulator`,
      ),
    };
  }
  return {
    simulatorImport: importStatement(
      ['type Config', 'credentialHeaders', 'encode', 'type VendorEvent'],
      './testing.ts',
    ),
    simulatorTestImport: importStatement(['type Config', connector, 'fixtureUrl'], './testing.ts'),
    endToEndConnectorImport: importStatement(
      ['type Config', connector],
      `@switchyard/connector-${name}/testing`,
    ),
    endToEndSimulatorImport: importStatement(
      [`${pascalCase(name)}Simulator as Simulator`],
      `@switchyard/connector-${name}/simulator`,
    ),
  };
}

/**
 * The manifests that get the connector as a dependency: the end-to-end test (in the server) imports
 * it and its simulator by package name, and registering it in the server's list
 * (docs/writing-a-connector.md §14) then needs no second manifest edit. Not
 * `packages/testing/package.json`: the simulator is in the connector's package.
 */
const DEPENDENTS = ['packages/server/package.json'] as const;

/** Adds `@switchyard/connector-<name>: workspace:*` to a manifest's dependencies, kept sorted. */
function addWorkspaceDependency(manifest: string, name: string): void {
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> };
  const dependencies = { ...pkg.dependencies, [`@switchyard/connector-${name}`]: 'workspace:*' };
  pkg.dependencies = Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
}

/**
 * Throws {@link ConnectorNameError} unless `name` is a valid, unused connector name under `root`.
 *
 * @example
 * ```ts
 * validateConnectorName('Acme', root); // throws: use lowercase letters, digits and dashes, e.g. "acme"
 * ```
 */
export function validateConnectorName(name: string | undefined, root: string): string {
  if (name === undefined || name.trim() === '') {
    throw new ConnectorNameError('give the connector a name, e.g. `./sy new-connector acme-booking`');
  }
  if (name.length > MAX_NAME_LENGTH || name.length < 2) {
    throw new ConnectorNameError(
      `connector name ${JSON.stringify(name)} must be 2 to ${MAX_NAME_LENGTH} characters long`,
    );
  }
  if (!NAME.test(name)) {
    const suggestion = name
      .trim()
      .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^[^a-z]+|-+$/g, '');
    throw new ConnectorNameError(
      `connector name ${JSON.stringify(name)} is not valid: use lowercase letters, digits and single dashes, starting with a letter${
        suggestion.length >= 2 && NAME.test(suggestion) ? ` (e.g. ${JSON.stringify(suggestion)})` : ''
      }`,
    );
  }
  const packageDir = join(root, 'packages', 'connectors', name);
  if (existsSync(packageDir)) {
    throw new ConnectorNameError(
      `a connector named ${JSON.stringify(name)} already exists (${relative(root, packageDir)}): choose another name`,
    );
  }
  for (const file of outsideFiles(root, name)) {
    if (existsSync(file)) {
      throw new ConnectorNameError(
        `${relative(root, file).split(sep).join('/')} already exists: choose another name, or remove the stale file first`,
      );
    }
  }
  return name;
}

/** The generated files outside the package folder. */
function outsideFiles(root: string, name: string): string[] {
  return [
    join(root, 'docs', 'connectors', `${name}.md`),
    join(root, 'packages', 'server', 'src', 'e2e', 'connectors', `${name}.int.test.ts`),
  ];
}

/** `acme-booking` → `acmeBooking`. */
export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `acme-booking` → `AcmeBooking`. */
export function pascalCase(name: string): string {
  const camel = camelCase(name);
  return camel.charAt(0).toUpperCase() + camel.slice(1);
}

/** `acme-booking` → `ACME_BOOKING` (environment variable names in examples). */
function envName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

/** The push members of a connector whose credentials are all in the request head (no `verifyBody`). */
const HEAD_ONLY_PUSH = {
  authImports: 'authenticate, credentials, sign',
  pushMembers: 'routes, authenticate, credentials, sign, parse',
  endToEndAuthTests: '',
};

/**
 * The end-to-end tests of a signing vendor: a captured push replayed over HTTP after the tolerance
 * is refused and stores nothing (when it signs a timestamp), and the same signed request sent twice
 * is stored once. The conformance kit's replay-window check shows `verifyBody` refuses it in memory;
 * this shows the hub hands it the time the request really arrived.
 */
const SIGNED_REPLAY_TEST = `
  /**
   * A notification the hub has not stored yet, for the two tests below. The example vendor keys on
   * the body's \`id\` (parse.ts): when your parse takes its dedupe key from elsewhere (an entity id
   * in the payload, a delivery header), change that field here, or both tests push a duplicate of
   * the first fixture (answered 200, stored zero times).
   */
  const freshNotification = (tag: string) => ({
    ...fixture(VENDOR, 'booking-created.json'),
    id: \`evt_\${tag}\`,
  });

  // Only a vendor that signs a timestamp can refuse a stale capture: its settings have a
  // toleranceSeconds (a body-only signature, docs/writing-a-connector.md §5, has none).
  const signsTime = 'toleranceSeconds' in ((connector.configSchema.properties ?? {}) as object);

  it.runIf(signsTime)('refuses a capture replayed after the tolerance (401) and stores nothing', async () => {
    const stored = async () =>
      (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const before = await stored();
    // Signed two hours ago: past any toleranceSeconds the settings allow (at most an hour).
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    const stale = new Simulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      config,
      retryDelaysMs: [],
      now: () => twoHoursAgo,
    });
    const body = freshNotification('stale');
    expect((await stale.push(body)).attempts.map((a) => a.status)).toEqual([401]);
    expect(await stored()).toBe(before);
  });

  it('stores one signed request sent twice once (its dedupe key)', async () => {
    const stored = async () =>
      (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 })).items.length;
    const before = await stored();
    const at = new Date();
    const replaying = new Simulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      config,
      retryDelaysMs: [],
      now: () => at,
    });
    const body = freshNotification('replayed');
    await e2e.settle(INSTANCE, () => replaying.push(body));
    expect((await replaying.push(body)).attempts.map((a) => a.status)).toEqual([200]);
    expect(await stored()).toBe(before + 1);
  });
`;

/** The template values that depend on the auth shape. */
function authValues(auth: AuthShape, name: string): Record<string, string> {
  const env = envName(name);
  switch (auth) {
    case 'header-key':
      return {
        authSummary: 'authenticated by a static API key header',
        ...HEAD_ONLY_PUSH,
        testConfig: "{ apiKey: 'test-api-key-0123456789abcdef' }",
        wrongTestConfig: "{ apiKey: 'test-api-key-wrong-0000000000' }",
        exampleSettings: `{ apiKey: '\${env:${env}_API_KEY}' }`,
        docsAuthSetup:
          'TODO: how the API key header is configured on the vendor side (header name and value).',
        docsSettingsYaml: `      headerName: x-api-key\n      apiKey: \${env:${env}_API_KEY}`,
        docsSettingsTable: [
          '| `headerName` | `x-api-key` | The request header that carries the API key (case-insensitive). |',
          '| `apiKey` | (required, secret) | The shared API key the vendor sends with every push (at least 16 characters). |',
        ].join('\n'),
      };
    case 'basic':
      return {
        authSummary: 'authenticated by HTTP Basic user name and password',
        ...HEAD_ONLY_PUSH,
        testConfig: "{ username: 'vendor', password: 'test-password-0123456789' }",
        wrongTestConfig: "{ username: 'vendor', password: 'test-password-wrong-000000' }",
        exampleSettings: `{ username: vendor, password: '\${env:${env}_PASSWORD}' }`,
        docsAuthSetup:
          'TODO: where the user name and password the vendor sends (HTTP Basic) are entered on the vendor side.',
        docsSettingsYaml: `      username: vendor\n      password: \${env:${env}_PASSWORD}`,
        docsSettingsTable: [
          '| `username` | (required) | The user name the vendor sends in HTTP Basic authentication. |',
          '| `password` | (required, secret) | The password the vendor sends in HTTP Basic authentication (at least 16 characters). |',
        ].join('\n'),
      };
    case 'hmac':
      return {
        authSummary: 'signed with HMAC-SHA256 over the timestamp and the body, `t=…,v1=…`',
        // The signature is over the body: checked in push.verifyBody, once the hub has read it.
        authImports: 'authenticate, credentials, sign, verifyBody',
        pushMembers: 'routes, authenticate, verifyBody, credentials, sign, parse',
        endToEndAuthTests: SIGNED_REPLAY_TEST,
        testConfig: "{ signingSecret: 'test-signing-secret-0123456789abcdef' }",
        wrongTestConfig: "{ signingSecret: 'test-signing-secret-wrong-00000000' }",
        exampleSettings: `{ signingSecret: '\${env:${env}_SIGNING_SECRET}' }`,
        docsAuthSetup:
          'TODO: where the vendor shows the signing secret, and how it rotates. During a rotation put the new secret in `signingSecret` and the old one in `previousSigningSecret`; remove the old one once the vendor signs with the new one only.',
        docsSettingsYaml: `      signingSecret: \${env:${env}_SIGNING_SECRET}`,
        docsSettingsTable: [
          '| `signingSecret` | (required, secret) | The secret the vendor signs every push with (HMAC-SHA256; at least 16 characters). |',
          '| `previousSigningSecret` | none (secret) | During a secret rotation: the secret being replaced, still accepted until removed. |',
          '| `signatureHeader` | `x-signature` | The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. |',
          '| `toleranceSeconds` | `300` | How far the signature timestamp may be from the receive time, either way; older signatures are refused as replays. |',
        ].join('\n'),
      };
  }
}

/** The template values of `--commands`: empty without it, so the templates read as before. */
function commandsValues(
  commands: boolean,
  pull: boolean,
  name: string,
  testConfig: string | undefined,
): Record<string, string> {
  if (!commands) {
    return Object.fromEntries(
      [
        'commandsIndexImport',
        'commandsMembers',
        'commandsConfigFields',
        'commandsConfigSchema',
        'commandsConfigImport',
        'commandsApi',
        'commandsTestImports',
        'commandsTestConfig',
        'docsCommands',
      ].map((key) => [key, '']),
    );
  }
  const docsTable = [
    '## Commands',
    '',
    '| Command | Call |',
    '|---|---|',
    '| `appointment.book` | TODO: `POST /bookings` with `Idempotency-Key: <command id>`; done when the answer names the booking (`{ booking: { id } }`) |',
    '| `appointment.cancel` | TODO: `POST /bookings/{id}/cancel`; already cancelled (409) is done |',
    '',
  ];
  if (pull) {
    return {
      commandsIndexImport: "import { commands } from './commands.ts';\n",
      commandsMembers: '  commands,\n',
      commandsConfigFields: '',
      commandsConfigSchema: '',
      commandsConfigImport: "import { apiHeaders, type Config } from './config.ts';",
      commandsApi: [
        '/** The API base and the headers of every call (the settings pulling uses). */',
        'function api(ctx: CommandContext<Config>) {',
        "  return { base: ctx.config.apiBaseUrl.replace(/\\/+$/, ''), headers: apiHeaders(ctx.config) };",
        '}',
      ].join('\n'),
      commandsTestImports:
        "import connector from './index.ts';\nimport { fixtureSettings as config } from './testing.ts';",
      commandsTestConfig: '',
      docsCommands: `${docsTable.join('\n')}\n`,
    };
  }
  // The auth shape's test settings, one property a line, with the API settings after them.
  const props = (testConfig ?? '{}')
    .replace(/^\{\s*|\s*\}$/g, '')
    .split(', ')
    .filter(Boolean);
  return {
    commandsIndexImport: "import { commands, commandsUnavailable } from './commands.ts';\n",
    commandsMembers: '  commands,\n  commandsUnavailable,\n',
    commandsConfigFields: [
      "  /** The vendor's REST API base URL, for commands (e.g. `https://api.example.com`). */",
      '  apiBaseUrl?: string;',
      '  /** The API token commands call the vendor with (a bearer token). */',
      '  apiToken?: string;',
      '',
    ].join('\n'),
    commandsConfigSchema: [
      '    apiBaseUrl: {',
      "      description: 'The vendor REST API base URL, for commands (simulators and tests point it at loopback).',",
      "      type: 'string',",
      "      format: 'uri',",
      '    },',
      '    apiToken: {',
      "      description: 'The API token commands call the vendor with, as a bearer token (at least 16 characters).',",
      "      type: 'string',",
      '      minLength: 16,',
      "      'x-secret': true,",
      '    },',
      '',
    ].join('\n'),
    commandsConfigImport: "import type { Config } from './config.ts';",
    commandsApi: [
      "/** The API base and the headers of every call (the instance's `apiBaseUrl` and `apiToken`). */",
      'function api(ctx: CommandContext<Config>) {',
      '  return {',
      "    base: (ctx.config.apiBaseUrl ?? '').replace(/\\/+$/, ''),",
      `    headers: { authorization: \`Bearer \${ctx.config.apiToken}\`, accept: 'application/json' },`,
      '  };',
      '}',
      '',
      '/**',
      ' * Why an instance cannot carry out commands: pushes need no API settings, commands do. The hub',
      ' * then refuses its commands at once (`SY_COMMAND_UNSUPPORTED`) instead of queuing them to fail.',
      ' */',
      'export function commandsUnavailable(config: Config): string | undefined {',
      '  return config.apiBaseUrl && config.apiToken',
      '    ? undefined',
      "    : 'commands need apiBaseUrl and apiToken in the instance settings';",
      '}',
    ].join('\n'),
    commandsTestImports: "import type { Config } from './config.ts';\nimport connector from './index.ts';",
    commandsTestConfig: [
      'const config: Config = {',
      ...props.map((p) => `  ${p},`),
      `  apiBaseUrl: 'https://api.${name}.test',`,
      "  apiToken: 'test-api-token-0123456789abcdef',",
      '};',
      '',
      '',
    ].join('\n'),
    docsCommands: `${[
      ...docsTable.slice(0, -1),
      '',
      'Commands need `apiBaseUrl` and `apiToken` (secret) in the settings; without them the hub refuses them at once.',
      '',
    ].join('\n')}\n`,
  };
}

/** `acme-booking` → `Acme Booking`. */
export function titleCase(name: string): string {
  return name
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');
}

/** Replaces every `{{key}}`; a placeholder without a value is a template bug. */
export function render(template: string, values: Readonly<Record<string, string>>, file: string): string {
  return template.replace(/\{\{([A-Za-z]+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${file} uses {{${key}}}, which has no value`);
    return value;
  });
}

async function listTemplates(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listTemplates(path)));
    else if (entry.name.endsWith('.tmpl')) out.push(path);
  }
  return out;
}

/**
 * Writes a new connector package and its docs page under `root`.
 *
 * @example
 * ```ts
 * const result = await generateConnector({ name: 'acme-booking', root: process.cwd() });
 * result.files; // ['docs/connectors/acme-booking.md', 'packages/connectors/acme-booking/fixtures/booking-created.json', …]
 * ```
 */
export async function generateConnector(options: GenerateOptions): Promise<GeneratedConnector> {
  const name = validateConnectorName(options.name, options.root);
  const displayName = options.displayName?.trim() || titleCase(name);
  if (!DISPLAY_NAME.test(displayName)) {
    throw new ConnectorNameError(
      `display name ${JSON.stringify(displayName)} must be 1 to 60 letters, digits, spaces or . & + ( ) - (it goes into code and comments)`,
    );
  }
  const pull = options.pull === true;
  if (pull && options.auth !== undefined) {
    throw new ConnectorNameError(
      '--auth is for pushes: a pull-only connector (--pull) calls the vendor with its API settings',
    );
  }
  const auth = pull ? undefined : (options.auth ?? DEFAULT_AUTH);
  if (auth !== undefined && !AUTH_SHAPES.includes(auth)) {
    throw new ConnectorNameError(`--auth ${JSON.stringify(auth)} is not one of ${AUTH_SHAPES.join(', ')}`);
  }
  const values = {
    name,
    camelName: camelCase(name),
    pascalName: pascalCase(name),
    envName: envName(name),
    displayName,
    auth: auth ?? 'none',
  };
  const packageDir = join(options.root, 'packages', 'connectors', name);
  const [docsPage, e2eTest] = outsideFiles(options.root, name) as [string, string];
  const destinations: Record<string, string> = {
    'docs/connector.md': docsPage,
    'e2e/connector.int.test.ts': e2eTest,
  };
  const commands = options.commands === true;
  const shapeValues = auth === undefined ? {} : authValues(auth, name);
  const renderValues = {
    ...values,
    ...shapeValues,
    ...importValues(name, pull),
    ...commandsValues(commands, pull, name, (shapeValues as { testConfig?: string }).testConfig),
  };
  const outputs: Array<{ path: string; content: string }> = [];
  for (const template of await listTemplates(TEMPLATES_DIR)) {
    let within = relative(TEMPLATES_DIR, template)
      .split(sep)
      .join('/')
      .replace(/\.tmpl$/, '');
    // `<file>.commands.tmpl`: commands, push or pull alike, only with `commands`.
    const forCommands = within.endsWith('.commands');
    if (forCommands) {
      if (!commands) continue;
      within = within.slice(0, -'.commands'.length);
    }
    const variant = [...AUTH_SHAPES, 'pull'].find((shape) => within.endsWith(`.${shape}`));
    if (variant !== undefined) {
      if (variant !== (pull ? 'pull' : auth)) continue;
      within = within.slice(0, -(variant.length + 1));
    } else if (pull && !forCommands && !SHARED_WITH_PULL.has(within)) {
      continue;
    }
    const target = within.startsWith('connector/')
      ? join(packageDir, within.slice('connector/'.length))
      : destinations[within];
    if (target === undefined) throw new Error(`template ${within} has no destination`);
    outputs.push({ path: target, content: render(await readFile(template, 'utf8'), renderValues, within) });
  }
  // Render everything before writing anything, so a template bug leaves no half-made package.
  for (const output of outputs) {
    await mkdir(dirname(output.path), { recursive: true });
    await writeFile(output.path, output.content, { flag: 'wx' });
  }
  const dependents = DEPENDENTS.filter((manifest) => existsSync(join(options.root, manifest)));
  for (const manifest of dependents) addWorkspaceDependency(join(options.root, manifest), name);
  return {
    ...values,
    auth,
    pull,
    commands,
    packageDir,
    files: outputs.map((o) => relative(options.root, o.path).split(sep).join('/')).sort(),
    dependents: [...dependents],
  };
}

/**
 * The generated tests that read the example fixture (paths in the connector's package, then the
 * end-to-end test's): the next steps name them, so that replacing the example with real payloads
 * does not leave one failing on a missing file (the simulator's test was the one found last).
 */
export const EXAMPLE_FIXTURE = 'booking-created.json';
export const EXAMPLE_FIXTURE_READERS = [
  'src/conformance.test.ts',
  'src/encode.test.ts',
  'src/normalize.test.ts',
  'src/simulator.test.ts',
] as const;

/** The next-step words on commands: the generated example calls to replace, or how to get them. */
function commandsStep(result: GeneratedConnector, dir: string): string {
  return result.commands
    ? `the example API calls in ${dir}/src/commands.ts with the vendor's (docs/writing-a-connector.md §9 "Commands")`
    : 'commands, if its API writes: --commands, or docs/writing-a-connector.md §9 "Commands" (packages/connectors/cliniko has them)';
}

/** The next steps printed after generation. */
export function nextSteps(result: GeneratedConnector): string {
  const dir = `packages/connectors/${result.name}`;
  const tests = [dir, `packages/server/src/e2e/connectors/${result.name}.int.test.ts`].join(' ');
  const steps = result.pull
    ? [
        `  2. Describe the vendor: ${dir}/src/vendor.ts, real pages of its list in ${dir}/fixtures/ (cite each one's source in fixtures/README.md; list each in src/conformance.test.ts), its list call and cursor in ${dir}/src/pull.ts (docs/writing-a-connector.md §9)`,
        `  3. Map its versions in ${dir}/src/normalize.ts (eventMap + normalize: the event from comparing with the last version seen)`,
        `  4. Fill the TODOs in docs/connectors/${result.name}.md, and the vendor's list habits in ${dir}/src/simulator.ts; ${commandsStep(result, dir)}`,
      ]
    : [
        `  2. Describe the vendor: ${dir}/src/vendor.ts, real payloads in ${dir}/fixtures/ (cite each one's source in fixtures/README.md; list each in src/conformance.test.ts and the end-to-end test). The example fixtures/${EXAMPLE_FIXTURE} is read by ${EXAMPLE_FIXTURE_READERS.join(', ')} and the end-to-end test: point them at yours when you replace it`,
        `  3. Map its events in ${dir}/src/normalize.ts (eventMap + normalize) and ${dir}/src/encode.ts`,
        `  4. Fill the TODOs in docs/connectors/${result.name}.md, and the vendor's retry habit in ${dir}/src/simulator.ts; ${commandsStep(result, dir)}`,
      ];
  return [
    `Created the ${result.displayName} connector, ${result.pull ? 'pull-only' : `auth ${result.auth}`} (${result.files.length} files):`,
    ...result.files.map((file) => `  ${file}`),
    '',
    ...(result.dependents.length > 0
      ? [
          `Added @switchyard/connector-${result.name} to the dependencies of ${result.dependents.join(' and ')}.`,
          '',
        ]
      : []),
    'Next steps:',
    `  1. ./sy vitest run ${tests}   # the generated tests pass as they are (the end-to-end test uses DATABASE_URL, else Docker, else an embedded Postgres)`,
    ...steps,
    '  5. Register it: docs/writing-a-connector.md §14 (one list in packages/server/src/connectors.ts, then ./sy generate)',
    ...(result.pull
      ? []
      : [
          '',
          // A push connector: say where the other shapes are shown whole.
          'A vendor without webhooks (its list or queue is polled): ./sy new-connector <name> --pull; whose API writes: --commands',
          '(docs/writing-a-connector.md §9); packages/connectors/cliniko is a pull-only connector with commands.',
        ]),
  ].join('\n');
}
