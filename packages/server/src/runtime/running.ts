/**
 * Where the running hub processes of a config file listen, for the commands that talk HTTP to them
 * (`switchyard push`): each process that takes vendor traffic (role `all` or `http`) writes
 * `.switchyard/hub-<pid>.json` beside its config file once it listens, and removes it when it
 * stops. `./sy start --port 8091` listens where the file's `server.port` does not say; a push read
 * the port from the file (or `server.publicUrl`) and went to the wrong hub, or to none.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { alive } from './database.ts';

/** What a running process publishes about itself. */
export interface RunningHub {
  /** Its listen address as a local client reaches it, e.g. `http://127.0.0.1:8091`. */
  url: string;
  pid: number;
  role: string;
  /** The config file it was started with, absolute. */
  config: string;
}

const PREFIX = 'hub-';

/** The `.switchyard` directory beside a config file (where the embedded Postgres lives too). */
function runningDir(configFile: string): string {
  return join(dirname(resolve(configFile)), '.switchyard');
}

/**
 * Publishes this process's listen address for its config file; resolves with the function that
 * withdraws it. Best effort: a config directory this process may not write to (a read-only
 * `/etc/switchyard`) publishes nothing, and `onError` hears why (the hub runs all the same).
 *
 * @example
 * ```ts
 * const withdraw = await publishRunningHub({ url: 'http://127.0.0.1:8091', pid: process.pid, role: 'all', config: file });
 * await withdraw(); // on stop
 * ```
 */
export async function publishRunningHub(
  hub: RunningHub,
  onError: (error: unknown) => void = () => {},
): Promise<() => Promise<void>> {
  const dir = runningDir(hub.config);
  const file = join(dir, `${PREFIX}${hub.pid}.json`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(file, JSON.stringify({ ...hub, config: resolve(hub.config) }));
  } catch (error) {
    onError(error);
    return async () => {};
  }
  return () => rm(file, { force: true }).catch(() => {});
}

/**
 * The hub processes running now with `configFile` that take vendor traffic, oldest first (by pid:
 * any of them takes a push). A file left by a process that is gone (killed) is ignored.
 *
 * @example
 * ```ts
 * const [hub] = await runningHubs('switchyard.yaml'); // { url: 'http://127.0.0.1:8091', ... } or undefined
 * ```
 */
export async function runningHubs(configFile: string): Promise<RunningHub[]> {
  const dir = runningDir(configFile);
  const config = resolve(configFile);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith(PREFIX) && n.endsWith('.json'));
  } catch {
    return [];
  }
  const found: RunningHub[] = [];
  for (const name of names) {
    try {
      const hub = JSON.parse(await readFile(join(dir, name), 'utf8')) as Partial<RunningHub>;
      if (
        typeof hub.url === 'string' &&
        typeof hub.pid === 'number' &&
        hub.config === config &&
        hub.role !== 'worker' &&
        alive(hub.pid)
      )
        found.push(hub as RunningHub);
    } catch {
      // Being written or removed right now, or not ours: not a running hub.
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}
