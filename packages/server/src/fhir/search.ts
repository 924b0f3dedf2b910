/**
 * The search parameters the read endpoint supports, as one table: the route parses queries with
 * it and the CapabilityStatement lists it, so the statement cannot claim what the search does not do.
 * Anything else in a query is refused (`SY_FHIR_NOT_SUPPORTED`), never ignored.
 */
import { SwitchyardError } from '@switchyard/core';
import type { IdentifierKind } from './map.ts';

/** The resource types the endpoint reads and searches. */
export type ReadableType = 'Appointment' | 'DocumentReference';

/** One supported search parameter. */
export interface SearchParameterSpec {
  name: string;
  type: 'token' | 'date';
  /** What it matches (shown in the CapabilityStatement and docs/fhir.md). */
  documentation: string;
  /** The modifiers it takes (R4 search.html#modifiers); none when absent. */
  modifiers?: readonly 'not'[];
}

const patientIdentifier: SearchParameterSpec = {
  name: 'patient-identifier',
  type: 'token',
  documentation:
    "The patient's vendor identifier: `system|value`, `|value` or `value`; systems urn:switchyard:<instance>:patient, :patient-external-ref, :patient-national-id, :patient-insurance-number. Comma-separated values: any of them.",
};

const lastUpdated: SearchParameterSpec = {
  name: '_lastUpdated',
  type: 'date',
  documentation:
    "When the hub last changed the resource (meta.lastUpdated: the hub's clock, not the vendor's event time); prefixes eq, gt, lt, ge, le; may repeat (all must hold).",
};

const id: SearchParameterSpec = {
  name: '_id',
  type: 'token',
  documentation:
    'The resource id (the hub id). Comma-separated values: any of them; `_id:not`: none of them.',
  modifiers: ['not'],
};

/**
 * The R4 AppointmentStatus codes (required binding of Appointment.status), which the mapping takes
 * as they are from `data.status` (the core schema enumerates exactly these): `status:not` is the
 * search of the other codes, so it reads the same index as `status`.
 */
export const APPOINTMENT_STATUSES: readonly string[] = Object.freeze([
  'proposed',
  'pending',
  'booked',
  'arrived',
  'fulfilled',
  'cancelled',
  'noshow',
  'entered-in-error',
  'checked-in',
  'waitlist',
]);

/** The code system of Appointment.status. */
export const APPOINTMENT_STATUS_SYSTEM = 'http://hl7.org/fhir/appointmentstatus';

/**
 * The R4 DocumentReferenceStatus codes (required binding of DocumentReference.status): the mapping
 * gives `entered-in-error` for a deleted note, else `data.status`, `current` when the vendor gave
 * none (fhir/map.ts; the store searches the same rule, entities/current.ts).
 */
export const DOCUMENT_REFERENCE_STATUSES: readonly string[] = Object.freeze([
  'current',
  'superseded',
  'entered-in-error',
]);

/** The code system of DocumentReference.status. */
export const DOCUMENT_REFERENCE_STATUS_SYSTEM = 'http://hl7.org/fhir/document-reference-status';

/** The status codes and their system per resource type, for the `status` parameter. */
const STATUS_CODES: Readonly<Record<ReadableType, { system: string; codes: readonly string[] }>> = {
  Appointment: { system: APPOINTMENT_STATUS_SYSTEM, codes: APPOINTMENT_STATUSES },
  DocumentReference: { system: DOCUMENT_REFERENCE_STATUS_SYSTEM, codes: DOCUMENT_REFERENCE_STATUSES },
};

/** The `status` parameter of a resource type (`status:not` is the search of the other codes). */
function statusParameter(type: ReadableType, what: string): SearchParameterSpec {
  const { system, codes } = STATUS_CODES[type];
  return {
    name: 'status',
    type: 'token',
    documentation: `${type}.status${what}: \`code\` or \`${system}|code\` (${codes.join(', ')}). Comma-separated values: any of them; \`status:not\`: any other status.`,
    modifiers: ['not'],
  };
}

