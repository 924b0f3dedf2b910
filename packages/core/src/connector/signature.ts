/**
 * Body signatures of the common vendor webhook schemes, as pure functions a connector calls from
 * `push.verifyBody(request, config)` (the hub runs it once the body is read; `push.authenticate`
 * sees only the head) over `request.rawBody` (the exact bytes: a signature over re-serialized JSON
 * never matches) and `request.receivedAt` (the clock of the tolerance window).
 *
 * Two shapes cover most vendors:
 * - **timestamped** (Stripe style): header `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
 *   several `v1=` entries while the vendor rotates its secret, refused outside a tolerance window so
 *   a captured request cannot be replayed later;
 * - **plain body HMAC** (GitHub / Shopify style): header `[prefix]<HMAC-SHA256 of the body>`, hex
 *   (GitHub `X-Hub-Signature-256: sha256=…`) or base64 (Shopify `X-Shopify-Hmac-Sha256`).
 *
 * Every check compares in constant time and accepts any of several secrets (a rotation keeps the old
 * and the new one active for a while). Verdicts never contain a secret or the expected signature.
 * Standard Webhooks (Svix) has its own verifier in `standard-webhooks.ts`; other schemes are built
 * from {@link hmacSha256} and `timingSafeEqualString` (docs/writing-a-connector.md, §5).
 */
import { createHmac } from 'node:crypto';
import { timingSafeEqualString } from './helpers.ts';

/** How a digest is written: lowercase hex (GitHub, Stripe) or standard base64 (Shopify). */
export type DigestEncoding = 'hex' | 'base64';

/** The default tolerance window of timestamped signatures: 5 minutes either way (Stripe's default). */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

/** The outcome of a signature check. `secretIndex`: which of the given secrets matched. */
export type SignatureVerdict =
  | { ok: true; secretIndex: number }
  | {
      ok: false;
      /** `missing`: no header; `malformed`: unreadable; `expired`: outside the window; `mismatch`: no secret matches. */
      reason: 'missing' | 'malformed' | 'expired' | 'mismatch';
      /** Says what is wrong without any secret or expected value, fit for `ConnectorError.auth`. */
      message: string;
    };

/**
 * HMAC-SHA256 of `payload` with `secret` (a string is used as its UTF-8 bytes, as vendors do).
 *
 * @example
 * ```ts
 * hmacSha256("It's a Secret to Everybody", 'Hello, World!');
 * // '757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' (GitHub's documented example)
 * ```
 */
export function hmacSha256(
  secret: string | Buffer,
  payload: string | Buffer,
  encoding: DigestEncoding = 'hex',
): string {
  return createHmac('sha256', secret).update(payload).digest(encoding);
}

/** Options of {@link signBody} and {@link verifyBodySignature}. */
export interface BodySignatureScheme {
  /** Default `hex`. */
  encoding?: DigestEncoding;
  /** Written before the digest, e.g. `sha256=` (GitHub). Default none. */
  prefix?: string;
}

/**
 * The header value a vendor of the plain body-HMAC kind sends: `prefix + HMAC-SHA256(body)`.
 *
 * @example
 * ```ts
 * signBody('s3cret', rawBody, { prefix: 'sha256=' });   // GitHub: 'sha256=5c1f…'
 * signBody('s3cret', rawBody, { encoding: 'base64' });  // Shopify: 'qBDT…='
 * ```
 */
export function signBody(
  secret: string | Buffer,
  body: string | Buffer,
  scheme: BodySignatureScheme = {},
): string {
  return `${scheme.prefix ?? ''}${hmacSha256(secret, body, scheme.encoding ?? 'hex')}`;
}

/**
 * Checks a plain body HMAC (GitHub / Shopify style) against each active secret, in constant time.
 * Hex digests are compared case-insensitively; the prefix must be there as configured.
 *
 * @example
 * ```ts
 * const verdict = verifyBodySignature({
 *   header: request.headers['x-hub-signature-256'],
 *   body: request.rawBody,
 *   secrets: [config.secret, config.previousSecret].filter((s) => s !== undefined),
 *   prefix: 'sha256=',
 * });
 * if (!verdict.ok) throw ConnectorError.auth(verdict.message);
 * ```
 */
export function verifyBodySignature(
  options: BodySignatureScheme & {
    /** The presented header value (undefined when absent). */
    header: string | undefined;
    /** The exact bytes received (`request.rawBody`). */
    body: string | Buffer;
    /** The active secrets, newest first; empty refuses everything. */
    secrets: ReadonlyArray<string | Buffer>;
  },
): SignatureVerdict {
  const { header, body, secrets } = options;
  const encoding = options.encoding ?? 'hex';
  const prefix = options.prefix ?? '';
  if (header === undefined || header.trim() === '')
    return refuse('missing', 'the signature header is missing');
  const value = header.trim();
  if (!value.startsWith(prefix)) {
    return refuse('malformed', `the signature does not start with ${JSON.stringify(prefix)}`);
  }
  const presented = value.slice(prefix.length);
  const digest = encoding === 'hex' ? presented.toLowerCase() : presented;
  if (!(encoding === 'hex' ? HEX : BASE64).test(digest)) {
    return refuse('malformed', `the signature is not a ${encoding} digest`);
  }
  return matchAny(digest, secrets, (secret) => hmacSha256(secret, body, encoding));
}

