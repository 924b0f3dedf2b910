import { IP_OR_CIDR_SCHEMA, type JsonSchema } from '@switchyard/core';

/**
 * Settings of one Docplanner instance (`settings:` in switchyard.yaml).
 *
 * @example
 * ```ts
 * const config: Config = {
 *   domain: 'znanylekarz.pl',
 *   clientId: '123_abc',
 *   clientSecret: 's3cret',
 *   pushAuth: { headerName: 'x-api-key', apiKey: 'k3y' },
 *   allowedSourceIps: ['185.60.0.0/22'],
 * };
 * ```
 */
export interface Config {
  /** The Docplanner country site, e.g. `znanylekarz.pl`, `doctoralia.es`, `miodottore.it`. */
  domain?: string;
  /** Overrides `https://www.{domain}` (tests and simulators point it to loopback). */
  apiBaseUrl?: string;
  /** OAuth2 client id for the integration API (pull and booking re-reads). */
  clientId?: string;
  /** OAuth2 client secret. */
  clientSecret?: string;
  /** The static API key Docplanner sends with every push. */
  pushAuth?: { headerName?: string; apiKey: string };
  /** IPs or CIDRs pushes may come from; others are refused. Empty or absent: any source. */
  allowedSourceIps?: string[];
  /** `single`: one notification per request (the documented way); `multiple`: up to `pullLimit`. */
  pullMode?: 'single' | 'multiple';
  /** Batch size in `multiple` mode (1..100). */
  pullLimit?: number;
  /** Log a warning when the oldest pulled notification is older than this (Docplanner expires them at 72 h). */
  pullLagWarningHours?: number;
  /** Push mode: minutes between calls of `POST /notifications/release` (60 or more; 0 turns it off). */
  releaseIntervalMinutes?: number;
}

export const DEFAULT_API_KEY_HEADER = 'x-api-key';
export const DEFAULT_PULL_LIMIT = 50;
export const DEFAULT_PULL_LAG_WARNING_HOURS = 24;
export const DEFAULT_RELEASE_INTERVAL_MINUTES = 60;

export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Docplanner settings',
  description:
    'Docplanner (ZnanyLekarz, Doctoralia, MioDottore) integration API v3: push (static API key, optional source-IP allowlist) and/or pull (OAuth2 client credentials).',
  type: 'object',
  properties: {
    domain: {
      description:
        'The Docplanner country site the facility lives on, e.g. znanylekarz.pl, doctoralia.es, miodottore.it. The API base is https://www.{domain}.',
      type: 'string',
      // The format as well as the pattern: the client secret goes to https://www.{domain}, and the
      // admin API tells where secrets go by a setting's format (server instances/routes.ts).
      format: 'hostname',
      pattern: '^[a-z0-9.-]+\\.[a-z]{2,}$',
      examples: ['znanylekarz.pl'],
    },
    apiBaseUrl: {
      description:
        'Overrides the API base URL derived from domain (for tests and simulators), without a trailing slash.',
      type: 'string',
      format: 'uri',
    },
    clientId: {
      description: 'OAuth2 client id of the integration API (needed for pull and booking re-reads).',
      type: 'string',
      minLength: 1,
    },
    clientSecret: {
      description: 'OAuth2 client secret of the integration API.',
      type: 'string',
      minLength: 1,
      'x-secret': true,
    },
    pushAuth: {
      description:
        'The static API key Docplanner sends in a header with every push (agreed with Docplanner per client).',
      type: 'object',
      required: ['apiKey'],
      properties: {
        headerName: {
          description: 'The header carrying the key (case-insensitive).',
          type: 'string',
          minLength: 1,
          default: DEFAULT_API_KEY_HEADER,
        },
        apiKey: { description: 'The expected key.', type: 'string', minLength: 8, 'x-secret': true },
      },
      additionalProperties: false,
    },
    allowedSourceIps: {
      description:
        'IPv4/IPv6 addresses or CIDR ranges pushes may come from (Docplanner publishes its source IPs); other sources are refused. Absent or empty: any source.',
      type: 'array',
      // Checked when the instance is saved, not at the first push (a `/99` failed every push then).
      items: IP_OR_CIDR_SCHEMA,
      default: [],
    },
    pullMode: {
      description:
        'single: GET /notifications, one notification per request (documented); multiple: GET /notifications/multiple?limit=pullLimit.',
      enum: ['single', 'multiple'],
      default: 'single',
    },
    pullLimit: {
      description: 'How many notifications to ask for per request in multiple mode.',
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: DEFAULT_PULL_LIMIT,
    },
    pullLagWarningHours: {
      description:
        'Warn when the oldest pulled notification is older than this many hours: Docplanner deletes notifications not pulled within 72 hours.',
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 72,
      default: DEFAULT_PULL_LAG_WARNING_HOURS,
    },
    releaseIntervalMinutes: {
      description:
        'Push mode: how often the hub asks Docplanner to re-send the notifications whose push failed (POST /notifications/release, allowed once an hour), in minutes; 0 turns it off. Needs clientId and clientSecret.',
      type: 'integer',
      anyOf: [{ const: 0 }, { minimum: 60 }],
      default: DEFAULT_RELEASE_INTERVAL_MINUTES,
    },
  },
  additionalProperties: false,
};
