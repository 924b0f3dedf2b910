import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MAKER = 'packages/testing/src/postgres/databases.ts';

function sources(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sources(path, out);
    else if (/\.(ts|mjs)$/.test(entry.name)) out.push(relative(ROOT, path));
  }
  return out;
}

describe('test databases', () => {
  // A shared Postgres may allow only names with a prefix (SWITCHYARD_TEST_DB_PREFIX, README).
  // createTestDatabase honours it; a script creating its own database by name did not
  // (ui/perf-seed.test-support.ts made `sy_dashboard_perf_<pid>` whatever the prefix).
  it('are created only by createTestDatabase, which honours SWITCHYARD_TEST_DB_PREFIX', () => {
    const creators = ['packages', 'scripts', 'bench']
      .flatMap((dir) => sources(join(ROOT, dir)))
      .filter((path) => path !== MAKER && path !== 'packages/testing/src/postgres/databases.test.ts')
      .filter((path) => /\bcreate\s+database\b/i.test(readFileSync(join(ROOT, path), 'utf8')));
    expect(creators).toEqual([]);
  });
});
