import type { JsonSchema } from '@switchyard/core';

/** Settings of one Quable PIM connector instance. */
export interface Config {
  /**
   * The exact `Authorization` header value chosen when the webhook was set up in Quable (e.g.
   * `Bearer 3f…` or any opaque string). Quable sends it unchanged on every notification.
   */
  authorization: string;
}

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Quable PIM connector settings',
  type: 'object',
  required: ['authorization'],
  additionalProperties: false,
  properties: {
    authorization: {
      description:
        'The exact Authorization header value entered when the webhook was created in Quable (compared whole, case-sensitive, e.g. "Bearer <random>"). Quable signs nothing, so make it long and random (at least 16 characters).',
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
  },
};
