import { performance } from 'node:perf_hooks';
import type { HubHost } from '../host/host.ts';
import * as q from './store.ts';

/**
 * How long this process trusts what it knows about an instance's unmatched gate requests, ms. A
 * stored request is heard at once (NOTIFY); the bound only limits how long a missed notification
 * could go unnoticed, as for the approver list. One check a second per instance, where matching
 * asked the database for every booking.
 */
const TRUST_MS = 1000;

/**
 * Which instances may have gate requests waiting for their booking, per process: most hubs
 * receive bookings of gated connectors (every Docplanner booking) with no gate request at all, and
 * asking the database for each booking cost a statement per event (0.5–0.8 ms of Postgres CPU per
 * event at 200/s, docs/benchmarks.md).
 *
 * Why skipping is safe: a gate request is stored, and announced (`CHANNEL_GATE_REQUESTED`, sent
 * right after its commit: the vendor's answer waits for it to be sent), before the vendor gets its
 * answer, so before the vendor sends the booking that follows; that booking is then received,
 * stored, claimed and normalized, which takes far longer than delivering the NOTIFY to this
 * process's LISTEN connection. A notification arriving while a
 * check is in flight wins over the check's answer (`generation`); while the LISTEN connection is
 * down nothing is trusted, and a reconnect forgets everything (notifications may have been missed).
 *
 * @example
 * ```ts
 * const unmatched = new UnmatchedRequests(host, windowMs);
 * await host.listener.listen(CHANNEL_GATE_REQUESTED, (instanceId) => unmatched.heard(instanceId));
 * if (await unmatched.mayExist('dp-main')) await matcher.write(booking);
 * ```
 */
export class UnmatchedRequests {
  private readonly host: HubHost;
  private readonly windowMs: number;
  private readonly known = new Map<string, { exists: boolean; at: number }>();
  private readonly checking = new Map<string, Promise<boolean>>();
  private generation = 0;

  constructor(host: HubHost, windowMs: number) {
    this.host = host;
    this.windowMs = windowMs;
  }

  /** A request of `instanceId` was stored; undefined: notifications may have been missed (reconnect). */
  heard(instanceId: string | undefined): void {
    this.generation++;
    if (instanceId === undefined) this.known.clear();
    else this.known.set(instanceId, { exists: true, at: performance.now() });
  }

  /** False only when the instance is known to have no unmatched request within the window. */
  mayExist(instanceId: string): Promise<boolean> {
    const entry = this.known.get(instanceId);
    if (entry && this.host.listener.listening && performance.now() - entry.at < TRUST_MS)
      return Promise.resolve(entry.exists);
    let check = this.checking.get(instanceId);
    if (!check) {
      const generation = this.generation;
      const at = performance.now();
      check = q
        .hasUnmatchedRequests(this.host.db, instanceId, this.windowMs)
        .then((exists) => {
          // A request heard meanwhile may be newer than what the check read.
          if (generation === this.generation) this.known.set(instanceId, { exists, at });
          return exists || generation !== this.generation;
        })
        .finally(() => this.checking.delete(instanceId));
      this.checking.set(instanceId, check);
    }
    return check;
  }
}
