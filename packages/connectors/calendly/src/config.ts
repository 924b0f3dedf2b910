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
  },
};
