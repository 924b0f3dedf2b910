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
import { addSample, type DiskWatch, describeEpisodes, pageCache, watchDisk } from './disk-watch.ts';

const db = useTestDatabase();

describe('pageCache', () => {
  it('reads Dirty and Writeback from /proc/meminfo', () => {
    const meminfo = 'MemTotal:       24641536 kB\nDirty:             84380 kB\nWriteback:          3428 kB\n';
    expect(pageCache(meminfo)).toEqual({ dirty: 84_380, writeback: 3_428 });
    const here = pageCache();
    expect(Number.isInteger(here.dirty) && here.dirty >= 0).toBe(true);
  });
});

describe('addSample', () => {
  const empty = (): DiskWatch => ({
    samples: 0,
    peakDirtyKb: 0,
    startDirtyKb: 0,
    writebacks: [],
    slowStatements: [],
  });
  const sample = (at: number, slowMs?: number, writebackKb = 0) => ({
    at,
    dirtyKb: 10,
    writebackKb,
    inFlight: 3,
    slow: slowMs === undefined ? [] : [{ wait: 'IO:WALSync', ms: slowMs }],
  });

  it('goes on with an episode while consecutive samples find it, however late a sample comes', () => {
    const watch = empty();
    // The second sample's query took 120 ms on a loaded machine: still the same statement.
    for (const s of [sample(0, 20, 2048), sample(120, 140, 4096), sample(125, 145)])
      addSample(watch, s, 1024);
    expect(watch.samples).toBe(3);
    expect(watch.slowStatements).toEqual([{ from: 0, to: 125, longestMs: 145, waits: { 'IO:WALSync': 3 } }]);
    expect(watch.writebacks).toEqual([{ from: 0, to: 120, peakWritebackKb: 4096, peakInFlight: 3 }]);
  });

  it('starts a new episode after a sample that found nothing', () => {
    const watch = empty();
    for (const s of [sample(0, 20), sample(5), sample(10, 30)]) addSample(watch, s, 1024);
    expect(watch.slowStatements.map((e) => [e.from, e.to])).toEqual([
      [0, 0],
      [10, 10],
    ]);
    expect(watch.writebacks).toEqual([]);
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
    let ownStart = 0;
    try {
      // Another database's wait is not this database's.
      await other.query('select pg_sleep(0.3)');
      ownStart = Date.now();
      await client.query('select pg_sleep(0.3)');
    } finally {
      await Promise.all([client.end(), other.end()]);
    }
    const seen = await watch.stop();
    expect(seen.samples).toBeGreaterThan(10);
    // Every episode is the watched database's sleep (the other one's ended before it began); a
    // sample taken in the instant pg_sleep wakes between two waits finds nothing and splits it, so
    // the test reads their span and the last rather than counting.
    const first = seen.slowStatements[0];
    const episode = seen.slowStatements.at(-1);
    expect(first!.from).toBeGreaterThanOrEqual(ownStart);
    for (const e of seen.slowStatements) expect(Object.keys(e.waits!)).toEqual(['Timeout:PgSleep']);
    expect(episode!.longestMs).toBeGreaterThan(200);
    expect(episode!.to - first!.from).toBeGreaterThan(150);
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
