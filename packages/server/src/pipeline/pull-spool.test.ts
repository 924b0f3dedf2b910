/**
 * The pull spool's files: sealed (no payload in clear), read back whole with their times, kept per
 * database, unreadable under another key (left in place), and a half-written file is no batch.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deriveKey, openSecret, sealSecret } from '../delivery/secret-box.ts';
import type { NewInbound } from '../inbound/store.ts';
import { databaseKey, MAX_SPOOL_FILE_BYTES, PullSpool } from './pull-spool.ts';

const cipherOf = (material: string) => {
  const key = deriveKey(material);
  return {
    seal: (plaintext: string, context: string) => sealSecret(plaintext, key, context),
    open: (sealed: string, context: string) => openSecret(sealed, key, context),
  };
};
const cipher = cipherOf('pull-spool-test-key-0123456789');
const DB = 'postgres://app:pw@db.internal:5432/hub';

const item: NewInbound = {
  id: 'a1',
  instanceId: 'dp',
  route: 'pull',
  dedupeKey: 'slot-booked:1',
  vendorType: 'slot-booked',
  orderingKey: 'booking:1',
  occurredAt: '2026-03-08T18:04:11+01:00',
  gate: false,
  payload: {
    name: 'slot-booked',
    data: { visit_booking: { patient: { name: 'Anna', nin: '85010112345' } } },
  },
  meta: null,
  bodyId: null,
  headers: null,
  sourceIp: null,
  origin: 'pull',
  receivedAt: new Date('2026-03-08T17:04:12.345Z'),
};

describe('the pull spool', () => {
  it('writes a batch sealed, reads it back whole, and removes it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'switchyard-spool-'));
    const spool = new PullSpool(root, DB, cipher);
    const file = await spool.write('dp', [item]);
    const text = readFileSync(file, 'utf8');
    // Only the instance id in clear (the sealed value is base64url: no quote, so "Anna" cannot occur by chance).
    expect(Object.keys(JSON.parse(text))).toEqual(['v', 'instanceId', 'sealed']);
    expect(text).not.toMatch(/"Anna"|85010112345|slot-booked|app:pw/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(spool.dir).mode & 0o777).toBe(0o700);
    expect(await spool.pending()).toEqual({
      batches: [{ file, instanceId: 'dp', items: [item] }],
      unreadable: [],
    });
    await spool.remove(file);
    await spool.remove(file); // already gone: another process stored it
    expect(await spool.pending()).toEqual({ batches: [], unreadable: [] });
  });

  it("keeps each database's batches apart, never naming the password", async () => {
    const root = mkdtempSync(join(tmpdir(), 'switchyard-spool-'));
    await new PullSpool(root, DB, cipher).write('dp', [item]);
    const other = new PullSpool(root, 'postgres://app:pw@db.internal:5432/other', cipher);
    expect((await other.pending()).batches).toEqual([]);
    // The same database under another password (rotated) is the same spool.
    expect(databaseKey('postgres://app:new@db.internal:5432/hub')).toBe(databaseKey(DB));
    expect(readdirSync(root).join()).not.toMatch(/pw|db\.internal/);
  });

  it('leaves a file another key sealed in place, reported, and a half-written one alone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'switchyard-spool-'));
    const file = await new PullSpool(root, DB, cipherOf('another-secret-key-9876543210')).write('dp', [item]);
    const spool = new PullSpool(root, DB, cipher);
    writeFileSync(join(spool.dir, '1-2-3.partial'), '{"v":1,');
    const { batches, unreadable } = await spool.pending();
    expect(batches).toEqual([]);
    expect(unreadable).toEqual([{ file, reason: expect.stringMatching(/./) }]);
    expect(readdirSync(spool.dir).sort()).toEqual(['1-2-3.partial', file.split('/').pop()]);
  });

  it('reads batches only from regular files of its own: a FIFO, a link or a huge file is reported, not read', async () => {
    const root = mkdtempSync(join(tmpdir(), 'switchyard-spool-'));
    const spool = new PullSpool(root, DB, cipher);
    const file = await spool.write('dp', [item]);
    // A FIFO: reading it would wait for a writer forever, and the pull loop with it.
    execFileSync('mkfifo', [join(spool.dir, '0-fifo.spool')]);
    // A link to a batch elsewhere (or to /dev/zero, which never ends).
    const elsewhere = join(mkdtempSync(join(tmpdir(), 'switchyard-elsewhere-')), 'copy');
    copyFileSync(file, elsewhere);
    symlinkSync(elsewhere, join(spool.dir, '0-link.spool'));
    // Larger than any batch (sparse: no disk used), not read into memory.
    writeFileSync(join(spool.dir, '0-huge.spool'), '');
    truncateSync(join(spool.dir, '0-huge.spool'), MAX_SPOOL_FILE_BYTES + 1);
    const found = await Promise.race([
      spool.pending(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2_000)),
    ]);
    expect(found?.batches).toEqual([{ file, instanceId: 'dp', items: [item] }]);
    expect(found?.unreadable.map((u) => [u.file.split('/').pop(), u.reason])).toEqual([
      ['0-fifo.spool', 'not a regular file'],
      ['0-huge.spool', `${MAX_SPOOL_FILE_BYTES + 1} bytes, more than a batch (${MAX_SPOOL_FILE_BYTES})`],
      ['0-link.spool', 'a symbolic link, not a file of the spool'],
    ]);
  }, 10_000);

  it('is not used in a directory other users may write', async () => {
    const root = mkdtempSync(join(tmpdir(), 'switchyard-spool-'));
    const spool = new PullSpool(root, DB, cipher);
    await spool.ensure();
    chmodSync(spool.dir, 0o777);
    // ensure() is checked before each fetch; a new process (a new spool object) checks again.
    await expect(new PullSpool(root, DB, cipher).ensure()).rejects.toThrow(
      /may be written by other users \(mode 777\)/,
    );
    chmodSync(spool.dir, 0o700);
    chmodSync(root, 0o777);
    await expect(new PullSpool(root, DB, cipher).write('dp', [item])).rejects.toThrow(/mode 777/);
    // A shared directory with the sticky bit (others cannot remove what is not theirs) is fine.
    chmodSync(root, 0o1777);
    await new PullSpool(root, DB, cipher).ensure();
  });

  it.skipIf(process.getuid?.() !== 0)("is not used in another user's directory", async () => {
    const root = mkdtempSync(join(tmpdir(), 'switchyard-spool-'));
    const spool = new PullSpool(root, DB, cipher);
    await spool.ensure();
    chownSync(spool.dir, 65534, 65534);
    await expect(new PullSpool(root, DB, cipher).ensure()).rejects.toThrow(/belongs to uid 65534/);
  });

  // A disk that fills up: a small tmpfs of its own (root, and a kernel that lets it mount one).
  it.skipIf(process.getuid?.() !== 0)(
    'refuses to be used once its disk is full, until it has room again',
    async (ctx) => {
      const root = mkdtempSync(join(tmpdir(), 'switchyard-full-'));
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', root], {
          stdio: 'ignore',
        });
      } catch {
        ctx.skip();
      }
      try {
        const spool = new PullSpool(root, DB, cipher);
        await spool.ensure();
        // Fill the disk: an empty file still fits (tmpfs has inodes left), a block does not.
        const filler = join(root, 'filler');
        writeFileSync(filler, '');
        for (let i = 0; ; i++) {
          try {
            writeFileSync(filler, Buffer.alloc(4096), { flag: 'a' });
          } catch {
            break;
          }
          if (i > 1000) throw new Error('the disk never filled');
        }
        await expect(spool.write('dp', [item])).rejects.toThrow(/ENOSPC/);
        // The check before the next fetch writes again, and refuses: nothing more is taken from a
        // vendor that only memory would hold (before, the first check held for the process's life,
        // and an empty probe passed a full disk anyway).
        await expect(spool.ensure()).rejects.toThrow(/ENOSPC/);
        await expect(new PullSpool(root, DB, cipher).ensure()).rejects.toThrow(/ENOSPC/);
        expect(readdirSync(spool.dir)).toEqual([]);
        rmSync(filler);
        await spool.ensure();
        expect((await spool.pending()).batches).toEqual([]);
      } finally {
        execFileSync('umount', [root]);
      }
    },
  );
});
