// biome-ignore-all lint/suspicious/noTemplateCurlyInString: secret references are written ${env:...} on purpose.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileDefault, hasReference, resolveReferences } from './secrets.ts';

const baseDir = mkdtempSync(join(tmpdir(), 'switchyard-secrets-'));

describe('secret references', () => {
  it('resolves env references, embedded and repeated', () => {
    const result = resolveReferences('postgres://${env:U}:${env:P}@db/${env:U}', {
      env: { U: 'hub', P: 'pw-1234' },
      baseDir,
    });
    expect(result).toMatchObject({
      ok: true,
      value: 'postgres://hub:pw-1234@db/hub',
      secrets: ['hub', 'pw-1234', 'hub'],
    });
  });

  it('uses the default when the variable is unset or empty, and only then', () => {
    expect(resolveReferences('${env:A:-fallback}', { env: {}, baseDir })).toMatchObject({
      value: 'fallback',
    });
    expect(resolveReferences('${env:A:-fallback}', { env: { A: '' }, baseDir })).toMatchObject({
      value: 'fallback',
    });
    expect(resolveReferences('${env:A:-fallback}', { env: { A: 'set' }, baseDir })).toMatchObject({
      value: 'set',
    });
  });

  it('reads files relative to the base directory, dropping the trailing newline only', () => {
    writeFileSync(join(baseDir, 'token'), '  spaced token \r\n');
    expect(resolveReferences('${file:token}', { env: {}, baseDir })).toMatchObject({
      ok: true,
      value: '  spaced token ',
    });
  });

  it('refuses an empty file', () => {
    writeFileSync(join(baseDir, 'empty'), '\n');
    const result = resolveReferences('${file:empty}', { env: {}, baseDir });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]).toMatch(/is empty/);
  });

  it('names the reference, never a value, in errors', () => {
    const result = resolveReferences('${env:SET}${env:MISSING}', {
      env: { SET: 'value-that-must-not-leak' },
      baseDir,
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors).toEqual([
        'secret reference ${env:MISSING}: environment variable MISSING is not set',
      ]);
      expect(JSON.stringify(result)).not.toContain('value-that-must-not-leak');
    }
  });

  it('keeps $${ as a literal ${', () => {
    expect(hasReference('a$${env:X}b')).toBe(false);
    expect(resolveReferences('a$${env:X}b', { env: {}, baseDir })).toMatchObject({
      ok: true,
      value: 'a${env:X}b',
    });
    expect(hasReference('a${env:X}b')).toBe(true);
  });

  it('rejects malformed references', () => {
    for (const text of ['${env:}', '${env:1X}', '${file:}', '${secret:x}', '${}']) {
      const result = resolveReferences(text, { env: {}, baseDir });
      expect(result.ok, text).toBe(false);
    }
  });

  it('refuses a reference without its closing brace rather than taking it as the literal value', () => {
    // `adminToken: "${env:ADMIN_TOKEN"` was accepted as an 18-character admin token anyone reading the file knows.
    for (const text of ['${env:SWITCHYARD_ADMIN_TOKEN', 'postgres://hub:${file:pw.txt@db/hub', 'ab${']) {
      expect(hasReference(text), text).toBe(true);
      const result = resolveReferences(text, { env: { SWITCHYARD_ADMIN_TOKEN: 'x' }, baseDir });
      expect(result, text).toMatchObject({ ok: false, errors: [expect.stringContaining('no closing }')] });
    }
  });

  it('fileDefault: only the default the file writes, and only while its variable is unset', () => {
    expect(fileDefault('${env:KEY:-demo-key}', {})).toBe('demo-key');
    expect(fileDefault('${env:KEY:-demo-key}', { KEY: '' })).toBe('demo-key');
    expect(fileDefault('${env:KEY:-demo-key}', { KEY: 'from-the-environment' })).toBeUndefined();
    expect(fileDefault('${env:KEY}', {})).toBeUndefined();
    expect(fileDefault('${file:key.txt}', {})).toBeUndefined();
    expect(fileDefault('pre-${env:KEY:-demo}', {})).toBeUndefined();
  });
});
