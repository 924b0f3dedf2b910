import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { acme } from './connectors.test-support.ts';
import {
  configGenerator,
  DOCS_END,
  DOCS_START,
  referenceMarkdown,
  replaceBetweenMarkers,
} from './generate.ts';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

describe('config generator', () => {
  it('the files on disk are fresh (run pnpm generate when this fails)', async () => {
    for (const output of await configGenerator.outputs()) {
      const onDisk = await readFile(`${root}${output.path}`, 'utf8').catch(() => undefined);
      expect(onDisk === output.content, `${output.path} is stale: run pnpm generate`).toBe(true);
    }
  });

  it('marks secret settings and lists connector fields in the reference', () => {
    const markdown = referenceMarkdown([acme]);
    expect(markdown).toMatch(/\| `settings\.apiKey` \| string \| {2}\| \*\*required\*\*\. \*\*secret\*\*/);
    expect(markdown).toMatch(/`settings\.oauth\.clientSecret`.*\*\*secret\*\*/);
    expect(markdown).toContain('### `connector: acme` (Acme Booking)');
  });

  it('replaces only the text between the markers', () => {
    const doc = `intro\n${DOCS_START}\nold\n${DOCS_END}\noutro\n`;
    expect(replaceBetweenMarkers(doc, 'new')).toBe(`intro\n${DOCS_START}\nnew\n${DOCS_END}\noutro\n`);
    expect(() => replaceBetweenMarkers('no markers', 'x')).toThrow(/must contain/);
  });
});
