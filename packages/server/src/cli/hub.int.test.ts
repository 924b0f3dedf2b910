// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config file uses a ${env:...} reference on purpose.
/**
 * A one-shot command on the database (`withHub`) whose database fails after the hub was opened: a
 * restart, or a failover to a read-only standby (`default_transaction_read_only`, SQLSTATE 25006).
 * It is the operator's condition, said in one line with exit 1 as when the database cannot be
 * reached at all; it was "internal error (a bug; please report it)", a stack and exit 70.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import type { CliIO } from './command.ts';
import { main } from './main.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);
const dir = mkdtempSync(join(tmpdir(), 'switchyard-cli-outage-'));
let admin: pg.Client;

/** Sets the database's `default_transaction_read_only` and ends its sessions so new ones take it. */
async function readOnly(on: boolean): Promise<void> {
  const name = admin.escapeIdentifier(database.name());
  await admin.query(`alter database ${name} set default_transaction_read_only = ${on ? 'on' : 'off'}`);
  await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [
    database.name(),
  ]);
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  await sql`insert into switchyard.subscriptions (id, kind, url) values ('crm', 'webhook', 'https://example.test/hook')`.execute(
    store.db,
  );
  writeFileSync(
    join(dir, 'switchyard.yaml'),
    [
      'version: 1',
      'database:',
      '  url: ${env:HUB_DATABASE_URL}',
      'secretKey: a-secret-key-of-32-characters-00',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await readOnly(false).catch(() => {});
  await admin?.end();
});

it('says in one line, exit 1, that the database cannot be used when it fails after the hub opened it', async () => {
  await readOnly(true);
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { HUB_DATABASE_URL: database.url() },
    cwd: dir,
  };
  // Opening the hub only reads; the replay's first write is refused.
  const code = await main(
    ['replay', '--subscription', 'crm', '--since', '2026-01-01T00:00:00Z', '--config', 'switchyard.yaml'],
    io,
  );
  expect(err).toMatch(/^switchyard: cannot reach the database: .*read-only transaction\n$/);
  expect(code).toBe(1);
  expect(out).toBe('');
});
