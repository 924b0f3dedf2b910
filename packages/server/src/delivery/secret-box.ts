/**
 * Encryption at rest for secrets the hub stores (subscription signing secrets): AES-256-GCM under a
 * key derived from the configured `secretKey`. A sealed value is text, safe for a TEXT column:
 * `v1:<iv>:<tag>:<ciphertext>`, each part base64url. GCM authenticates, so any change to a sealed
 * value, or opening it with another key or context, fails with `SY_DELIVERY_SECRET_TAMPERED`
 * instead of yielding garbage.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { DeliveryError } from './errors.ts';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Shorter configured keys are refused: they would be guessable whatever the KDF. */
/** Encrypts and decrypts secrets at rest (settings, signing secrets). */
export interface SecretCipher {
  /** `context` (e.g. `subscription:<id>`) is bound to the ciphertext: it only opens on that row. */
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

export const MIN_SECRET_KEY_LENGTH = 16;
// A fixed salt is deliberate: the key must be re-derivable from the config alone on every process,
// and the input is an operator-chosen key, not a user password shared across many systems.
const SALT = 'switchyard/secret-box/v1';
// scrypt N=2^15, r=8, p=1: about 32 MiB and tens of milliseconds, paid once at start.
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/**
 * Derives the 32-byte AES key from the configured `secretKey` (any length ≥ 16 characters) with
 * scrypt (N=2^15, r=8, p=1) and a fixed salt, so every hub process sharing the config derives the
 * same key. It is deliberately slow (tens of ms): derive once at start and reuse the result. Throws
 * `SY_DELIVERY_KEY_INVALID` for a missing or short key (the message never contains it).
 *
 * @example
 * ```ts
 * const key = deriveKey(config.server.secretKey); // once, at start
 * const sealed = sealSecret(subscription.secret, key);
 * ```
 */
export function deriveKey(material: string): Buffer {
  if (typeof material !== 'string' || material.length < MIN_SECRET_KEY_LENGTH) {
    throw new DeliveryError(
      'SY_DELIVERY_KEY_INVALID',
      `the secret encryption key must be a string of at least ${MIN_SECRET_KEY_LENGTH} characters`,
    );
  }
  return scryptSync(material.normalize('NFC'), SALT, KEY_BYTES, SCRYPT);
}

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new DeliveryError(
      'SY_DELIVERY_KEY_INVALID',
      'the encryption key must be 32 bytes: make it with deriveKey()',
    );
  }
}

/**
 * Encrypts `plaintext` with AES-256-GCM under `key` (from {@link deriveKey}) and a fresh random IV.
 * `context`, when given, is bound as associated data (e.g. the subscription id): the sealed value
 * then only opens with the same context, so it cannot be copied onto another row.
 *
 * @example
 * ```ts
 * const sealed = sealSecret('whsec_...', key, `subscription:${id}`); // 'v1:Rk9P...:3xQ...:aG9...'
 * ```
 */
export function sealSecret(plaintext: string, key: Buffer, context?: string): string {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  if (context !== undefined) cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, iv, tag, ciphertext]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join(':');
}

/**
 * True when `value` looks like the output of {@link sealSecret} (format only, nothing decrypted).
 *
 * @example
 * ```ts
 * isSealedSecret(row.secret) ? openSecret(row.secret, key) : row.secret;
 * ```
 */
export function isSealedSecret(value: unknown): value is string {
  return typeof value === 'string' && /^v1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]*$/.test(value);
}

/**
 * Decrypts a value made by {@link sealSecret} with the same key (and context, if one was given).
 * Throws `SY_DELIVERY_SECRET_TAMPERED` when the value is malformed, was changed, or was sealed with
 * another key or context; `SY_DELIVERY_KEY_INVALID` for a key that is not 32 bytes.
 *
 * @example
 * ```ts
 * const secret = openSecret(row.secret_sealed, key, `subscription:${row.id}`);
 * ```
 */
export function openSecret(sealed: string, key: Buffer, context?: string): string {
  checkKey(key);
  if (!isSealedSecret(sealed)) {
    throw new DeliveryError(
      'SY_DELIVERY_SECRET_TAMPERED',
      'not a sealed secret (expected v1:<iv>:<tag>:<ciphertext>)',
    );
  }
  const [, iv, tag, ciphertext] = sealed.split(':').map((part) => Buffer.from(part, 'base64url'));
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv!, { authTagLength: TAG_BYTES });
    if (context !== undefined) decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag!);
    return Buffer.concat([decipher.update(ciphertext!), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new DeliveryError(
      'SY_DELIVERY_SECRET_TAMPERED',
      'the sealed secret does not authenticate: it was changed, or sealed with another key or context',
      { cause: error },
    );
  }
}

/**
 * A short, safe-to-show reminder of which secret this is: the `whsec_` prefix (if any), the first
 * two and last two characters of the rest (base64 padding skipped), e.g. `whsec_Ab…9z`. At most 4
 * characters of the secret are revealed, and none when it is shorter than 16 characters, so the
 * hint never helps reconstruct it.
 *
 * @example
 * ```ts
 * secretHint('whsec_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/9z='); // 'whsec_Ab…9z'
 * secretHint('short');                                         // '…'
 * ```
 */
export function secretHint(secret: string): string {
  const prefix = secret.startsWith('whsec_') ? 'whsec_' : '';
  const rest = secret.slice(prefix.length).replace(/=+$/, '');
  if (rest.length < 16) return `${prefix}…`;
  return `${prefix}${rest.slice(0, 2)}…${rest.slice(-2)}`;
}
