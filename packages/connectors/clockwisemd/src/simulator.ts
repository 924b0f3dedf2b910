/**
 * A fake Clockwise.MD for tests and demos: it pushes thin appointment webhooks
 * (`{ appointment_id, event_type }`, or the legacy `action`) with the shared key in the URL path
 * and/or the `Authtoken` header, and serves the REST API's `GET /v1/appointments/{id}` (Authtoken
 * checked) from appointments you set, failing on demand (503s, slow answers) to exercise enrichment
 * retries. Clockwise.MD does not document whether it retries a failed webhook: by default it does
 * not, and `retryDelaysMs` makes it.
 *
 * Test code imports it as `@switchyard/connector-clockwisemd/simulator` (production code never
 * does); it imports this connector's own modules through `./testing.ts`, never by package name.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type EventEnvelope, isJsonObject, type JsonObject } from '@switchyard/core';
import { type Attempt, isCloudEvent, pushJson, sleep } from '@switchyard/testing/simulator-kit/push';
import { closeServer, listenLocal, readBody } from '@switchyard/testing/simulator-kit/server';
import { ClockwiseWriteApi } from './simulator-writes.ts';
import { type Config as ClockwiseConfig, encode } from './testing.ts';

/** Where the shared key goes on a push. */
export type ClockwiseKeyPlacement = 'header' | 'path' | 'both' | 'none';

/** Options of {@link ClockwiseSimulator}. */
export interface ClockwiseSimulatorOptions {
  /** The hub's `/hooks/{instance}` URL (without the key). Can also be given per push. */
  hookUrl?: string;
  /** The shared webhook key. */
  key?: string;
  /** Default `header` (Authtoken); `path` appends `/{key}` to the hook URL. */
  keyPlacement?: ClockwiseKeyPlacement;
  /** Send the type as `action` (older integrations) instead of `event_type`. */
  legacyAction?: boolean;
  /** The REST API key the simulated API accepts in `Authtoken`. Default `sim-api-key`. */
  apiKey?: string;
  /** Delays before retries of a failed push. Clockwise.MD's habit is undocumented: default none. */
  retryDelaysMs?: number[];
  /** Multiplies every retry delay (e.g. 0.001 in tests). Default 1. */
  timeScale?: number;
  /** Per-attempt timeout of a push, default 10 s. */
  pushTimeoutMs?: number;
  /** Connector settings used to encode normalized events into pushes. */
  connectorConfig?: ClockwiseConfig;
}

/** One try at delivering a push. */
export type ClockwisePushAttempt = Attempt;

/** What happened to one webhook. */
export interface ClockwisePushRecord {
  body: JsonObject;
  url: string;
  headers: Record<string, string>;
  attempts: ClockwisePushAttempt[];
  delivered: boolean;
}

/** One request the simulated REST API answered. */
export interface ClockwiseServedRequest {
  method: string;
  path: string;
  status: number;
  authtoken?: string;
}

/** How the REST API misbehaves for the next requests. */
export interface ClockwiseApiFailure {
  /** Answer with this status (default 503); `0` answers normally but late (with `delayMs`). */
  status?: number;
  /** Wait this long before answering (a slow API; combine with the hub's timeout). */
  delayMs?: number;
  /** Sent as Retry-After (seconds) with error statuses. */
  retryAfterSeconds?: number;
  /** The answer's JSON body instead of `{ "error": "Service Unavailable" }` (a vendor's own error text). */
  body?: unknown;
  /** The answer's content type instead of `application/json` (the same JSON text, labelled otherwise). */
  contentType?: string;
}

/**
 * A Clockwise.MD stand-in that speaks real HTTP.
 *
 * @example
 * ```ts
 * const cw = new ClockwiseSimulator({ hookUrl: `${hub}/hooks/clinic-a`, key: 'k'.repeat(24), keyPlacement: 'path' });
 * await cw.start();                       // REST API at cw.apiBaseUrl
 * cw.setAppointment({ id: 12345, first_name: 'Maria', extra_fields: [] });
 * cw.failApi(2);                          // the next two API calls answer 503
 * await cw.push({ appointment_id: 12345, event_type: 'create' });
 * await cw.close();
 * ```
 */
export class ClockwiseSimulator {
  readonly pushes: ClockwisePushRecord[] = [];
  readonly served: ClockwiseServedRequest[] = [];
  /**
   * API writes whose whole request arrived, as they arrive (before any delay or answer): a test
   * that kills its caller mid-call waits for these, not for the hub's record of the call, which is
   * written before the request goes out.
   */
  readonly received: { method: string; path: string }[] = [];
  readonly #options: ClockwiseSimulatorOptions;
  readonly #appointments = new Map<string, JsonObject>();
  /** The appointment write endpoints (create, remove, update) and their webhook echoes. */
  readonly writes: ClockwiseWriteApi = new ClockwiseWriteApi({
    get: (id) => this.#appointments.get(id),
    set: (record) => this.#appointments.set(String(record.id), record),
    echo: (body) => {
      const hookUrl = this.#options.hookUrl ?? this.writes.hookUrl;
      if (hookUrl) this.push(body, { hookUrl }).catch(() => {});
    },
  });
  readonly #failures: ClockwiseApiFailure[] = [];
  #server: Server | undefined;
  #url: string | undefined;

