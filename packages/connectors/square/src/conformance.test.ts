import { describeConformance } from '@switchyard/testing';
import { credentialHeaders } from './auth.ts';
import type { Config } from './config.ts';
import connector from './index.ts';

const config: Config = { signatureKey: 'test-signature-key-0123456789' };

// Square signs the notification URL with the body: the kit gives each request a `hookUrl` (its
// default public URL + /hooks/conformance) and sign() signs that URL and the request's own body.
// Nothing is dated, so there is no replay window: replays are stopped by event_id (dedupe).
describeConformance<Config, { secret: string }>({
  connector,
  config,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { secret: config.signatureKey },
    wrong: {
      'another key': { secret: 'another-signature-key-0123' },
      'an empty key': { secret: '' },
    },
    missing: {},
  },
  sign: (request, credential) => ({
    headers: credentialHeaders({ signatureKey: credential.secret }, request.hookUrl ?? '', request.rawBody),
  }),
  // During a rotation Square may still sign with the key being replaced.
  rotation: {
    config: { ...config, previousSignatureKey: 'old-signature-key-0123456789' },
    previous: { secret: 'old-signature-key-0123456789' },
  },
  fixtures: [
    { file: 'booking-created.json', expect: ['appointment.created'] },
    { file: 'booking-updated-accepted.json', expect: ['appointment.confirmed'] },
    { file: 'booking-updated-cancelled-by-customer.json', expect: ['appointment.cancelled'] },
  ],
});
