/**
 * One default per setting, in one place (CONFIG_DEFAULTS in schema.ts): the config loader, the
 * pipeline library's own defaults and every document that names a default agree with the schema.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { resolveCommandsOptions } from '../commands/commands.ts';
import { shippedConnectors } from '../connectors.ts';
import { resolveOptions } from '../pipeline/shared.ts';
import { DOCS_END, DOCS_START, settingDefaults } from './generate.ts';
import { loadConfig } from './load.ts';
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
});
