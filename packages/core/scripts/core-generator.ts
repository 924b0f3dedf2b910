/**
 * Generates, from the JSON Schemas in `packages/core/schemas` (the source of truth):
 * - `src/generated/entities.ts`: the shared definitions and entity types,
 * - `src/generated/envelope.ts`: the CloudEvents envelope type,
 * - `src/generated/events.ts`: one data type per normalized event, `NormalizedEventType`,
 *   `EventDataMap` and the `EVENT_TYPES` table,
 * - `src/generated/schemas.ts`: the schemas as JSON module imports plus their ids, for the validators,
 * - `docs/events.md`: the event catalog.
 *
 * Types come from json-schema-to-typescript, one compile per named schema: a `$ref` to another named
 * schema becomes a reference to its type instead of a copy, so each type is declared exactly once.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import { type GeneratedFile, type Generator, repoRoot } from './codegen.ts';

type Schema = { [key: string]: unknown };

const CORE = 'packages/core';
const GENERATED = `${CORE}/src/generated`;

/**
 * Catalog order (lifecycle order, as in the design's mapping table). Every file in
 * `schemas/events` must be listed here and every entry must have a file.
 */
export const EVENT_ORDER = [
  'appointment.booking_requested',
  'appointment.reschedule_requested',
  'appointment.created',
  'appointment.confirmed',
  'appointment.rescheduled',
  'appointment.updated',
  'appointment.cancelled',
  'appointment.restored',
  'appointment.arrived',
  'appointment.checked_in',
  'appointment.in_progress',
  'appointment.completed',
  'appointment.no_show',
  'appointment.status_reverted',
  'slot.blocked',
  'slot.block_moved',
  'slot.unblocked',
  'slot.changed',
  'schedule.updated',
  'schedule.activated',
  'schedule.deactivated',
  'document.created',
  'document.updated',
  'document.deleted',
  'asset.created',
  'asset.updated',
  'asset.deleted',
  'process.completed',
  'command.succeeded',
  'command.failed',
  'hub.test',
] as const;

/**
 * Catalog order of the command types (`schemas/commands`): every file there must be listed here and
 * every entry must have a file.
 */
export const COMMAND_ORDER = [
  'appointment.book',
  'appointment.cancel',
  'appointment.reschedule',
  'appointment.confirm',
  'appointment.mark_arrived',
  'appointment.mark_no_show',
  'appointment.clear_presence',
  'appointment.update',
  'slot.block',
  'slot.move_block',
  'slot.unblock',
] as const;

/** A schema file with where it lives. */
export interface SchemaFile {
  /** Repository-relative path. */
  path: string;
  id: string;
  schema: Schema;
}

/** An event schema file, with its type (from the file name). */
export interface EventSchemaFile extends SchemaFile {
  type: string;
}

/** A command schema file, with its type (from the file name). */
export interface CommandSchemaFile extends SchemaFile {
  type: string;
}

/** Everything under `packages/core/schemas`, read from disk. */
export interface CoreSchemaSet {
  common: SchemaFile;
  envelope: SchemaFile;
  /** Sorted by file name. */
  entities: SchemaFile[];
  /** In {@link EVENT_ORDER}. */
  events: EventSchemaFile[];
  /** In {@link COMMAND_ORDER}. */
  commands: CommandSchemaFile[];
}

async function readSchema(root: string, path: string): Promise<SchemaFile> {
  const schema = JSON.parse(await readFile(join(root, path), 'utf8')) as Schema;
  if (typeof schema.$id !== 'string') throw new Error(`${path} has no $id`);
  return { path, id: schema.$id, schema };
}

/**
 * Reads every core schema from disk and checks the event files against {@link EVENT_ORDER}.
 *
 * @example
 * ```ts
 * const set = await loadCoreSchemas();
 * set.events.map((e) => e.type); // ['appointment.booking_requested', ...]
 * ```
 */
export async function loadCoreSchemas(root: string = repoRoot): Promise<CoreSchemaSet> {
  const list = async (dir: string) =>
    (await readdir(join(root, dir))).filter((f) => f.endsWith('.schema.json')).sort();
  const common = await readSchema(root, `${CORE}/schemas/common.schema.json`);
  const envelope = await readSchema(root, `${CORE}/schemas/envelope.schema.json`);
  const entities = await Promise.all(
    (await list(`${CORE}/schemas/entities`)).map((f) => readSchema(root, `${CORE}/schemas/entities/${f}`)),
  );
  const eventFiles = await list(`${CORE}/schemas/events`);
  const types = eventFiles.map((f) => f.slice(0, -'.schema.json'.length));
  const order: readonly string[] = EVENT_ORDER;
  const unlisted = types.filter((t) => !order.includes(t));
  const missing = order.filter((t) => !types.includes(t));
  if (unlisted.length > 0 || missing.length > 0) {
    throw new Error(
      `schemas/events and EVENT_ORDER in ${CORE}/scripts/core-generator.ts disagree: ` +
        `not listed: [${unlisted.join(', ')}], no file: [${missing.join(', ')}]`,
    );
  }
  const events: EventSchemaFile[] = [];
  for (const type of EVENT_ORDER) {
    const file = await readSchema(root, `${CORE}/schemas/events/${type}.schema.json`);
    const expectedId = `https://switchyard.dev/schemas/events/${type}.json`;
    if (file.id !== expectedId) throw new Error(`${file.path}: $id must be ${expectedId}`);
    events.push({ ...file, type });
  }
  const commandTypes = (await list(`${CORE}/schemas/commands`)).map((f) =>
    f.slice(0, -'.schema.json'.length),
  );
  const commandOrder: readonly string[] = COMMAND_ORDER;
  const unlistedCommands = commandTypes.filter((t) => !commandOrder.includes(t));
  const missingCommands = commandOrder.filter((t) => !commandTypes.includes(t));
  if (unlistedCommands.length > 0 || missingCommands.length > 0) {
    throw new Error(
      `schemas/commands and COMMAND_ORDER in ${CORE}/scripts/core-generator.ts disagree: ` +
        `not listed: [${unlistedCommands.join(', ')}], no file: [${missingCommands.join(', ')}]`,
    );
  }
  const commands: CommandSchemaFile[] = [];
  for (const type of COMMAND_ORDER) {
    const file = await readSchema(root, `${CORE}/schemas/commands/${type}.schema.json`);
    const expectedId = `https://switchyard.dev/schemas/commands/${type}.json`;
    if (file.id !== expectedId) throw new Error(`${file.path}: $id must be ${expectedId}`);
    commands.push({ ...file, type });
  }
  return { common, envelope, entities, events, commands };
}

