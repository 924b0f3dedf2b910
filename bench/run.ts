/**
 * `pnpm bench [scenario ...] [--quick] [--out <file>]`: runs the Switchyard benchmarks on this
 * machine, prints a table and (for a full, unfiltered run, or with --out) writes
 * docs/benchmarks.md. Every figure sits beside a baseline measured in the same run.
 *
 * Scenarios: the SCENARIOS list below, one line each (a scenario whose file is absent is skipped).
 * `--quick` shrinks every count: a smoke test of the harness, not figures to quote.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { isAbsolute } from 'node:path';
import { pg } from './lib/deps.ts';
import { machineCpuMs } from './lib/proc-cpu.ts';
import { type BenchOptions, type BenchResult, type BenchRow, passes } from './lib/result.ts';

type Scenario = { name: string; file: string };
const SCENARIOS: Scenario[] = [
  { name: 'ingest', file: './ingest.ts' },
  { name: 'e2e', file: './e2e.ts' },
  { name: 'latency', file: './latency.ts' },
  { name: 'gates', file: './gates.ts' },
  { name: 'commands', file: './commands.ts' },
  { name: 'backlog', file: './backlog.ts' },
  { name: 'ordered', file: './ordered.ts' },
  { name: 'onekey', file: './onekey.ts' },
  { name: 'idle', file: './idle.ts' },
  { name: 'otel', file: './otel.ts' },
  { name: 'fhir', file: './fhir.ts' },
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIndex = args.indexOf('--out');
const outArg = outIndex >= 0 ? args[outIndex + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith('--') && (outIndex < 0 || i !== outIndex + 1));
const unknown = filters.filter((f) => !SCENARIOS.some((s) => s.name === f));
if (unknown.length > 0) {
  console.error(
    `unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`,
  );
  process.exit(2);
}
const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const log = (m: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);
const options: BenchOptions = { quick, adminUrl, log };

async function machine() {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const postgres = String((await client.query('select version() as v')).rows[0].v);
  await client.end();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim() !== '';
    if (dirty) commit += ' (with uncommitted changes)';
  } catch {
    // not a git checkout: say so
  }
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres,
    date: new Date().toISOString(),
    commit,
    os: `${os.type()} ${os.release()}`,
    loadAtStart: os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / '),
  };
}

/**
 * The share of the machine's CPU time between two readings that the hypervisor gave other guests,
 * as a percentage: on a shared VM, what a slow hour is made of (bench/lib/proc-cpu.ts).
 */
function stolenShare(a: ReturnType<typeof machineCpuMs>, b: ReturnType<typeof machineCpuMs>): string {
  return `${((100 * (b.steal - a.steal)) / (b.total - a.total || 1)).toFixed(0)} %`;
}

