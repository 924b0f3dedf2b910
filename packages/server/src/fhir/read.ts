/**
 * The read-only FHIR R4 side: read and search over the current-state projection, the
 * CapabilityStatement, and the per-subscription read tokens. Built on {@link FhirReadHost} only;
 * `http/routes/fhir.ts` is its HTTP face (docs/fhir.md#the-read-endpoint).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Bundle, BundleEntry, CapabilityStatement, OperationOutcome } from '@medplum/fhirtypes';
import { SwitchyardError } from '@switchyard/core';
import type { FhirEntity, FhirEntityQuery, FhirReadHost, ReadTokenOwner } from './host.ts';
import { FHIR_MAPPINGS, type FhirResource, toFhir } from './map.ts';
import {
  cursorAfter,
  cursorBefore,
  type Handling,
  type ParsedSearch,
  parseSearch,
  type QueryPairs,
  type ReadableType,
  resultParameters,
  SEARCH_PARAMETERS,
  TOTAL_ESTIMATE_COUNTED_BELOW,
} from './search.ts';

/** Who reads: the admin (everything) or a subscription's read token (what its filters cover). */
export type FhirReader = { kind: 'admin' } | ({ kind: 'token' } & ReadTokenOwner);

/** The prefix of read tokens, so a token is recognisable in a config or a leak scanner. */
export const READ_TOKEN_PREFIX = 'syfhir_';

const KIND_OF: Record<ReadableType, string> = { Appointment: 'appointment', DocumentReference: 'document' };
const READABLE: readonly ReadableType[] = ['Appointment', 'DocumentReference'];

/** The FHIR R4 version the endpoint speaks. */
export const FHIR_VERSION = '4.0.1';

/**
 * The media types of FHIR JSON a client may name in `_format` or `Accept` (R4 http.html#mime-type:
 * `json`, `application/json`, `application/fhir+json`; `application/json+fhir` is DSTU2's, which
 * clients still send). The endpoint produces nothing else.
 */
const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir']);

/**
 * Whether a request's `_format` values (which override `Accept`, R4 http.html#general) or else its
 * `Accept` header let the endpoint answer FHIR JSON; when not, the answer is 406.
 *
 * @example
 * ```ts
 * acceptsFhirJson(['json'], 'application/fhir+xml'); // true: _format wins
 * acceptsFhirJson([], 'application/fhir+xml'); // false
 * acceptsFhirJson([], 'text/html,application/xhtml+xml,*\/*;q=0.8'); // true (a browser)
 * acceptsFhirJson([], 'application/fhir+xml, application/json;q=0'); // false
 * ```
 */
