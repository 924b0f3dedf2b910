/**
 * The one signed POST of the hub: a delivery attempt, a test event and an approver call all send
 * their body this way (Standard Webhooks headers, the target's timeout and destination policy).
 */
import { type ConnectionPool, type PostWebhookResult, postWebhook } from './http-post.ts';
import { signPayload } from './sign.ts';

/** Where a signed POST goes and how (a subscription, as the delivery layer sees it). */
export interface SignedPostTarget {
  url: string;
  contentType: string;
  timeoutMs: number;
  /** Private and loopback addresses allowed (an operator's explicit choice per subscription). */
  allowPrivateAddresses: boolean;
  /** Plaintext signing secrets in force, newest first; none sends the id and timestamp unsigned. */
  secrets: readonly string[];
  /** Ends the request when aborted (`PostWebhookOptions.signal`). */
  signal?: AbortSignal;
  /** The connections used (`PostWebhookOptions.pool`); default `deliveries`. */
  pool?: ConnectionPool;
  /** Reads an answer's body until then at most (`PostWebhookOptions.bodyBy`). */
  bodyBy?: number;
}

/**
 * POSTs `body` to the target, signed with every secret in force (a rotation's overlap signs with
 * both), with `webhook-id: eventId`.
 *
 * @example
 * ```ts
 * const r = await postSigned(
 *   { url: 'https://crm.example/hooks', contentType: 'application/json', timeoutMs: 10_000, allowPrivateAddresses: false, secrets: ['whsec_…'] },
 *   eventId, body, 2048,
 * ); // { ok: true, status: 204, latencyMs: 12.3, ... }
 * ```
 */
export function postSigned(
  target: SignedPostTarget,
  eventId: string,
  body: string,
  maxResponseBytes: number,
): Promise<PostWebhookResult> {
  const signature =
    target.secrets.length > 0
      ? signPayload({ id: eventId, timestamp: new Date(), body, secrets: target.secrets })
      : { 'webhook-id': eventId, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) };
  return postWebhook({
    url: target.url,
    headers: { ...signature, 'content-type': target.contentType },
    body,
    timeoutMs: target.timeoutMs,
    maxResponseBytes,
    allowPrivate: target.allowPrivateAddresses,
    allowLoopback: target.allowPrivateAddresses,
    ...(target.signal ? { signal: target.signal } : {}),
    ...(target.pool ? { pool: target.pool } : {}),
    ...(target.bodyBy !== undefined ? { bodyBy: target.bodyBy } : {}),
  });
}
