import { randomUUID } from 'node:crypto';
import {
  type AliasStore,
  type CommandContext,
  ConnectorError,
  type EntityKind,
  type InboundRequest,
  type JsonValue,
  type Logger,
  type NormalizeContext,
  type StateStore,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';

/** A fake vendor API: answers the connector's {@link VendorRequest}s. Throw `ConnectorError.transient` to simulate a network failure. */
export type VendorApi = (request: VendorRequest) => VendorResponse | Promise<VendorResponse>;

/** One captured log call. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg?: string;
}

/** An in-memory {@link AliasStore}; hub ids are random UUIDs. */
export class MemoryAliasStore implements AliasStore {
  /** `${entity}\u0000${vendorId}` → hub id. */
  readonly byVendorId = new Map<string, string>();

  async hubId(entity: EntityKind, vendorId: string): Promise<string> {
    const key = aliasKey(entity, vendorId);
    let id = this.byVendorId.get(key);
    if (id === undefined) {
      id = randomUUID();
      this.byVendorId.set(key, id);
    }
    return id;
  }

  async find(entity: EntityKind, vendorId: string): Promise<string | undefined> {
    return this.byVendorId.get(aliasKey(entity, vendorId));
  }

  async hubIdUnless(
    entity: EntityKind,
    vendorId: string,
    other: string,
  ): Promise<{ hubId: string } | { other: string }> {
    const known = this.byVendorId.get(aliasKey(entity, vendorId));
    if (known !== undefined) return { hubId: known };
    const otherId = this.byVendorId.get(aliasKey(entity, other));
    if (otherId !== undefined) return { other: otherId };
    return { hubId: await this.hubId(entity, vendorId) };
  }

  async link(entity: EntityKind, vendorId: string, hubId: string): Promise<void> {
    const key = aliasKey(entity, vendorId);
    const existing = this.byVendorId.get(key);
    if (existing !== undefined && existing !== hubId) {
      throw ConnectorError.permanent(`${entity} vendor id ${vendorId} is already linked to another hub id`);
    }
    this.byVendorId.set(key, hubId);
  }

  async vendorIds(entity: EntityKind, hubId: string): Promise<string[]> {
    const prefix = `${entity}\u0000`;
    return [...this.byVendorId]
      .filter(([key, id]) => id === hubId && key.startsWith(prefix))
      .map(([key]) => key.slice(prefix.length));
  }

  /** An independent copy (the conformance suite forks contexts for round trips). */
  clone(): MemoryAliasStore {
    const copy = new MemoryAliasStore();
    for (const [key, id] of this.byVendorId) copy.byVendorId.set(key, id);
    return copy;
  }
}

/** An in-memory {@link StateStore}. Values are deep-copied in and out, as a database would. */
export class MemoryStateStore implements StateStore {
  readonly values = new Map<string, string>();

  async get<T extends JsonValue>(key: string): Promise<T | undefined> {
    const raw = this.values.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async set(key: string, value: JsonValue): Promise<void> {
    this.values.set(key, JSON.stringify(jsonbOrder(value)));
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }

  clone(): MemoryStateStore {
    const copy = new MemoryStateStore();
    for (const [key, value] of this.values) copy.values.set(key, value);
    return copy;
  }
}

/**
 * Reorders object keys the way Postgres jsonb stores them (shorter keys first, then bytewise), so a
 * connector that compares state with `JSON.stringify` fails here as it would against the hub.
 */
function jsonbOrder(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(jsonbOrder);
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value).sort((a, b) => {
    const la = Buffer.byteLength(a);
    const lb = Buffer.byteLength(b);
    return la !== lb ? la - lb : Buffer.compare(Buffer.from(a), Buffer.from(b));
  });
  const out: { [key: string]: JsonValue } = {};
  for (const key of keys) out[key] = jsonbOrder(value[key] as JsonValue);
  return out;
}

function aliasKey(entity: EntityKind, vendorId: string): string {
  return `${entity}\u0000${vendorId}`;
}

/** A logger that keeps entries in memory (and prints nothing). */
export function capturingLogger(entries: LogEntry[] = []): Logger & { entries: LogEntry[] } {
  const at =
    (level: LogEntry['level']) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      entries.push(msg === undefined ? { level, obj } : { level, obj, msg });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A test context's `http`: answered by `vendorApi` (a transient failure without one), every call kept. */
function answeredBy(vendorApi: VendorApi | undefined, vendorRequests: VendorRequest[]) {
  return {
    async request(request: VendorRequest): Promise<VendorResponse> {
      vendorRequests.push(request);
      if (!vendorApi) {
        throw ConnectorError.transient(
          `no vendor API in this test context (${request.method ?? 'GET'} ${request.url}): pass vendorApi`,
        );
      }
      return await vendorApi(request);
    },
  };
}

/** Options for {@link memoryNormalizeContext}. */
export interface MemoryNormalizeContextOptions<Config> {
  /** Default `test-instance`. */
  instanceId?: string;
  config: Config;
  /** Answers vendor API calls; without it, any call throws `ConnectorError.transient`. */
  vendorApi?: VendorApi;
  /** Default 1. */
  attempt?: number;
  /** Default false. */
  finalAttempt?: boolean;
  /** Default now. */
  receivedAt?: Date;
  /** Share stores with another context (e.g. to continue a sequence). */
  aliases?: MemoryAliasStore;
  state?: MemoryStateStore;
}

/** A {@link NormalizeContext} whose stores, logs and vendor calls can be inspected. */
export interface MemoryNormalizeContext<Config> extends NormalizeContext<Config> {
  aliases: MemoryAliasStore;
  state: MemoryStateStore;
  logger: Logger & { entries: LogEntry[] };
  /** Every vendor API call the connector made, in order. */
  vendorRequests: VendorRequest[];
}

/**
 * A {@link NormalizeContext} for connector unit tests: in-memory aliases (random UUID hub ids) and
 * state, a capturing logger, and an `http` client answered by `vendorApi`. It also satisfies
 * `PullContext`, so pull clients can be tested with it.
 *
 * @example
 * ```ts
 * const ctx = memoryNormalizeContext({
 *   config: { apiKey: 'k' },
 *   vendorApi: (req) => ({ status: 200, headers: {}, body: { id: 1, first_name: 'Ada' } }),
 * });
 * const result = await connector.normalize(notification, ctx);
 * expect(ctx.vendorRequests[0]?.url).toContain('/appointments/1');
 * ```
 */
export function memoryNormalizeContext<Config>(
  options: MemoryNormalizeContextOptions<Config>,
): MemoryNormalizeContext<Config> {
  const vendorRequests: VendorRequest[] = [];
  const vendorApi = options.vendorApi;
  return {
    instanceId: options.instanceId ?? 'test-instance',
    config: options.config,
    aliases: options.aliases ?? new MemoryAliasStore(),
    state: options.state ?? new MemoryStateStore(),
    logger: capturingLogger(),
    vendorRequests,
    attempt: options.attempt ?? 1,
    finalAttempt: options.finalAttempt ?? false,
    receivedAt: options.receivedAt ?? new Date(),
    http: answeredBy(vendorApi, vendorRequests),
  };
}

/** Options for {@link memoryCommandContext}. */
export interface MemoryCommandContextOptions<Config> {
  /** Default `test-instance`. */
  instanceId?: string;
  config: Config;
  /** Answers vendor API calls; without it, any call throws `ConnectorError.transient`. */
  vendorApi?: VendorApi;
  /** The target's vendor ids, oldest first (the last is current); default none (`appointment.book`). */
  vendorIds?: readonly string[];
  /** The target's last known normalized state (the data of its latest event). */
  current?: CommandContext<Config>['current'];
  /** Default 1. */
  attempt?: number;
  /** Share stores with another context: the instance's, and the command's own (a later try of it). */
  state?: MemoryStateStore;
  commandState?: MemoryStateStore;
}

/** A {@link CommandContext} whose stores, logs and vendor calls can be inspected. */
export interface MemoryCommandContext<Config> extends CommandContext<Config> {
  state: MemoryStateStore;
  commandState: MemoryStateStore;
  logger: Logger & { entries: LogEntry[] };
  /** Every vendor API call the handler made, in order. */
  vendorRequests: VendorRequest[];
}

/**
 * A {@link CommandContext} for testing a connector's command handlers: in-memory instance and
 * command stores, a capturing logger, and an `http` client answered by `vendorApi`. A later try of
 * the same command gets the same `commandState` (pass it back with `attempt: 2`), as the hub gives it.
 *
 * @example
 * ```ts
 * const ctx = memoryCommandContext({
 *   config: { apiKey: 'k' },
 *   vendorIds: ['12348'],
 *   vendorApi: (req) => ({ status: 204, headers: {}, body: '' }),
 * });
 * const result = await commands['appointment.cancel']!(
 *   { id: 'cmd-1', type: 'appointment.cancel', subject: 'appointment/hub-1', data: {} }, ctx);
 * expect(result).toMatchObject({ outcome: 'done' });
 * expect(ctx.vendorRequests[0]?.method).toBe('DELETE');
 * const retry = memoryCommandContext({ ...options, attempt: 2, commandState: ctx.commandState });
 * ```
 */
export function memoryCommandContext<Config>(
  options: MemoryCommandContextOptions<Config>,
): MemoryCommandContext<Config> {
  const vendorRequests: VendorRequest[] = [];
  const vendorApi = options.vendorApi;
  return {
    instanceId: options.instanceId ?? 'test-instance',
    config: options.config,
    vendorIds: options.vendorIds ?? [],
    ...(options.current !== undefined ? { current: options.current } : {}),
    state: options.state ?? new MemoryStateStore(),
    commandState: options.commandState ?? new MemoryStateStore(),
    logger: capturingLogger(),
    vendorRequests,
    attempt: options.attempt ?? 1,
    http: answeredBy(vendorApi, vendorRequests),
  };
}

/** Options for {@link inboundRequest}. */
export interface InboundRequestOptions {
  /** Default `default`. */
  route?: string;
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** Names are lower-cased. `content-type: application/json` is added for object bodies unless given. */
  headers?: Record<string, string | undefined>;
  /** An object is sent as JSON; a string as UTF-8; a Buffer as is. Default empty. */
  body?: JsonValue | Buffer;
  /** Default POST. */
  method?: string;
  /** Default 127.0.0.1. */
  sourceIp?: string;
  receivedAt?: Date;
  /** The URL the vendor was told (`InboundRequest.hookUrl`: `server.publicUrl` + path). Default none. */
  hookUrl?: string;
}

/**
 * Builds an {@link InboundRequest} as the hub would hand it to `authenticate` / `parse`.
 *
 * @example
 * ```ts
 * const req = inboundRequest({ headers: { 'x-api-key': 'secret' }, body: { name: 'slot-booked', data: {} } });
 * connector.push.authenticate(req, config);
 * const notifications = connector.push.parse(req, config);
 * ```
 */
export function inboundRequest(options: InboundRequestOptions = {}): InboundRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
  const body = options.body;
  let rawBody: Buffer;
  if (body === undefined) rawBody = Buffer.alloc(0);
  else if (Buffer.isBuffer(body)) rawBody = body;
  else if (typeof body === 'string') rawBody = Buffer.from(body, 'utf8');
  else {
    rawBody = Buffer.from(JSON.stringify(body), 'utf8');
    if (!('content-type' in headers)) headers['content-type'] = 'application/json';
  }
  return {
    route: options.route ?? 'default',
    params: { ...options.params },
    query: { ...options.query },
    method: options.method ?? 'POST',
    headers,
    rawBody,
    sourceIp: options.sourceIp ?? '127.0.0.1',
    receivedAt: options.receivedAt ?? new Date(),
    ...(options.hookUrl === undefined ? {} : { hookUrl: options.hookUrl }),
  };
}
