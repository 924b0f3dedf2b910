import { createAjv } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { apiBase, apiHeaders, configSchema } from './config.ts';
import { fixtureSettings } from './testing.ts';

describe('Cliniko settings', () => {
  const validate = createAjv({ allErrors: true, strict: false }).compile(configSchema);
  const { apiBaseUrl: _base, ...settings } = fixtureSettings;

  it('takes every cancellation reason code Cliniko lists, 31 (COVID-19 related) included, and no other', () => {
    for (const code of [10, 20, 30, 31, 40, 50, 60]) {
      expect([code, validate({ ...settings, cancellationReason: code })]).toEqual([code, true]);
    }
    expect(validate({ ...settings, cancellationReason: 35 })).toBe(false);
  });

  it('takes a User-Agent only with a name and a contact email in parentheses, as Cliniko requires', () => {
    const ua = (userAgent: string) => validate({ ...settings, userAgent });
    expect(ua('Switchyard at Example Clinic (it@example.com)')).toBe(true);
    expect([
      ua('Switchyard'),
      ua('Switchyard it@example.com'),
      ua('(it@example.com)'),
      ua('Switchyard (it)'),
    ]).toEqual([false, false, false, false]);
  });

  it('refuses a User-Agent that cannot be sent as a header, and takes any that can', () => {
    // Accepted before, then every call failed before it went out.
    for (const userAgent of [
      'hh\r\nX-Evil: 1 (it@example.com)',
      'Klinik 東京 (it@example.jp)',
      'nul\u0000 (it@x.ch)',
    ]) {
      expect(validate({ ...settings, userAgent }), JSON.stringify(userAgent)).toBe(false);
      expect(() => new Headers(apiHeaders({ ...settings, userAgent }))).toThrow(TypeError);
    }
    expect(validate({ ...settings, userAgent: 'tab\there (it@x.ch)' })).toBe(false);
    for (const userAgent of ['Switchyard at Example Clinic (it@example.com)', 'Clinique Genève (it@x.ch)']) {
      expect(validate({ ...settings, userAgent }), userAgent).toBe(true);
      expect(new Headers(apiHeaders({ ...settings, userAgent })).get('user-agent')).toBe(userAgent);
    }
  });

  it('takes a startFrom that is a date and time, and nothing else', () => {
    expect(validate({ ...settings, startFrom: '2026-01-01T00:00:00Z' })).toBe(true);
    expect(validate({ ...settings, startFrom: '2026-01-01T01:00:00+01:00' })).toBe(true);
    for (const startFrom of ['2026-01-01', '30d', 'yesterday'])
      expect(validate({ ...settings, startFrom }), startFrom).toBe(false);
  });

  it("reads the shard from the key's suffix, au1 for a key without one", () => {
    expect(apiBase({ ...settings, apiKey: 'MS0xLWl4SzYYYYdtR3V2HNOTAREALKEY-uk1' })).toBe(
      'https://api.uk1.cliniko.com/v1',
    );
    expect(apiBase({ ...settings, apiKey: 'MS0xLWl4SzYYYYdtR3V2HNOTAREALKEY' })).toBe(
      'https://api.au1.cliniko.com/v1',
    );
  });
});
