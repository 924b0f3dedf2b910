/**
 * Diagnostic helper (bench/lib/tail-latency.ts, `BENCH_WATCH_DISK=1`): watches, every few
 * milliseconds over a measured window, what can hold a commit's WAL flush back on this machine, so
 * that a cluster of late pushes can be set beside its cause:
 * - the kernel's page cache: `Dirty` and `Writeback` of /proc/meminfo. Postgres writes the pages
 *   a growing table or index adds (relation extension) and the buffers it evicts into the page
 *   cache without a flush; the kernel writes a file's dirty pages back once they are older than
 *   `vm.dirty_expire_centisecs` (30 s by default), all of that file's pages at once. A flush of the
 *   WAL issued while tens of megabytes are being written back queues behind them (bench/analysis.md,
 *   session 32);
 * - the requests in flight on the block device that holds the Postgres data directory
 *   (`/sys/dev/block/<major>:<minor>/stat`, field 9);
 * - statements of one database that have run longer than `slowMs` and are waiting, from
 *   `pg_stat_activity`: which wait (`IO:WALSync`, `LWLock:WALWrite`, …) held them.
 *
 * Reads /proc and /sys of this machine: Postgres must run on it (as every bench participant does).
 *
 * @example
 * ```ts
 * const watch = await watchDisk({ url: adminUrl, database: db.name });
 * // … the measured window …
 * const { writebacks, slowStatements } = await watch.stop();
 * ```
 */
import { readFileSync, statSync } from 'node:fs';
import { pg } from './deps.ts';

/** A stretch of consecutive samples in which something held. */
export interface Episode {
  /** Wall clock (ms since the epoch) of the first and the last sample that found it. */
  from: number;
  to: number;
  /** Writeback: the most kB being written back, and the most requests in flight on the device. */
  peakWritebackKb?: number;
  peakInFlight?: number;
  /** Slow statements: the longest a statement had run, and the waits seen, with how many samples each. */
  longestMs?: number;
  waits?: Record<string, number>;
}

export interface DiskWatch {
  /** Samples taken. */
  samples: number;
  /** The most kB the page cache held dirty in the window, and at the start. */
  peakDirtyKb: number;
  startDirtyKb: number;
  /** Stretches with more than `writebackOverKb` being written back. */
  writebacks: Episode[];
  /** Stretches in which a statement of the database had run longer than `slowMs` and was waiting. */
  slowStatements: Episode[];
  /** When the last sample was taken (an episode whose `to` it is goes on with the next sample). */
  lastAt?: number;
}

/** `Dirty` and `Writeback` of /proc/meminfo, in kB. */
export function pageCache(meminfo = readFileSync('/proc/meminfo', 'utf8')): {
  dirty: number;
  writeback: number;
} {
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? 0);
  return { dirty: kb('Dirty'), writeback: kb('Writeback') };
}

/** The /sys stat file of the block device holding `dir`, or undefined (not a block device here). */
function deviceStat(dir: string): string | undefined {
  try {
    const dev = statSync(dir).dev;
    // Linux's encoding of dev_t (glibc's gnu_dev_major / gnu_dev_minor).
    const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
    const minor = (dev & 0xff) | ((dev >> 12) & ~0xff);
    const file = `/sys/dev/block/${major}:${minor}/stat`;
    readFileSync(file);
    return file;
  } catch {
    return undefined;
  }
}

/**
 * What one sample saw: when it was taken, the page cache, the requests in flight on the device and
 * the slow statements of the database with their waits.
 */
export interface Sample {
  at: number;
  dirtyKb: number;
  writebackKb: number;
  inFlight: number;
  slow: { wait: string; ms: number }[];
}

/**
 * Adds one sample to `watch`. An episode goes on while consecutive samples keep finding what it
 * holds, however far apart they are: on a loaded machine one sample's query can take longer than
 * the interval (a fixed gap in ms split one 300-ms `pg_sleep` into two episodes under CI's
 * parallel test files).
 */
