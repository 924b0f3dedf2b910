/**
 * The {@link VendorHttp} the hub lends connectors for vendor API calls. It resolves for every HTTP
 * status (the connector decides what a 404 means) and throws `ConnectorError.transient` for network
 * errors and timeouts. Messages and logs name the method and `origin + path` only: query strings
 * (where vendors put API keys) and headers never appear.
 *
 * Where it may go: a vendor API base URL is an instance setting an admin can change, and a vendor
 * (or whoever answers for it) chooses its answers. So a call never goes to a cloud metadata
 * endpoint, by name or by what the name resolves to (`checkDestination`, as for subscribers; private
 * and loopback addresses stay allowed: vendors' on-premises APIs and the simulators live there),
 * redirects are not followed (a 3xx is the answer: followed, it turned any call into a GET of an
 * internal URL whose answer a command showed, and carried headers such as `Authtoken` or `App-Key`
 * to the other origin), and an answer is read up to {@link VENDOR_MAX_RESPONSE_BYTES}. The call
 * connects to the addresses the check approved (`pinnedLookup`): global `fetch` resolved the name
 * again, so a name answering a public address to the check and the metadata address to the connect
 * (DNS rebinding) reached it. undici, whose `fetch` the global one is, takes the socket's `lookup`
 * through its `Agent`; its own `fetch` is used with its own `Agent` (one package, one version).
 */
import {
  ConnectorError,
  type Logger,
  type VendorHttp,
  type VendorRequest,
  type VendorResponse,
  vendorRequestInit,
  vendorResponseBody,
} from '@switchyard/core';
import { Agent, fetch as undiciFetch } from 'undici';
import { tracingEnabled, withClientSpan } from '../telemetry/tracing.ts';
import { checkDestination, type HostLookup, pinnedLookup, VENDOR_DESTINATIONS } from './ssrf.ts';

/** The largest vendor answer read, bytes: a larger one fails the call (permanently). */
export const VENDOR_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Options of {@link createVendorHttp}. */
export interface VendorHttpOptions {
  /** Debug line per call (method, origin + path, status, duration), warn line per failure. */
  logger?: Logger;
  /** For requests that set no `timeoutMs`. Default 10 000. */
  defaultTimeoutMs?: number;
  /**
   * Default undici's `fetch`, connecting through an `Agent` pinned to the checked addresses (given
   * as `dispatcher` in the init, which another implementation may ignore: tests).
   */
  fetchImpl?: typeof fetch;
  /** DNS resolution for the destination check; default the system's (tests set it). */
  lookup?: HostLookup;
  /** Default {@link VENDOR_MAX_RESPONSE_BYTES}. */
  maxResponseBytes?: number;
}

/** The answer's text, read up to `max` bytes; undefined when it is longer (the rest is not read). */
async function cappedText(response: Response, max: number): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Keep-alive agents by origin and the addresses it was checked to: the same DNS answer reuses the
 * connections; a changed one gets its own agent. Bounded: the oldest is closed past
 * {@link MAX_VENDOR_AGENTS} (an instance per vendor origin is the usual count).
 */
const agents = new Map<string, Agent>();
const MAX_VENDOR_AGENTS = 64;

function pinnedAgent(origin: string, addresses: readonly string[]): Agent {
  const key = `${origin}|${[...addresses].sort().join(',')}`;
  let agent = agents.get(key);
  if (agent) return agent;
  agent = new Agent({ connect: { lookup: pinnedLookup(addresses) } });
  agents.set(key, agent);
  if (agents.size > MAX_VENDOR_AGENTS) {
    const [oldestKey, oldest] = agents.entries().next().value as [string, Agent];
    agents.delete(oldestKey);
    // Its calls in progress finish; it takes no new ones.
    oldest.close().catch(() => {});
  }
  return agent;
}

/**
 * A `.` or `..` segment of a URL's path as written (`%2e` and stray tabs or newlines included, as
 * the URL parser reads them), or undefined. Connectors put vendor and sender ids in paths with
 * `encodeURIComponent`, which leaves `.` and `..` as they are, and the parser then resolves them:
 * a booking id `..` made `DELETE …/addresses/7/bookings/..` a `DELETE …/addresses/7`, another
 * resource of the vendor's with the instance's credentials. No vendor path is written with one.
 *
 * @example
 * ```ts
 * dotSegment('https://api.example/bookings/%2E%2e/cancel'); // '%2E%2e'
 * dotSegment('https://api.example/bookings/1.5/cancel'); // undefined
 * ```
 */
