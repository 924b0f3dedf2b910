/**
 * The one HTTP POST a delivery makes. Built on node:http/https (not global fetch) so the socket
 * connects to the address the SSRF check approved: the agent's `lookup` is pinned to it.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { parseRetryAfter, storableText } from '@switchyard/core';
import { tracingEnabled, withClientSpan } from '../telemetry/tracing.ts';
import { checkDestination, type HostLookup, pinnedLookup } from './ssrf.ts';

/** Options of {@link postWebhook}. */
export interface PostWebhookOptions {
  url: string;
  /** Sent as given; `content-type` defaults to `application/json`, `content-length` is always set. */
  headers: Readonly<Record<string, string>>;
  body: string;
  /**
   * The whole budget for this attempt: DNS check, connect, TLS, request and the status line and
   * headers of the answer. Reading the answer's body stops at the same deadline (the status already
   * decides the outcome then). Time spent waiting for one of the origin's
   * {@link DELIVERY_SOCKETS_PER_ORIGIN} connections to come free is not the subscriber's and does
   * not count, up to `timeoutMs` of it (then the attempt times out without having been sent).
   */
  timeoutMs: number;
  /** At most this much of the answer's body is read (the rest is discarded). Default 4096. */
  maxResponseBytes?: number;
  /**
   * Addresses already approved by `checkDestination` for this URL's host: the connection goes to
   * one of them and DNS is not consulted again (no rebinding window). When absent, the URL is
   * checked here with `allowPrivate` / `allowLoopback` / `lookup`.
   */
  pinnedAddresses?: readonly string[];
  allowPrivate?: boolean;
  allowLoopback?: boolean;
  /** DNS resolution for the check when `pinnedAddresses` is absent (tests). */
  lookup?: HostLookup;
  /** Extra trusted CA certificates (PEM) for https subscribers behind a private CA. */
  ca?: string | Buffer;
  /**
   * Ends the request when aborted (a stopping hub gives up its requests to a subscriber that
   * stopped answering); the result is then a `network` failure.
   */
  signal?: AbortSignal;
  /**
   * Which connections the request uses: `deliveries` (the default, at most
   * {@link DELIVERY_SOCKETS_PER_ORIGIN} per origin) or `approvers`, a pool of their own (at most
   * {@link APPROVER_SOCKETS_PER_ORIGIN}) for the gates' approver calls. A vendor waits on those
   * with a deadline of seconds; in the deliveries' pool they queued behind a subscriber's slow
   * deliveries to the same origin (an approver's answer in 0 ms reached nobody: the vendor got the
   * default at the deadline) and behind each other beyond 32 concurrent gates.
   */
  pool?: ConnectionPool;
  /**
   * When the answer's status comes before this instant (epoch ms), its body is read until then at
   * most: what came is the snippet, marked truncated. An approver call passes its decision cutoff:
   * a 409 whose body trickled was read to the subscription's timeout, so the vendor got the default
   * at the deadline though the refusal was known. A status coming later is read as usual.
   */
  bodyBy?: number;
}

/** The connection pools of {@link postWebhook}: see `PostWebhookOptions.pool`. */
export type ConnectionPool = 'deliveries' | 'approvers';

/** What happened to one attempt. Network problems are reported here, never thrown. */
export interface PostWebhookResult {
  /** True for a 2xx answer, false otherwise (3xx included: redirects are never followed). */
  ok: boolean;
  /** The HTTP status, when an answer arrived. */
  status?: number;
  /**
   * From the start of the call to the outcome, in milliseconds, less any wait for a free
   * connection to the origin (the subscriber's time, not the hub's queue).
   */
  latencyMs: number;
  /** The first `maxResponseBytes` of the answer's body, decoded as UTF-8 (lossy, NUL as U+FFFD). */
  responseSnippet?: string;
  /**
   * The body was not read to its end: `responseSnippet` is its first `maxResponseBytes` (also set
   * for a body of exactly that length, whose end was not waited for).
   */
  responseTruncated?: boolean;
  /** From a `Retry-After` answer header (seconds or HTTP date), in ms from now, never negative. */
  retryAfterMs?: number;
  /** Why it failed, safe to store and show (no URL, no headers). */
  error?: string;
  /**
   * `timeout`: no answer in time; `network`: DNS, connect, TLS or reset; `ssrf`: the destination is
   * refused or the URL is invalid (retrying will not help); `http`: a non-2xx answer.
   */
  errorKind?: 'timeout' | 'network' | 'ssrf' | 'http';
}