/** The supported search parameters per resource type. */
export const SEARCH_PARAMETERS: Readonly<Record<ReadableType, readonly SearchParameterSpec[]>> =
  Object.freeze({
    Appointment: [
      patientIdentifier,
      {
        name: 'date',
        type: 'date',
        documentation:
          'Appointment.start; prefixes eq (default: within the given precision), gt, lt, ge, le; may repeat (all must hold). A date without a zone is read in UTC.',
      },
      statusParameter('Appointment', ''),
      id,
      lastUpdated,
    ],
    DocumentReference: [
      patientIdentifier,
      statusParameter('DocumentReference', ' (entered-in-error for a note deleted at the vendor)'),
      id,
      lastUpdated,
    ],
  });

/** What a `_sort` key orders by: the hub id, `data.start` (Appointment.start), or the last change. */
export type SortBy = 'subject' | 'start' | 'updated';

/**
 * The `_sort` keys per resource type (R4 search.html#sort: a search parameter's name, `-` before it
 * for descending). Ties are broken by the id in the same direction, so `_sort=-date` is
 * `-date,-_id`, which may be said as such. Without `_sort`: by id.
 */
export const SORT_PARAMETERS: Readonly<Record<ReadableType, Readonly<Record<string, SortBy>>>> =
  Object.freeze({
    Appointment: { date: 'start', _lastUpdated: 'updated', _id: 'subject' },
    DocumentReference: { _lastUpdated: 'updated', _id: 'subject' },
  });

/**
 * The `_total` values (R4 search.html#total): `accurate` counts the matches; `estimate` ("the
 * client does not need an accurate total") is the database's estimate of them, counted when that
 * is below {@link TOTAL_ESTIMATE_COUNTED_BELOW}.
 */
export const TOTAL_MODES = ['none', 'estimate', 'accurate'] as const;
/**
 * Below this many matches by the database's estimate, `_total=estimate` counts them: a count of a
 * few thousand index entries costs milliseconds, and the estimate of a selective filter (a
 * patient's appointments, a rare status) can be off by several times where the true number is
 * what a client shows. Above it, a count would read every entry of the kind's index for every page.
 */
export const TOTAL_ESTIMATE_COUNTED_BELOW = 10_000;
/** The `_summary` values answered: `count` (the Bundle's `total` only) and `false` (whole resources, as without it). */
export const SUMMARY_MODES = ['count', 'false'] as const;

/**
 * The result parameters of a resource type's search, as the CapabilityStatement's resource
 * `documentation` says them (R4 has no element for them), from the same tables the parser uses.
 */
export function resultParameters(type: ReadableType): string {
  const sorts = Object.keys(SORT_PARAMETERS[type]);
  return [
    `Result parameters: _count (page size, default ${PAGE_SIZE.default}, at most ${PAGE_SIZE.max}; 0 is _summary=count);`,
    `_sort: one of ${sorts.join(', ')}, \`-\` for descending, ties broken by _id in the same direction (default _id);`,
    `_total: ${TOTAL_MODES.join(', ')} (accurate counts; estimate is the database's estimate from ${TOTAL_ESTIMATE_COUNTED_BELOW.toLocaleString('en-US')} matches up, counted below that and for a read token limited to some sources);`,
    `_summary: ${SUMMARY_MODES.join(', ')}.`,
  ].join(' ');
}

/** Paging: `_count` (page size) and `_cursor` (the next link's position; opaque). */
export const PAGE_SIZE = { default: 20, max: 100 } as const;

/**
 * A bound on a time, as the store takes it: an ISO instant, or `infinity` / `-infinity` for an edge
 * beyond Postgres' timestamps (after 9999-12-31, before 0001-01-01).
 */
export interface TimeBound {
  op: 'lt' | 'le' | 'gt' | 'ge';
  at: string;
}

/** A patient identifier to match: fields of `data.patient`, and the instance when the system names one. */
export interface PatientMatch {
  instance?: string;
  fields: Record<string, string>;
}