/** `appointment.no_show` → `AppointmentNoShow`. */
function pascalCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** The entity name an event is about (`x-entity`), e.g. `appointment`, `approval_request`, `hub`. */
function entityOf(event: SchemaFile): string {
  const entity = event.schema['x-entity'];
  if (typeof entity !== 'string') throw new Error(`${event.path} has no x-entity`);
  return entity;
}

function vendorEventsOf(event: SchemaFile): string[] {
  const list = event.schema['x-vendor-events'];
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) {
    throw new Error(`${event.path}: x-vendor-events must be an array of strings`);
  }
  return list as string[];
}

function stringField(file: SchemaFile, key: 'title' | 'description'): string {
  const value = file.schema[key];
  if (typeof value !== 'string' || value === '') throw new Error(`${file.path} has no ${key}`);
  return value;
}

function firstExample(file: SchemaFile): Schema {
  const examples = file.schema.examples;
  if (!Array.isArray(examples) || examples.length === 0) throw new Error(`${file.path} has no examples`);
  return examples[0] as Schema;
}

/** Resolves `$ref`s across the core schemas by absolute URI and JSON pointer. */
class Resolver {
  readonly #byId = new Map<string, Schema>();
  /** Absolute URI (with fragment) → the TypeScript type name declared for it. */
  readonly names = new Map<string, string>();

  constructor(set: CoreSchemaSet) {
    for (const file of [set.common, set.envelope, ...set.entities, ...set.events, ...set.commands])
      this.#byId.set(file.id, file.schema);
    const defs = (set.common.schema.$defs ?? {}) as Record<string, Schema>;
    for (const [key, def] of Object.entries(defs)) {
      if (typeof def.title === 'string') this.names.set(`${set.common.id}#/$defs/${key}`, def.title);
    }
    for (const entity of set.entities) this.names.set(entity.id, stringField(entity, 'title'));
  }

  absolute(ref: string, base: string): string {
    const url = new URL(ref, base);
    return url.hash === '' || url.hash === '#' ? url.href.replace(/#$/, '') : url.href;
  }

  lookup(uri: string): { schema: Schema; base: string } {
    const [id, fragment = ''] = uri.split('#');
    const root = this.#byId.get(id!);
    if (!root) throw new Error(`unresolvable $ref ${uri}`);
    let node: unknown = root;
    for (const token of fragment.split('/').filter(Boolean)) {
      const key = decodeURIComponent(token).replaceAll('~1', '/').replaceAll('~0', '~');
      node = (node as Record<string, unknown> | undefined)?.[key];
    }
    if (typeof node !== 'object' || node === null) throw new Error(`unresolvable $ref ${uri}`);
    return { schema: node as Schema, base: id! };
  }
}

const DROPPED_KEYS = new Set(['$schema', '$id', '$defs', '$comment', 'examples', 'title']);

/**
 * Turns a schema into what json-schema-to-typescript should see: `$ref`s to named schemas become
 * `tsType` references (collected in `used`), other `$ref`s are inlined, annotations it does not need
 * are dropped.
 */
function toTsSchema(node: unknown, base: string, resolver: Resolver, used: Set<string>): unknown {
  if (Array.isArray(node)) return node.map((item) => toTsSchema(item, base, resolver, used));
  if (typeof node !== 'object' || node === null) return node;
  const schema = node as Schema;
  if (typeof schema.$ref === 'string') {
    const uri = resolver.absolute(schema.$ref, base);
    const name = resolver.names.get(uri);
    const rest = toTsSchema({ ...schema, $ref: undefined }, base, resolver, used) as Schema;
    if (name) {
      used.add(name);
      return { ...rest, tsType: name };
    }
    const target = resolver.lookup(uri);
    const inlined = toTsSchema(target.schema, target.base, resolver, used) as Schema;
    // A description next to the $ref describes this use better than the target's own.
    return { ...inlined, ...rest };
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (value === undefined || DROPPED_KEYS.has(key) || key.startsWith('x-')) continue;
    if (key === 'properties' && typeof value === 'object' && value !== null) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, toTsSchema(v, base, resolver, used)]),
      );
    } else {
      out[key] = toTsSchema(value, base, resolver, used);
    }
  }
  return out;
}

const COMPILE_OPTIONS = {
  bannerComment: '',
  // Closed unless a schema says otherwise, which also keeps allOf refinements free of index signatures.
  additionalProperties: false,
  declareExternallyReferenced: false,
  format: true,
  unknownAny: true,
  strictIndexSignatures: false,
} as const;

async function compileNamed(name: string, schema: Schema, description?: string): Promise<string> {
  const root = { ...schema, title: name, ...(description === undefined ? {} : { description }) };
  const out = await compile(root as JSONSchema, name, COMPILE_OPTIONS);
  return out.trim();
}

function banner(sources: string): string {
  return `/* Generated from ${sources} by pnpm generate. Do not edit. */`;
}

