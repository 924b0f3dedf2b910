// biome-ignore-all lint/suspicious/noTemplateCurlyInString: secret references are written ${env:...} on purpose.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shippedConnectors } from '../connectors.ts';
import { testConnectors } from './connectors.test-support.ts';
import { formatProblem, loadConfig, parseConfig } from './load.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
let counter = 0;

function write(text: string): string {
  const file = join(dir, `config-${++counter}.yaml`);
  writeFileSync(file, text);
  return file;
}

async function load(text: string, env: Record<string, string> = {}) {
  const file = write(text);
  const result = await loadConfig(file, { env, connectors: testConnectors });
  return { file, result, lines: result.problems.map(formatProblem) };
}

/** Loads the text and expects exactly one problem, at `line`, for `path`, matching `message`. */
async function expectProblem(
  text: string,
  line: number,
  path: string,
  message: RegExp,
  env: Record<string, string> = {},
) {
  const { file, result, lines } = await load(text, env);
  expect(result.ok, `expected a problem, got none`).toBe(false);
  expect(lines).toHaveLength(1);
  const problem = result.problems[0]!;
  expect(problem.path).toBe(path);
  expect(problem.line).toBe(line);
  expect(problem.message).toMatch(message);
  const where = `${file}:${line}:${problem.column}`;
  expect(lines[0]).toBe(path === '' ? `${where} ${problem.message}` : `${where} ${path}: ${problem.message}`);
  return problem;
}

const ACME = `
  - id: acme-main
    connector: acme
    settings:
      apiKey: k-123456
      baseUrl: https://acme.example`;

