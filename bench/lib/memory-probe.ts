/**
 * Diagnostic (not a scenario): `node bench/lib/memory-probe.ts [events] [node flags...]` starts a
 * hub child (bench/lib/hub-process.ts, all roles, one subscription) with the given Node flags,
 * pushes `events` Docplanner bookings (default 10,000) with autocannon, waits for every delivery and
 * prints the child's memory from /proc (VmHWM, RssAnon, RssFile) after start-up and at the end,
 * and the child's CPU time per event (utime + stime) over the load.
 * It is how the peak-RSS findings in docs/benchmarks.md were compared: run it with and without a
 * flag (say `--max-semi-space-size=4`) in alternation.
 */
import { readFileSync } from 'node:fs';
import { createTestDatabase } from '../../packages/testing/src/index.ts';
import { startChild } from './child.ts';
import { cannon, hookUrl } from './load.ts';
import { waitUntil } from './result.ts';
import { HUB_ENTRY } from './scenario.ts';
import { startFastSubscriber } from './subscriber.ts';

const events = Number(process.argv[2] ?? 10_000);
const flags = process.argv.slice(3);

/** utime + stime of a process, ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The memory lines of /proc/<pid>/status, MiB. */
function memory(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(VmHWM|VmRSS|RssAnon|RssFile):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Math.round(Number(m[2]) / 1024);
  }
  return out;
}

const db = await createTestDatabase({ adminUrl: process.env.DATABASE_URL, prefix: 'sy_bench_' });
const child = await startChild(HUB_ENTRY, { BENCH_DATABASE_URL: db.url }, flags);
const subscriber = await startFastSubscriber();
try {
  const { port } = await child.call<{ port: number }>('start', {});
  await child.call('subscribe', subscriber.url, 1);
  const pid = child.process.pid!;
  console.log(`flags: ${flags.join(' ') || '(none)'}`);
  console.log('started:', JSON.stringify(memory(pid)));
  const cpu0 = cpuMs(pid);
  await cannon({ url: hookUrl(port), amount: events, tag: 7 });
  await waitUntil(() => subscriber.count >= events, 'deliveries', 900_000);
  const cpu = (cpuMs(pid) - cpu0) / events;
  console.log(
    `after ${events} events:`,
    JSON.stringify(memory(pid)),
    `hub CPU ${cpu.toFixed(3)} ms per event`,
  );
} finally {
  await child.stop();
  await subscriber.close();
  await db.drop();
  process.exit(0);
}