export function acceptsFhirJson(formats: readonly string[], accept: string | undefined): boolean {
  // A media type has no space: one in `_format` is an unescaped `+` read as a space.
  const type = (v: string) => v.split(';')[0]!.trim().toLowerCase().replace(/ /g, '+');
  // R4 http.html#version-parameter: a `fhirVersion` the server does not speak is not acceptable.
  const version = (v: string) => /;\s*fhirVersion\s*=\s*"?([^;",\s]+)/i.exec(v)?.[1];
  const rightVersion = (v: string) => {
    const asked = version(v);
    return asked === undefined || FHIR_VERSION === asked || FHIR_VERSION.startsWith(`${asked}.`);
  };
  if (formats.length > 0) return formats.every((f) => JSON_FORMATS.has(type(f)) && rightVersion(f));
  if (accept === undefined || accept.trim() === '') return true;
  // RFC 9110 §12.5.1: a range with q=0 is one the client does not accept (`application/json;q=0`
  // beside XML is a client that would rather have a 406 than JSON), and the more specific range
  // wins, so `*/*` does not take back an `application/fhir+json;q=0`.
  const refused = (v: string) => /;\s*q\s*=\s*0(?:\.0{0,3})?\s*(?:;|$)/i.test(v);
  const ranges = accept.split(',');
  if (ranges.some((range) => type(range) === 'application/fhir+json' && refused(range))) return false;
  return ranges.some((range) => {
    const t = type(range);
    return (
      (JSON_FORMATS.has(t) || t === '*/*' || t === 'application/*') && rightVersion(range) && !refused(range)
    );
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function notFound(type: string, id: string): SwitchyardError {
  return new SwitchyardError('SY_FHIR_NOT_FOUND', `${type}/${id} is not known`);
}

/** True when `type` is one the endpoint reads. */
export function isReadableType(type: string): type is ReadableType {
  return (READABLE as readonly string[]).includes(type);
}

/**
 * The event types that can produce a resource type: a token's subscription sees a resource type
 * when one of them passes its type filter.
 */
function eventTypesOf(type: ReadableType): string[] {
  return FHIR_MAPPINGS.filter((m) => m.resourceType === type).map((m) => m.type);
}

/** Creates the read side over a host. */
export function createFhirReader(host: FhirReadHost, options: { startedAt?: Date } = {}) {
  const startedAt = (options.startedAt ?? new Date()).toISOString();

  /**
   * From which instances a reader may see resources of this type. A token whose subscription covers
   * no event type of the resource type is refused (`SY_FHIR_FORBIDDEN`, 403): an empty answer would
   * read as "no such records" to a client whose credential is simply not for them. The refusal
   * names only the token's own filter, nothing of the data.
   */
  function scope(reader: FhirReader, type: ReadableType): { instances?: readonly string[] } {
    if (reader.kind === 'admin') return {};
    if (!eventTypesOf(type).some((t) => host.typeMatches(t, reader.eventTypes))) {
      throw new SwitchyardError(
        'SY_FHIR_FORBIDDEN',
        `this read token's subscription ${reader.subscriptionId} covers no event type that maps to ${type} (its filter: ${reader.eventTypes.join(', ')})`,
      );
    }
    return reader.sources === null ? {} : { instances: reader.sources };
  }

  /**
   * The entity's resource. `meta.lastUpdated` is when the hub last changed it, as FHIR defines it
   * for a server's view, not the event's vendor time that a delivery carries: a client polling
   * `_lastUpdated=gt<latest read>` then sees a change whose notification arrived late.
   */
  function render(entity: FhirEntity, type: ReadableType): FhirResource | undefined {
    const resource = toFhir(entity.envelope)?.resource;
    if (resource?.resourceType !== type) return undefined;
    resource.meta = { ...resource.meta, lastUpdated: entity.updatedAt };
    return resource;
  }

  return {
    /**
     * The reader a bearer token stands for: a read token's subscription, or undefined for an
     * unknown token (the admin token is checked by the HTTP layer, in constant time).
     */
    async authenticate(token: string): Promise<FhirReader | undefined> {
      if (!token.startsWith(READ_TOKEN_PREFIX)) return undefined;
      const owner = await host.findReadToken(sha256(token));
      return owner ? { kind: 'token', ...owner } : undefined;
    },

    /**
     * Creates the subscription's read token, replacing (revoking) the one it had: returned once, only
     * its SHA-256 is kept.
     *
     * @example
     * ```ts
     * const { token } = await reader.createReadToken('ehr'); // 'syfhir_…'
     * ```
     */
    async createReadToken(
      subscriptionId: string,
    ): Promise<{ subscriptionId: string; token: string; hint: string }> {
      const token = `${READ_TOKEN_PREFIX}${randomBytes(24).toString('base64url')}`;
      const hint = `${token.slice(0, 11)}…`;
      if (!(await host.setReadToken(subscriptionId, sha256(token), hint))) {
        throw new SwitchyardError('SY_PIPELINE_NOT_FOUND', `subscription ${subscriptionId} not found`);
      }
      return { subscriptionId, token, hint };
    },

    /** Revokes the subscription's read token. */
    async deleteReadToken(subscriptionId: string): Promise<void> {
      if (!(await host.deleteReadToken(subscriptionId))) {
        throw new SwitchyardError(
          'SY_PIPELINE_NOT_FOUND',
          `subscription ${subscriptionId} has no FHIR read token`,
        );
      }
    },

    /**
     * One resource by id (the entity's hub id). Not found, of an instance the reader does not cover
     * and without a FHIR form are the same answer (`SY_FHIR_NOT_FOUND`), so nothing about other
     * instances leaks; a type the reader's token does not cover at all is `SY_FHIR_FORBIDDEN`.
     */
    async read(reader: FhirReader, type: ReadableType, id: string): Promise<FhirResource> {
      const visible = scope(reader, type);
      if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw notFound(type, id);
      const entity = await host.getEntity(`${KIND_OF[type]}/${id}`);
      if (!entity || (visible.instances && !visible.instances.includes(entity.instanceId)))
        throw notFound(type, id);
      const resource = render(entity, type);
      if (!resource) throw notFound(type, id);
      return resource;
    },

    /**
     * A search as a `searchset` Bundle: one page of `_count` entries (default 20) in the `_sort`
     * order (default by id) and a `next` link while more match, whose `_cursor` holds the last
     * entry's sort value and id; a `first` link (the search without `_cursor`) and, on a page after
     * the first, a `previous` link whose `_cursor` holds the first entry's (the store reads the page
     * before it backward, one query as for `next`); `total` when `_total=accurate|estimate` or
     * `_summary=count` (then with no entries). `baseUrl` is the endpoint's own URL (`https://hub.example/fhir/r4`).
     */
    async search(
      reader: FhirReader,
      type: ReadableType,
      query: QueryPairs,
      baseUrl: string,
      handling: Handling = 'strict',
    ): Promise<Bundle> {
      const visible = scope(reader, type);
      const parsed = parseSearch(type, query, handling);
      const self = searchUrl(baseUrl, type, parsed.applied);
      const outcome = ignoredOutcome(parsed.ignored);
      const kind = KIND_OF[type];
      const subjects = (ids: readonly string[]) => ids.map((id) => `${kind}/${id}`);
      const filter: FhirEntityQuery = {
        kind,
        ...(visible.instances ? { instances: visible.instances } : {}),
        ...(type === 'DocumentReference' ? { data: { domain: 'clinical' } } : {}),
        ...(parsed.patient ? { patient: parsed.patient } : {}),
        ...(parsed.ids && !parsed.ids.not ? { subjects: subjects(parsed.ids.values) } : {}),
        ...(parsed.ids?.not ? { notSubjects: subjects(parsed.ids.values) } : {}),
        ...(parsed.statuses ? { statuses: parsed.statuses } : {}),
        ...(parsed.start ? { start: parsed.start } : {}),
        ...(parsed.updated ? { updated: parsed.updated } : {}),
        limit: parsed.count + 1,
      };
      const total =
        parsed.countOnly || parsed.total !== 'none' ? await totalOf(host, filter, parsed.total) : undefined;
      if (parsed.countOnly) return searchset(self, outcome, undefined, total);
      const { by, descending } = parsed.sort;
      // A `previous` cursor: the entries before it, read in the other order (nearest first) and
      // turned back; `count + 1` says whether there is a page before that one.
      const backward = parsed.after?.backward === true;
      const found = await host.searchEntities({
        ...filter,
        order: { by, descending: backward ? !descending : descending },
        ...(parsed.after
          ? {
              after: {
                subject: `${kind}/${parsed.after.hubId}`,
                ...(parsed.after.key !== undefined ? { key: parsed.after.key } : {}),
              },
            }
          : {}),
      });
      const page = found.slice(0, parsed.count);
      if (backward) page.reverse();
      const more = found.length > parsed.count;
      const entries: BundleEntry[] = [...outcome];
      for (const entity of page) {
        const resource = render(entity, type);
        if (resource) {
          entries.push({ fullUrl: `${baseUrl}/${type}/${resource.id}`, resource, search: { mode: 'match' } });
        }
      }
      const withoutCursor = parsed.applied.filter(([k]) => k !== '_cursor');
      const at = (cursor: typeof cursorAfter, entity: (typeof page)[number] | undefined) =>
        entity &&
        searchUrl(baseUrl, type, [
          ...withoutCursor,
          [
            '_cursor',
            cursor(
              entity.subject.slice(entity.subject.indexOf('/') + 1),
              parsed.sort.label,
              by === 'subject' ? undefined : entity.orderKey,
            ),
          ],
        ]);
      // Forward, more found means a next page, and a cursor means a page before; backward, the
      // other way round (the cursor's own entry follows this page).
      const next = (backward || more) && at(cursorAfter, page[page.length - 1]);
      const previous = (backward ? more : parsed.after !== undefined) && at(cursorBefore, page[0]);
      return searchset(self, entries, next || undefined, total, {
        first: searchUrl(baseUrl, type, withoutCursor),
        ...(previous ? { previous } : {}),
      });
    },

    /**
     * The CapabilityStatement, generated from {@link SEARCH_PARAMETERS} and the readable types (the
     * same tables the search and read use).
     */
    capabilityStatement(baseUrl: string): CapabilityStatement {
      return {
        resourceType: 'CapabilityStatement',
        status: 'active',
        date: startedAt,
        kind: 'instance',
        software: { name: 'Switchyard' },
        implementation: {
          description: 'Switchyard hub: read-only FHIR R4 view of the current state',
          url: baseUrl,
        },
        fhirVersion: FHIR_VERSION,
        format: ['application/fhir+json'],
        rest: [
          {
            mode: 'server',
            security: {
              description:
                'Authorization: Bearer <admin token>, or a subscription read token (syfhir_…, POST /v1/subscriptions/{id}/fhir-read-token) that sees the instances and types its subscription filters cover.',
            },
            resource: READABLE.map((type) => ({
              type,
              interaction: [{ code: 'read' as const }, { code: 'search-type' as const }],
              // A read answers ETag W/"<meta.versionId>" and Last-Modified, and 304 to If-None-Match
              // / If-Modified-Since (routes/fhir.ts).
              conditionalRead: 'full-support' as const,
              documentation: resultParameters(type),
              searchParam: SEARCH_PARAMETERS[type].map((p) => ({
                name: p.name,
                type: p.type,
                documentation: p.documentation,
              })),
            })),
          },
        ],
      };
    },
  };
}

/** The read side of one process (what {@link createFhirReader} returns). */
export type FhirReadSide = ReturnType<typeof createFhirReader>;

/**
 * A search's `total`: counted, or for `_total=estimate` the database's estimate where it is large
 * ({@link TOTAL_ESTIMATE_COUNTED_BELOW}; `_summary=count` alone counts). A read token that sees only
 * some instances is always counted: the estimate of its view comes from the statistics of the
 * whole table, every instance's rows, and so would tell it something of the data it may not read.
 */
async function totalOf(
  host: FhirReadHost,
  filter: FhirEntityQuery,
  mode: ParsedSearch['total'],
): Promise<number> {
  if (mode === 'estimate' && filter.instances === undefined) {
    const estimated = await host.estimateEntities(filter);
    if (estimated >= TOTAL_ESTIMATE_COUNTED_BELOW) return estimated;
  }
  return host.countEntities(filter);
}

function searchUrl(baseUrl: string, type: string, query: QueryPairs): string {
  const params = new URLSearchParams(query.map(([k, v]): [string, string] => [k, v]));
  const q = params.toString();
  return `${baseUrl}/${type}${q ? `?${q}` : ''}`;
}

/**
 * The entry that tells a lenient search's client what was left out (R4: an OperationOutcome entry
 * with `search.mode` `outcome`); none when nothing was.
 */
function ignoredOutcome(ignored: readonly string[]): BundleEntry[] {
  if (ignored.length === 0) return [];
  const resource: OperationOutcome = {
    resourceType: 'OperationOutcome',
    issue: ignored.map((diagnostics) => ({
      severity: 'warning' as const,
      code: 'not-supported' as const,
      diagnostics: `ignored (Prefer: handling=lenient): ${diagnostics}`,
    })),
  };
  return [{ resource, search: { mode: 'outcome' } }];
}

function searchset(
  self: string,
  entry: BundleEntry[],
  next: string | undefined,
  total: number | undefined,
  paging: { first?: string; previous?: string } = {},
): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(total !== undefined ? { total } : {}),
    // R4 http.html#paging's order of the links: self, first, previous, next.
    link: [
      { relation: 'self', url: self },
      ...(paging.first ? [{ relation: 'first', url: paging.first }] : []),
      ...(paging.previous ? [{ relation: 'previous', url: paging.previous }] : []),
      ...(next ? [{ relation: 'next', url: next }] : []),
    ],
    // FHIR JSON has no empty array: a page with nothing (or a count) has no `entry`.
    ...(entry.length > 0 ? { entry } : {}),
  };
}

/** The issue type of an error answer, by HTTP status and the hub's error code. */
function issueCode(status: number, code: string): NonNullable<OperationOutcome['issue']>[number]['code'] {
  if (code === 'SY_FHIR_NOT_SUPPORTED' || status === 405 || status === 415 || status === 406)
    return 'not-supported';
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 408) return 'timeout';
  if (status === 413) return 'too-costly';
  if (status === 429) return 'throttled';
  if (status === 503) return 'transient';
  if (status >= 500) return 'exception';
  return 'invalid';
}

/**
 * An error answer of the FHIR endpoint as an OperationOutcome: the issue type from the status and
 * code, the hub's error code as a coding (docs/errors.md), the message as diagnostics.
 *
 * @example
 * ```ts
 * operationOutcome(400, 'SY_FHIR_NOT_SUPPORTED', 'the search parameter foo is not supported on Appointment');
 * ```
 */
export function operationOutcome(status: number, code: string, message: string): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: status >= 500 ? 'fatal' : 'error',
        code: issueCode(status, code),
        details: { coding: [{ system: 'https://switchyard.dev/problems', code }], text: message },
        diagnostics: message,
      },
    ],
  };
}