describe('loadConfig: every kind of problem gives its path and line', () => {
  it('YAML syntax errors', async () => {
    const { result, lines } = await load('version: 1\nserver:\n  port: [8080\n');
    expect(result.ok).toBe(false);
    expect(result.problems[0]!.line).toBeGreaterThanOrEqual(3);
    expect(lines[0]).toMatch(/config-\d+\.yaml:\d+:\d+ /);
  });

  it('an unquoted reference inside { } or [ ]: one problem naming the cause, not a cascade of tokens', async () => {
    const flow =
      'version: 1\ninstances:\n  - id: acme-main\n    connector: acme\n    settings: { apiKey: ${env:ACME_KEY}, baseUrl: https://acme.example }\n';
    const problem = await expectProblem(flow, 5, '', /secret reference inside \{ \} or \[ \] must be quoted/);
    expect(problem.column).toBe(flow.split('\n')[4]!.indexOf('${') + 1);
    await expectProblem(
      'version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    secrets: [${env:FEED_SECRET}]\n',
      5,
      '',
      /must be quoted, e\.g\. \{ apiKey: "\$\{env:KEY\}" \}/,
    );
    await expectProblem(
      'version: 1\ninstances:\n  - id: acme-main\n    connector: acme\n    settings: { baseUrl: "https://acme.example", apiKey: ${env:ACME_KEY} }\n',
      5,
      '',
      /must be quoted/,
    );
    // Quoted, the same line is valid.
    const { result } = await load(flow.replace('${env:ACME_KEY}', '"${env:ACME_KEY}"'), {
      ACME_KEY: 'k-123456',
    });
    expect(result.problems).toEqual([]);
  });

  it('duplicate keys', async () => {
    const { result } = await load('version: 1\nserver:\n  port: 1\n  port: 2\n');
    expect(result.problems[0]).toMatchObject({ line: 4 });
    expect(result.problems[0]!.message).toMatch(/unique/);
  });

  it('a file that is not a mapping', async () => {
    await expectProblem('- just\n- a list\n', 1, '', /YAML mapping/);
  });

  it('a missing required field', async () => {
    await expectProblem('server:\n  port: 8080\n', 1, 'version', /is required/);
  });

  it('a wrong version', async () => {
    await expectProblem('version: 2\n', 1, 'version', /must be 1/);
  });

  it('a wrong type', async () => {
    await expectProblem('version: 1\nserver:\n  port: "80"\n', 3, 'server.port', /must be an integer/);
  });

  it('an unknown field, with a suggestion, located at its key', async () => {
    const p = await expectProblem(
      'version: 1\nserver:\n  hots: 0.0.0.0\n',
      3,
      'server.hots',
      /unknown field "hots"; did you mean "host"\?/,
    );
    expect(p.column).toBe(3);
  });

  it('an unknown field with no near name lists the fields that may be there', async () => {
    // `connectors:` for `instances:` (two doc pages wrote it): too far for a suggestion.
    await expectProblem(
      'version: 1\nconnectors:\n  - id: a\n',
      2,
      'connectors',
      /^unknown field "connectors"; fields here: .*\binstances\b.*\bsubscriptions\b/,
    );
  });

  it('an unknown connector, with the known ones and a suggestion', async () => {
    const p = await expectProblem(
      `version: 1\ninstances:\n  - id: a\n    connector: acmee\n`,
      4,
      'instances[0].connector',
      /^unknown connector "acmee"; known: acme, pully, pushy; did you mean "acme"\?$/,
    );
    expect(p.column).toBe(16);
  });

  it('connector settings checked against that connector’s schema', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: a\n    connector: acme\n    settings:\n      apiKey: k\n      baseUrl: https://x.example\n      region: mars\n`,
      8,
      'instances[0].settings.region',
      /must be one of "eu", "us"/,
    );
  });

  it('connector settings that are missing', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: a\n    connector: acme\n`,
      3,
      'instances[0].settings',
      /acme instance needs settings/,
    );
  });

  it('a nested settings field that is missing', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: a\n    connector: acme\n    settings:\n      apiKey: k\n`,
      6,
      'instances[0].settings.baseUrl',
      /is required/,
    );
  });

  it('an unset environment variable, naming the reference', async () => {
    await expectProblem(
      'version: 1\nserver:\n  adminToken: ${env:HUB_ADMIN_TOKEN}\n',
      3,
      'server.adminToken',
      /\$\{env:HUB_ADMIN_TOKEN\}: environment variable HUB_ADMIN_TOKEN is not set/,
    );
  });

  it('a missing secret file, resolved relative to the config file', async () => {
    await expectProblem(
      'version: 1\nsecretKey: ${file:secrets/none.txt}\n',
      2,
      'secretKey',
      new RegExp(
        `cannot read ${join(dir, 'secrets/none.txt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(no such file\\)`,
      ),
    );
  });

  it('a malformed reference', async () => {
    await expectProblem(
      'version: 1\nsecretKey: ${vault:x}\n',
      2,
      'secretKey',
      /malformed secret reference \$\{vault:x\}/,
    );
  });

  it('a reference outside a secret field', async () => {
    await expectProblem(
      'version: 1\nserver:\n  host: ${env:HOST}\n',
      3,
      'server.host',
      /only allowed in secret fields: .* the connector settings marked secret \(docs\/configuration\.md, Reference\); write any other value as it is$/,
      { HOST: '0.0.0.0' },
    );
  });

  it("a URL setting the vendor calls would never reach, in the admin API's words", async () => {
    const at = (baseUrl: string) =>
      `version: 1\ninstances:\n  - id: acme-main\n    connector: acme\n    settings:\n      apiKey: k-123456\n      baseUrl: ${baseUrl}\n`;
    await expectProblem(
      at('http://169.254.169.254/latest/meta-data/'),
      7,
      'instances[0].settings.baseUrl',
      /^is never called: metadata address 169\.254\.169\.254 is not allowed$/,
    );
    await expectProblem(
      at('"http://[::]/"'),
      7,
      'instances[0].settings.baseUrl',
      /^is never called: unspecified address :: is not allowed$/,
    );
    await expectProblem(
      at('http://0.0.0.0/'),
      7,
      'instances[0].settings.baseUrl',
      /^is never called: unspecified address 0\.0\.0\.0/,
    );
    await expectProblem(
      at('http://metadata.google.internal/computeMetadata/v1/'),
      7,
      'instances[0].settings.baseUrl',
      /^is never called: metadata\.google\.internal is a cloud metadata endpoint$/,
    );
    // Private and loopback stay allowed (on-premises vendors, simulators), as in the API.
    expect((await load(at('http://10.0.0.5/api'))).result.ok).toBe(true);
    expect((await load(at('http://127.0.0.1:9100/'))).result.ok).toBe(true);
  });

  it('duplicate instance ids', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: a\n    connector: pushy\n  - id: a\n    connector: pully\n`,
      5,
      'instances[1].id',
      /duplicate id "a": already used by instances\[0\]/,
    );
  });

  it('duplicate subscription ids', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n  - id: s\n    kind: pull\n`,
      5,
      'subscriptions[1].id',
      /duplicate id "s"/,
    );
  });

  it('subscription sources naming unknown instances', async () => {
    await expectProblem(
      `version: 1\ninstances:${ACME}\nsubscriptions:\n  - id: s\n    kind: pull\n    sources: [acme-main, acme-mian2]\n`,
      11,
      'subscriptions[0].sources[1]',
      /unknown instance "acme-mian2"; instances: acme-main; did you mean "acme-main"\?/,
    );
  });

  it('approver sources naming unknown instances', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example/hook\n    approver:\n      sources:\n        - nowhere\n`,
      8,
      'subscriptions[0].approver.sources[0]',
      /unknown instance "nowhere"/,
    );
  });

  it('bad durations', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    timeout: 15 seconds\n`,
      5,
      'subscriptions[0].timeout',
      /invalid duration "15 seconds"/,
    );
  });

  it('a duration written as a bare number is told the unit it lacks, not "must be a string"', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    timeout: 15\n`,
      5,
      'subscriptions[0].timeout',
      /^must be a duration such as "15s": a number and a unit \(ms, s, m, h, d\)$/,
    );
  });

  it('a size written as a bare number names the units', async () => {
    await expectProblem(
      `version: 1\nserver:\n  bodyLimit: 1048576\n`,
      3,
      'server.bodyLimit',
      /a unit \(b, kb, mb, gb\), e\.g\. "512kb"/,
    );
  });

  it('a bad duration inside a retry schedule', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example\n    retry:\n      schedule: [0s, 5x]\n`,
      7,
      'subscriptions[0].retry.schedule[1]',
      /invalid duration "5x"/,
    );
  });

  // Both the schema (minItems) and the delivery's schedule check said it, in two lines for one fault.
  it('an empty retry schedule, once, worded as the admin API words it', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example\n    retry:\n      schedule: []\n`,
      7,
      'subscriptions[0].retry.schedule',
      /^must NOT have fewer than 1 items$/,
    );
  });

  it('a retry delay beyond the limit', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example\n    retry:\n      schedule:\n        - 0s\n        - 30d\n`,
      9,
      'subscriptions[0].retry.schedule[1]',
      /retry schedule entry 1/,
    );
  });

  it('mode pull with a connector that has no pull', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: p\n    connector: pushy\n    mode: pull\n`,
      5,
      'instances[0].mode',
      /connector "pushy" has no pull.*use mode: push/,
    );
  });

  it('mode push with a connector that cannot be pushed to', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: p\n    connector: pully\n    mode: both\n`,
      5,
      'instances[0].mode',
      /connector "pully" cannot be pushed to; use mode: pull/,
    );
  });

  it('pull settings with mode push', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: p\n    connector: pushy\n    pull:\n      interval: 10s\n`,
      5,
      'instances[0].pull',
      /need mode: pull or both/,
    );
  });

  it('gate settings on a connector without approval requests', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: p\n    connector: pushy\n    gate:\n      deadline: 1s\n`,
      5,
      'instances[0].gate',
      /has no approval requests/,
    );
  });

  it('a webhook without url', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n`,
      3,
      'subscriptions[0].url',
      /webhook subscription needs a url/,
    );
  });

  it('a pull subscription with a url', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    url: https://x.example\n`,
      5,
      'subscriptions[0].url',
      /pull subscription has no url/,
    );
  });

  it('an approver that is a pull subscription', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    approver: {}\n`,
      5,
      'subscriptions[0].approver',
      /only a webhook subscription can be an approver/,
    );
  });

  it('an unknown delivery format, naming the known ones', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example\n    format: fhir-r5\n`,
      6,
      'subscriptions[0].format',
      /cloudevents.*fhir-r4.*fhir-r4-notification/,
    );
  });

  it('a FHIR format on a pull subscription', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    format: fhir-r4\n`,
      5,
      'subscriptions[0].format',
      /a pull feed serves CloudEvents/,
    );
  });

  it('a FHIR subscription filter pattern that can only match types with no FHIR meaning', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example\n    format: fhir-r4\n    events: ["appointment.*", "asset.*"]\n`,
      7,
      'subscriptions[0].events[1]',
      /can only match event types with no FHIR meaning, so format fhir-r4 would never deliver it/,
    );
    const { result } = await load(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: https://x.example\n    events: ["asset.*"]\n`,
    );
    expect(result.ok).toBe(true);
  });

  it('an invalid signing secret, without echoing it', async () => {
    const p = await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    secrets:\n      - \${env:SIGNING}\n`,
      6,
      'subscriptions[0].secrets[0]',
      /must be a Standard Webhooks signing secret \(whsec_ \+ base64 of 24 to 64 bytes\)/,
      { SIGNING: 'plain-Secret-Value-42' },
    );
    expect(JSON.stringify(p)).not.toContain('plain-Secret-Value-42');
  });

  it('a bad event filter', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    events: ["Appointment created"]\n`,
      5,
      'subscriptions[0].events[0]',
      /must be an event type/,
    );
  });

  it('an event type not in the catalog, with the nearest one', async () => {
    await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: pull\n    events: ["appointment.*", "appointment.craeted"]\n`,
      5,
      'subscriptions[0].events[1]',
      /must be an event type of the catalog.*did you mean "appointment\.created"\?/,
    );
  });

  it('a subscriber URL with user:password@, without echoing the password', async () => {
    const problem = await expectProblem(
      `version: 1\nsubscriptions:\n  - id: s\n    kind: webhook\n    url: http://user:UrlPassSECRET@crm.example/hooks\n`,
      5,
      'subscriptions[0].url',
      /without user:password@/,
    );
    expect(JSON.stringify(problem)).not.toContain('UrlPassSECRET');
  });

  it('a trusted proxy that is no address or range, in one line (it crashed start after migrating)', async () => {
    await expectProblem(
      `version: 1\nserver:\n  trustedProxies: [10.0.0.0/8, 10.0.0.0/33]\n`,
      3,
      'server.trustedProxies[1]',
      /must be an IPv4 or IPv6 address or a CIDR range/,
    );
  });

  it.each(['https://hub.example.com/switchyard?tenant=a', 'https://hub.example.com/#hooks'])(
    'a server.publicUrl with a query or fragment (%s): hook URLs are built by appending /hooks/{instance} to it',
    async (url) => {
      await expectProblem(
        `version: 1\nserver:\n  publicUrl: "${url}"\n`,
        3,
        'server.publicUrl',
        /must be an http:\/\/ or https:\/\/ URL without a query or fragment/,
      );
    },
  );

  it('a Square instance without server.publicUrl: its vendor signs the hook URL, so every push would be refused 401', async () => {
    const text = `version: 1\ninstances:\n  - id: sq\n    connector: square\n    settings:\n      signatureKey: sq-signature-key-0123456789\n`;
    const result = await loadConfig(write(text), { env: {}, connectors: shippedConnectors });
    expect(result.ok).toBe(false);
    expect(result.problems.map(formatProblem)).toEqual([
      expect.stringMatching(
        /:4:\d+ instances\[0\]\.connector: connector "square" is verified against the hook URL its vendor signs, server\.publicUrl \+ \/hooks\/sq: set server\.publicUrl/,
      ),
    ]);
    const withUrl = await loadConfig(
      write(
        `version: 1\nserver:\n  publicUrl: https://hub.example.com\n${text.slice('version: 1\n'.length)}`,
      ),
      {
        env: {},
        connectors: shippedConnectors,
      },
    );
    expect(withUrl.problems.map(formatProblem)).toEqual([]);
  });

  it('a Docplanner instance set to pull without the API credentials pulling needs', async () => {
    const file = write(
      `version: 1\ninstances:\n  - id: dp\n    connector: docplanner\n    mode: pull\n    settings:\n      domain: docplanner.com\n`,
    );
    const result = await loadConfig(file, { env: {}, connectors: shippedConnectors });
    expect(result.ok).toBe(false);
    expect(result.problems.map(formatProblem)).toEqual([
      expect.stringMatching(
        /:7:\d+ instances\[0\]\.settings: mode pull: pulling needs settings\.clientId and settings\.clientSecret/,
      ),
    ]);
  });

  it('a path-mode hook key that can never match the URL (Clockwise.MD key, Instinctive Notes secret), resolved from the environment, without printing it', async () => {
    const text = [
      'version: 1',
      'instances:',
      '  - id: cw',
      '    connector: clockwisemd',
      '    settings:',
      '      auth:',
      '        mode: path',
      '        key: ${env:CW_KEY}',
      '  - id: notes',
      '    connector: instinctive-notes',
      '    settings:',
      '      auth: { mode: path, secret: "${env:IN_SECRET}" }',
      '  - id: cw-header',
      '    connector: clockwisemd',
      '    settings:',
      '      auth: { mode: header, key: "${env:CW_KEY}" }',
      '',
    ].join('\n');
    const env = { CW_KEY: 'CF3uQP8cSFIQB8gB/9285030fceca', IN_SECRET: 'in secret with spaces 0123' };
    const result = await loadConfig(write(text), { env, connectors: shippedConnectors });
    expect(result.ok).toBe(false);
    const lines = result.problems.map(formatProblem);
    expect(lines).toEqual([
      expect.stringMatching(
        /:8:\d+ instances\[0\]\.settings\.auth\.key: is a URL path segment in auth\.mode path: it must not contain \/, \?, #, % or whitespace/,
      ),
      expect.stringMatching(
        /:12:\d+ instances\[1\]\.settings\.auth\.secret: is a URL path segment in auth\.mode path: it must not contain \/, \?, #, % or whitespace/,
      ),
    ]);
    for (const line of lines) {
      expect(line).not.toContain('9285030fceca');
      expect(line).not.toContain('with spaces');
    }
  });

  it("for a database-only command, leaves a vendor's unset secret alone but not the database's", async () => {
    const text = [
      'version: 1',
      'database:',
      '  url: ${env:T_DB}',
      'secretKey: ${env:T_KEY}',
      'instances:',
      '  - id: acme-main',
      '    connector: acme',
      '    settings:',
      '      apiKey: ${env:ACME_KEY_UNSET}',
      '      baseUrl: https://acme.example/api',
      // A subscription's secret is checked as a whsec_ value once resolved: left as written, it
      // must not be (events list was refused with "must be a Standard Webhooks signing secret").
      'subscriptions:',
      '  - id: feed',
      '    kind: pull',
      '    secrets: ["${env:FEED_SECRET_UNSET}"]',
      '',
    ].join('\n');
    const file = write(text);
    const env = { T_DB: 'postgres://db.example/sy', T_KEY: 'a-secret-key-of-32-characters-00' };
    const strict = await loadConfig(file, { env, connectors: testConnectors });
    expect(strict.problems.map((p) => p.path)).toEqual([
      'instances[0].settings.apiKey',
      'subscriptions[0].secrets[0]',
    ]);
    const lenient = await loadConfig(file, { env, connectors: testConnectors, resolve: 'database' });
    expect(lenient.ok, JSON.stringify(lenient.problems)).toBe(true);
    const noDatabase = await loadConfig(file, {
      env: { T_KEY: env.T_KEY },
      connectors: testConnectors,
      resolve: 'database',
    });
    expect(noDatabase.problems.map((p) => p.path)).toEqual(['database.url']);
  });

  it('a bad id', async () => {
    await expectProblem(
      `version: 1\ninstances:\n  - id: Main Clinic\n    connector: pushy\n`,
      3,
      'instances[0].id',
      /must be an id/,
    );
  });

  it('both database.url and database.embedded', async () => {
    await expectProblem(
      'version: 1\ndatabase:\n  url: postgres://localhost/db\n  embedded: {}\n',
      3,
      'database',
      /either url or embedded, not both/,
    );
  });

  it('a file that does not exist', async () => {
    const result = await loadConfig(join(dir, 'absent.yaml'), { env: {}, connectors: testConnectors });
    expect(result.problems.map(formatProblem)).toEqual([
      `${join(dir, 'absent.yaml')}:1:1 cannot read the config file (no such file)`,
    ]);
  });

  it('reports every problem at once, in file order', async () => {
    const { lines } = await load(
      `version: 1\nserver:\n  port: x\ninstances:\n  - id: a\n    connector: nope\nsubscriptions:\n  - id: s\n    kind: webhook\n`,
    );
    expect(lines.map((l) => l.split(' ')[0]!.split(':').slice(-2)[0])).toEqual(['3', '6', '8']);
  });
});

