import type { JsonSchema } from '@switchyard/core';

/** Settings of one Cliniko connector instance. */
export interface Config {
  /** A Cliniko user's API key; its suffix names the shard (`…-au2`). */
  apiKey: string;
  /** The API base; default `https://api.<shard>.cliniko.com/v1`, the shard read from the key. */
  apiBaseUrl?: string;
  /** Cliniko asks every client to name itself: `APP_VENDOR_NAME (APP_VENDOR_EMAIL)`. */
  userAgent: string;
  /** Appointments per page (Cliniko allows 1 to 100). */
  perPage?: number;
  /** How far before the watermark each poll starts, in seconds (writes committed late). */
  overlapSeconds?: number;
  /**
   * Where the first poll starts: appointments updated at or after this time (ISO 8601). Default:
   * {@link DEFAULT_START_DAYS} days before the first poll.
   */
  startFrom?: string;
  /** The Cliniko cancellation reason code `appointment.cancel` sends (10 feeling better … 31 COVID-19 related … 60 work). */
  cancellationReason?: number;
}

export const DEFAULT_PER_PAGE = 100;
export const DEFAULT_OVERLAP_SECONDS = 60;
/**
 * Without `startFrom`, the first poll reads appointments updated in the last 30 days: the bookings
 * made or changed in the last month (most of a clinic's upcoming appointments) at a bounded cost
 * (a busy clinic's month is a few thousand, tens of pages at 200 requests a minute), where the
 * account's whole history (years of visits, each told as `appointment.created` to every
 * subscriber) took hours of rate-limited requests and flooded subscribers with past visits.
 */
export const DEFAULT_START_DAYS = 30;
/** Cliniko's `50`: Other. */
export const DEFAULT_CANCELLATION_REASON = 50;
/** Cliniko's cancellation reason codes (sections/individual_appointments.md, "Cancellation Reason Codes"). */
export const CANCELLATION_REASONS = [10, 20, 30, 31, 40, 50, 60] as const;

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Cliniko connector settings',
  type: 'object',
  required: ['apiKey', 'userAgent'],
  additionalProperties: false,
  properties: {
    apiKey: {
      description:
        "A Cliniko user's API key (My Info → Manage API keys); sent as the Basic user name. The key's suffix names the shard (…-au2); a key without one is in au1.",
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    apiBaseUrl: {
      description: 'The Cliniko API base URL; default https://api.<shard>.cliniko.com/v1 from the key.',
      type: 'string',
      format: 'uri',
    },
    userAgent: {
      description:
        'The User-Agent Cliniko requires of every client: "APP_VENDOR_NAME (APP_VENDOR_EMAIL)", a name and a contact email in parentheses; Cliniko may block requests without them.',
      type: 'string',
      // Cliniko: "If your requests do not include a User-Agent that contains a name and valid
      // contact email, future requests may be automatically blocked" (API readme). And it is sent as
      // a header: a line break, a control character or one past U+00FF (a clinic name in another
      // script) was accepted, and then every pull and command failed with the HTTP client's
      // TypeError ("Headers.append: … is an invalid header value"; an attacker audit).
      pattern: '^(?=[ -~\\u00a0-\\u00ff]+$)\\S.*\\([^\\s()@]+@[^\\s()@]+\\.[^\\s()@]+\\)$',
      'x-message':
        'must be a name and a contact email in parentheses, "Name (ops@example.com)", on one line of printable characters, Latin-1 at most (it is sent as the User-Agent header)',
    },
    perPage: {
      description: 'Appointments asked for per page.',
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: DEFAULT_PER_PAGE,
    },
    overlapSeconds: {
      description:
        'How far before the last seen updated_at each poll starts (writes Cliniko commits late); repeats are dropped by dedupe keys.',
      type: 'integer',
      minimum: 0,
      maximum: 3600,
      default: DEFAULT_OVERLAP_SECONDS,
    },
    startFrom: {
      description:
        'Where the first poll starts: appointments updated at or after this time (ISO 8601 with Z or an offset, e.g. 2026-01-01T00:00:00Z). Default: 30 days before the first poll, not the whole history (thousands of past visits, each told as appointment.created). An appointment last changed before it is told at its next change. Read once: later polls go on from the last one.',
      type: 'string',
      format: 'date-time',
    },
    cancellationReason: {
      description:
        'The cancellation reason code appointment.cancel sends (10 feeling better, 20 condition worse, 30 sick, 31 COVID-19 related, 40 away, 50 other, 60 work).',
      enum: [...CANCELLATION_REASONS],
      default: DEFAULT_CANCELLATION_REASON,
    },
  },
};

/** The API base for these settings: the configured one, else the shard's. */
export function apiBase(config: Config): string {
  if (config.apiBaseUrl) return config.apiBaseUrl.replace(/\/+$/, '');
  const shard = /-([a-z]{2}\d+)$/.exec(config.apiKey)?.[1] ?? 'au1';
  return `https://api.${shard}.cliniko.com/v1`;
}

/** The headers of every Cliniko call: Basic with the key as user name and no password. */
export function apiHeaders(config: Config): Record<string, string> {
  return {
    authorization: `Basic ${Buffer.from(`${config.apiKey}:`).toString('base64')}`,
    accept: 'application/json',
    'user-agent': config.userAgent,
  };
}

/**
 * A time as Cliniko expects it: "All dates and times are expected to be in UTC", written like
 * `2014-08-30T18:00:00Z` (API readme, "Dates and Times" and "Filtering Results"). Commands carry
 * an offset (`11:30:00+01:00`) and `toISOString` adds milliseconds; both go as UTC seconds.
 *
 * @example
 * ```ts
 * clinikoTime('2026-03-10T11:30:00+01:00'); // '2026-03-10T10:30:00Z'
 * ```
 */
export function clinikoTime(time: string | number): string {
  return new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