export function addSample(watch: DiskWatch, sample: Sample, writebackOverKb: number): void {
  const onGoing = (episodes: Episode[], found: boolean, update: (e: Episode) => void) => {
    const last = episodes.at(-1);
    const continues = last !== undefined && last.to === watch.lastAt;
    if (found) {
      const episode = continues ? last : { from: sample.at, to: sample.at };
      if (!continues) episodes.push(episode);
      episode.to = sample.at;
      update(episode);
    }
  };
  watch.samples++;
  watch.peakDirtyKb = Math.max(watch.peakDirtyKb, sample.dirtyKb);
  onGoing(watch.writebacks, sample.writebackKb > writebackOverKb, (e) => {
    e.peakWritebackKb = Math.max(e.peakWritebackKb ?? 0, sample.writebackKb);
    e.peakInFlight = Math.max(e.peakInFlight ?? 0, sample.inFlight);
  });
  onGoing(watch.slowStatements, sample.slow.length > 0, (e) => {
    e.waits ??= {};
    for (const r of sample.slow) {
      e.longestMs = Math.max(e.longestMs ?? 0, r.ms);
      e.waits[r.wait] = (e.waits[r.wait] ?? 0) + 1;
    }
  });
  watch.lastAt = sample.at;
}

/**
 * Starts watching. `url` reaches the Postgres server as a superuser (for `data_directory`);
 * `database` is the one whose statements are watched.
 */
export async function watchDisk(o: {
  url: string;
  database: string;
  /** Sampling interval (default 5 ms). */
  everyMs?: number;
  /** A statement counts as slow once it has run this long (default 10 ms). */
  slowMs?: number;
  /** Writeback counts once more than this is being written (default 1,024 kB). */
  writebackOverKb?: number;
}): Promise<{ stop(): Promise<DiskWatch> }> {
  const everyMs = o.everyMs ?? 5;
  const slowMs = o.slowMs ?? 10;
  const writebackOverKb = o.writebackOverKb ?? 1024;
  const client = new pg.Client({ connectionString: o.url });
  await client.connect();
  const dataDir = (await client.query<{ d: string }>('select current_setting($1) as d', ['data_directory']))
    .rows[0]!.d;
  const stat = deviceStat(dataDir);
  const start = pageCache();
  const watch: DiskWatch = {
    samples: 0,
    peakDirtyKb: start.dirty,
    startDirtyKb: start.dirty,
    writebacks: [],
    slowStatements: [],
  };
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const { rows } = await client.query<{ wait: string; ms: number }>(
        `select wait_event_type || ':' || wait_event as wait,
           extract(epoch from clock_timestamp() - query_start) * 1000 as ms
         from pg_stat_activity
         where datname = $1 and pid <> pg_backend_pid() and state = 'active' and wait_event is not null
           and clock_timestamp() - query_start > make_interval(secs => $2::float8 / 1000)`,
        [o.database, slowMs],
      );
      const cache = pageCache();
      addSample(
        watch,
        {
          at: Date.now(),
          dirtyKb: cache.dirty,
          writebackKb: cache.writeback,
          inFlight: stat ? Number(readFileSync(stat, 'utf8').trim().split(/\s+/)[8]) : 0,
          slow: rows.map((r) => ({ wait: r.wait, ms: Number(r.ms) })),
        },
        writebackOverKb,
      );
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      stopping = true;
      try {
        await loop;
      } finally {
        await client.end();
      }
      return watch;
    },
  };
}

/**
 * Lines for a report, moments in ms from `origin` (a run's first push): the page cache, every
 * writeback episode, then how many slow-statement episodes there were and the `longest` of them
 * (default 10) in time order, e.g. `+29202–29294 ms: a statement running 103 ms, waiting on
 * LWLock:WALWrite (32), IO:WALSync (12)`.
 */
export function describeEpisodes(watch: DiskWatch, origin: number, longest = 10): string[] {
  const when = (e: Episode) => `+${(e.from - origin).toFixed(0)}–${(e.to - origin).toFixed(0)} ms`;
  const slow = [...watch.slowStatements]
    .sort((a, b) => b.longestMs! - a.longestMs!)
    .slice(0, longest)
    .sort((a, b) => a.from - b.from);
  return [
    `page cache: ${watch.startDirtyKb.toLocaleString('en')} kB dirty at the start, at most ${watch.peakDirtyKb.toLocaleString('en')} kB (${watch.samples} samples)`,
    ...watch.writebacks.map(
      (e) =>
        `${when(e)}: up to ${e.peakWritebackKb!.toLocaleString('en')} kB being written back, ${e.peakInFlight} requests in flight on the device`,
    ),
    `${watch.slowStatements.length} stretches with a statement held by a wait${watch.slowStatements.length > slow.length ? `, the ${slow.length} longest` : ''}:`,
    ...slow.map(
      (e) =>
        `${when(e)}: a statement running ${e.longestMs!.toFixed(0)} ms, waiting on ${Object.entries(e.waits!)
          .sort((a, b) => b[1] - a[1])
          .map(([w, n]) => `${w} (${n})`)
          .join(', ')}`,
    ),
  ];
}
