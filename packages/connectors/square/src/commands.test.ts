import { readFileSync } from 'node:fs';
import type { CommandRequest } from '@switchyard/core';
import { describeCommandConformance, fetchVendorHttp, memoryCommandContext } from '@switchyard/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commands, commandsUnavailable, commandUnsupported, squareSaid } from './commands.ts';
import type { Config } from './config.ts';
import connector from './index.ts';
import { SquareSimulator } from './simulator.ts';
import { fixtureSettings, fixtureUrl, type VendorBooking } from './testing.ts';

// Square's documented RetrieveBooking example (fixtures/README.md).
const example = (
  JSON.parse(readFileSync(fixtureUrl('retrieve-booking.json', 'fixtures-api'), 'utf8')) as {
    booking: VendorBooking;
  }
).booking;
const ID = example.id;

const book = {
  id: 'cmd-book',
  type: 'appointment.book',
  instance: 'square-main',
  data: {
    start: '2026-03-10T11:30:00+01:00',
    durationMinutes: 60,
    patient: { id: 'EX2QSVGTZN4K1E5QE1CBFNVQ8M' },
    practitioner: { id: 'TMXUrsBWWcHTt79t' },
    location: { id: 'LEQHH0YY8B42M' },
    service: { id: 'RU3PBTZTK7DXZDQFCJHOK2MC' },
    comment: 'first visit',
    vendor: { service_variation_version: 1599775456731 },
  },
} as CommandRequest<'appointment.book'>;
const cancel = {
  id: 'cmd-cancel',
  type: 'appointment.cancel',
  subject: 'appointment/hub-1',
  data: { reason: 'patient called' },
} as CommandRequest<'appointment.cancel'>;
const move = {
  id: 'cmd-move',
  type: 'appointment.reschedule',
  subject: 'appointment/hub-1',
  data: { start: '2020-11-27T15:00:00+01:00' },
} as CommandRequest<'appointment.reschedule'>;

// The floor: 503, 429 (Retry-After kept), 422, a 200 page for a booking, and no blind second POST
// (Square's key is in the body: the re-sent POST carries the same one).
describeCommandConformance({
  connector,
  config: fixtureSettings,
  samples: {
    'appointment.book': { data: book.data },
    'appointment.cancel': { data: {}, vendorIds: [ID] },
    'appointment.reschedule': { data: move.data, vendorIds: [ID] },
  },
  idempotencyKeyOf: (request) => (request.json as { idempotency_key?: string } | undefined)?.idempotency_key,
});

describe('Square command mapping', () => {
  it("reads Square's error list into the message: code, field and detail of each", () => {
    expect(
      squareSaid({
        status: 400,
        headers: {},
        body: {
          errors: [
            {
              category: 'INVALID_REQUEST_ERROR',
              code: 'MISSING_REQUIRED_PARAMETER',
              detail: 'Missing required parameter.',
              field: 'booking.location_id',
            },
            { category: 'INVALID_REQUEST_ERROR', code: 'BAD_REQUEST' },
          ],
        },
      }),
    ).toBe('MISSING_REQUIRED_PARAMETER (booking.location_id): Missing required parameter.; BAD_REQUEST');
  });

  it('refuses a booking without what CreateBooking requires, and a move that changes more than the time', () => {
    expect(commandUnsupported(book)).toBeUndefined();
    const bare = { ...book, data: { start: book.data.start, patient: { name: 'Jan' } } } as typeof book;
    expect(commandUnsupported(bare)).toBe(
      'Square books only with location.id (the Square location), patient.id (the Square customer id), practitioner.id (the team member), service.id (the service variation), vendor.service_variation_version',
    );
    expect(commandUnsupported({ ...move, data: { ...move.data, durationMinutes: 30 } })).toMatch(
      /in time only/,
    );
  });

  it('takes commands only with an access token', () => {
    expect(commandsUnavailable({ signatureKey: fixtureSettings.signatureKey })).toMatch(/accessToken/);
    expect(commandsUnavailable(fixtureSettings)).toBeUndefined();
  });
});

let sim: SquareSimulator;
let config: Config;
beforeEach(async () => {
  sim = new SquareSimulator({ config: fixtureSettings });
  await sim.start();
  sim.add(example);
  config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
});
afterEach(async () => {
  await sim.close();
});

/** A try against the simulator over real HTTP; a later one shares the command's state. */
const attempt = (
  n: number,
  previous?: ReturnType<typeof memoryCommandContext<Config>>,
  vendorIds: string[] = [],
) =>
  memoryCommandContext({
    config,
    vendorIds,
    attempt: n,
    vendorApi: fetchVendorHttp.request,
    ...(previous ? { commandState: previous.commandState } : {}),
  });

