import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED, secretScrubber } from './logger.ts';

function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: string[] = [];
  const logger = createLogger({ ...options, destination: { write: (line: string) => lines.push(line) } });
  return { logger, text: () => lines.join('') };
}

describe('createLogger', () => {
  it('redacts known secret fields whatever they hold', () => {
    const { logger, text } = capture();
    logger.info(
      {
        req: { headers: { authorization: 'Bearer abc', 'x-api-key': 'key-1', accept: 'json' } },
        settings: { apiKey: 'api-1', password: 'pw-1', clientSecret: 'cs-1', nested: { token: 'tok-1' } },
        adminToken: 'admin-1',
        secretKey: 'sk-1',
      },
      'request',
    );
    const out = text();
    for (const value of ['Bearer abc', 'key-1', 'api-1', 'pw-1', 'cs-1', 'tok-1', 'admin-1', 'sk-1'])
      expect(out).not.toContain(value);
    expect(out).toContain('"accept":"json"');
    expect(out.match(/\[redacted\]/g)?.length).toBe(8);
  });

  it('scrubs known secret values from any part of any line, JSON-escaped too', () => {
    const secret = 'p@ss"word\\with-quotes';
    const { logger, text } = capture({ secrets: ['vendor-secret-value', secret] });
    logger.error(
      { err: new Error('vendor said: bad key vendor-secret-value'), echo: secret },
      'failed with vendor-secret-value',
    );
    const out = text();
    expect(out).not.toContain('vendor-secret-value');
    expect(out).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(out).toContain(`failed with ${REDACTED}`);
    expect(out).toContain(`"echo":"${REDACTED}"`);
  });

  it('scrubs pretty output too', () => {
    const { logger, text } = capture({ pretty: true, secrets: ['vendor-secret-value'] });
    logger.warn({ detail: 'vendor-secret-value' }, 'hello vendor-secret-value');
    expect(text()).toMatch(/WARN.*hello \[redacted\]/);
    expect(text()).not.toContain('vendor-secret-value');
    expect(text()).not.toMatch(/^\{/);
  });

  it('respects the level', () => {
    const { logger, text } = capture({ level: 'warn' });
    logger.info('quiet');
    logger.warn('loud');
    expect(text()).not.toContain('quiet');
    expect(text()).toContain('loud');
  });
});

describe('secretScrubber', () => {
  it('replaces the longest secret first and leaves very short values alone', () => {
    const scrub = secretScrubber(['abc', 'token', 'token-extended']);
    expect(scrub('token-extended token abc')).toBe('[redacted] [redacted] abc');
  });

  it('replaces the start of a secret that ends a text cut inside it, and no shorter start', () => {
    const key = 'cl-api-key-0123456789abcdef';
    const scrub = secretScrubber([key], { cutEnds: true });
    // Only when asked (a command's vendor words): a log line ends with its own JSON.
    expect(secretScrubber([key])('the status is cl-api')).toBe('the status is cl-api');
    // A connector's message keeps the vendor's first 200 characters: the key straddled the cut.
    const said = `Unauthorized (${'x'.repeat(170)}) key ${key} was refused`.slice(0, 200);
    expect(scrub(`Cliniko book answered 401: ${said}`)).toMatch(/key \[redacted\]$/);
    expect(scrub(`Cliniko book answered 401: ${said}`)).not.toContain(key.slice(0, 6));
    expect(scrub('the status is cl-api')).toBe('the status is [redacted]');
    expect(scrub('the status is cl-ap')).toBe('the status is cl-ap');
    expect(scrub(`${key.slice(0, 10)} in the middle`)).toBe(`${key.slice(0, 10)} in the middle`);
  });

  it('replaces a secret URL-encoded and base64-encoded, as a vendor echoing the request quotes it', () => {
    const key = 'MS0xMjM+NDU2/Nzg5=-au2';
    const scrub = secretScrubber([key]);
    const basic = `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    // The key at each of base64's three alignments, as user name, as password, and alone.
    const encodings = [
      basic,
      Buffer.from(`user:${key}`).toString('base64'),
      Buffer.from(`u:${key}`).toString('base64'),
      Buffer.from(key).toString('base64url'),
      encodeURIComponent(key),
      encodeURIComponent(key).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
      new URLSearchParams({ api_key: `${key} x` }).toString(),
      // A JSON text answer of a vendor that escapes slashes (PHP's json_encode), kept as text.
      JSON.stringify({ error: `bad key ${key}` }).replace(/\//g, '\\/'),
    ];
    for (const text of encodings) {
      const scrubbed = scrub(`unauthorized: ${text}`);
      expect(scrubbed, text).toContain('[redacted]');
      // What stays (at most two characters at each end of the run) does not give the key back.
      expect(scrubbed.length, text).toBeLessThan(`unauthorized: ${text}`.length - key.length / 2);
    }
    expect(scrub('MS0xMjM unrelated base64 aGVsbG8gd29ybGQ=')).toBe(
      'MS0xMjM unrelated base64 aGVsbG8gd29ybGQ=',
    );
  });
});
