import type { JsonSchema } from '@switchyard/core';

/** Settings of one Zz Scaffold Check With A Rather Long Nm connector instance. */
export interface Config {
  /** The request header that carries the shared API key (case-insensitive). */
  headerName?: string;
  /** The shared API key Zz Scaffold Check With A Rather Long Nm sends with every push. */
  apiKey: string;
}

export const DEFAULT_HEADER_NAME = 'x-api-key';

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Zz Scaffold Check With A Rather Long Nm connector settings',
  type: 'object',
  required: ['apiKey'],
  additionalProperties: false,
  properties: {
    headerName: {
      description: 'The request header that carries the API key (case-insensitive).',
      type: 'string',
      minLength: 1,
      default: DEFAULT_HEADER_NAME,
    },
    apiKey: {
      description: 'The shared API key the vendor sends with every push (at least 16 characters).',
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
  },
};
