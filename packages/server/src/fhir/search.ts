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
      lastUpdated,
    ],
    DocumentReference: [patientIdentifier, lastUpdated],
  });

/** Paging: `_count` (page size) and `_cursor` (the next link's position; opaque). */
export const PAGE_SIZE = { default: 20, max: 100 } as const;

/** A bound on a time, as the store takes it. */
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
  count: number;
  afterHubId?: string;
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
  // Several Prefer headers are one comma-separated list (RFC 7240).
  const asked = [prefer ?? []]
    .flat()
    .join(',')
    .split(/[,;]/)
    .map((p) => p.trim().toLowerCase())
    .find((p) => p.startsWith('handling='));
  return asked === 'handling=lenient' ? 'lenient' : 'strict';
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

/** The values of a token search: `system|value`, `|value` (no system) or `value` (any system). */
function patientMatches(raw: string): PatientMatch[] {
  const out: PatientMatch[] = [];
  for (const part of raw.split(',')) {
    const bar = part.indexOf('|');
    if (bar === -1) {
      if (part === '') throw invalid('patient-identifier needs a value');
      for (const field of Object.values(PATIENT_FIELDS)) out.push({ fields: { [field!]: part } });
      continue;
    }
    const system = part.slice(0, bar);
    const value = part.slice(bar + 1);
    if (value === '') throw invalid(`patient-identifier ${part} has no value`);
    if (system === '') continue; // no system: the hub's identifiers all have one
    const m = /^urn:switchyard:(.+):([a-z-]+)$/.exec(system);
    const field = m ? PATIENT_FIELDS[m[2] as IdentifierKind] : undefined;
    // An identifier system the hub does not issue matches nothing (FHIR: unknown systems match nothing).
    if (m && field) out.push({ instance: m[1]!, fields: { [field]: value } });
  }
  return out;
}

const DATE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The range `[lower, upper)` a FHIR date or dateTime stands for at its precision (a year, a month,
 * a day, a minute, a second). Without a zone, UTC.
 */
export function dateRange(value: string): { lower: Date; upper: Date } {
  const m = DATE.exec(value);
  if (!m) {
    // A `+` of a zone sent unescaped arrives as a space (form encoding): say so, the client can fix it.
    const hint = / \d{2}:\d{2}$/.test(value) ? ' (a + in a URL query is a space: send the zone as %2B)' : '';
    throw invalid(`${value} is not a FHIR date or dateTime${hint}`);
  }
  const [, y, mo, d, h, mi, s, frac, zone] = m;
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
  else upper.setTime(upper.getTime() + 1);
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
  const at = (d: Date) => d.toISOString();
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
 * Parses a search of `type` against {@link SEARCH_PARAMETERS}. Throws `SY_FHIR_NOT_SUPPORTED` for a
 * parameter, modifier, prefix or repetition not supported (under `lenient` handling it is left out
 * and named in `ignored` instead), `SY_FHIR_INVALID_SEARCH` for a value it cannot read. A `_count`
 * above the maximum gives the maximum.
 *
 * @example
 * ```ts
 * parseSearch('Appointment', [['patient-identifier', 'urn:switchyard:dp:patient|50'], ['date', 'ge2026-03-10']]);
 * // { patient: [{ instance: 'dp', fields: { id: '50' } }], start: [{ op: 'ge', at: '2026-03-10T00:00:00.000Z' }], count: 20, applied: [...], ignored: [] }
 * ```
 */
export function parseSearch(
  type: ReadableType,
  query: QueryPairs,
  handling: Handling = 'strict',
): ParsedSearch {
  const parsed: ParsedSearch = { count: PAGE_SIZE.default, applied: [], ignored: [] };
  const seen = new Set<string>();
  for (const [key, value] of query) {
    try {
      const used = parsePair(type, parsed, seen, key, value);
      parsed.applied.push([key, used]);
    } catch (error) {
      // Lenient: an unsupported parameter is left out (and named in `ignored`); an unreadable
      // value of a supported one is still refused, as R4's handling is about support only.
      if (handling === 'strict' || (error as SwitchyardError).code !== 'SY_FHIR_NOT_SUPPORTED') throw error;
      parsed.ignored.push(`${key}=${value}: ${(error as Error).message}`);
    }
  }
  return parsed;
}

/** Applies one query pair to `parsed`; returns its value as applied. */
function parsePair(
  type: ReadableType,
  parsed: ParsedSearch,
  seen: Set<string>,
  key: string,
  value: string,
): string {
  const specs = SEARCH_PARAMETERS[type];
  // `_format` is content negotiation, checked by the HTTP layer before the search (406 if not JSON).
  if (key === '_format') return value;
  const colon = key.indexOf(':');
  const name = colon === -1 ? key : key.slice(0, colon);
  if (name === '_count' || name === '_cursor') {
    if (colon !== -1 || seen.has(name)) throw notSupported(`${key}: modifiers and repeats are not supported`);
    seen.add(name);
    if (name === '_count') {
      const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!(n >= 1))
        throw invalid(`_count must be a whole number from 1 (at most ${PAGE_SIZE.max} are given)`);
      // R4: the server is not bound to return the number asked, but cannot return more.
      parsed.count = Math.min(n, PAGE_SIZE.max);
      return String(parsed.count);
    }
    const hubId = Buffer.from(value, 'base64url').toString('utf8');
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(hubId)) throw invalid('_cursor is not one this endpoint handed out');
    parsed.afterHubId = hubId;
    return value;
  }
  const spec = specs.find((s) => s.name === name);
  if (!spec) {
    throw notSupported(
      `the search parameter ${name} is not supported on ${type} (supported: ${specs.map((s) => s.name).join(', ')}, _count)`,
    );
  }
  if (colon !== -1) throw notSupported(`${key}: modifiers are not supported`);
  if (spec.type === 'token') {
    if (seen.has(name))
      throw notSupported(`${name} may be given once (use commas for any of several values)`);
    seen.add(name);
    parsed.patient = patientMatches(value);
  } else if (name === 'date') {
    parsed.start = [...(parsed.start ?? []), ...dateBounds(name, value)];
  } else {
    parsed.updated = [...(parsed.updated ?? []), ...dateBounds(name, value)];
  }
  return value;
}

/** The `_cursor` value that continues after an entity. */
export function cursorAfter(hubId: string): string {
  return Buffer.from(hubId, 'utf8').toString('base64url');
}
