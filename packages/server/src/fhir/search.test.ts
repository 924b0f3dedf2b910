import { describe, expect, it } from 'vitest';
import {
  APPOINTMENT_STATUSES,
  cursorAfter,
  cursorBefore,
  DOCUMENT_REFERENCE_STATUSES,
  dateRange,
  handlingOf,
  parseSearch,
  tokenValues,
} from './search.ts';

describe('dateRange', () => {
  it.each([
    ['2026', '2026-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['2026-02', '2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z'],
    ['2026-03-10', '2026-03-10T00:00:00.000Z', '2026-03-11T00:00:00.000Z'],
    ['2026-03-10T11:30+01:00', '2026-03-10T10:30:00.000Z', '2026-03-10T10:31:00.000Z'],
    ['2026-03-10T11:30:15Z', '2026-03-10T11:30:15.000Z', '2026-03-10T11:30:16.000Z'],
    // A fraction is a precision too: a tenth, a hundredth, a millisecond; below that the
    // millisecond that holds it (the hub's times have milliseconds).
    ['2026-03-10T11:30:15.5Z', '2026-03-10T11:30:15.500Z', '2026-03-10T11:30:15.600Z'],
    ['2026-03-10T11:30:15.25Z', '2026-03-10T11:30:15.250Z', '2026-03-10T11:30:15.260Z'],
    ['2026-03-10T11:30:15.123Z', '2026-03-10T11:30:15.123Z', '2026-03-10T11:30:15.124Z'],
    ['2026-03-10T11:30:15.123456Z', '2026-03-10T11:30:15.123Z', '2026-03-10T11:30:15.124Z'],
  ])('%s stands for [%s, %s)', (value, lower, upper) => {
    const r = dateRange(value);
    expect([r.lower.toISOString(), r.upper.toISOString()]).toEqual([lower, upper]);
  });

  it('takes the last day of a month, a leap day', () => {
    expect(dateRange('2028-02-29').lower.toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(dateRange('2026-04-30T23:59:59-14:00').lower.toISOString()).toBe('2026-05-01T13:59:59.000Z');
  });

  it('refuses an impossible day or time rather than rolling it over (2026-02-30 is not 2026-03-02)', () => {
    expect(() => dateRange('2026-02-30')).toThrow(/is not a valid date/);
  });

  it('says why a zone sent with an unescaped + is unreadable', () => {
    expect(() => dateRange('2026-03-10T10:00:00 01:00')).toThrow(/send the zone as %2B/);
  });

  it('refuses what is not a FHIR date', () => {
    for (const bad of [
      'yesterday',
      '2026-13-01',
      '10/03/2026',
      '2026-03-10T11',
      '2026-02-30',
      '2026-02-29',
      '2026-04-31',
      '2026-03-10T24:00:00Z',
      '2026-03-10T10:60Z',
      '2026-03-10T10:00:00+15:00',
    ]) {
      expect(() => dateRange(bad), bad).toThrow(expect.objectContaining({ code: 'SY_FHIR_INVALID_SEARCH' }));
    }
  });
});

describe('parseSearch', () => {
  it('turns prefixes into bounds on a point in time', () => {
    const day = (op: string) => parseSearch('Appointment', [['date', `${op}2026-03-10`]]).start;
    expect(day('')).toEqual([
      { op: 'ge', at: '2026-03-10T00:00:00.000Z' },
      { op: 'lt', at: '2026-03-11T00:00:00.000Z' },
    ]);
    expect(day('gt')).toEqual([{ op: 'ge', at: '2026-03-11T00:00:00.000Z' }]);
    expect(day('lt')).toEqual([{ op: 'lt', at: '2026-03-10T00:00:00.000Z' }]);
    expect(day('ge')).toEqual([{ op: 'ge', at: '2026-03-10T00:00:00.000Z' }]);
    expect(day('le')).toEqual([{ op: 'lt', at: '2026-03-11T00:00:00.000Z' }]);
  });

  it('reads patient identifiers with a hub system, without one, and ignores systems the hub does not issue', () => {
    expect(
      parseSearch('Appointment', [['patient-identifier', 'urn:switchyard:dp:patient-external-ref|X1']]),
    ).toMatchObject({
      count: 20,
      patient: [{ instance: 'dp', fields: { externalRef: 'X1' } }],
    });
    expect(parseSearch('Appointment', [['patient-identifier', 'http://other|X1,|X2']]).patient).toEqual([]);
    expect(parseSearch('DocumentReference', [['patient-identifier', '50']]).patient).toEqual([
      { fields: { id: '50' } },
      { fields: { externalRef: '50' } },
      { fields: { nationalId: '50' } },
      { fields: { insuranceNumber: '50' } },
    ]);
  });

  it('reads a token value with an escaped comma, bar or backslash as one value (R4 search.html#escaping)', () => {
    expect(
      parseSearch('Appointment', [
        ['patient-identifier', 'urn:switchyard:dp:patient-external-ref|A\\,1,B\\|2\\\\'],
      ]).patient,
    ).toEqual([
      { instance: 'dp', fields: { externalRef: 'A,1' } },
      { fields: { id: 'B|2\\' } },
      { fields: { externalRef: 'B|2\\' } },
      { fields: { nationalId: 'B|2\\' } },
      { fields: { insuranceNumber: 'B|2\\' } },
    ]);
    expect(tokenValues('a|b|c,d')).toEqual([
      ['a', 'b|c'],
      [undefined, 'd'],
    ]);
  });

  it('pages with _count and a cursor it handed out', () => {
    expect(
      parseSearch('Appointment', [
        ['_count', '5'],
        ['_cursor', cursorAfter('abc-1')],
      ]),
    ).toMatchObject({
      count: 5,
      after: { hubId: 'abc-1' },
    });
    // A next link handed out before _sort existed (the hub id alone) still continues the default order.
    const legacy = Buffer.from('abc-1').toString('base64url');
    expect(parseSearch('Appointment', [['_cursor', legacy]]).after).toEqual({ hubId: 'abc-1' });
    // A previous link's cursor: the page before that entry.
    expect(parseSearch('Appointment', [['_cursor', cursorBefore('abc-1')]]).after).toEqual({
      hubId: 'abc-1',
      backward: true,
    });
    const key = '2026-03-10T09:00:00.000000Z';
    expect(
      parseSearch('Appointment', [
        ['_sort', '-date'],
        ['_cursor', cursorBefore('abc-1', '-date', key)],
      ]).after,
    ).toEqual({ hubId: 'abc-1', key, backward: true });
    const other = Buffer.from(JSON.stringify(['', 'abc-1', null, 'after'])).toString('base64url');
    expect(() => parseSearch('Appointment', [['_cursor', other]])).toThrow('_cursor is not one');
  });

  it('keeps the sort value in the cursor, and refuses a cursor of another _sort (it would skip or repeat)', () => {
    const key = '2026-03-10T09:00:00.000000Z';
    const parsed = parseSearch('Appointment', [
      ['_sort', '-date'],
      ['_cursor', cursorAfter('abc-1', '-date', key)],
    ]);
    expect([parsed.sort, parsed.after]).toEqual([
      { by: 'start', descending: true, label: '-date' },
      { hubId: 'abc-1', key },
    ]);
    // The same sort said with its tie-break is the same order.
    expect(
      parseSearch('Appointment', [
        ['_cursor', cursorAfter('abc-1', '-date', key)],
        ['_sort', '-date,-_id'],
      ]).after,
    ).toEqual({ hubId: 'abc-1', key });
    for (const query of [
      [['_cursor', cursorAfter('abc-1', '-date', key)]],
      [
        ['_sort', 'date'],
        ['_cursor', cursorAfter('abc-1', '-date', key)],
      ],
      [
        ['_sort', '_lastUpdated'],
        ['_cursor', cursorAfter('abc-1')],
      ],
      // A sort value that is not one the store hands out never reaches the database.
      [
        ['_sort', 'date'],
        ['_cursor', cursorAfter('abc-1', 'date', "2026'; drop")],
      ],
      [
        ['_sort', 'date'],
        ['_cursor', cursorAfter('abc-1', 'date')],
      ],
    ] as [string, string][][]) {
      expect(() => parseSearch('Appointment', query), JSON.stringify(query)).toThrow(
        expect.objectContaining({ code: 'SY_FHIR_INVALID_SEARCH' }),
      );
    }
  });

  it('reads _sort keys, - for descending, the id as a tie-break in the same direction', () => {
    const sort = (type: 'Appointment' | 'DocumentReference', value: string) =>
      parseSearch(type, [['_sort', value]]).sort;
    expect(sort('Appointment', 'date')).toEqual({ by: 'start', descending: false, label: 'date' });
    expect(sort('Appointment', '-_lastUpdated')).toEqual({
      by: 'updated',
      descending: true,
      label: '-_lastUpdated',
    });
    expect(sort('DocumentReference', '-_id')).toEqual({ by: 'subject', descending: true, label: '-_id' });
    expect(sort('Appointment', 'date,_id')).toEqual({ by: 'start', descending: false, label: 'date' });
    for (const [type, value] of [
      ['DocumentReference', 'date'],
      ['Appointment', 'status'],
      ['Appointment', 'date,-_id'],
      ['Appointment', 'date,_lastUpdated'],
      ['Appointment', '_id,_id'],
    ] as const) {
      expect(() => sort(type, value), `${type} ${value}`).toThrow(
        expect.objectContaining({ code: 'SY_FHIR_NOT_SUPPORTED' }),
      );
    }
  });

  it('reads status codes with and without their system, :not as the other codes, _id values', () => {
    const statuses = (key: string, value: string) => parseSearch('Appointment', [[key, value]]).statuses;
    expect(statuses('status', 'booked,cancelled')).toEqual(['booked', 'cancelled']);
    expect(statuses('status', 'http://hl7.org/fhir/appointmentstatus|noshow')).toEqual(['noshow']);
    // Another system, no system, or a code R4 does not have: nothing matches.
    expect(statuses('status', 'http://other|booked,|booked,nope')).toEqual([]);
    expect(statuses('status:not', 'cancelled,noshow')).toEqual(
      APPOINTMENT_STATUSES.filter((s) => s !== 'cancelled' && s !== 'noshow'),
    );
    expect(parseSearch('DocumentReference', [['_id', 'a,b']]).ids).toEqual({
      values: ['a', 'b'],
      not: false,
    });
    expect(parseSearch('Appointment', [['_id:not', 'a']]).ids).toEqual({ values: ['a'], not: true });
    // DocumentReference: its own codes and system (an Appointment code matches nothing).
    const documents = (key: string, value: string) =>
      parseSearch('DocumentReference', [[key, value]]).statuses;
    expect(documents('status', 'current,booked')).toEqual(['current']);
    expect(documents('status', 'http://hl7.org/fhir/document-reference-status|entered-in-error')).toEqual([
      'entered-in-error',
    ]);
    expect(documents('status', 'http://hl7.org/fhir/appointmentstatus|current')).toEqual([]);
    expect(documents('status:not', 'current')).toEqual(['superseded', 'entered-in-error']);
    expect(DOCUMENT_REFERENCE_STATUSES).toEqual(['current', 'superseded', 'entered-in-error']);
  });

  it('reads _total and _summary=count; other _summary values are not supported', () => {
    expect(parseSearch('Appointment', [['_total', 'accurate']])).toMatchObject({
      total: 'accurate',
      countOnly: false,
    });
    expect(parseSearch('Appointment', [['_summary', 'count']])).toMatchObject({
      total: 'none',
      countOnly: true,
    });
    expect(parseSearch('Appointment', [['_summary', 'false']]).countOnly).toBe(false);
    for (const [key, value] of [
      ['_summary', 'true'],
      ['_summary', 'data'],
      ['_total', 'exact'],
    ]) {
      expect(() => parseSearch('Appointment', [[key!, value!]])).toThrow(
        expect.objectContaining({ code: 'SY_FHIR_NOT_SUPPORTED' }),
      );
    }
  });

  it.each([
    [[['_include', 'Appointment:patient']], 'SY_FHIR_NOT_SUPPORTED'],
    [[['date:not', '2026']], 'SY_FHIR_NOT_SUPPORTED'],
    [[['status:missing', 'true']], 'SY_FHIR_NOT_SUPPORTED'],
    [
      [
        ['status', 'booked'],
        ['status:not', 'cancelled'],
      ],
      'SY_FHIR_NOT_SUPPORTED',
    ],
    [[['status', 'booked,']], 'SY_FHIR_INVALID_SEARCH'],
    [[['date:missing', 'true']], 'SY_FHIR_NOT_SUPPORTED'],
    [[['date', 'ne2026-01-01']], 'SY_FHIR_NOT_SUPPORTED'],
    [[['date', '2026-01-01,2026-01-02']], 'SY_FHIR_NOT_SUPPORTED'],
    [
      [
        ['patient-identifier', 'a'],
        ['patient-identifier', 'b'],
      ],
      'SY_FHIR_NOT_SUPPORTED',
    ],
    [[['_count', '-5']], 'SY_FHIR_INVALID_SEARCH'],
    [[['patient-identifier', 'urn:switchyard:dp:patient|']], 'SY_FHIR_INVALID_SEARCH'],
  ] as const)('refuses %j with %s, never ignores it', (query, code) => {
    expect(() => parseSearch('Appointment', query)).toThrow(expect.objectContaining({ code }));
  });

  it('reads _count=0 as _summary=count, as R4 says (search.html#count): the total, no entries', () => {
    for (const query of [
      [['_count', '0']],
      [
        ['_count', '0'],
        ['_summary', 'false'],
      ],
      [
        ['_summary', 'false'],
        ['_count', '0'],
      ],
    ] as const) {
      expect(parseSearch('Appointment', query)).toMatchObject({ countOnly: true, total: 'none' });
    }
    expect(parseSearch('Appointment', [['_count', '0']]).applied).toEqual([['_count', '0']]);
  });

  it('gives at most the maximum page for a larger _count, and says so in what it applied (R4: never more)', () => {
    const parsed = parseSearch('Appointment', [['_count', '500']]);
    expect([parsed.count, parsed.applied]).toEqual([100, [['_count', '100']]]);
  });

  it('under handling=lenient leaves out what it does not support and names it; still refuses unreadable values', () => {
    const parsed = parseSearch(
      'Appointment',
      [
        ['_include', 'Appointment:patient'],
        ['date', 'ne2026-01-01'],
        ['date', 'ge2026-01-01'],
        ['_sort', 'status'],
        ['_format', 'json'],
      ],
      'lenient',
    );
    expect(parsed.start).toEqual([{ op: 'ge', at: '2026-01-01T00:00:00.000Z' }]);
    expect(parsed.applied).toEqual([
      ['date', 'ge2026-01-01'],
      ['_format', 'json'],
    ]);
    expect(parsed.ignored).toHaveLength(3);
    expect(parsed.ignored[0]).toMatch(
      /^_include=Appointment:patient: the search parameter _include is not supported/,
    );
    expect(() => parseSearch('Appointment', [['date', 'yesterday']], 'lenient')).toThrow(
      expect.objectContaining({ code: 'SY_FHIR_INVALID_SEARCH' }),
    );
  });

  it('reads handling from a Prefer header, strict unless lenient is asked', () => {
    expect(handlingOf(undefined)).toBe('strict');
    expect(handlingOf('handling=strict')).toBe('strict');
    expect(handlingOf('return=minimal, handling=lenient')).toBe('lenient');
    expect(handlingOf('Handling=Lenient')).toBe('lenient');
    expect(handlingOf(['return=minimal', 'handling=lenient'])).toBe('lenient');
  });

  it('reads a Prefer handling written with a quoted value or spaces around =, as RFC 7240 allows', () => {
    expect(handlingOf('handling="lenient"')).toBe('lenient');
    expect(handlingOf('return=minimal, handling = lenient')).toBe('lenient');
    expect(handlingOf('handling = "strict"')).toBe('strict');
  });

  it("reads handling only as a preference, not as another preference's parameter (after its `;`)", () => {
    // RFC 7240: `;` separates a preference's parameters. `return=minimal; handling=lenient` asks
    // for return=minimal with a parameter, not for lenient handling, which the search took.
    expect(handlingOf('return=minimal; handling=lenient')).toBe('strict');
    expect(handlingOf('handling=lenient; foo=bar')).toBe('lenient');
  });

  it('has no date parameter on DocumentReference', () => {
    expect(() => parseSearch('DocumentReference', [['date', '2026']])).toThrow(
      expect.objectContaining({ code: 'SY_FHIR_NOT_SUPPORTED' }),
    );
  });
});
