import type { ConnectorError } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { authenticate } from './auth.ts';

const API_KEY = 'test-api-key-0123456789abcdef';

function refusal(headers: Record<string, string>, config = { apiKey: API_KEY }): string | undefined {
  try {
    authenticate(inboundRequest({ headers, body: { id: 'evt_1', type: 'booking.created' } }), config);
    return undefined;
  } catch (error) {
    expect((error as ConnectorError).kind).toBe('auth');
    return (error as ConnectorError).message;
  }
}

describe('authenticate', () => {
  it('accepts the configured key in the x-api-key header', () => {
    expect(refusal({ 'x-api-key': API_KEY })).toBeUndefined();
  });

  it('refuses a wrong or missing key', () => {
    expect(refusal({ 'x-api-key': `${API_KEY}x` })).toBe('the x-api-key header does not match');
    expect(refusal({})).toBe('the x-api-key header is missing');
  });

  it('reads a custom header name', () => {
    const config = { apiKey: API_KEY, headerName: 'X-Vendor-Key' };
    expect(refusal({ 'x-vendor-key': API_KEY }, config)).toBeUndefined();
    expect(refusal({ 'x-api-key': API_KEY }, config)).toContain('missing');
  });
});
