import { describe, expect, it } from 'vitest';
import {
  describeTracing,
  resolveTracing,
  resourceAttributesFromEnv,
  samplerFromEnv,
  type TracesFileSettings,
  type TracingDefaults,
} from './settings.ts';

const base: TracesFileSettings = {};
const defaults: TracingDefaults = {
  sampleRatio: 1,
  queueSize: 2048,
  batchDelayMs: 1000,
  exportTimeoutMs: 10_000,
};

describe('resolveTracing', () => {
  it('is off without an endpoint in the file or the environment', () => {
    expect(resolveTracing(base, {}, defaults)).toBeUndefined();
    expect(resolveTracing(base, { OTEL_TRACES_SAMPLER: 'always_on' }, defaults)).toBeUndefined();
  });

  it('is on with the file endpoint, the env endpoint, or the per-signal env endpoint', () => {
    expect(resolveTracing({ ...base, endpoint: 'http://c:4318/v1/traces' }, {}, defaults)?.url).toBe(
      'http://c:4318/v1/traces',
    );
    // The exporter reads the environment itself: no url is passed, so it appends /v1/traces.
    const fromEnv = resolveTracing(base, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, defaults);
    expect(fromEnv).toBeDefined();
    expect(fromEnv?.url).toBeUndefined();
    expect(
      resolveTracing(base, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/v1/traces' }, defaults),
    ).toBeDefined();
  });

  it('OTEL_TRACES_EXPORTER=none (or a list without otlp) keeps an environment endpoint from turning it on; the file still wins', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    for (const exporters of ['none', 'NONE', 'console', 'zipkin,console', 'otlp,none'])
      expect(
        resolveTracing(base, { ...env, OTEL_TRACES_EXPORTER: exporters }, defaults),
        exporters,
      ).toBeUndefined();
    for (const exporters of ['otlp', ' OTLP ', 'console,otlp', ''])
      expect(
        resolveTracing(base, { ...env, OTEL_TRACES_EXPORTER: exporters }, defaults),
        exporters,
      ).toBeDefined();
    expect(
      resolveTracing(
        { ...base, endpoint: 'http://c:4318/v1/traces' },
        { OTEL_TRACES_EXPORTER: 'none' },
        defaults,
      )?.url,
    ).toBe('http://c:4318/v1/traces');
  });

  it('OTEL_SDK_DISABLED=true turns it off whatever the file says', () => {
    expect(
      resolveTracing(
        { ...base, endpoint: 'http://c:4318/v1/traces' },
        { OTEL_SDK_DISABLED: 'true' },
        defaults,
      ),
    ).toBeUndefined();
  });

  it('the file sample ratio wins over OTEL_TRACES_SAMPLER, which wins over the default', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    };
    expect(resolveTracing({ ...base, sampleRatio: 0.5 }, env, defaults)?.sampler).toEqual({
      ratio: 0.5,
      parentBased: true,
      from: 'file',
    });
    expect(resolveTracing(base, env, defaults)?.sampler).toEqual({
      ratio: 0.25,
      parentBased: false,
      from: 'env',
    });
    expect(resolveTracing(base, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, defaults)?.sampler).toEqual({
      ratio: 1,
      parentBased: true,
      from: 'default',
    });
  });

  it('passes the file headers on (the exporter merges them over OTEL_EXPORTER_OTLP_HEADERS)', () => {
    const s = resolveTracing(
      { ...base, endpoint: 'http://c/v1/traces', headers: { 'x-key': 'k' } },
      {},
      defaults,
    );
    expect(s?.headers).toEqual({ 'x-key': 'k' });
  });

  it('exports protobuf unless OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL asks for http/json', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' };
    expect(resolveTracing(base, on, defaults)?.protocol).toBe('http/protobuf');
    expect(
      resolveTracing(base, { ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, defaults)?.protocol,
    ).toBe('http/json');
    // The per-signal variable wins; grpc (no exporter shipped) falls back to protobuf.
    expect(
      resolveTracing(
        base,
        { ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' },
        defaults,
      )?.protocol,
    ).toBe('http/protobuf');
  });

  it('leaves the export timeout to OTEL_EXPORTER_OTLP_TIMEOUT when it is set', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' };
    expect(resolveTracing(base, on, defaults)?.exportTimeoutMs).toBe(10_000);
    expect(
      resolveTracing(base, { ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '500' }, defaults)?.exportTimeoutMs,
    ).toBeUndefined();
  });
});

