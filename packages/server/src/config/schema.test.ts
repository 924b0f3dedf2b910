import { createAjv } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { acme, pushy } from './connectors.test-support.ts';
import { buildConfigSchema } from './schema.ts';

describe('buildConfigSchema', () => {
  it('attaches each connector’s settings schema with if/then on its name', () => {
    const schema = buildConfigSchema([pushy, acme]);
    const properties = schema.properties as Record<string, { items: Record<string, unknown> }>;
    const instance = properties.instances!.items as {
      properties: { connector: { enum: string[] } };
      allOf: unknown[];
    };
    expect(instance.properties.connector.enum).toEqual(['acme', 'pushy']);
    expect(instance.allOf[0]).toMatchObject({
      if: { properties: { connector: { const: 'acme' } } },
      // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword, not a thenable.
      then: { properties: { settings: { $ref: '#/$defs/connector-acme' } }, required: ['settings'] },
    });
    expect((schema.$defs as Record<string, { $id: string }>)['connector-acme']!.$id).toBe(
      'https://switchyard.dev/schemas/connectors/acme.json',
    );
  });

  it('compiles, and keeps a connector’s own $defs references working', () => {
    const validate = createAjv({ strict: false }).compile(buildConfigSchema([acme]));
    const config = (clientSecret: unknown) => ({
      version: 1,
      instances: [
        {
          id: 'a',
          connector: 'acme',
          settings: { apiKey: 'k', baseUrl: 'https://x.example', oauth: { clientSecret } },
        },
      ],
    });
    expect(validate(config('s'))).toBe(true);
    expect(validate(config(42))).toBe(false);
    expect(validate.errors?.[0]?.instancePath).toBe('/instances/0/settings/oauth/clientSecret');
  });
});
