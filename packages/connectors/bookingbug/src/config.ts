import type { JsonSchema } from '@switchyard/core';

/** Whether BookingBug notifies the customer and staff of a cancel the hub makes, unless configured. */
export const DEFAULT_NOTIFY_ON_CANCEL = true;

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
  /**
   * The BookingBug / JRNI admin REST API, for commands (`appointment.cancel`,
   * `appointment.reschedule`, `appointment.mark_arrived`, `appointment.mark_no_show`,
   * `appointment.update`). Without it the instance only receives, and every command on its
   * appointments is refused at once.
   */
  adminApi?: AdminApiConfig;
}

/** The admin API settings (dev.bookingbug.com, REST API "Authentication" and "Admin Bookings"). */
export interface AdminApiConfig {
  /** The account's API host, e.g. `https://uk.bookingbug.com` (the `/api/v1` paths go below it). */
  baseUrl: string;
  /** Sent as the `App-Id` header on every call. */
  appId: string;
  /** Sent as the `App-Key` header; accounts set up later need only the App-Id. */
  appKey?: string;
  /** The administrator who logs in (`POST /api/v1/login`) for an `Auth-Token`. */
  email: string;
  password: string;
  /**
   * The company to log in against (sent as `id`: the parent/child form of the login), and the
   * company of a booking whose known state names none.
   */
  companyId?: number;
  /** Sent as `notify` with a cancel: BookingBug then emails the customer and staff. */
  notifyOnCancel?: boolean;
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
    adminApi: {
      description:
        'The BookingBug / JRNI admin REST API, used by commands (appointment.cancel, appointment.reschedule, appointment.mark_arrived, appointment.mark_no_show, appointment.update). Without it every command on this instance is refused at once (SY_COMMAND_UNSUPPORTED).',
      type: 'object',
      required: ['baseUrl', 'appId', 'email', 'password'],
      additionalProperties: false,
      properties: {
        baseUrl: {
          description:
            "The account's API host, e.g. https://uk.bookingbug.com; calls go to <baseUrl>/api/v1/...",
          type: 'string',
          format: 'uri',
        },
        appId: {
          description:
            'The App-Id (BookingBug: Advanced Settings > API Settings), sent as the App-Id header.',
          type: 'string',
          minLength: 1,
        },
        appKey: {
          description:
            'The App-Key, sent as the App-Key header when set (accounts set up later need only the App-Id).',
          type: 'string',
          minLength: 1,
          'x-secret': true,
        },
        email: {
          description: 'The email of the administrator the hub logs in as (POST /api/v1/login).',
          type: 'string',
          minLength: 1,
        },
        password: {
          description: "That administrator's password.",
          type: 'string',
          minLength: 1,
          'x-secret': true,
        },
        companyId: {
          description:
            'The company to log in against (sent as id in the login: the parent/child form), and the company of a booking whose known state names none.',
          type: 'integer',
          minimum: 1,
        },
        notifyOnCancel: {
          description:
            'Sent as notify with a cancel: BookingBug then notifies the customer and staff as for a cancel made in BookingBug.',
          type: 'boolean',
          default: DEFAULT_NOTIFY_ON_CANCEL,
        },
      },
    },
  },
};