describe('resolveTracing: the batch span processor variables (OTEL_BSP_*)', () => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' };

  it('fill in the queue, the delay, the export timeout and the request size the file leaves out', () => {
    // They were not read: a deployment's OTEL_BSP_MAX_QUEUE_SIZE=20000 (a burst-heavy hub) kept 2,048.
    const s = resolveTracing(
      base,
      {
        ...on,
        OTEL_BSP_MAX_QUEUE_SIZE: '20000',
        OTEL_BSP_SCHEDULE_DELAY: '250',
        OTEL_BSP_EXPORT_TIMEOUT: '3000',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100',
      },
      defaults,
    );
    expect(s).toMatchObject({
      queueSize: 20_000,
      batchDelayMs: 250,
      exportTimeoutMs: 3000,
      shutdownTimeoutMs: 3000,
      exportBatchSpans: 100,
    });
    // Without them, the config's defaults; no request size: the export thread's own.
    const plain = resolveTracing(base, on, defaults);
    expect(plain).toMatchObject({ queueSize: 2048, batchDelayMs: 1000, exportTimeoutMs: 10_000 });
    expect(plain?.exportBatchSpans).toBeUndefined();
  });

  it("lose to the file's queueSize; a request is never larger than the queue", () => {
    const env = { ...on, OTEL_BSP_MAX_QUEUE_SIZE: '20000', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '600' };
    expect(resolveTracing({ queueSize: 500 }, env, defaults)).toMatchObject({
      queueSize: 500,
      exportBatchSpans: 500,
    });
  });

  it('are ignored when not whole numbers in range, and named at start-up', () => {
    const env = {
      ...on,
      OTEL_BSP_MAX_QUEUE_SIZE: '0',
      OTEL_BSP_SCHEDULE_DELAY: '1.5s',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '-3',
      OTEL_BSP_EXPORT_TIMEOUT: '0',
    };
    const s = resolveTracing(base, env, defaults)!;
    expect(s).toMatchObject({ queueSize: 2048, batchDelayMs: 1000, exportTimeoutMs: 10_000 });
    expect(s.exportBatchSpans).toBeUndefined();
    expect(describeTracing(s, env).notHonoured).toEqual([
      'OTEL_BSP_SCHEDULE_DELAY=1.5s: not a whole number, ignored',
      'OTEL_BSP_EXPORT_TIMEOUT=0: not a whole number above 0, ignored',
      'OTEL_BSP_MAX_QUEUE_SIZE=0: not a whole number above 0, ignored',
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE=-3: not a whole number above 0, ignored',
    ]);
  });
});

describe('resolveTracing: OTEL_PROPAGATORS', () => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' };
  const propagators = (value?: string) =>
    resolveTracing(base, value === undefined ? on : { ...on, OTEL_PROPAGATORS: value }, defaults)
      ?.propagators;

  it('W3C trace context unless the deployment says; the shipped names in its list; none wins', () => {
    expect(propagators()).toEqual(['tracecontext']);
    expect(propagators('tracecontext,baggage')).toEqual(['tracecontext', 'baggage']);
    expect(propagators(' Baggage ')).toEqual(['baggage']);
    expect(propagators('none')).toEqual([]);
    expect(propagators('tracecontext,none')).toEqual([]);
  });

  it('names what is not shipped at start-up, and keeps speaking traceparent when nothing else is left', () => {
    const env = { ...on, OTEL_PROPAGATORS: 'b3,jaeger' };
    const s = resolveTracing(base, env, defaults)!;
    expect(s.propagators).toEqual(['tracecontext']);
    const described = describeTracing(s, env);
    expect(described.propagators).toBe('tracecontext');
    expect(described.notHonoured).toEqual([
      'OTEL_PROPAGATORS=b3,jaeger: b3, jaeger not offered, the hub reads and writes tracecontext',
    ]);
    const none = { ...on, OTEL_PROPAGATORS: 'none' };
    expect(describeTracing(resolveTracing(base, none, defaults)!, none)).toMatchObject({
      propagators: 'none',
    });
    expect(describeTracing(resolveTracing(base, none, defaults)!, none).notHonoured).toBeUndefined();
  });
});

