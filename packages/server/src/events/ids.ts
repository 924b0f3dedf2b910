import { createHash } from 'node:crypto';

// A fixed namespace so event ids depend only on (inbound message, position): re-running the
// normalization of one message gives the same ids, and storing them again is a no-op.
const EVENT_NAMESPACE = Buffer.from('6f1d3c2a9b8e4f7da1c05e2b3d4f6a79', 'hex');

/**
 * The id of the `index`-th event produced from an inbound message: a UUID v5 (SHA-1, RFC 9562)
 * of the message id and the index. Stable across retries and renormalization.
 *
 * @example
 * ```ts
 * eventIdFor('0d6c...', 0) === eventIdFor('0d6c...', 0); // true
 * ```
 */
export function eventIdFor(inboundMessageId: string, index: number): string {
  const hash = createHash('sha1').update(EVENT_NAMESPACE).update(`${inboundMessageId}:${index}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
