/**
 * Every registered connector is documented where docs/connectors/README.md says: a page of its
 * own, listed in the index, with nothing left to fill in, every event type its eventMap produces
 * named on it, and the defaults its settings table gives those of its schema. The generator writes a page with TODO rows; nothing checked them, so a
 * connector could be registered with a page that still described the scaffold (a team writing a
 * sixth connector from the docs).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shippedConnectors } from './connectors.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const docs = join(root, 'docs', 'connectors');
const index = readFileSync(join(docs, 'README.md'), 'utf8');

/** The "Produced by" entries of an event type in the catalog (its schema's `x-vendor-events`). */
function producedBy(type: string): string[] {
  const file = join(root, 'packages', 'core', 'schemas', 'events', `${type}.schema.json`);
  const schema = JSON.parse(readFileSync(file, 'utf8')) as { 'x-vendor-events'?: string[] };
  return schema['x-vendor-events'] ?? [];
}

/** Each `default` of a settings schema, by its dotted path (`auth.mode`, `perPage`). */
function schemaDefaults(schema: unknown, prefix = ''): Array<[string, unknown]> {
  const properties = (schema as { properties?: Record<string, { default?: unknown }> }).properties ?? {};
  return Object.entries(properties).flatMap(([key, property]) => [
    ...(property.default === undefined ? [] : [[`${prefix}${key}`, property.default] as [string, unknown]]),
    ...schemaDefaults(property, `${prefix}${key}.`),
  ]);
}

/**
 * The Default cell of each row of the page's settings tables (those with a Default column), by the
 * setting named in the row's first cell.
 */
function documentedDefaults(page: string): Map<string, string> {
  // A cell may hold an escaped pipe (`path` \\| `header`).
  // Split on unescaped pipes: a cell may list choices as `path` \| `header`.
  const cells = (line: string) =>
    line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((cell) => cell.trim());
  const out = new Map<string, string>();
  let column = -1;
  for (const line of page.split('\n')) {
    if (!line.startsWith('|')) {
      column = -1;
      continue;
    }
    const row = cells(line);
    if (row[0] === 'Field' || row[0] === 'Setting') column = row.indexOf('Default');
    const setting = /^`([\w.]+)`$/.exec(row[0] ?? '')?.[1];
    if (column > 0 && setting !== undefined) out.set(setting, row[column] ?? '');
  }
  return out;
}

/**
 * The names a catalog entry may start with for a connector: the first word of its display name
 * and of each alias in it (`BookingBug (JRNI)`: BookingBug, JRNI; `Instinctive Notes`: Instinctive).
 */
function vendorNames(displayName: string): string[] {
  return displayName
    .split(/[(),/]/)
    .map((part) => part.trim().split(/\s+/)[0] ?? '')
    .filter((word) => word !== '');
}

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

  // Medirota, generated with --auth hmac, changed its signature header in config.ts and its page
  // still said `x-signature`: an operator reading it configured the wrong header (a team writing a
  // seventh connector from the docs).
  it("says each setting's default as its schema does, in the settings table", () => {
    const documented = documentedDefaults(page ?? '');
    const wrong = schemaDefaults(connector.configSchema)
      .filter(([setting]) => documented.has(setting))
      .filter(([setting, value]) => {
        const shown = typeof value === 'string' ? value : JSON.stringify(value);
        // The value as a whole word of the cell, in backticks or not (`x-api-key`, 50).
        const escaped = shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        return !new RegExp(`(^|[^\\w-])${escaped}([^\\w-]|$)`).test(
          documented.get(setting)!.replaceAll('`', ' '),
        );
      })
      .map(
        ([setting, value]) =>
          `${setting}: the schema says ${JSON.stringify(value)}, the page ${documented.get(setting)}`,
      );
    expect(wrong, `docs/connectors/${name}.md`).toEqual([]);
  });

  it('has nothing left to fill in on its page', () => {
    expect(page?.match(/.*\bTODO\b.*/g) ?? []).toEqual([]);
  });

  it('names every event type its eventMap produces', () => {
    const produced = new Set(connector.eventMap.flatMap((m) => m.normalizedTypes));
    const missing = [...produced].filter((type) => !page?.includes(type));
    expect(missing, `docs/connectors/${name}.md does not name these`).toEqual([]);
  });

  // The index row says which commands a connector carries out (a downstream system reads it to
  // pick a vendor): Docplanner's and Clockwise.MD's named none though both book and cancel.
  it('names every command it supports in its index row and on its page', () => {
    const types = Object.keys(connector.commands ?? {});
    const row = index.split('\n').find((line) => line.includes(`\`${name}\``)) ?? '';
    const listed = (row.split(/\bcommands\b/)[1] ?? '').replace(/[-/]/g, ' ').replace(/\s+/g, ' ');
    // appointment.mark_no_show → "no show" ("mark arrived / no-show"), appointment.book → "book".
    const unnamed = types.filter(
      (type) =>
        !listed.includes(
          type
            .split('.')[1]!
            .replace(/^mark_/, '')
            .replace(/_/g, ' '),
        ),
    );
    expect(unnamed, `the ${name} row of docs/connectors/README.md ("commands …")`).toEqual([]);
    expect(types.filter((type) => !page?.includes(`\`${type}\``))).toEqual([]);
  });

  // docs/events.md says, per type, which vendor events produce it (generated from the schemas'
  // x-vendor-events, written by hand): a connector added without an entry, or a type added to an
  // eventMap later, left the catalog saying other vendors only (BookingBug's appointment.restored).
  it('is named in the event catalog for every event type its eventMap produces', () => {
    const names = vendorNames(connector.displayName);
    const produced = new Set(connector.eventMap.flatMap((m) => m.normalizedTypes));
    const missing = [...produced].filter(
      (type) => !producedBy(type).some((entry) => names.some((n) => entry.startsWith(`${n} `))),
    );
    expect(
      missing,
      `x-vendor-events of packages/core/schemas/events/<type>.schema.json names no ${names.join(' or ')} event for these`,
    ).toEqual([]);
  });
});
