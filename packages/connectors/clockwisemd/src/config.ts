import { type JsonSchema, pathSegmentSecretRule } from '@switchyard/core';

/** Where the Clockwise.MD webhook puts the shared key. */
export type AuthMode = 'path' | 'header' | 'either';

/** Settings of one Clockwise.MD connector instance. */
export interface Config {
  /** The shared key Clockwise.MD sends, in the URL path (`/hooks/{instance}/{key}`) and/or the `Authtoken` header. */
  auth: { mode: AuthMode; key: string };
  /** Base URL of the Clockwise.MD REST API. */
  apiBaseUrl?: string;
  /** The REST API key (sent as the `Authtoken` header). Without it, events are not enriched. */
  apiKey?: string;
  /** Fetch `GET /appointments/{id}` to enrich each event with the appointment's details. */
  enrich?: boolean;
}

export const DEFAULT_API_BASE_URL = 'https://api.clockwisemd.com/v1';

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Clockwise.MD connector settings',
  type: 'object',
  required: ['auth'],
  additionalProperties: false,
  properties: {
    auth: {
      description:
        'How Clockwise.MD proves a webhook is genuine: a shared key in the URL path (/hooks/{instance}/{key}), in the Authtoken header, or either.',
      type: 'object',
      required: ['key'],
      additionalProperties: false,
      properties: {
        mode: {
          description:
            'path: the key must be the last URL segment; header: the key must be in the Authtoken header; either: one of the two must match.',
          enum: ['path', 'header', 'either'],
          default: 'either',
        },
        key: {
          description:
            'The shared key given to Clockwise.MD (at least 16 characters). With mode path it is one URL segment: no /, ?, #, % or whitespace (refused when saved); with header or either, any string.',
          type: 'string',
          minLength: 16,
          'x-secret': true,
        },
      },
      ...pathSegmentSecretRule('key'),
    },
    apiBaseUrl: {
      description: 'Base URL of the Clockwise.MD REST API used for enrichment.',
      type: 'string',
      format: 'uri',
      default: DEFAULT_API_BASE_URL,
    },
    apiKey: {
      description:
        'Clockwise.MD REST API key, sent as the Authtoken header on GET /appointments/{id} (and by commands). Without it nothing is enriched, whatever enrich says (events carry enrichment: "none").',
      type: 'string',
      minLength: 1,
      'x-secret': true,
    },
    enrich: {
      description:
        'Read each appointment from the REST API so events carry times and patient details; the webhook itself only says which appointment and what happened.',
      type: 'boolean',
      default: true,
    },
  },
};

/** The settings with defaults applied (the hub may or may not have applied them already). */
export function resolveConfig(
  config: Config,
): Required<Omit<Config, 'apiKey'>> & { apiKey: string | undefined } {
  return {
    auth: { mode: config.auth?.mode ?? 'either', key: config.auth?.key ?? '' },
    apiBaseUrl: (config.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, ''),
    apiKey: config.apiKey,
    enrich: config.enrich ?? true,
  };
}
