/**
 * Waiting for a gate decision: vendor requests parked until their decision is stored (here or in
 * another process, heard through the host's LISTEN connection), and the deadline timers that have
 * the last word.
 */
import type { Verdict } from './protocol.ts';

type Waiter = (verdict: Verdict) => void;

/** A pending wait: its promise, and `cancel()` to stop waiting (the promise then never resolves). */
export interface Wait<T> {
  promise: Promise<T>;
  cancel(): void;
}

/**
 * The requests of this process waiting for a decision, by gate request id.
 *
 * @example
 * ```ts
 * const waiters = new Waiters();
 * const wait = waiters.waitFor(id);
 * waiters.wake(id, verdict); // wait.promise resolves with verdict
 * ```
 */
export class Waiters {
  private readonly byId = new Map<string, Set<Waiter>>();

  /** Resolves with the decision of `id` when {@link wake} is called for it. */
  waitFor(id: string): Wait<Verdict> {
    let waiter: Waiter | undefined;
    const promise = new Promise<Verdict>((resolve) => {
      waiter = resolve;
      const set = this.byId.get(id) ?? new Set<Waiter>();
      this.byId.set(id, set);
      set.add(resolve);
    });
    return {
      promise,
      cancel: () => {
        const set = this.byId.get(id);
        if (!set || !waiter) return;
        set.delete(waiter);
        if (set.size === 0) this.byId.delete(id);
      },
    };
  }

  /** The ids waiting here now. */
  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** Hands the decision of `id` to everything waiting for it (nothing when nobody waits here). */
  wake(id: string, verdict: Verdict): void {
    const set = this.byId.get(id);
    if (!set) return;
    this.byId.delete(id);
    for (const w of set) w(verdict);
  }

  /**
   * A decision announced on the decided channel (payload `{ id, v }`): wakes its waiters. A payload
   * that is not ours (someone NOTIFYing by hand) or none (the connection came back) wakes nothing.
   */
  wakeFromNotification(payload: string | undefined): void {
    if (!payload) return;
    try {
      const p = JSON.parse(payload) as { id: string; v: Verdict };
      this.wake(p.id, p.v);
    } catch {
      // Not ours: nothing waits for it.
    }
  }
}

/** Resolves at `at` (epoch ms): the waiting request's own deadline, the vendor must have its answer by then. */
export function sleepUntil(at: number): Wait<void> {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, at - Date.now()));
  });
  return { promise, cancel: () => clearTimeout(timer) };
}
