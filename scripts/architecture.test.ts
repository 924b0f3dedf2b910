/**
 * The import rules of docs/architecture.md ("The map"), enforced: every source file of the workspace
 * packages is read, its imports resolved, and each rule checked. The first describe block checks the
 * repository; the second feeds the same checks made-up files with a forbidden import, so each rule is
 * shown to fail when broken.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** One source file: its path relative to the repository root, and the specifiers it imports. */
interface SourceFile {
  path: string;
  imports: string[];
}

/**
 * What each package's production code may import of ours (`*` ends a name prefix: the server may
 * import every connector, so registering one in packages/server/src/connectors.ts needs nothing
 * here). Test code (see {@link isTestCode}) may import these, `@switchyard/testing` and the
 * connectors' `./testing` and `./simulator` entries; the testing package, all of it test code, never
 * a connector (see {@link packageViolations}). Keep in step with the map in docs/architecture.md.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  core: [],
  'embedded-postgres': ['@switchyard/core'],
  connector: ['@switchyard/core'],
  server: ['@switchyard/core', '@switchyard/embedded-postgres', '@switchyard/connector-*'],
  testing: ['@switchyard/core', '@switchyard/embedded-postgres'],
};

/** A connector's test entries, `@switchyard/connector-<vendor>/testing` and `…/simulator`. */
const TEST_ENTRY = /\/(?:testing|simulator)$/;

/**
 * What each top-level folder of packages/server/src may import of the other folders (production
 * code; test code may import anything). The table of docs/architecture.md ("Folders of
 * packages/server/src"), kept in step with it: one way, from `storage` and `delivery` at the bottom
 * through the host, the pipeline and the subsystems to the faces and `runtime`. A folder not in this
 * table, or an import it does not list, fails the test: a new edge is a decision to write down.
 */
const SERVER_FOLDER_MAY_IMPORT: Record<string, readonly string[]> = {
  telemetry: [],
  fhir: [],
  admin: [],
  storage: [],
  delivery: ['telemetry'],
  logging: ['telemetry'],
  entities: ['storage'],
  inbound: ['admin', 'events', 'storage'],
  events: ['admin', 'entities', 'fhir', 'storage'],
  deliveries: ['admin', 'events', 'fhir', 'storage', 'telemetry'],
  instances: ['admin', 'delivery', 'inbound', 'storage'],
  subscriptions: ['admin', 'deliveries', 'delivery', 'events', 'fhir', 'storage'],
  config: ['admin', 'delivery', 'fhir', 'instances', 'subscriptions', 'telemetry'],
  host: ['delivery', 'instances', 'storage'],
  pipeline: [
    'admin',
    'config',
    'deliveries',
    'delivery',
    'entities',
    'events',
    'fhir',
    'host',
    'inbound',
    'instances',
    'logging',
    'storage',
    'subscriptions',
    'telemetry',
  ],
  gates: [
    'admin',
    'config',
    'delivery',
    'events',
    'host',
    'logging',
    'storage',
    'subscriptions',
    'telemetry',
  ],
  commands: ['admin', 'config', 'delivery', 'events', 'host', 'http', 'logging', 'storage', 'telemetry'],
  http: [
    'admin',
    'config',
    'deliveries',
    'delivery',
    'entities',
    'events',
    'fhir',
    'inbound',
    'instances',
    'logging',
    'pipeline',
    'storage',
    'subscriptions',
    'telemetry',
  ],
  ui: ['admin', 'events', 'http', 'pipeline', 'storage'],
  cli: [
    'commands',
    'config',
    'delivery',
    'events',
    'gates',
    'logging',
    'pipeline',
    'runtime',
    'storage',
    'subscriptions',
  ],
  runtime: ['commands', 'config', 'gates', 'http', 'logging', 'pipeline', 'storage', 'telemetry', 'ui'],
};

/**
 * Import cycles between top-level folders of packages/server/src that are known and still to be
 * removed, as the folder edges on a cycle (`from → to`). Empty since the redesign of issue 12 (the
 * declared hub host, gates and commands built on it, the CLI faces in cli/); it stays as the place
 * a temporary exception would have to be written, and the test fails when a listed edge no longer
 * lies on a cycle.
 */
const KNOWN_SERVER_CYCLE_EDGES: readonly string[] = [];

