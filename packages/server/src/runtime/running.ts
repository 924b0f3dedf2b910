/**
 * Where the running hub processes of a config file listen, for the commands that talk HTTP to them
 * (`switchyard push`): each process that takes vendor traffic (role `all` or `http`) writes
 * `.switchyard/hub-<pid>.json` beside its config file once it listens, and removes it when it
 * stops. `./sy start --port 8091` listens where the file's `server.port` does not say; a push read
 * the port from the file (or `server.publicUrl`) and went to the wrong hub, or to none.
 *
 * A push sends the instance's vendor credentials (or signs with its secret) to the URL it finds, so
 * a file is believed only when this user's own hub wrote it ({@link runningHubs}): another local
 * user who can write to the directory (a config in a shared directory, a `.switchyard` made
 * group-writable) must not redirect a push to a listener of theirs, nor make a hub write through a
 * link they planted ({@link publishRunningHub} writes a new file and renames it into place).
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

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
  // A new file (never an existing name, which could be a link planted to make this process write
  // elsewhere), renamed over the name: rename replaces a link, it does not follow it.
  const temp = join(dir, `.${PREFIX}${hub.pid}-${randomUUID()}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(JSON.stringify({ ...hub, config: resolve(hub.config) }));
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    onError(error);
    return async () => {};
  }
  return () => rm(file, { force: true }).catch(() => {});
}

/** The `pid` of a `hub-<pid>.json` name. */
function namedPid(name: string): number | undefined {
  const digits = name.slice(PREFIX.length, -'.json'.length);
  return /^[1-9][0-9]{0,9}$/.test(digits) ? Number(digits) : undefined;
}

/**
 * Whether `pid` is a live process of this user (signal 0 allowed). EPERM, a process of another
 * user, is no hub of this user's: the pid of one that died, reused.
 */
function liveOwnProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * When `pid` started, ms since the epoch, where the system says (Linux's /proc); undefined
 * elsewhere. A process started after a hub file was written is not the hub that wrote it, only
 * its pid reused after a kill -9 left the file.
 */
async function processStart(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime, clock ticks since boot), counted after the command's closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const boot = /^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'));
    if (!Number.isFinite(ticks) || !boot) return undefined;
    // USER_HZ is 100 on every Linux ABI Node runs on.
    return Number(boot[1]) * 1000 + ticks * 10;
  } catch {
    return undefined;
  }
}

/**
 * One hub file, when this user's own hub wrote it: a regular file (not a link), owned by this user
 * and writable by no one else, read through the descriptor those were checked on.
 */
async function readOwnFile(file: string): Promise<{ text: string; mtimeMs: number } | undefined> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    const uid = process.getuid?.();
    if (!stat.isFile() || stat.size > 64 * 1024) return undefined;
    if (uid !== undefined && (stat.uid !== uid || (stat.mode & 0o022) !== 0)) return undefined;
    return { text: await handle.readFile('utf8'), mtimeMs: stat.mtimeMs };
  } finally {
    await handle.close();
  }
}

/**
 * The hub processes running now with `configFile` that take vendor traffic, oldest first (by pid:
 * any of them takes a push). A file left by a process that is gone (killed) is ignored, and so is
 * one this user's hub did not write: a link, another user's file or one others may write, a pid
 * other than its name's, a pid that is not this user's process or started after the file was
 * written (reused), a URL that is not plain http(s).
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
      const pid = namedPid(name);
      if (pid === undefined) continue;
      const own = await readOwnFile(join(dir, name));
      if (!own) continue;
      const hub = JSON.parse(own.text) as Partial<RunningHub>;
      if (
        typeof hub.url !== 'string' ||
        hub.pid !== pid ||
        hub.config !== config ||
        hub.role === 'worker' ||
        !plainHttpUrl(hub.url) ||
        !liveOwnProcess(pid)
      )
        continue;
      // A second of slack: the file's time and the start time are kept at different precisions.
      const started = await processStart(pid);
      if (started !== undefined && started > own.mtimeMs + 1000) continue;
      found.push(hub as RunningHub);
    } catch {
      // Being written or removed right now, or not ours: not a running hub.
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** An http(s) URL without credentials, as a hub publishes its listen address. */
function plainHttpUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (
      (parsed.protocol === 'http:' || parsed.protocol === 'https:') &&
      parsed.username === '' &&
      parsed.password === ''
    );
  } catch {
    return false;
  }
}
