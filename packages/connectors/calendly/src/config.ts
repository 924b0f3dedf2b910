import type { JsonSchema } from '@switchyard/core';

/** Settings of one Calendly connector instance. */
export interface Config {
  /** The webhook subscription's signing key: Calendly signs every push with it (HMAC-SHA256). */
  signingKey: string;
  /** During a rotation: the secret being replaced, still accepted until it is removed. */
  previousSigningKey?: string;
  /** The request header that carries the signature (case-insensitive). */
  signatureHeader?: string;
  /** How far the signature's timestamp may be from the receive time, in seconds. */
  toleranceSeconds?: number;
  /**
   * A bearer token of Calendly's API v2 for commands: a personal access token, or an OAuth access
   * token, with the `scheduled_events:read` and `:write` scopes (and `users:read`, an admin's or
   * owner's, for the lookup of a booking whose answer was lost). Without it the instance takes no commands.
   */
  apiToken?: string;
  /** The API base URL (tests point it at the simulator). */
  apiBaseUrl?: string;
}

/** Calendly's header, `Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex>`, lowercase as the hub hands it. */
export const DEFAULT_SIGNATURE_HEADER = 'calendly-webhook-signature';
/**
 * Three minutes, tighter than the core default of 300 s: Calendly signs each delivery attempt anew
 * (a retry is never refused as stale), and three minutes is the window the verification guides
 * for Calendly use (Hookdeck's "calendly-webhooks"; Calendly's "Webhook Signatures" page says to
 * refuse old timestamps without a number we could read).
 */
export const DEFAULT_TOLERANCE_SECONDS = 180;
/** Calendly's API v2 (developer.calendly.com/api-docs: every path is under this host). */
export const DEFAULT_API_BASE_URL = 'https://api.calendly.com';

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Calendly connector settings',
  type: 'object',
  required: ['signingKey'],
  additionalProperties: false,
  properties: {
    signingKey: {
      description:
        "The webhook subscription's signing key (`signing_key` when the subscription was created with a personal access token; the OAuth app's webhook signing key otherwise): Calendly signs every push with it, HMAC-SHA256 of `<t>.<body>` (at least 16 characters).",
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    previousSigningKey: {
      description:
        'During a rotation (a subscription re-created with a new signing key, or two subscriptions to this URL): the key being replaced, still accepted until removed from the settings.',
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    signatureHeader: {
      description:
        'The request header that carries the signature, `t=<unix seconds>,v1=<hex HMAC>` (case-insensitive).',
      type: 'string',
      minLength: 1,
      default: DEFAULT_SIGNATURE_HEADER,
    },
    toleranceSeconds: {
      description:
        'How far the signature timestamp may be from the receive time, in seconds, either way: older signatures are refused as replays.',
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: DEFAULT_TOLERANCE_SECONDS,
    },
    apiToken: {
      description:
        "For commands: a bearer token of Calendly's API v2, a personal access token or an OAuth access token, with the `scheduled_events:read` and `scheduled_events:write` scopes (each command reads the event or the invitee, then cancels the event or marks or unmarks a no-show; a booking goes to the Scheduling API, on paid plans) and, for the lookup of a booking whose answer was lost, `users:read` and an organization admin's or owner's role (it lists the organization's scheduled events). Without it the instance takes no commands.",
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    apiBaseUrl: {
      description: "Calendly's API base URL (simulators and tests point it at loopback).",
      type: 'string',
      format: 'uri',
      default: DEFAULT_API_BASE_URL,
    },
  },
};

/**
 * The API base without a trailing slash.
 *
 * @example
 * ```ts
 * apiBase({ signingKey }); // 'https://api.calendly.com'
 * ```
 */
export function apiBase(config: Config): string {
  return (config.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, '');
}

/**
 * The headers of every API call: the bearer token (developer.calendly.com/api-docs,
 * "Authentication": personal access tokens and OAuth tokens alike).
 *
 * @example
 * ```ts
 * apiHeaders({ signingKey, apiToken: 'eyJ…' }); // { authorization: 'Bearer eyJ…', accept: 'application/json' }
 * ```
 */
export function apiHeaders(config: Config): Record<string, string> {
  return { authorization: `Bearer ${config.apiToken ?? ''}`, accept: 'application/json' };
}
