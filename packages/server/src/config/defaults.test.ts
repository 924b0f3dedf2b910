/**
 * One default per setting, in one place (CONFIG_DEFAULTS in schema.ts): the config loader, the
 * pipeline library's own defaults and every document that names a default agree with the schema.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { resolveCommandsOptions } from '../commands/commands.ts';
import { shippedConnectors } from '../connectors.ts';
import { resolveOptions } from '../pipeline/shared.ts';
import { DOCS_END, DOCS_START, settingDefaults } from './generate.ts';
import { loadConfig } from './load.ts';
import { CONFIG_DEFAULTS } from './schema.ts';
import { DEFAULT_RETRY_SCHEDULE_MS } from './units.ts';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

describe('defaults', () => {
  it('the pipeline library defaults are the config file defaults', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-defaults-'));
    const file = join(dir, 'switchyard.yaml');
    writeFileSync(file, 'version: 1\nsubscriptions:\n  - id: feed\n    kind: pull\n');
    const loaded = await loadConfig(file, { env: {}, connectors: shippedConnectors });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const { config } = loaded;
    const library = resolveOptions();
    expect(library.retention).toMatchObject({
      inboundMs: config.retention.inboundMessagesMs,
      eventsMs: config.retention.eventsMs,
      deliveriesMs: config.retention.deliveriesMs,
    });
    expect(library.maxBodyBytes).toBe(config.server.bodyLimitBytes);
    expect(library.pollIntervalMs).toBe(config.workers.pollBackstopMs);
    expect(library.deliveryConcurrency).toBe(config.workers.deliveryConcurrency);
    expect(library.ingestFirst).toBe(config.workers.ingestFirst);
    const subscription = config.subscriptions[0]!;
    expect(library.disableAfterConsecutiveDead).toBe(subscription.disableAfterConsecutiveDead);
    expect(library.retryScheduleMs).toEqual(subscription.retryScheduleMs);
    expect([...DEFAULT_RETRY_SCHEDULE_MS]).toEqual(subscription.retryScheduleMs);
    const commands = resolveCommandsOptions();
    expect({
      retryScheduleMs: [...commands.retryScheduleMs],
      maxRetryAfterMs: commands.maxRetryAfterMs,
      leaseMs: commands.leaseMs,
      sweepIntervalMs: commands.sweepIntervalMs,
      concurrency: commands.concurrency,
      echoWindowMs: commands.echoWindowMs,
      retentionMs: commands.retentionMs,
    }).toEqual(config.commands);
  });

  it('every default a document names (a Default column, or "`setting`, default X") is the schema default', () => {
    const defaults = settingDefaults(shippedConnectors);
    expect(defaults.get('retention.events')).toBe('"90d"');
    const documents = [
      'README.md',
      ...readdirSync(join(ROOT, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`),
    ];
    const bare = (text: string) => text.trim().replace(/^`|`$/g, '').replace(/^"|"$/g, '');
    const mismatches: string[] = [];
    let checked = 0;
    for (const document of documents) {
      let text = readFileSync(join(ROOT, document), 'utf8');
      // The generated reference is written from the schema (pnpm generate:check keeps it fresh).
      const start = text.indexOf(DOCS_START);
      if (start >= 0) text = text.slice(0, start) + text.slice(text.indexOf(DOCS_END));
      const check = (path: string, written: string, where: string) => {
        const expected = defaults.get(path);
        if (expected === undefined) return;
        checked++;
        if (bare(written) !== bare(expected))
          mismatches.push(
            `${document}: ${where}: ${path} default ${written.trim()}, the schema says ${expected}`,
          );
      };
      // Tables with a "Default" column, the setting in the first one.
      let defaultColumn = -1;
      for (const line of text.split('\n')) {
        if (!line.startsWith('|')) {
          defaultColumn = -1;
          continue;
        }
        const cells = line.split('|').slice(1, -1);
        const index = cells.findIndex((cell) => cell.trim() === 'Default');
        if (index > 0) defaultColumn = index;
        const setting = /^`([A-Za-z.[\]]+)`$/.exec(cells[0]?.trim() ?? '')?.[1];
        if (defaultColumn > 0 && setting && cells[defaultColumn] !== undefined)
          check(setting, cells[defaultColumn]!, line.trim());
      }
      // Prose: "`retention.events`, default 90d" or "(`retention.events`: default 90d)".
      for (const match of text.matchAll(/`([A-Za-z.[\]]+)`[,:]? \(?default:? `?([^`\s),;]+)`?/g))
        check(match[1]!, match[2]!, match[0]);
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  });

  it('the YAML examples under "Defaults worth knowing" of docs/configuration.md write the defaults', () => {
    const text = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
    const section = text.slice(
      text.indexOf('## Defaults worth knowing'),
      text.indexOf('\n## ', text.indexOf('## Defaults worth knowing') + 1),
    );
    const examples = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map(
      (m) => parse(m[1]!) as Record<string, unknown>,
    );
    expect(examples.length).toBeGreaterThan(0);
    const defaults = CONFIG_DEFAULTS as unknown as Record<string, Record<string, unknown>>;
    const mismatches: string[] = [];
    for (const example of examples) {
      for (const [section, values] of Object.entries(example)) {
        for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
          const expected = defaults[section]?.[name];
          if (JSON.stringify(value) !== JSON.stringify(expected))
            mismatches.push(
              `${section}.${name}: ${JSON.stringify(value)}, the default is ${JSON.stringify(expected)}`,
            );
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  // The feed's long-poll bounds are CONFIG_DEFAULTS only (no file setting, so not in the table the
  // test above reads), yet docs/api.md, docs/errors.md and the metrics row name them as numbers.
  it('the pull feed long-poll bounds the documents name are CONFIG_DEFAULTS.feed', () => {
    const { wait, maxWait, waiters, waitersPerSubscription } = CONFIG_DEFAULTS.feed;
    const read = (document: string) => readFileSync(join(ROOT, document), 'utf8').replace(/\s+/g, ' ');
    const api = read('docs/api.md');
    const errors = read('docs/errors.md');
    const claims: [string, string][] = [
      ['docs/api.md', `(\`wait\`, whole seconds, 0 to ${maxWait}; default ${wait}`],
      ['docs/api.md', `A process holds at most ${waiters} long-polls at once`],
      ['docs/api.md', `at most ${waitersPerSubscription} of them for one subscription`],
      ['docs/api.md', `at ${waiters} one more is refused with 503`],
      ['docs/errors.md', `holds at once (${waiters})`],
      ['docs/errors.md', `already holds ${waitersPerSubscription} of them`],
    ];
    const missing = claims.filter(
      ([document, text]) => !(document === 'docs/api.md' ? api : errors).includes(text),
    );
    expect(missing).toEqual([]);
  });

  // The dashboard's session lifetime and bound are CONFIG_DEFAULTS only too; docs/dashboard.md names them.
  it('the dashboard session lifetime and bound docs/dashboard.md names are CONFIG_DEFAULTS.dashboard', () => {
    const { sessionLifetime, sessions } = CONFIG_DEFAULTS.dashboard;
    const text = readFileSync(join(ROOT, 'docs/dashboard.md'), 'utf8').replace(/\s+/g, ' ');
    expect(sessionLifetime).toBe('12h');
    expect(text).toContain('that lasts 12 hours');
    expect(text).toContain(`keeps at most ${sessions} sessions`);
  });

  it("an instance without a gate policy gets the config file's gate defaults", async () => {
    // Fresh modules, so the gates read a changed default when they load, not a copy of its value.
    vi.resetModules();
    const schema = await import('./schema.ts');
    const gate = schema.CONFIG_DEFAULTS.gate as { deadline: string; default: string };
    gate.deadline = '3s';
    gate.default = 'refuse';
    const { DEFAULT_POLICY, resolvePolicy } = await import('../gates/protocol.ts');
    expect(DEFAULT_POLICY).toEqual({ deadlineMs: 3000, defaultOutcome: 'refuse' });
    expect(resolvePolicy(null)).toEqual(DEFAULT_POLICY);
  });
});