/** Folder edges the map does not allow, with the files behind each (`from → to (files)`). */
function folderViolations(edges: Map<string, string[]>): string[] {
  const found: string[] = [];
  for (const [edge, paths] of edges) {
    const [from, to] = edge.split(' → ') as [string, string];
    const allowed = SERVER_FOLDER_MAY_IMPORT[from];
    if (!allowed)
      found.push(`${from}/ is not on the map (SERVER_FOLDER_MAY_IMPORT): ${[...new Set(paths)].join(', ')}`);
    else if (!allowed.includes(to)) found.push(`${edge} is not allowed: ${[...new Set(paths)].join(', ')}`);
  }
  return found;
}

/**
 * Test code: test files, test support, the testing package, the connectors' `./testing` entries and
 * their vendor simulators (`src/simulator.ts`, `src/simulator-writes.ts`: the `./simulator` entry).
 */
function isTestCode(path: string): boolean {
  return (
    /\.test\.ts$|\.test-support\.ts$/.test(path) ||
    path.startsWith('packages/testing/') ||
    /^packages\/connectors\/[^/]+\/src\/(?:testing|simulator|simulator-writes)\.ts$/.test(path)
  );
}

/** The package a repository path belongs to (`packages/connectors/quable`), or undefined. */
function packageRoot(path: string): string | undefined {
  return /^packages\/(?:connectors\/[^/]+|[^/]+)/.exec(path)?.[0];
}

/** The key of {@link MAY_IMPORT} for a package root. */
function packageKind(root: string): string {
  return root.startsWith('packages/connectors/') ? 'connector' : root.slice('packages/'.length);
}

/** The package name of a bare specifier (`@switchyard/testing/postgres` → `@switchyard/testing`). */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Resolves a relative specifier of `from` to a repository path. */
function resolveRelative(from: string, specifier: string): string {
  return relative(ROOT, resolve(ROOT, dirname(from), specifier));
}

/**
 * Violations of the package rules, one line each (`file: what`). The testing package imports no
 * connector, not even a test entry: every connector's tests depend on it, so that would be a workspace
 * cycle (docs/architecture.md, "Why each simulator lives in its connector's package").
 */
function packageViolations(files: readonly SourceFile[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const root = packageRoot(file.path);
    if (!root) continue;
    const kind = packageKind(root);
    const test = isTestCode(file.path);
    for (const specifier of file.imports) {
      if (specifier.startsWith('.')) {
        const target = resolveRelative(file.path, specifier);
        if (packageRoot(target) !== root) {
          found.push(
            `${file.path}: relative import '${specifier}' leaves ${root} (import the package by name)`,
          );
        } else if (!test && isTestCode(target)) {
          found.push(`${file.path}: production code imports test code '${specifier}'`);
        }
        continue;
      }
      const name = packageName(specifier);
      if (!test && (name === 'vitest' || name === '@switchyard/testing' || TEST_ENTRY.test(specifier))) {
        found.push(`${file.path}: production code imports the test tool '${specifier}'`);
        continue;
      }
      if (!name.startsWith('@switchyard/')) continue;
      if (kind === 'connector' && name === '@switchyard/server') {
        found.push(`${file.path}: a connector imports the server`);
        continue;
      }
      if (kind === 'core') {
        found.push(`${file.path}: core imports '${specifier}' (core imports nothing of ours)`);
        continue;
      }
      if (kind === 'testing' && name.startsWith('@switchyard/connector-')) {
        found.push(
          `${file.path}: the testing package imports a connector '${specifier}' (a workspace cycle)`,
        );
        continue;
      }
      const allowed = MAY_IMPORT[kind] ?? [];
      const testExtra = test && (name === '@switchyard/testing' || TEST_ENTRY.test(specifier));
      const listed = allowed.some((entry) =>
        entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) : entry === name,
      );
      if (!listed && !testExtra) {
        found.push(`${file.path}: ${root} may not import '${specifier}' (see MAY_IMPORT)`);
      }
    }
  }
  return found;
}