async function entitiesFile(set: CoreSchemaSet, resolver: Resolver): Promise<GeneratedFile> {
  const parts: string[] = [];
  const defs = (set.common.schema.$defs ?? {}) as Record<string, Schema>;
  for (const [key, def] of Object.entries(defs)) {
    const name = resolver.names.get(`${set.common.id}#/$defs/${key}`);
    if (!name) continue;
    parts.push(await compileNamed(name, toTsSchema(def, set.common.id, resolver, new Set()) as Schema));
  }
  for (const entity of set.entities) {
    const name = resolver.names.get(entity.id)!;
    parts.push(await compileNamed(name, toTsSchema(entity.schema, entity.id, resolver, new Set()) as Schema));
  }
  return {
    path: `${GENERATED}/entities.ts`,
    content: `${banner(`${CORE}/schemas/common.schema.json and entities/*.schema.json`)}\n\n${parts.join('\n\n')}\n`,
  };
}

async function envelopeFile(set: CoreSchemaSet, resolver: Resolver): Promise<GeneratedFile> {
  const schema = toTsSchema(set.envelope.schema, set.envelope.id, resolver, new Set()) as Schema;
  const body = await compileNamed(stringField(set.envelope, 'title'), schema);
  return { path: `${GENERATED}/envelope.ts`, content: `${banner(set.envelope.path)}\n\n${body}\n` };
}

/**
 * Makes `required` names of an allOf refinement typed: json-schema-to-typescript ignores a required
 * name without a property schema (or types the empty one `{}` as unknown), so point it at the
 * referenced entity's own property type.
 */
function refineRequired(event: EventSchemaFile, resolver: Resolver): Schema {
  const schema = structuredClone(event.schema);
  const allOf = schema.allOf as Schema[] | undefined;
  if (!allOf) return schema;
  const refBranch = allOf.find((b) => typeof b.$ref === 'string');
  const entityName = refBranch
    ? resolver.names.get(resolver.absolute(refBranch.$ref as string, event.id))
    : undefined;
  for (const branch of allOf) {
    if (branch === refBranch || !Array.isArray(branch.required)) continue;
    if (!entityName)
      throw new Error(`${event.path}: an allOf refinement needs a $ref to an entity beside it`);
    const properties = { ...((branch.properties ?? {}) as Schema) };
    for (const name of branch.required as string[]) {
      // `{}` names a required field for ajv's strict mode only; its type is the entity's.
      const declared = properties[name] as Schema | undefined;
      if (declared === undefined || Object.keys(declared).length === 0)
        properties[name] = { tsType: `NonNullable<${entityName}[${JSON.stringify(name)}]>` };
    }
    branch.properties = properties;
  }
  return schema;
}

/** `appointment.no_show` → `AppointmentNoShowData`. */
function dataTypeName(type: string): string {
  return `${pascalCase(type)}Data`;
}

function renderEventTypes(set: CoreSchemaSet): string {
  const entities = [...new Set(set.events.map(entityOf))];
  const lines: string[] = [];
  lines.push('/** Every normalized event type. */');
  lines.push(
    `export type NormalizedEventType =\n${set.events.map((e) => `  | ${JSON.stringify(e.type)}`).join('\n')};`,
  );
  lines.push('');
  lines.push('/** What an event is about (the `<entity>` part of its `subject`). */');
  lines.push(`export type EventEntity = ${entities.map((e) => JSON.stringify(e)).join(' | ')};`);
  lines.push('');
  lines.push('/** The `data` type of each normalized event type. */');
  lines.push('export interface EventDataMap {');
  for (const e of set.events) lines.push(`  ${JSON.stringify(e.type)}: ${dataTypeName(e.type)};`);
  lines.push('}');
  lines.push('');
  lines.push('/** One row of {@link EVENT_TYPES}. */');
  lines.push('export interface EventTypeInfo {');
  lines.push('  readonly type: NormalizedEventType;');
  lines.push('  readonly entity: EventEntity;');
  lines.push('  /** A short human title. */');
  lines.push('  readonly title: string;');
  lines.push('  /** What the event means for a subscriber. */');
  lines.push('  readonly description: string;');
  lines.push('  /** The vendor events that produce it, e.g. "Docplanner booking-moved". */');
  lines.push('  readonly vendorEvents: readonly string[];');
  lines.push("  /** The `$id` of the schema of the event's `data`. */");
  lines.push('  readonly schemaId: string;');
  lines.push('}');
  lines.push('');
  lines.push('/** Every normalized event type with what it means, in catalog order. */');
  lines.push('export const EVENT_TYPES = [');
  for (const e of set.events) {
    lines.push('  {');
    lines.push(`    type: ${JSON.stringify(e.type)},`);
    lines.push(`    entity: ${JSON.stringify(entityOf(e))},`);
    lines.push(`    title: ${JSON.stringify(stringField(e, 'title'))},`);
    lines.push(`    description:\n      ${JSON.stringify(stringField(e, 'description'))},`);
    const vendor = vendorEventsOf(e);
    lines.push(
      `    vendorEvents: [${vendor.length === 0 ? '' : `\n${vendor.map((v) => `      ${JSON.stringify(v)},`).join('\n')}\n    `}],`,
    );
    lines.push(`    schemaId: ${JSON.stringify(e.id)},`);
    lines.push('  },');
  }
  lines.push('] as const satisfies readonly EventTypeInfo[];');
  return lines.join('\n');
}

async function eventsFile(set: CoreSchemaSet, resolver: Resolver): Promise<GeneratedFile> {
  const used = new Set<string>();
  const parts: string[] = [];
  for (const event of set.events) {
    const schema = toTsSchema(refineRequired(event, resolver), event.id, resolver, used) as Schema;
    parts.push(await compileNamed(dataTypeName(event.type), schema, stringField(event, 'description')));
  }
  const imports = [...used].sort();
  const header = [
    banner(`${CORE}/schemas/events/*.schema.json`),
    '',
    imports.length > 0 ? `import type { ${imports.join(', ')} } from "./entities.ts";\n` : '',
  ].join('\n');
  return {
    path: `${GENERATED}/events.ts`,
    content: `${header}\n${parts.join('\n\n')}\n\n${renderEventTypes(set)}\n`,
  };
}

function schemasFile(set: CoreSchemaSet): GeneratedFile {
  const fromGenerated = (path: string) => `../../${path.slice(`${CORE}/`.length)}`;
  const imports: string[] = [];
  const names: string[] = [];
  const add = (file: SchemaFile, name: string) => {
    imports.push(`import ${name} from ${JSON.stringify(fromGenerated(file.path))} with { type: "json" };`);
    names.push(name);
  };
  add(set.common, 'commonSchema');
  add(set.envelope, 'envelopeSchema');
  const entityKey = (file: SchemaFile) =>
    file.path.split('/').pop()!.replace('.schema.json', '').replaceAll('-', '_');
  for (const entity of set.entities)
    add(entity, `${pascalCase(entityKey(entity)).replace(/^./, (c) => c.toLowerCase())}EntitySchema`);
  for (const event of set.events)
    add(event, `${pascalCase(event.type).replace(/^./, (c) => c.toLowerCase())}EventSchema`);
  for (const command of set.commands)
    add(command, `${pascalCase(command.type).replace(/^./, (c) => c.toLowerCase())}CommandSchema`);
  const lines = [
    banner(`${CORE}/schemas`),
    '',
    'import type { CommandType } from "./commands.ts";',
    'import type { NormalizedEventType } from "./events.ts";',
    ...imports,
    '',
    '/** Every core schema (draft 2020-12), each with its `$id`: common, envelope, entities, events, commands. */',
    `export const CORE_SCHEMAS: readonly { readonly $id: string }[] = [\n${names.map((n) => `  ${n},`).join('\n')}\n];`,
    '',
    '/** The `$id` of the envelope schema. */',
    `export const ENVELOPE_SCHEMA_ID = ${JSON.stringify(set.envelope.id)};`,
    '',
    '/** The `$id` of the shared definitions. */',
    `export const COMMON_SCHEMA_ID = ${JSON.stringify(set.common.id)};`,
    '',
    '/** The `$id` of each entity schema. */',
    `export const ENTITY_SCHEMA_IDS = {\n${set.entities.map((e) => `  ${entityKey(e)}: ${JSON.stringify(e.id)},`).join('\n')}\n} as const;`,
    '',
    "/** The `$id` of each event type's data schema. */",
    `export const EVENT_SCHEMA_IDS: { readonly [T in NormalizedEventType]: string } = {\n${set.events
      .map((e) => `  ${JSON.stringify(e.type)}: ${JSON.stringify(e.id)},`)
      .join('\n')}\n};`,
    '',
    "/** The `$id` of each command type's data schema. */",
    `export const COMMAND_SCHEMA_IDS: { readonly [T in CommandType]: string } = {\n${set.commands
      .map((c) => `  ${JSON.stringify(c.type)}: ${JSON.stringify(c.id)},`)
      .join('\n')}\n};`,
    '',
  ];
  return { path: `${GENERATED}/schemas.ts`, content: lines.join('\n') };
}

function inlineCode(value: unknown): string {
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

/** Renders what an event's data schema requires beyond its entity, as Markdown bullet text. */
function describeData(event: EventSchemaFile, resolver: Resolver): string[] {
  const lines: string[] = [];
  const entityLink = (ref: string) => {
    const uri = resolver.absolute(ref, event.id);
    const name = resolver.names.get(uri) ?? uri;
    const file = uri.replace('https://switchyard.dev/schemas/', '').replace(/\.json$/, '.schema.json');
    return `[${name}](../${CORE}/schemas/${file})`;
  };
  const rules = (branch: Schema) => {
    const required = (branch.required ?? []) as string[];
    const properties = (branch.properties ?? {}) as Record<string, Schema>;
    for (const [name, prop] of Object.entries(properties)) {
      if ('const' in prop) lines.push(`- \`${name}\` is ${inlineCode(prop.const)}`);
      else if (required.includes(name)) lines.push(`- \`${name}\` is present`);
    }
    for (const name of required) if (!(name in properties)) lines.push(`- \`${name}\` is present`);
  };
  // What every event of the type carries whatever the vendor sent: the entity's required fields
  // and those the event schema adds. Everything else is the entity's known state (see the section
  // "What data carries").
  const guaranteed = (ref: string, extra: Schema[]) => {
    const entity = resolver.lookup(resolver.absolute(ref, event.id)).schema;
    const names = [
      ...((entity.required ?? []) as string[]),
      ...extra.flatMap((b) => [
        ...((b.required ?? []) as string[]),
        ...Object.entries((b.properties ?? {}) as Record<string, Schema>)
          .filter(([, p]) => 'const' in p)
          .map(([name]) => name),
      ]),
    ];
    return `Guaranteed in every event of this type: ${[...new Set(names)].map((n) => `\`${n}\``).join(', ')}. Other fields: see [What \`data\` carries](#what-data-carries).`;
  };
  const schema = event.schema;
  if (typeof schema.$ref === 'string') {
    lines.push(`Data: the ${entityLink(schema.$ref)} entity.`);
    lines.push('');
    lines.push(guaranteed(schema.$ref, []));
  } else if (Array.isArray(schema.allOf)) {
    const branches = schema.allOf as Schema[];
    const ref = branches.find((b) => typeof b.$ref === 'string');
    lines.push(`Data: the ${ref ? entityLink(ref.$ref as string) : 'object'} entity, where:`);
    lines.push('');
    for (const branch of branches) if (branch !== ref) rules(branch);
    if (ref) {
      lines.push('');
      lines.push(
        guaranteed(
          ref.$ref as string,
          branches.filter((b) => b !== ref),
        ),
      );
    }
  } else {
    lines.push('Data: an object with');
    lines.push('');
    const required = (schema.required ?? []) as string[];
    for (const [name, prop] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
      const type = typeof prop.type === 'string' ? prop.type : 'value';
      const note = typeof prop.description === 'string' ? `: ${prop.description}` : '';
      lines.push(`- \`${name}\` (${type}${required.includes(name) ? ', required' : ''})${note}`);
    }
  }
  return lines;
}

function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** A GitHub-style heading anchor: `appointment.no_show` → `appointmentno_show`. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replaceAll(' ', '-');
}

function eventsDoc(set: CoreSchemaSet, resolver: Resolver): GeneratedFile {
  const out: string[] = [];
  out.push(`<!-- ${banner(`${CORE}/schemas`).slice(3, -3)} -->`);
  out.push('');
  out.push('# Event catalog');
  out.push('');
  out.push(
    'Every event Switchyard delivers is a [CloudEvents 1.0](https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) ' +
      'structured-mode JSON object. The JSON Schemas in `packages/core/schemas` are the source of truth; ' +
      'this page is generated from them (`pnpm generate`).',
  );
  out.push('');
  out.push(
    'To validate what you receive, load every schema (draft 2020-12; each `$ref` is relative to its ' +
      '`$id`): from there, or from the hub you read, which lists them at `GET /schemas/index.json` and ' +
      'serves each at the path of its `$id` ([api.md](api.md#published-schemas)). Check the whole ' +
      'event against `https://switchyard.dev/schemas/envelope.json` and ' +
      'its `data` against `https://switchyard.dev/schemas/events/<type>.json`. The schemas carry ' +
      'annotation keywords of their own (`x-entity`, `x-vendor-events`, `x-secret`, `x-target`): a ' +
      'validator in strict mode must be told of them, e.g. with ajv (strict mode included) ' +
      "`ajv.addVocabulary(['x-entity', 'x-vendor-events', 'x-secret', 'x-target'])` and ajv-formats for " +
      '`date`, `date-time` and `uri`.',
  );
  out.push('');
  out.push('## Envelope');
  out.push('');
  out.push(stringField(set.envelope, 'description'));
  out.push('');
  out.push('| Attribute | Required | Meaning |');
  out.push('|---|---|---|');
  const envRequired = (set.envelope.schema.required ?? []) as string[];
  for (const [name, prop] of Object.entries(
    (set.envelope.schema.properties ?? {}) as Record<string, Schema>,
  )) {
    const meaning =
      typeof prop.description === 'string'
        ? prop.description
        : 'const' in prop
          ? `Always ${inlineCode(prop.const)}.`
          : '';
    out.push(`| \`${name}\` | ${envRequired.includes(name) ? 'yes' : 'no'} | ${escapeCell(meaning)} |`);
  }
  out.push('');
  out.push(
    'Deliveries to one subscription are ordered per `subject`, in `sequence` order: the last one is the ' +
      "entity's current state (what the hub's FHIR read serves), whatever the `time`s say. The same event " +
      'may arrive more than once (retries, replays): deduplicate on `id`, which is also the `webhook-id` header.',
  );
  out.push('');
  out.push('## What `data` carries');
  out.push('');
  out.push(
    "An event's `data` is the entity's **known state** after the change the event announces, not only " +
      'what the one vendor notification said. Vendors often repeat only part of an entity (a Docplanner ' +
      'payment notification whose booking object has only its ids and times, a BookingBug cancellation ' +
      'without the client): the connector completes each event from the last state it knows of the ' +
      'entity. The rules, the same for every connector (`withKnownState` in `@switchyard/core`):',
  );
  out.push('');
  out.push(
    '- a field the notification carries replaces the known value whole (one level deep for the few ' +
      "fields whose parts come from different notifications, e.g. an appointment's `payment`);",
  );
  out.push(
    '- a field the notification leaves out keeps its known value; a field the vendor sends as empty ' +
      '(e.g. Docplanner `insurance: null`) is dropped;',
  );
  out.push(
    '- `changes`, `previous`, `enrichment` and `vendor` describe the one event and are never carried ' +
      'over; `workflowStep`, `cancelledAt` and `cancelledBy` are carried only while `status` stays the same.',
  );
  out.push('');
  out.push(
    'Each type below lists the fields it **guarantees**. In appointment events every other field is ' +
      'present when the vendor ever told it for this appointment (on this connector instance): every ' +
      "connector that produces them completes them from the known state it keeps in its instance's " +
      'state store, across vendor id changes (a Docplanner move) and payload shapes (a BookingBug ' +
      'purchase and a JRNI webhook about the same booking). Slot, ' +
      'schedule, document, asset and process events carry what the notification says: the vendors that ' +
      'send them repeat the whole entity they describe each time (a Docplanner break with its doctor and ' +
      'place, an Instinctive Notes note in full, a Quable record by its code).',
  );
  out.push('');
  out.push('## Undo events');
  out.push('');
  out.push(
    'A vendor may undo a change. `appointment.restored` undoes **a cancellation only** (the appointment ' +
      'takes place again). Every other undone status, **including a no-show**, is ' +
      '`appointment.status_reverted`: a no-show is a workflow outcome like arrived or completed, not a ' +
      'removal. `status` and `workflowStep` then hold the state the appointment is back in and ' +
      "`changes` names them; `vendortype` keeps the vendor's own name for the undo. A vendor that marks " +
      'the patient present after a no-show sends a new observation: `appointment.arrived`.',
  );
  out.push('');
  out.push('## Echoes of commands');
  out.push('');
  out.push(
    "When an appointment or slot event is the vendor's echo of a change a hub command made " +
      '([commands.md](commands.md)), its data carries `causedBy: { "commandId": "<command id>" }`: ' +
      'the system that sent the command can skip it. A command has one echo: the first notification ' +
      'of its appointment (or block), of a type its change is notified as (e.g. `appointment.arrived` for ' +
      '`appointment.mark_arrived`, `slot.block_moved` for `slot.move_block`; for a move, `appointment.reschedule` or `slot.move_block`, ' +
      'one at the times it asked for; for an `appointment.update` of the `comment`, an `appointment.updated` whose `changes` names `comment`), that arrives within `commands.echoWindow` (default 10m) of its ' +
      'success. A later event of that entity, even of the same type within the window, is ' +
      'another change (staff editing at the front desk) and does not carry `causedBy`: do not skip it. ' +
      'A command done without a change at the vendor (notes written as they already were, a block moved to its own times) ' +
      'may have no echo at all. When the connector knows the target was already in the requested state before the call ' +
      '(an arrival or a no-show marked on an appointment the hub already knows so, on Docplanner, Cliniko and BookingBug; ' +
      'Cliniko notes written as the hub knows them), `command.succeeded` says `result.unchanged: true` and the command takes ' +
      "no echo: the next notification of its type is staff's change, never marked (before, a no-op mark took it, and a " +
      'system skipping its echoes lost it). The connector decides it, not the hub: it knows whether its vendor notifies a ' +
      'write that changes nothing and which known field shows the state; a known state that lags the vendor at worst leaves ' +
      'a real echo unmarked, which repeats what the sender asked. An `appointment.update` of `customFields` takes as its echo ' +
      "only an `appointment.updated` whose `changes` names `customFields`, which no shipped connector gives: Clockwise.MD's " +
      'webhook for a change of the patient\'s details is a bare `demographics_update` (`changes: ["patient"]`) with no ' +
      'field values, and whether it fires for a custom-field write is not documented. So a Clockwise.MD custom-field ' +
      "update is never matched: every `appointment.updated` reaches the sender unmarked, staff's and (if sent) its own " +
      "write's alike; to tell them apart, compare the record read with it (`data.vendor.appointment.extra_fields`) with " +
      'what was written. ' +
      'The outcome of a command itself arrives as ' +
      '`command.succeeded` or `command.failed` (subject `command/<command id>`).',
  );
  out.push('');
  out.push('## Types');
  out.push('');
  out.push('| Type | Meaning | Entity | Vendor events |');
  out.push('|---|---|---|---|');
  for (const e of set.events) {
    const vendor = vendorEventsOf(e);
    out.push(
      `| [\`${e.type}\`](#${anchor(e.type)}) | ${escapeCell(stringField(e, 'title'))} | ${entityOf(e)} | ${
        vendor.length === 0 ? '(the hub itself)' : escapeCell(vendor.join(', '))
      } |`,
    );
  }
  for (const e of set.events) {
    out.push('');
    out.push(`## ${e.type}`);
    out.push('');
    out.push(`**${stringField(e, 'title')}.** ${stringField(e, 'description')}`);
    out.push('');
    const vendor = vendorEventsOf(e);
    out.push(
      `Produced by: ${vendor.length === 0 ? 'the hub itself (no vendor event).' : vendor.map((v) => escapeCell(v)).join(', ')}`,
    );
    out.push('');
    out.push(...describeData(e, resolver));
    out.push('');
    out.push(`Schema: \`${e.id}\` ([${e.path.split('/').pop()}](../${e.path}))`);
    out.push('');
    out.push('Example:');
    out.push('');
    out.push('```json');
    out.push(JSON.stringify(firstExample(e), null, 2));
    out.push('```');
  }
  out.push('');
  return { path: 'docs/events.md', content: out.join('\n') };
}

/** `appointment.cancel` → `AppointmentCancelCommandData`. */
function commandDataTypeName(type: string): string {
  return `${pascalCase(type)}CommandData`;
}

/** Whether a command names its target by `subject` (an existing entity) or by `instance` (it creates one). */
function targetOf(command: CommandSchemaFile): 'subject' | 'instance' {
  const target = command.schema['x-target'];
  if (target !== 'subject' && target !== 'instance')
    throw new Error(`${command.path}: x-target must be "subject" or "instance"`);
  return target;
}

function renderCommandTypes(set: CoreSchemaSet): string {
  const lines: string[] = [];
  lines.push('/** Every command type. */');
  lines.push(
    `export type CommandType =\n${set.commands.map((c) => `  | ${JSON.stringify(c.type)}`).join('\n')};`,
  );
  lines.push('');
  lines.push('/** The `data` type of each command type. */');
  lines.push('export interface CommandDataMap {');
  for (const c of set.commands) lines.push(`  ${JSON.stringify(c.type)}: ${commandDataTypeName(c.type)};`);
  lines.push('}');
  lines.push('');
  lines.push('/** One row of {@link COMMAND_TYPES}. */');
  lines.push('export interface CommandTypeInfo {');
  lines.push('  readonly type: CommandType;');
  lines.push('  /** What the command acts on (the `<entity>` of its subject). */');
  lines.push('  readonly entity: string;');
  lines.push(
    '  /** `subject`: acts on an existing entity named by `subject`; `instance`: creates one at the named connector instance. */',
  );
  lines.push("  readonly target: 'subject' | 'instance';");
  lines.push('  /** A short human title. */');
  lines.push('  readonly title: string;');
  lines.push('  /** What the command does. */');
  lines.push('  readonly description: string;');
  lines.push("  /** The `$id` of the schema of the command's `data`. */");
  lines.push('  readonly schemaId: string;');
  lines.push('}');
  lines.push('');
  lines.push('/** Every command type with what it does, in catalog order. */');
  lines.push('export const COMMAND_TYPES = [');
  for (const c of set.commands) {
    lines.push('  {');
    lines.push(`    type: ${JSON.stringify(c.type)},`);
    lines.push(`    entity: ${JSON.stringify(entityOf(c))},`);
    lines.push(`    target: ${JSON.stringify(targetOf(c))},`);
    lines.push(`    title: ${JSON.stringify(stringField(c, 'title'))},`);
    lines.push(`    description:\n      ${JSON.stringify(stringField(c, 'description'))},`);
    lines.push(`    schemaId: ${JSON.stringify(c.id)},`);
    lines.push('  },');
  }
  lines.push('] as const satisfies readonly CommandTypeInfo[];');
  return lines.join('\n');
}

async function commandsFile(set: CoreSchemaSet, resolver: Resolver): Promise<GeneratedFile> {
  const used = new Set<string>();
  const parts: string[] = [];
  for (const command of set.commands) {
    const schema = toTsSchema(structuredClone(command.schema), command.id, resolver, used) as Schema;
    parts.push(
      await compileNamed(commandDataTypeName(command.type), schema, stringField(command, 'description')),
    );
  }
  const imports = [...used].sort();
  const header = [
    banner(`${CORE}/schemas/commands/*.schema.json`),
    '',
    imports.length > 0 ? `import type { ${imports.join(', ')} } from "./entities.ts";\n` : '',
  ].join('\n');
  return {
    path: `${GENERATED}/commands.ts`,
    content: `${header}\n${parts.join('\n\n')}\n\n${renderCommandTypes(set)}\n`,
  };
}

/** Renders a command's data fields as Markdown bullets. */
function describeCommandData(command: CommandSchemaFile, resolver: Resolver): string[] {
  const lines: string[] = [];
  const required = (command.schema.required ?? []) as string[];
  const properties = Object.entries((command.schema.properties ?? {}) as Record<string, Schema>);
  if (properties.length === 0) return ['Data: an empty object `{}`.'];
  lines.push('Data: an object with');
  lines.push('');
  for (const [name, prop] of properties) {
    let type = typeof prop.type === 'string' ? prop.type : 'value';
    if (typeof prop.$ref === 'string')
      type = resolver.names.get(resolver.absolute(prop.$ref, command.id)) ?? type;
    const note = typeof prop.description === 'string' ? `: ${prop.description}` : '';
    lines.push(`- \`${name}\` (${type}${required.includes(name) ? ', required' : ''})${note}`);
  }
  if (command.schema.minProperties === 1) {
    lines.push('');
    lines.push('At least one field must be given.');
  }
  return lines;
}

/**
 * The catalog's section on creating commands whose answer proves nothing (a proxy's 503
 * after the vendor acted): what each shipped vendor's answers were judged to prove, and why. Text,
 * not schema: it is the hub's rule (core's `provesNotCarriedOut`), the same for every creating type.
 */
const CREATING_COMMANDS_SECTION: readonly string[] = [
  '## Creating commands whose answer was lost',
  '',
  'A command that creates (`appointment.book`, `slot.block`: the types named by `instance`) is never sent ' +
    'to the vendor twice blind: of the shipped vendors only Square takes an idempotency key (its connector ' +
    're-sends the same request under the same key, which Square answers with the first answer: ' +
    '[connectors/square.md](connectors/square.md#commands)); for the others a repeated book books twice. ' +
    'A try whose answer does not prove the vendor did nothing keeps the command\'s "sent" record, and the next ' +
    "try runs the connector's lookup before any re-send: found, the command succeeds with what the earlier try " +
    'made (`result.alreadyDone: true`, its id in `result.vendorIds`); not found while the write may still land, ' +
    'it looks again on the next try.',
  '',
  '- **Proves nothing was done**: a refusal (a 4xx other than 408 and 429), which ends the command; a 408 (the ' +
    "request never arrived whole) or a 429 (a rate limit, the vendor's or a gateway's, turns a request away " +
    'instead of passing it on; no proxy answers 429 for an upstream that failed): the next try sends it again; or ' +
    "a 5xx that the connector recognises, by its body, as its vendor's own documented maintenance answer.",
  '- **Proves nothing**: no answer (a timeout, a lost connection, the process killed mid-call), any other 5xx, ' +
    '**a 503 with `Retry-After` included**, and a 2xx without the id of what it made. A gateway or proxy in ' +
    'front of the vendor answers 502, 503 or 504 after it forwarded the write (Envoy\'s "upstream reset before ' +
    'headers", Heroku\'s request timeout): taken as "the vendor did nothing", a Clockwise.MD booking so ' +
    'answered was booked twice. The `Retry-After` is still honoured as the wait before the next try; it no longer ' +
    "decides the record's fate.",
  '',
  'What the vendors document (`vendor-docs/FACTS.md`, their pages, the connector pages): Docplanner documents a ' +
    '429 with `Retry-After` only for `notifications/release`, not for a write that creates, and its rate ' +
    "limiter's 429, like Cliniko's, by its `X-RateLimit-*` headers; Clockwise.MD's write answers are unverified " +
    '(any 2xx is done); the material on BookingBug (JRNI) documents no rate-limit or maintenance answer, nor ' +
    "Acuity's on any answer but its 400 refusals. So no " +
    'shipped connector takes a 5xx as proof: each looks first. Why a 429 is still taken as proof: taken as none, ' +
    'every booking a rate limit turned away waited out the lookup rule (for Docplanner 2 minutes) and spent a ' +
    "list call of the same limit, in exactly the bursts that hit it. The lookups: Docplanner lists the slot's " +
    "bookings (a block: the address's breaks) and books again only when the list still lacks it 2 minutes after " +
    'the earlier try went out; Cliniko and BookingBug list their bookings (Cliniko also its unavailable blocks) at ' +
    'the same start for the same practitioner and patient, and Acuity the appointments of the type and ' +
    "client from the day before the start's to the day after (Acuity dates them by the account's day, not the " +
    "offset the booking was sent with), Calendly the organization's scheduled events of the invitee's email at the start " +
    'and their active invitees of that email made since the first send, ' +
    "and each sends again only when none is there 2 minutes after the earlier try went out (core's " +
    '`stillLanding`, `CREATE_SETTLE_MS`: the hub stops waiting after 10 s and retries 1 s later, while the vendor ' +
    'may still be making it; they sent again at the first lookup that missed it before, booking twice when the ' +
    'first landed); ' +
    'Clockwise.MD, which has no list or search call, takes the appointment its `create` webhook names (same ' +
    'hospital, start instant and patient names) and, when none has named it 2 minutes after the create went ' +
    'out, fails the command as "outcome unknown" without sending it again. A booking sent again that the vendor ' +
    "refuses (Docplanner's 404 or 422 for a taken slot, BookingBug's 409, Acuity's and Calendly's 400) is looked for once more " +
    'before the command fails: the earlier try may have landed in between. Such proof covers only the send it ' +
    "answers: a booking or block sent again and answered 408, 429 or a refusal keeps the earlier send's mark " +
    "and times (core's `sendNotCarriedOut`), as that send's outcome is still unknown, and the next try looks " +
    'before it sends (Acuity, Cliniko, BookingBug and Docplanner deleted the mark, and the next try booked with ' +
    'no lookup); a Docplanner move sent again keeps its mark alike, so the next try re-reads the booking first. ' +
    'A connector whose vendor documents ' +
    "its turn-away answer passes it to core's `provesNotCarriedOut` (a `TurnedAway` predicate on status and body).",
];

function commandsDoc(set: CoreSchemaSet, resolver: Resolver): GeneratedFile {
  const out: string[] = [];
  out.push(`<!-- ${banner(`${CORE}/schemas`).slice(3, -3)} -->`);
  out.push('');
  out.push('# Command catalog');
  out.push('');
  out.push(
    'A downstream system acts on vendors through the hub with commands: `POST /v1/commands` with a ' +
      '`type`, a `subject` (an entity the hub knows, e.g. `appointment/<hub id>`) or, for a command that ' +
      'creates something, an `instance`, and `data`. The hub resolves the vendor ids, calls the vendor ' +
      'through the connector, and announces the outcome as a `command.succeeded` or `command.failed` ' +
      "event (see [events.md](events.md)); the vendor's own notification of the change later carries " +
      '`data.causedBy.commandId` (its first notification only: [events.md](events.md#echoes-of-commands); none when ' +
      '`command.succeeded` says `result.unchanged`: nothing changed at the vendor, and no notification is taken for it). ' +
      'A failed command can be run again (`POST /v1/commands/{id}/retry`) with a fresh set of tries, ' +
      'after the checks a new command gets (refused alike when, say, the appointment is cancelled by ' +
      'now). How commands run, who may send them and what each connector supports: ' +
      '[api.md](api.md#commands) and the [connector pages](connectors/). The JSON Schemas in ' +
      '`packages/core/schemas/commands` are the source of truth; this page is generated from them ' +
      '(`pnpm generate`).',
  );
  out.push('');
  out.push('| Type | What it does | Target |');
  out.push('|---|---|---|');
  for (const c of set.commands) {
    const target =
      targetOf(c) === 'subject'
        ? `\`subject\`: \`${entityOf(c)}/<hub id>\``
        : '`instance`: a connector instance id';
    out.push(`| [\`${c.type}\`](#${anchor(c.type)}) | ${escapeCell(stringField(c, 'title'))} | ${target} |`);
  }
  out.push('');
  out.push(...CREATING_COMMANDS_SECTION);
  for (const c of set.commands) {
    out.push('');
    out.push(`## ${c.type}`);
    out.push('');
    out.push(`**${stringField(c, 'title')}.** ${stringField(c, 'description')}`);
    out.push('');
    out.push(...describeCommandData(c, resolver));
    out.push('');
    out.push(`Schema: \`${c.id}\` ([${c.path.split('/').pop()}](../${c.path}))`);
    out.push('');
    out.push('Example (the body of `POST /v1/commands`):');
    out.push('');
    out.push('```json');
    out.push(JSON.stringify(firstExample(c), null, 2));
    out.push('```');
  }
  out.push('');
  return { path: 'docs/commands.md', content: out.join('\n') };
}

/**
 * Everything core generates, in memory.
 *
 * @example
 * ```ts
 * const files = await generateCoreFiles();
 * files.map((f) => f.path); // ['packages/core/src/generated/entities.ts', ..., 'docs/events.md']
 * ```
 */
export async function generateCoreFiles(root: string = repoRoot): Promise<GeneratedFile[]> {
  const set = await loadCoreSchemas(root);
  const resolver = new Resolver(set);
  return [
    await entitiesFile(set, resolver),
    await envelopeFile(set, resolver),
    await eventsFile(set, resolver),
    await commandsFile(set, resolver),
    schemasFile(set),
    eventsDoc(set, resolver),
    commandsDoc(set, resolver),
  ];
}

/** The core package's generation step (registered in `scripts/generators.ts`). */
export const coreGenerator: Generator = {
  name: '@switchyard/core',
  ownedDirs: [GENERATED],
  outputs: () => generateCoreFiles(),
};
