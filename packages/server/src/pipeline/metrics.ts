/** The pipeline's own metrics, registered in the host's registry (the process's `/metrics`). */
import { Counter, type Registry } from 'prom-client';

/** What became of one normalization (the `outcome` label of `switchyard_normalizations_total`). */
export type NormalizationOutcome = 'normalized' | 'ignored' | 'retry' | 'failed';

/** The pipeline's counters; see {@link pipelineMetrics}. */
export interface PipelineMetrics {
  /**
   * Normalizations finished by this process, by instance and outcome: `normalized` (events stored
   * and fanned out), `ignored` (the connector mapped it to nothing), `retry` (a transient failure:
   * tried again later, e.g. a vendor's enrichment API down) and `failed` (refused for good: the
   * message is `failed` and waits for the operator). Without it a connector refusing messages, or
   * a vendor API keeping every normalization retrying, moved no metric but the normalize queue's
   * depth, which says neither which instance nor why.
   */
  normalizations: Counter<'instance' | 'outcome'>;
}

/**
 * Creates the pipeline's metrics in `registry`, or finds them there (a registry shared by two hubs
 * in one process, as tests do, gets one family).
 *
 * @example
 * ```ts
 * const metrics = pipelineMetrics(hub.host.metrics);
 * metrics.normalizations.inc({ instance: 'cw-main', outcome: 'retry' });
 * ```
 */
export function pipelineMetrics(registry: Registry): PipelineMetrics {
  const name = 'switchyard_normalizations_total';
  const normalizations =
    (registry.getSingleMetric(name) as Counter<'instance' | 'outcome'> | undefined) ??
    new Counter({
      name,
      help: 'Normalizations finished by this process, by instance and outcome (normalized, ignored, retry, failed).',
      labelNames: ['instance', 'outcome'],
      registers: [registry],
    });
  return { normalizations };
}