/** A parsed search. */
export interface ParsedSearch {
  patient?: PatientMatch[];
  start?: TimeBound[];
  updated?: TimeBound[];
  /** `_id`: the hub ids to match (`not`: to leave out). */
  ids?: { values: string[]; not: boolean };
  /** `status`: the status codes that match (`:not` already turned into the other codes). */
  statuses?: string[];
  /** The order; `label` is the `_sort` value as a cursor remembers it (`''` for the default). */
  sort: { by: SortBy; descending: boolean; label: string };
  /**
   * The position `_cursor` continues after; `backward` for a `previous` link's cursor: the page
   * of entries just before it, in the same order.
   */
  after?: { hubId: string; key?: string; backward?: boolean };
  /** `_total` (`none` unless asked). */
  total: (typeof TOTAL_MODES)[number];
  /** `_summary=count`: the total only, no entries. */
  countOnly: boolean;
  count: number;
  /**
   * The query as the search was carried out, for the Bundle's `self` and `next` links (R4: `self`
   * shows the parameters actually used): `_count` as applied, ignored parameters left out.
   */
  applied: [string, string][];
  /** The parameters left out under `handling=lenient`, with why (empty when strict). */
  ignored: string[];
}

/** How a search treats what it does not support (R4 `Prefer: handling=strict|lenient`). */
export type Handling = 'strict' | 'lenient';

/**
 * The `handling` a `Prefer` header asks for; strict when it names none (the endpoint's default,
 * which R4 leaves to the server: a filter silently dropped would widen the answer unnoticed).
 *
 * @example
 * ```ts
 * handlingOf('return=representation, handling=lenient'); // 'lenient'
 * ```
 */
export function handlingOf(prefer: string | readonly string[] | undefined): Handling {
  // Several Prefer headers are one comma-separated list (RFC 7240), whose values may be quoted and
  // `=` may have spaces around it (`handling = "lenient"`): read strictly, such a client that asked
  // for lenient got its search refused.
  // `;` starts a preference's parameters: only what comes before it is a preference.
  const asked = [prefer ?? []]
    .flat()
    .join(',')
    .split(',')
    .map((p) => /^\s*handling\s*=\s*"?([^";]*)"?\s*(;|$)/i.exec(p)?.[1])
    .find((value) => value !== undefined);
  return asked?.toLowerCase() === 'lenient' ? 'lenient' : 'strict';
}

const PATIENT_FIELDS: Partial<Record<IdentifierKind, string>> = {
  patient: 'id',
  'patient-external-ref': 'externalRef',
  'patient-national-id': 'nationalId',
  'patient-insurance-number': 'insuranceNumber',
};

function notSupported(message: string): SwitchyardError {
  return new SwitchyardError('SY_FHIR_NOT_SUPPORTED', message);
}

function invalid(message: string): SwitchyardError {
  return new SwitchyardError('SY_FHIR_INVALID_SEARCH', message);
}

/**
 * A token parameter's values: split at the commas and each at its first `|`, a `\` before `,`, `|`,
 * `$` or `\` making it part of the value (R4 search.html#escaping), as FHIR clients send an
 * identifier holding one (`a\,b`): split at it, the search looked for two identifiers no patient has.
 * Each value is `[system, code]`, the system undefined without a `|`.
 *
 * @example
 * ```ts
 * tokenValues('urn:x|a\,b,c'); // [['urn:x', 'a,b'], [undefined, 'c']]
 * ```
 */
export function tokenValues(raw: string): [string | undefined, string][] {
  const values: [string | undefined, string][] = [];
  let system: string | undefined;
  let current = '';
  for (let i = 0; i <= raw.length; i++) {
    const c = raw[i];
    if (c === '\\' && i + 1 < raw.length) {
      current += raw[++i];
    } else if (c === ',' || c === undefined) {
      values.push([system, current]);
      system = undefined;
      current = '';
    } else if (c === '|' && system === undefined) {
      system = current;
      current = '';
    } else current += c;
  }
  return values;
}

