/**
 * Square Appointments commands through a started hub (real Postgres) against the Square simulator
 * over real HTTP: each write's answer is lost once (a gateway's 503 after Square carried it out),
 * and the hub's next try sends the same request under the same `idempotency_key`, which Square
 * answers with the first answer: booked, moved and cancelled once each. A cancel of a booking staff
 * changed after the connector read it is refused for its version, read again and sent anew. Square's
 * notification of each change (signed over the hook URL) is the command's echo, with `causedBy`.
 */
import { SquareSimulator } from '@switchyard/connector-square/simulator';
import { fixtureSettings } from '@switchyard/connector-square/testing';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandHub, startCommandHub } from './command-hub.test-support.ts';

const db = useTestDatabase();
const PUBLIC_URL = 'https://hub.example.test';
let sim: SquareSimulator;
let c: CommandHub;

beforeAll(async () => {
  sim = new SquareSimulator({ config: fixtureSettings, retryDelaysMs: [] });
  await sim.start();
  c = await startCommandHub(db.url(), {
    file: 'square-commands.yaml',
    // Square signs the hook URL, so the config needs a public one; the pushes come to the hub's own
    // address, signed over this one, as through a proxy.
    publicUrl: PUBLIC_URL,
    instances: [
      '  - id: sq',
      '    connector: square',
      '    mode: push',
      '    settings:',
      `      signatureKey: ${fixtureSettings.signatureKey}`,
      `      accessToken: ${fixtureSettings.accessToken}`,
      `      apiBaseUrl: ${sim.apiBaseUrl}`,
    ],
    subscription: { id: 'crm', events: ['appointment.*', 'command.*'] },
  });
});

afterAll(async () => {
  await c?.stop();
  await sim?.close();
});

const writes = (method: string) => sim.calls.filter((x) => x.method === method);
/** Square's notification of the booking as it is now, pushed to the hub signed over its hook URL. */
const notify = (bookingId: string, type: 'booking.created' | 'booking.updated') =>
  sim.push(sim.notification(bookingId, type), {
    hookUrl: `${c.url}/hooks/sq`,
    notificationUrl: `${PUBLIC_URL}/hooks/sq`,
  });

describe('Square commands through a started hub', () => {
  it('book, reschedule and cancel, each answer lost once: re-sent under the same idempotency_key, each carried out once', async () => {
    sim.failNext({ afterWrite: true, retryAfter: '0' });
    const id = await c.send({
      type: 'appointment.book',
      instance: 'sq',
      data: {
        start: '2026-03-11T09:30:00Z',
        durationMinutes: 60,
        patient: { id: 'EX2QSVGTZN4K1E5QE1CBFNVQ8M' },
        practitioner: { id: 'TMXUrsBWWcHTt79t' },
        location: { id: 'LEQHH0YY8B42M' },
        service: { id: 'RU3PBTZTK7DXZDQFCJHOK2MC' },
        vendor: { service_variation_version: 1599775456731 },
      },
    });
    const booked = await c.finished(id);
    const made = [...sim.bookings.values()];
    expect(made).toHaveLength(1);
    expect(booked).toMatchObject({
      status: 'succeeded',
      result: { vendorIds: [made[0]!.id], appointmentId: expect.any(String) },
    });
    const posts = writes('POST');
    expect(posts.map((x) => x.status)).toEqual([503, 200]);
    expect(posts[1]!.body).toEqual(posts[0]!.body);
    expect(posts[0]!.body.idempotency_key).toBe(`${id}:book`);
    const subject = `appointment/${booked.result.appointmentId}`;
    expect((await notify(made[0]!.id, 'booking.created')).delivered).toBe(true);
    expect((await c.delivered('appointment.created', subject)).causedBy).toEqual({ commandId: id });

    sim.failNext({ afterWrite: true, writes: true, retryAfter: '0' });
    const move = await c.send({
      type: 'appointment.reschedule',
      subject,
      data: { start: '2026-03-12T16:00:00Z' },
    });
    expect((await c.finished(move)).status).toBe('succeeded');
    expect(made[0]).toMatchObject({ start_at: '2026-03-12T16:00:00Z', version: 1 });
    expect(writes('PUT').map((x) => [x.status, x.body.idempotency_key])).toEqual([
      [503, `${move}:move:v0`],
      [200, `${move}:move:v0`],
    ]);
    await notify(made[0]!.id, 'booking.updated');
    expect((await c.delivered('appointment.rescheduled', subject)).causedBy).toEqual({ commandId: move });

    // Staff change the booking between the cancel's read and its write, and Square's refusal of
    // the stale version is lost to a gateway's 503.
    sim.changeBeforeNextWrite((b) => {
      b.seller_note = 'rebooked by phone';
    });
    sim.failNext({ afterWrite: true, writes: true, retryAfter: '0' });
    const cancel = await c.send({ type: 'appointment.cancel', subject, data: { reason: 'patient called' } });
    expect((await c.finished(cancel)).status).toBe('succeeded');
    expect(made[0]).toMatchObject({ status: 'CANCELLED_BY_SELLER', version: 3 });
    expect(
      writes('POST')
        .slice(2)
        .map((x) => [x.status, x.body.idempotency_key]),
    ).toEqual([
      [503, `${cancel}:cancel:v1`], // refused (VERSION_MISMATCH), the answer lost: not known
      [409, `${cancel}:cancel:v1`], // the next try sends it again as it was: stale
      [200, `${cancel}:cancel:v2`], // read again, sent with the new version under a new key
    ]);
    await notify(made[0]!.id, 'booking.updated');
    expect((await c.delivered('appointment.cancelled', subject)).causedBy).toEqual({ commandId: cancel });
  });
});
