import type { JsonSchema } from '@switchyard/core';

/** Settings of one Square Appointments connector instance. */
export interface Config {
  /** The signature key of the Square webhook subscription (Developer Console → Webhooks). */
  signatureKey: string;
  /** During a rotation: the key being replaced, still accepted until it is removed. */
  previousSignatureKey?: string;
  /**
   * An access token of the seller's account (a personal access token, or an OAuth token with
   * APPOINTMENTS_WRITE / APPOINTMENTS_ALL_WRITE): what commands call the Bookings API with. Without
   * it the instance takes webhooks only and the hub refuses its commands at once.
   */
  accessToken?: string;
  /** The API base URL: production by default, `https://connect.squareupsandbox.com/v2` for the sandbox; tests point it at the simulator. */
  apiBaseUrl?: string;
}

/** Square's production API (https://developer.squareup.com/reference/square/bookings-api/retrieve-booking, its cURL example). */
export const DEFAULT_API_BASE_URL = 'https://connect.squareup.com/v2';
/**
 * The API version every call names (`Square-Version`): pinned, so a change of Square's answers
 * comes with a change of this line, not with the seller's app settings.
 */
export const SQUARE_VERSION = '2025-01-23';

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
    accessToken: {
      description:
        "An access token of the seller's Square account with APPOINTMENTS_WRITE (and APPOINTMENTS_ALL_WRITE for seller-level writes): commands call the Bookings API with it. Without it the instance takes webhooks only.",
      type: 'string',
      minLength: 8,
      'x-secret': true,
    },
    apiBaseUrl: {
      description:
        'The Square API base URL: https://connect.squareup.com/v2 (production), https://connect.squareupsandbox.com/v2 (sandbox); tests point it at the simulator.',
      type: 'string',
      format: 'uri',
      default: DEFAULT_API_BASE_URL,
    },
  },
};

/** The API base without a trailing slash. */
export function apiBase(config: Config): string {
  return (config.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, '');
}

/** The headers of every Bookings API call: the bearer token and the pinned `Square-Version`. */
export function apiHeaders(config: Config): Record<string, string> {
  return {
    authorization: `Bearer ${config.accessToken ?? ''}`,
    'square-version': SQUARE_VERSION,
    accept: 'application/json',
  };
}