/** The values of a token search: `system|value`, `|value` (no system) or `value` (any system). */
function patientMatches(raw: string): PatientMatch[] {
  const out: PatientMatch[] = [];
  for (const [system, value] of tokenValues(raw)) {
    if (system === undefined) {
      if (value === '') throw invalid('patient-identifier needs a value');
      for (const field of Object.values(PATIENT_FIELDS)) out.push({ fields: { [field!]: value } });
      continue;
    }
    if (value === '') throw invalid(`patient-identifier ${system}| has no value`);
    if (system === '') continue; // no system: the hub's identifiers all have one
    const m = /^urn:switchyard:(.+):([a-z-]+)$/.exec(system);
    const field = m ? PATIENT_FIELDS[m[2] as IdentifierKind] : undefined;
    // An identifier system the hub does not issue matches nothing (FHIR: unknown systems match nothing).
    if (m && field) out.push({ instance: m[1]!, fields: { [field]: value } });
  }
  return out;
}

/**
 * What to add to the refusal of a date query parameter whose zone's `+` was sent unescaped and
 * arrived as a space (form encoding: `10:00:00+01:00` reads `10:00:00 01:00`), so the client can
 * fix it; '' for any other value. FHIR date search and the admin API's date parameters say it alike.
 *
 * @example
 * ```ts
 * plusAsSpaceHint('2026-01-01T10:00:00 01:00'); // ' (a + in a URL query is a space: send the zone as %2B)'
 * ```
 */
export function plusAsSpaceHint(value: unknown): string {
  return typeof value === 'string' && / \d{2}:\d{2}$/.test(value)
    ? ' (a + in a URL query is a space: send the zone as %2B)'
    : '';
}

const DATE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The range `[lower, upper)` a FHIR date or dateTime stands for at its precision (a year, a month,
 * a day, a minute, a second, a fraction of one to the millisecond). Without a zone, UTC.
 */
export function dateRange(value: string): { lower: Date; upper: Date } {
  const m = DATE.exec(value);
  if (!m) {
    throw invalid(`${value} is not a FHIR date or dateTime${plusAsSpaceHint(value)}`);
  }
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  // R4's date and dateTime start at year 0001 (datatypes.html#date).
  if (y === '0000') throw invalid(`${value} is not a valid date (years start at 0001)`);
  if (h !== undefined && zone === undefined && s === undefined && mi === undefined) throw invalid(value);
  // JavaScript's Date rolls an impossible day over (2026-02-30 is 2026-03-02), so check each field.
  const lastDay = new Date(Date.UTC(Number(y), Number(mo ?? 1), 0)).getUTCDate();
  if (
    Number(mo ?? 1) < 1 ||
    Number(mo ?? 1) > 12 ||
    Number(d ?? 1) < 1 ||
    Number(d ?? 1) > lastDay ||
    Number(h ?? 0) > 23 ||
    Number(mi ?? 0) > 59 ||
    Number(s ?? 0) > 59 ||
    (zone !== undefined && zone !== 'Z' && (Number(zone.slice(1, 3)) > 14 || Number(zone.slice(4)) > 59))
  )
    throw invalid(`${value} is not a valid date`);
  const iso = `${y}-${mo ?? '01'}-${d ?? '01'}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}${frac ?? ''}${zone ?? 'Z'}`;
  const lower = new Date(iso);
  if (Number.isNaN(lower.getTime())) throw invalid(`${value} is not a valid date`);
  const upper = new Date(lower);
  if (mo === undefined) upper.setUTCFullYear(upper.getUTCFullYear() + 1);
  else if (d === undefined) upper.setUTCMonth(upper.getUTCMonth() + 1);
  else if (h === undefined) upper.setUTCDate(upper.getUTCDate() + 1);
  else if (s === undefined) upper.setUTCMinutes(upper.getUTCMinutes() + 1);
  else if (frac === undefined) upper.setUTCSeconds(upper.getUTCSeconds() + 1);
  // `.5` is a tenth of a second as `10:30` is a minute (R4 search.html#date: the value's precision);
  // past milliseconds, the millisecond that holds the value.
  else upper.setTime(upper.getTime() + 10 ** Math.max(0, 4 - frac.length));
  return { lower, upper };
}

