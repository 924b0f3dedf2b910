// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * `switchyard start` before its Postgres accepts connections (compose's `depends_on` without a
 * healthcheck, a Postgres restarting after an upgrade): it waits for it, bounded by
 * `database.startupWait`, says once why, and exits 1 with one line when the time is up. Before, it
 * exited 1 at once ("could not start: connect ECONNREFUSED", a fatal log line with a stack).
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startEmbeddedPostgres, useTestDatabase } from '@switchyard/testing';
import { afterAll, expect, it } from 'vitest';
import {
  type HubChild,
  newSigningSecret,
  pushSlotBooked,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  writeConfig,
} from './helpers.test-support.ts';

const db = useTestDatabase();
const dir = tempDir('database-wait');
// Run as root, Postgres runs as the OS user "postgres", which must traverse the directory.
chmodSync(dir, 0o755);
const signingSecret = newSigningSecret();
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops) await stop();
});

/** Resolves once the hub's output matches `pattern`; rejects if it exits first. */
async function saw(hub: HubChild, pattern: RegExp): Promise<void> {
  let exited = false;
  void hub.exited.then(() => (exited = true));
  while (!pattern.test(hub.stdout())) {
    if (exited) throw new Error(`switchyard exited:\n${hub.stderr()}\n${hub.stdout()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('waits for a Postgres that starts after it, then takes a push', async () => {
  const dataDir = join(dir, 'late-postgres');
  const pgPort = await freePort();
  // Initialised once, then stopped: the hub starts against a port nothing listens on yet.
  const first = await startEmbeddedPostgres({ dataDir, port: pgPort, persistent: true });
  const url = first.url;
  await first.stop();
  const port = await freePort();
  writeConfig(dir, { port, database: '${env:SY_E2E_DATABASE_URL}', subscriptions: [], name: 'late.yaml' });
  const hub = spawnSwitchyard(['start', '--config', 'late.yaml'], {
    cwd: dir,
    port,
    env: secretEnv(signingSecret, url),
  });
  await saw(hub, /waiting for the database/);
  const late = await startEmbeddedPostgres({ dataDir, port: pgPort, persistent: false });
  stops.push(() => late.stop());
  await hub.ready();
  expect(await pushSlotBooked(hub.url, 'dp', 4101)).toBe(200);
  expect(await hub.stop()).toBe(0);
  const waiting = hub
    .stdout()
    .split('\n')
    .filter((line) => line.includes('waiting for the database'));
  expect(waiting).toHaveLength(1);
  const line = JSON.parse(waiting[0]!) as { level: number; code: string; msg: string };
  expect(line.code).toBe('ECONNREFUSED');
  expect(line.msg).toContain(`the database at 127.0.0.1:${pgPort} (ECONNREFUSED)`);
  expect(hub.stdout()).toMatch(/the database at 127\.0\.0\.1:\d+ answers after/);
  const password = new URL(url).password;
  expect(hub.stdout() + hub.stderr()).not.toContain(password);
});

it('exits 1 with one line, no stack, when the wait runs out', async () => {
  const pgPort = await freePort();
  const url = `postgres://postgres:wait-pw-9d2c@127.0.0.1:${pgPort}/postgres`;
  const port = await freePort();
  writeConfig(dir, {
    port,
    database: '${env:SY_E2E_DATABASE_URL}',
    startupWait: '1s',
    subscriptions: [],
    name: 'never.yaml',
  });
  const hub = spawnSwitchyard(['start', '--config', 'never.yaml'], {
    cwd: dir,
    port,
    env: secretEnv(signingSecret, url),
  });
  expect(await hub.exited).toBe(1);
  expect(hub.stderr()).toBe(
    `switchyard: could not start: the database at 127.0.0.1:${pgPort} does not accept connections (ECONNREFUSED), and did not within 1 s (database.startupWait)\n`,
  );
  expect(hub.stdout()).toContain('waiting for the database');
  expect(hub.stdout()).not.toContain('"stack"');
  expect(hub.stdout()).not.toContain('wait-pw-9d2c');
});

it('stops at once, exit 0, on SIGTERM while it waits', async () => {
  const pgPort = await freePort();
  const port = await freePort();
  writeConfig(dir, { port, database: '${env:SY_E2E_DATABASE_URL}', subscriptions: [], name: 'term.yaml' });
  const hub = spawnSwitchyard(['start', '--config', 'term.yaml'], {
    cwd: dir,
    port,
    env: secretEnv(signingSecret, `postgres://postgres@127.0.0.1:${pgPort}/postgres`),
  });
  await saw(hub, /waiting for the database/);
  expect(await hub.stop('SIGTERM')).toBe(0);
  expect(hub.stdout()).toMatch(/"msg":"stopped"/);
  expect(hub.stderr()).not.toContain('could not start');
});

it('does not wait for a database that does not exist: exit 1 at once', async () => {
  const missing = new URL(db.url());
  missing.pathname = '/switchyard_no_such_database';
  const port = await freePort();
  writeConfig(dir, { port, database: '${env:SY_E2E_DATABASE_URL}', subscriptions: [], name: 'missing.yaml' });
  const hub = spawnSwitchyard(['start', '--config', 'missing.yaml'], {
    cwd: dir,
    port,
    env: secretEnv(signingSecret, missing.toString()),
  });
  expect(await hub.exited).toBe(1);
  expect(hub.stderr()).toMatch(/could not start: .*does not exist/);
  expect(hub.stdout()).not.toContain('waiting for the database');
});
