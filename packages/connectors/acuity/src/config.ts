import type { JsonSchema } from '@switchyard/core';

/** Settings of one Acuity Scheduling connector instance. */
export interface Config {
  /** The Acuity user id the API is called with (HTTP Basic user). */
  userId: string;
  /**
   * The Acuity API key: the API's Basic password, and the secret Acuity signs every webhook with
   * (base64 HMAC-SHA256 of the body). One key for both: Acuity has no separate webhook secret.
   */
  apiKey: string;
  /** During a key rotation: the key being replaced, still accepted on webhooks until removed. */
  previousApiKey?: string;
  /** The API base URL (tests point it at the simulator). */
  apiBaseUrl?: string;
  /**
   * Whom `appointment.book` (and `appointment.reschedule`) act as: `client` (the default), under the account's client
   * scheduling rules (availability, minimum notice, how far ahead), which also keep a taken time from
   * being booked twice; or `admin` (`POST /appointments?admin=true`), as the clinic's staff book in
   * Acuity: "Booking as an admin disables availability and attribute validations, and allows setting
   * the notes attribute. This also requires a valid calendarID" (developers.acuityscheduling.com/
   * reference/post-appointments); a reschedule as an admin "bypasses availability checks" likewise.
   * Admin bookings and moves may then overlap another appointment.
   */
  bookAs?: BookAs;
}

/** {@link Config.bookAs}. */
export type BookAs = 'client' | 'admin';
/** Bookings are made as a client unless the instance says otherwise: Acuity's own default. */
export const DEFAULT_BOOK_AS: BookAs = 'client';

/** Acuity's API. */
export const DEFAULT_API_BASE_URL = 'https://acuityscheduling.com/api/v1';
/** The header Acuity signs webhooks in (lowercase: the hub hands connectors lowercase names). */
export const SIGNATURE_HEADER = 'x-acuity-signature';

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Acuity Scheduling connector settings',
  type: 'object',
  required: ['userId', 'apiKey'],
  additionalProperties: false,
  properties: {
    userId: {
      description: 'The Acuity user id (Integrations → API), the HTTP Basic user of API calls.',
      type: 'string',
      pattern: '^[0-9]+$',
    },
    apiKey: {
      description:
        'The Acuity API key: the HTTP Basic password of API calls, and the secret Acuity signs webhooks with (the main admin’s key for static webhooks).',
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    previousApiKey: {
      description: 'During a key rotation: the key being replaced, still accepted on webhooks until removed.',
      type: 'string',
      minLength: 16,
      'x-secret': true,
    },
    apiBaseUrl: {
      description: 'The Acuity API base URL (simulators and tests point it at loopback).',
      type: 'string',
      format: 'uri',
      default: DEFAULT_API_BASE_URL,
    },
    bookAs: {
      description:
        "Whom appointment.book and appointment.reschedule act as. client: under the account's client scheduling rules (availability, minimum notice), so a taken or closed time is refused. admin: as the clinic's staff (POST /appointments?admin=true, PUT /appointments/{id}/reschedule?admin=true), which Acuity documents as disabling availability and attribute validations (a booking may overlap another); a booking then needs the calendar (practitioner.id) and also writes data.comment as the appointment's notes.",
      type: 'string',
      enum: ['client', 'admin'],
      default: DEFAULT_BOOK_AS,
    },
  },
};

/** The API base without a trailing slash. */
export function apiBase(config: Config): string {
  return (config.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, '');
}

/** The headers of every API call: HTTP Basic with the user id and the API key. */
export function apiHeaders(config: Config): Record<string, string> {
  const basic = Buffer.from(`${config.userId}:${config.apiKey}`).toString('base64');
  return { authorization: `Basic ${basic}`, accept: 'application/json' };
}
