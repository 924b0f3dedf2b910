/**
 * The pull spool: pulled notifications on local disk from the moment the vendor handed them over
 * until they are stored. Docplanner's pull is destructive (a pulled notification is gone from its
 * queue), so while the database refuses them the process's memory held the only copy, and a crash
 * (kill -9, OOM, a host reboot) lost them. Each batch is one file, written to a temporary name,
 * fsynced and renamed (with the directory fsynced), so a file either holds a whole batch or is not
 * there; it is removed once the batch is stored. What a crash left is stored at the next start.
 *
 * The payloads are patient data (names, phone numbers, national ids, video-call links): each file
 * is sealed with the hub's `secretKey` (AES-256-GCM, delivery/secret-box.ts), bound to its
 * database and instance, so a file is neither readable nor movable onto another instance. Files are
 * kept per database (a directory named by a hash of the URL's host, port and database name, never
 * its password), so hubs of several databases on one host never store each other's notifications.
 *
 * Another local user must not be able to remove, swap or stall what the spool keeps (they cannot
 * forge a file without the `secretKey`): the spool is used only when its directory and the one it
 * is in belong to this user (or root) and no one else may write them (a shared directory with the
 * sticky bit, as /tmp, aside), and a batch is read only from a regular file of this user, not a
 * link, a FIFO or a device, and of at most {@link MAX_SPOOL_FILE_BYTES}.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SecretCipher } from '../delivery/secret-box.ts';
import type { NewInbound } from '../inbound/store.ts';

const SUFFIX = '.spool';
/** What the check before a fetch writes: a block, which a full disk refuses (an empty file it takes). */
const PROBE = 'x'.repeat(4096);

/**
 * The largest spool file read back, bytes: a batch is at most a few vendor answers (each read up to
 * 16 MiB), sealed; a larger file is no batch of this hub's, reported and left rather than read
 * into memory whole (a link to /dev/zero never ends).
 */
export const MAX_SPOOL_FILE_BYTES = 128 * 1024 * 1024;
const TEMP_SUFFIX = '.partial';

/** A batch read back from the spool. */
export interface SpooledBatch {
  /** The file it was read from (remove it with {@link PullSpool.remove} once stored). */
  file: string;
  instanceId: string;
  items: NewInbound[];
}

/** A spool file that could not be read back (another `secretKey`, a damaged disk): left in place. */
export interface UnreadableSpoolFile {
  file: string;
  reason: string;
}

/**
 * Which database a spool directory belongs to: the URL's host, port and database name (and a
 * `host` parameter, for a Unix socket), hashed. Never the user or password.
 *
 * @example
 * ```ts
 * databaseKey('postgres://app:pw@db.internal:5432/hub'); // '5c1f…' (16 hex digits)
 * ```
 */
