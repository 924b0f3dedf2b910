import { describe, expect, it } from 'vitest';
import { isDeliveryError } from './errors.ts';
import { deriveKey, isSealedSecret, openSecret, sealSecret, secretHint } from './secret-box.ts';
import { generateSecret } from './sign.ts';

const key = deriveKey('correct horse battery staple');
const otherKey = deriveKey('correct horse battery stapler');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isDeliveryError(error) ? error.code : `not a DeliveryError: ${String(error)}`;
  }
  return undefined;
}

describe('deriveKey', () => {
  it('is deterministic, 32 bytes, and depends on the material', () => {
    expect(deriveKey('correct horse battery staple').equals(key)).toBe(true);
    expect(key).toHaveLength(32);
    expect(key.equals(otherKey)).toBe(false);
  });

  it('refuses short or missing material without echoing it', () => {
    expect(codeOf(() => deriveKey('tooShort123'))).toBe('SY_DELIVERY_KEY_INVALID');
    expect(codeOf(() => deriveKey(undefined as unknown as string))).toBe('SY_DELIVERY_KEY_INVALID');
    try {
      deriveKey('tooShort123');
    } catch (error) {
      expect((error as Error).message).not.toContain('tooShort123');
    }
  });
});

describe('sealSecret / openSecret', () => {
  it('round-trips, with a fresh IV each time', () => {
    const secret = generateSecret();
    const a = sealSecret(secret, key);
    const b = sealSecret(secret, key);
    expect(a).toMatch(/^v1:[\w-]{16}:[\w-]{22}:[\w-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(secret.slice(6, 20));
    expect(openSecret(a, key)).toBe(secret);
    expect(openSecret(b, key)).toBe(secret);
    expect(openSecret(sealSecret('', key), key)).toBe('');
    expect(openSecret(sealSecret('zażółć ✓', key), key)).toBe('zażółć ✓');
  });

  it('binds the context', () => {
    const sealed = sealSecret('s3cret', key, 'subscription:1');
    expect(openSecret(sealed, key, 'subscription:1')).toBe('s3cret');
    expect(codeOf(() => openSecret(sealed, key, 'subscription:2'))).toBe('SY_DELIVERY_SECRET_TAMPERED');
    expect(codeOf(() => openSecret(sealed, key))).toBe('SY_DELIVERY_SECRET_TAMPERED');
  });

  it('detects tampering in every part and a wrong key', () => {
    const sealed = sealSecret('whsec_something_secret', key);
    const parts = sealed.split(':');
    for (const index of [1, 2, 3]) {
      const changed = [...parts];
      const part = changed[index]!;
      changed[index] = (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
      expect(codeOf(() => openSecret(changed.join(':'), key))).toBe('SY_DELIVERY_SECRET_TAMPERED');
    }
    expect(codeOf(() => openSecret(sealed, otherKey))).toBe('SY_DELIVERY_SECRET_TAMPERED');
  });

  it('refuses malformed values and bad keys with codes', () => {
    for (const bad of ['', 'whsec_plain', 'v2:a:b:c', 'v1:short:tag:ct', `${sealSecret('x', key)}:extra`]) {
      expect(codeOf(() => openSecret(bad, key))).toBe('SY_DELIVERY_SECRET_TAMPERED');
    }
    expect(codeOf(() => sealSecret('x', Buffer.alloc(16)))).toBe('SY_DELIVERY_KEY_INVALID');
    expect(codeOf(() => openSecret(sealSecret('x', key), Buffer.alloc(31)))).toBe('SY_DELIVERY_KEY_INVALID');
  });

  it('isSealedSecret tells sealed values from plain ones', () => {
    expect(isSealedSecret(sealSecret('x', key))).toBe(true);
    expect(isSealedSecret(generateSecret())).toBe(false);
    expect(isSealedSecret(42)).toBe(false);
  });
});

describe('secretHint', () => {
  it('shows the prefix and at most two characters at each end', () => {
    expect(secretHint('whsec_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/9z=')).toBe('whsec_Ab…9z');
    expect(secretHint('plain-api-key-1234567890')).toBe('pl…90');
  });

  it('reveals nothing of short secrets', () => {
    expect(secretHint('whsec_short')).toBe('whsec_…');
    expect(secretHint('hunter2')).toBe('…');
    expect(secretHint('')).toBe('…');
  });

  it('never reveals more than 4 characters of a generated secret', () => {
    const secret = generateSecret();
    const hint = secretHint(secret);
    expect(hint.replace('whsec_', '').replace('…', '')).toHaveLength(4);
  });
});