const PREFIXES = ['eq', 'gt', 'lt', 'ge', 'le'] as const;
const UNSUPPORTED_PREFIXES = ['ne', 'sa', 'eb', 'ap'];

/** A date search value with its prefix as bounds on a point in time (an appointment's start). */
function dateBounds(name: string, raw: string): TimeBound[] {
  if (raw.includes(','))
    throw notSupported(`${name}: several values in one parameter (OR) are not supported`);
  const prefix = /^[a-z]{2}/.exec(raw)?.[0];
  if (prefix && UNSUPPORTED_PREFIXES.includes(prefix))
    throw notSupported(`${name}: the prefix ${prefix} is not supported`);
  const op = prefix && (PREFIXES as readonly string[]).includes(prefix) ? prefix : 'eq';
  const { lower, upper } = dateRange(op === prefix ? raw.slice(2) : raw);
  // The edges of R4's range (the end of 9999, the start of 0001 moved back by a zone) are outside
  // Postgres' ISO timestamps, which refused `le9999-12-31`, the open end clients write: as
  // infinities they compare as the instants do, with every time the hub holds.
  const at = (d: Date) => {
    const year = d.getUTCFullYear();
    return year > 9999 ? 'infinity' : year < 1 ? '-infinity' : d.toISOString();
  };
  switch (op) {
    case 'gt':
      return [{ op: 'ge', at: at(upper) }];
    case 'lt':
      return [{ op: 'lt', at: at(lower) }];
    case 'ge':
      return [{ op: 'ge', at: at(lower) }];
    case 'le':
      return [{ op: 'lt', at: at(upper) }];
    default:
      return [
        { op: 'ge', at: at(lower) },
        { op: 'lt', at: at(upper) },
      ];
  }
}

/** The query as a list of (name, value) pairs, whatever shape the HTTP layer parsed it into. */
export type QueryPairs = ReadonlyArray<readonly [string, string]>;

/**
 * Parses a search of `type` against {@link SEARCH_PARAMETERS} and the result parameters (`_count`,
 * `_sort` of {@link SORT_PARAMETERS}, `_total`, `_summary`, `_cursor`). Throws
 * `SY_FHIR_NOT_SUPPORTED` for a parameter, modifier, prefix, value or repetition not supported
 * (under `lenient` handling it is left out and named in `ignored` instead), `SY_FHIR_INVALID_SEARCH`
 * for a value it cannot read (a `_cursor` of another `_sort` among them). A `_count` above the
 * maximum gives the maximum.
 *
 * @example
 * ```ts
 * parseSearch('Appointment', [['patient-identifier', 'urn:switchyard:dp:patient|50'], ['date', 'ge2026-03-10'], ['_sort', '-date']]);
 * // { patient: [{ instance: 'dp', fields: { id: '50' } }], start: [{ op: 'ge', at: '2026-03-10T00:00:00.000Z' }],
 * //   sort: { by: 'start', descending: true, label: '-date' }, total: 'none', countOnly: false, count: 20, applied: [...], ignored: [] }
 * ```
 */
export function parseSearch(
  type: ReadableType,
  query: QueryPairs,
  handling: Handling = 'strict',
): ParsedSearch {
  const parsed: ParsedSearch = {
    sort: { by: 'subject', descending: false, label: '' },
    total: 'none',
    countOnly: false,
    count: PAGE_SIZE.default,
    applied: [],
    ignored: [],
  };
  const seen = new Set<string>();
  let cursor: Cursor | undefined;
  for (const [key, value] of query) {
    try {
      const used = parsePair(type, parsed, seen, key, value);
      if (typeof used !== 'string') cursor = used;
      parsed.applied.push([key, typeof used === 'string' ? used : value]);
    } catch (error) {
      // Lenient: an unsupported parameter is left out (and named in `ignored`); an unreadable
      // value of a supported one is still refused, as R4's handling is about support only.
      if (handling === 'strict' || (error as SwitchyardError).code !== 'SY_FHIR_NOT_SUPPORTED') throw error;
      parsed.ignored.push(`${key}=${value}: ${(error as Error).message}`);
    }
  }
  if (cursor) {
    // A position in one order means nothing in another: a client that changed `_sort` between
    // pages would skip or repeat entries.
    if (cursor.sort !== parsed.sort.label) throw invalid('_cursor belongs to a search with another _sort');
    parsed.after = {
      hubId: cursor.hubId,
      ...(cursor.key !== undefined ? { key: cursor.key } : {}),
      ...(cursor.backward ? { backward: true } : {}),
    };
  }
  return parsed;
}

