import { beforeEach, describe, expect, it, vi } from 'vitest';

// Counts the hashes timingSafeEqualString makes (node:crypto's createHash, wrapped).
const hashes = vi.hoisted(() => ({ n: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    createHash: (...args: Parameters<typeof actual.createHash>) => {
      hashes.n++;
      return actual.createHash(...args);
    },
  };
});

const { timingSafeEqualString } = await import('./helpers.ts');

describe('timingSafeEqualString, the expected side', () => {
  beforeEach(() => {
    hashes.n = 0;
  });

  it('hashes the same expected secret once, then only what is presented', () => {
    const expected = `configured-key-${Math.random()}`;
    expect(timingSafeEqualString(expected, expected)).toBe(true);
    expect(hashes.n).toBe(2);
    for (let i = 0; i < 10; i++) expect(timingSafeEqualString(`wrong-${i}`, expected)).toBe(false);
    expect(timingSafeEqualString(expected, expected)).toBe(true);
    expect(hashes.n).toBe(2 + 11);
  });

  it('stays right for many expected secrets (the remembered digests are bounded)', () => {
    for (let i = 0; i < 600; i++) {
      expect(timingSafeEqualString(`key-${i}`, `key-${i}`)).toBe(true);
      expect(timingSafeEqualString(`key-${i}`, `key-${i + 1}`)).toBe(false);
    }
    expect(timingSafeEqualString('key-0', 'key-0')).toBe(true);
  });
});
