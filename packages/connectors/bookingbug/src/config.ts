import type { JsonSchema } from '@switchyard/core';

/** Settings of one BookingBug / JRNI connector instance. */
export interface Config {
  /** The HTTP Basic credentials entered in BookingBug (Advanced Settings > API Settings). */
  basicAuth: { username: string; password: string };
}

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'BookingBug / JRNI connector settings',
  type: 'object',
  required: ['basicAuth'],
  additionalProperties: false,
  properties: {
    basicAuth: {
      description:
        'The HTTP Basic credentials configured in BookingBug under Advanced Settings > API Settings (Basic auth username / password). Every push must carry them.',
      type: 'object',
      required: ['username', 'password'],
      additionalProperties: false,
      properties: {
        username: {
          description: 'The Basic auth username entered in BookingBug.',
          type: 'string',
          minLength: 1,
        },
        password: {
          description: 'The Basic auth password entered in BookingBug (at least 16 characters).',
          type: 'string',
          minLength: 16,
          'x-secret': true,
        },
      },
    },
  },
};
