import { readFileSync } from 'node:fs';
import type { EventEnvelope } from '@switchyard/core';
import { startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, describe, expect, it } from 'vitest';
import { DocplannerSimulator } from './simulator.ts';
import { fixtureUrl } from './testing.ts';

const fixture = (name: string) => JSON.parse(readFileSync(fixtureUrl(name), 'utf8')) as Record<string, never>;

/** A hook receiver answering from a script (the last answer repeats). */
const receiver = (answers: Array<{ status: number; body?: string; type?: string }>) =>
  startHookReceiver({ path: '/hooks/dp', answers, whenDone: 'repeat', body: '{}' });

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function api(sim: DocplannerSimulator, path: string, init: RequestInit = {}, token?: string) {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(`${sim.url}${path}`, { ...init, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

async function token(sim: DocplannerSimulator, id = 'sim-client', secret = 'sim-secret') {
  return api(sim, '/oauth/v2/token', {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=integration',
  });
}

describe('DocplannerSimulator push', () => {
  it('sends the notification with the API-key header and records the answer', async () => {
    const hook = await receiver([{ status: 200 }]);
    cleanups.push(hook.close);
    const sim = new DocplannerSimulator({
      hookUrl: hook.url,
      apiKey: 'k3y-k3y-k3y',
      apiKeyHeader: 'x-dp-key',
    });
    const record = await sim.push(fixture('slot-booked.json'));
    expect(record.delivered).toBe(true);
    expect(record.attempts.map((a) => a.status)).toEqual([200]);
    expect(hook.received[0]!.headers['x-dp-key']).toBe('k3y-k3y-k3y');
    expect(JSON.parse(hook.received[0]!.body)).toEqual(fixture('slot-booked.json'));
  });

  it('retries a failed push twice (scaled 5 and 10 minutes), then buries it', async () => {
    const hook = await receiver([{ status: 500 }]);
    cleanups.push(hook.close);
    const sim = new DocplannerSimulator({ hookUrl: hook.url, timeScale: 0.00001 });
    const record = await sim.push(fixture('booking-canceled.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([500, 500, 500]);
    expect(record.buried).toBe(true);
    expect(sim.buried).toHaveLength(1);
  });

  it('stops retrying once the hub accepts', async () => {
    const hook = await receiver([{ status: 503 }, { status: 202 }]);
    cleanups.push(hook.close);
    const sim = new DocplannerSimulator({ hookUrl: hook.url, timeScale: 0.00001 });
    const record = await sim.push(fixture('break-created.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([503, 202]);
    expect(record.delivered).toBe(true);
    expect(hook.received).toHaveLength(2);
  });

  it('sends a gate once and records the refusal with its body', async () => {
    const hook = await receiver([{ status: 409, body: '{"error_code":7}' }]);
    cleanups.push(hook.close);
    const sim = new DocplannerSimulator({ hookUrl: hook.url, timeScale: 0.00001 });
    const record = await sim.push(fixture('slot-booking.json'));
    expect(record.attempts).toHaveLength(1);
    expect(record.buried).toBe(false);
    expect(sim.gateAnswers).toEqual([
      expect.objectContaining({
        status: 409,
        approved: false,
        json: { error_code: 7 },
        contentType: 'application/json',
      }),
    ]);
  });

  it('encodes a normalized event into a Docplanner push', async () => {
    const hook = await receiver([{ status: 200 }]);
    cleanups.push(hook.close);
    const sim = new DocplannerSimulator({ hookUrl: hook.url });
    const event: EventEnvelope = {
      specversion: '1.0',
      id: 'e1',
      type: 'slot.blocked',
      source: 'dp',
      subject: 'slot/1',
      time: '2026-03-05T07:30:00+01:00',
      datacontenttype: 'application/json',
      data: {
        id: 'h1',
        vendorIds: [{ system: 'docplanner', value: '7788123', current: true }],
        kind: 'block',
        status: 'busy-unavailable',
        start: '2026-03-11T12:00:00+01:00',
        end: '2026-03-11T13:00:00+01:00',
        practitioner: { id: '98765', given: 'Anna', family: 'Nowak' },
        location: { id: '445566' },
        organization: { id: '12345' },
      },
      connector: 'docplanner',
      instance: 'dp',
      vendortype: 'break-created',
    };
    await sim.push(event);
    const body = JSON.parse(hook.received[0]!.body);
    expect(body).toMatchObject({
      name: 'break-created',
      created_at: '2026-03-05T07:30:00+01:00',
      data: {
        break: { id: '7788123', since: '2026-03-11T12:00:00+01:00', till: '2026-03-11T13:00:00+01:00' },
        doctor: { id: '98765', name: 'Anna', surname: 'Nowak' },
      },
    });
  });
});

describe('DocplannerSimulator API', () => {
  async function started(options: ConstructorParameters<typeof DocplannerSimulator>[0] = {}) {
    const sim = new DocplannerSimulator(options);
    await sim.start();
    cleanups.push(() => sim.close());
    return sim;
  }

  it('issues tokens only for the right Basic credentials', async () => {
    const sim = await started();
    expect((await token(sim, 'sim-client', 'wrong')).status).toBe(401);
    const ok = await token(sim);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ token_type: 'bearer', expires_in: 3600 });
    expect(sim.tokensIssued).toBe(1);
  });

  it('serves the queue FIFO one by one, then 404 "No notifications found"', async () => {
    const sim = await started();
    sim.enqueue(fixture('slot-booked.json'), fixture('booking-confirmed.json'));
    const t = (await token(sim)).json.access_token as string;
    expect((await api(sim, '/api/v3/integration/notifications')).status).toBe(401);
    expect((await api(sim, '/api/v3/integration/notifications', {}, t)).json.name).toBe('slot-booked');
    expect((await api(sim, '/api/v3/integration/notifications', {}, t)).json.name).toBe('booking-confirmed');
    const empty = await api(sim, '/api/v3/integration/notifications', {}, t);
    expect(empty).toMatchObject({ status: 404, json: { errors: [], message: 'No notifications found' } });
  });

  it('serves /multiple with remaining, and checks the limit', async () => {
    const sim = await started();
    sim.enqueue(fixture('break-created.json'), fixture('break-moved.json'), fixture('break-removed.json'));
    const t = (await token(sim)).json.access_token as string;
    const first = await api(sim, '/api/v3/integration/notifications/multiple?limit=2', {}, t);
    expect(first.json.notifications.map((n: { name: string }) => n.name)).toEqual([
      'break-created',
      'break-moved',
    ]);
    expect(first.json.remaining).toBe(1);
    expect((await api(sim, '/api/v3/integration/notifications/multiple?limit=101', {}, t)).status).toBe(400);
  });

  it('expires notifications not pulled within 72 hours', async () => {
    const sim = await started({ tokenTtlSeconds: 400_000 });
    sim.enqueue(fixture('slot-booked.json'));
    sim.advanceClock(71 * 3_600_000);
    sim.enqueue(fixture('booking-confirmed.json'));
    sim.advanceClock(2 * 3_600_000);
    expect(sim.queueLength).toBe(1);
    expect(sim.expired.map((n) => n.name)).toEqual(['slot-booked']);
  });

  it('answers 401 for expired or revoked tokens', async () => {
    const sim = await started();
    const t = (await token(sim)).json.access_token as string;
    sim.expireTokens();
    expect((await api(sim, '/api/v3/integration/notifications', {}, t)).status).toBe(401);
    const t2 = (await token(sim)).json.access_token as string;
    expect((await api(sim, '/api/v3/integration/notifications', {}, t2)).status).toBe(404);
    sim.revokeTokens();
    expect((await api(sim, '/api/v3/integration/notifications', {}, t2)).status).toBe(401);
  });

  it('re-pushes buried notifications on release, at most once an hour (429 with Retry-After)', async () => {
    const hook = await receiver([{ status: 500 }, { status: 500 }, { status: 500 }, { status: 200 }]);
    cleanups.push(hook.close);
    const sim = await started({ hookUrl: hook.url, timeScale: 0.00001 });
    await sim.push(fixture('break-created.json'));
    expect(sim.buried).toHaveLength(1);
    const t = (await token(sim)).json.access_token as string;
    const release = await api(sim, '/api/v3/integration/notifications/release', { method: 'POST' }, t);
    expect(release.status).toBe(202);
    await sim.idle();
    expect(sim.buried).toHaveLength(0);
    expect(hook.received).toHaveLength(4);
    const again = await api(sim, '/api/v3/integration/notifications/release', { method: 'POST' }, t);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(3500);
    sim.advanceClock(3_600_000);
    const fresh = (await token(sim)).json.access_token as string; // the first one expired with the hour
    const later = await api(sim, '/api/v3/integration/notifications/release', { method: 'POST' }, fresh);
    expect(later.status).toBe(202);
  });

  it('re-reads a known booking and 404s others', async () => {
    const sim = await started();
    sim.enqueue(fixture('slot-booked.json'));
    const t = (await token(sim)).json.access_token as string;
    const path = '/api/v3/integration/facilities/12345/doctors/98765/addresses/445566/bookings';
    const found = await api(sim, `${path}/210045781`, {}, t);
    expect(found.status).toBe(200);
    expect(found.json).toMatchObject({ id: '210045781', start_at: '2026-03-10T11:30:00+01:00' });
    expect((await api(sim, `${path}/999`, {}, t)).status).toBe(404);
  });

  it("lists an address's bookings from start to end (getBookings), the patient only with booking.patient; 400 without the range", async () => {
    const sim = await started();
    sim.enqueue(fixture('slot-booked.json'));
    const t = (await token(sim)).json.access_token as string;
    const path = '/api/v3/integration/facilities/12345/doctors/98765/addresses/445566/bookings';
    const range = (from: string, to: string, more = '') =>
      `${path}?start=${encodeURIComponent(from)}&end=${encodeURIComponent(to)}${more}`;
    const plain = await api(sim, range('2026-03-10T11:30:00+01:00', '2026-03-10T12:00:00+01:00'), {}, t);
    expect(plain.status).toBe(200);
    expect(plain.json._items).toEqual([expect.objectContaining({ id: '210045781', status: 'booked' })]);
    expect(plain.json._items[0]).not.toHaveProperty('patient');
    const withPatient = await api(
      sim,
      range('2026-03-10T10:30:00Z', '2026-03-10T10:45:00Z', '&with=booking.patient'),
      {},
      t,
    );
    expect(withPatient.json._items[0].patient).toMatchObject({ name: expect.any(String) });
    const before = await api(sim, range('2026-03-10T09:00:00+01:00', '2026-03-10T11:00:00+01:00'), {}, t);
    expect(before.json).toEqual({ _items: [] });
    expect((await api(sim, `${path}?start=2026-03-10T09%3A00%3A00%2B01%3A00`, {}, t)).status).toBe(400);
    expect((await api(sim, `${path.replace('445566', '1')}?start=x&end=y`, {}, t)).status).toBe(400);
  });

  it('answers failNext with the status and Retry-After', async () => {
    const sim = await started();
    const t = (await token(sim)).json.access_token as string;
    sim.failNext(1, 503, 7);
    const failed = await api(sim, '/api/v3/integration/notifications', {}, t);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('7');
    expect((await api(sim, '/api/v3/integration/notifications', {}, t)).status).toBe(404);
  });

  // confirmBooking (API reference 1.9.0): `confirmed_by` required, `user` or `admin` (400
  // ConfirmBookingValidationError); 409 with the reference's words for a visit confirmed before or
  // in the past; getBookings tells `confirmed` with `with=booking.confirmation` (BookingsWithConfirmation).
  it('confirms a booking as confirmBooking does: 400 without a valid confirmed_by, 409 when confirmed before or past, told by getBookings', async () => {
    const sim = await started();
    sim.writes.echoes = false;
    const place = { facility: '90211', doctor: '182733', address: '221304' };
    const start = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}Z$/, '+00:00');
    sim.writes.addBooking(place, { id: '501', status: 'booked', start_at: start });
    sim.writes.addBooking(place, { id: '502', status: 'booked', start_at: '2026-03-10T11:30:00+01:00' });
    const t = (await token(sim)).json.access_token as string;
    const base = `/api/v3/integration/facilities/${place.facility}/doctors/${place.doctor}/addresses/${place.address}`;
    const confirm = (id: string, body: unknown) =>
      api(
        sim,
        `${base}/bookings/${id}/confirm`,
        {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
        t,
      );
    expect(await confirm('501', { confirmed_by: 'doctor' })).toMatchObject({
      status: 400,
      json: { message: 'confirmed_by value is invalid' },
    });
    expect((await confirm('501', { confirmed_by: 'user' })).status).toBe(204);
    expect(await confirm('501', { confirmed_by: 'admin' })).toMatchObject({
      status: 409,
      json: { errors: [], message: 'Visit has already been confirmed' },
    });
    expect((await confirm('502', { confirmed_by: 'admin' })).json).toEqual({
      errors: [],
      message: 'Visit is in the past',
    });
    expect(sim.writes.confirmed).toEqual(new Map([['501', 'user']]));
    const range = `start=${encodeURIComponent('2026-01-01T00:00:00+00:00')}&end=${encodeURIComponent('2031-01-01T00:00:00+00:00')}`;
    const listed = await api(sim, `${base}/bookings?${range}&with=booking.confirmation`, {}, t);
    expect(listed.json._items.map((b: { id: string; confirmed: boolean }) => [b.id, b.confirmed])).toEqual([
      ['501', true],
      ['502', false],
    ]);
  });
});
