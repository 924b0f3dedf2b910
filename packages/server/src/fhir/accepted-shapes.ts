/**
 * Accepted shapes: a shortcut in front of `@medplum/core`'s `validateResource` that gives exactly
 * its verdict on every resource, at a fraction of its cost when the resource has the shape of one
 * it already accepted.
 *
 * Why it is needed: validating one mapped Appointment took about 0.5 ms of the hub's CPU (medplum
 * walks every element the definitions declare, present or not, and evaluates the invariants with
 * its FHIRPath engine), most of what a FHIR delivery costs beside a CloudEvents one (docs/fhir.md,
 * "Validation"). The resources the hub maps differ from event to event mostly in values that no
 * rule of the validator compares, only checks one by one against their type's format (an id, a
 * comment, a time).
 *
 * How it stays exact. The key of a resource ({@link shapeKey}) keeps everything medplum's verdict
 * can depend on and abstracts the rest:
 * - the structure: every key, in order, every array's length, every value's JSON type and every
 *   `resourceType` (so the same element definitions are walked, with the same cardinalities,
 *   unknown properties and choice types);
 * - every string or number a FHIRPath invariant may read, verbatim: a leaf is kept when its name
 *   (or, for a choice element, its name's prefix) appears in the expression of any invariant medplum
 *   evaluates, or is the element the invariant is declared on; the names are collected at load from
 *   the very definitions the validator indexes ({@link shapeRules});
 * - of every other string or number, which of medplum's own primitive checks it passes (empty,
 *   blank, longer than 1 MB, each of `validationRegexes`, a real calendar day; integer, ranges):
 *   medplum checks such a value only against its element's type, which the structure fixes.
 *
 * A few names that invariants do read are abstracted where the analysis below shows that no
 * invariant reads them there ({@link ANALYSED_INVARIANTS}): `id`, `start` and `end` of the resource
 * itself, `meta.versionId` and `meta.lastUpdated` of the resource itself, and `value` of an
 * Identifier or ContactPoint. At load, each is kept only if the invariants mentioning it are still
 * exactly the analysed ones (same keys, same expressions), and `identifier` / `telecom` are still
 * typed Identifier / ContactPoint everywhere; otherwise that name is simply kept verbatim.
 *
 * Two resources with the same key get the same verdict from medplum, so the key of every resource
 * medplum accepted is remembered, and a resource whose key is known is accepted without walking it.
 * Anything else, and every refusal, goes to medplum, so its messages are the ones reported.
 */
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/** What medplum exports that the key is built from (its own primitive checks). */
export interface MedplumPrimitiveChecks {
  validationRegexes: Record<string, RegExp>;
  isValidCalendarDate(value: string): boolean;
}

/** What the shape key of a resource keeps, derived from the indexed definitions. */
export interface ShapeRules {
  /** Leaf names kept verbatim (read by some invariant, or typed base64Binary). */
  readonly literal: ReadonlySet<string>;
  /** Names of choice elements read by some invariant (`value` for `value[x]`): their typed keys are kept. */
  readonly literalPrefixes: readonly string[];
  /** Names abstracted on the resource itself although invariants mention them elsewhere. */
  readonly rootExempt: ReadonlySet<string>;
  /** Names abstracted in the resource's own `meta`. */
  readonly metaExempt: ReadonlySet<string>;
  /** Names abstracted in an Identifier or ContactPoint (`identifier`, `telecom`). */
  readonly partyExempt: ReadonlySet<string>;
  readonly regexes: readonly RegExp[];
  readonly isValidCalendarDate: (value: string) => boolean;
}

/**
 * Constraint keys medplum never evaluates (`skippedConstraintKeys` in its validator, not exported):
 * they are left out of the names collected. {@link skipsUnreferencedContained} checks at load that
 * dom-3 is still skipped, the one of them that reads values (ele-1 counts children; org-1 and
 * sdf-19 are on resource types the hub does not index).
 */
const MEDPLUM_SKIPPED: ReadonlySet<string> = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);