/**
 * A decoded `_cursor`: the `_sort` it was handed out for, the last entry's sort value and id (a
 * `previous` link's: the first entry's, `backward`).
 */
interface Cursor {
  sort: string;
  key?: string;
  hubId: string;
  backward?: boolean;
}

const HUB_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** A sort value as the store hands it out (entities/current.ts `orderKey`). */
const SORT_KEY = /^(?:infinity|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)$/;

/**
 * The `_cursor` value that continues after an entry: the `_sort` label, the entry's sort value and
 * its hub id, so the next page starts after that (value, id) even when later entries share the value.
 */
export function cursorAfter(hubId: string, sort = '', key?: string): string {
  return Buffer.from(JSON.stringify(key === undefined ? [sort, hubId] : [sort, hubId, key]), 'utf8').toString(
    'base64url',
  );
}

/**
 * The `_cursor` value of the page before an entry (a `previous` link): {@link cursorAfter}'s with
 * a fourth element, so the store reads the same index the other way from that (value, id).
 */
export function cursorBefore(hubId: string, sort = '', key?: string): string {
  return Buffer.from(JSON.stringify([sort, hubId, key ?? null, 'before']), 'utf8').toString('base64url');
}

function readCursor(value: string): Cursor {
  const text = Buffer.from(value, 'base64url').toString('utf8');
  // A cursor handed out before `_sort` existed was the hub id alone (a next link kept across an upgrade).
  if (HUB_ID.test(text)) return { sort: '', hubId: text };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  const parts = Array.isArray(raw) ? (raw as unknown[]) : [];
  const backward = parts.length === 4 && parts[3] === 'before';
  const [sort, hubId] = parts;
  const key = backward && parts[2] === null ? undefined : parts[2];
  if (
    parts.length > (backward ? 4 : 3) ||
    typeof sort !== 'string' ||
    typeof hubId !== 'string' ||
    !HUB_ID.test(hubId) ||
    (key !== undefined && (typeof key !== 'string' || !SORT_KEY.test(key))) ||
    (sort !== '' && sort !== '_id' && sort !== '-_id' && key === undefined)
  )
    throw invalid('_cursor is not one this endpoint handed out');
  return { sort, hubId, ...(key !== undefined ? { key } : {}), ...(backward ? { backward } : {}) };
}

/** The token values of a parameter: `system|code` as [system, code], `code` as [undefined, code]. */
function tokens(name: string, raw: string): [string | undefined, string][] {
  return tokenValues(raw).map((token) => {
    if (token[1] === '') throw invalid(`${name} needs a value`);
    return token;
  });
}

