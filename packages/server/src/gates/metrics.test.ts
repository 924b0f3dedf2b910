import { type Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { GATE_DEADLINE_MS } from '../instances/schema.ts';
import { TIMEOUT_MS } from '../subscriptions/schema.ts';
import { gateMetrics } from './metrics.ts';

/** Whether `seconds` falls in a finite bucket of `histogram` (not only in `+Inf`). */
async function inFiniteBucket(histogram: Histogram<string>, labels: Record<string, string>, seconds: number) {
  histogram.observe(labels, seconds);
  const { values } = await histogram.get();
  return values.some((v) => v.metricName?.endsWith('_bucket') && v.labels.le !== '+Inf' && v.value > 0);
}

describe('gateMetrics', () => {
  it('has buckets up to the longest wait each histogram measures, so a quantile is not capped below it', async () => {
    const metrics = gateMetrics(new Registry());
    // A vendor waits for its answer until the instance's deadline (at most GATE_DEADLINE_MS.max).
    expect(await inFiniteBucket(metrics.duration, { instance: 'dp' }, GATE_DEADLINE_MS.max / 1000)).toBe(
      true,
    );
    // An approver's answer is timed until the subscription's timeout (late answers are recorded).
    expect(
      await inFiniteBucket(
        metrics.approver,
        { subscription: 'crm', outcome: 'approve' },
        TIMEOUT_MS.maximum / 1000,
      ),
    ).toBe(true);
  });
});
