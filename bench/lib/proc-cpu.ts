/**
 * CPU time read from /proc: a process's user + system time (`/proc/<pid>/stat` fields 14 and 15,
 * in clock ticks), for the hub process(es) and the Postgres backends serving one database.
 *
 * Backends come and go (pools open and close connections), so the meter samples
 * `pg_stat_activity` for the database every {@link SAMPLE_MS} ms and reads each backend's /proc
 * entry at once: a backend first seen after the start counts from zero (its whole life is in the
 * window), one that exits counts up to its last sample (at most one interval of its CPU is lost).
 * Each backend's CPU between two samples is charged to the stage of the statement
 * `pg_stat_activity.query` shows at the later sample (the running one, or the last one it ran when
 * idle): a sampling profile by statement, exact in total, approximate per stage. The server-wide
 * processes (checkpointer, background writer, WAL writer, autovacuum launcher) serve every database
 * on the server; they are measured from their own pids and reported apart.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pg } from './deps.ts';

/** How often backends are sampled. */
export const SAMPLE_MS = 50;

let tickMs: number | undefined;
/**
 * Milliseconds per clock tick (`getconf CLK_TCK`, 100 on Linux), the unit of /proc's CPU times.
 *
 * @example
 * ```ts
 * const ms = Number(fields[13]) * msPerTick();
 * ```
 */
export function msPerTick(): number {
  if (tickMs === undefined) {
    try {
      tickMs = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      tickMs = 10;
    }
  }
  return tickMs;
}

/**
 * CPU milliseconds (user + system) `pid` has used so far; undefined once it is gone.
 *
 * @example
 * ```ts
 * const before = cpuMs(process.pid)!;
 * ```
 */
export function cpuMs(pid: number, thread?: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces: fields are counted after its closing paren.
    const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
    const fields = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * msPerTick();
  } catch {
    return undefined;
  }
}

/**
 * The whole machine's CPU so far (every core, every process), ms: busy and total, from the first
 * line of /proc/stat (idle and iowait are not busy), and of the busy part what the hypervisor
 * took for other guests (`steal`: this VM's cores were ready to run and did not). On the bench's
 * VM steal is what makes a slow hour: 17–36 % of the machine's time in a 200/s run of one
 * (bench/analysis.md, session 33), against 0–1 % idle.
 *
 * @example
 * ```ts
 * const a = machineCpuMs(); // … later …
 * const b = machineCpuMs();
 * const busyShare = (b.busy - a.busy) / (b.total - a.total);
 * const stolenShare = (b.steal - a.steal) / (b.total - a.total);
 * ```
 */
export function machineCpuMs(stat = readFileSync('/proc/stat', 'utf8')): {
  busy: number;
  total: number;
  steal: number;
} {
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user too).
  const fields = stat.split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return {
    busy: (total - idle) * msPerTick(),
    total: total * msPerTick(),
    steal: (fields[7] ?? 0) * msPerTick(),
  };
}

/** Where a statement's Postgres CPU is charged. */
export type Stage = 'ingest' | 'normalize' | 'deliver' | 'pg-boss' | 'other';

/**
 * The pipeline stage a statement belongs to, by the tables it touches (the hub's statements name
 * them: the `store.ts` of `inbound/`, `events/`, `deliveries/`). The normalize commit also inserts deliveries (fan-out), so it is
 * recognised by its events insert before deliveries are looked for; a booking's match with an
 * earlier gate request (`gate_requests`) runs after normalizing it (gates' `afterNormalize`).
 */
export function stageOf(query: string): Stage {
  const q = query.toLowerCase();
  // The ingest statement's insert lies past the 1 kB of text pg_stat_activity keeps: its first CTE's
  // name says it (storeInbound, inbound/store.ts).
  if (/insert into switchyard\.inbound_(messages|bodies)|with inbound_input as/.test(q)) return 'ingest';
  // The normalize commit's writes lie past that 1 kB too (its alias CTEs come first): its first CTE
  // says it (commitNormalized, events/store.ts; also emit.ts, hub-made events).
  if (
    /with input as|claimable_inbound|insert into switchyard\.events|switchyard\.aliases|switchyard\.entity_state|switchyard\.gate_requests|update switchyard\.inbound_messages/.test(
      q,
    )
  )
    return 'normalize';
  if (/switchyard\.(deliveries|delivery_attempts)|claimable_deliveries/.test(q)) return 'deliver';
  if (/pgboss\./.test(q)) return 'pg-boss';
  return 'other';
}

/** What a {@link CpuMeter} measured over its window. */
export interface CpuReading {
  seconds: number;
  /** CPU ms of the measured processes (the hub, or the floor server). */
  processMs: number;
  /**
   * Of `processMs`, the processes' main threads (the event loop; the rest is V8's garbage
   * collector helpers, libuv's pool and worker threads).
   */
  mainThreadMs: number;
  /** CPU ms of the database's backends (every connection to it, whoever opened it). */
  backendsMs: number;
  /** Backends' CPU ms by the stage of the statement they were running. */
  byStage: Record<Stage, number>;
  /** Backends' CPU ms by statement (its first 80 characters, whitespace collapsed), most first. */
  byStatement: [string, number][];
  /** Distinct backends seen. */
  backends: number;
  /** Server-wide Postgres processes (shared by every database on the server), CPU ms. */
  serverMs: number;
  /**
   * Share of the whole machine busy over the window (every core, every process: the load
   * generator and whatever else runs too), 0–1.
   */
  machineBusy: number;
}

