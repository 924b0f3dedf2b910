/** The gate metrics, registered in the host's registry (the process's `/metrics`). */
import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * A metric of `registry` by name, or a new one made by `make`. The HTTP layer registers
 * `switchyard_gate_decisions_total` itself (so `/metrics` lists the family before any gate is
 * decided); the gates then increment that one rather than registering the name twice.
 */
function registered<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Creates (or finds) the gate metrics in `registry`.
 *
 * @example
 * ```ts
 * const metrics = gateMetrics(hub.host.metrics);
 * metrics.decisions.inc({ instance: 'dp-main', outcome: 'approve', reason: 'approved' });
 * ```
 */
export function gateMetrics(registry: Registry) {
  // Up to the longest wait each measures, so a quantile is not capped below it: a vendor waits
  // until the instance's deadline (at most 30 s, GATE_DEADLINE_MS), an approver's late answer is
  // timed until its subscription's timeout (at most 120 s). Ending at 5 s, every answer given at a
  // deadline of 10 s fell in +Inf and histogram_quantile read 5.
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
  return {
    decisions: registered(
      registry,
      'switchyard_gate_decisions_total',
      () =>
        new Counter({
          name: 'switchyard_gate_decisions_total',
          help: 'Gate requests answered, by instance, outcome and reason.',
          labelNames: ['instance', 'outcome', 'reason'] as const,
          registers: [registry],
        }),
    ),
    duration: registered(
      registry,
      'switchyard_gate_duration_seconds',
      () =>
        new Histogram({
          name: 'switchyard_gate_duration_seconds',
          help: 'Time the vendor waited for a gate answer, from the request reaching the gate machinery.',
          labelNames: ['instance'] as const,
          buckets,
          registers: [registry],
        }),
    ),
    approver: registered(
      registry,
      'switchyard_gate_approver_seconds',
      () =>
        new Histogram({
          name: 'switchyard_gate_approver_seconds',
          help: "An approver's answer time, by subscription and outcome.",
          labelNames: ['subscription', 'outcome'] as const,
          buckets: [...buckets, 60, 120],
          registers: [registry],
        }),
    ),
    overhead: registered(
      registry,
      'switchyard_gate_overhead_seconds',
      () =>
        new Histogram({
          name: 'switchyard_gate_overhead_seconds',
          help: 'Time the hub added to a decision made by approvers: decision time minus the deciding answer time.',
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
          registers: [registry],
        }),
    ),
    matched: registered(
      registry,
      'switchyard_gate_bookings_matched_total',
      () =>
        new Counter({
          name: 'switchyard_gate_bookings_matched_total',
          help: 'Bookings matched to the gate request that preceded them.',
          labelNames: ['instance'] as const,
          registers: [registry],
        }),
    ),
    abandoned: registered(
      registry,
      'switchyard_gate_abandoned_total',
      () =>
        new Counter({
          name: 'switchyard_gate_abandoned_total',
          help: 'Gate requests left undecided by a process that stopped, closed by the sweep with the default.',
          labelNames: ['instance', 'outcome'] as const,
          registers: [registry],
        }),
    ),
  };
}

/** The gate metrics of one process. */
export type GateMetrics = ReturnType<typeof gateMetrics>;
