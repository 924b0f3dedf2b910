/**
 * Every registered connector is documented where docs/connectors/README.md says: a page of its
 * own, listed in the index, with nothing left to fill in and every event type its eventMap
 * produces named on it. The generator writes a page with TODO rows; nothing checked them, so a
 * connector could be registered with a page that still described the scaffold (a team writing a
 * sixth connector from the docs).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shippedConnectors } from './connectors.ts';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'connectors');
const index = readFileSync(join(docs, 'README.md'), 'utf8');

describe.each(shippedConnectors.map((c) => [c.name, c] as const))('connector %s', (name, connector) => {
  const page = (() => {
    try {
      return readFileSync(join(docs, `${name}.md`), 'utf8');
    } catch {
      return undefined;
    }
  })();

  it('has its page, listed in the index', () => {
    expect(page, `docs/connectors/${name}.md`).toBeDefined();
    expect(index).toContain(`](${name}.md)`);
    expect(index).toContain(`\`${name}\``);
  });

  it('has nothing left to fill in on its page', () => {
    expect(page?.match(/.*\bTODO\b.*/g) ?? []).toEqual([]);
  });

  it('names every event type its eventMap produces', () => {
    const produced = new Set(connector.eventMap.flatMap((m) => m.normalizedTypes));
    const missing = [...produced].filter((type) => !page?.includes(type));
    expect(missing, `docs/connectors/${name}.md does not name these`).toEqual([]);
  });
});
