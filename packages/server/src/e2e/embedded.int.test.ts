/**
 * The embedded default: no database in the file and no DATABASE_URL. The hub runs its own Postgres
 * with the data under `.switchyard/` beside the config file, and the data outlives a restart.
 */
import { chmodSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@switchyard/testing';
import { expect, it } from 'vitest';
import {
  newSigningSecret,
  pushSlotBooked,
  runSwitchyard,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  writeConfig,
} from './helpers.test-support.ts';

it('starts on an embedded Postgres, keeps what it took across a restart', async () => {
  const dir = tempDir('embedded');
  // Run as root, Postgres runs as the OS user "postgres", which must traverse the directory.
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeConfig(dir, { port, subscriptions: [] });
  const env = secretEnv(newSigningSecret());

  const first = spawnSwitchyard(['start'], { cwd: dir, env, port });
  await first.ready(60_000);
  expect(await pushSlotBooked(first.url, 'dp', 800001)).toBe(200);
  // Wait for normalization: the event is listed once it exists.
  const deadline = Date.now() + 20_000;
  let listed = '';
  let listedNote = '';
  while (Date.now() < deadline && !listed.includes('appointment.created')) {
    const res = await fetch(`${first.url}/readyz`);
    expect(res.status).toBe(200);
    const run = await runSwitchyard(['events', 'list'], { cwd: dir, env });
    listed = run.stdout;
    listedNote = run.stderr;
  }
  const dataDir = join(dir, '.switchyard', 'postgres');
  // A command on the embedded Postgres says which one, and how to name another (an audit: it said
  // nothing, and an empty list from the wrong database looked like no events).
  expect(listedNote).toContain(
    `switchyard: database: the embedded Postgres at ${dataDir} (the one the running switchyard start uses); for another, give --config FILE with database.url, or set DATABASE_URL\n`,
  );
  // While the hub runs, other commands reuse its embedded server.
  expect(listed).toMatch(/appointment\.created {2}dp {2}appointment\//);
  // A second hub may not: it would lose its database when the first stops.
  const beside = await runSwitchyard(['start', '--role', 'worker', '--port', String(await freePort())], {
    cwd: dir,
    env,
  });
  expect(beside.code).toBe(1);
  expect(beside.stderr).toMatch(/another switchyard process \(pid \d+\) runs the embedded Postgres/);
  expect(beside.stderr).toContain('set DATABASE_URL, or database.url');
  expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
  expect(await first.stop('SIGTERM')).toBe(0);

  expect(first.stdout()).toContain(`embedded Postgres: no database.url in ${join(dir, 'switchyard.yaml')}`);
  expect(first.stdout().split('\n')[0]).toContain('embedded Postgres');
  expect(first.stderr()).toContain(`database: embedded Postgres, data in ${dataDir}`);
  expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
  const keyFile = join(dir, '.switchyard', 'secret-key');
  expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  expect(existsSync(join(dir, '.switchyard', 'embedded-postgres.json'))).toBe(false);

  // Stopped: `events list` starts the embedded server itself and finds the event from before.
  const after = await runSwitchyard(['events', 'list'], { cwd: dir, env });
  expect(after.code).toBe(0);
  expect(after.stdout.trim().split('\n')).toEqual([listed.trim().split('\n')[0]]);
  expect(after.stderr).toBe(
    `switchyard: database: the embedded Postgres at ${dataDir} (started for this command: no switchyard start runs on it); for another, give --config FILE with database.url, or set DATABASE_URL\n`,
  );

  // And the hub starts again on the same data.
  const second = spawnSwitchyard(['start'], { cwd: dir, env, port });
  await second.ready(60_000);
  expect(await second.stop('SIGTERM')).toBe(0);
  expect(second.stdout()).toContain('the database schema is up to date');
}, 110_000);