const USER_AGENT = 'Switchyard-Webhooks/0.1';
const DEFAULT_MAX_RESPONSE_BYTES = 4096;

/**
 * Connections a process opens to one subscriber origin at most: the most requests a subscriber
 * has from one process at once. A process may have more deliveries in flight than this (its
 * deliver worker's slots, `deliveryConcurrency`); those wait here for a connection, ready to go
 * the moment one is free, their timeout not running meanwhile (see `timeoutMs`).
 */
export const DELIVERY_SOCKETS_PER_ORIGIN = 32;
/**
 * Connections a process opens to one approver origin at most (the `approvers` pool). Approver
 * calls are as many as gate requests waiting at once (a vendor's concurrent bookings), each over
 * in seconds: enough that none waits for a connection, bounded all the same.
 */
export const APPROVER_SOCKETS_PER_ORIGIN = 256;

// Shared keep-alive agents: reusing connections per origin is most of the throughput of a busy
// subscriber. Bounded so one slow subscriber cannot hold every socket. One agent per protocol and
// policy, so a socket opened under a looser policy is never reused under a stricter one.
const AGENT_OPTIONS = {
  keepAlive: true,
  maxSockets: DELIVERY_SOCKETS_PER_ORIGIN,
  maxTotalSockets: 512,
  // As many idle as busy: with 8, every burst of the deliver worker closed 24 sockets on release
  // and reconnected them on the next burst.
  maxFreeSockets: DELIVERY_SOCKETS_PER_ORIGIN,
  scheduling: 'lifo' as const,
  // Idle sockets close before common server keep-alive timeouts (Node's own default is 5 s).
  timeout: 4_000,
};
const POOL_OPTIONS: Record<ConnectionPool, http.AgentOptions> = {
  deliveries: AGENT_OPTIONS,
  approvers: {
    ...AGENT_OPTIONS,
    maxSockets: APPROVER_SOCKETS_PER_ORIGIN,
    maxFreeSockets: DELIVERY_SOCKETS_PER_ORIGIN,
  },
};
const agents = new Map<string, http.Agent>();

