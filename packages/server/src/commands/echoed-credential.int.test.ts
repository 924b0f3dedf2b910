/**
 * A vendor answer (a proxy's error page, a vendor's error text) quoting the credential the hub sent
 * with the call, a token the hub got at run time (Docplanner's OAuth2 access token, BookingBug's
 * admin Auth-Token) rather than a value of the instance's settings: kept out of the command, its
 * calls and its log lines, as a quoted setting is (commands.int covers those). And the client
 * credentials of the token request itself (the SDK's clientCredentials, Basic for Docplanner), which
 * a token endpoint's error page may show back, as the header and decoded.
 */

import { useTestDatabase } from '@switchyard/testing';
import {
  closeServer,
  type LocalServer,
  listenLocal,
  readBody,
} from '@switchyard/testing/simulator-kit/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandHub, docplannerInstance, startCommandHub } from './command-hub.test-support.ts';

const db = useTestDatabase();
const TOKEN = 'dp-live-access-token-7f3a9c1e5b';
let vendor: LocalServer;
let c: CommandHub;

beforeAll(async () => {
  // Docplanner's token endpoint, then a gateway in front of its API whose 502 page shows the
  // request's headers back (as some error pages do).
  vendor = await listenLocal(
    async (req, res) => {
      const body = await readBody(req);
      if (req.url === '/refusing/oauth/v2/token') {
        // A token endpoint refusing the client credentials with an error page that shows the
        // request back: its Authorization header, that header decoded (client_id:client_secret,
        // RFC 6749 §2.3.1) and its form body.
        const auth = String(req.headers.authorization);
        const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
        res.writeHead(401, { 'content-type': 'text/html' });
        res.end(`<html>invalid_client: authorization=${auth} credentials=${decoded} form=${body}</html>`);
        return;
      }
      if (req.url === '/oauth/v2/token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: TOKEN, expires_in: 3600, token_type: 'bearer' }));
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`Bad gateway: upstream reset. Request headers: authorization=${req.headers.authorization}`);
    },
    (_error, _req, res) => res.end(),
  );
  c = await startCommandHub(db.url(), {
    file: 'echoed-credential.yaml',
    instances: [
      ...docplannerInstance('dp', vendor.url),
      ...docplannerInstance('dp-refusing', `${vendor.url}/refusing`),
    ],
    env: { T_PUSH: 'dp-echo-push-key-0123456789' },
  });
}, 60_000);

afterAll(async () => {
  await c?.stop();
  if (vendor) await closeServer(vendor.server);
});

/** A Docplanner book at `start` (the simulator's facility, doctor, address and service). */
function bookAt(start: string) {
  return {
    start,
    durationMinutes: 30,
    patient: { name: 'Anna', phone: '+48500100200' },
    practitioner: { id: '182733' },
    location: { id: '221304' },
    organization: { id: '90211' },
    service: { id: '4455661' },
  };
}

describe('a vendor answer quoting the credential the hub sent', () => {
  it('keeps a run-time token (an OAuth2 access token) out of the command, its calls and its error', async () => {
    const id = await c.send({
      type: 'appointment.book',
      instance: 'dp',
      data: bookAt('2026-03-10T11:30:00+01:00'),
    });
    const done = await c.finished(id);
    expect(done).toMatchObject({ status: 'failed', error: { kind: 'exhausted', vendor: { status: 502 } } });
    // The page reached the command: the header it quotes shows [redacted] for the credential.
    const pages = done.calls.filter((call: { statusCode: number }) => call.statusCode === 502);
    expect(pages.length).toBeGreaterThan(0);
    for (const call of pages) expect(call.responseSnippet).toContain('authorization=[redacted]');
    expect(done.error.vendor.body).toContain('authorization=[redacted]');
    // Before, the live token was stored and shown in every call's snippet and in the error.
    expect(JSON.stringify(done)).not.toContain(TOKEN);
  });

  it('keeps the client credentials out of the command when the token endpoint shows the request back', async () => {
    const id = await c.send({
      type: 'appointment.book',
      instance: 'dp-refusing',
      data: bookAt('2026-03-10T12:30:00+01:00'),
    });
    const done = await c.finished(id);
    expect(done).toMatchObject({ status: 'failed', error: { kind: 'permanent' } });
    const pages = done.calls.filter((call: { statusCode: number }) => call.statusCode === 401);
    expect(pages.length).toBeGreaterThan(0);
    // The page reached the command, the client id (no secret) shown, the secret not.
    for (const call of pages) {
      expect(call.responseSnippet).toContain('credentials=sim-client:[redacted]');
      expect(call.responseSnippet).toContain('form=grant_type=client_credentials&scope=integration');
    }
    const shown = JSON.stringify(done);
    expect(shown).not.toContain('sim-secret');
    expect(shown).not.toContain(Buffer.from('sim-client:sim-secret').toString('base64'));
  });
});
