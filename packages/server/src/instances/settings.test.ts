import { defineConnector, emit, isSwitchyardError } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { checkedSettings } from './settings.ts';

const connector = defineConnector<{ apiKey: string; region: string; agent?: string }>({
  name: 'settings-check',
  version: '1.0.0',
  displayName: 'Settings check',
  configSchema: {
    type: 'object',
    required: ['apiKey'],
    additionalProperties: false,
    properties: {
      apiKey: { type: 'string', minLength: 8, 'x-secret': true },
      region: { enum: ['eu', 'us'], default: 'eu' },
      agent: { type: 'string', pattern: '^[ -~]+$', 'x-message': 'must be one line of printable ASCII' },
    },
  },
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
