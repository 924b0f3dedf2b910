import type { JsonSchema } from '@switchyard/core';

/** How long an access token from the instance's token endpoint is accepted, unless configured. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;

/**
 * Settings of one BookingBug / JRNI connector instance: at least one way for the vendor to
 * authenticate. Every configured way is accepted, so an instance can move from the legacy push to
 * JRNI's webhooks without a gap.
 */
export interface Config {
  /**
   * HTTP Basic username and password: the legacy push (Advanced Settings > API Settings) and JRNI's
   * "Basic User Authentication".
   */
  basicAuth?: { username: string; password: string };
  /** JRNI's "Basic token": the configured value is sent as is after `Authorization: Basic `. */
  basicToken?: string;
  /**
   * JRNI's OAuth 2.0 client credentials: JRNI fetches a token from the instance's token endpoint
   * (`POST /hooks/{instance}/oauth/token`, its `accessTokenUrl`) and sends it as a Bearer token.
   */
  oauth2?: { clientId: string; clientSecret: string; tokenTtlSeconds?: number };
}

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'BookingBug / JRNI connector settings',
  description:
    'At least one of basicAuth, basicToken and oauth2. Every configured one is accepted on every push.',
  type: 'object',
  additionalProperties: false,
  anyOf: [{ required: ['basicAuth'] }, { required: ['basicToken'] }, { required: ['oauth2'] }],
  properties: {
    basicAuth: {
      description:
        'HTTP Basic credentials: those configured in BookingBug under Advanced Settings > API Settings (Basic auth username / password), or JRNI\'s "Basic User Authentication".',
      type: 'object',
      required: ['username', 'password'],
      additionalProperties: false,
      properties: {
        username: {
          description: 'The Basic auth username entered in BookingBug / JRNI.',
          type: 'string',
          minLength: 1,
        },
        password: {
          description: 'The Basic auth password entered in BookingBug / JRNI (at least 16 characters).',
          type: 'string',
          minLength: 16,
          'x-secret': true,
        },
      },
    },
    basicToken: {
      description:
        'JRNI\'s "Basic token": the value JRNI sends as is after `Authorization: Basic ` (at least 16 characters).',
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    oauth2: {
      description:
        "JRNI's OAuth 2.0 client credentials. Give JRNI the accessTokenUrl https://<hub>/hooks/<instance>/oauth/token and these client id and secret; the hub answers with a short-lived Bearer token that it then accepts on the webhook.",
      type: 'object',
      required: ['clientId', 'clientSecret'],
      additionalProperties: false,
      properties: {
        clientId: { description: 'The client id entered in JRNI.', type: 'string', minLength: 1 },
        clientSecret: {
          description:
            'The client secret entered in JRNI (at least 32 characters): it also keys the tokens, so changing it revokes every token issued.',
          type: 'string',
          minLength: 32,
          'x-secret': true,
        },
        tokenTtlSeconds: {
          description: 'How long an issued access token is accepted, in seconds.',
          type: 'integer',
          minimum: 60,
          maximum: 86400,
          default: DEFAULT_TOKEN_TTL_SECONDS,
        },
      },
    },
  },
};
