import { defineConnector, emit, isSwitchyardError, type JsonSchema } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { checkedSettings } from './settings.ts';

/** A push connector whose only part under test is its settings schema. */
function connectorWith<Config>(name: string, displayName: string, configSchema: JsonSchema) {
  return defineConnector<Config>({
    name,
    version: '1.0.0',
    displayName,
    configSchema,
    eventMap: [],
    push: {
      routes: [{ name: 'default', path: '' }],
      authenticate() {},
      credentials: () => ({}),
      parse: () => [],
    },
    normalize: async () => emit(),
    encode: () => ({ route: 'default', body: {} }),
  });
}

const connector = connectorWith<{ apiKey: string; region: string; agent?: string }>(
  'settings-check',
  'Settings check',
  {
    type: 'object',
    required: ['apiKey'],
    additionalProperties: false,
    properties: {
      apiKey: { type: 'string', minLength: 8, 'x-secret': true },
      region: { enum: ['eu', 'us'], default: 'eu' },
      agent: { type: 'string', pattern: '^[ -~]+$', 'x-message': 'must be one line of printable ASCII' },
    },
  },
);

describe('checkedSettings', () => {
  it('fills in defaults and leaves the input untouched', () => {
    const input = { apiKey: 'a-long-key' };
    expect(checkedSettings(connector, input)).toEqual({ apiKey: 'a-long-key', region: 'eu' });
    expect(input).toEqual({ apiKey: 'a-long-key' });
  });

  it('reports every problem with its path, never the value', () => {
    let error: unknown;
    try {
      checkedSettings(connector, { apiKey: 'short', region: 'mars', extra: true });
    } catch (e) {
      error = e;
    }
    expect(isSwitchyardError(error) && error.code).toBe('SY_PIPELINE_INVALID_INPUT');
    const details = (error as { details: { errors: { path: string }[] } }).details;
    expect(details.errors.map((e) => e.path).sort()).toEqual([
      '/settings',
      '/settings/apiKey',
      '/settings/region',
    ]);
    expect(String((error as Error).message)).not.toContain('short');
  });

  it('names an unknown setting, as the config file and the other admin inputs do', () => {
    // Before, the API answered "/settings must NOT have additional properties": which field, it
    // did not say (validate named it, and a subscription's unknown field is named).
    expect(() => checkedSettings(connector, { apiKey: 'long-enough', regoin: 'us' })).toThrow(
      `settings do not match the settings-check connector's schema: /settings has an unknown field "regoin"`,
    );
  });

  it("words a problem with the schema's x-message, as the config file's check does", () => {
    // Before, the API answered ajv's 'must match pattern "^[ -~]+$"' where validate said the words.
    expect(() => checkedSettings(connector, { apiKey: 'long-enough', agent: 'a\r\nb' })).toThrow(
      "settings do not match the settings-check connector's schema: /settings/agent must be one line of printable ASCII",
    );
  });

  it('refuses settings nested too deeply to copy as invalid input, not as a failure of the hub', () => {
    const deep = JSON.parse(`{"apiKey":"a-long-key","x":${'['.repeat(50_000)}${']'.repeat(50_000)}}`);
    let error: unknown;
    try {
      checkedSettings(connector, deep);
    } catch (e) {
      error = e;
    }
    expect(isSwitchyardError(error) && error.code).toBe('SY_PIPELINE_INVALID_INPUT');
    expect(String((error as Error).message)).toContain('nested too deeply');
  });
});

describe('checkedSettings on URL-valued settings', () => {
  const vendor = connectorWith<{ apiBaseUrl: string; adminApi?: { host: string } }>(
    'url-check',
    'URL check',
    {
      type: 'object',
      additionalProperties: false,
      properties: {
        apiBaseUrl: { type: 'string', format: 'uri', default: 'https://api.vendor.example/v1' },
        adminApi: {
          type: 'object',
          additionalProperties: false,
          properties: { host: { type: 'string', format: 'hostname' } },
        },
      },
    },
  );

  function problems(settings: Record<string, unknown>): unknown {
    try {
      checkedSettings(vendor, settings as never);
    } catch (error) {
      expect(isSwitchyardError(error) && error.code).toBe('SY_PIPELINE_INVALID_INPUT');
      return (error as { details?: { errors?: unknown } }).details?.errors;
    }
    return undefined;
  }

  it('refuses at save what the vendor calls never reach: a metadata address or name, an unspecified one', () => {
    // Was saved, and the instance failed only at its first call (a secrets audit).
    expect(problems({ apiBaseUrl: 'http://169.254.169.254/latest/meta-data/' })).toEqual([
      {
        path: '/settings/apiBaseUrl',
        message: 'is never called: metadata address 169.254.169.254 is not allowed',
      },
    ]);
    expect(problems({ apiBaseUrl: 'http://[fd00:ec2::254]/v1' })).toEqual([
      { path: '/settings/apiBaseUrl', message: expect.stringContaining('metadata address') },
    ]);
    expect(problems({ apiBaseUrl: 'http://metadata.google.internal/computeMetadata/v1' })).toEqual([
      { path: '/settings/apiBaseUrl', message: expect.stringContaining('cloud metadata endpoint') },
    ]);
    expect(problems({ adminApi: { host: '0.0.0.0' } })).toEqual([
      { path: '/settings/adminApi/host', message: expect.stringContaining('unspecified address 0.0.0.0') },
    ]);
  });

  it('keeps what the vendor calls may reach: on-premises and loopback addresses, other link-local ones, names', () => {
    for (const apiBaseUrl of [
      'https://api.vendor.example/v1',
      'http://10.0.0.5:8080/api',
      'http://127.0.0.1:19100/api',
      'http://169.254.10.20/api',
      'http://[fe80::1]/api',
    ])
      expect(problems({ apiBaseUrl }), apiBaseUrl).toBeUndefined();
  });
});