/**
 * Every invariant that mentions a name abstracted in some place, as R4 publishes it, and why none
 * of them reads that name's value there:
 * - ref-1 reads `id` of the contained resources only (`%rootResource.contained.id`), never the
 *   resource's own;
 * - dom-4 tests only that contained resources have no `meta.versionId` / `meta.lastUpdated`; bdl-7
 *   reads `meta.versionId` of a Bundle's entries, never the Bundle's own;
 * - per-1 compares `start` and `end` of a Period (an element, never the resource itself); app-2 and
 *   app-3 test only that the Appointment's `start` and `end` exist;
 * - `value`: ext-1 and inv-1 test only that an Extension's / a parameter's `value[x]` exists; cpt-2
 *   that a ContactPoint's exists; bdl-9 that a document Bundle's `identifier.value` exists;
 *   age-1, cnt-3, dis-1, drt-1 and mqty-1 compare the `value` of a Quantity (Age, Count, Distance,
 *   Duration, MoneyQuantity), never of an Identifier or ContactPoint.
 */
export const ANALYSED_INVARIANTS: Readonly<Record<string, string>> = Object.freeze({
  'ref-1':
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
  'dom-4': 'contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()',
  'bdl-7':
    "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()",
  'per-1': 'start.hasValue().not() or end.hasValue().not() or (start <= end)',
  'app-2': 'start.exists() = end.exists()',
  'app-3': "(start.exists() and end.exists()) or (status in ('proposed' | 'cancelled' | 'waitlist'))",
  'ext-1': 'extension.exists() != value.exists()',
  'inv-1':
    '(part.exists() and value.empty() and resource.empty()) or (part.empty() and (value.exists() xor resource.exists()))',
  'cpt-2': 'value.empty() or system.exists()',
  'bdl-9': "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
  'age-1':
    '(code.exists() or value.empty()) and (system.empty() or system = %ucum) and (value.empty() or value.hasValue().not() or value > 0)',
  'cnt-3':
    "(code.exists() or value.empty()) and (system.empty() or system = %ucum) and (code.empty() or code = '1') and (value.empty() or value.hasValue().not() or value.toString().contains('.').not())",
  'dis-1': '(code.exists() or value.empty()) and (system.empty() or system = %ucum)',
  'drt-1': 'code.exists() implies ((system = %ucum) and value.exists())',
  'mqty-1': "(code.exists() or value.empty()) and (system.empty() or system = 'urn:iso:std:iso:4217')",
});

/** Where each abstracted name may be abstracted, and the invariants analysed for it. */
const EXEMPTIONS: ReadonlyArray<{ name: string; where: 'root' | 'meta' | 'party'; invariants: string[] }> = [
  { name: 'id', where: 'root', invariants: ['ref-1'] },
  { name: 'start', where: 'root', invariants: ['per-1', 'app-2', 'app-3'] },
  { name: 'end', where: 'root', invariants: ['per-1', 'app-2', 'app-3'] },
  { name: 'versionId', where: 'meta', invariants: ['dom-4', 'bdl-7'] },
  { name: 'lastUpdated', where: 'meta', invariants: ['dom-4'] },
  {
    name: 'value',
    where: 'party',
    invariants: ['ext-1', 'inv-1', 'cpt-2', 'bdl-9', 'age-1', 'cnt-3', 'dis-1', 'drt-1', 'mqty-1'],
  },
];

/** Elements whose objects are Identifiers / ContactPoints wherever the name occurs. */
const PARTY_TYPES: Readonly<Record<string, string>> = { identifier: 'Identifier', telecom: 'ContactPoint' };

