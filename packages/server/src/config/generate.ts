// biome-ignore-all lint/suspicious/noTemplateCurlyInString: secret references are written ${env:...} on purpose.
/**
 * Generated files of the config: the published JSON Schema (`packages/server/config-schema.json`),
 * the TypeScript type of the file (`src/config/generated/config.ts`) and the reference tables of
 * `docs/configuration.md` (between the `generated:config-reference` markers). Wired into
 * `pnpm generate` through `scripts/generators.ts`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Connector, JsonSchema } from '@switchyard/core';
import { isJsonObject } from '@switchyard/core';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import { openLongEnums } from '../admin/generate.ts';
import { buildConfigSchema } from './schema.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const SCHEMA_PATH = 'packages/server/config-schema.json';
export const TYPES_PATH = 'packages/server/src/config/generated/config.ts';
export const DOCS_PATH = 'docs/configuration.md';
export const DOCS_START = '<!-- generated:config-reference:start -->';
export const DOCS_END = '<!-- generated:config-reference:end -->';

/** The schema file's exact content. */
export function schemaFileContent(connectors: readonly Connector[]): string {
  return `${JSON.stringify(buildConfigSchema(connectors), null, 2)}\n`;
}

/** Drops what json-schema-to-typescript cannot use: connector rules (settings stay an open object). */
function forTypes(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(forTypes);
  if (!isJsonObject(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (
      key === 'allOf' ||
      key === '$defs' ||
      key === 'if' ||
      key === 'then' ||
      key === 'not' ||
      key.startsWith('x-')
    )
      continue;
    out[key] =
      key === 'properties' && isJsonObject(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forTypes(v)]))
        : forTypes(value);
  }
  return out;
}

/** The TypeScript declaration of the file's shape (before defaults and secret resolution). */
export async function typesFileContent(connectors: readonly Connector[]): Promise<string> {
  const schema = {
    ...(openLongEnums(forTypes(buildConfigSchema(connectors))) as Record<string, unknown>),
    title: 'SwitchyardConfigFile',
  };
  const body = await compile(schema as JSONSchema, 'SwitchyardConfigFile', {
    bannerComment: '',
    additionalProperties: false,
    format: true,
    unknownAny: true,
    strictIndexSignatures: false,
  });
  return `/* Generated from the config schema (packages/server/src/config/schema.ts) by pnpm generate. Do not edit. */\n\n${body.trim()}\n`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function typeOf(schema: JsonSchema): string {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' | ');
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema['x-duration'] === true) return 'duration';
  if (schema.type === 'array') {
    const items = isJsonObject(schema.items) ? (schema.items as JsonSchema) : {};
    return `list of ${items['x-duration'] === true ? 'duration' : String(items.type ?? 'any')}`;
  }
  return String(schema.type ?? 'any');
}

interface Row {
  path: string;
  type: string;
  defaultValue: string;
  description: string;
}

function rows(schema: JsonSchema, prefix: string, root: JsonSchema, out: Row[], depth = 0): Row[] {
  const properties = isJsonObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const [name, raw] of Object.entries(properties)) {
    let prop = raw as JsonSchema;
    if (typeof prop.$ref === 'string' && prop.$ref.startsWith('#/')) {
      let target: unknown = root;
      for (const part of prop.$ref.slice(2).split('/'))
        target = isJsonObject(target) ? target[part] : undefined;
      if (isJsonObject(target)) prop = { ...(target as JsonSchema), ...prop };
    }
    const path = prefix === '' ? name : `${prefix}.${name}`;
    const notes: string[] = [];
    if (required.includes(name)) notes.push('**required**');
    const items = isJsonObject(prop.items) ? (prop.items as JsonSchema) : undefined;
    if (prop['x-secret'] === true || items?.['x-secret'] === true)
      notes.push('**secret** (`${env:…}` / `${file:…}` allowed)');
    const description = [...notes, typeof prop.description === 'string' ? prop.description : '']
      .filter(Boolean)
      .join('. ');
    out.push({
      path,
      type: typeOf(prop),
      defaultValue: prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``,
      description,
    });
    if (depth > 6) continue;
    if (prop.type === 'object') rows(prop, path, root, out, depth + 1);
    if (prop.type === 'array' && isJsonObject(prop.items) && (prop.items as JsonSchema).type === 'object') {
      rows(prop.items as JsonSchema, `${path}[]`, root, out, depth + 1);
    }
  }
  return out;
}

