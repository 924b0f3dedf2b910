/**
 * Diagnostic (not a scenario): `node bench/lib/profile-split.ts <file.cpuprofile> [more …]` splits a
 * V8 CPU profile of the hub (`BENCH_CPU_PROF=<dir> pnpm bench latency --quick`) by where the time
 * went: each sample is charged to the innermost frame of its stack that belongs to a known
 * component (a pipeline stage's source, the pg driver, fastify, pino, pg-boss), else to Node's
 * own code, the garbage collector or idle time. Continuations after an `await` start a fresh
 * stack in V8's profile, so work the pg driver does for a statement is "pg driver", not the stage
 * that sent it.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Components in the order they are looked for in a frame's url (first match wins). */
const COMPONENTS: [string, RegExp][] = [
  [
    'logging (pino)',
    /node_modules\/(\.pnpm\/)?(pino|@pinojs|pino-std-serializers|sonic-boom|thread-stream|fast-redact)/,
  ],
  ['pg-boss', /node_modules\/(\.pnpm\/)?pg-boss/],
  ['pg driver', /node_modules\/(\.pnpm\/)?(pg|pg-protocol|pg-pool|pg-types|postgres-\w+|kysely)[@/]/],
  [
    'fastify',
    /node_modules\/(\.pnpm\/)?(fastify|@fastify|find-my-way|avvio|light-my-request|fast-json-stringify|secure-json-parse)/,
  ],
  ['ajv', /node_modules\/(\.pnpm\/)?ajv/],
  ['normalize (connectors, pipeline/normalize)', /\/connectors\/|\/pipeline\/(normalize|fanout|emit)\.ts/],
  ['deliver (pipeline/deliver, delivery/)', /\/pipeline\/deliver\.ts|\/delivery\//],
  ['ingest (pipeline/ingest, http/)', /\/pipeline\/ingest\.ts|\/http\//],
  ['other hub code', /\/packages\/(server|core)\/src\//],
  ['other dependencies', /node_modules\//],
];

function componentOf(url: string): string | undefined {
  for (const [name, re] of COMPONENTS) if (re.test(url)) return name;
  return undefined;
}

const totals = new Map<string, number>();
/** Self time by function, for the top list. */
const selfTime = new Map<string, number>();
let all = 0;
for (const file of process.argv.slice(2)) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map<number, string>();
  const classify = (id: number): string => {
    const known = memo.get(id);
    if (known) return known;
    let found: string | undefined;
    for (let at: number | undefined = id; at !== undefined && !found; at = parent.get(at)) {
      found = componentOf(byId.get(at)!.callFrame.url);
    }
    const leaf = byId.get(id)!.callFrame.functionName;
    const name =
      found ??
      (leaf === '(garbage collector)'
        ? 'garbage collector'
        : leaf === '(idle)'
          ? 'idle'
          : 'Node core and runtime');
    memo.set(id, name);
    return name;
  };
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i] ?? 0;
    const name = classify(id);
    totals.set(name, (totals.get(name) ?? 0) + us);
    const frame = byId.get(id)!.callFrame;
    const where = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\/(\.pnpm\/)?/, '').replace(/^.*\/packages\//, '')}`;
    selfTime.set(where, (selfTime.get(where) ?? 0) + us);
    if (name !== 'idle') all += us;
  });
}
console.log(`busy CPU in the profile(s): ${(all / 1e6).toFixed(2)} s (idle excluded)`);
for (const [name, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  if (name === 'idle') continue;
  console.log(
    `${((100 * us) / all).toFixed(1).padStart(5)} %  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${name}`,
  );
}
console.log('\nfunctions with the most self time:');
for (const [where, us] of [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, 16)) {
  if (where.startsWith('(idle)')) continue;
  console.log(`${((100 * us) / all).toFixed(1).padStart(5)} %  ${where.slice(0, 110)}`);
}
