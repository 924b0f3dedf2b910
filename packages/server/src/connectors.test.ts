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

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const docs = join(root, 'docs', 'connectors');
const index = readFileSync(join(docs, 'README.md'), 'utf8');

/** The "Produced by" entries of an event type in the catalog (its schema's `x-vendor-events`). */
function producedBy(type: string): string[] {
  const file = join(root, 'packages', 'core', 'schemas', 'events', `${type}.schema.json`);
  const schema = JSON.parse(readFileSync(file, 'utf8')) as { 'x-vendor-events'?: string[] };
  return schema['x-vendor-events'] ?? [];
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