/** A parsed `t=…,v1=…` header. */
export interface TimestampedSignatureHeader {
  /** Unix seconds, or undefined when `t=` is absent or not an integer. */
  timestamp: number | undefined;
  /** Every signature of the requested scheme (`v1`), in header order. */
  signatures: string[];
}

/**
 * Reads a Stripe-style header `t=1492774577,v1=5257…,v1=…,v0=…`: the timestamp and every signature
 * of one scheme (other schemes, such as Stripe's test-mode `v0`, are skipped).
 *
 * @example
 * ```ts
 * parseTimestampedSignatureHeader('t=1492774577,v1=abc,v0=def'); // { timestamp: 1492774577, signatures: ['abc'] }
 * ```
 */
export function parseTimestampedSignatureHeader(header: string, scheme = 'v1'): TimestampedSignatureHeader {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === scheme && value !== '') signatures.push(value);
  }
  return { timestamp, signatures };
}

/** Options of {@link signTimestamped}. */
export interface TimestampedSigning {
  /** Unix seconds, or a Date (its seconds are used). */
  timestamp: number | Date;
  /** Default `v1`. */
  scheme?: string;
}

/**
 * The header a Stripe-style vendor sends: `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
 * Several secrets give several `v1=` entries (what a vendor sends during a rotation).
 *
 * @example
 * ```ts
 * signTimestamped(['whsec_test'], rawBody, { timestamp: 1700000000 }); // 't=1700000000,v1=…'
 * ```
 */
export function signTimestamped(
  secrets: string | Buffer | ReadonlyArray<string | Buffer>,
  body: string | Buffer,
  signing: TimestampedSigning,
): string {
  const t = unixSeconds(signing.timestamp);
  const scheme = signing.scheme ?? 'v1';
  const list = typeof secrets === 'string' || Buffer.isBuffer(secrets) ? [secrets] : secrets;
  const parts = list.map((secret) => `${scheme}=${hmacSha256(secret, signedPayload(t, body))}`);
  return [`t=${t}`, ...parts].join(',');
}

/**
 * Checks a Stripe-style `t=…,v1=…` header: the timestamp must lie within `toleranceSeconds` of
 * `receivedAt` (either way, for clock skew), and one `v1` signature must equal the HMAC-SHA256 of
 * `"<t>.<body>"` under one of the active secrets (constant-time comparisons).
 *
 * @example
 * ```ts
 * const verdict = verifyTimestampedSignature({
 *   header: request.headers['x-acme-signature'],
 *   body: request.rawBody,
 *   secrets: config.signingSecrets,
 *   receivedAt: request.receivedAt,
 * });
 * if (!verdict.ok) throw ConnectorError.auth(verdict.message);
 * ```
 */
export function verifyTimestampedSignature(options: {
  header: string | undefined;
  body: string | Buffer;
  secrets: ReadonlyArray<string | Buffer>;
  /** When the request arrived (`request.receivedAt`): the window is measured from it. */
  receivedAt: Date;
  /** Default {@link DEFAULT_SIGNATURE_TOLERANCE_SECONDS}. */
  toleranceSeconds?: number;
  /** Default `v1`. */
  scheme?: string;
}): SignatureVerdict {
  const { header, body, secrets, receivedAt } = options;
  if (header === undefined || header.trim() === '')
    return refuse('missing', 'the signature header is missing');
  const scheme = options.scheme ?? 'v1';
  const parsed = parseTimestampedSignatureHeader(header, scheme);
  if (parsed.timestamp === undefined) return refuse('malformed', 'the signature header has no t= timestamp');
  if (parsed.signatures.length === 0) {
    return refuse('malformed', `the signature header has no ${scheme}= signature`);
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  const skew = Math.abs(unixSeconds(receivedAt) - parsed.timestamp);
  if (skew > tolerance) {
    return refuse(
      'expired',
      `the signature timestamp is ${skew} s away from the receive time (tolerance ${tolerance} s)`,
    );
  }
  const payload = signedPayload(parsed.timestamp, body);
  const expected = secrets.map((secret) => hmacSha256(secret, payload));
  // Every presented signature is compared with every expected one: no early exit tells which matched.
  let match = -1;
  for (const presented of parsed.signatures) {
    expected.forEach((digest, index) => {
      if (timingSafeEqualString(presented.toLowerCase(), digest) && match < 0) match = index;
    });
  }
  if (match >= 0) return { ok: true, secretIndex: match };
  return refuse(
    'mismatch',
    secrets.length === 0 ? 'no signing secret is configured' : 'no signature matches an active secret',
  );
}

const HEX = /^[0-9a-f]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function unixSeconds(at: number | Date): number {
  return typeof at === 'number' ? Math.trunc(at) : Math.floor(at.getTime() / 1000);
}

function signedPayload(timestamp: number, body: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${timestamp}.`), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
}

function matchAny(
  presented: string,
  secrets: ReadonlyArray<string | Buffer>,
  digestOf: (secret: string | Buffer) => string,
): SignatureVerdict {
  let match = -1;
  secrets.forEach((secret, index) => {
    if (timingSafeEqualString(presented, digestOf(secret)) && match < 0) match = index;
  });
  if (match >= 0) return { ok: true, secretIndex: match };
  return refuse(
    'mismatch',
    secrets.length === 0
      ? 'no signing secret is configured'
      : 'the signature does not match an active secret',
  );
}

function refuse(reason: 'missing' | 'malformed' | 'expired' | 'mismatch', message: string): SignatureVerdict {
  return { ok: false, reason, message };
}
