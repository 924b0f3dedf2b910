/**
 * Child-process entry for the pg-boss baselines: raw pg-boss 12 moving jobs through
 * send → work with a no-op handler (throughput), send → handler start at a steady rate
 * (latency), and a queued backlog worked off by a handler that POSTs each job (drain).
 * Configured the fast way the design notes measured: LISTEN/NOTIFY wake-ups (`useListenNotify`
 * and a `notify: true` queue), batches of 50 with `burstWhenBatchFull`.
 */
import { serveChild } from './child.ts';
import { PgBoss } from './deps.ts';
import { percentile, sleep, waitUntil } from './result.ts';

const databaseUrl = process.env.BENCH_DATABASE_URL!;
let boss: PgBoss | undefined;
let queueNo = 0;

const WORK = {
  batchSize: 50,
  burstWhenBatchFull: true,
  pollingIntervalSeconds: 0.5,
  notifyPollingIntervalSeconds: 1,
};

async function freshQueue(): Promise<string> {
  const name = `bench-${++queueNo}`;
  await boss!.createQueue(name, { notify: true });
  return name;
}

serveChild(
  {
    async start() {
      boss = new PgBoss({ connectionString: databaseUrl, useListenNotify: true, max: 10 });
      boss.on('error', () => {});
      await boss.start();
      return {};
    },

    /** n jobs sent `concurrency` at a time while a worker runs them; jobs/s from first send to last done. */
    async throughput(n: number, concurrency: number) {
      const queue = await freshQueue();
      let done = 0;
      await boss!.work<{ i: number }>(queue, WORK, async (jobs) => {
        done += jobs.length;
      });
      const started = performance.now();
      let sent = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (sent < n) {
            const i = sent++;
            await boss!.send(queue, { i });
          }
        }),
      );
      await waitUntil(() => done >= n, 'pg-boss throughput jobs', 600_000, 2);
      const seconds = (performance.now() - started) / 1000;
      await boss!.offWork(queue);
      return { jobsPerSecond: n / seconds, seconds };
    },

    /** Jobs sent at `rate`/s for `durationMs`; latency from before send() to handler start. */
    async latency(rate: number, durationMs: number) {
      const queue = await freshQueue();
      const latencies: number[] = [];
      await boss!.work<{ t: number }>(queue, WORK, async (jobs) => {
        const now = performance.timeOrigin + performance.now();
        for (const job of jobs) latencies.push(now - job.data.t);
      });
      await sleep(500);
      const total = Math.round((rate * durationMs) / 1000);
      const started = performance.now();
      for (let i = 0; i < total; i++) {
        const due = started + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        void boss!.send(queue, { t: performance.timeOrigin + performance.now() });
      }
      await waitUntil(() => latencies.length >= total, 'pg-boss latency jobs', 60_000, 5);
      await boss!.offWork(queue);
      return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), count: latencies.length };
    },

    /** Queues n jobs (insert in chunks, then ANALYZE), then times a worker POSTing each to `url`. */
    async drain(n: number, url: string) {
      const queue = await freshQueue();
      for (let i = 0; i < n; i += 1000) {
        await boss!.insert(
          queue,
          Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ data: { i: i + k } })),
        );
      }
      await boss!.getDb().executeSql('analyze pgboss.job');
      let done = 0;
      const started = performance.now();
      await boss!.work<{ i: number }>(queue, { ...WORK, localConcurrency: 1 }, async (jobs) => {
        await Promise.all(
          jobs.map(async (job) => {
            const res = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(job.data),
            });
            await res.arrayBuffer();
            if (!res.ok) throw new Error(`subscriber answered ${res.status}`);
          }),
        );
        done += jobs.length;
      });
      await waitUntil(() => done >= n, 'pg-boss drain', 600_000, 10);
      const seconds = (performance.now() - started) / 1000;
      await boss!.offWork(queue);
      return { seconds };
    },

    /**
     * Ordered drain: n jobs over `keys` singleton keys (job i has key i % keys), inserted in
     * chunks of 1,000 (one statement each) on a fresh queue of `policy`, ANALYZEd, then worked off
     * by a worker POSTing each job to `url`. Counts jobs a key ran after a later job of that key
     * (pg-boss breaks created_on ties of one insert by random uuid).
     */
    async orderedDrain(n: number, keys: number, url: string, policy: 'standard' | 'key_strict_fifo') {
      const name = `bench-${++queueNo}`;
      await boss!.createQueue(name, { notify: true, policy });
      for (let i = 0; i < n; i += 1000) {
        await boss!.insert(
          name,
          Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({
            data: { i: i + k },
            singletonKey: `key-${(i + k) % keys}`,
          })),
        );
      }
      await boss!.getDb().executeSql('analyze pgboss.job');
      const last = new Map<string, number>();
      let done = 0;
      let outOfOrder = 0;
      const started = performance.now();
      await boss!.work<{ i: number }>(name, { ...WORK, localConcurrency: 1 }, async (jobs) => {
        for (const job of jobs) {
          const key = `key-${job.data.i % keys}`;
          if ((last.get(key) ?? -1) > job.data.i) outOfOrder++;
          last.set(key, job.data.i);
        }
        await Promise.all(
          jobs.map(async (job) => {
            const res = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(job.data),
            });
            await res.arrayBuffer();
            if (!res.ok) throw new Error(`subscriber answered ${res.status}`);
          }),
        );
        done += jobs.length;
      });
      await waitUntil(() => done >= n, `pg-boss ${policy} ordered drain`, 600_000, 10);
      const seconds = (performance.now() - started) / 1000;
      await boss!.offWork(name);
      return { seconds, outOfOrder };
    },

    /**
     * One fetch of `batch` from a queue of `policy` holding `backlog` jobs over `keys` keys
     * (ANALYZEd), repeated `times`: the milliseconds of each fetch (jobs completed between fetches).
     */
    async orderedFetch(
      backlog: number,
      keys: number,
      batch: number,
      times: number,
      policy: 'standard' | 'key_strict_fifo',
    ) {
      const name = `bench-${++queueNo}`;
      await boss!.createQueue(name, { policy });
      for (let i = 0; i < backlog; i += 5000) {
        await boss!.insert(
          name,
          Array.from({ length: Math.min(5000, backlog - i) }, (_, k) => ({
            data: { i: i + k },
            singletonKey: `key-${(i + k) % keys}`,
          })),
        );
      }
      await boss!.getDb().executeSql('analyze pgboss.job');
      const ms: number[] = [];
      for (let t = 0; t < times; t++) {
        const started = performance.now();
        const jobs = await boss!.fetch(name, { batchSize: batch });
        ms.push(performance.now() - started);
        if (jobs.length !== batch) throw new Error(`fetch returned ${jobs.length} of ${batch}`);
        await boss!.complete(
          name,
          jobs.map((j) => j.id),
        );
      }
      return { ms };
    },
  },
  async () => {
    await boss?.stop({ graceful: false, timeout: 2000 }).catch(() => {});
  },
);
