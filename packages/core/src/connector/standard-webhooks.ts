/**
 * Standard Webhooks (https://www.standardwebhooks.com, the scheme of Svix and of the vendors built
 * on it): three headers, `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`,
 * a space-separated list of `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
 * base64-decoded part of a `whsec_` secret. The hub signs its own deliveries this way
 * (`packages/server/src/delivery/sign.ts`), with the same {@link standardWebhooksHmac}, so what a
 * connector verifies and what the hub sends cannot drift apart.
 */
import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import { DEFAULT_SIGNATURE_TOLERANCE_SECONDS, type SignatureVerdict } from './signature.ts';

const SECRET_PREFIX = 'whsec_';
/** Standard base64 with padding: what the spec writes secrets and signatures in. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** An HMAC-SHA256 digest is 32 bytes: 44 base64 characters, the last one `=`. */
const DIGEST_BYTES = 32;

/**
 * The HMAC-SHA256 a Standard Webhooks signature carries: over `"<id>.<timestamp>.<body>"` with the
 * decoded key (the bytes after `whsec_`, base64-decoded). Base64 of it, after `v1,`, is one entry of
 * `webhook-signature`. The hub's delivery signer and {@link verifyStandardWebhooksSignature} both
 * use it.
 *
 * @example
 * ```ts
 * const key = Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'); // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
 * const signature = `v1,${standardWebhooksHmac(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}').toString('base64')}`;
 * // 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' (the spec's test vector)
 * ```
 */
export function standardWebhooksHmac(
  key: KeyObject | Buffer,
  id: string,
  timestamp: number,
  body: string | Buffer,
): Buffer {
  // Two updates: the body is not copied into a new `${id}.${timestamp}.${body}` first (the hub signs
  // every delivery with this). A string body is hashed as its UTF-8 bytes, a Buffer as it is.
  return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

/**
 * Checks a Standard Webhooks signature (Svix and the vendors that use its scheme) over the exact
 * body: the timestamp must lie within `toleranceSeconds` of `receivedAt` (either way, for clock
 * skew), and one `v1,` entry of the space-separated signature list must equal the HMAC-SHA256 of
 * `"<id>.<timestamp>.<body>"` under one of the active secrets. Secrets are `whsec_<base64>` strings
 * (bare base64 too, as the reference libraries accept) or raw key bytes as a Buffer. Entries of
 * other versions (`v1a,…`) are skipped. Every entry is compared with every secret in constant time,
 * and the verdict never contains a secret or an expected signature.
 *
 * The headers are passed by value, so a vendor that sends them under its own names (Svix's older
 * `svix-id`, `svix-timestamp`, `svix-signature`) is read the same way. The message id is what the
 * vendor keeps across its retries: a good dedupe key for `parse`.
 *
 * @example
 * ```ts
 * verifyBody(request, config) {
 *   const verdict = verifyStandardWebhooksSignature({
 *     id: request.headers['webhook-id'],
 *     timestamp: request.headers['webhook-timestamp'],
 *     signature: request.headers['webhook-signature'],
 *     body: request.rawBody,
 *     secrets: [config.signingSecret, config.previousSigningSecret].filter((s) => s !== undefined),
 *     receivedAt: request.receivedAt,
 *   });
 *   if (!verdict.ok) throw ConnectorError.auth(`webhook-signature: ${verdict.message}`);
 * },
 * ```
 */
export function verifyStandardWebhooksSignature(options: {
  /** The message id (`webhook-id`), undefined when absent. */
  id: string | undefined;
  /** Unix seconds (`webhook-timestamp`), undefined when absent. */
  timestamp: string | undefined;
  /** The signature list (`webhook-signature`), undefined when absent. */
  signature: string | undefined;
  /** The exact bytes received (`request.rawBody`). */
  body: string | Buffer;
  /** The active secrets, newest first; empty refuses everything. */
  secrets: ReadonlyArray<string | Buffer>;
  /** When the request arrived (`request.receivedAt`): the window is measured from it. */
  receivedAt: Date;
  /** Default {@link DEFAULT_SIGNATURE_TOLERANCE_SECONDS} (300 s, what the spec's libraries use). */
  toleranceSeconds?: number;
}): SignatureVerdict {
  const { id, timestamp, signature, body, secrets, receivedAt } = options;
  if (id === undefined || id.trim() === '')
    return refuse('missing', 'the message id (webhook-id) is missing');
  if (timestamp === undefined || timestamp.trim() === '') {
    return refuse('missing', 'the signature timestamp (webhook-timestamp) is missing');
  }
  if (signature === undefined || signature.trim() === '') {
    return refuse('missing', 'the signature (webhook-signature) is missing');
  }
  if (!/^\d{1,15}$/.test(timestamp.trim())) {
    return refuse('malformed', 'the signature timestamp (webhook-timestamp) is not Unix seconds');
  }
  const presented: Buffer[] = [];
  for (const entry of signature.trim().split(/ +/)) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const value = entry.slice(comma + 1);
    if (!BASE64.test(value)) continue;
    const decoded = Buffer.from(value, 'base64');
    if (decoded.length === DIGEST_BYTES) presented.push(decoded);
  }
  if (presented.length === 0) {
    return refuse('malformed', 'the signature (webhook-signature) has no v1,<base64 HMAC-SHA256> entry');
  }
  const seconds = Number(timestamp.trim());
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  const skew = Math.abs(Math.floor(receivedAt.getTime() / 1000) - seconds);
  if (skew > tolerance) {
    return refuse(
      'expired',
      `the signature timestamp is ${skew} s away from the receive time (tolerance ${tolerance} s)`,
    );
  }
  const unusable: number[] = [];
  let match = -1;
  secrets.forEach((secret, index) => {
    const key = keyOf(secret);
    if (key === undefined) {
      unusable.push(index);
      return;
    }
    const expected = standardWebhooksHmac(key, id, seconds, body);
    // No early exit: the work done does not depend on which secret or entry matched.
    for (const candidate of presented) {
      if (timingSafeEqual(candidate, expected) && match < 0) match = index;
    }
  });
  if (match >= 0) return { ok: true, secretIndex: match };
  if (secrets.length === 0) return refuse('mismatch', 'no signing secret is configured');
  // Said so the operator can tell a vendor's bad signature from their own bad setting (the hub logs
  // the message; the vendor is answered a bare 401). Positions only, never the secret.
  const note =
    unusable.length === 0
      ? ''
      : ` (secret #${unusable.map((i) => i + 1).join(', #')} is not whsec_ followed by base64)`;
  return refuse('mismatch', `no signature matches an active secret${note}`);
}

/** The HMAC key of a secret: a Buffer as it is, `whsec_<base64>` or bare base64 decoded; else undefined. */
function keyOf(secret: string | Buffer): Buffer | undefined {
  if (Buffer.isBuffer(secret)) return secret.length > 0 ? secret : undefined;
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (encoded === '' || !BASE64.test(encoded)) return undefined;
  return Buffer.from(encoded, 'base64');
}

function refuse(reason: 'missing' | 'malformed' | 'expired' | 'mismatch', message: string): SignatureVerdict {
  return { ok: false, reason, message };
}
