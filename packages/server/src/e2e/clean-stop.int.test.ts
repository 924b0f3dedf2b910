/**
 * A graceful stop on the embedded Postgres, logged at debug: the hub closes every connection
 * before it stops its Postgres, so nothing in the log is at warning level or above, and no session
 * was still open to be terminated ("terminating connection due to administrator command", 57P01).
 * Before, pg's `pool.end()` resolved as soon as it had asked its connections to end, and the
 * Postgres stopped right after terminated those not closed yet: Postgres's FATAL line in about half
 * of the stops (the connections of the hub's pool; the same race on a pg-boss connection once
 * reached the log as a warning, see pipeline/hub-stop.int.test.ts).
 */
import { chmodSync } from 'node:fs';
import { freePort } from '@switchyard/testing';
import { expect, it } from 'vitest';
import {
  newSigningSecret,
  pushSlotBooked,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  writeConfig,
} from './helpers.test-support.ts';

it('four graceful stops on the embedded Postgres: no session terminated, no warning or error line', async () => {
  const dir = tempDir('clean-stop');
  // Run as root, Postgres runs as the OS user "postgres", which must traverse the directory.
  chmodSync(dir, 0o755);
  for (let round = 0; round < 4; round++) {
    const port = await freePort();
    writeConfig(dir, { port, subscriptions: [], logLevel: 'debug' });
    const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], {
      cwd: dir,
      env: secretEnv(newSigningSecret()),
      port,
    });
    await hub.ready(90_000);
    expect(await pushSlotBooked(hub.url, 'dp', 820_001 + round)).toBe(200);
    expect(await hub.stop('SIGTERM')).toBe(0);
    const lines = (hub.stdout() + hub.stderr()).split('\n');
    const stopping = lines.findIndex((line) => line.includes('"msg":"stopping: no new requests'));
    expect(stopping).toBeGreaterThan(0);
    const afterStop = lines.slice(stopping).join('\n');
    expect(afterStop, `round ${round}`).not.toMatch(/administrator command|57P01/);
    expect(
      lines.filter((line) => /^\{"level":(40|50|60)/.test(line)),
      `round ${round}`,
    ).toEqual([]);
    expect(afterStop).toContain('"msg":"stopped"');
  }
}, 240_000);
