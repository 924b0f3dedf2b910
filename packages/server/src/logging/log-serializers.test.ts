import { describe, expect, it } from 'vitest';
import { redactUrl, requestSerializer } from './log-serializers.ts';

describe('redactUrl', () => {
  it('hides path credentials below /hooks/{instance} and every query value', () => {
    expect(redactUrl('/hooks/cw/3f9a0c-secret')).toBe('/hooks/cw/[redacted]');
    expect(redactUrl('/hooks/rel/k/the-key')).toBe('/hooks/rel/[redacted]');
    expect(redactUrl('/hooks/cw')).toBe('/hooks/cw');
    expect(redactUrl('/hooks/cw/')).toBe('/hooks/cw/');
    expect(redactUrl('/hooks/cw?token=abc&x=1')).toBe('/hooks/cw?token=[redacted]&x=[redacted]');
    expect(redactUrl('/v1/subscriptions?limit=5')).toBe('/v1/subscriptions?limit=[redacted]');
    expect(redactUrl('/healthz')).toBe('/healthz');
  });

  it('serializes a request without its secrets', () => {
    const out = requestSerializer({
      raw: {},
      method: 'POST',
      url: '/hooks/in/s3cr3t',
      host: 'h',
      ip: '127.0.0.1',
      socket: { remotePort: 5 },
    });
    expect(out).toEqual({
      method: 'POST',
      url: '/hooks/in/[redacted]',
      host: 'h',
      remoteAddress: '127.0.0.1',
      remotePort: 5,
    });
    expect(JSON.stringify(out)).not.toContain('s3cr3t');
    expect(requestSerializer({ url: '/hooks/in/s3cr3t', headers: { accept: 'json' } } as never)).toEqual({
      url: '/hooks/in/[redacted]',
      headers: { accept: 'json' },
    });
  });
});