describe('loadConfig: a valid file', () => {
  it('writes $${ as a literal ${ in any field, as the docs say, not only in secret ones', async () => {
    // Outside the secret fields the $${ stayed as written: a value that needs `${` (a URL template)
    // could not be written at all (`${` is refused there as a reference).
    const { result } = await load(
      [
        'version: 1',
        'secretKey: demo-key-0123456789abcdef',
        'instances:',
        '  - id: acme-main',
        '    connector: acme',
        '    settings:',
        '      apiKey: key-$${not-a-reference}',
        '      baseUrl: https://acme.example',
        '      oauth: { clientId: "client-$${id}" }',
        '',
      ].join('\n'),
    );
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.config.instances[0]?.settings).toMatchObject({
      apiKey: 'key-${not-a-reference}',
      oauth: { clientId: 'client-${id}' },
    });
  });

  it('resolves references, applies defaults and lists the secret values', async () => {
    writeFileSync(join(dir, 'oauth-secret.txt'), 'file-secret-value\n');
    const { result } = await load(
      [
        'version: 1',
        'server:',
        '  adminToken: ${env:ADMIN}',
        'database:',
        '  url: postgres://hub:${env:PGPASS}@db:5432/hub',
        'secretKey: ${env:KEY:-demo-key-0123456789abcdef}',
        'instances:',
        '  - id: acme-main',
        '    connector: acme',
        '    mode: both',
        '    settings:',
        '      apiKey: literal-api-key',
        '      baseUrl: https://acme.example',
        '      oauth:',
        '        clientId: c',
        '        clientSecret: ${file:oauth-secret.txt}',
        '  - id: pully-main',
        '    connector: pully',
        'subscriptions:',
        '  - id: crm',
        '    kind: webhook',
        '    url: https://crm.example/hook',
        '    events: ["appointment.*"]',
        '    secrets: ["${env:SIGN}"]',
        '    retry: { schedule: [0s, 1m30s] }',
        '  - id: feed',
        '    kind: pull',
      ].join('\n'),
      {
        ADMIN: 'admin-token-0123456789',
        PGPASS: 'pg-password',
        SIGN: 'whsec_c3dpdGNoeWFyZC1kZW1vLXNpZ25pbmcta2V5LTAwMDE=',
      },
    );
    expect(result.problems).toEqual([]);
    if (!result.ok) throw new Error('unreachable');
    const { config, secrets } = result;
    expect(config.server).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      bodyLimitBytes: 1024 * 1024,
      adminToken: 'admin-token-0123456789',
    });
    expect(config.database).toEqual({
      kind: 'url',
      url: 'postgres://hub:pg-password@db:5432/hub',
      from: 'file',
      // The url's value, where a problem about this database points.
      declaredAt: { line: 5, column: 8 },
      startupWaitMs: 60_000,
    });
    expect(config.secretKey).toBe('demo-key-0123456789abcdef');
    const [acme, pully] = config.instances;
    expect(acme).toMatchObject({
      id: 'acme-main',
      mode: 'both',
      pull: { intervalMs: 60_000 },
      gate: { deadlineMs: 2000, default: 'approve' },
    });
    expect(acme!.settings).toMatchObject({ region: 'eu', oauth: { clientSecret: 'file-secret-value' } });
    expect(acme!.connector.name).toBe('acme');
    expect(pully).toMatchObject({ mode: 'pull', pull: { intervalMs: 30_000 } });
    expect(config.subscriptions[0]).toMatchObject({
      kind: 'webhook',
      eventTypes: ['appointment.*'],
      retryScheduleMs: [0, 90_000],
      timeoutMs: 15_000,
      contentType: 'application/cloudevents+json',
      ordering: 'hold',
      disableAfterConsecutiveDead: 5,
    });
    expect(config.subscriptions[1]).toMatchObject({
      kind: 'pull',
      eventTypes: ['*'],
      retryScheduleMs: [0, 5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
    });
    expect(config.retention).toEqual({
      inboundMessagesMs: 30 * 86_400_000,
      eventsMs: 90 * 86_400_000,
      deliveriesMs: 30 * 86_400_000,
      unreadEventsMs: 180 * 86_400_000,
    });
    for (const value of [
      'admin-token-0123456789',
      'pg-password',
      'literal-api-key',
      'file-secret-value',
      'demo-key-0123456789abcdef',
    ]) {
      expect(secrets).toContain(value);
    }
  });

  it('uses DATABASE_URL when the file gives no url, else an embedded Postgres beside the file', async () => {
    const withEnv = await load('version: 1\ndatabase:\n  embedded: {}\n', {
      DATABASE_URL: 'postgres://env-host/db',
    });
    expect(withEnv.result.config?.database).toEqual({
      kind: 'url',
      url: 'postgres://env-host/db',
      from: 'env',
      // The file's database entry, which DATABASE_URL overrides.
      declaredAt: { line: 2, column: 1 },
      startupWaitMs: 60_000,
    });
    expect(withEnv.result.secrets).toContain('postgres://env-host/db');
    const embedded = await load('version: 1\n');
    expect(embedded.result.config?.database).toEqual({
      kind: 'embedded',
      dataDir: join(dir, '.switchyard/postgres'),
    });
  });

  it("reads database.poolSize (each process's general pool), 10 unless given, from 2 to 200", async () => {
    expect((await load('version: 1\n')).result.config?.databasePoolSize).toBe(10);
    expect((await load('version: 1\ndatabase:\n  poolSize: 40\n')).result.config?.databasePoolSize).toBe(40);
    for (const bad of ['1', '201', '2.5', 'many']) {
      const { result } = await load(`version: 1\ndatabase:\n  poolSize: ${bad}\n`);
      expect(result.problems[0], bad).toMatchObject({ path: 'database.poolSize', line: 3 });
    }
  });

  it("reads the workers' settings, defaulting to the schema's (30s, 15s, 30s, ingest first, 64 deliveries)", async () => {
    const defaults = await load('version: 1\n');
    expect(defaults.result.config?.workers).toEqual({
      normalizeLeaseMs: 30_000,
      deliveryLeaseMarginMs: 15_000,
      pollBackstopMs: 30_000,
      ingestFirst: true,
      deliveryConcurrency: 64,
      pullSpoolDir: join(dir, '.switchyard/pull-spool'),
    });
    const set = await load(
      'version: 1\nworkers:\n  normalizeLease: 10s\n  deliveryLeaseMargin: 2m\n  pollBackstop: 5s\n  ingestFirst: false\n  deliveryConcurrency: 8\n  pullSpoolDir: /var/spool/switchyard\n',
    );
    expect(set.result.config?.workers).toEqual({
      normalizeLeaseMs: 10_000,
      deliveryLeaseMarginMs: 120_000,
      pollBackstopMs: 5000,
      ingestFirst: false,
      deliveryConcurrency: 8,
      pullSpoolDir: '/var/spool/switchyard',
    });
    await expectProblem('version: 1\nworkers:\n  normalizeLease: 10\n', 3, 'workers.normalizeLease', /./);
    await expectProblem('version: 1\nworkers:\n  ingestFirst: yes please\n', 3, 'workers.ingestFirst', /./);
    await expectProblem(
      'version: 1\nworkers:\n  deliveryConcurrency: 0\n',
      3,
      'workers.deliveryConcurrency',
      /./,
    );
  });

  it("reads the commands settings, defaulting to the schema's", async () => {
    const defaults = await load('version: 1\n');
    expect(defaults.result.config?.commands).toEqual({
      retryScheduleMs: [1000, 5000, 30_000, 120_000, 600_000, 1_800_000],
      maxRetryAfterMs: 3_600_000,
      leaseMs: 30_000,
      sweepIntervalMs: 30_000,
      concurrency: 8,
      echoWindowMs: 600_000,
      retentionMs: 30 * 86_400_000,
    });
    const set = await load(
      'version: 1\ncommands:\n  retrySchedule: [2s, 1m]\n  maxRetryAfter: 5m\n  lease: 30s\n  sweepInterval: 1s\n  concurrency: 2\n  echoWindow: 1m\n  retention: 7d\n',
    );
    expect(set.result.config?.commands).toEqual({
      retryScheduleMs: [2000, 60_000],
      maxRetryAfterMs: 300_000,
      leaseMs: 30_000,
      sweepIntervalMs: 1000,
      concurrency: 2,
      echoWindowMs: 60_000,
      retentionMs: 7 * 86_400_000,
    });
    await expectProblem('version: 1\ncommands:\n  lease: 120\n', 3, 'commands.lease', /./);
    await expectProblem(
      'version: 1\ncommands:\n  retrySchedule: [1s, soon]\n',
      3,
      'commands.retrySchedule[1]',
      /./,
    );
    await expectProblem('version: 1\ncommands:\n  concurrency: 0\n', 3, 'commands.concurrency', /./);
  });

  it('ignores references in the settings of an unknown connector (the name is the problem)', async () => {
    const { lines } = await load(
      'version: 1\ninstances:\n  - id: a\n    connector: nope\n    settings:\n      key: ${env:X}\n',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/unknown connector "nope"/);
  });
});