export function databaseKey(databaseUrl: string): string {
  let identity = databaseUrl;
  try {
    const url = new URL(databaseUrl);
    identity = `${url.hostname}:${url.port || '5432'}${url.pathname}?${url.searchParams.get('host') ?? ''}`;
  } catch {
    // Not a URL (a libpq key=value string): the whole string, hashed, names it.
  }
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/**
 * The spool of one hub (one database) in `dir`.
 *
 * @example
 * ```ts
 * const spool = new PullSpool('/var/lib/switchyard/pull-spool', databaseUrl, rt.cipher);
 * const file = await spool.write('dp-main', items); // fsynced: the batch survives a crash now
 * await store(items);
 * await spool.remove(file);
 * ```
 */
export class PullSpool {
  /** The spool's root (`workers.pullSpoolDir`); {@link dir} is this database's directory in it. */
  readonly root: string;
  readonly dir: string;
  private readonly key: string;
  private readonly cipher: SecretCipher;
  private ready: Promise<void> | undefined;

  constructor(root: string, databaseUrl: string, cipher: SecretCipher) {
    this.key = databaseKey(databaseUrl);
    this.root = root;
    this.dir = join(root, this.key);
    this.cipher = cipher;
  }

  private context(instanceId: string): string {
    return `pull-spool:${this.key}:${instanceId}`;
  }

  /**
   * Makes the directory (once; again after a failure). Throws when it cannot be made or written:
   * the pull worker then takes nothing from a vendor (it could not keep it).
   */
  async ensure(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await checkPrivate(dirname(this.dir), true);
      await checkPrivate(this.dir, false);
      // Written, not only made: a read-only disk is found before a vendor hands anything over, and
      // a full one too (an empty file takes no block: a full disk took it, and every batch after).
      const probe = join(this.dir, `probe-${process.pid}-${randomUUID()}${TEMP_SUFFIX}`);
      try {
        await writeDurably(probe, PROBE);
      } finally {
        await rm(probe, { force: true });
      }
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /**
   * Writes one batch and fsyncs it; returns its file. Throws when the disk refuses, and the next
   * {@link ensure} then checks the disk again (a disk that filled up refuses until it has room).
   */
  async write(instanceId: string, items: readonly NewInbound[]): Promise<string> {
    await this.ensure();
    try {
      return await this.writeBatch(instanceId, items);
    } catch (error) {
      this.ready = undefined;
      throw error;
    }
  }

  private async writeBatch(instanceId: string, items: readonly NewInbound[]): Promise<string> {
    const name = `${Date.now()}-${process.pid}-${randomUUID()}`;
    const file = join(this.dir, `${name}${SUFFIX}`);
    const temp = join(this.dir, `${name}${TEMP_SUFFIX}`);
    const sealed = this.cipher.seal(JSON.stringify(items), this.context(instanceId));
    const record = `${JSON.stringify({ v: 1, instanceId, sealed })}\n`;
    // What could not be read back is not kept by writing it.
    if (Buffer.byteLength(record) > MAX_SPOOL_FILE_BYTES)
      throw new Error(`the batch sealed is larger than ${MAX_SPOOL_FILE_BYTES} bytes`);
    try {
      await writeDurably(temp, record);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => {});
      throw error;
    }
    await rename(temp, file);
    await syncDirectory(this.dir);
    return file;
  }

  /** Removes a stored batch's file (already gone: another process stored it at its start). */
  async remove(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  /**
   * The batches left in the spool, oldest first (a crash, or a stop while the database was down),
   * and the files that cannot be read back. Files still being written (`.partial`: a process that
   * died mid-write never finished them, a live one is writing them) are not batches: left alone.
   */
  async pending(): Promise<{ batches: SpooledBatch[]; unreadable: UnreadableSpoolFile[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { batches: [], unreadable: [] };
      throw error;
    }
    const batches: SpooledBatch[] = [];
    const unreadable: UnreadableSpoolFile[] = [];
    for (const name of names.sort()) {
      const file = join(this.dir, name);
      if (!name.endsWith(SUFFIX)) continue;
      try {
        const record = JSON.parse(await readOwnFile(file)) as {
          v?: unknown;
          instanceId?: unknown;
          sealed?: unknown;
        };
        if (record.v !== 1 || typeof record.instanceId !== 'string' || typeof record.sealed !== 'string')
          throw new Error('not a pull spool record');
        const items = JSON.parse(this.cipher.open(record.sealed, this.context(record.instanceId))) as Array<
          NewInbound & { receivedAt: string }
        >;
        batches.push({
          file,
          instanceId: record.instanceId,
          items: items.map((i) => ({ ...i, receivedAt: new Date(i.receivedAt) })),
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // stored meanwhile
        unreadable.push({ file, reason: (error as Error).message });
      }
    }
    return { batches, unreadable };
  }
}

/**
 * What an operator does about a spool that cannot be written: said by the start's error line and by
 * `switchyard validate`. A container's config directory is a read-only mount (a ConfigMap) and the
 * default root is beside the config file.
 *
 * @example
 * ```ts
 * spoolFix('/etc/switchyard/.switchyard/pull-spool');
 * // 'set workers.pullSpoolDir to a directory on a writable volume (…), or mount one at …'
 * ```
 */
export function spoolFix(root: string): string {
  return `set workers.pullSpoolDir to a directory on a writable volume (of this process's user, not writable by others), or mount one at ${root} (docs/operations.md, "Containers")`;
}

/**
 * Why the spool root `root` could not be used by this process, found without writing anything
 * (`switchyard validate`): the closest directory that exists on its path must be a directory this
 * user may write and enter (a read-only mount, EROFS, is refused too), and an existing root must
 * pass the checks {@link PullSpool.ensure} makes. Undefined when it looks usable; a full disk is
 * found only by writing, at the start.
 *
 * @example
 * ```ts
 * await spoolRootProblem('/etc/switchyard/.switchyard/pull-spool');
 * // "/etc/switchyard cannot be written by this process's user (EACCES)"
 * ```
 */
export async function spoolRootProblem(root: string): Promise<string | undefined> {
  let dir = root;
  for (;;) {
    const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
    if (!(info instanceof Error)) {
      if (!info.isDirectory()) return `${dir} is not a directory`;
      break;
    }
    if (info.code !== 'ENOENT' || dirname(dir) === dir) return `${dir}: ${info.code ?? info.message}`;
    dir = dirname(dir);
  }
  const denied = await access(dir, constants.W_OK | constants.X_OK).catch(
    (error: NodeJS.ErrnoException) => error.code ?? error.message,
  );
  if (denied) return `${dir} cannot be written by this process's user (${denied})`;
  if (dir === root)
    return checkPrivate(root, true).then(
      () => undefined,
      (error: Error) => error.message,
    );
  return undefined;
}

/**
 * Throws unless `dir` is a directory of this user (or root, for the one the spool is in) that no
 * one else may write: another user who can write it can remove or swap the spool's files.
 * `sharedOk`: a directory others may write is accepted with the sticky bit (they cannot remove or
 * rename what is not theirs). Not checked where there are no uids (Windows).
 */
async function checkPrivate(dir: string, sharedOk: boolean): Promise<void> {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const info = await stat(dir);
  if (!info.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (info.uid !== uid && !(sharedOk && info.uid === 0))
    throw new Error(`${dir} belongs to uid ${info.uid}, not to this process's user (uid ${uid})`);
  const sticky = (info.mode & 0o1000) !== 0;
  if ((info.mode & 0o022) !== 0 && !(sharedOk && sticky))
    throw new Error(`${dir} may be written by other users (mode ${(info.mode & 0o7777).toString(8)})`);
}

/**
 * A spool file's text: a regular file (not a link, a FIFO that would block the read forever, or a
 * device), this user's, of at most {@link MAX_SPOOL_FILE_BYTES}, read through the descriptor those
 * were checked on.
 */
async function readOwnFile(file: string): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (error: NodeJS.ErrnoException) => {
      throw error.code === 'ELOOP' ? new Error('a symbolic link, not a file of the spool') : error;
    },
  );
  try {
    const info = await handle.stat();
    const uid = process.getuid?.();
    if (!info.isFile()) throw new Error('not a regular file');
    if (uid !== undefined && info.uid !== uid)
      throw new Error(`owned by uid ${info.uid}, not this process's user`);
    if (info.size > MAX_SPOOL_FILE_BYTES)
      throw new Error(`${info.size} bytes, more than a batch (${MAX_SPOOL_FILE_BYTES})`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The rename is durable only once the directory's entry is (POSIX). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
