/**
 * `./sy start` as a newcomer runs it, on the embedded Postgres: Ctrl-C in the terminal (SIGINT to
 * the whole foreground process group) and a SIGTERM to the PID `./sy start` printed both stop the
 * hub gracefully (exit 0, `stopped`), and the hub, not the signal, stops its Postgres afterwards; so
 * does SIGHUP (the terminal closed), and a Postgres left by a killed hub is stopped by the next start.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@switchyard/testing';
import { afterAll, expect, it } from 'vitest';
import {
  newSigningSecret,
  pushSlotBooked,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  writeConfig,
} from './helpers.test-support.ts';

const dir = tempDir('signals');
// Run as root, Postgres runs as the OS user "postgres", which must traverse the directory.
chmodSync(dir, 0o755);
const postmasterPid = join(dir, '.switchyard', 'postgres', 'postmaster.pid');

afterAll(() => {
  // A hub that failed the test may have left its Postgres (in its own process group) running.
  if (existsSync(postmasterPid)) {
    const pid = Number(readFileSync(postmasterPid, 'utf8').split('\n')[0]);
    if (alive(pid)) process.kill(pid, 'SIGINT');
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function processGroup(pid: number): number {
  return Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)], { encoding: 'utf8' }).trim());
}

/** Starts `./sy start --config switchyard.yaml` in the temp directory (a relative path: the caller's). */
async function startViaSy(detached: boolean) {
  const port = await freePort();
  writeConfig(dir, { port, subscriptions: [] });
  const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], {
    cwd: dir,
    env: secretEnv(newSigningSecret()),
    port,
    viaSy: true,
    detached,
  });
  await hub.ready(90_000);
  expect(await pushSlotBooked(hub.url, 'dp', 810001)).toBe(200);
  const postgres = Number(readFileSync(postmasterPid, 'utf8').split('\n')[0]);
  expect(alive(postgres)).toBe(true);
  return { hub, postgres };
}

function expectCleanStop(hub: ReturnType<typeof spawnSwitchyard>, postgres: number, code: number | string) {
  const output = hub.stdout() + hub.stderr();
  expect(code, output.slice(-3000)).toBe(0);
  expect(output).not.toMatch(/Unhandled 'error' event|terminating connection due to administrator command/);
  expect(output).not.toContain('ELIFECYCLE');
  const lines = hub.stdout().split('\n');
  const stopped = lines.findIndex((line) => line.includes('"msg":"embedded Postgres stopped"'));
  expect(stopped).toBeGreaterThan(0);
  expect(lines[stopped + 1]).toContain('"msg":"stopped"');
  // Postgres shut down cleanly (it removes postmaster.pid last) and is gone.
  expect(existsSync(postmasterPid)).toBe(false);
  expect(alive(postgres)).toBe(false);
}

it('Ctrl-C (SIGINT to the terminal foreground group) stops the hub first, then its Postgres: exit 0', async () => {
  const { hub, postgres } = await startViaSy(true);
  const group = hub.child.pid!;
  // The terminal signals its foreground group; the embedded Postgres must not be in it.
  expect(processGroup(group)).toBe(group);
  expect(processGroup(postgres)).not.toBe(group);
  process.kill(-group, 'SIGINT');
  expectCleanStop(hub, postgres, await hub.exited);
}, 150_000);

it('SIGTERM to the PID of ./sy start stops the hub and its Postgres: exit 0', async () => {
  const { hub, postgres } = await startViaSy(false);
  // `./sy start` is the hub itself (exec), not a pnpm that would end alone and leave the hub running.
  expect(hub.stdout()).not.toMatch(/^> switchyard@/m);
  hub.child.kill('SIGTERM');
  expectCleanStop(hub, postgres, await hub.exited);
}, 150_000);

it('SIGHUP (the terminal closed) stops the hub and its Postgres like SIGTERM: exit 0', async () => {
  const { hub, postgres } = await startViaSy(false);
  hub.child.kill('SIGHUP');
  expectCleanStop(hub, postgres, await hub.exited);
}, 150_000);

it('the next start stops a Postgres that a killed hub left running, then starts its own', async () => {
  const { hub, postgres: left } = await startViaSy(false);
  // SIGKILL (the OOM killer, kill -9): the hub cannot stop its Postgres, which runs on in its own group.
  hub.child.kill('SIGKILL');
  await hub.exited;
  expect(alive(left)).toBe(true);
  const { hub: next, postgres } = await startViaSy(false);
  expect(postgres).not.toBe(left);
  expect(alive(left)).toBe(false);
  expect(next.stdout()).toContain(
    '"msg":"embedded Postgres left running by a switchyard process that is gone: stopping it first"',
  );
  next.child.kill('SIGTERM');
  expectCleanStop(next, postgres, await next.exited);
}, 240_000);
