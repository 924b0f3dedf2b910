import { createAjv } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { resolveTracing } from '../telemetry/settings.ts';
import { acme, pushy } from './connectors.test-support.ts';
import { buildConfigSchema } from './schema.ts';
import { tracingDefaults } from './units.ts';

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

  it('describes traces in the encoding the hub sends without an OTEL_* protocol', () => {
    const traces = (
      buildConfigSchema([]).properties as Record<
        string,
        { properties: Record<string, { description: string }> }
      >
    ).telemetry!.properties.traces!.description;
    const sent = resolveTracing(
      { endpoint: 'http://collector:4318/v1/traces' },
      {},
      tracingDefaults(),
    )!.protocol;
    // The first encoding the description names is the one sent by default.
    expect(/protobuf|JSON/.exec(traces)?.[0]).toBe(sent === 'http/protobuf' ? 'protobuf' : 'JSON');
  });
});