/** Applies one query pair to `parsed`; returns its value as applied (or the cursor it reads). */
function parsePair(
  type: ReadableType,
  parsed: ParsedSearch,
  seen: Set<string>,
  key: string,
  value: string,
): string | Cursor {
  const specs = SEARCH_PARAMETERS[type];
  // `_format` is content negotiation, checked by the HTTP layer before the search (406 if not JSON).
  if (key === '_format') return value;
  const colon = key.indexOf(':');
  const name = colon === -1 ? key : key.slice(0, colon);
  if (['_count', '_cursor', '_sort', '_total', '_summary'].includes(name)) {
    if (colon !== -1 || seen.has(name)) throw notSupported(`${key}: modifiers and repeats are not supported`);
    seen.add(name);
    return resultParameter(type, parsed, name, value);
  }
  const spec = specs.find((s) => s.name === name);
  if (!spec) {
    throw notSupported(
      `the search parameter ${name} is not supported on ${type} (supported: ${specs.map((s) => s.name).join(', ')}; _count, _sort, _total, _summary)`,
    );
  }
  const modifier = colon === -1 ? undefined : key.slice(colon + 1);
  if (modifier !== undefined && !(spec.modifiers ?? []).includes(modifier as 'not'))
    throw notSupported(`${key}: the modifier :${modifier} is not supported on ${name}`);
  if (spec.type === 'token') {
    if (seen.has(name))
      throw notSupported(`${name} may be given once (use commas for any of several values)`);
    seen.add(name);
    const not = modifier === 'not';
    if (name === 'patient-identifier') parsed.patient = patientMatches(value);
    else if (name === '_id') {
      // An id has no system: `system|id` names no resource of this server.
      const values = tokens(name, value).flatMap(([system, code]) => (system === undefined ? [code] : []));
      parsed.ids = { values, not };
    } else {
      const { system: statusSystem, codes } = STATUS_CODES[type];
      const asked = new Set(
        tokens(name, value)
          .filter(([system]) => system === undefined || system === statusSystem)
          .map(([, code]) => code),
      );
      parsed.statuses = codes.filter((code) => asked.has(code) !== not);
    }
  } else if (name === 'date') {
    parsed.start = [...(parsed.start ?? []), ...dateBounds(name, value)];
  } else {
    parsed.updated = [...(parsed.updated ?? []), ...dateBounds(name, value)];
  }
  return value;
}

/** `_count`, `_sort`, `_total`, `_summary`, `_cursor` (each at most once). */
function resultParameter(
  type: ReadableType,
  parsed: ParsedSearch,
  name: string,
  value: string,
): string | Cursor {
  switch (name) {
    case '_count': {
      const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!(n >= 0))
        throw invalid(`_count must be a whole number from 0 (at most ${PAGE_SIZE.max} are given)`);
      // R4 search.html#count: _count=0 "shall be treated the same as _summary=count".
      if (n === 0) {
        parsed.countOnly = true;
        return value;
      }
      // R4: the server is not bound to return the number asked, but cannot return more.
      parsed.count = Math.min(n, PAGE_SIZE.max);
      return String(parsed.count);
    }
    case '_sort': {
      const keys = value.split(',');
      const descending = keys[0]!.startsWith('-');
      const first = descending ? keys[0]!.slice(1) : keys[0]!;
      const by = Object.hasOwn(SORT_PARAMETERS[type], first) ? SORT_PARAMETERS[type][first] : undefined;
      // The id breaks ties in the sort's direction: a second key is taken when it says just that.
      const tieBreak = `${descending ? '-' : ''}_id`;
      if (!by || keys.length > 2 || (keys.length === 2 && (keys[1] !== tieBreak || first === '_id')))
        throw notSupported(
          `_sort=${value}: sorts by one of ${Object.keys(SORT_PARAMETERS[type]).join(', ')} (- for descending), ties by ${tieBreak}`,
        );
      parsed.sort = { by, descending, label: keys[0]! };
      return value;
    }
    case '_total':
      if (!(TOTAL_MODES as readonly string[]).includes(value))
        throw notSupported(`_total=${value}: one of ${TOTAL_MODES.join(', ')}`);
      parsed.total = value as ParsedSearch['total'];
      return value;
    case '_summary':
      // true, text and data would answer parts of each resource, which the hub does not build.
      if (!(SUMMARY_MODES as readonly string[]).includes(value))
        throw notSupported(`_summary=${value}: only ${SUMMARY_MODES.join(' and ')} are supported`);
      // `false` does not take back a _count=0, which asks for the count whatever the order.
      if (value === 'count') parsed.countOnly = true;
      return value;
    default:
      return readCursor(value);
  }
}
