import { readFileSync } from 'node:fs';
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, describe, expect, it } from 'vitest';
import { BookingBugSimulator } from './simulator.ts';
import { basicAuthorization, bookingbugConnector, fixtureUrl } from './testing.ts';

const fixture = (name: string) => JSON.parse(readFileSync(fixtureUrl(name), 'utf8')) as JsonObject;
const USER = 'switchyard-bb';
const PASSWORD = 'bb-push-password-0123456789';

/** A hook receiver answering from a script of statuses (the last one repeats). */
async function receiver(statuses: number[]) {
  const hook = await startHookReceiver({ path: '/hooks/bb', answers: statuses, whenDone: 'repeat' });
  return { ...hook, base: hook.url };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('BookingBugSimulator', () => {
  it('pushes the purchase with HTTP Basic credentials the connector accepts', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new BookingBugSimulator({ bookingUrl: hook.base, username: USER, password: PASSWORD });
    const record = await sim.push(fixture('created.json'));
    expect(record).toMatchObject({ delivered: true, kind: 'create', url: hook.base });
    const got = hook.received[0]!;
    expect(JSON.parse(got.body)).toEqual(fixture('created.json'));
    const request = inboundRequest({
      headers: { authorization: got.headers.authorization },
      body: JSON.parse(got.body),
    });
    const config = { basicAuth: { username: USER, password: PASSWORD } };
    expect(() => bookingbugConnector.push!.authenticate(request, config)).not.toThrow();
  });

  it('sends cancellations to the cancellation URL when configured, else to the booking URL', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const both = new BookingBugSimulator({
      bookingUrl: hook.base,
      cancellationUrl: `${hook.base}/cancellation`,
      username: USER,
      password: PASSWORD,
    });
    await both.push(fixture('created.json'), { kind: 'cancelled' });
    await both.push(fixture('amended-time.json'), { kind: 'modify' });
    const bookingOnly = new BookingBugSimulator({
      bookingUrl: hook.base,
      username: USER,
      password: PASSWORD,
    });
    await bookingOnly.push(fixture('created.json'), { kind: 'cancelled' });
    expect(hook.received.map((r) => r.url)).toEqual(['/hooks/bb/cancellation', '/hooks/bb', '/hooks/bb']);
  });

  it('sends a JRNI webhook as is to the webhook URL, its kind from triggerName', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new BookingBugSimulator({
      bookingUrl: hook.base,
      cancellationUrl: `${hook.base}/cancellation`,
      auth: { kind: 'basic-token', token: 'jrni-basic-token-0123456789' },
    });
    const record = await sim.push(fixture('jrni-notification-cancelled.json'));
    expect(record).toMatchObject({ shape: 'jrni', kind: 'cancelled', url: hook.base, delivered: true });
    expect(JSON.parse(hook.received[0]!.body)).toEqual(fixture('jrni-notification-cancelled.json'));
    const request = inboundRequest({
      headers: { authorization: hook.received[0]!.headers.authorization },
      body: fixture('jrni-notification-cancelled.json'),
    });
    expect(hook.received[0]!.headers.authorization).toBe('Basic jrni-basic-token-0123456789');
    expect(() =>
      bookingbugConnector.push!.authenticate(request, { basicToken: 'jrni-basic-token-0123456789' }),
    ).not.toThrow();
  });

  it.each(['header', 'body'] as const)(
    'fetches an OAuth2 token with the client credentials in the %s, caches it, and renews it after a 401',
    async (clientAuthentication) => {
      const token = (value: string) => ({
        status: 200,
        body: JSON.stringify({ access_token: value, token_type: 'Bearer', expires_in: 3600 }),
      });
      const tokens = await startHookReceiver({ path: '/oauth/token', answers: [token('t-1'), token('t-2')] });
      const hook = await receiver([200, 200, 401, 200]);
      cleanups.push(tokens.close, hook.close);
      const sim = new BookingBugSimulator({
        bookingUrl: hook.base,
        auth: {
          kind: 'oauth2',
          accessTokenUrl: tokens.url,
          clientId: 'jrni client',
          clientSecret: 'sec:ret',
          clientAuthentication,
        },
      });
      await sim.push(fixture('jrni-data-create.json'));
      await sim.push(fixture('jrni-data-modify-time.json'));
      const renewed = await sim.push(fixture('jrni-data-checked-in.json'));
      expect(renewed.attempts.map((a) => a.status)).toEqual([401, 200]);
      expect(hook.received.map((r) => r.headers.authorization)).toEqual([
        'Bearer t-1',
        'Bearer t-1',
        'Bearer t-1',
        'Bearer t-2',
      ]);
      expect(sim.tokenRequests.map((r) => r.issued)).toEqual([true, true]);
      const asked = tokens.received[0]!;
      const form = new URLSearchParams(asked.body);
      expect(form.get('grant_type')).toBe('client_credentials');
      if (clientAuthentication === 'header') {
        expect(asked.headers.authorization).toBe(basicAuthorization('jrni+client', 'sec%3Aret'));
        expect(form.get('client_secret')).toBeNull();
      } else {
        expect(asked.headers.authorization).toBeUndefined();
        expect([form.get('client_id'), form.get('client_secret')]).toEqual(['jrni client', 'sec:ret']);
      }
    },
  );

  it('does not retry by default, and retries on the configured delays when told to', async () => {
    const hook = await receiver([500, 502, 200]);
    cleanups.push(hook.close);
    const once = new BookingBugSimulator({ bookingUrl: hook.base, username: USER, password: PASSWORD });
    expect((await once.push(fixture('created.json'))).attempts.map((a) => a.status)).toEqual([500]);
    const retrying = new BookingBugSimulator({
      bookingUrl: hook.base,
      username: USER,
      password: PASSWORD,
      retryDelaysMs: [1000, 1000, 1000],
      timeScale: 0.001,
    });
    const record = await retrying.push(fixture('created.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([502, 200]);
    expect(record.delivered).toBe(true);
  });

  it('records a refused connection as an attempt without a status', async () => {
    const hook = await receiver([200]);
    await hook.close();
    const sim = new BookingBugSimulator({ bookingUrl: hook.base, username: USER, password: PASSWORD });
    const record = await sim.push(fixture('created.json'));
    expect(record.delivered).toBe(false);
    expect(record.attempts[0]).toMatchObject({ status: null });
    expect(record.attempts[0]?.error).toBeTruthy();
  });

  it('encodes a cancelled event into a purchase on the cancellation URL', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new BookingBugSimulator({
      bookingUrl: hook.base,
      cancellationUrl: `${hook.base}/cancellation`,
      username: USER,
      password: PASSWORD,
    });
    const event: EventEnvelope = {
      specversion: '1.0',
      id: 'e1',
      type: 'appointment.cancelled',
      source: 'bb',
      subject: 'appointment/h1',
      time: '2026-01-15T10:00:00Z',
      datacontenttype: 'application/json',
      data: {
        id: 'h1',
        status: 'cancelled',
        vendorIds: [{ system: 'bookingbug', value: '13477736', current: true }],
        start: '2017-03-10T11:30:00+00:00',
      },
      connector: 'bookingbug',
      instance: 'bb',
      vendortype: 'cancellation',
    };
    const record = await sim.push(event);
    expect(record.kind).toBe('cancelled');
    expect(hook.received[0]!.url).toBe('/hooks/bb/cancellation');
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({
      _embedded: { bookings: [{ id: 13477736, is_cancelled: true, datetime: '2017-03-10T11:30:00+00:00' }] },
    });
  });
});

