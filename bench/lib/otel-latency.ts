/**
 * Diagnostic (not a scenario): `node bench/lib/otel-latency.ts [rounds] [seconds] [rate]` runs the
 * latency scenario's hub (`hubLatency` of bench/latency.ts: `switchyard start`, one subscription,
 * paced pushes) with tracing off and on (sample ratio 1.0, exported to a receiver in this process),
 * alternating off, on, on, off, … with a CHECKPOINT before each run (defaults: 2 rounds of 20 s at
 * 200/s), and prints for each run what `pnpm bench otel` does not: where the latency went and what
 * else tracing changed —
 * - push → subscriber p50 / p99 and the stage timings from the hub's rows (bench/lib/stages.ts);
 * - CPU per delivered event of the hub (process, main thread, and by thread name: `V8Worker` is
 *   V8's platform threads, mostly the garbage collector's helpers; `WorkerThread` the OTLP export
 *   thread) and of its Postgres backends, by stage and by statement (bench/lib/proc-cpu.ts);
 * - the hub's event-loop delay and garbage collections per second (bench/lib/loop-probe.ts,
 *   preloaded into the hub), and this process's event-loop delay (the load generator, the
 *   subscriber and the OTLP receiver all run here, and their timestamps make the latency).
 * How docs/observability.md ("Cost", "Where the latency goes") was measured. Run it under the bench
 * lock: `flock -x /tmp/sy-bench.lock node bench/lib/otel-latency.ts`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startOtlpReceiver } from '../../packages/server/src/telemetry/otlp-receiver.test-support.ts';
import { hubLatency } from '../latency.ts';
import type { LoopSecond } from './loop-probe.ts';
import { checkpoint } from './paired.ts';
import { msPerTick } from './proc-cpu.ts';
import type { BenchOptions } from './result.ts';

const rounds = Number(process.argv[2] ?? 2);
const seconds = Number(process.argv[3] ?? 20);
const rate = Number(process.argv[4] ?? 200);
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const probeDir = mkdtempSync(join(tmpdir(), 'sy-loop-probe-'));
// Inherited by `switchyard start` (bench/lib/cli-hub.ts passes this process's environment on).
process.env.LOOP_PROBE_DIR = probeDir;
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${fileURLToPath(new URL('./loop-probe.ts', import.meta.url))}`;

/** CPU ms so far of every thread of this process's `switchyard start` children, by thread name. */
function hubThreads(): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(stat[1]) !== process.pid) continue;
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('switchyard')) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        const name = tid === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        const key = `${name}\u0000${pid}/${tid}`;
        out.set(key, (Number(f[11]) + Number(f[12])) * msPerTick());
      }
    } catch {
      // A process or thread that exited between the listing and the read.
    }
  }
  return out;
}

const receiver = await startOtlpReceiver({ discard: true });
const options: BenchOptions = { adminUrl, quick: false, log: () => {} } as BenchOptions;
const own = monitorEventLoopDelay({ resolution: 5 });
const f = (v: number) => v.toFixed(2);
try {
  for (let round = 0; round < rounds; round++) {
    for (const arm of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      await checkpoint(adminUrl);
      for (const file of readdirSync(probeDir)) rmSync(join(probeDir, file));
      // Thread CPU sampled every 200 ms; the figures are the window's, from the samples inside it.
      const samples: { t: number; threads: Map<string, number>; self: number }[] = [];
      const sampler = setInterval(() => {
        const u = process.cpuUsage();
        samples.push({
          t: Date.now(),
          threads: hubThreads(),
          self: (u.user + u.system) / 1000,
        });
      }, 200);
      own.reset();
      own.enable();
      const r = await hubLatency(
        options,
        seconds * 1000,
        arm === 'on' ? { traces: receiver.url, rate } : { rate },
      );
      own.disable();
      clearInterval(sampler);
      const events = rate * seconds;
      const per = (ms: number) => f(ms / events);
      const { cpu, stages: t, window } = r;
      const inside = samples.filter((s) => s.t >= window.from && s.t <= window.to);
      const threads = new Map<string, number>();
      let self = Number.NaN;
      if (inside.length > 1) {
        const a = inside[0]!;
        const b = inside.at(-1)!;
        // This process's CPU (load generator, subscriber, OTLP receiver) per event.
        self = (b.self - a.self) / ((rate * (b.t - a.t)) / 1000);
        const first = inside[0]!.threads;
        for (const [key, ms] of inside.at(-1)!.threads) {
          const name = key.split('\u0000')[0]!;
          threads.set(name, (threads.get(name) ?? 0) + ms - (first.get(key) ?? 0));
        }
      }
      const lines: LoopSecond[] = readdirSync(probeDir).flatMap((file) =>
        readFileSync(join(probeDir, file), 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as LoopSecond)
          .filter((l) => l.t > window.from + 1000 && l.t <= window.to),
      );
      const avg = (k: keyof LoopSecond) => f(lines.reduce((s, l) => s + l[k], 0) / Math.max(1, lines.length));
      console.log(
        `== tracing ${arm} at ${rate}/s: p50 ${f(r.p50)} ms, p99 ${f(r.p99)} ms, max ${f(r.max)} ms (${r.failures} failed)`,
      );
      if (t)
        console.log(
          `  stages p50/p99: received → normalized ${f(t.normalize[0])}/${f(t.normalize[1])}, stored → attempt ${f(t.toAttempt[0])}/${f(t.toAttempt[1])}, attempt ${f(t.attempt[0])}/${f(t.attempt[1])} ms`,
        );
      console.log(
        `  CPU per event: hub ${per(cpu.processMs)} (main thread ${per(cpu.mainThreadMs)}) + Postgres backends ${per(cpu.backendsMs)} = ${per(cpu.processMs + cpu.backendsMs)} ms`,
      );
      console.log(
        `  machine: ${(cpu.machineBusy * 100).toFixed(1)} % busy (all cores); load generator + subscriber + receiver ${f(self)} ms per event`,
      );
      console.log(
        `  hub threads: ${[...threads]
          .filter(([, ms]) => ms > 0)
          .sort((a, b) => b[1] - a[1])
          .map(([name, ms]) => `${name} ${per(ms)}`)
          .join(', ')} ms per event`,
      );
      console.log(
        `  Postgres by stage: ${Object.entries(cpu.byStage)
          .map(([s, ms]) => `${s} ${per(ms)}`)
          .join(', ')} ms per event`,
      );
      console.log(
        `  Postgres statements: ${cpu.byStatement
          .slice(0, 5)
          .map(([text, ms]) => `${per(ms)} \`${text.slice(0, 50)}\``)
          .join('; ')}`,
      );
      console.log(
        `  hub event loop (mean of ${lines.length} seconds): delay mean ${avg('mean')}, p50 ${avg('p50')}, p99 ${avg('p99')}, max ${avg('max')} ms; scavenges ${avg('minor')}/s (${avg('minorMs')} ms/s), mark-compacts ${avg('major')}/s (${avg('majorMs')} ms/s)`,
      );
      console.log(
        `  load generator's event loop: delay mean ${f(own.mean / 1e6)}, p99 ${f(own.percentile(99) / 1e6)}, max ${f(own.max / 1e6)} ms`,
      );
    }
  }
} finally {
  await receiver.close();
  rmSync(probeDir, { recursive: true, force: true });
}