/** The folder edges (`from → to`) of packages/server/src production code, with the files behind each. */
function serverFolderEdges(files: readonly SourceFile[]): Map<string, string[]> {
  const prefix = 'packages/server/src/';
  const folder = (path: string) => {
    const rest = path.slice(prefix.length);
    return rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : undefined;
  };
  const edges = new Map<string, string[]>();
  for (const file of files) {
    if (!file.path.startsWith(prefix) || isTestCode(file.path)) continue;
    const from = folder(file.path);
    if (!from) continue;
    for (const specifier of file.imports) {
      if (!specifier.startsWith('.')) continue;
      const target = resolveRelative(file.path, specifier);
      if (!target.startsWith(prefix)) continue;
      const to = folder(target);
      if (!to || to === from) continue;
      const key = `${from} → ${to}`;
      edges.set(key, [...(edges.get(key) ?? []), file.path]);
    }
  }
  return edges;
}

/** The edges that lie on a cycle: `a → b` where `a` is reachable again from `b`. */
function cycleEdges(edges: Iterable<string>): string[] {
  const next = new Map<string, Set<string>>();
  const pairs = [...edges].map((edge) => edge.split(' → ') as [string, string]);
  for (const [from, to] of pairs) next.set(from, (next.get(from) ?? new Set()).add(to));
  const reaches = (start: string, goal: string) => {
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node === goal) return true;
      if (seen.has(node)) continue;
      seen.add(node);
      stack.push(...(next.get(node) ?? []));
    }
    return false;
  };
  return pairs.filter(([from, to]) => reaches(to, from)).map(([from, to]) => `${from} → ${to}`);
}

/** Every `.ts`/`.mjs` file under packages/, with its imports (static, dynamic, re-exports, type-only). */
function readSources(): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'static') walk(path);
      } else if (/\.(ts|mts|mjs)$/.test(entry.name)) {
        const info = ts.preProcessFile(readFileSync(join(ROOT, path), 'utf8'), true, true);
        files.push({ path, imports: info.importedFiles.map((f) => f.fileName) });
      }
    }
  };
  walk('packages');
  return files;
}

describe('import rules (docs/architecture.md, "The map")', () => {
  const files = readSources();

  it('reads the workspace', () => {
    expect(files.length).toBeGreaterThan(200);
    expect(files.some((f) => f.path === 'packages/server/src/runtime/database.ts')).toBe(true);
  });

  it('holds for every package', () => {
    expect(packageViolations(files)).toEqual([]);
  });

  it('each server folder imports only what the map allows', () => {
    expect(folderViolations(serverFolderEdges(files))).toEqual([]);
  });

  it('adds no cycle between top-level server folders', () => {
    const edges = serverFolderEdges(files);
    const cyclic = cycleEdges(edges.keys());
    const unknown = cyclic.filter((edge) => !KNOWN_SERVER_CYCLE_EDGES.includes(edge));
    expect(
      unknown.map((edge) => `${edge} (${[...new Set(edges.get(edge))].join(', ')})`),
      'a new import closes a cycle between server folders',
    ).toEqual([]);
    const stale = KNOWN_SERVER_CYCLE_EDGES.filter((edge) => !cyclic.includes(edge));
    expect(stale, 'no longer on a cycle: remove from KNOWN_SERVER_CYCLE_EDGES').toEqual([]);
  });
});

