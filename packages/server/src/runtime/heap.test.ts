import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { heapFlags, tuneHeap } from './heap.ts';

/**
 * A child node with the hub's 8 MB semi-spaces (full size from the start, as the hub's are under
 * load: V8 makes a site's objects born old only at a collection of a full-size young generation)
 * and the V8 flags in `HEAP_FLAGS`, set once it runs as `tuneHeap` sets them. Each loop turn makes
 * 50 entries from one object literal, kept in a ring of the last 5,000 (each lives about two
 * young-generation collections, as a cache entry or a batch's rows do in the hub), and 200 kB of
 * strings that die at once (the rest of a process's work). It prints how much the old generation
 * grew, turn by turn, after a warm-up: an entry promoted after two collections, or born old.
 * Allocation decides when collections run, not time: the figure does not move with the load.
 */
const SCRIPT = `
import v8 from 'node:v8';
for (const flag of JSON.parse(process.env.HEAP_FLAGS)) v8.setFlagsFromString(flag);
const entry = (i) => ({ id: i, name: \`n\${i}\`, tags: [i, i + 1], meta: { at: i, by: 'x' } });
const turn = () => new Promise((resolve) => setImmediate(resolve));
const oldUsed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size;
const ring = new Array(5000);
let n = 0;
let grew = 0;
let sink = 0;
for (let r = 0; r < 3000; r++) {
  const before = oldUsed();
  for (let j = 0; j < 50; j++) ring[n++ % ring.length] = entry(n);
  for (let j = 0; j < 100; j++) sink += String(j + r).padStart(2000, 'x').length;
  await turn();
  // Turn by turn: a full collection in between frees old entries, which must not hide the growth.
  if (r >= 500) grew += Math.max(0, oldUsed() - before);
}
console.log(JSON.stringify({ grewMb: grew / 1e6, sink }));
`;

/** How much the child's old generation grew, in MB, with these V8 flags. */
async function oldGenerationGrowth(flags: string[]): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--max-semi-space-size=8', '--min-semi-space-size=8', '--input-type=module', '-e', SCRIPT],
    { env: { ...process.env, NODE_OPTIONS: '', HEAP_FLAGS: JSON.stringify(flags) } },
  );
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { grewMb: number }).grewMb;
}

describe('tuneHeap', () => {
  it("leaves each setting the operator chose on node's command line or in NODE_OPTIONS", () => {
    expect(heapFlags(['--max-semi-space-size=2', '--heap-growing-percent=30'], '')).toEqual([
      '--no-allocation-site-pretenuring',
    ]);
    expect(heapFlags([], '--max-semi-space-size=2 --heap_growing_percent=80')).toEqual([
      '--no-allocation-site-pretenuring',
    ]);
    expect(heapFlags(['--allocation-site-pretenuring'], '')).toEqual(['--heap-growing-percent=50']);
    expect(heapFlags([], '--no_allocation_site_pretenuring --heap-growing-percent=50')).toEqual([]);
  });

  it('sets nothing in the process when the operator chose both', () => {
    expect(tuneHeap(['--heap-growing-percent=50'], '--allocation-site-pretenuring')).toEqual([]);
  });

  it('sets the hub’s own otherwise', () => {
    expect(heapFlags(['--max-semi-space-size=2'], '--enable-source-maps')).toEqual([
      '--heap-growing-percent=50',
      '--no-allocation-site-pretenuring',
    ]);
  });

  it('entries that live for two young-generation collections are not born old', async () => {
    // V8 as it is (the control): the site's entries all outlive one collection, V8 makes them born
    // old, and all of them reach the old generation (25–26 MB measured); with the hub's settings
    // those that die after one more collection die young (7 MB).
    const [untuned, tuned] = await Promise.all([
      oldGenerationGrowth([]),
      oldGenerationGrowth(heapFlags([], '')),
    ]);
    expect(untuned, 'V8 makes the entries born old without the setting').toBeGreaterThan(18);
    expect(tuned).toBeLessThan(13);
  }, 60_000);
});
