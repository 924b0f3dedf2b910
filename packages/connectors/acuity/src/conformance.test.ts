import { signBody } from '@switchyard/core';
import { describeConformance } from '@switchyard/testing';
import { type Config, SIGNATURE_HEADER } from './config.ts';
import connector from './index.ts';
import { fixtureSettings, fixtureVendorApi } from './testing.ts';

const config: Config = fixtureSettings;

// Acuity signs the form alone (base64 HMAC-SHA256 with the API key): no signedAt, no replayWindow.
// rescheduled and changed repeat with the same body, so their dedupe keys carry the receive time.
describeConformance<Config, { secret: string }>({
  connector,
  config,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  vendorApi: fixtureVendorApi,
  dedupeKeysUseReceiveTime: true,
  credentials: {
    good: { secret: config.apiKey },
    wrong: {
      'another key': { secret: 'test-api-key-wrong-000000000000' },
      'an empty key': { secret: '' },
    },
    missing: {},
  },
  sign: (request, credential) => ({
    headers: { [SIGNATURE_HEADER]: signBody(credential.secret, request.rawBody, { encoding: 'base64' }) },
  }),
  // In order, with one shared context.
  fixtures: [
    { file: 'appointment-scheduled.form', expect: ['appointment.created'] },
    { file: 'appointment-changed.form', expect: 'ignored', description: 'nothing changed since scheduled' },
    { file: 'appointment-rescheduled.form', expect: ['appointment.rescheduled'] },
    { file: 'appointment-canceled.form', expect: ['appointment.cancelled'] },
    { file: 'order-completed.form', expect: 'ignored' },
  ],
});
