import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConnectorError } from './connector-error.ts';
import { errorCodes } from './registry.ts';
import { isSwitchyardError, SwitchyardError } from './switchyard-error.ts';

const docPath = new URL('../../../../docs/errors.md', import.meta.url);

/** The codes with a `## SY_...` section in docs/errors.md, and each section's text. */
function documentedSections(markdown: string): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = markdown.split(/^## /m).slice(1);
  for (const part of parts) {
    const newline = part.indexOf('\n');
    const heading = (newline === -1 ? part : part.slice(0, newline)).trim();
    if (sections.has(heading)) throw new Error(`docs/errors.md has two sections for ${heading}`);
    sections.set(heading, newline === -1 ? '' : part.slice(newline).trim());
  }
  return sections;
}

describe('error registry', () => {
  const sections = documentedSections(readFileSync(docPath, 'utf8'));
  const codes = Object.keys(errorCodes);

  it('documents every code in docs/errors.md', () => {
    const undocumented = codes.filter((code) => !sections.has(code));
    expect(undocumented, 'add a "## CODE" section to docs/errors.md for each').toEqual([]);
  });

  it('documents no code that is not in the registry', () => {
    const unknown = [...sections.keys()].filter((heading) => !(heading in errorCodes));
    expect(unknown, 'docs/errors.md sections must be registry codes').toEqual([]);
  });

  it('gives every documented code a real explanation', () => {
    for (const code of codes) {
      const text = sections.get(code);
      if (text === undefined) continue;
      expect(text.length, `${code} needs a paragraph`).toBeGreaterThan(40);
    }
  });

  it('uses well-formed codes, statuses and titles', () => {
    for (const [code, spec] of Object.entries(errorCodes)) {
      expect(code).toMatch(/^SY_[A-Z0-9]+(_[A-Z0-9]+)+$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      expect(spec.title.length).toBeGreaterThan(0);
    }
  });
});

describe('SwitchyardError', () => {
  it('takes status and title from the registry', () => {
    const error = new SwitchyardError('SY_EVENT_UNKNOWN_TYPE', 'no schema for x', { details: { type: 'x' } });
    expect(error.status).toBe(422);
    expect(error.title).toBe(errorCodes.SY_EVENT_UNKNOWN_TYPE.title);
    expect(error.name).toBe('SwitchyardError');
    expect(error.details).toEqual({ type: 'x' });
    expect(isSwitchyardError(error)).toBe(true);
    expect(isSwitchyardError(new Error('x'))).toBe(false);
    expect(isSwitchyardError({ code: 'SY_EVENT_INVALID' })).toBe(true);
    expect(isSwitchyardError({ code: 'NOT_OURS' })).toBe(false);
  });

  it('maps connector error kinds to codes', () => {
    expect(ConnectorError.auth('x').code).toBe('SY_CONNECTOR_AUTH');
    expect(ConnectorError.badRequest('x').status).toBe(400);
    const transient = ConnectorError.transient('x', { retryAfterMs: 5000 });
    expect([transient.code, transient.kind, transient.retryAfterMs]).toEqual([
      'SY_CONNECTOR_TRANSIENT',
      'transient',
      5000,
    ]);
    expect(ConnectorError.permanent('x').name).toBe('ConnectorError');
  });
});
