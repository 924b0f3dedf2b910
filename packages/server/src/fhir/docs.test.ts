import { readFileSync } from 'node:fs';
import { EVENT_TYPES } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { FHIR_EVENT_TYPES, FHIR_MAPPINGS } from './map.ts';

const doc = readFileSync(new URL('../../../../docs/fhir.md', import.meta.url), 'utf8');

/** The mapping table as docs/fhir.md must show it, rendered from the code. */
function mappingTable(): string {
  const rows = FHIR_MAPPINGS.map(
    (m) =>
      `| \`${m.type}\` | ${m.resourceType} | ${m.unless ? `nothing when ${m.unless}` : ''} | ${m.note ?? ''} |`,
  );
  return ['| event type | FHIR R4 resource | except | note |', '|---|---|---|---|', ...rows].join('\n');
}

function unmappedList(): string {
  return EVENT_TYPES.filter((t) => !FHIR_EVENT_TYPES.includes(t.type))
    .map((t) => `\`${t.type}\``)
    .join(', ');
}

describe('docs/fhir.md', () => {
  it('shows the mapping table of the code', () => {
    expect(doc, `docs/fhir.md must contain:\n${mappingTable()}`).toContain(mappingTable());
  });

  it('names every event type that maps to nothing', () => {
    expect(doc, `docs/fhir.md must contain:\n${unmappedList()}`).toContain(unmappedList());
  });
});