export function dotSegment(url: string): string | undefined {
  const path = /^[a-z][a-z0-9+.-]*:[/\\]{2}[^/\\?#]*([^?#]*)/i.exec(url.replace(/[\t\n\r]/g, ''))?.[1] ?? '';
  for (const segment of path.split(/[/\\]/)) {
    const plain = segment.toLowerCase().replaceAll('%2e', '.');
    if (plain === '.' || plain === '..') return segment;
  }
  return undefined;
}

/** `https://api.vendor.com/v1/things` from any URL: no credentials, query or fragment. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 4; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Makes the vendor HTTP client. The method defaults to GET, or POST when a `json` or `form` body is
 * given. `json` is sent as `application/json`, `form` as `application/x-www-form-urlencoded`
 * (a caller's own `content-type` wins); `accept: application/json` is added unless set. JSON
 * answers (`application/json`, `*+json`) are parsed; anything else, or JSON that does not parse,
 * comes back as text.
 *
 * @example
 * ```ts
 * const http = createVendorHttp({ logger, defaultTimeoutMs: 10_000 });
 * const res = await http.request({ url: `${base}/token`, form: { grant_type: 'client_credentials' } });
 * if (res.status === 401) throw ConnectorError.permanent('credentials refused');
 * ```
 */
export function createVendorHttp(options: VendorHttpOptions = {}): VendorHttp {
  const fetchImpl = options.fetchImpl ?? (undiciFetch as unknown as typeof fetch);
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
  const logger = options.logger;
  const maxResponseBytes = options.maxResponseBytes ?? VENDOR_MAX_RESPONSE_BYTES;

  return {
    async request(request: VendorRequest): Promise<VendorResponse> {
      const { method, headers, body } = vendorRequestInit(request);
      const where = safeUrl(request.url);
      const timeoutMs = request.timeoutMs ?? defaultTimeoutMs;

      if (!tracingEnabled()) return send();
      // A CLIENT span around the call, its traceparent sent to the vendor.
      const traced: Record<string, string> = {};
      let parsedUrl: URL | undefined;
      try {
        parsedUrl = new URL(request.url);
      } catch {
        parsedUrl = undefined;
      }
      return withClientSpan(
        method,
        parsedUrl,
        traced,
        () => {
          for (const [name, value] of Object.entries(traced)) headers.set(name, value);
          return send();
        },
        (r) => ({ status: r.status }),
      );

      async function send(): Promise<VendorResponse> {
        const started = performance.now();
        const dotted = dotSegment(request.url);
        if (dotted !== undefined) {
          // An id of '.' or '..' (a vendor's, a sender's) would make the call another path's.
          const message = `vendor API ${method} ${where} not called: its path holds a '${dotted}' segment, which would make it another path`;
          logger?.warn({ method, url: where }, 'vendor API call refused');
          throw ConnectorError.permanent(message, { details: { method, url: where } });
        }
        const destination = await checkDestination(request.url, {
          ...VENDOR_DESTINATIONS,
          ...(options.lookup ? { lookup: options.lookup } : {}),
        });
        if (!destination.ok) {
          const message = `vendor API ${method} ${where} not called: ${destination.reason}`;
          logger?.warn({ method, url: where, reason: destination.reason }, 'vendor API call refused');
          const details = { details: { method, url: where } };
          // A name that did not resolve may resolve later; a refused address or URL will not change.
          throw destination.kind === 'dns'
            ? ConnectorError.transient(message, details)
            : ConnectorError.permanent(message, details);
        }
        const signal = AbortSignal.timeout(timeoutMs);
        let text: string | undefined;
        let response: Response;
        try {
          const init: RequestInit & { dispatcher?: Agent } = {
            method,
            headers,
            body,
            signal,
            redirect: 'manual',
            dispatcher: pinnedAgent(new URL(request.url).origin, destination.addresses),
          };
          response = await fetchImpl(request.url, init);
          text = await cappedText(response, maxResponseBytes);
        } catch (error) {
          const durationMs = Math.round(performance.now() - started);
          const timedOut = signal.aborted || (error as { name?: unknown }).name === 'TimeoutError';
          const code = errorCode(error);
          const message = timedOut
            ? `vendor API ${method} ${where} timed out after ${timeoutMs} ms`
            : `vendor API ${method} ${where} failed${code ? ` (${code})` : ''}`;
          logger?.warn({ method, url: where, durationMs, timedOut, code }, 'vendor API call failed');
          // The cause is left out on purpose: fetch errors can carry the full request URL.
          throw ConnectorError.transient(message, { details: { method, url: where, timedOut, code } });
        }
        if (text === undefined) {
          const message = `vendor API ${method} ${where} answered more than ${maxResponseBytes} bytes`;
          logger?.warn({ method, url: where, status: response.status }, 'vendor API answer too large');
          throw ConnectorError.permanent(message, {
            details: { method, url: where, status: response.status },
          });
        }
        const parsed = vendorResponseBody(text, response.headers.get('content-type'));
        const responseHeaders: Record<string, string> = {};
        response.headers.forEach((value, name) => {
          responseHeaders[name] = value;
        });
        logger?.debug(
          {
            method,
            url: where,
            status: response.status,
            durationMs: Math.round(performance.now() - started),
          },
          'vendor API call',
        );
        return { status: response.status, headers: responseHeaders, body: parsed };
      }
    },
  };
}
