import { describe, expect, it } from 'vitest';
import { REPLACEMENT_CHARACTER, storableText } from './json.ts';

describe('storableText', () => {
  it('replaces NUL and lone surrogates, keeps pairs and everything else, and returns the same string when clean', () => {
    expect(storableText('ok\u0000!')).toBe(`ok${REPLACEMENT_CHARACTER}!`);
    expect(storableText('a\ud800b\udc00c')).toBe('a\uFFFDb\uFFFDc');
    expect(storableText('emoji \ud83d\ude00 stays')).toBe('emoji 😀 stays');
    const clean = 'Zoë Kowalska, ul. Długa 5';
    expect(storableText(clean)).toBe(clean);
    // Twice in a row: the global pattern keeps no state between calls.
    expect(storableText('\u0000\u0000')).toBe('\uFFFD\uFFFD');
    expect(storableText('\u0000')).toBe('\uFFFD');
  });
});