function agentFor(protocol: 'http:' | 'https:', policyKey: string, pool: ConnectionPool): http.Agent {
  const key = `${protocol}${policyKey}|${pool}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = POOL_OPTIONS[pool];
    agent = protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

/**
 * Closes every pooled delivery connection (shutdown, tests). Later calls make new agents.
 *
 * @example
 * ```ts
 * process.on('SIGTERM', () => { closeDeliveryAgents(); });
 * ```
 */
export function closeDeliveryAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * POSTs one webhook and reports what happened. Never follows redirects (a 3xx is a failure), never
 * reads more than `maxResponseBytes` of the answer, and never throws for network problems: every
 * outcome is a {@link PostWebhookResult}. A request that fails on a reused keep-alive connection
 * before any answer (the server closed it meanwhile) is sent once more on a fresh connection; that is
 * safe because deliveries are at-least-once and the subscriber dedupes on `webhook-id`.
 *
 * @example
 * ```ts
 * const check = await checkDestination(sub.url, { allowLoopback });
 * if (!check.ok) return markFailed(check.reason);
 * const result = await postWebhook({
 *   url: sub.url,
 *   headers: { 'content-type': 'application/json', ...signPayload({ id: event.id, timestamp: new Date(), body, secrets }) },
 *   body,
 *   timeoutMs: 15_000,
 *   pinnedAddresses: check.addresses,
 *   allowLoopback,
 * });
 * if (!result.ok) scheduleRetry(result.retryAfterMs); // result.status, result.errorKind, result.latencyMs
 * ```
 */
export function postWebhook(options: PostWebhookOptions): Promise<PostWebhookResult> {
  if (!tracingEnabled()) return postWebhookOnce(options);
  let url: URL | undefined;
  try {
    url = new URL(options.url);
  } catch {
    url = undefined;
  }
  // A CLIENT span whose traceparent goes out with the request.
  const headers = { ...options.headers };
  return withClientSpan(
    'POST',
    url,
    headers,
    () => postWebhookOnce({ ...options, headers }),
    (r) =>
      // An answer's status is its `error.type` (OpenTelemetry's HTTP conventions: the status code as
      // a string, as a vendor call's span has it); the hub's own kind only when none arrived.
      r.status !== undefined ? { status: r.status } : r.errorKind ? { errorType: r.errorKind } : {},
  );
}

async function postWebhookOnce(options: PostWebhookOptions): Promise<PostWebhookResult> {
  const started = performance.now();
  const deadline = Date.now() + options.timeoutMs;
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;

  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    return { ok: false, latencyMs: elapsed(), errorKind: 'ssrf', error: 'not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return {
      ok: false,
      latencyMs: elapsed(),
      errorKind: 'ssrf',
      error: `scheme ${url.protocol} is not allowed`,
    };
  }

  let addresses = options.pinnedAddresses;
  if (!addresses || addresses.length === 0) {
    const check = await withDeadline(
      checkDestination(options.url, {
        allowPrivate: options.allowPrivate,
        allowLoopback: options.allowLoopback,
        lookup: options.lookup,
      }),
      deadline,
    );
    if (check === 'timeout') {
      return {
        ok: false,
        latencyMs: elapsed(),
        errorKind: 'timeout',
        error: 'DNS lookup did not finish in time',
      };
    }
    if (!check.ok) {
      return {
        ok: false,
        latencyMs: elapsed(),
        errorKind: check.kind === 'dns' ? 'network' : 'ssrf',
        error: check.reason,
      };
    }
    addresses = check.addresses;
  } else {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    // An IP literal bypasses `lookup`, so it must itself be one of the approved addresses.
    if (/^[\d.]+$|:/.test(host) && !addresses.includes(host)) {
      return {
        ok: false,
        latencyMs: elapsed(),
        errorKind: 'ssrf',
        error: `${host} is not a checked address`,
      };
    }
  }

  const policyKey = `|p${options.allowPrivate ? 1 : 0}l${options.allowLoopback ? 1 : 0}`;
  const body = Buffer.from(options.body, 'utf8');
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': USER_AGENT };
  for (const [name, value] of Object.entries(options.headers)) headers[name.toLowerCase()] = value;
  headers['content-length'] = String(body.length);

  // Time spent waiting for a free connection, added to the deadline (see `timeoutMs`).
  let queuedMs = 0;
  const attempt = (agent: http.Agent | false) =>
    sendOnce({
      url,
      headers,
      body,
      agent,
      lookup: pinnedLookup(addresses),
      deadline: deadline + queuedMs,
      maxQueueMs: options.timeoutMs,
      onQueued: (ms) => {
        queuedMs += ms;
      },
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      ca: options.ca,
      signal: options.signal,
      bodyBy: options.bodyBy,
    });

  let outcome = await attempt(agentFor(url.protocol, policyKey, options.pool ?? 'deliveries'));
  if (outcome.kind === 'stale_socket') outcome = await attempt(false);
  const latencyMs = Math.max(0, Math.round((elapsed() - queuedMs) * 100) / 100);

  if (outcome.kind === 'timeout') {
    return { ok: false, latencyMs, errorKind: 'timeout', error: `no answer within ${options.timeoutMs} ms` };
  }
  if (outcome.kind === 'queue_timeout') {
    return {
      ok: false,
      latencyMs,
      errorKind: 'timeout',
      error: `not sent: no connection to the subscriber came free within ${options.timeoutMs} ms (all ${options.pool === 'approvers' ? APPROVER_SOCKETS_PER_ORIGIN : DELIVERY_SOCKETS_PER_ORIGIN} busy)`,
    };
  }
  if (outcome.kind === 'error' || outcome.kind === 'stale_socket') {
    return { ok: false, latencyMs, errorKind: 'network', error: describeNetworkError(outcome.error) };
  }
  const { status, snippet, retryAfter, truncated } = outcome;
  const result: PostWebhookResult = { ok: status >= 200 && status < 300, status, latencyMs };
  if (snippet !== '') result.responseSnippet = snippet;
  if (truncated) result.responseTruncated = true;
  const retryAfterMs = parseRetryAfter(retryAfter);
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  if (!result.ok) {
    result.errorKind = 'http';
    result.error =
      status >= 300 && status < 400 ? `HTTP ${status}: redirects are not followed` : `HTTP ${status}`;
  }
  return result;
}

type SendOutcome =
  | { kind: 'answer'; status: number; snippet: string; retryAfter: string | undefined; truncated: boolean }
  | { kind: 'timeout' }
  | { kind: 'queue_timeout' }
  | { kind: 'error'; error: unknown }
  | { kind: 'stale_socket'; error: unknown };

function sendOnce(input: {
  url: URL;
  headers: Record<string, string>;
  body: Buffer;
  agent: http.Agent | false;
  lookup: LookupFunction;
  deadline: number;
  /** How long the request may wait for a connection of the agent before it is given up. */
  maxQueueMs: number;
  /** Told how long the request waited for a connection, once it has one. */
  onQueued: (ms: number) => void;
  maxResponseBytes: number;
  ca: string | Buffer | undefined;
  signal: AbortSignal | undefined;
  bodyBy: number | undefined;
}): Promise<SendOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let answer: { status: number; retryAfter: string | undefined } | undefined;
    const chunks: Buffer[] = [];
    let received = 0;

    const finish = (outcome: SendOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    // The body's read was ended at `bodyBy`.
    let cutShort = false;
    const finishAnswer = () => {
      if (!answer) return;
      // Storable text: Postgres refuses a NUL, and the attempt's record (a delivery's, an approver's
      // answer) failed with one. The delivery then stayed in flight and was sent again at every
      // lease expiry, forever, to a subscriber answering with a NUL (UTF-16, binary).
      const snippet = storableText(
        new TextDecoder('utf-8', { fatal: false })
          .decode(Buffer.concat(chunks))
          .slice(0, input.maxResponseBytes),
      );
      finish({
        kind: 'answer',
        status: answer.status,
        snippet,
        retryAfter: answer.retryAfter,
        truncated: received >= input.maxResponseBytes || cutShort,
      });
    };

    const transport = input.url.protocol === 'https:' ? https : http;
    const request = transport.request(input.url, {
      method: 'POST',
      headers: input.headers,
      agent: input.agent,
      lookup: input.lookup,
      ...(input.ca === undefined ? {} : { ca: input.ca }),
      ...(input.signal === undefined ? {} : { signal: input.signal }),
    });

    const onDeadline = () => {
      // Once the status is known the attempt's outcome is decided; only the snippet is cut short.
      if (answer) finishAnswer();
      else finish({ kind: 'timeout' });
      request.destroy();
    };
    // Until the request has a connection, only the wait for one is timed: a delivery queued behind
    // the origin's busy connections keeps its whole budget for the subscriber.
    const askedAt = Date.now();
    let timer = setTimeout(
      () => {
        finish({ kind: 'queue_timeout' });
        request.destroy();
      },
      Math.max(0, input.deadline - askedAt) + input.maxQueueMs,
    );
    const onSocket = () => {
      clearTimeout(timer);
      const queued = Date.now() - askedAt;
      // A free connection is handed over at once: only a real wait moves the deadline.
      const waited = queued > 1 ? queued : 0;
      input.onQueued(waited);
      timer = setTimeout(onDeadline, Math.max(0, input.deadline + waited - Date.now()));
    };
    request.once('socket', onSocket);

    request.on('response', (response) => {
      answer = {
        status: response.statusCode ?? 0,
        retryAfter:
          typeof response.headers['retry-after'] === 'string' ? response.headers['retry-after'] : undefined,
      };
      const left = input.bodyBy === undefined ? undefined : input.bodyBy - Date.now();
      if (left !== undefined && left > 0) {
        const cut = setTimeout(() => {
          cutShort = true;
          finishAnswer();
          response.destroy();
        }, left);
        response.once('close', () => clearTimeout(cut));
      }
      if (input.maxResponseBytes <= 0) {
        response.destroy();
        finishAnswer();
        return;
      }
      response.on('data', (chunk: Buffer) => {
        if (settled) return;
        const room = input.maxResponseBytes - received;
        chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
        received += Math.min(chunk.length, room);
        if (received >= input.maxResponseBytes) {
          // Enough for the snippet: drop the rest (and the connection) instead of reading it.
          response.destroy();
          finishAnswer();
        }
      });
      response.on('end', finishAnswer);
      response.on('close', finishAnswer);
      response.on('error', finishAnswer);
    });

    request.on('error', (error) => {
      if (answer) return finishAnswer();
      const code = (error as { code?: unknown }).code;
      const stale = request.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE');
      finish(stale ? { kind: 'stale_socket', error } : { kind: 'error', error });
    });

    request.end(input.body);
  });
}

async function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