function fmt(v: number | null, unit?: string): string {
  if (v === null || !Number.isFinite(v)) return '—';
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  const text = v.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${text} ${unit}` : text;
}

function ratio(r: BenchRow): string {
  return r.ratio === null ? '—' : `${r.ratio >= 10 ? r.ratio.toFixed(0) : r.ratio.toFixed(2)}×`;
}

/**
 * Met or missed, and by how much: the factor the figure must improve by to meet the target
 * (missed), or the factor it could worsen by and still meet it (met).
 */
function mark(r: BenchRow): string {
  const p = passes(r);
  if (p === undefined) return '';
  const t = r.target!;
  const subject = t.onRatio ? r.ratio : r.value;
  let by = '';
  if (subject !== null && Number.isFinite(subject) && subject > 0 && t.value > 0) {
    const factor = t.kind === 'min' ? subject / t.value : t.value / subject;
    by = p ? `, ${(factor).toFixed(2)}× to spare` : ` by ${(1 / factor).toFixed(2)}×`;
  }
  return `${p ? '✅ met' : '❌ missed'}${by} (${t.label})`;
}

function table(results: BenchResult[]): string {
  const lines = [
    '| Scenario | Metric | Switchyard | Baseline (same run) | Ratio | Target |',
    '|---|---|---:|---|---:|---|',
  ];
  for (const result of results) {
    for (const r of result.rows) {
      const base =
        r.baseline === null
          ? '—'
          : `${fmt(r.baseline, r.unit)}${r.baselineLabel ? ` (${r.baselineLabel})` : ''}`;
      lines.push(
        `| ${result.name} | ${r.metric} | ${fmt(r.value, r.unit)} | ${base} | ${ratio(r)} | ${mark(r)} |`,
      );
    }
  }
  return lines.join('\n');
}

function plainTable(results: BenchResult[]): string {
  const rows = results.flatMap((res) =>
    res.rows.map((r) => [
      res.name,
      r.metric,
      fmt(r.value, r.unit),
      fmt(r.baseline, r.unit),
      ratio(r),
      mark(r),
    ]),
  );
  const head = ['scenario', 'metric', 'switchyard', 'baseline', 'ratio', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main() {
  const info = await machine();
  log(
    `machine: ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}, ${info.postgres.split(',')[0]}`,
  );
  const started = performance.now();
  const cpuAtStart = machineCpuMs();
  const results: BenchResult[] = [];
  const durations: string[] = [];
  const skipped: string[] = [];
  for (const s of SCENARIOS) {
    if (filters.length > 0 && !filters.includes(s.name)) continue;
    if (!existsSync(new URL(s.file, import.meta.url))) {
      skipped.push(`${s.name} (${s.file} not present)`);
      continue;
    }
    const t = performance.now();
    const cpu = machineCpuMs();
    log(`scenario ${s.name}`);
    const mod = (await import(s.file)) as { run(o: BenchOptions): Promise<BenchResult> };
    try {
      results.push(await mod.run(options));
    } catch (error) {
      log(
        `scenario ${s.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      results.push({
        name: s.name,
        rows: [],
        notes: [`FAILED: ${error instanceof Error ? error.message : String(error)}`],
      });
    }
    const took = ((performance.now() - t) / 1000).toFixed(0);
    const stolen = stolenShare(cpu, machineCpuMs());
    durations.push(`${s.name} ${took} s (${stolen} stolen)`);
    log(`scenario ${s.name} took ${took} s, ${stolen} of the machine's CPU time stolen by the hypervisor`);
  }
  const seconds = (performance.now() - started) / 1000;
  const stolen = stolenShare(cpuAtStart, machineCpuMs());
  console.log(`\n${plainTable(results)}\n`);
  for (const r of results) for (const n of r.notes ?? []) console.log(`- ${r.name}: ${n}`);
  if (skipped.length > 0) console.log(`skipped: ${skipped.join(', ')}`);

  const out = outArg ?? (filters.length === 0 && !quick ? 'docs/benchmarks.md' : undefined);
  if (!out) return;
  const analysisFile = new URL('./analysis.md', import.meta.url);
  const analysis = existsSync(analysisFile) ? readFileSync(analysisFile, 'utf8').trim() : '';
  const all = results.flatMap((r) => r.rows);
  const targets = all.filter((r) => r.target);
  const doc = [
    '# Benchmarks',
    '',
    '<!-- Written by `pnpm bench` (bench/run.ts); the analysis section comes from bench/analysis.md. Do not edit by hand. -->',
    '',
    `Measured by \`pnpm bench${quick ? ' --quick' : ''}${filters.length ? ` ${filters.join(' ')}` : ''}\` in one run of ${(seconds / 60).toFixed(1)} minutes, every participant on this one machine. Each figure sits beside a baseline measured in the same run, with the ratio Switchyard ÷ baseline (for req/s and events/s higher is better; for ms, s and MiB lower is better).`,
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    `| CPU cores | ${info.cores} (${info.cpu}) |`,
    `| Memory | ${info.memoryGiB} GiB |`,
    `| OS | ${info.os} |`,
    `| Node | ${info.node} |`,
    `| Postgres | ${info.postgres} (loopback) |`,
    `| Date | ${info.date} |`,
    `| Commit | ${info.commit} |`,
    `| Load average (1/5/15 min) | ${info.loadAtStart} at the start, ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} at the end |`,
    `| CPU time stolen by the hypervisor | ${stolen} of the machine's CPU time over the run (/proc/stat \`steal\`: this VM's cores were ready and another guest ran; per scenario in the Method list) |`,
    '',
    '## Results',
    '',
    table(results),
    '',
    `Targets: ${targets.filter((r) => passes(r)).length} of ${targets.length} met.`,
    '',
    ...targets.map(
      (r) =>
        `- ${r.metric}: ${fmt(r.value, r.unit)}${r.target!.onRatio ? ` (${ratio(r)} the baseline)` : ''}, ${mark(r)}.`,
    ),
    '',
    '## Method',
    '',
    ...results.flatMap((r) => (r.notes ?? []).map((n) => `- **${r.name}.** ${n}`)),
    ...(skipped.length > 0 ? [`- Not run: ${skipped.join(', ')}.`] : []),
    `- Time per scenario in this run, with the share of the machine's CPU time the hypervisor took for other guests meanwhile: ${durations.join(', ')}.`,
    "- Peak RSS is the peak resident set of the process under test, started fresh for each run so each figure is that run's peak: VmHWM from /proc for `switchyard start` (bench/lib/cli-hub.ts), `process.resourceUsage().maxRSS` for the bench's own children (the reduced hub bench/lib/hub-process.ts, baseline-server.ts, pgboss-process.ts).",
    '- Each participant gets a fresh database (`createTestDatabase()` from @switchyard/testing) on the same Postgres server, dropped afterwards. The load generator and the webhook subscriber run in the parent process, on the same two cores as the hub and Postgres.',
    '',
    analysis,
    '',
  ].join('\n');
  // A relative --out is from the repository root (docs/benchmarks.md), an absolute one as given.
  writeFileSync(isAbsolute(out) ? out : new URL(`../${out}`, import.meta.url), doc);
  log(`wrote ${out}`);
}

await main();
// Keep-alive sockets and pools of finished scenarios must not hold the process open.
process.exit(0);
