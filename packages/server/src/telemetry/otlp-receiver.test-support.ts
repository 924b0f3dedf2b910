/**
 * A minimal OTLP/HTTP trace receiver for tests: decodes what the official exporters send
 * (`ExportTraceServiceRequest`, as protobuf — the hub's default — or in OTLP 1.x JSON encoding:
 * ids as hex strings, times as decimal strings of nanoseconds) into flat spans. It can answer
 * with any status, to play a failing collector.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as the exporter sent it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  /** Resource attributes of the process that sent it (`service.instance.id`, `switchyard.role`). */
  resource: Record<string, string | number | boolean>;
  /** The W3C tracestate the span carried (empty for none). */
  traceState: string;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}

function flatten(
  list: { key: string; value: OtlpValue }[] | undefined,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
  }
  return out;
}

/** Decodes one OTLP/JSON `ExportTraceServiceRequest` body. */
export function decodeOtlpJson(body: unknown): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  const request = body as {
    resourceSpans?: {
      resource?: { attributes?: { key: string; value: OtlpValue }[] };
      scopeSpans?: {
        spans?: {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          traceState?: string;
          name: string;
          kind: number;
          startTimeUnixNano: string | number;
          endTimeUnixNano: string | number;
          attributes?: { key: string; value: OtlpValue }[];
          status?: { code?: number };
        }[];
      }[];
    }[];
  };
  for (const rs of request.resourceSpans ?? []) {
    const resource = flatten(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: flatten(s.attributes),
          statusCode: s.status?.code ?? 0,
          resource,
          traceState: s.traceState ?? '',
        });
      }
    }
  }
  return spans;
}

/** A protobuf field as read off the wire: a varint, or the raw bytes of the other wire types. */
type Field = bigint | Buffer;

/**
 * The fields of one protobuf message by number, in wire order: varints as bigint, length-delimited
 * and fixed-width values as their bytes (enough for OTLP's trace messages; groups are not used).
 */