/** FHIRPath functions that read values without naming them: an invariant using one disables keys. */
const UNNAMED_READS = /\b(descendants|children|repeat|resolve|allDescendants)\s*\(/;

const NAME = /[A-Za-z_][A-Za-z0-9_]*/g;

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

/**
 * The rules of {@link shapeKey} for the definitions the validator indexes, or undefined when they
 * hold something the key cannot account for (an invariant that reads values it does not name,
 * fixed or pattern values, slices): then every resource goes to medplum.
 *
 * @example
 * ```ts
 * const rules = shapeRules([typesBundle, resourcesBundle], medplum);
 * rules?.literal.has('status'); // true: app-3 compares it
 * ```
 */
export function shapeRules(
  bundles: readonly Bundle[],
  checks: MedplumPrimitiveChecks,
): ShapeRules | undefined {
  // `length`: medplum's emptiness test reads an object's `length` property, whatever its type.
  const literal = new Set<string>(['resourceType', 'length']);
  const prefixes = new Set<string>();
  /** name → the invariants ([key, expression]) that mention it, wherever they are declared. */
  const readers = new Map<string, Array<[string, string]>>();
  const partyTypesHold = { identifier: true, telecom: true } as Record<string, boolean>;
  const read = (name: string, key: string, expression: string) => {
    const list = readers.get(name) ?? [];
    readers.set(name, list);
    list.push([key, expression]);
  };
  for (const bundle of bundles) {
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource as StructureDefinition | undefined;
      if (sd?.resourceType !== 'StructureDefinition') continue;
      for (const element of sd.snapshot?.element ?? ([] as ElementDefinition[])) {
        const segment = lastSegment(element.path ?? '');
        const name = segment.endsWith('[x]') ? segment.slice(0, -3) : segment;
        if (element.sliceName) return undefined;
        if (Object.keys(element).some((k) => k.startsWith('fixed') || k.startsWith('pattern'))) {
          literal.add(name);
          if (segment.endsWith('[x]')) prefixes.add(name);
        }
        if (element.type?.some((t) => t.code === 'base64Binary')) {
          literal.add(name);
          if (segment.endsWith('[x]')) prefixes.add(name);
        }
        if (name in PARTY_TYPES && element.path?.includes('.')) {
          const types = element.type?.map((t) => t.code) ?? [];
          if (types.length !== 1 || types[0] !== PARTY_TYPES[name]) partyTypesHold[name] = false;
        }
        for (const c of element.constraint ?? []) {
          if (c.severity !== 'error' || MEDPLUM_SKIPPED.has(c.key ?? '')) continue;
          const expression = c.expression ?? '';
          if (UNNAMED_READS.test(expression)) return undefined;
          // The element the invariant is declared on is read as $this (Narrative.div: htmlChecks()).
          const names = new Set([name, ...(expression.replace(/'(?:[^'\\]|\\.)*'/g, '').match(NAME) ?? [])]);
          for (const n of names) {
            read(n, c.key ?? '', expression);
            literal.add(n);
            prefixes.add(n);
          }
        }
      }
    }
  }
  const exempt = { root: new Set<string>(), meta: new Set<string>(), party: new Set<string>() };
  for (const e of EXEMPTIONS) {
    if (e.where === 'party' && !Object.values(partyTypesHold).every(Boolean)) continue;
    const mentions = readers.get(e.name) ?? [];
    const analysed = mentions.every(
      ([key, expression]) => e.invariants.includes(key) && ANALYSED_INVARIANTS[key] === expression,
    );
    if (analysed) exempt[e.where].add(e.name);
  }
  return {
    literal,
    literalPrefixes: [...prefixes],
    rootExempt: exempt.root,
    metaExempt: exempt.meta,
    partyExempt: exempt.party,
    regexes: Object.values(checks.validationRegexes),
    isValidCalendarDate: checks.isValidCalendarDate,
  };
}

const ROOT = 0;
const META = 1;
const PARTY = 2;
const OTHER = 3;
type Where = typeof ROOT | typeof META | typeof PARTY | typeof OTHER;

/** FHIR's longest string (medplum refuses longer ones). */
const MAX_STRING = 1024 * 1024;
const INT_MIN = -2_147_483_648;
const INT_MAX = 2_147_483_647;

/** Strings whose class is remembered: at most this long, this many (a few MiB at most). */
const CACHED_STRING_MAX = 256;
const CLASSES_MAX = 10_000;

/** Which of medplum's string checks a value passes, as a short code. */
function stringClass(s: string, rules: ShapeRules): string {
  let bits = s === '' ? 1 : 0;
  if (!s.trim()) bits |= 2;
  if (s.length > MAX_STRING) bits |= 4;
  let bit = 8;
  for (const regex of rules.regexes) {
    if (regex.test(s)) bits |= bit;
    bit *= 2;
  }
  if (rules.isValidCalendarDate(s)) bits += bit;
  return bits.toString(36);
}

/** Which of medplum's number checks a value passes, as a short code. */
function numberClass(n: number): string {
  let bits = Number.isFinite(n) ? 1 : 0;
  if (Number.isInteger(n)) bits |= 2;
  if (n >= INT_MIN) bits |= 4;
  if (n <= INT_MAX) bits |= 8;
  if (n >= 1) bits |= 16;
  if (n >= 0) bits |= 32;
  return bits.toString(36);
}

class KeyWriter {
  private out = '';
  private readonly literalCache = new Map<string, boolean>();
  /**
   * Classes of short strings seen lately: most values of a resource (names, codes' displays, the
   * parties) recur from event to event, and 14 regular expressions per value are most of a key.
   */
  private readonly classes = new Map<string, string>();
  private readonly rules: ShapeRules;

  constructor(rules: ShapeRules) {
    this.rules = rules;
  }

  key(resource: object): string {
    this.out = '';
    this.object(resource as Record<string, unknown>, ROOT);
    return this.out;
  }

  private keptVerbatim(name: string, where: Where): boolean {
    const r = this.rules;
    if (where === ROOT && r.rootExempt.has(name)) return false;
    if (where === META && r.metaExempt.has(name)) return false;
    if (where === PARTY && r.partyExempt.has(name)) return false;
    let kept = this.literalCache.get(name);
    if (kept === undefined) {
      kept =
        r.literal.has(name) ||
        r.literalPrefixes.some(
          (p) => name.length > p.length && name.startsWith(p) && /[A-Z]/.test(name.charAt(p.length)),
        );
      if (this.literalCache.size < 10_000) this.literalCache.set(name, kept);
    }
    return kept;
  }

  private stringClass(s: string): string {
    if (s.length > CACHED_STRING_MAX) return stringClass(s, this.rules);
    let c = this.classes.get(s);
    if (c === undefined) {
      c = stringClass(s, this.rules);
      if (this.classes.size >= CLASSES_MAX) this.classes.clear();
      this.classes.set(s, c);
    }
    return c;
  }

  private object(obj: Record<string, unknown>, where: Where): void {
    this.out += '{';
    for (const name in obj) {
      this.out += `${name.length}:${name}`;
      const child: Where =
        where === ROOT && name === 'meta'
          ? META
          : name === 'identifier' || name === 'telecom'
            ? PARTY
            : OTHER;
      this.value(obj[name], name, where, child);
    }
    this.out += '}';
  }

  /** `where`: where the property is; `child`: where the objects in its value are. */
  private value(v: unknown, name: string, where: Where, child: Where): void {
    switch (typeof v) {
      case 'string':
        this.out += this.keptVerbatim(name, where) ? JSON.stringify(v) : `s${this.stringClass(v)};`;
        return;
      case 'number':
        this.out += this.keptVerbatim(name, where) ? `n${v};` : `m${numberClass(v)};`;
        return;
      case 'boolean':
        this.out += v ? 'T' : 'F';
        return;
      case 'undefined':
        this.out += 'U';
        return;
      case 'object':
        if (v === null) this.out += 'N';
        else if (Array.isArray(v)) {
          this.out += '[';
          for (const item of v) this.value(item, name, where, child);
          this.out += ']';
        } else this.object(v as Record<string, unknown>, child);
        return;
      default:
        // A function, symbol or bigint is not JSON: never keyed, always sent to medplum.
        throw new NotKeyable();
    }
  }
}

class NotKeyable extends Error {}

/** One key writer (and its caches of string classes) per set of rules. */
const writers = new WeakMap<ShapeRules, KeyWriter>();

/**
 * The shape key of a resource under `rules` (see the file comment), or undefined for a value JSON
 * cannot carry.
 *
 * @example
 * ```ts
 * shapeKey({ resourceType: 'Appointment', id: 'a1', status: 'booked' }, rules);
 * // '{12:resourceType"Appointment"2:ids…;6:status"booked"}'
 * ```
 */
export function shapeKey(resource: object, rules: ShapeRules): string | undefined {
  let writer = writers.get(rules);
  if (writer === undefined) {
    writer = new KeyWriter(rules);
    writers.set(rules, writer);
  }
  try {
    return writer.key(resource);
  } catch (error) {
    if (error instanceof NotKeyable) return undefined;
    throw error;
  }
}

/**
 * True when medplum still skips dom-3 (a contained resource must be referenced), which reads the
 * values of every reference and uri in the resource and so is left out of {@link shapeRules}: an
 * Appointment with an unreferenced contained Patient must pass.
 */
export function skipsUnreferencedContained(validate: (resource: never) => unknown[]): boolean {
  const issues = validate({
    resourceType: 'Appointment',
    contained: [{ resourceType: 'Patient', id: 'unreferenced' }],
    status: 'proposed',
    participant: [{ status: 'needs-action', type: [{ text: 'x' }] }],
  } as never);
  return issues.length === 0;
}

/**
 * The keys of resources medplum accepted, newest last, bounded. A process validates few distinct
 * shapes (an event type, status, service and location give one), so a thousand is plenty.
 */
export class AcceptedShapes {
  private readonly keys = new Set<string>();
  private readonly max: number;

  constructor(max = 1000) {
    this.max = max;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    if (this.keys.size >= this.max) this.keys.delete(this.keys.values().next().value!);
    this.keys.add(key);
  }
}
