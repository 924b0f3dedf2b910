import { signTimestamped } from '@switchyard/core';
import { describeConformance } from '@switchyard/testing';
import { type Config, DEFAULT_SIGNATURE_HEADER, DEFAULT_TOLERANCE_SECONDS } from './config.ts';
import connector from './index.ts';

const config: Config = { signingKey: 'test-signing-secret-0123456789abcdef' };

// The vendor signs: the kit calls sign() for every request it sends, so each carries a real
// signature over its own body, made at `signedAt` (the receive time, or earlier in the replay check).
describeConformance<Config, { secret: string }>({
  connector,
  config,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { secret: config.signingKey },
    wrong: {
      'another secret': { secret: 'test-signing-secret-wrong-00000000' },
      'an empty secret': { secret: '' },
    },
    missing: {},
  },
  sign: (request, credential, { signedAt }) => ({
    headers: {
      [DEFAULT_SIGNATURE_HEADER]: signTimestamped(credential.secret, request.rawBody, {
        timestamp: signedAt,
      }),
    },
  }),
  // The vendor signs a timestamp, so a push signed outside the window must be refused. A vendor that
  // signs the body alone cannot honour a window: docs/writing-a-connector.md, "Body-only signatures".
  replayWindow: { toleranceSeconds: DEFAULT_TOLERANCE_SECONDS },
  // A rotation is a second subscription signed with the new key: both keys sign while it lasts.
  rotation: {
    config: { ...config, previousSigningKey: 'test-previous-signing-key-0123456789' },
    previous: { secret: 'test-previous-signing-key-0123456789' },
  },
  // In order, with one shared context: the booking keeps its hub id through the reschedule (old
  // invitee cancelled, new one created) and the cancellation of the new invitee.
  fixtures: [
    { file: 'invitee-created.json', expect: ['appointment.created'] },
    { file: 'invitee-no-show-created.json', expect: ['appointment.no_show'] },
    { file: 'invitee-no-show-deleted.json', expect: ['appointment.status_reverted'] },
    {
      file: 'invitee-canceled-rescheduled.json',
      expect: 'ignored',
      description: 'the old invitee of a reschedule',
    },
    { file: 'invitee-created-rescheduled.json', expect: ['appointment.rescheduled'] },
    { file: 'invitee-canceled.json', expect: ['appointment.cancelled'] },
    { file: 'routing-form-submission-created.json', expect: 'ignored' },
  ],
});