describe('loadConfig: telemetry', () => {
  it('is off by default; what the file leaves out stays unset, so the OTEL_* environment can fill it', async () => {
    const { result } = await load('version: 1\n');
    expect(result.ok && result.config.telemetry).toEqual({ traces: {} });
  });

  it('reads the endpoint, the sample ratio and secret headers (references resolved, values secret)', async () => {
    const { result } = await load(
      [
        'version: 1',
        'telemetry:',
        '  traces:',
        '    endpoint: https://otel.example.com/v1/traces',
        '    sampleRatio: 0.25',
        '    headers:',
        '      x-honeycomb-team: ${env:HONEYCOMB_KEY}',
        '',
      ].join('\n'),
      { HONEYCOMB_KEY: 'hc-key-0123456789' },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.telemetry.traces).toMatchObject({
      endpoint: 'https://otel.example.com/v1/traces',
      sampleRatio: 0.25,
      headers: { 'x-honeycomb-team': 'hc-key-0123456789' },
    });
    expect(result.secrets).toContain('hc-key-0123456789');
  });

  it('counts the values of the OTLP header variables among the secrets, as written and as sent', async () => {
    // The exporter reads them itself; a collector refusing an export quotes them into the hub's
    // log line (e2e/secrets-sweep-wide.int.test.ts), which the logger scrubs of these secrets.
    const { result } = await load('version: 1\n', {
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=otlp-key-0123456789, x-tenant=%2Ftenant-0123456789',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'authorization=Bearer%20traces-token-0123456789',
    });
    expect(result.ok).toBe(true);
    expect(result.secrets).toEqual(
      expect.arrayContaining([
        'otlp-key-0123456789',
        '%2Ftenant-0123456789',
        '/tenant-0123456789',
        'Bearer traces-token-0123456789',
      ]),
    );
  });

  it("counts the password of the file's and the environment's endpoints among the secrets", async () => {
    // The exporter sends user:password@ as Basic auth: a collector's refusal may quote it back.
    const { result } = await load(
      'version: 1\ntelemetry:\n  traces:\n    endpoint: https://otel:file-pass-0123456789@otel.example.com/v1/traces\n',
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:env%2Fpass-0123456789@collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://otel:traces-pass-0123456789@collector:4318/v1/traces',
      },
    );
    expect(result.ok).toBe(true);
    expect(result.secrets).toEqual(
      expect.arrayContaining([
        'file-pass-0123456789',
        'env/pass-0123456789',
        'env%2Fpass-0123456789',
        'traces-pass-0123456789',
      ]),
    );
  });

  it('refuses a ratio above 1 and a reference in the endpoint', async () => {
    await expectProblem(
      'version: 1\ntelemetry:\n  traces:\n    sampleRatio: 2\n',
      4,
      'telemetry.traces.sampleRatio',
      /1/,
    );
    await expectProblem(
      'version: 1\ntelemetry:\n  traces:\n    endpoint: ${env:OTEL_URL}\n',
      4,
      'telemetry.traces.endpoint',
      /only allowed in secret fields/,
      { OTEL_URL: 'http://x' },
    );
  });

  it('refuses a header name the exporter could not send (a space in it), at its line, and takes a token', async () => {
    await expectProblem(
      'version: 1\ntelemetry:\n  traces:\n    endpoint: http://otel:4318/v1/traces\n    headers:\n      x api key: ${env:OTEL_KEY}\n',
      6,
      'telemetry.traces.headers["x api key"]',
      /is not an HTTP header name/,
      { OTEL_KEY: 'k-0123456789abcdef' },
    );
    const { result } = await load(
      'version: 1\ntelemetry:\n  traces:\n    endpoint: http://otel:4318/v1/traces\n    headers:\n      x-honeycomb-team: ${env:OTEL_KEY}\n',
      { OTEL_KEY: 'k-0123456789abcdef' },
    );
    expect(result.ok && result.config.telemetry.traces.headers).toEqual({
      'x-honeycomb-team': 'k-0123456789abcdef',
    });
  });
});

