import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createGates, deciderGone, gateWorkerHost } from './gates.ts';

describe('deciderGone', () => {
  it('knows a process of this pid space gone: its pid runs no more, or it had our pid and is no gate machinery of ours', async () => {
    // Pids are below 2^22 on Linux: this one runs nowhere.
    expect(deciderGone(`${gateWorkerHost}/4999999/0badcafe`)).toBe(true);
    expect(deciderGone(`${gateWorkerHost}/${process.pid}/0badcafe`)).toBe(true);
    const stopped = createGates();
    await stopped.stop();
    expect(deciderGone(stopped.workerId)).toBe(true);
  });

  it('does not call gone a gate machinery of this process, a running process, another host, or no claim', () => {
    expect(deciderGone(createGates().workerId)).toBe(false);
    expect(deciderGone(`${gateWorkerHost}/1/0badcafe`)).toBe(false);
    expect(deciderGone('another-host/4999999/0badcafe')).toBe(false);
    expect(deciderGone(null)).toBe(false);
    expect(deciderGone('worker-that-died')).toBe(false);
  });

  it('does not look up the pids of a claim that shares only the hostname (another container, a cloned VM, an earlier version)', () => {
    // The old code took these for this host's and called them gone: no such pid runs here, or the
    // pid was this process's own (two containers' pid 1).
    expect(gateWorkerHost.startsWith(`${hostname()}#`)).toBe(true);
    expect(deciderGone(`${hostname()}/4999999/0badcafe`)).toBe(false);
    expect(deciderGone(`${hostname()}/${process.pid}/0badcafe`)).toBe(false);
    expect(deciderGone(`${hostname()}#0123456789ab.4026531999/4999999/0badcafe`)).toBe(false);
  });
});