function protoFields(buf: Buffer): Map<number, Field[]> {
  const fields = new Map<number, Field[]>();
  let pos = 0;
  const varint = (): bigint => {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buf[pos++]!;
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const [field, wire] = [tag >>> 3, tag & 7];
    let value: Field;
    if (wire === 0) value = varint();
    else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      value = buf.subarray(pos, pos + size);
      pos += size;
    } else if (wire === 2) {
      const size = Number(varint());
      value = buf.subarray(pos, pos + size);
      pos += size;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

const bytesOf = (m: Map<number, Field[]>, field: number): Buffer[] => (m.get(field) ?? []) as Buffer[];
const firstBytes = (m: Map<number, Field[]>, field: number): Buffer | undefined => bytesOf(m, field)[0];
const firstVarint = (m: Map<number, Field[]>, field: number): bigint =>
  (m.get(field)?.[0] as bigint | undefined) ?? 0n;

/** `repeated KeyValue` (key 1, AnyValue 2: string 1, bool 2, int 3, double 4) as a flat record. */
function protoAttributes(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list.map(protoFields)) {
    const key = firstBytes(kv, 1)?.toString('utf8') ?? '';
    const value = protoFields(firstBytes(kv, 2) ?? Buffer.alloc(0));
    if (value.has(1)) out[key] = firstBytes(value, 1)!.toString('utf8');
    else if (value.has(2)) out[key] = firstVarint(value, 2) !== 0n;
    else if (value.has(3)) out[key] = Number(BigInt.asIntN(64, firstVarint(value, 3)));
    else if (value.has(4)) out[key] = firstBytes(value, 4)!.readDoubleLE(0);
  }
  return out;
}

/** Decodes one protobuf `ExportTraceServiceRequest` body (opentelemetry-proto `trace/v1`). */
export function decodeOtlpProtobuf(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of bytesOf(protoFields(body), 1).map(protoFields)) {
    const resourceMessage = firstBytes(rs, 1);
    const resource = protoAttributes(resourceMessage ? bytesOf(protoFields(resourceMessage), 1) : []);
    for (const ss of bytesOf(rs, 2).map(protoFields)) {
      for (const s of bytesOf(ss, 2).map(protoFields)) {
        const status = firstBytes(s, 15);
        spans.push({
          traceId: firstBytes(s, 1)?.toString('hex') ?? '',
          spanId: firstBytes(s, 2)?.toString('hex') ?? '',
          parentSpanId: firstBytes(s, 4)?.toString('hex') ?? '',
          name: firstBytes(s, 5)?.toString('utf8') ?? '',
          kind: Number(firstVarint(s, 6)),
          startNs: firstBytes(s, 7)?.readBigUInt64LE(0) ?? 0n,
          endNs: firstBytes(s, 8)?.readBigUInt64LE(0) ?? 0n,
          attributes: protoAttributes(bytesOf(s, 9)),
          statusCode: status ? Number(firstVarint(protoFields(status), 3)) : 0,
          resource,
          traceState: firstBytes(s, 3)?.toString('utf8') ?? '',
        });
      }
    }
  }
  return spans;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** The traces URL to configure (`…/v1/traces`). */
  url: string;
  spans: ReceivedSpan[];
  /** Export requests received (answered with `status`). */
  requests: number;
  /** The headers of each export request, in order (what the exporter was configured to send). */
  headers: IncomingHttpHeaders[];
  /** Body bytes received. */
  bytes: number;
  /** What later requests are answered (default 200). */
  status: number;
  /**
   * A failing answer's body and reason phrase, from the request's headers (default: a fixed
   * message). A careless gateway quotes what it was sent: the secrets sweep plays one.
   */
  failure?: (headers: IncomingHttpHeaders) => { body: string; reason?: string };
  /** Resolves with the spans once `predicate` holds, or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Starts a receiver on loopback. Spans of requests answered with a non-2xx status are not kept.
 *
 * @example
 * ```ts
 * const otlp = await startOtlpReceiver();
 * // telemetry: { traces: { endpoint: otlp.url } }
 * await otlp.waitFor((spans) => spans.some((s) => s.name === 'switchyard.deliver'), 20_000);
 * ```
 */
export async function startOtlpReceiver(
  options: {
    status?: number;
    /** Count requests and bytes only, keeping no spans (benchmarks: a collector's cost, not a test's). */
    discard?: boolean;
  } = {},
): Promise<OtlpReceiver> {
  const receiver = {
    spans: [] as ReceivedSpan[],
    requests: 0,
    headers: [] as IncomingHttpHeaders[],
    bytes: 0,
    status: options.status ?? 200,
    failure: undefined as OtlpReceiver['failure'],
  };
  const server = createServer((request, response) => {
    void readBody(request).then((body) => {
      receiver.requests++;
      if (!options.discard) receiver.headers.push(request.headers);
      receiver.bytes += body.length;
      const ok = receiver.status >= 200 && receiver.status < 300;
      const type = request.headers['content-type'] ?? '';
      if (ok && !options.discard && request.url === '/v1/traces') {
        if (type.includes('json')) receiver.spans.push(...decodeOtlpJson(JSON.parse(body.toString('utf8'))));
        else if (type.includes('protobuf')) receiver.spans.push(...decodeOtlpProtobuf(body));
      }
      if (ok && type.includes('protobuf')) {
        // An empty ExportTraceServiceResponse: zero bytes in protobuf.
        response.writeHead(receiver.status, { 'content-type': 'application/x-protobuf' });
        response.end();
        return;
      }
      if (!ok && receiver.failure) {
        const { body: text, reason } = receiver.failure(request.headers);
        if (reason !== undefined) response.statusMessage = reason;
        response.writeHead(receiver.status, { 'content-type': 'application/json' });
        response.end(text);
        return;
      }
      response.writeHead(receiver.status, { 'content-type': 'application/json' });
      response.end(ok ? '{}' : '{"code":13,"message":"receiver told to fail"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/v1/traces`,
    async waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(receiver.spans)) {
        if (Date.now() > deadline)
          throw new Error(
            `the receiver did not get the expected spans in ${timeoutMs} ms; it has: ${receiver.spans.map((s) => s.name).join(', ')}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
      return receiver.spans;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/**
 * One trace as a waterfall table (markdown): each span indented under its parent, the process
 * that sent it, its start relative to the trace's first span and its duration, plus a bar.
 */
export function waterfall(spans: readonly ReceivedSpan[]): string {
  const byParent = new Map<string, ReceivedSpan[]>();
  const ids = new Set(spans.map((s) => s.spanId));
  for (const s of spans) {
    const parent = ids.has(s.parentSpanId) ? s.parentSpanId : '';
    byParent.set(parent, [...(byParent.get(parent) ?? []), s]);
  }
  for (const list of byParent.values()) list.sort((a, b) => (a.startNs < b.startNs ? -1 : 1));
  // bigint nanoseconds: Math.min/max take numbers only.
  let t0 = spans[0]?.startNs ?? 0n;
  let end = t0;
  for (const s of spans) {
    if (s.startNs < t0) t0 = s.startNs;
    if (s.endNs > end) end = s.endNs;
  }
  const total = Number(end - t0) || 1;
  const WIDTH = 40;
  const rows: string[] = ['| stage | process | start (ms) | duration (ms) | |', '|---|---|--:|--:|---|'];
  const detail = (s: ReceivedSpan): string => {
    const a = s.attributes;
    const parts: string[] = [];
    if (a['switchyard.subscription'] !== undefined) parts.push(`sub ${a['switchyard.subscription']}`);
    if (a['switchyard.attempt'] !== undefined && s.name === 'switchyard.deliver')
      parts.push(`attempt ${a['switchyard.attempt']}`);
    if (a['switchyard.delivery.outcome'] !== undefined) parts.push(String(a['switchyard.delivery.outcome']));
    if (a['http.response.status_code'] !== undefined) parts.push(`HTTP ${a['http.response.status_code']}`);
    return parts.length > 0 ? ` (${parts.join(', ')})` : '';
  };
  const visit = (parent: string, depth: number) => {
    for (const s of byParent.get(parent) ?? []) {
      const start = Number(s.startNs - t0);
      const duration = Number(s.endNs - s.startNs);
      const from = Math.floor((start / total) * WIDTH);
      const len = Math.max(1, Math.round((duration / total) * WIDTH));
      const bar = `\`${' '.repeat(from)}${'█'.repeat(Math.min(len, WIDTH - from))}${' '.repeat(Math.max(0, WIDTH - from - len))}\``;
      rows.push(
        `| ${'&nbsp;&nbsp;'.repeat(depth)}${s.name}${detail(s)} | ${s.resource['switchyard.role'] ?? '?'} | ${(start / 1e6).toFixed(1)} | ${(duration / 1e6).toFixed(1)} | ${bar} |`,
      );
      visit(s.spanId, depth + 1);
    }
  };
  visit('', 0);
  return rows.join('\n');
}
