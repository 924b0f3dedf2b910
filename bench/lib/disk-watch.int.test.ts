/**
 * The disk watch of bench/lib/tail-latency.ts against a real Postgres and this machine's page
 * cache: it finds a statement of the watched database held by a wait, and the kernel writing a
 * file back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../packages/testing/src/index.ts';
import { pg } from './deps.ts';
import { describeEpisodes, pageCache, watchDisk } from './disk-watch.ts';

const db = useTestDatabase();

describe('pageCache', () => {
  it('reads Dirty and Writeback from /proc/meminfo', () => {
    const meminfo = 'MemTotal:       24641536 kB\nDirty:             84380 kB\nWriteback:          3428 kB\n';
    expect(pageCache(meminfo)).toEqual({ dirty: 84_380, writeback: 3_428 });
    const here = pageCache();
    expect(Number.isInteger(here.dirty) && here.dirty >= 0).toBe(true);
  });
});

describe('watchDisk', () => {
  // The server's own database, for a statement that is not the watched database's.
  const adminUrl = () => {
    const admin = new URL(db.url());
    admin.pathname = '/postgres';
    return admin.toString();
  };
  it('finds a statement of the database that waits, with its wait, and only that database', async () => {
    const watch = await watchDisk({ url: db.url(), database: db.name(), slowMs: 50 });
    const client = new pg.Client({ connectionString: db.url() });
    const other = new pg.Client({ connectionString: adminUrl() });
    await Promise.all([client.connect(), other.connect()]);
    try {
      // Another database's wait is not this database's.
      await other.query('select pg_sleep(0.3)');
      await client.query('select pg_sleep(0.3)');
    } finally {
      await Promise.all([client.end(), other.end()]);
    }
    const seen = await watch.stop();
    expect(seen.samples).toBeGreaterThan(10);
    expect(seen.slowStatements).toHaveLength(1);
    const [episode] = seen.slowStatements;
    expect(Object.keys(episode!.waits!)).toEqual(['Timeout:PgSleep']);
    expect(episode!.longestMs).toBeGreaterThan(200);
    expect(episode!.to - episode!.from).toBeGreaterThan(150);
    const lines = describeEpisodes(seen, episode!.from - 1000);
    expect(lines.at(-1)).toMatch(
      /^\+1000–1\d\d\d ms: a statement running \d+ ms, waiting on Timeout:PgSleep \(\d+\)$/,
    );
  });

  it('finds the kernel writing a file back', async () => {
    const watch = await watchDisk({ url: db.url(), database: db.name(), everyMs: 2 });
    const dir = mkdtempSync(join(tmpdir(), 'sy-disk-watch-'));
    try {
      // 256 MiB left dirty, then flushed from libuv's thread pool while the watch samples.
      const file = await open(join(dir, 'f'), 'w');
      const chunk = Buffer.alloc(1024 * 1024, 7);
      for (let i = 0; i < 256; i++) await file.write(chunk);
      await file.sync();
      await file.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const seen = await watch.stop();
    expect(seen.peakDirtyKb).toBeGreaterThan(seen.startDirtyKb);
    expect(seen.writebacks.length).toBeGreaterThan(0);
    expect(Math.max(...seen.writebacks.map((e) => e.peakWritebackKb!))).toBeGreaterThan(1024);
  });
});
