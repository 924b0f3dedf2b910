/**
 * Scaffolds a connector package from the templates beside this file: the standard file set, a
 * working minimal connector (static header auth, `booking.created` → `appointment.created`, encode),
 * one fixture, unit and conformance tests, and a docs skeleton. The output passes typecheck, Biome
 * and its tests as generated.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the templates live: `connector/**` → `packages/connectors/<name>/**`, `docs/connector.md` → `docs/connectors/<name>.md`. */
export const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/** The same rule `defineConnector()` applies, minus leading, trailing and doubled dashes. */
const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const MAX_NAME_LENGTH = 40;
/** Display names go into string literals and doc comments: no quotes, backslashes or comment ends. */
const DISPLAY_NAME = /^[\p{L}\p{N}][\p{L}\p{N} .&+()-]{0,59}$/u;

/** A connector name that cannot be used, with why and what to do. */
export class ConnectorNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectorNameError';
  }
}

/** Options of {@link generateConnector}. */
export interface GenerateOptions {
  /** Lowercase letters, digits and single dashes, e.g. `acme-booking`. */
  name: string;
  /** The workspace root (holding `packages/connectors/` and `docs/`). */
  root: string;
  /** Human name; default from the name (`acme-booking` → `Acme Booking`). */
  displayName?: string;
}

/** What {@link generateConnector} wrote. */
export interface GeneratedConnector {
  name: string;
  camelName: string;
  displayName: string;
  /** The package folder. */
  packageDir: string;
  /** Every file written, relative to the root, with `/` separators, sorted. */
  files: string[];
}

/**
 * Throws {@link ConnectorNameError} unless `name` is a valid, unused connector name under `root`.
 *
 * @example
 * ```ts
 * validateConnectorName('Acme', root); // throws: use lowercase letters, digits and dashes, e.g. "acme"
 * ```
 */
export function validateConnectorName(name: string | undefined, root: string): string {
  if (name === undefined || name.trim() === '') {
    throw new ConnectorNameError('give the connector a name, e.g. `pnpm new-connector acme-booking`');
  }
  if (name.length > MAX_NAME_LENGTH || name.length < 2) {
    throw new ConnectorNameError(
      `connector name ${JSON.stringify(name)} must be 2 to ${MAX_NAME_LENGTH} characters long`,
    );
  }
  if (!NAME.test(name)) {
    const suggestion = name
      .trim()
      .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^[^a-z]+|-+$/g, '');
    throw new ConnectorNameError(
      `connector name ${JSON.stringify(name)} is not valid: use lowercase letters, digits and single dashes, starting with a letter${
        suggestion.length >= 2 && NAME.test(suggestion) ? ` (e.g. ${JSON.stringify(suggestion)})` : ''
      }`,
    );
  }
  const packageDir = join(root, 'packages', 'connectors', name);
  if (existsSync(packageDir)) {
    throw new ConnectorNameError(
      `a connector named ${JSON.stringify(name)} already exists (${relative(root, packageDir)}): choose another name`,
    );
  }
  const doc = join(root, 'docs', 'connectors', `${name}.md`);
  if (existsSync(doc)) {
    throw new ConnectorNameError(
      `${relative(root, doc)} already exists: choose another name, or remove the stale page first`,
    );
  }
  return name;
}

/** `acme-booking` → `acmeBooking`. */
export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `acme-booking` → `Acme Booking`. */
export function titleCase(name: string): string {
  return name
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');
}

/** Replaces every `{{key}}`; a placeholder without a value is a template bug. */
export function render(template: string, values: Readonly<Record<string, string>>, file: string): string {
  return template.replace(/\{\{([A-Za-z]+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`template ${file} uses {{${key}}}, which has no value`);
    return value;
  });
}

async function listTemplates(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listTemplates(path)));
    else if (entry.name.endsWith('.tmpl')) out.push(path);
  }
  return out;
}

/**
 * Writes a new connector package and its docs page under `root`.
 *
 * @example
 * ```ts
 * const result = await generateConnector({ name: 'acme-booking', root: process.cwd() });
 * result.files; // ['docs/connectors/acme-booking.md', 'packages/connectors/acme-booking/fixtures/booking-created.json', …]
 * ```
 */
export async function generateConnector(options: GenerateOptions): Promise<GeneratedConnector> {
  const name = validateConnectorName(options.name, options.root);
  const displayName = options.displayName?.trim() || titleCase(name);
  if (!DISPLAY_NAME.test(displayName)) {
    throw new ConnectorNameError(
      `display name ${JSON.stringify(displayName)} must be 1 to 60 letters, digits, spaces or . & + ( ) - (it goes into code and comments)`,
    );
  }
  const values = { name, camelName: camelCase(name), displayName };
  const packageDir = join(options.root, 'packages', 'connectors', name);
  const outputs: Array<{ path: string; content: string }> = [];
  for (const template of await listTemplates(TEMPLATES_DIR)) {
    const within = relative(TEMPLATES_DIR, template)
      .split(sep)
      .join('/')
      .replace(/\.tmpl$/, '');
    const target = within.startsWith('connector/')
      ? join(packageDir, within.slice('connector/'.length))
      : within === 'docs/connector.md'
        ? join(options.root, 'docs', 'connectors', `${name}.md`)
        : undefined;
    if (target === undefined) throw new Error(`template ${within} has no destination`);
    outputs.push({ path: target, content: render(await readFile(template, 'utf8'), values, within) });
  }
  // Render everything before writing anything, so a template bug leaves no half-made package.
  for (const output of outputs) {
    await mkdir(dirname(output.path), { recursive: true });
    await writeFile(output.path, output.content, { flag: 'wx' });
  }
  return {
    ...values,
    packageDir,
    files: outputs.map((o) => relative(options.root, o.path).split(sep).join('/')).sort(),
  };
}

/** The next steps printed after generation. */
export function nextSteps(result: GeneratedConnector): string {
  const dir = `packages/connectors/${result.name}`;
  return [
    `Created the ${result.displayName} connector (${result.files.length} files):`,
    ...result.files.map((file) => `  ${file}`),
    '',
    'Next steps:',
    `  1. pnpm install            # links @switchyard/connector-${result.name} (pnpm-workspace.yaml already covers packages/connectors/*)`,
    `  2. pnpm vitest run ${dir}   # the generated tests pass as they are`,
    `  3. Describe the vendor: ${dir}/src/vendor.ts, real payloads in ${dir}/fixtures/ (list each in src/conformance.test.ts)`,
    `  4. Map its events in ${dir}/src/normalize.ts (eventMap + normalize) and ${dir}/src/encode.ts`,
    `  5. Fill the TODOs in docs/connectors/${result.name}.md`,
    `  6. Register ${result.camelName}Connector with the hub where the shipped connectors are listed, then pnpm generate`,
  ].join('\n');
}