describe('parseConfig: durations have a floor (and a ceiling where one is documented)', () => {
  /** The one problem of a file made of `version: 1` and `yaml`, which puts the value on line 3 or 5. */
  const problemsOf = (yaml: string) => {
    const result = parseConfig(`version: 1\n${yaml}\n`, {
      file: 'floors.yaml',
      connectors: testConnectors,
      env: {},
    });
    return result.problems;
  };
  const setting = (section: string, field: string, value: string) => `${section}:\n  ${field}: ${value}`;
  const gate = (deadline: string) =>
    `instances:\n  - id: a\n    connector: acme\n    settings: { apiKey: k-123456, baseUrl: "https://acme.example" }\n    gate: { deadline: ${deadline} }`;

  // Each bad value: what it would have done, the field, the line, the message.
  const cases: [yaml: string, path: string, line: number, message: RegExp][] = [
    // Node's slow-client protection off.
    [
      'server:\n  timeouts: { headers: 0s }',
      'server.timeouts.headers',
      3,
      /"0s" is too short: must be at least 1s/,
    ],
    ['server:\n  timeouts: { body: 0s }', 'server.timeouts.body', 3, /must be at least 1s/],
    ['server:\n  timeouts: { request: 0s }', 'server.timeouts.request', 3, /must be at least 1s/],
    ['server:\n  timeouts: { request: 500ms }', 'server.timeouts.request', 3, /"500ms" is too short/],
    // Node would cut the headers timeout to the request's without a word.
    [
      'server:\n  timeouts: { headers: 90s, request: 60s }',
      'server.timeouts.headers',
      3,
      /must be at most server\.timeouts\.request \(60s\)/,
    ],
    // Everything deleted at the next purge.
    [setting('retention', 'inboundMessages', '0s'), 'retention.inboundMessages', 3, /must be at least 1h/],
    [setting('retention', 'events', '30m'), 'retention.events', 3, /"30m" is too short: must be at least 1h/],
    [setting('retention', 'deliveries', '0s'), 'retention.deliveries', 3, /must be at least 1h/],
    // Another process takes the work over at once.
    [setting('workers', 'normalizeLease', '0s'), 'workers.normalizeLease', 3, /must be at least 3s/],
    [setting('workers', 'normalizeLease', '2s'), 'workers.normalizeLease', 3, /must be at least 3s/],
    [
      setting('workers', 'deliveryLeaseMargin', '0s'),
      'workers.deliveryLeaseMargin',
      3,
      /must be at least 1s/,
    ],
    // Idle loops polling continuously.
    [setting('workers', 'pollBackstop', '0s'), 'workers.pollBackstop', 3, /must be at least 1s/],
    [setting('commands', 'retrySchedule', '[1s, 0s]'), 'commands.retrySchedule[1]', 3, /must be at least 1s/],
    [setting('commands', 'maxRetryAfter', '0s'), 'commands.maxRetryAfter', 3, /must be at least 1s/],
    [setting('commands', 'lease', '0s'), 'commands.lease', 3, /must be at least 1s/],
    // Never.
    [setting('commands', 'sweepInterval', '0s'), 'commands.sweepInterval', 3, /must be at least 100ms/],
    [setting('commands', 'echoWindow', '0s'), 'commands.echoWindow', 3, /must be at least 1s/],
    [setting('commands', 'retention', '0s'), 'commands.retention', 3, /must be at least 1h/],
    // docs/gates.md: 50 ms to 30 s; the gates clamped anything else without a word.
    [gate('10ms'), 'instances[0].gate.deadline', 6, /must be at least 50ms/],
    [gate('0s'), 'instances[0].gate.deadline', 6, /must be at least 50ms/],
    [gate('31s'), 'instances[0].gate.deadline', 6, /must be at most 30s$/],
  ];

  it.each(cases)('%s: reports %s', (yaml, path, line, message) => {
    const problems = problemsOf(yaml);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path, line });
    expect(problems[0]!.message).toMatch(message);
  });

  // docs/configuration.md: validate reports every problem. An instance with another fault (here a
  // `pull:` in push mode) had its deadline left unchecked until that fault was fixed.
  it("checks an instance's values also when the rules fault it for something else", () => {
    const problems = problemsOf(`${gate('10ms')}\n    pull: { interval: 1s }`);
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['instances[0].gate.deadline', 'must be at least 50ms'],
      ['instances[0].pull', 'pull settings need mode: pull or both'],
    ]);
  });

  // The same for a subscription: its timeout's bounds were the converted input's check alone, which
  // an entry with another fault (here a misspelt event type) never reached.
  it("checks a subscription's timeout also when the entry has another fault", () => {
    const problems = problemsOf(
      'subscriptions:\n  - id: s\n    kind: webhook\n    url: https://crm.example/hooks\n    events: [appointment.craeted]\n    timeout: 50ms',
    );
    expect(problems.map((p) => [p.path, p.line])).toEqual([
      ['subscriptions[0].events[0]', 6],
      ['subscriptions[0].timeout', 7],
    ]);
    expect(problems[1]!.message).toMatch(/must be at least 100ms/);
  });

  it('resolves the lingering close of refused requests, and defaults it', async () => {
    const set = await load('version: 1\nserver:\n  timeouts: { lingering: 5s, lingeringIdle: 3s }\n');
    expect(set.result.problems).toEqual([]);
    if (!set.result.ok) throw new Error('unreachable');
    expect(set.result.config.server.timeouts).toMatchObject({ lingeringMs: 5000, lingeringIdleMs: 3000 });
    const unset = await load('version: 1\n');
    if (!unset.result.ok) throw new Error('unreachable');
    expect(unset.result.config.server.timeouts).toMatchObject({ lingeringMs: 2000, lingeringIdleMs: 1000 });
    expect(problemsOf('server:\n  timeouts: { lingeringIdle: 0s }').map((p) => p.path)).toEqual([
      'server.timeouts.lingeringIdle',
    ]);
  });

  it('accepts the bounds themselves', () => {
    for (const yaml of [
      'server:\n  timeouts: { headers: 1s, body: 1s, request: 1s }',
      'retention: { inboundMessages: 1h, events: 1h, deliveries: 1h }',
      'workers: { normalizeLease: 3s, deliveryLeaseMargin: 1s, pollBackstop: 1s }',
      'commands: { retrySchedule: [1s], maxRetryAfter: 1s, lease: 1s, sweepInterval: 100ms, echoWindow: 1s, retention: 1h }',
      gate('50ms'),
      gate('30s'),
    ]) {
      expect(problemsOf(yaml), yaml).toEqual([]);
    }
  });
});