describe('samplerFromEnv', () => {
  it('reads the ratio family and ignores samplers it cannot honour', () => {
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' })).toEqual({
      ratio: 0,
      parentBased: true,
      from: 'env',
    });
    expect(
      samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' })
        ?.ratio,
    ).toBe(1);
    // An argument out of [0, 1] is ignored as the specification says (the default, 1.0), not clamped.
    for (const arg of ['-0.1', '-5', '1.5', 'half', ''])
      expect(
        samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg })?.ratio,
        arg,
      ).toBe(1);
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' })?.ratio).toBe(
      0,
    );
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toBeUndefined();
    expect(samplerFromEnv({})).toBeUndefined();
  });
});

describe('resourceAttributesFromEnv', () => {
  it('reads OTEL_RESOURCE_ATTRIBUTES as the specification does, discarding a value it cannot read whole', () => {
    expect(resourceAttributesFromEnv({ OTEL_RESOURCE_ATTRIBUTES: ' a = 1 ,b=x%20y%2Cz,, ' })).toEqual({
      a: '1',
      b: 'x y,z',
    });
    for (const bad of ['a=1,b', 'a=1,=2', 'a=1=2', 'a=%E0%A4%A'])
      expect(resourceAttributesFromEnv({ OTEL_RESOURCE_ATTRIBUTES: bad }), bad).toBeUndefined();
    expect(resourceAttributesFromEnv({})).toBeUndefined();
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' };
    expect(
      resolveTracing(base, { ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=a' }, defaults)?.serviceName,
    ).toBe('a');
    expect(
      resolveTracing(
        base,
        { ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=a', OTEL_SERVICE_NAME: 'b' },
        defaults,
      )?.serviceName,
    ).toBe('b');
  });
});

describe('describeTracing (the start-up log line)', () => {
  it('names the URL the exporter uses, without credentials, and which sampler won and from where', () => {
    const described = (file: Partial<TracesFileSettings>, env: Record<string, string>) =>
      describeTracing(resolveTracing({ ...base, ...file }, env, defaults)!, env);
    expect(
      described({ endpoint: 'https://u:pw@otel.example.com:4318/v1/traces?token=abc' }, {}).endpoint,
    ).toBe('https://otel.example.com:4318/v1/traces');
    expect(described({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'user:s3cret@otel:4318' }).endpoint).toBe(
      '(not an http:// or https:// URL)',
    );
    // The environment's: the per-signal URL as is, the generic one with /v1/traces appended.
    expect(described({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).endpoint).toBe(
      'http://c:4318/v1/traces',
    );
    expect(described({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/otlp/' }).endpoint).toBe(
      'http://c:4318/otlp/v1/traces',
    );
    expect(
      described(
        {},
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x' },
      ).endpoint,
    ).toBe('http://t:1/x');
    // OTEL_TRACES_SAMPLER lost to the file's sampleRatio: the line says so.
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_SAMPLER: 'always_on' };
    expect(described({ sampleRatio: 0.1 }, env)).toMatchObject({
      sampler: 'parentbased_traceidratio',
      sampleRatio: 0.1,
      samplerFrom: 'file',
      protocol: 'http/protobuf',
      serviceName: 'switchyard',
    });
    expect(described({}, env)).toMatchObject({ sampler: 'traceidratio', sampleRatio: 1, samplerFrom: 'env' });
  });
});

describe('describeTracing: what is not honoured', () => {
  it('names an OTEL_* value the hub cannot use (grpc, an unknown sampler, an argument that is no ratio), for a warning', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' };
    const notes = (env: Record<string, string>) =>
      describeTracing(resolveTracing(base, env, defaults)!, env).notHonoured;
    expect(notes(on)).toBeUndefined();
    expect(
      notes({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_SAMPLER: 'always_on' }),
    ).toBeUndefined();
    expect(notes({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toEqual([
      'OTEL_EXPORTER_OTLP_PROTOCOL=grpc: not offered, spans go as http/protobuf',
    ]);
    // The per-signal variable is the one the exporter reads first.
    expect(
      notes({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }),
    ).toBeUndefined();
    expect(notes({ ...on, OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toEqual([
      'OTEL_TRACES_SAMPLER=jaeger_remote: not offered, the default sampler is used',
    ]);
    expect(notes({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '-0.1' })).toEqual([
      'OTEL_TRACES_SAMPLER_ARG=-0.1: not a ratio from 0 to 1, ignored',
    ]);
  });
});