function table(list: Row[]): string {
  const lines = ['| Field | Type | Default | Description |', '|---|---|---|---|'];
  for (const row of list) {
    lines.push(
      `| \`${row.path}\` | ${cell(row.type)} | ${cell(row.defaultValue)} | ${cell(row.description)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Every hub setting that has a default, by its path as the docs write it (`retention.events`,
 * `subscriptions[].timeout`), with the default as the schema gives it (`"90d"`, `5`).
 *
 * @example
 * ```ts
 * settingDefaults(shippedConnectors).get('retention.events'); // '"90d"'
 * ```
 */
export function settingDefaults(connectors: readonly Connector[]): Map<string, string> {
  const schema = buildConfigSchema(connectors);
  return new Map(
    rows(schema, '', schema, [])
      .filter((row) => row.defaultValue !== '')
      .map((row) => [row.path, row.defaultValue.slice(1, -1)]),
  );
}

/** The generated part of docs/configuration.md (without the markers). */
export function referenceMarkdown(connectors: readonly Connector[]): string {
  const schema = buildConfigSchema(connectors);
  const parts = [
    '### The file',
    '',
    table(rows(schema, '', schema, [])),
    '',
    'Durations are a number and a unit, `ms`, `s`, `m`, `h` or `d`, and may be combined: `500ms`, `30s`, `5m`, `1h30m`, `30d`.',
  ];
  for (const connector of [...connectors].sort((a, b) => a.name.localeCompare(b.name))) {
    parts.push(
      '',
      `### \`connector: ${connector.name}\` (${connector.displayName})`,
      '',
      `Modes: ${[connector.push ? 'push' : '', connector.pull ? 'pull' : '', connector.push && connector.pull ? 'both' : ''].filter(Boolean).join(', ')}.` +
        (connector.gate ? ' Has approval requests (`gate:`).' : ''),
      '',
      table(rows(connector.configSchema, 'settings', connector.configSchema, [])),
    );
  }
  return parts.join('\n');
}

/** Replaces the text between the markers of `doc` with `generated`. */
export function replaceBetweenMarkers(doc: string, generated: string): string {
  const start = doc.indexOf(DOCS_START);
  const end = doc.indexOf(DOCS_END);
  if (start < 0 || end < start) throw new Error(`${DOCS_PATH} must contain ${DOCS_START} and ${DOCS_END}`);
  return `${doc.slice(0, start + DOCS_START.length)}\n${generated}\n${doc.slice(end)}`;
}

/**
 * The generator `scripts/generators.ts` lists.
 *
 * @example
 * ```ts
 * import { configGenerator } from '../packages/server/src/config/generate.ts';
 * export const generators = [coreGenerator, configGenerator];
 * ```
 */
export const configGenerator = {
  name: 'server config',
  ownedDirs: ['packages/server/src/config/generated'] as readonly string[],
  async outputs(): Promise<Array<{ path: string; content: string }>> {
    const { shippedConnectors } = await import('../connectors.ts');
    const doc = await readFile(join(REPO_ROOT, DOCS_PATH), 'utf8');
    return [
      { path: SCHEMA_PATH, content: schemaFileContent(shippedConnectors) },
      { path: TYPES_PATH, content: await typesFileContent(shippedConnectors) },
      { path: DOCS_PATH, content: replaceBetweenMarkers(doc, referenceMarkdown(shippedConnectors)) },
    ];
  },
};

export const name = configGenerator.name;
export const outputs = configGenerator.outputs;
