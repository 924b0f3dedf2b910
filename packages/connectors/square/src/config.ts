import type { JsonSchema } from '@switchyard/core';

/** Settings of one Square Appointments connector instance. */
export interface Config {
  /** The signature key of the Square webhook subscription (Developer Console → Webhooks). */
  signatureKey: string;
  /** During a rotation: the key being replaced, still accepted until it is removed. */
  previousSignatureKey?: string;
}

/** The header Square signs every notification in. */
export const SIGNATURE_HEADER = 'x-square-hmacsha256-signature';

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Square Appointments connector settings',
  type: 'object',
  required: ['signatureKey'],
  additionalProperties: false,
  properties: {
    signatureKey: {
      description:
        "The webhook subscription's signature key: Square signs each notification with it over the notification URL and the body (the URL must be server.publicUrl + /hooks/{instance}).",
      type: 'string',
      minLength: 8,
      'x-secret': true,
    },
    previousSignatureKey: {
      description:
        'During a key rotation: the signature key being replaced, still accepted until removed from the settings.',
      type: 'string',
      minLength: 8,
      'x-secret': true,
    },
  },
};