describe('BookingBugSimulator admin API (commands)', () => {
  async function started(hookBase: string) {
    const sim = new BookingBugSimulator({
      bookingUrl: hookBase,
      cancellationUrl: `${hookBase}/cancellation`,
      username: USER,
      password: PASSWORD,
    });
    await sim.start();
    cleanups.push(() => sim.close());
    sim.writes.echoDelayMs = 0;
    const call = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await fetch(`${sim.url}${path}`, {
        method,
        headers: {
          'content-type': 'application/json',
          'App-Id': 'sim-app-id',
          'App-Key': 'sim-app-key',
          ...(token ? { 'Auth-Token': token } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, headers: res.headers, json: (await res.json()) as JsonObject };
    };
    const login = async () =>
      (await call('POST', '/api/v1/login', { email: 'admin@clinic.example', password: 'sim-admin-password' }))
        .json.auth_token as string;
    return { sim, call, login };
  }

  it('cancels a booking it pushed, then pushes the JRNI cancelled webhook; a second cancel is refused', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    await sim.push(fixture('jrni-data-create.json'));
    const token = await login();
    expect(token).toBeTruthy();
    const path = '/api/v1/admin/37011/bookings/1294';
    expect((await call('POST', `${path}/cancel`, { notify: true }, token)).json).toMatchObject({
      id: 1294,
      is_cancelled: true,
    });
    await expect.poll(() => hook.received.length, { timeout: 5000 }).toBe(2);
    const echo = JSON.parse(hook.received[1]!.body) as JsonObject;
    expect(echo).toMatchObject({ triggerName: 'cancelled', appointment: { bookingId: 1294 } });
    expect(sim.pushes[1]).toMatchObject({ shape: 'jrni', kind: 'cancelled', delivered: true });
    expect((await call('POST', `${path}/cancel`, {}, token)).status).toBe(409);
    expect((await call('GET', path, undefined, token)).json).toMatchObject({ is_cancelled: true });
    // Wrong company, unknown booking: 404.
    expect((await call('POST', '/api/v1/admin/1/bookings/1294/cancel', {}, token)).status).toBe(404);
  });

  it('pushes a legacy purchase with the booking cancelled to the cancellation URL', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    await sim.push(fixture('created.json'));
    const token = await login();
    expect((await call('POST', '/api/v1/admin/50666/bookings/13477736/cancel', {}, token)).status).toBe(200);
    await expect.poll(() => hook.received.length, { timeout: 5000 }).toBe(2);
    expect(sim.pushes[1]).toMatchObject({
      shape: 'purchase',
      kind: 'cancelled',
      url: `${hook.base}/cancellation`,
    });
    const echo = JSON.parse(hook.received[1]!.body) as { _embedded: { bookings: JsonObject[] } };
    expect(echo._embedded.bookings[0]).toMatchObject({ id: 13477736, is_cancelled: true });
  });

  it('moves a booking it pushed (PUT { datetime }), answers the admin booking, then pushes the JRNI modify webhook with the new times', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    await sim.push(fixture('jrni-data-create.json'));
    const token = await login();
    const path = '/api/v1/admin/37011/bookings/1294';
    // The booking is 60 minutes long.
    const moved = await call('PUT', path, { datetime: '2023-02-18T10:00:00-05:00' }, token);
    expect(moved.status).toBe(200);
    expect(moved.json).toMatchObject({
      id: 1294,
      datetime: '2023-02-18T10:00:00-05:00',
      end_datetime: '2023-02-18T11:00:00-05:00',
      is_cancelled: false,
    });
    await expect.poll(() => hook.received.length, { timeout: 5000 }).toBe(2);
    expect(JSON.parse(hook.received[1]!.body)).toMatchObject({
      triggerName: 'modify',
      appointment: {
        bookingId: 1294,
        companyStartTime: '2023-02-18T10:00:00-05:00',
        companyEndTime: '2023-02-18T11:00:00-05:00',
      },
    });
    expect(sim.pushes[1]).toMatchObject({ shape: 'jrni', kind: 'modify', url: hook.base });
    expect(sim.writes.startOf(1294)).toBe('2023-02-18T10:00:00-05:00');
    expect((await call('PUT', path, {}, token)).status).toBe(400);
    sim.writes.occupy('2023-02-19T15:00:00Z');
    expect((await call('PUT', path, { datetime: '2023-02-19T10:00:00-05:00' }, token)).status).toBe(409);
    expect((await call('POST', `${path}/cancel`, {}, token)).status).toBe(200);
    const refused = await call('PUT', path, { datetime: '2023-02-20T10:00:00-05:00' }, token);
    expect(refused.status).toBe(403);
  });

  it('sets a check-in status (PUT /api/v3/… { current_multi_status }), then pushes the purchase with it', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    await sim.push(fixture('created.json'));
    const token = await login();
    const set = await call(
      'PUT',
      '/api/v3/admin/50666/bookings/13477736',
      { current_multi_status: 'checked_in' },
      token,
    );
    expect(set.json).toMatchObject({ id: 13477736, current_multi_status: 'checked_in' });
    expect((await call('GET', '/api/v1/admin/50666/bookings/13477736', undefined, token)).json).toMatchObject(
      {
        current_multi_status: 'checked_in',
      },
    );
    await expect.poll(() => hook.received.length, { timeout: 5000 }).toBe(2);
    expect(sim.pushes[1]).toMatchObject({ shape: 'purchase', kind: 'modify', url: hook.base });
    const echo = JSON.parse(hook.received[1]!.body) as { _embedded: { bookings: JsonObject[] } };
    expect(echo._embedded.bookings[0]).toMatchObject({ id: 13477736, current_multi_status: 'checked_in' });
  });

  it('adds a private note (PUT …/private_notes { note }), kept when the booking is told again; no notification', async () => {
    const hook = await receiver([200, 200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    await sim.push(fixture('created.json'));
    const token = await login();
    const path = '/api/v1/admin/50666/bookings/13477736/private_notes';
    const added = await call('PUT', path, { note: 'This is a private note' }, token);
    expect(added.json).toMatchObject({
      id: 13477736,
      notes: { public: [], private: [{ note: 'This is a private note' }] },
    });
    expect((await call('PUT', path, {}, token)).status).toBe(400);
    expect((await call('POST', path, { note: 'x' }, token)).status).toBe(405);
    await sim.push(fixture('created.json'));
    expect(sim.writes.privateNotes(13477736)).toEqual(['This is a private note']);
    expect(hook.received.length).toBe(2);
  });

  it('New Booking (POST …/bookings) answers the admin booking and pushes its purchase; List Bookings finds it; a legacy host has no v3', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    const token = await login();
    const path = '/api/v1/admin/50666/bookings';
    const body = {
      datetime: '2017-03-17T13:00:00+02:00',
      service_id: 104747,
      person_id: 30553,
      client: { first_name: 'Jamie', last_name: 'Oliver', email: 'j.oliver@test.com' },
    };
    const made = await call('POST', path, body, token);
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({
      company_id: 50666,
      datetime: body.datetime,
      service_id: 104747,
      is_cancelled: false,
    });
    const id = (made.json as { id: number }).id;
    await expect.poll(() => hook.received.length, { timeout: 5000 }).toBe(1);
    expect(sim.pushes[0]).toMatchObject({ shape: 'purchase', kind: 'create', url: hook.base });
    const echo = JSON.parse(hook.received[0]!.body) as { _embedded: { bookings: JsonObject[] } };
    expect(echo._embedded.bookings[0]).toMatchObject({
      id,
      datetime: body.datetime,
      email: 'j.oliver@test.com',
    });
    const listed = await call(
      'GET',
      `${path}?start_date=2017-03-16&end_date=2017-03-18&person_id=30553&email=j.oliver%40test.com`,
      undefined,
      token,
    );
    expect(
      (listed.json as { _embedded: { bookings: JsonObject[] } })._embedded.bookings.map((b) => b.id),
    ).toEqual([id]);
    const none = await call('GET', `${path}?start_date=2017-03-18&end_date=2017-03-19`, undefined, token);
    expect(none.json).toEqual({ total_entries: 0, _embedded: { bookings: [] } });
    sim.writes.occupy(body.datetime);
    expect((await call('POST', path, body, token)).json).toMatchObject({
      status: 409,
      error: 'No Space Left',
    });
    expect((await call('POST', path, { datetime: body.datetime }, token)).json).toEqual({
      error: 'Validation error',
      detail: 'service_id is missing',
    });
    sim.writes.legacyHost = true;
    expect(
      (await call('PUT', `/api/v3/admin/50666/bookings/${id}`, { current_multi_status: 'checked_in' }, token))
        .status,
    ).toBe(404);
  });

  it('refuses without App-Id, without or with an expired Auth-Token, a wrong password; fails on demand', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const { sim, call, login } = await started(hook.base);
    sim.writes.echoes = false;
    await sim.push(fixture('created.json'));
    const path = '/api/v1/admin/50666/bookings/13477736/cancel';
    const noApp = await fetch(`${sim.url}/api/v1/login`, { method: 'POST', body: '{}' });
    expect(noApp.status).toBe(401);
    expect(
      (await call('POST', '/api/v1/login', { email: 'admin@clinic.example', password: 'x' })).status,
    ).toBe(401);
    expect((await call('POST', path, {})).json).toEqual({ error: '401 Unauthorized' });
    const token = await login();
    sim.writes.expireTokens();
    expect((await call('POST', path, {}, token)).status).toBe(401);
    const fresh = await login();
    sim.writes.failNext(1, 429, 7);
    const limited = await call('POST', path, {}, fresh);
    expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '7']);
    sim.writes.failNext(1);
    expect((await call('POST', path, {}, fresh)).status).toBe(503);
    expect(sim.writes.isCancelled('13477736')).toBe(false);
    expect((await call('POST', path, {}, fresh)).status).toBe(200);
    expect(sim.writes.log.map((c) => c.status)).toEqual([401, 401, 401, 201, 401, 201, 429, 503, 200]);
  });
});
