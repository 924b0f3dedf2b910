import { readdir, readFile } from 'node:fs/promises';
import { Counter, type Histogram, type Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { GATE_DEADLINE_MS } from '../instances/schema.ts';
import { TIMEOUT_MS } from '../subscriptions/schema.ts';
import { createMetrics, metricsExposition, sharedWhileRunning } from './metrics-registry.ts';

const OPENMETRICS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** Whether what `histogram` observed fell in a finite bucket (not only in `+Inf`). */
async function countedInFiniteBucket(histogram: Histogram<string>): Promise<boolean> {
  const { values } = await histogram.get();
  return values.some((v) => v.metricName?.endsWith('_bucket') && v.labels.le !== '+Inf' && v.value > 0);
}

describe('createMetrics', () => {
  it('has delivery attempt buckets up to the longest subscription timeout, so a quantile is not capped below it', async () => {
    const metrics = createMetrics();
    metrics.attemptLatency.observe({ labels: { outcome: 'retry' }, value: TIMEOUT_MS.maximum / 1000 });
    expect(await countedInFiniteBucket(metrics.attemptLatency)).toBe(true);
  });

  it('has push buckets up to the longest gate deadline, which a gate push is answered at', async () => {
    const metrics = createMetrics();
    const labels = { instance: 'dp', outcome: 'accepted' };
    metrics.ingestDuration.observe({ labels, value: GATE_DEADLINE_MS.max / 1000 });
    expect(await countedInFiniteBucket(metrics.ingestDuration)).toBe(true);
  });
});

describe('metricsExposition', () => {
  const labels = { instance: 'dp', outcome: 'accepted' };
  // Typed as requestTraceLabels gives them (prom-client types exemplar labels as the metric's own).
  const trace: Readonly<Record<string, string>> = {
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    span_id: '00f067aa0ba902b7',
  };

  it('serves the Prometheus text format unless the scraper asks for OpenMetrics', async () => {
    const metrics = createMetrics();
    metrics.ingestDuration.observe({ labels, value: 0.004, exemplarLabels: trace });
    for (const accept of [undefined, 'text/plain;version=0.0.4', '*/*']) {
      const { contentType, text } = await metricsExposition(metrics.registry, accept);
      expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(text).toContain(
        'switchyard_ingest_duration_seconds_bucket{le="0.005",instance="dp",outcome="accepted"} 1\n',
      );
      expect(text).not.toContain('trace_id');
      expect(text).not.toContain('# EOF');
    }
  });

  it('as OpenMetrics, the bucket of a traced push names its trace; an untraced one names none', async () => {
    const metrics = createMetrics();
    metrics.ingestRequests.inc(labels);
    metrics.ingestDuration.observe({ labels, value: 0.004, exemplarLabels: trace });
    metrics.ingestDuration.observe({ labels, value: 0.04, exemplarLabels: {} });
    const { contentType, text } = await metricsExposition(metrics.registry, OPENMETRICS_ACCEPT);
    expect(contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const lines = text.split('\n');
    expect(lines.find((l) => l.includes('le="0.005"'))).toMatch(
      /^switchyard_ingest_duration_seconds_bucket\{le="0\.005",instance="dp",outcome="accepted"\} 1 # \{trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"\} 0\.004 \d+(\.\d+)?$/,
    );
    expect(lines.find((l) => l.includes('le="0.05"'))).toBe(
      'switchyard_ingest_duration_seconds_bucket{le="0.05",instance="dp",outcome="accepted"} 2',
    );
    // OpenMetrics: counters' family without `_total`, and the closing marker.
    expect(text).toContain('# TYPE switchyard_ingest_requests counter\nswitchyard_ingest_requests_total{');
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
  });

  it('metrics registered later (by subsystems) are in both formats', async () => {
    const metrics = createMetrics();
    new Counter({
      name: 'switchyard_test_later_total',
      help: 'registered after start',
      registers: [metrics.registry],
    }).inc();
    expect((await metricsExposition(metrics.registry, undefined)).text).toContain(
      'switchyard_test_later_total 1',
    );
    expect((await metricsExposition(metrics.registry, OPENMETRICS_ACCEPT)).text).toContain(
      'switchyard_test_later_total 1',
    );
  });
});

describe('sharedWhileRunning', () => {
  it('gives callers who ask while a read runs its answer, and reads afresh once it ended', async () => {
    let reads = 0;
    let release: (() => void) | undefined;
    const shared = sharedWhileRunning(async () => {
      reads++;
      await new Promise<void>((r) => {
        release = r;
      });
      return reads;
    });
    const pending = Array.from({ length: 50 }, () => shared());
    release!();
    expect(await Promise.all(pending)).toEqual(Array.from({ length: 50 }, () => 1));
    expect(reads).toBe(1);
    const next = shared();
    release!();
    expect(await next).toBe(2);
  });

  it('lets the next caller read again after a failure', async () => {
    let calls = 0;
    const shared = sharedWhileRunning(async () => {
      calls++;
      if (calls === 1) throw new Error('the database did not answer');
      return 'ok';
    });
    await expect(shared()).rejects.toThrow('the database did not answer');
    expect(await shared()).toBe('ok');
  });
});

describe('runtime metrics', () => {
  it("every registry serves the process's runtime series, the same objects in each", async () => {
    const a = createMetrics();
    const b = createMetrics();
    const { text } = await metricsExposition(a.registry, undefined);
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_open_fds',
      'nodejs_heap_size_used_bytes',
      'nodejs_heap_space_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_active_handles',
      'nodejs_gc_duration_seconds',
      'nodejs_eventloop_busy_seconds_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    // Made once per process (an event-loop monitor and a GC observer each time they are collected).
    expect(b.registry.getSingleMetric('process_resident_memory_bytes')).toBe(
      a.registry.getSingleMetric('process_resident_memory_bytes'),
    );
    expect(await metricsExposition(a.registry, OPENMETRICS_ACCEPT)).toMatchObject({
      text: expect.stringContaining('# TYPE nodejs_eventloop_busy_seconds counter'),
    });
  });

  it('counts the time the event loop was busy, whichever registry is scraped', async () => {
    const busy = async (registry: Registry) =>
      Number(
        /^nodejs_eventloop_busy_seconds_total (\S+)$/m.exec(
          (await metricsExposition(registry, undefined)).text,
        )?.[1],
      );
    const a = createMetrics();
    const b = createMetrics();
    const before = await busy(a.registry);
    const end = performance.now() + 60;
    while (performance.now() < end) {
      // The loop is busy running this code.
    }
    const after = await busy(b.registry);
    expect(after - before).toBeGreaterThanOrEqual(0.05);
    expect(await busy(a.registry)).toBeGreaterThanOrEqual(after);
  });
});

describe('metricsExposition, both formats in turn', () => {
  it('an OpenMetrics scrape leaves the counters their Prometheus-text names', async () => {
    const metrics = createMetrics();
    metrics.ingestRequests.inc({ instance: 'dp', outcome: 'accepted' });
    const line = /^switchyard_ingest_requests\S*/m;
    const text = async () => (await metricsExposition(metrics.registry, undefined)).text;
    expect(line.exec(await text())?.[0]).toBe(
      'switchyard_ingest_requests_total{instance="dp",outcome="accepted"}',
    );
    const open = (await metricsExposition(metrics.registry, OPENMETRICS_ACCEPT)).text;
    expect(open).toContain('# TYPE switchyard_ingest_requests counter\n');
    expect(line.exec(open)?.[0]).toBe('switchyard_ingest_requests_total{instance="dp",outcome="accepted"}');
    const after = await text();
    expect(after).toContain('# TYPE switchyard_ingest_requests_total counter\n');
    expect(line.exec(after)?.[0]).toBe('switchyard_ingest_requests_total{instance="dp",outcome="accepted"}');
  });
});

describe('docs/api.md', () => {
  it('lists every metric the server declares, by name', async () => {
    const src = new URL('../', import.meta.url);
    const apiDoc = await readFile(new URL('../../../../docs/api.md', import.meta.url), 'utf8');
    const declared = new Set<string>();
    for (const file of await readdir(src, { recursive: true })) {
      if (!file.endsWith('.ts') || /\.test(-support)?\.ts$/.test(file)) continue;
      const text = await readFile(new URL(file, src), 'utf8');
      for (const m of text.matchAll(/name: '(switchyard_[a-z_]+)'/g)) declared.add(m[1] as string);
    }
    expect(declared.size).toBeGreaterThan(15);
    expect([...declared].filter((name) => !apiDoc.includes(`\`${name}\``))).toEqual([]);
  });
});