/**
 * Measures the CPU of `pids()` and of the Postgres backends of `datname` from start() to stop().
 *
 * @example
 * ```ts
 * const meter = new CpuMeter(adminUrl, db.name, () => hub.pids());
 * await meter.start();
 * // … load …
 * const r = await meter.stop(); // r.processMs + r.backendsMs
 * ```
 */
export class CpuMeter {
  private client: InstanceType<typeof pg.Client>;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private first = true;
  private sampling: Promise<void> = Promise.resolve();
  private readonly processStart = new Map<number, number>();
  private readonly processLast = new Map<number, number>();
  private readonly mainStart = new Map<number, number>();
  private readonly mainLast = new Map<number, number>();
  /** Per backend: CPU ms at its previous sample. */
  private readonly backendLast = new Map<number, number>();
  private readonly byStage: Record<Stage, number> = {
    ingest: 0,
    normalize: 0,
    deliver: 0,
    'pg-boss': 0,
    other: 0,
  };
  private readonly byStatement = new Map<string, number>();
  private backendsMs = 0;
  private readonly serverStart = new Map<number, number>();
  private machineStart = { busy: 0, total: 0 };

  private readonly datname: string;
  private readonly pids: () => number[];

  constructor(adminUrl: string, datname: string, pids: () => number[]) {
    this.client = new pg.Client({ connectionString: adminUrl });
    this.datname = datname;
    this.pids = pids;
  }

  async start(): Promise<void> {
    await this.client.connect();
    const server = await this.client.query<{ pid: number }>(
      `select pid from pg_stat_activity
       where backend_type in ('checkpointer', 'background writer', 'walwriter', 'autovacuum launcher')`,
    );
    for (const { pid } of server.rows) {
      const ms = cpuMs(pid);
      if (ms !== undefined) this.serverStart.set(pid, ms);
    }
    this.startedAt = performance.now();
    this.machineStart = machineCpuMs();
    this.sampleProcesses();
    await this.sampleBackends();
    this.first = false;
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sampleBackends()).catch(() => {});
      this.sampleProcesses();
    }, SAMPLE_MS);
  }

  private sampleProcesses(): void {
    for (const pid of this.pids()) {
      const ms = cpuMs(pid);
      const main = cpuMs(pid, pid);
      if (ms === undefined || main === undefined) continue;
      if (!this.processStart.has(pid)) {
        this.processStart.set(pid, this.first ? ms : 0);
        this.mainStart.set(pid, this.first ? main : 0);
      }
      this.processLast.set(pid, ms);
      this.mainLast.set(pid, main);
    }
  }

  private async sampleBackends(): Promise<void> {
    const r = await this.client.query<{ pid: number; query: string }>(
      'select pid, query from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [this.datname],
    );
    for (const { pid, query } of r.rows) {
      const ms = cpuMs(pid);
      if (ms === undefined) continue;
      // A backend first seen after the start was opened during the window: count its whole life.
      const previous = this.backendLast.get(pid) ?? (this.first ? ms : 0);
      const delta = ms - previous;
      this.backendLast.set(pid, ms);
      if (delta <= 0) continue;
      this.backendsMs += delta;
      this.byStage[stageOf(query ?? '')] += delta;
      const text = (query ?? '').replace(/\s+/g, ' ').trim().slice(0, 80);
      this.byStatement.set(text, (this.byStatement.get(text) ?? 0) + delta);
    }
  }

  async stop(): Promise<CpuReading> {
    clearInterval(this.timer);
    await this.sampling;
    this.sampleProcesses();
    await this.sampleBackends();
    const seconds = (performance.now() - this.startedAt) / 1000;
    const machine = machineCpuMs();
    const machineBusy =
      (machine.busy - this.machineStart.busy) / (machine.total - this.machineStart.total || 1);
    let processMs = 0;
    for (const [pid, start] of this.processStart) processMs += (this.processLast.get(pid) ?? start) - start;
    let mainThreadMs = 0;
    for (const [pid, start] of this.mainStart) mainThreadMs += (this.mainLast.get(pid) ?? start) - start;
    let serverMs = 0;
    for (const [pid, start] of this.serverStart) serverMs += (cpuMs(pid) ?? start) - start;
    await this.client.end();
    return {
      seconds,
      processMs,
      mainThreadMs,
      backendsMs: this.backendsMs,
      byStage: { ...this.byStage },
      byStatement: [...this.byStatement].sort((a, b) => b[1] - a[1]),
      backends: this.backendLast.size,
      serverMs,
      machineBusy,
    };
  }
}