describe('the import rules fail when broken', () => {
  const violations = (path: string, specifier: string) => packageViolations([{ path, imports: [specifier] }]);

  it('production code importing a test tool', () => {
    expect(
      violations('packages/server/src/runtime/database.ts', '@switchyard/testing/postgres'),
    ).toHaveLength(1);
    expect(violations('packages/core/src/index.ts', 'vitest')).toHaveLength(1);
    expect(violations('packages/connectors/quable/src/parse.ts', 'vitest')).toHaveLength(1);
    expect(violations('packages/server/src/index.ts', '@switchyard/connector-quable/testing')).toHaveLength(
      1,
    );
    expect(violations('packages/server/src/index.ts', '@switchyard/connector-quable/simulator')).toHaveLength(
      1,
    );
    expect(violations('packages/connectors/quable/src/index.ts', './simulator.ts')).toHaveLength(1);
    expect(violations('packages/connectors/docplanner/src/pull.ts', './simulator-writes.ts')).toHaveLength(1);
    expect(violations('packages/server/src/pipeline/hub.ts', './fixtures.test-support.ts')).toHaveLength(1);
    // ...which test code may: a simulator is test code, and so are the tests that start one.
    expect(violations('packages/server/src/pipeline/hub.test.ts', '@switchyard/testing')).toEqual([]);
    expect(violations('packages/server/src/pipeline/hub.test.ts', './fixtures.test-support.ts')).toEqual([]);
    expect(
      violations(
        'packages/server/src/e2e/connectors/quable.int.test.ts',
        '@switchyard/connector-quable/simulator',
      ),
    ).toEqual([]);
    expect(violations('packages/connectors/docplanner/src/pull.test.ts', './simulator.ts')).toEqual([]);
    expect(violations('packages/connectors/quable/src/simulator.ts', './testing.ts')).toEqual([]);
    expect(
      violations('packages/connectors/quable/src/simulator.ts', '@switchyard/testing/simulator-kit/push'),
    ).toEqual([]);
    expect(violations('packages/connectors/docplanner/src/simulator.ts', './simulator-writes.ts')).toEqual(
      [],
    );
  });

  it('the testing package importing a connector (a workspace cycle: every connector tests with it)', () => {
    expect(
      violations('packages/testing/src/conformance/check.ts', '@switchyard/connector-quable/testing'),
    ).toHaveLength(1);
    expect(
      violations('packages/testing/src/index.ts', '@switchyard/connector-quable/simulator'),
    ).toHaveLength(1);
    expect(violations('packages/testing/src/index.ts', '@switchyard/connector-quable')).toHaveLength(1);
    expect(violations('packages/testing/src/index.ts', '@switchyard/core')).toEqual([]);
  });

  it('a connector importing the server, core importing anything of ours', () => {
    expect(violations('packages/connectors/quable/src/parse.ts', '@switchyard/server')).toHaveLength(1);
    expect(violations('packages/connectors/quable/src/parse.test.ts', '@switchyard/server')).toHaveLength(1);
    expect(violations('packages/core/src/index.ts', '@switchyard/embedded-postgres')).toHaveLength(1);
    expect(violations('packages/connectors/quable/src/parse.ts', '@switchyard/core')).toEqual([]);
    // The server may import any connector (a newly registered one too), but not the test tools.
    expect(violations('packages/server/src/connectors.ts', '@switchyard/connector-acme')).toEqual([]);
    expect(violations('packages/server/src/connectors.ts', '@switchyard/testing')).toHaveLength(1);
    expect(violations('packages/embedded-postgres/src/index.ts', '@switchyard/server')).toHaveLength(1);
  });

  it('a relative import across a package boundary', () => {
    expect(
      violations('packages/testing/src/simulator-kit/push.ts', '../../../connectors/quable/src/vendor.ts'),
    ).toHaveLength(1);
    expect(
      violations('packages/connectors/quable/src/simulator.ts', '../../../testing/src/simulator-kit/push.ts'),
    ).toHaveLength(1);
    expect(violations('packages/testing/src/simulator-kit/receiver.ts', './server.ts')).toEqual([]);
  });

  it('a server folder importing what the map does not allow', () => {
    const edges = (path: string, specifier: string) => serverFolderEdges([{ path, imports: [specifier] }]);
    expect(folderViolations(edges('packages/server/src/storage/db.ts', '../pipeline/hub.ts'))).toHaveLength(
      1,
    );
    expect(folderViolations(edges('packages/server/src/gates/gates.ts', '../cli/command.ts'))).toHaveLength(
      1,
    );
    expect(folderViolations(edges('packages/server/src/newfolder/x.ts', '../storage/db.ts'))).toHaveLength(1);
    expect(folderViolations(edges('packages/server/src/gates/gates.ts', '../host/host.ts'))).toEqual([]);
    // Test code is not bound by the map.
    expect(folderViolations(edges('packages/server/src/storage/db.test.ts', '../pipeline/hub.ts'))).toEqual(
      [],
    );
  });

  it('a new cycle between server folders', () => {
    const edges = serverFolderEdges([
      { path: 'packages/server/src/http/app.ts', imports: ['../pipeline/hub.ts'] },
      { path: 'packages/server/src/pipeline/hub.ts', imports: ['../storage/db.ts'] },
      { path: 'packages/server/src/storage/db.ts', imports: ['../http/errors.ts'] },
      { path: 'packages/server/src/storage/db.test.ts', imports: ['../delivery/x.ts'] },
      { path: 'packages/server/src/delivery/x.ts', imports: ['../storage/db.ts'] },
    ]);
    expect(cycleEdges(edges.keys()).sort()).toEqual([
      'http → pipeline',
      'pipeline → storage',
      'storage → http',
    ]);
  });
});
