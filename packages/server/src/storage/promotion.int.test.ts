import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { useTestDatabase } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';

const pgdb = useTestDatabase();
const DB_TS = fileURLToPath(new URL('./db.ts', import.meta.url));
// The script is evaluated in the server package, so that `kysely` resolves as the hub's does.
const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A child node with the semi-spaces `./sy start` gives the hub, 3,000 parameterized statements one
 * after another through `openDatabase()`, each with a 2 kB text and rows to read, as the pipeline's
 * statements are. V8's own account of every young-generation collection (`--trace-gc-nvp`:
 * `allocated` and `promoted` bytes) says what share of what they allocated reached the old
 * generation. Bytes, not time: the figure does not move with the machine's load.
 */
const SCRIPT = `
import { sql } from 'kysely';
import { openDatabase } from ${JSON.stringify(DB_TS)};
const { db, close } = openDatabase(process.env.PROMOTION_DATABASE_URL, { max: 2 });
const pad = 'x'.repeat(2000);
const run = async (n) => {
  for (let i = 0; i < n; i++) {
    const ids = [String(i), String(i + 1), String(i + 2), String(i + 3)];
    const r = await sql\`/* \${sql.raw(pad)} */ select t.a, t.a || \${'-'} as b, \${JSON.stringify({ i, pad: pad.slice(0, 500) })}::jsonb as j
      from unnest(\${ids}::text[]) as t(a)\`.execute(db);
    if (r.rows.length !== 4) throw new Error('rows');
  }
};
await run(300);
console.log('MEASURE');
await run(3000);
console.log('DONE');
await close();
`;

describe('statements and the old generation', () => {
  it("what a statement allocates dies young: under 5 % of it is promoted (25 % through pg's own promise)", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--max-semi-space-size=8', '--trace-gc-nvp', '--input-type=module', '-e', SCRIPT],
      {
        cwd: PACKAGE_DIR,
        env: { ...process.env, PROMOTION_DATABASE_URL: pgdb.url() },
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const lines = stdout.split('\n');
    const from = lines.indexOf('MEASURE');
    const to = lines.indexOf('DONE');
    expect(from).toBeGreaterThan(-1);
    expect(to).toBeGreaterThan(from);
    let allocated = 0;
    let promoted = 0;
    for (const line of lines.slice(from, to)) {
      if (!line.includes(' gc=s ')) continue;
      allocated += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? Number.NaN);
      promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? Number.NaN);
    }
    // 3,000 statements allocate tens of megabytes: several young collections, so a real share.
    expect(allocated).toBeGreaterThan(16 * 1024 * 1024);
    expect(promoted / allocated, `promoted ${promoted} of ${allocated} bytes`).toBeLessThan(0.05);
  }, 120_000);
});
