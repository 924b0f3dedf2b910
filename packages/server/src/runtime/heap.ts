/**
 * The V8 heap settings a hub process gives itself at start, however it was started (`./sy start`,
 * `node bin/switchyard.mjs`, a container): each one unless the operator chose that setting on
 * node's command line or in `NODE_OPTIONS`. Every default of the kind is here.
 */
import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full collection kept, in percent,
 * before it collects again. V8's own factor goes up to 4× when memory looks plentiful: under load
 * the hub promoted many short-lived objects (a push, its batch and its statement live for tens of
 * milliseconds, longer than a 2 MB young generation held them; and every statement's text, Bind
 * message and rows while pg answered through its own promise, storage/db.ts `send`), so its old
 * generation filled up to ~150 MiB of garbage around ~55 MiB kept alive, and the resident set
 * followed. Less is promoted now, and full collections are rarer for it; this still bounds the
 * resident set when a burst promotes more. Unlike a cap on the old generation
 * (`--max-old-space-size`) this only makes full collections come sooner: a burst of large pushes
 * still gets all the memory it needs. Measured with 5,000 pushes delivered (docs/operations.md,
 * "Memory"): peak RSS 275–290 → 219 MiB.
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Whether V8 may allocate an object literal's or array's later objects straight in the old
 * generation once most of that site's objects outlived a young-generation collection ("allocation
 * site pretenuring"): off in the hub. The hub's hot sites (the known-state cache's entries, the
 * parsed push, a normalize commit's rows) make objects that live a collection or two, but a burst
 * or a stall (the warm-up, a backlog's batches, a full collection's pause) keeps one site's objects
 * alive for a moment, V8 marks the site, and from then on every object it makes is born old,
 * together with what it points to, until a full collection, which then comes sooner and pauses
 * every stage at once. At 200 events/s
 * (`bench/lib/tail-latency.ts`, 20 s, `--trace-gc-nvp`) the hub promoted 29–44 MiB with it and
 * 5 MiB without, and 45–46 MiB against 20–21 MiB with tracing on; the full collections in the
 * window went from 1–3 to 0–1 and the p99 with them (bench/analysis.md, "Born old"). End to end at
 * saturation neither throughput nor peak RSS moved. heap.test.ts shows the mechanism in a child
 * process.
 */
export const ALLOCATION_SITE_PRETENURING = false;

/**
 * The flags {@link tuneHeap} sets: {@link HEAP_GROWING_PERCENT} and
 * {@link ALLOCATION_SITE_PRETENURING}, each unless the operator chose it (`--heap-growing-percent`,
 * `--[no-]allocation-site-pretenuring` on node's command line or in `NODE_OPTIONS`; dashes or
 * underscores).
 *
 * @example
 * ```ts
 * heapFlags(['--heap-growing-percent=30'], ''); // ['--no-allocation-site-pretenuring']
 * ```
 */
export function heapFlags(execArgv: readonly string[], nodeOptions: string): string[] {
  const given = [...execArgv, nodeOptions];
  const chosen = (name: RegExp) => given.some((arg) => name.test(arg));
  const flags: string[] = [];
  if (!chosen(/heap[-_]growing[-_]percent/)) flags.push(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  if (!chosen(/allocation[-_]site[-_]pretenuring/))
    flags.push(`--${ALLOCATION_SITE_PRETENURING ? '' : 'no-'}allocation-site-pretenuring`);
  return flags;
}

/**
 * Sets {@link heapFlags} in this process. V8 reads both while it runs, so setting them once the
 * process runs takes effect from then on. Returns the flags it set.
 *
 * @example
 * ```ts
 * tuneHeap(); // at the start of a hub process
 * ```
 */
export function tuneHeap(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const flags = heapFlags(execArgv, nodeOptions);
  for (const flag of flags) v8.setFlagsFromString(flag);
  return flags;
}
