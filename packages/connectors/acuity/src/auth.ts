import {
  ConnectorError,
  type InboundRequest,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  signBody,
  verifyBodySignature,
} from '@switchyard/core';
import { type Config, SIGNATURE_HEADER } from './config.ts';

/**
 * What the request head can tell: an API key is configured and `X-Acuity-Signature` is there. The
 * signature is over the body alone (no timestamp): {@link verifyBody} checks it.
 *
 * @example
 * ```ts
 * authenticate(head, config); // throws ConnectorError.auth when the header is missing
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  if (activeSecrets(config).length === 0) throw ConnectorError.auth('the instance has no apiKey configured');
  const value = request.headers[SIGNATURE_HEADER];
  if (value === undefined || value.trim() === '') {
    throw ConnectorError.auth(`${SIGNATURE_HEADER}: the signature header is missing`);
  }
}

/**
 * Accepts a webhook whose `X-Acuity-Signature`, the base64 HMAC-SHA256 of the exact body with the
 * API key, verifies (or with the previous key during a rotation). Nothing signed says when: the
 * dedupe key and the API read behind every notification are what make a replay harmless.
 *
 * @example
 * ```ts
 * verifyBody(request, config); // throws ConnectorError.auth when wrong
 * ```
 */
export function verifyBody(request: InboundRequest, config: Config): void {
  const verdict = verifyBodySignature({
    header: request.headers[SIGNATURE_HEADER],
    body: request.rawBody,
    secrets: activeSecrets(config),
    encoding: 'base64',
  });
  if (!verdict.ok) throw ConnectorError.auth(`${SIGNATURE_HEADER}: ${verdict.message}`);
}

/**
 * Where a webhook carries credentials: the signature header.
 *
 * @example
 * ```ts
 * credentials(config); // { headers: ['x-acuity-signature'] }
 * ```
 */
export function credentials(_config: Config): PushCredentials {
  return { headers: [SIGNATURE_HEADER] };
}

/**
 * The headers Acuity adds to a webhook: the body signed with the API key (the simulator's). `_at`
 * is unused: Acuity signs no time.
 *
 * @example
 * ```ts
 * credentialHeaders(config, 'action=scheduled&id=1', new Date()); // { 'x-acuity-signature': '…=' }
 * ```
 */
export function credentialHeaders(
  config: Config,
  rawBody: string | Buffer,
  _at: Date,
): Record<string, string> {
  return { [SIGNATURE_HEADER]: signBody(config.apiKey, rawBody, { encoding: 'base64' }) };
}

/**
 * What Acuity presents on a webhook (the connector's `push.sign`), for `switchyard push` and the kit.
 *
 * @example
 * ```ts
 * sign(request, config); // { headers: { 'x-acuity-signature': '…=' } }
 * ```
 */
export function sign(request: InboundRequest, config: Config): PresentedCredentials {
  return { headers: credentialHeaders(config, request.rawBody, request.receivedAt) };
}

/** The keys accepted now: the API key and, during a rotation, the previous one. */
function activeSecrets(config: Config): string[] {
  return [config.apiKey, config.previousApiKey].filter(
    (secret): secret is string => typeof secret === 'string' && secret !== '',
  );
}