  constructor(options: ClockwiseSimulatorOptions = {}) {
    this.#options = options;
  }

  /** The simulator's base URL once started. */
  get url(): string {
    if (this.#url === undefined) throw new Error('ClockwiseSimulator is not started: call start()');
    return this.#url;
  }

  /** What to configure as the connector's `apiBaseUrl`. */
  get apiBaseUrl(): string {
    return `${this.url}/v1`;
  }

  /** Adds or replaces the record `GET /appointments/{id}` returns. */
  setAppointment(record: JsonObject & { id: number | string }): void {
    this.#appointments.set(String(record.id), structuredClone(record));
  }

  /** Removes a record (the API then answers 404). */
  deleteAppointment(id: number | string): void {
    this.#appointments.delete(String(id));
  }

  /** The next `times` API requests fail as described (default: 503). */
  failApi(times: number, failure: ClockwiseApiFailure = {}): void {
    for (let i = 0; i < times; i++) this.#failures.push(failure);
  }

  /** Serves the REST API on 127.0.0.1 (a random port). */
  async start(): Promise<void> {
    if (this.#server) return;
    const { server, url } = await listenLocal(
      (req, res) => this.#handle(req, res),
      (error, _req, res) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: error.message }));
      },
    );
    this.#server = server;
    this.#url = url;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await closeServer(server);
  }

  /**
   * POSTs a webhook: a raw body (`{ appointment_id, event_type }` or legacy `action`), or a normalized
   * event turned into one by the connector's `encode`. Retries per `retryDelaysMs`.
   */
  async push(
    input: JsonObject | EventEnvelope,
    options: { hookUrl?: string; keyPlacement?: ClockwiseKeyPlacement; legacyAction?: boolean } = {},
  ): Promise<ClockwisePushRecord> {
    let body: JsonObject = isCloudEvent(input) ? this.#encode(input) : structuredClone(input);
    if ((options.legacyAction ?? this.#options.legacyAction) && typeof body.event_type === 'string') {
      const { event_type, ...rest } = body;
      body = { ...rest, action: event_type };
    }
    const base = options.hookUrl ?? this.#options.hookUrl;
    if (base === undefined) throw new Error('ClockwiseSimulator.push: no hookUrl');
    const placement = options.keyPlacement ?? this.#options.keyPlacement ?? 'header';
    const key = this.#options.key;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    let url = base;
    if (key !== undefined && (placement === 'path' || placement === 'both')) {
      url = `${base.replace(/\/+$/, '')}/${encodeURIComponent(key)}`;
    }
    if (key !== undefined && (placement === 'header' || placement === 'both')) headers.authtoken = key;
    const record: ClockwisePushRecord = { body, url, headers, attempts: [], delivered: false };
    this.pushes.push(record);
    // The vendor's retry habit is undocumented: none unless the options ask for one.
    record.delivered = await pushJson(url, headers, body, this.#options, record.attempts);
    return record;
  }

  #encode(event: EventEnvelope): JsonObject {
    const config = this.#options.connectorConfig ?? {
      auth: { mode: 'either', key: this.#options.key ?? '' },
    };
    const encoded = encode(event, config);
    if (!isJsonObject(encoded.body)) throw new Error('the Clockwise.MD encoder returned a non-object body');
    return encoded.body;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const authtoken = typeof req.headers.authtoken === 'string' ? req.headers.authtoken : undefined;
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      this.served.push({ method: req.method ?? 'GET', path, status, ...(authtoken ? { authtoken } : {}) });
      // 0: no answer at all, the connection cut (a write's answer lost, `writes.loseAnswers(n, 0)`).
      if (status === 0) {
        req.socket.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const match = /^\/v1\/appointments\/([^/]+)$/.exec(path);
    const write = req.method !== 'GET' && path.startsWith('/v1/appointments/');
    if (!write && (req.method !== 'GET' || !match)) return answer(404, { error: 'Not Found' });
    if (authtoken !== (this.#options.apiKey ?? 'sim-api-key'))
      return answer(401, { error: 'Invalid Authtoken' });
    // Read before any delay: a write whose caller is gone by then (a process killed mid-call) is
    // still carried out, as a server that has the whole request does.
    const raw = write ? await readBody(req) : '';
    if (write) this.received.push({ method: req.method ?? 'POST', path });
    const failure = this.#failures.shift();
    if (failure?.delayMs) await sleep(failure.delayMs);
    if (failure && failure.status !== 0) {
      const retryAfter: Record<string, string> =
        failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) };
      const type: Record<string, string> =
        failure.contentType === undefined ? {} : { 'content-type': failure.contentType };
      return answer(failure.status ?? 503, failure.body ?? { error: 'Service Unavailable' }, {
        ...retryAfter,
        ...type,
      });
    }
    if (write) {
      const contentType = String(req.headers['content-type'] ?? '');
      if (this.writes.handle(req.method ?? 'POST', path, raw, contentType, answer)) return;
      return answer(404, { error: 'Not Found' });
    }
    const record = this.#appointments.get(decodeURIComponent(match![1]!));
    if (!record) return answer(404, { error: 'Appointment not found' });
    return answer(200, record);
  }
}
