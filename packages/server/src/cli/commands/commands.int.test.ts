// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config file uses a ${env:...} reference on purpose.
/**
 * `switchyard commands` against a database (in process, real Postgres): an id that names no
 * command is told as such, whatever its shape.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestDatabase } from '@switchyard/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { SECRET_KEY } from '../../pipeline/fixtures.test-support.ts';
import { main } from '../main.ts';

const database = useTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'switchyard-commands-'));

async function run(...argv: string[]) {
  let out = '';
  let err = '';
  const io = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { HUB_DATABASE_URL: database.url() },
    cwd: dir,
  };
  const code = await main([...argv, '--config', 'switchyard.yaml'], io);
  return { code, stdout: out, stderr: err };
}

beforeAll(async () => {
  writeFileSync(
    join(dir, 'switchyard.yaml'),
    ['version: 1', 'database:', '  url: ${env:HUB_DATABASE_URL}', `secretKey: ${SECRET_KEY}`, ''].join('\n'),
  );
  expect((await run('migrate')).code).toBe(0);
});

describe('switchyard commands show', () => {
  it('says there is no such command for an id that is not a UUID, as for one that is', async () => {
    // A mistyped id reached Postgres as a uuid and came back as an internal error with a stack trace.
    for (const id of ['nope', '00000000-0000-0000-0000-000000000000']) {
      const r = await run('commands', 'show', id);
      expect(r.stderr, id).toContain(`no command "${id}"`);
      expect(r.stderr, id).not.toContain('internal error');
      expect(r.code, id).toBe(2);
    }
  });
});
