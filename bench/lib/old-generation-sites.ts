/**
 * Diagnostic (not a scenario): which allocation sites of the hub fill its old generation. Loaded
 * into the hub with `--import` by bench/lib/cli-hub.ts when `BENCH_OLD_GEN_SITES=<file>` is set;
 * the first SIGUSR2 starts V8's sampling heap profiler, keeping only what a young-generation
 * collection did not free (objects promoted or born old, and those still alive), the second stops
 * it and writes the profile to that file. `bench/lib/tail-latency.ts` sends both signals at its
 * measured window's edges and prints the sites with {@link oldGenerationSites}. This is how
 * bench/analysis.md's "Born old" found V8's pretenuring of the hub's short-lived objects.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/**
 * The allocation sites of a sampling heap profile, the largest first, in kilobytes per event.
 *
 * @example
 * ```ts
 * for (const { site, kbPerEvent } of oldGenerationSites(profile, 4000).slice(0, 15)) console.log(kbPerEvent, site);
 * ```
 */
export function oldGenerationSites(
  profile: { head: ProfileNode },
  events: number,
): { site: string; kbPerEvent: number }[] {
  const bytes = new Map<string, number>();
  const walk = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const site = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
    if (node.selfSize > 0) bytes.set(site, (bytes.get(site) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  return [...bytes]
    .map(([site, n]) => ({ site, kbPerEvent: n / events / 1024 }))
    .sort((a, b) => b.kbPerEvent - a.kbPerEvent);
}

const out = process.env.BENCH_OLD_GEN_SITES;
if (out && process.argv.some((arg) => arg.endsWith('switchyard.mjs'))) {
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 2048,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: false,
      });
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (error) return;
      // Whole or not at all: the reader waits for the file to appear.
      writeFileSync(`${out}.part`, JSON.stringify(result.profile));
      renameSync(`${out}.part`, out);
    });
  });
}
