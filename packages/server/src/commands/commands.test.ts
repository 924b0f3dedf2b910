/**
 * Which notification may be a command's echo by what it says (`fitsCommand`), beyond its type and
 * entity. The hub's side of "a command done without a change takes no echo" (the connector's
 * `unchanged`, `recentSuccesses` leaving such commands out) runs through a hub in
 * unchanged-echoes.int.test.ts.
 */
import type { EventDraft, JsonObject } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { fitsCommand, SentCredentials } from './commands.ts';

const updated = (data: JsonObject): EventDraft => ({
  type: 'appointment.updated',
  subject: 'appointment/h1',
  time: '2026-03-10T10:05:00Z',
  data,
});

describe('fitsCommand: an appointment.update', () => {
  it('of the comment takes an appointment.updated naming `comment`, not one naming other fields', () => {
    const command = { type: 'appointment.update', data: { comment: 'Bring the X-ray' } };
    expect(fitsCommand(command, updated({ changes: ['comment'] }))).toBe(true);
    expect(fitsCommand(command, updated({ changes: ['practitioner', 'comment'] }))).toBe(true);
    expect(fitsCommand(command, updated({ changes: ['practitioner'] }))).toBe(false);
  });

  it('of custom fields takes only an appointment.updated naming `customFields`: not Clockwise.MD’s `patient`', () => {
    const command = { type: 'appointment.update', data: { customFields: { '104': 'verified' } } };
    // Clockwise.MD's demographics_update, whatever changed (the write, or staff correcting the
    // patient's name): before, taken as the update's echo, and a CRM skipping echoes lost the staff's.
    expect(fitsCommand(command, updated({ changes: ['patient'] }))).toBe(false);
    expect(fitsCommand(command, updated({ changes: ['customFields'] }))).toBe(true);
    expect(fitsCommand(command, updated({ changes: ['comment'] }))).toBe(false);
  });

  it('a notification naming no changes cannot rule it out (a version stored before they were kept)', () => {
    for (const data of [{ comment: 'x' }, { customFields: { '104': 'x' } }] as JsonObject[]) {
      const command = { type: 'appointment.update', data };
      expect(fitsCommand(command, updated({}))).toBe(true);
      expect(fitsCommand(command, updated({ changes: [] }))).toBe(true);
    }
  });
});

describe('fitsCommand: other commands', () => {
  it('a move takes a notification at the times it asked for; a presence mark any of its type', () => {
    const move = {
      type: 'slot.move_block',
      data: { start: '2026-05-14T09:00:00+02:00', end: '2026-05-14T10:00:00+02:00' },
    };
    const moved = (start: string): EventDraft => ({
      type: 'slot.block_moved',
      subject: 'slot/b1',
      time: '2026-05-14T06:00:00Z',
      data: { start, end: '2026-05-14T08:00:00Z' },
    });
    expect(fitsCommand(move, moved('2026-05-14T07:00:00Z'))).toBe(true);
    expect(fitsCommand(move, moved('2026-05-14T09:00:00Z'))).toBe(false);
    // A presence notification says only "arrived": the connector's `unchanged` keeps a no-op's
    // command from taking one (recentSuccesses), not the matching.
    const arrived: EventDraft = {
      type: 'appointment.arrived',
      subject: 'appointment/h1',
      time: 't',
      data: {},
    };
    expect(fitsCommand({ type: 'appointment.mark_arrived', data: {} }, arrived)).toBe(true);
  });
});

describe('SentCredentials', () => {
  // The SDK's clientCredentials in `authentication: 'body'` mode (core connector/client-credentials.ts)
  // sends client_secret in the form (RFC 6749 §2.3.1); a connector whose secret is no x-secret
  // setting (built in code, fetched at run time) had it kept whole when the token endpoint's error
  // page showed the form back (a secrets audit). The names are redact.ts's one list.
  it('scrubs the secret-named form fields a call carried, as sent and form-encoded', () => {
    const sent = new SentCredentials();
    sent.add({
      form: {
        grant_type: 'client_credentials',
        client_id: 'hub-client',
        client_secret: 'cs-live+secret/0123456789',
        scope: 'integration',
      },
    });
    sent.add({ form: { grant_type: 'refresh_token', refresh_token: 'rt-live-0123456789abcdef' } });
    sent.add({
      form: {
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion: 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodWIifQ.c2lnbmF0dXJl',
      },
    });
    const page =
      '<html>invalid_client: form=grant_type=client_credentials&client_id=hub-client' +
      '&client_secret=cs-live%2Bsecret%2F0123456789&scope=integration; secret cs-live+secret/0123456789;' +
      ' refresh rt-live-0123456789abcdef; assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodWIifQ.c2lnbmF0dXJl</html>';
    const scrubbed = sent.scrub(page);
    expect(scrubbed).not.toContain('cs-live');
    expect(scrubbed).not.toContain('rt-live');
    expect(scrubbed).not.toContain('eyJhbGciOiJSUzI1NiJ9');
    // What is no secret stays readable: the client id, the grant, the scope.
    expect(scrubbed).toContain('grant_type=client_credentials&client_id=hub-client&client_secret=[redacted]');
    expect(scrubbed).toContain('scope=integration');
  });

  it('still scrubs the credentials of the headers', () => {
    const sent = new SentCredentials();
    sent.add({ headers: { authorization: 'Bearer tok-0123456789abcdef', accept: 'application/json' } });
    expect(sent.scrub('authorization=Bearer tok-0123456789abcdef; token tok-0123456789abcdef')).toBe(
      'authorization=[redacted]; token [redacted]',
    );
  });
});
