import {
  ConnectorError,
  hmacSha256,
  type InboundRequest,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  verifyBodySignature,
} from '@switchyard/core';
import { type Config, SIGNATURE_HEADER } from './config.ts';

/**
 * What the request head can tell: a signature key is configured and the signature header is there.
 * The signature covers the notification URL and the body, so it is checked in {@link verifyBody}.
 *
 * @example
 * ```ts
 * authenticate(head, { signatureKey: 'k'.repeat(22) }); // throws ConnectorError.auth when the header is missing
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  if (activeKeys(config).length === 0)
    throw ConnectorError.auth('the instance has no signatureKey configured');
  const value = request.headers[SIGNATURE_HEADER];
  if (value === undefined || value.trim() === '') {
    throw ConnectorError.auth(`${SIGNATURE_HEADER}: the signature header is missing`);
  }
}

/** What Square signs: the notification URL it was given, then the raw body. */
function signedBytes(hookUrl: string, rawBody: string | Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(hookUrl, 'utf8'),
    Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, 'utf8'),
  ]);
}

/**
 * Accepts a push whose `x-square-hmacsha256-signature` is base64(HMAC-SHA256(signature key,
 * notification URL + body)), compared in constant time, with the key or (during a rotation) the
 * previous one. The notification URL is `request.hookUrl` (`server.publicUrl` + the path as
 * received): without `server.publicUrl` nothing can be verified and the push is refused.
 *
 * @example
 * ```ts
 * verifyBody(request, { signatureKey: 'k'.repeat(22) }); // throws ConnectorError.auth when wrong
 * ```
 */
export function verifyBody(request: InboundRequest, config: Config): void {
  if (request.hookUrl === undefined) {
    throw ConnectorError.auth(
      `${SIGNATURE_HEADER}: Square signs the notification URL; set server.publicUrl so the hub knows it`,
    );
  }
  const verdict = verifyBodySignature({
    header: request.headers[SIGNATURE_HEADER],
    body: signedBytes(request.hookUrl, request.rawBody),
    secrets: activeKeys(config),
    encoding: 'base64',
  });
  if (!verdict.ok) throw ConnectorError.auth(`${SIGNATURE_HEADER}: ${verdict.message}`);
}

/**
 * Where a push carries credentials: the signature header (redacted from stored and served headers).
 *
 * @example
 * ```ts
 * credentials(config); // { headers: ['x-square-hmacsha256-signature'] }
 * ```
 */
export function credentials(_config: Config): PushCredentials {
  return { headers: [SIGNATURE_HEADER] };
}

/**
 * The header Square adds to a notification sent to `hookUrl` (the URL registered at Square).
 *
 * @example
 * ```ts
 * credentialHeaders(config, 'https://hub.example.com/hooks/sq', rawBody); // { 'x-square-hmacsha256-signature': '…=' }
 * ```
 */
export function credentialHeaders(
  config: Pick<Config, 'signatureKey'>,
  hookUrl: string,
  rawBody: string | Buffer,
): Record<string, string> {
  return { [SIGNATURE_HEADER]: hmacSha256(config.signatureKey, signedBytes(hookUrl, rawBody), 'base64') };
}

/**
 * What Square presents on a push (`push.sign`): the signature over `request.hookUrl` and the body.
 *
 * @example
 * ```ts
 * sign(request, config); // { headers: { 'x-square-hmacsha256-signature': '…=' } }
 * ```
 */
export function sign(request: InboundRequest, config: Config): PresentedCredentials {
  if (request.hookUrl === undefined) {
    throw ConnectorError.auth('Square signs the notification URL: set server.publicUrl to sign a push');
  }
  return { headers: credentialHeaders(config, request.hookUrl, request.rawBody) };
}

/** The keys accepted now: the signature key and, during a rotation, the previous one. */
function activeKeys(config: Config): string[] {
  return [config.signatureKey, config.previousSignatureKey].filter(
    (key): key is string => typeof key === 'string' && key !== '',
  );
}
