import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.ts';

/** A commit the test finishes by hand, to hold commits in flight while more items arrive. */
interface Held {
  items: number[];
  release(): void;
  fail(error: unknown): void;
}

/** A fake store: records each commit, doubles each item, refuses the items in `bad`. */
function harness(options: {
  maxInFlight: number | (() => number);
  maxBatch: number;
  weight?: (item: number) => number;
  bad?: ReadonlySet<number>;
  hold?: boolean;
  lingerMs?: number;
}) {
  const commits: number[][] = [];
  const held: Held[] = [];
  let inFlight = 0;
  let maxSeen = 0;
  const writer = new GroupCommit<number, number>({
    maxInFlight: options.maxInFlight,
    maxBatch: options.maxBatch,
    ...(options.weight ? { weight: options.weight } : {}),
    ...(options.lingerMs ? { lingerMs: options.lingerMs } : {}),
    commit: async (items) => {
      commits.push([...items]);
      inFlight++;
      maxSeen = Math.max(maxSeen, inFlight);
      try {
        if (options.hold) {
          await new Promise<void>((release, fail) => held.push({ items: [...items], release, fail }));
        } else {
          await Promise.resolve();
        }
        const refused = items.find((i) => options.bad?.has(i));
        if (refused !== undefined) throw new Error(`refused ${refused}`);
        return items.map((i) => i * 2);
      } finally {
        inFlight--;
      }
    },
  });
  return { writer, commits, held, maxInFlight: () => maxSeen };
}

