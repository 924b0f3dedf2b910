import { type JsonSchema, pathSegmentSecretRule } from '@switchyard/core';

/** Where Instinctive Notes may carry the shared secret. */
export type AuthMode = 'header' | 'path' | 'either';

/** What to do with a "Send test" delivery (a re-send of the last saved note of a type). */
export type TestHandling = 'mark' | 'ignore';

/** Settings of one Instinctive Notes connector instance. */
export interface Config {
  /**
   * The shared secret that proves a webhook comes from Instinctive Notes: in a header
   * (`headerName`), as the last URL segment (`/hooks/{instance}/{secret}`), or either.
   */
  auth: { mode?: AuthMode; headerName?: string; secret: string };
  /** How "Send test" deliveries are recognised and what becomes of them. */
  testDeliveries?: {
    /** `mark`: emit the event with `data.test = true`; `ignore`: store it as ignored. */
    handling?: TestHandling;
    /**
     * A delivery whose envelope `created_at` is this many seconds later than the note's `updated_at`
     * is a re-send of an old note, i.e. a test. 0 turns this check off.
     */
    staleAfterSeconds?: number;
  };
}

export const DEFAULT_HEADER_NAME = 'x-instinctive-secret';
export const DEFAULT_STALE_AFTER_SECONDS = 3600;

/** The instance settings as JSON Schema 2020-12 (secrets marked `x-secret`). */
export const configSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Instinctive Notes connector settings',
  type: 'object',
  required: ['auth'],
  additionalProperties: false,
  properties: {
    auth: {
      description:
        'How Instinctive Notes proves a webhook is genuine. Its page documents no signature: give it a URL that carries a shared secret in the path, or (when its settings allow a custom header) in a header.',
      type: 'object',
      required: ['secret'],
      additionalProperties: false,
      properties: {
        mode: {
          description:
            'header: the secret must be in the header named by headerName; path: the secret must be the last URL segment (/hooks/{instance}/{secret}); either: one of the two must match.',
          enum: ['header', 'path', 'either'],
          default: 'either',
        },
        headerName: {
          description: 'The request header that carries the secret in header mode (case-insensitive).',
          type: 'string',
          minLength: 1,
          pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
          default: DEFAULT_HEADER_NAME,
        },
        secret: {
          description:
            'The shared secret (at least 16 characters). With mode path it is one URL segment: no /, ?, #, % or whitespace (refused when saved); with header or either, any string.',
          type: 'string',
          minLength: 16,
          'x-secret': true,
        },
      },
      ...pathSegmentSecretRule('secret'),
    },
    testDeliveries: {
      description:
        'Instinctive Notes "Send test" re-sends the last saved note of the chosen type, with no test flag. A delivery is taken for a test when the note version was already announced for that type, or when the envelope is much newer than the note.',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        handling: {
          description:
            'mark: emit the document event with data.test = true (subscribers see the test end to end); ignore: store the delivery as ignored, no event.',
          enum: ['mark', 'ignore'],
          default: 'mark',
        },
        staleAfterSeconds: {
          description:
            'A delivery whose envelope created_at is more than this many seconds after the note updated_at is a test re-send. 0 disables this check (only already-announced versions count as tests).',
          type: 'integer',
          minimum: 0,
          default: DEFAULT_STALE_AFTER_SECONDS,
        },
      },
    },
  },
};

/** The config with every default applied. */
export interface ResolvedConfig {
  auth: { mode: AuthMode; headerName: string; secret: string };
  testDeliveries: { handling: TestHandling; staleAfterSeconds: number };
}

/**
 * Applies the defaults (the hub may or may not have applied them already).
 *
 * @example
 * ```ts
 * resolveConfig({ auth: { secret: 's'.repeat(24) } }).auth.headerName; // 'x-instinctive-secret'
 * ```
 */
export function resolveConfig(config: Config): ResolvedConfig {
  return {
    auth: {
      mode: config.auth?.mode ?? 'either',
      headerName: (config.auth?.headerName ?? DEFAULT_HEADER_NAME).toLowerCase(),
      secret: config.auth?.secret ?? '',
    },
    testDeliveries: {
      handling: config.testDeliveries?.handling ?? 'mark',
      staleAfterSeconds: config.testDeliveries?.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS,
    },
  };
}
