/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): every delivery carries
 * `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a space-separated list of
 * `v1,<base64 HMAC-SHA256>` over `${id}.${timestamp}.${body}`, keyed with the base64-decoded part of
 * a `whsec_` secret. Several secrets give several signatures: that is how rotation overlaps (the
 * subscriber accepts any one that matches, so old and new secrets both work during the switch).
 */
import { createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
// The HMAC over `${id}.${seconds}.${body}` comes from core, where connectors' verifier
// (verifyStandardWebhooksSignature) uses it too: what the hub sends and what they check cannot drift.
import { standardWebhooksHmac } from '@switchyard/core';
import { DeliveryError } from './errors.ts';

const PREFIX = 'whsec_';
/** The Standard Webhooks spec asks for keys of 24 to 64 bytes. */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The rule of {@link parseSecret} as one regular expression source: `whsec_`, then standard base64
 * with its padding whose decoded length is 24..64 bytes (per padding: how many 4-character groups
 * that allows). The subscription input schema (subscriptions/schema.ts) uses it, so a bad secret is
 * refused by the same check as every other bad field (the route's 400, the hub's and the config
 * file's refusal), not only later when it is sealed.
 *
 * @example
 * ```ts
 * new RegExp(SIGNING_SECRET_PATTERN).test(generateSecret()); // true
 * new RegExp(SIGNING_SECRET_PATTERN).test('whsec_abc'); // false: decodes to 2 bytes
 * ```
 */
export const SIGNING_SECRET_PATTERN = (() => {
  const b = '[A-Za-z0-9+/]';
  // A secret of g groups of 4 characters whose last has p padding characters decodes to 3g - p bytes.
  const groups = (p: number) => [Math.ceil((MIN_KEY_BYTES + p) / 3), Math.floor((MAX_KEY_BYTES + p) / 3)];
  const [g0min, g0max] = groups(0);
  const [g1min, g1max] = groups(1);
  const [g2min, g2max] = groups(2);
  return `^${PREFIX}(?:(?:${b}{4}){${g0min},${g0max}}|(?:${b}{4}){${g1min! - 1},${g1max! - 1}}${b}{3}=|(?:${b}{4}){${g2min! - 1},${g2max! - 1}}${b}{2}==)$`;
})();
/** Default replay window of {@link verifySignature}, the one the spec and its libraries use. */
const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** The three Standard Webhooks headers, lowercase as sent. */
export type SignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/**
 * A new signing secret: `whsec_` + base64 of 32 random bytes (44 characters after the prefix).
 *
 * @example
 * ```ts
 * const secret = generateSecret(); // 'whsec_3q2+7w...='
 * ```
 */
export function generateSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

/**
 * Checks a signing secret and returns its HMAC key. Throws `SY_DELIVERY_SECRET_INVALID` (without
 * echoing the secret) unless it is `whsec_` followed by standard base64 (with padding) decoding to
 * 24..64 bytes, which is what every Standard Webhooks library accepts.
 *
 * @example
 * ```ts
 * const key = parseSecret(config.secret); // Buffer of 24..64 bytes
 * ```
 */
export function parseSecret(secret: string): Buffer {
  if (typeof secret !== 'string') {
    throw new DeliveryError('SY_DELIVERY_SECRET_INVALID', 'the signing secret must be a string');
  }
  if (!secret.startsWith(PREFIX)) {
    throw new DeliveryError('SY_DELIVERY_SECRET_INVALID', 'the signing secret must start with "whsec_"');
  }
  const encoded = secret.slice(PREFIX.length);
  if (encoded.length === 0 || encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw new DeliveryError(
      'SY_DELIVERY_SECRET_INVALID',
      'the signing secret must be "whsec_" followed by standard base64 (A-Z a-z 0-9 + /, padded with =)',
    );
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new DeliveryError(
      'SY_DELIVERY_SECRET_INVALID',
      `the signing secret must decode to ${MIN_KEY_BYTES}..${MAX_KEY_BYTES} bytes, it decodes to ${key.length}`,
      { details: { bytes: key.length } },
    );
  }
  return key;
}

/**
 * True when `secret` is a valid signing secret (see {@link parseSecret}).
 *
 * @example
 * ```ts
 * isValidSecret('whsec_' + 'A'.repeat(32)); // true
 * isValidSecret('hunter2'); // false
 * ```
 */
export function isValidSecret(secret: string): boolean {
  try {
    parseSecret(secret);
    return true;
  } catch {
    return false;
  }
}

function toSeconds(timestamp: Date | number): number {
  const seconds = timestamp instanceof Date ? Math.floor(timestamp.getTime() / 1000) : timestamp;
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new RangeError('webhook timestamp must be a valid Date or a non-negative integer of Unix seconds');
  }
  return seconds;
}

/**
 * HMAC keys of the secrets seen, by secret. Handing `createHmac` a raw key makes a fresh key object
 * from the buffer on every call (with the `whsec_` decoding before it): ~5× the time of the HMAC
 * over a 1.5 kB body with a key object made once. Secrets are few (one or two per subscription), so
 * the map is small; it is bounded all the same.
 */
const hmacKeys = new Map<string, KeyObject>();
const HMAC_KEYS_MAX = 1000;

function hmacKey(secret: string): KeyObject {
  let key = hmacKeys.get(secret);
  if (key === undefined) {
    key = createSecretKey(parseSecret(secret));
    if (hmacKeys.size >= HMAC_KEYS_MAX) hmacKeys.delete(hmacKeys.keys().next().value!);
    hmacKeys.set(secret, key);
  }
  return key;
}

/**
 * Signs one delivery. Returns the three headers to send with `body` (send the body byte for byte as
 * signed). One `v1,` signature per distinct secret, in the given order, space-separated: pass
 * `[newSecret, oldSecret]` during a rotation. Throws `SY_DELIVERY_SECRET_INVALID` for a malformed
 * secret or an empty list, `RangeError` for a bad timestamp or an empty id.
 *
 * @example
 * ```ts
 * const headers = signPayload({
 *   id: event.id,                    // stable across retries: the subscriber dedupes on it
 *   timestamp: new Date(),           // or Unix seconds
 *   body: JSON.stringify(event),
 *   secrets: [subscription.secret, subscription.previousSecret].filter(Boolean),
 * });
 * // { 'webhook-id': 'evt_1', 'webhook-timestamp': '1735689600', 'webhook-signature': 'v1,K5o... v1,Zx1...' }
 * ```
 */
export function signPayload(input: {
  id: string;
  timestamp: Date | number;
  body: string;
  secrets: readonly string[];
}): SignatureHeaders {
  const { id, body, secrets } = input;
  if (typeof id !== 'string' || id.length === 0)
    throw new RangeError('webhook id must be a non-empty string');
  if (!Array.isArray(secrets) || secrets.length === 0) {
    throw new DeliveryError('SY_DELIVERY_SECRET_INVALID', 'at least one signing secret is required');
  }
  const seconds = toSeconds(input.timestamp);
  const signatures = [...new Set(secrets)].map(
    (secret) => `v1,${standardWebhooksHmac(hmacKey(secret), id, seconds, body).toString('base64')}`,
  );
  return {
    'webhook-id': id,
    'webhook-timestamp': String(seconds),
    'webhook-signature': signatures.join(' '),
  };
}

/** Why {@link verifySignature} refused. */
export type VerifyFailure = 'missing_headers' | 'bad_timestamp' | 'timestamp_out_of_tolerance' | 'no_match';

/**
 * Verifies Standard Webhooks headers against `body` (for our own use: the recording subscriber,
 * tests, self-checks). Header names are matched case-insensitively. Every `v1,` entry is compared
 * with every secret's HMAC in constant time; other versions are ignored. The timestamp must be
 * within `toleranceSeconds` (default 300) of `now` (default the clock), either way.
 *
 * @example
 * ```ts
 * const result = verifySignature({ headers: req.headers, body: rawBody, secrets: [secret] });
 * if (!result.ok) return reply.code(401).send({ reason: result.reason });
 * result.secretIndex; // which secret matched (0 = first)
 * ```
 */
export function verifySignature(input: {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: string | Buffer;
  secrets: readonly string[];
  toleranceSeconds?: number;
  now?: Date;
}): { ok: true; secretIndex: number } | { ok: false; reason: VerifyFailure } {
  const lower: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers)) {
    if (value !== undefined) lower[name.toLowerCase()] = Array.isArray(value) ? value.join(' ') : value;
  }
  const id = lower['webhook-id'];
  const timestamp = lower['webhook-timestamp'];
  const signature = lower['webhook-signature'];
  if (!id || !timestamp || !signature) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,15}$/.test(timestamp)) return { ok: false, reason: 'bad_timestamp' };
  const seconds = Number(timestamp);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - seconds) > tolerance) return { ok: false, reason: 'timestamp_out_of_tolerance' };

  const body = typeof input.body === 'string' ? input.body : input.body.toString('utf8');
  const presented: Buffer[] = [];
  for (const entry of signature.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const decoded = Buffer.from(entry.slice(comma + 1), 'base64');
    if (decoded.length === 32) presented.push(decoded);
  }
  let matched = -1;
  input.secrets.forEach((secret, index) => {
    const expected = standardWebhooksHmac(hmacKey(secret), id, seconds, body);
    for (const candidate of presented) {
      // No early exit: the work done does not depend on which secret or entry matched.
      if (timingSafeEqual(candidate, expected) && matched < 0) matched = index;
    }
  });
  return matched >= 0 ? { ok: true, secretIndex: matched } : { ok: false, reason: 'no_match' };
}