describe('Square commands against the simulator', () => {
  it('books with the command id as idempotency_key; a try after a lost answer sends the same request and gets the same booking', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect(await commands['appointment.book']!(book, first)).toMatchObject({ outcome: 'transient' });
    expect(sim.bookings.size).toBe(2); // the example and the one the lost answer made
    const second = attempt(2, first);
    const result = await commands['appointment.book']!(book, second);
    const made = [...sim.bookings.values()].find((b) => b.id !== ID)!;
    expect(result).toMatchObject({ outcome: 'done', vendorIds: [made.id] });
    expect(sim.bookings.size).toBe(2);
    const posts = sim.calls.filter((c) => c.method === 'POST');
    expect(posts.map((c) => c.body)).toEqual([posts[0]!.body, posts[0]!.body]);
    expect(posts[0]!.body).toMatchObject({
      idempotency_key: 'cmd-book:book',
      booking: {
        start_at: '2026-03-10T11:30:00+01:00',
        location_id: 'LEQHH0YY8B42M',
        customer_id: 'EX2QSVGTZN4K1E5QE1CBFNVQ8M',
        customer_note: 'first visit',
        appointment_segments: [
          {
            team_member_id: 'TMXUrsBWWcHTt79t',
            service_variation_id: 'RU3PBTZTK7DXZDQFCJHOK2MC',
            service_variation_version: 1599775456731,
            duration_minutes: 60,
          },
        ],
      },
    });
  });

  it('cancels with the version read; a try after a lost answer re-sends the same request and key, cancelled once', async () => {
    sim.failNext({ afterWrite: true, writes: true });
    const first = attempt(1, undefined, [ID]);
    expect(await commands['appointment.cancel']!(cancel, first)).toMatchObject({ outcome: 'transient' });
    expect(sim.bookings.get(ID)).toMatchObject({ status: 'CANCELLED_BY_SELLER', version: 2 });
    const second = attempt(2, first, [ID]);
    expect(await commands['appointment.cancel']!(cancel, second)).toMatchObject({ outcome: 'done' });
    const sent = { idempotency_key: 'cmd-cancel:cancel:v1', booking_version: 1 };
    expect(sim.calls.map((c) => [c.method, c.status, c.body])).toEqual([
      ['GET', 200, {}],
      ['POST', 503, sent],
      ['POST', 200, sent], // Square's replay of the first answer: not cancelled again
    ]);
    expect(sim.bookings.get(ID)).toMatchObject({ version: 2 });
  });

  it('a cancel refused for a stale version (staff changed the booking after the read) reads again and sends the new version under a new key', async () => {
    sim.changeBeforeNextWrite((b) => {
      b.seller_note = 'moved chair';
    });
    const result = await commands['appointment.cancel']!(cancel, attempt(1, undefined, [ID]));
    expect(result).toMatchObject({ outcome: 'done' });
    expect(sim.calls.map((c) => [c.method, c.status, c.body])).toEqual([
      ['GET', 200, {}],
      ['POST', 409, { idempotency_key: 'cmd-cancel:cancel:v1', booking_version: 1 }],
      ['GET', 200, {}],
      ['POST', 200, { idempotency_key: 'cmd-cancel:cancel:v2', booking_version: 2 }],
    ]);
    expect(sim.bookings.get(ID)).toMatchObject({ status: 'CANCELLED_BY_SELLER', version: 3 });
  });

  it('moves with the version read; a try after a lost answer re-sends the same request and key, moved once', async () => {
    sim.failNext({ afterWrite: true, writes: true });
    const first = attempt(1, undefined, [ID]);
    expect(await commands['appointment.reschedule']!(move, first)).toMatchObject({ outcome: 'transient' });
    expect(await commands['appointment.reschedule']!(move, attempt(2, first, [ID]))).toMatchObject({
      outcome: 'done',
    });
    const sent = {
      idempotency_key: 'cmd-move:move:v1',
      booking: { version: 1, start_at: '2020-11-27T15:00:00+01:00' },
    };
    expect(sim.calls.map((c) => [c.method, c.status, c.body])).toEqual([
      ['GET', 200, {}],
      ['PUT', 503, sent],
      ['PUT', 200, sent],
    ]);
    expect(sim.bookings.get(ID)).toMatchObject({ start_at: '2020-11-27T14:00:00Z', version: 2 });
  });

  it('is done without a write when the booking is already cancelled (unchanged)', async () => {
    sim.add({ ...example, status: 'CANCELLED_BY_CUSTOMER' });
    const ctx = attempt(1, undefined, [ID]);
    expect(await commands['appointment.cancel']!(cancel, ctx)).toEqual({ outcome: 'done', unchanged: true });
    expect(sim.calls.map((c) => c.method)).toEqual(['GET']);
  });

  it("maps Square's answers: 429 RATE_LIMITED transient with its Retry-After, 400 refused with the error's code, 5xx transient", async () => {
    const ctx = attempt(1);
    sim.failNext({ status: 429, retryAfter: '3' });
    expect(await commands['appointment.book']!(book, ctx)).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 3000,
    });
    sim.failNext({ status: 500 });
    expect(await commands['appointment.book']!(book, attempt(2, ctx))).toMatchObject({
      outcome: 'transient',
    });
    const noSuch = await commands['appointment.cancel']!(cancel, attempt(1, undefined, ['no-such-booking']));
    expect(noSuch).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('NOT_FOUND (booking_id)'),
    });
  });
});
