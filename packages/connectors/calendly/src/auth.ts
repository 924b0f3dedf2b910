import {
  ConnectorError,
  type InboundRequest,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  parseTimestampedSignatureHeader,
  signTimestamped,
  verifyTimestampedSignature,
} from '@switchyard/core';
import { type Config, DEFAULT_SIGNATURE_HEADER, DEFAULT_TOLERANCE_SECONDS } from './config.ts';

/**
 * What the request head can tell: a signing secret is configured and the signature header is there
 * and well-formed (`t=<unix seconds>,v1=<hex>`). The hub runs this before it reads the body, so a
 * client without a signature is refused without its body held; the signature itself is over the
 * body and is checked in {@link verifyBody}. (A vendor that signs the body alone, with no `t=`, or
 * signs another layout: docs/writing-a-connector.md §5 says what to change here.)
 *
 * @example
 * ```ts
 * authenticate(head, { signingKey: 's'.repeat(32) }); // throws ConnectorError.auth when the header is missing
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  if (activeSecrets(config).length === 0) {
    throw ConnectorError.auth('the instance has no signingKey configured');
  }
  const header = signatureHeader(config);
  const value = request.headers[header];
  if (value === undefined || value.trim() === '') {
    throw ConnectorError.auth(`${header}: the signature header is missing`);
  }
  const parsed = parseTimestampedSignatureHeader(value);
  if (parsed.timestamp === undefined || parsed.signatures.length === 0) {
    throw ConnectorError.auth(`${header}: the signature header is not t=<unix seconds>,v1=<signature>`);
  }
}

/**
 * Accepts a push whose signature, `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, verifies
 * over the exact body received with the signing secret (or the previous one during a rotation), and
 * whose timestamp is within `toleranceSeconds` of the receive time (older ones are replays). The hub
 * runs it once the body is read, after {@link authenticate}.
 *
 * @example
 * ```ts
 * verifyBody(request, { signingKey: 's'.repeat(32) }); // throws ConnectorError.auth when wrong
 * ```
 */
export function verifyBody(request: InboundRequest, config: Config): void {
  const header = signatureHeader(config);
  const verdict = verifyTimestampedSignature({
    header: request.headers[header],
    body: request.rawBody,
    secrets: activeSecrets(config),
    receivedAt: request.receivedAt,
    toleranceSeconds: config.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
  });
  if (!verdict.ok) throw ConnectorError.auth(`${header}: ${verdict.message}`);
}

/**
 * Where a push carries credentials: the signature header the instance names (the hub redacts it
 * from stored and served headers and from logs).
 *
 * @example
 * ```ts
 * credentials({ signingKey: 's'.repeat(32), signatureHeader: 'X-Proxy-Signature' }); // { headers: ['x-proxy-signature'] }
 * ```
 */
export function credentials(config: Config): PushCredentials {
  return { headers: [signatureHeader(config)] };
}

/**
 * The headers Calendly adds to a push: the body signed at `at` (simulators and tests use it to
 * push as the vendor does).
 *
 * @example
 * ```ts
 * credentialHeaders({ signingKey: 's'.repeat(32) }, rawBody, new Date()); // { 'calendly-webhook-signature': 't=…,v1=…' }
 * ```
 */
export function credentialHeaders(
  config: Config,
  rawBody: string | Buffer,
  at: Date,
): Record<string, string> {
  return { [signatureHeader(config)]: signTimestamped(config.signingKey, rawBody, { timestamp: at }) };
}

/**
 * What Calendly presents on a push (the connector's `push.sign`): the headers of
 * {@link credentialHeaders} for this request. `switchyard push` sends them, and the conformance kit
 * checks that they are accepted.
 *
 * @example
 * ```ts
 * sign(request, config); // { headers: { … } }
 * ```
 */
export function sign(request: InboundRequest, config: Config): PresentedCredentials {
  return { headers: credentialHeaders(config, request.rawBody, request.receivedAt) };
}

/** The configured signature header, lowercase (the hub hands connectors lowercase header names). */
function signatureHeader(config: Config): string {
  return (config.signatureHeader ?? DEFAULT_SIGNATURE_HEADER).toLowerCase();
}

/** The secrets accepted now: the signing secret and, during a rotation, the previous one. */
function activeSecrets(config: Config): string[] {
  return [config.signingKey, config.previousSigningKey].filter(
    (secret): secret is string => typeof secret === 'string' && secret !== '',
  );
}
