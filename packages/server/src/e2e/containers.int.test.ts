// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * A hub deployed as a container: its config directory a read-only mount (a ConfigMap), where the
 * pull spool (`workers.pullSpoolDir`) is by default. Before, `validate` said the file was valid,
 * the hub started with `/readyz` green, and every Docplanner pull stopped with only a warning per
 * turn (backed off to one every five minutes).
 *
 * The directory is made unwritable by a regular file named `.switchyard` where the spool's
 * directory would be made: a `chmod 555` does not stop root, who runs these tests in CI, and both
 * make the spool's mkdir fail the same way.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  runSwitchyard,
  slotBooked,
  startHubIn,
  tempDir,
  writeDocplannerPullConfig,
} from './helpers.test-support.ts';

const db = useTestDatabase();
const ADMIN = 'containers-admin-token-0123456789';
const env = { T_ADMIN: ADMIN, T_DB: undefined as string | undefined };

let sim: DocplannerSimulator;

beforeAll(async () => {
  sim = new DocplannerSimulator({ timeScale: 0.0001, clientSecret: 'sim-secret-0123456789' });
  await sim.start();
  env.T_DB = db.url();
});

afterAll(async () => {
  await sim?.close();
});

function writeConfigFile(dir: string): void {
  // T_DB: the database URL from the environment, as a container is given it.
  writeDocplannerPullConfig(dir, {
    databaseUrl: '${env:T_DB}',
    apiBaseUrl: sim.url,
    secretKey: 't-containers-secret-key-0123456',
  });
}

async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function storedBookings(): Promise<string[]> {
  const client = new pg.Client({ connectionString: db.url() });
  await client.connect();
  try {
    const r = await client.query<{ booking: string }>(
      `select payload #>> '{data,visit_booking,id}' as booking from switchyard.inbound_messages
        where instance_id = 'dp'`,
    );
    return r.rows.map((row) => row.booking);
  } finally {
    await client.end();
  }
}

async function until<T>(what: string, read: () => T | Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The `switchyard_pull_spool_refused` sample of the hub's `/metrics`. */
async function spoolRefusedMetric(url: string): Promise<string | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return /^switchyard_pull_spool_refused (\S+)$/m.exec(text)?.[1];
}

/**
 * The JSON log lines at error level (pino's 50) about the spool's setting. (The file standing in
 * for the mount also makes the start's read of what an earlier process left fail, ENOTDIR where a
 * read-only mount answers ENOENT, nothing left: that line is not counted.)
 */
function errorLines(output: string): { msg: string; setting?: string }[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{"level":50'))
    .map((line) => JSON.parse(line))
    .filter((line) => line.setting !== undefined);
}

it('a pull spool that cannot be written is reported by validate, at start (once, with the fix) and in /metrics; refused turns wait at most 30 s; pulls go on once it can be', async () => {
  const dir = tempDir('containers');
  writeConfigFile(dir);
  writeFileSync(join(dir, '.switchyard'), 'not a directory: stands for a read-only config mount\n');

  const checked = await runSwitchyard(['validate', '--config', 'switchyard.yaml'], { cwd: dir, env });
  expect(checked.code).toBe(1);
  expect(checked.stdout).toMatch(/^switchyard\.yaml:11:11 instances\[0\]\.mode: the pull spool /);
  expect(checked.stdout).toContain('workers.pullSpoolDir');
  expect(checked.stdout).toContain('set workers.pullSpoolDir to a directory on a writable volume');
  expect(checked.stdout).toContain(join(dir, '.switchyard', 'pull-spool'));
  // An HTTP-only process pulls nothing: the same file is valid for it.
  const http = await runSwitchyard(['validate', '--config', 'switchyard.yaml', '--role', 'http'], {
    cwd: dir,
    env,
  });
  expect(http.code).toBe(0);

  sim.enqueue(JSON.parse(slotBooked(7710001)));
  const hub = await startHubIn(dir, env);
  try {
    const reported = await until('the error line', () => errorLines(hub.stdout()).length > 0);
    expect(reported).toBe(true);
    const [line] = errorLines(hub.stdout());
    expect(line?.setting).toBe('workers.pullSpoolDir');
    expect(line?.msg).toContain('no pull instance of this process takes anything from its vendor');
    expect(line?.msg).toContain(
      `set workers.pullSpoolDir to a directory on a writable volume (of this process's user, not writable by others), or mount one at ${join(dir, '.switchyard', 'pull-spool')}`,
    );
    // Several turns refused (each a warning in the instance's health), one error line.
    await until('three refused turns', () => (hub.stdout().match(/"vendor pull failed"/g) ?? []).length >= 3);
    expect(errorLines(hub.stdout())).toHaveLength(1);
    expect(sim.queueLength).toBe(1);
    expect(await spoolRefusedMetric(hub.url)).toBe('1');

    // Refused for long (the backoff kept in the database doubles to five minutes): the next turn
    // is still at most 30 s away, since the vendor was not asked.
    await sql(`update switchyard.connector_instances set pull_consecutive_failures = 9, pull_next_at = now()
                where id = 'dp'`);
    const tenth = await until('the tenth refused turn', () =>
      hub
        .stdout()
        .split('\n')
        .find((line) => line.includes('"vendor pull failed"') && line.includes('"failures":10,')),
    );
    expect(JSON.parse(String(tenth)).nextInMs).toBe(30_000);

    // The volume mounted (here: the file gone): that next turn pulls, without a restart.
    rmSync(join(dir, '.switchyard'));
    await until(
      'the pulled booking stored',
      async () => (await storedBookings()).includes('7710001'),
      40_000,
    );
    expect(hub.stdout()).toContain('the pull spool can be written again: pulls go on');
    expect(await spoolRefusedMetric(hub.url)).toBe('0');
    expect(sim.queueLength).toBe(0);
  } finally {
    await hub.stop();
  }
}, 90_000);
