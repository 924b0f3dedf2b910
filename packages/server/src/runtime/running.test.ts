/**
 * runtime/running.ts against planted hub files: `switchyard push` sends an instance's vendor
 * credentials to the URL a `hub-<pid>.json` names, so only a file this user's live hub wrote may
 * name it (real files, links and processes in a temporary directory).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publishRunningHub, runningHubs } from './running.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill();
});

function setup(): { config: string; dir: string; plant: (name: string, hub: object) => string } {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-running-'));
  const config = join(root, 'switchyard.yaml');
  writeFileSync(config, 'version: 1\n');
  const dir = join(root, '.switchyard');
  mkdirSync(dir);
  const plant = (name: string, hub: object) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ role: 'all', config, ...hub }));
    return file;
  };
  return { config, dir, plant };
}

const attacker = 'http://127.0.0.1:6666';

describe('runningHubs', () => {
  it("finds this user's live hub", async () => {
    const { config } = setup();
    const withdraw = await publishRunningHub({
      url: 'http://127.0.0.1:8091',
      pid: process.pid,
      role: 'all',
      config,
    });
    expect(await runningHubs(config)).toEqual([
      { url: 'http://127.0.0.1:8091', pid: process.pid, role: 'all', config },
    ]);
    await withdraw();
    expect(await runningHubs(config)).toEqual([]);
  });

  it('believes no file another user could have planted', async () => {
    // Writable by others: anyone could have put the attacker's URL in it.
    const writable = setup();
    chmodSync(writable.plant(`hub-${process.pid}.json`, { url: attacker, pid: process.pid }), 0o666);
    expect(await runningHubs(writable.config)).toEqual([]);

    // A link to a file elsewhere (another user's, say).
    const linked = setup();
    const elsewhere = setup().plant('elsewhere.json', {
      url: attacker,
      pid: process.pid,
      config: linked.config,
    });
    symlinkSync(elsewhere, join(linked.dir, `hub-${process.pid}.json`));
    expect(await runningHubs(linked.config)).toEqual([]);

    // A name whose pid is not the one inside (a live pid in a file named for another).
    const misnamed = setup();
    misnamed.plant('hub-4194000.json', { url: attacker, pid: process.pid });
    expect(await runningHubs(misnamed.config)).toEqual([]);

    // A URL a hub never publishes.
    const scheme = setup();
    scheme.plant(`hub-${process.pid}.json`, { url: 'file:///etc/passwd', pid: process.pid });
    expect(await runningHubs(scheme.config)).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)("believes no other user's file, even naming a live pid", async () => {
    const { config, plant } = setup();
    // pid 1 is alive (signal 0 answers, or EPERM for a non-root user): what a planted file names.
    chownSync(plant('hub-1.json', { url: attacker, pid: 1 }), 65534, 65534);
    const named = plant(`hub-${process.pid}.json`, { url: attacker, pid: process.pid });
    chownSync(named, 65534, 65534);
    expect(await runningHubs(config)).toEqual([]);
  });

  it('does not take a pid reused after its hub was killed for the hub', async () => {
    const { config, plant } = setup();
    // A hub killed -9 an hour ago left its file; its pid now belongs to a process started since.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    children.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    const file = plant(`hub-${child.pid}.json`, { url: attacker, pid: child.pid });
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(file, anHourAgo, anHourAgo);
    expect(await runningHubs(config)).toEqual([]);
  });
});

describe('publishRunningHub', () => {
  it('replaces a link planted at its name instead of writing through it', async () => {
    const { config, dir } = setup();
    const target = join(mkdtempSync(join(tmpdir(), 'switchyard-target-')), 'precious');
    writeFileSync(target, 'keep me');
    symlinkSync(target, join(dir, `hub-${process.pid}.json`));
    const withdraw = await publishRunningHub({
      url: 'http://127.0.0.1:8091',
      pid: process.pid,
      role: 'http',
      config,
    });
    expect(readFileSync(target, 'utf8')).toBe('keep me');
    expect(lstatSync(join(dir, `hub-${process.pid}.json`)).isFile()).toBe(true);
    expect((await runningHubs(config)).map((h) => h.url)).toEqual(['http://127.0.0.1:8091']);
    await withdraw();
  });
});
