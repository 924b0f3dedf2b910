/**
 * A tiny framework for generated files: every package that generates something (types from schemas,
 * docs tables, the config schema) provides a {@link Generator}; `pnpm generate` writes what they
 * produce, and `pnpm generate:check` fails when a file on disk differs, so generated files can never
 * silently drift from their sources.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file a generator produces. */
export interface GeneratedFile {
  /** Repository-relative path with forward slashes, e.g. `packages/core/src/generated/events.ts`. */
  path: string;
  content: string;
}

/**
 * A generation step. `outputs()` must be pure and deterministic: same sources, same bytes.
 *
 * @example
 * ```ts
 * export const configSchemaGenerator: Generator = {
 *   name: 'server config schema',
 *   ownedDirs: [],
 *   async outputs() {
 *     return [{ path: 'packages/server/config-schema.json', content: `${JSON.stringify(build(), null, 2)}\n` }];
 *   },
 * };
 * ```
 */
export interface Generator {
  name: string;
  /**
   * Repository-relative directories that hold only this generator's output: a file there that the
   * generator no longer produces is stale (reported by check, deleted by write).
   */
  ownedDirs?: readonly string[];
  outputs(): Promise<GeneratedFile[]>;
}

/** A generated file that does not match what is on disk. */
export interface StaleFile {
  path: string;
  generator: string;
  reason: 'missing' | 'outdated' | 'orphaned';
}

/** The repository root (this file is `packages/core/scripts/codegen.ts`). */
export const repoRoot: string = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Planned {
  files: Map<string, { generator: string; content: string }>;
  owned: Array<{ dir: string; generator: string }>;
}

async function plan(generators: readonly Generator[]): Promise<Planned> {
  const files = new Map<string, { generator: string; content: string }>();
  const owned: Array<{ dir: string; generator: string }> = [];
  for (const generator of generators) {
    for (const file of await generator.outputs()) {
      if (file.path.startsWith('/') || file.path.includes('\\') || file.path.split('/').includes('..')) {
        throw new Error(`generator ${generator.name}: output path ${file.path} must be repository-relative`);
      }
      const previous = files.get(file.path);
      if (previous) {
        throw new Error(`${file.path} is produced by both ${previous.generator} and ${generator.name}`);
      }
      files.set(file.path, { generator: generator.name, content: file.content });
    }
    for (const dir of generator.ownedDirs ?? []) owned.push({ dir, generator: generator.name });
  }
  return { files, owned };
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function listFiles(root: string, dir: string): Promise<string[]> {
  const base = join(root, dir);
  try {
    const entries = await readdir(base, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => `${dir}/${relative(base, join(entry.parentPath, entry.name)).split(sep).join('/')}`)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function orphans(root: string, planned: Planned): Promise<StaleFile[]> {
  const out: StaleFile[] = [];
  for (const { dir, generator } of planned.owned) {
    for (const path of await listFiles(root, dir)) {
      if (!planned.files.has(path)) out.push({ path, generator, reason: 'orphaned' });
    }
  }
  return out;
}

/**
 * Compares every generator's output with the files on disk, without writing anything.
 *
 * @example
 * ```ts
 * const stale = await checkGenerated([coreGenerator]);
 * if (stale.length > 0) console.error(stale.map((s) => s.path).join('\n'));
 * ```
 */
export async function checkGenerated(
  generators: readonly Generator[],
  root: string = repoRoot,
): Promise<StaleFile[]> {
  const planned = await plan(generators);
  const stale: StaleFile[] = [];
  for (const [path, { generator, content }] of planned.files) {
    const onDisk = await readOrUndefined(join(root, path));
    if (onDisk === undefined) stale.push({ path, generator, reason: 'missing' });
    else if (onDisk !== content) stale.push({ path, generator, reason: 'outdated' });
  }
  stale.push(...(await orphans(root, planned)));
  return stale.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Writes every generator's output (only files whose content changed) and deletes orphaned files in
 * owned directories. Returns the repository-relative paths written and deleted.
 *
 * @example
 * ```ts
 * const { written } = await writeGenerated([coreGenerator]);
 * ```
 */
export async function writeGenerated(
  generators: readonly Generator[],
  root: string = repoRoot,
): Promise<{ written: string[]; deleted: string[]; unchanged: string[] }> {
  const planned = await plan(generators);
  const written: string[] = [];
  const unchanged: string[] = [];
  for (const [path, { content }] of planned.files) {
    const target = join(root, path);
    if ((await readOrUndefined(target)) === content) {
      unchanged.push(path);
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content);
    written.push(path);
  }
  const deleted: string[] = [];
  for (const stale of await orphans(root, planned)) {
    await rm(join(root, stale.path));
    deleted.push(stale.path);
  }
  return { written: written.sort(), deleted, unchanged: unchanged.sort() };
}

/**
 * The `pnpm generate [--check]` command line: returns the process exit code and prints what it did.
 *
 * @example
 * ```ts
 * process.exitCode = await runGenerateCli(generators, process.argv.slice(2));
 * ```
 */
export async function runGenerateCli(
  generators: readonly Generator[],
  args: readonly string[],
  root: string = repoRoot,
  log: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    log(`unknown argument(s): ${unknown.join(' ')}\nusage: node scripts/generate.ts [--check]`);
    return 2;
  }
  if (args.includes('--check')) {
    const stale = await checkGenerated(generators, root);
    if (stale.length === 0) {
      log(`generated files are up to date (${generators.map((g) => g.name).join(', ')})`);
      return 0;
    }
    log('generated files are stale: run pnpm generate');
    for (const s of stale) log(`  ${s.path} (${s.reason}, from ${s.generator})`);
    return 1;
  }
  const { written, deleted, unchanged } = await writeGenerated(generators, root);
  for (const path of written) log(`wrote ${path}`);
  for (const path of deleted) log(`deleted ${path}`);
  log(`${written.length} written, ${deleted.length} deleted, ${unchanged.length} unchanged`);
  return 0;
}