/** Lets every queued promise callback (a finished commit, the pump after it) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('GroupCommit', () => {
  it('commits a lone item at once, without waiting for company', async () => {
    const { writer, commits, held } = harness({ maxInFlight: 2, maxBatch: 10, hold: true });
    const result = writer.write(7);
    // Synchronously: the commit has started before write() returned.
    expect(commits).toEqual([[7]]);
    held[0]!.release();
    await expect(result).resolves.toBe(14);
  });

  it('with sameTick, items written together share one commit even with no commit running', async () => {
    const commits: number[][] = [];
    const writer = new GroupCommit<number, number>({
      maxInFlight: 2,
      maxBatch: 10,
      sameTick: true,
      commit: async (items) => {
        commits.push([...items]);
        return items.map((i) => i * 2);
      },
    });
    await expect(Promise.all([writer.write(1), writer.write(2)])).resolves.toEqual([2, 4]);
    // Without sameTick each would have gone alone ([[1], [2]]); a later write is its own commit.
    await expect(writer.write(3)).resolves.toBe(6);
    expect(commits).toEqual([[1, 2], [3]]);
  });

  it('batches the items written while the commits are busy, in order', async () => {
    const { writer, commits, held } = harness({ maxInFlight: 1, maxBatch: 100, hold: true });
    const first = writer.write(0);
    const rest = [1, 2, 3, 4, 5].map((i) => writer.write(i));
    expect(commits).toEqual([[0]]);
    held[0]!.release();
    await settle();
    // Everything that queued behind the running commit goes in the next one, together.
    expect(commits).toEqual([[0], [1, 2, 3, 4, 5]]);
    held[1]!.release();
    await expect(first).resolves.toBe(0);
    await expect(Promise.all(rest)).resolves.toEqual([2, 4, 6, 8, 10]);
  });

  it('caps each batch at maxBatch, counted by weight', async () => {
    const counted = harness({ maxInFlight: 1, maxBatch: 3, hold: true });
    const all = [0, 1, 2, 3, 4, 5, 6].map((i) => counted.writer.write(i));
    for (let i = 0; i < 3; i++) {
      counted.held[i]!.release();
      await settle();
    }
    expect(counted.commits).toEqual([[0], [1, 2, 3], [4, 5, 6]]);
    await Promise.all(all);

    // Weighted: items of weight 2 and a cap of 5 fit two per batch; an oversized item goes alone.
    const weighted = harness({
      maxInFlight: 1,
      maxBatch: 5,
      weight: (i) => (i === 9 ? 8 : 2),
      hold: true,
    });
    const items = [0, 1, 2, 9, 3];
    const results = items.map((i) => weighted.writer.write(i));
    for (let i = 0; i < 4; i++) {
      weighted.held[i]!.release();
      await settle();
    }
    expect(weighted.commits).toEqual([[0], [1, 2], [9], [3]]);
    await expect(Promise.all(results)).resolves.toEqual([0, 2, 4, 18, 6]);
  });

  it('never runs more than maxInFlight commits at once', async () => {
    const { writer, commits, held, maxInFlight } = harness({ maxInFlight: 3, maxBatch: 2, hold: true });
    const all = Array.from({ length: 20 }, (_, i) => writer.write(i));
    // Three lone items went out at once; the other 17 wait for a free slot.
    expect(commits).toEqual([[0], [1], [2]]);
    let released = 0;
    while (released < held.length) {
      held[released++]!.release();
      await settle();
      expect(held.length - released).toBeLessThanOrEqual(3);
    }
    await Promise.all(all);
    expect(maxInFlight()).toBe(3);
    expect(commits.flat()).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('reads a function limit at every decision', async () => {
    let limit = 1;
    const { writer, commits, held } = harness({ maxInFlight: () => limit, maxBatch: 1, hold: true });
    const all = [0, 1, 2].map((i) => writer.write(i));
    expect(commits).toEqual([[0]]);
    limit = 3;
    held[0]!.release();
    await settle();
    // The slot freed by the first commit pumps under the new limit: both waiting items start.
    expect(commits).toEqual([[0], [1], [2]]);
    held[1]!.release();
    held[2]!.release();
    await Promise.all(all);
  });

  it('rejects a failing item alone while its batch neighbours resolve', async () => {
    const { writer, commits } = harness({ maxInFlight: 1, maxBatch: 10, bad: new Set([3]) });
    // The first item takes the only slot, so the next four queue up and share one commit.
    const blocker = writer.write(0);
    const batch = [1, 2, 3, 4].map((i) =>
      writer.write(i).then(
        (value) => ({ ok: true as const, value }),
        (error: Error) => ({ ok: false as const, message: error.message }),
      ),
    );
    await blocker;
    expect(await Promise.all(batch)).toEqual([
      { ok: true, value: 2 },
      { ok: true, value: 4 },
      { ok: false, message: 'refused 3' },
      { ok: true, value: 8 },
    ]);
    // The batch of four failed together, then each item was retried alone.
    expect(commits).toEqual([[0], [1, 2, 3, 4], [1], [2], [3], [4]]);
  });

  it('rejects a lone failing item with its error, without a retry', async () => {
    const { writer, commits } = harness({ maxInFlight: 2, maxBatch: 10, bad: new Set([5]) });
    await expect(writer.write(5)).rejects.toThrow('refused 5');
    expect(commits).toEqual([[5]]);
    // The writer keeps working after a failure.
    await expect(writer.write(6)).resolves.toBe(12);
  });

  describe('lingerMs', () => {
    it('holds a lone item for the linger, and what is written meanwhile goes with it', async () => {
      const { writer, commits } = harness({ maxInFlight: 2, maxBatch: 10, lingerMs: 30 });
      const a = writer.write(1);
      await new Promise((r) => setTimeout(r, 10));
      const b = writer.write(2);
      expect(commits).toEqual([]);
      await expect(Promise.all([a, b])).resolves.toEqual([2, 4]);
      expect(commits).toEqual([[1, 2]]);
    });

    it('commits at once when maxBatch is queued', async () => {
      const { writer, commits } = harness({ maxInFlight: 2, maxBatch: 3, lingerMs: 60_000 });
      const results = [writer.write(1), writer.write(2)];
      expect(commits).toEqual([]);
      results.push(writer.write(3));
      expect(commits).toEqual([[1, 2, 3]]);
      await expect(Promise.all(results)).resolves.toEqual([2, 4, 6]);
    });

    it('commits what waits at once on commitQueued', async () => {
      const { writer, commits } = harness({ maxInFlight: 2, maxBatch: 10, lingerMs: 60_000 });
      const results = [writer.write(1), writer.write(2)];
      expect(commits).toEqual([]);
      writer.commitQueued();
      expect(commits).toEqual([[1, 2]]);
      await expect(Promise.all(results)).resolves.toEqual([2, 4]);
    });

    it('sends what queued during a commit as soon as it ends, without a second linger', async () => {
      const { writer, commits, held } = harness({ maxInFlight: 1, maxBatch: 10, lingerMs: 20, hold: true });
      const first = writer.write(1);
      await new Promise((r) => setTimeout(r, 30));
      expect(commits).toEqual([[1]]);
      const second = writer.write(2);
      // The linger runs out while the only commit is still in flight: the item waits for it.
      await new Promise((r) => setTimeout(r, 30));
      expect(commits).toEqual([[1]]);
      held[0]!.release();
      await first;
      await settle();
      expect(commits).toEqual([[1], [2]]);
      held[1]!.release();
      await expect(second).resolves.toBe(4);
    });
  });
});
