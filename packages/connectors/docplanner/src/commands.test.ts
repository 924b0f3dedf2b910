import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  ConnectorError,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type VendorHttp,
} from '@switchyard/core';
import {
  capturingLogger,
  describeCommandConformance,
  fetchVendorHttp,
  MemoryStateStore,
} from '@switchyard/testing';
import { startMaintenancePage } from '@switchyard/testing/simulator-kit/maintenance-page';
import { startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, describe, expect, it } from 'vitest';
import { BOOK_SETTLE_MS, commands, commandUnsupported } from './commands.ts';
import type { Config } from './config.ts';
import { docplannerConnector } from './index.ts';
import { accessToken } from './pull.ts';
import { DocplannerSimulator } from './simulator.ts';

const PLACE = { facility: '90211', doctor: '182733', address: '221304' };
const CURRENT: JsonObject = {
  id: 'hub-1',
  vendorIds: [],
  status: 'booked',
  organization: { id: PLACE.facility },
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  service: { id: '4455661' },
};

const sims: DocplannerSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function setup() {
  const sim = new DocplannerSimulator({ clientId: 'dp-client', clientSecret: 'dp-secret' });
  sims.push(sim);
  const url = await sim.start();
  sim.writes.echoes = false;
  sim.writes.addBooking(PLACE, {
    id: '2087456123',
    status: 'booked',
    start_at: '2026-03-10T11:30:00+01:00',
    duration: 30,
    address_service: { id: '4455661' },
  });
  const state = new MemoryStateStore();
  const commandState = new MemoryStateStore(); // keyed by command id, so one store serves every test
  const ctx = (over: Partial<CommandContext<Config>> = {}): CommandContext<Config> => ({
    instanceId: 'dp',
    config: { apiBaseUrl: url, clientId: 'dp-client', clientSecret: 'dp-secret' },
    http: fetchVendorHttp,
    vendorIds: ['2087456123'],
    current: CURRENT,
    state,
    commandState,
    logger: capturingLogger(),
    attempt: 1,
    ...over,
  });
  return { sim, ctx };
}

function cmd<T extends CommandRequest['type']>(type: T, data: object): CommandRequest<T> {
  return {
    id: `cmd-${Math.random()}`,
    type,
    subject: 'appointment/hub-1',
    data,
  } as unknown as CommandRequest<T>;
}

// The floor every connector's commands meet: 503 and 429 transient (Retry-After kept), 422 permanent.
describeCommandConformance({
  connector: docplannerConnector,
  config: { apiBaseUrl: 'https://dp.test', clientId: 'dp-client', clientSecret: 'dp-secret' },
  // The token comes first: answered here, the kit's answers reach each command's own call.
  vendorApi: (request) =>
    request.url.endsWith('/oauth/v2/token')
      ? { status: 200, headers: {}, body: { access_token: 'conformance-token', expires_in: 3600 } }
      : undefined,
  samples: {
    'appointment.book': {
      data: {
        start: '2026-03-10T11:30:00+01:00',
        durationMinutes: 30,
        patient: { name: 'Anna Kowalska', phone: '+48500100200', email: 'anna@example.com' },
        practitioner: { id: PLACE.doctor },
        location: { id: PLACE.address },
        organization: { id: PLACE.facility },
        service: { id: '4455661' },
      },
    },
    'appointment.cancel': { data: {}, vendorIds: ['12348'], current: CURRENT },
    'appointment.reschedule': {
      data: { start: '2026-03-11T11:30:00+01:00' },
      vendorIds: ['12348'],
      current: CURRENT,
    },
    'appointment.confirm': { data: {}, vendorIds: ['12348'], current: CURRENT },
    'appointment.mark_arrived': { data: {}, vendorIds: ['12348'], current: CURRENT },
    'appointment.mark_no_show': { data: {}, vendorIds: ['12348'], current: CURRENT },
    'slot.block': {
      data: {
        start: '2026-03-11T13:00:00+01:00',
        end: '2026-03-11T14:00:00+01:00',
        practitioner: { id: PLACE.doctor },
        location: { id: PLACE.address },
        organization: { id: PLACE.facility },
      },
    },
    'slot.move_block': {
      data: { start: '2026-03-11T15:00:00+01:00', end: '2026-03-11T16:00:00+01:00' },
      vendorIds: ['8000001'],
      current: CURRENT,
    },
    'slot.unblock': { data: {}, vendorIds: ['8000001'], current: CURRENT },
  },
});

describe('Docplanner commands against the simulator', () => {
  it('cancel: DELETE the booking with the reason, with a token; a repeated cancel is done (already canceled)', async () => {
    const { sim, ctx } = await setup();
    const first = await commands['appointment.cancel']!(
      cmd('appointment.cancel', { reason: 'patient called' }),
      ctx(),
    );
    expect(first).toMatchObject({ outcome: 'done' });
    expect(sim.writes.log).toEqual([
      {
        method: 'DELETE',
        path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/bookings/2087456123`,
        body: { reason: 'patient called' },
        status: 204,
      },
    ]);
    expect(sim.tokensIssued).toBe(1);
    const again = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx({ attempt: 2 }));
    // Docplanner refuses the second DELETE 400 ("Visit … cannot be canceled because it is not
    // booked", cancelBooking's DeleteBookingValidationError): the re-read says canceled, done.
    expect(again).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: {
        status: 400,
        body: { message: 'Visit 2087456123 cannot be canceled because it is not booked' },
      },
    });
    expect(sim.writes.log.map((w) => w.status)).toEqual([204, 400]);
  });

  it('cancel of a booking canceled in Docplanner that the hub has not heard of waits for the notification (a move reads canceled too)', async () => {
    const { sim, ctx } = await setup();
    // Its move chain would say it was not moved, but done now, the patient's cancellation notified
    // after it would be taken for this command's echo (causedBy), which subscribers skip.
    // Moved (or canceled) by the patient in Docplanner: the old booking reads canceled by the user.
    sim.writes.addBooking(PLACE, {
      id: '2087456123',
      status: 'canceled',
      canceled_by: 'user',
      start_at: '2026-03-10T11:30:00+01:00',
      duration: 30,
      address_service: { id: '4455661' },
    });
    const waiting = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx());
    expect(waiting).toMatchObject({ outcome: 'transient' });
    expect(waiting.outcome === 'transient' && waiting.message).toMatch(
      /reads canceled at Docplanner \(by the user\) and the hub has no notification of it yet/,
    );
    // The cancellation's notification came: done already.
    const heard = ctx({ current: { ...CURRENT, status: 'cancelled' } });
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), heard)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
  });

  it('transient on 503 and on 429 with its Retry-After; permanent on an unknown booking with the vendor answer', async () => {
    const { sim, ctx } = await setup();
    sim.failNext(1, 503);
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx())).toMatchObject({
      outcome: 'transient',
      vendor: { status: 503 },
    });
    sim.failNext(1, 429, 7);
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx())).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 7000,
    });
    const missing = await commands['appointment.cancel']!(
      cmd('appointment.cancel', {}),
      ctx({ vendorIds: ['999'] }),
    );
    expect(missing).toMatchObject({
      outcome: 'permanent',
      vendor: { status: 404, body: { message: 'Object not found' } },
    });
  });

  it('presence: POST marks the patient present, DELETE absent (a no-show, notified as presence-marked ABSENT); nothing clears a mark', async () => {
    // integrations.docplanner.com/guide/api-objects/patient-presence.html: "POST: Marks the patient
    // as present for the visit. DELETE: Marks the patient as non-present (no-show)."
    const { sim, ctx } = await setup();
    const hook = await startHookReceiver({
      path: '/hooks/dp',
      answers: [{ status: 200 }],
      whenDone: 'repeat',
    });
    try {
      sim.writes.echoes = true;
      sim.writes.echoDelayMs = 0;
      sim.writes.hookUrl = hook.url;
      expect(
        await commands['appointment.mark_no_show']!(cmd('appointment.mark_no_show', {}), ctx()),
      ).toMatchObject({ outcome: 'done' });
      expect(sim.writes.log.map((w) => `${w.method} ${w.path.split('/').slice(-3).join('/')}`)).toEqual([
        'DELETE 2087456123/presence/patient',
      ]);
      expect(sim.writes.presence.get('2087456123')).toBe('ABSENT');
      await expect.poll(() => hook.received.length).toBe(1);
      expect(JSON.parse(hook.received[0]!.body)).toMatchObject({
        name: 'presence-marked',
        data: { visit_booking: { id: '2087456123' }, presence: 'ABSENT' },
      });
      // Sent as this DELETE, a "clear" recorded a no-show (the doctor is not charged for the visit).
      expect(commands['appointment.clear_presence']).toBeUndefined();
    } finally {
      await hook.close();
    }
  });

  it("transient on the rate limiter's 429, retried once its X-RateLimit-Reset has come (it sends no Retry-After)", async () => {
    // integrations.docplanner.com/guide/fundamentals/rate-limits.html: an hourly request quota and
    // a per-minute limit of writes; 429 until the reset X-RateLimit-Reset names (ISO 8601).
    const { sim, ctx } = await setup();
    sim.rateLimitNext(1, 120);
    const limited = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx());
    expect(limited).toMatchObject({ outcome: 'transient', vendor: { status: 429 } });
    const wait = limited.outcome === 'transient' ? limited.retryAfterMs : undefined;
    expect(wait).toBeGreaterThan(118_000);
    expect(wait).toBeLessThanOrEqual(120_000);
    expect(sim.bookings.get('2087456123')?.booking.status).toBe('booked');
  });

  it('refreshes a revoked token on 401 and goes on', async () => {
    const { sim, ctx } = await setup();
    const c = ctx();
    expect(await commands['appointment.mark_arrived']!(cmd('appointment.mark_arrived', {}), c)).toMatchObject(
      {
        outcome: 'done',
      },
    );
    sim.revokeTokens();
    expect(await commands['appointment.mark_no_show']!(cmd('appointment.mark_no_show', {}), c)).toMatchObject(
      { outcome: 'done' },
    );
    expect(sim.tokensIssued).toBe(2);
    expect(
      sim.writes.log.map((w) => `${w.method} ${w.path.split('/').slice(-3).join('/')} ${w.status}`),
    ).toEqual(['POST 2087456123/presence/patient 204', 'DELETE 2087456123/presence/patient 204']);
  });

  it('reschedule: POST move with start and service; the new booking id is returned for aliasing', async () => {
    const { sim, ctx } = await setup();
    const r = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-03-11T09:00:00+01:00' }),
      ctx(),
    );
    expect(r.outcome).toBe('done');
    const newId = r.outcome === 'done' ? r.vendorIds?.[0] : undefined;
    expect(newId).toMatch(/^\d+$/);
    expect(newId).not.toBe('2087456123');
    expect(sim.writes.log[0]).toMatchObject({
      method: 'POST',
      body: { start: '2026-03-11T09:00:00+01:00', address_service_id: '4455661' },
      status: 201,
    });
    expect(sim.bookings.get('2087456123')?.booking.status).toBe('canceled');
  });

  it("sends a start in Docplanner's ISO 8601 form, whichever RFC 3339 form the command gave (a space, a lowercase t or z)", async () => {
    const { sim, ctx } = await setup();
    const booked = await commands['appointment.book']!(
      {
        id: 'b-space',
        type: 'appointment.book',
        data: {
          start: '2026-03-12 10:00:00+01:00',
          durationMinutes: 30,
          vendor: { insurance_provider_id: 12, insurance_plan_id: '7a' },
          patient: { given: 'Anna', phone: '+48500100200' },
          practitioner: { id: PLACE.doctor },
          location: { id: PLACE.address },
          organization: { id: PLACE.facility },
          service: { id: '4455661' },
        },
      } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(booked.outcome).toBe('done');
    // Insurance ids go as the strings BookSlotRequest types them, a number given or not.
    expect(sim.writes.log[0]!.body).toMatchObject({ insurance_provider_id: '12', insurance_plan_id: '7a' });
    // Before: …/slots/2026-03-12%2010%3A00%3A00%2B01%3A00/book, a slot no ISO 8601 reader knows.
    expect(sim.writes.log[0]!.path).toBe(
      `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/slots/${encodeURIComponent('2026-03-12T10:00:00+01:00')}/book`,
    );
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-03-13t09:00:00z' }),
      ctx(),
    );
    expect(moved.outcome).toBe('done');
    expect(sim.writes.log[1]).toMatchObject({ method: 'POST', body: { start: '2026-03-13T09:00:00Z' } });
  });

  it('a booking moved at Docplanner before the hub heard of it: presence and move wait for the notification, a canceled one stays refused', async () => {
    const { ctx } = await setup();
    // Staff move the booking in Docplanner (another client: the hub's state knows nothing of it).
    const staff = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-06-02T09:00:00+02:00', durationMinutes: 30 }),
      ctx({ state: new MemoryStateStore(), commandState: new MemoryStateStore() }),
    );
    expect(staff.outcome).toBe('done');
    const newId = staff.outcome === 'done' ? staff.vendorIds![0]! : '';
    // The hub's command still names the old booking, which Docplanner refuses (canceled by the move).
    const arrived = await commands['appointment.mark_arrived']!(cmd('appointment.mark_arrived', {}), ctx());
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-06-03T09:00:00+02:00', durationMinutes: 30 }),
      ctx(),
    );
    for (const r of [arrived, moved]) {
      // Before: permanent, Docplanner's "already canceled or moved".
      expect(r).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining(`moved at Docplanner to booking ${newId}`),
      });
    }
    // A booking canceled, not moved (its chain ends at itself): the refusal stands.
    await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx({ vendorIds: [newId] }));
    const refused = await commands['appointment.mark_arrived']!(
      cmd('appointment.mark_arrived', {}),
      ctx({ vendorIds: [newId] }),
    );
    expect(refused.outcome).toBe('permanent');
  });

  it('reschedule to another address: the next command goes to the new address before any notification names it', async () => {
    const { sim, ctx } = await setup();
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', {
        start: '2026-06-01T09:00:00+02:00',
        location: { id: '221305' },
        durationMinutes: 20,
      }),
      ctx(),
    );
    expect(moved.outcome).toBe('done');
    const newId = moved.outcome === 'done' ? moved.vendorIds![0]! : '';
    expect(sim.writes.log[0]).toMatchObject({
      path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/bookings/2087456123/move`,
      body: { address_id: '221305', duration: 20 },
      status: 201,
    });
    // The hub aliased the new id; the known state is still the old booking's (no notification yet).
    const cancelled = await commands['appointment.cancel']!(
      cmd('appointment.cancel', {}),
      ctx({ vendorIds: ['2087456123', newId] }),
    );
    expect(cancelled).toEqual({ outcome: 'done', vendor: { status: 204, body: '' } });
    expect(sim.writes.log[1]).toMatchObject({
      method: 'DELETE',
      path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/221305/bookings/${newId}`,
      status: 204,
    });
    expect(sim.bookings.get(newId)?.booking.status).toBe('canceled');
  });

  it("reschedule to another doctor's address in the facility: the Location header names the doctor, and the next command goes there", async () => {
    // moveBooking (API 1.13.0, docplanner.github.io/integrations-hub-front-app/docs, Bookings): an
    // address_id of a different doctor within the facility reassigns the booking to that doctor,
    // "and the Location header of the response names the doctor the booking now belongs to".
    const { sim, ctx } = await setup();
    sim.writes.addAddress({ facility: PLACE.facility, doctor: '182799', address: '221399' });
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', {
        start: '2026-06-01T09:00:00+02:00',
        location: { id: '221399' },
        durationMinutes: 20,
      }),
      ctx(),
    );
    expect(moved.outcome).toBe('done');
    const newId = moved.outcome === 'done' ? moved.vendorIds![0]! : '';
    expect(sim.bookings.get(newId)).toMatchObject({ doctor: '182799', address: '221399' });
    const c = ctx({ vendorIds: ['2087456123', newId] });
    expect(await c.state.get(`docplanner:moved-place:${newId}`)).toEqual({
      facility: PLACE.facility,
      doctor: '182799',
      address: '221399',
    });
    // Before Docplanner's notification of the move: the cancel goes to the new doctor's path (with
    // the old doctor's, Docplanner does not find the booking there).
    const cancelled = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), c);
    expect(cancelled).toEqual({ outcome: 'done', vendor: { status: 204, body: '' } });
    expect(sim.writes.log[1]).toMatchObject({
      method: 'DELETE',
      path: `/facilities/${PLACE.facility}/doctors/182799/addresses/221399/bookings/${newId}`,
      status: 204,
    });
  });

  it("reschedule to an address of another facility: refused 403 with Docplanner's message, permanent", async () => {
    const { sim, ctx } = await setup();
    sim.writes.addAddress({ facility: '90999', doctor: '182733', address: '221500' });
    const r = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-06-01T09:00:00+02:00', location: { id: '221500' } }),
      ctx(),
    );
    expect(r).toMatchObject({
      outcome: 'permanent',
      message: 'Docplanner move answered 403: This address does not belong to this facility',
      vendor: { status: 403 },
    });
    expect(sim.bookings.get('2087456123')?.booking.status).toBe('booked');
  });

  it('a move within its address notes no place; once a notification named the new booking, its known place is used', async () => {
    const { sim, ctx } = await setup();
    const c = ctx();
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-06-01T09:00:00+02:00' }),
      c,
    );
    const newId = moved.outcome === 'done' ? moved.vendorIds![0]! : '';
    expect(await c.state.get(`docplanner:moved-place:${newId}`)).toBeUndefined();
    // A place noted for a booking that a notification has named since is not read: the vendor's
    // word is the latest (here the noted place is wrong on purpose).
    await c.state.set(`docplanner:moved-place:${newId}`, { ...PLACE, address: '999' });
    const known = {
      ...CURRENT,
      vendorIds: [
        { system: 'docplanner', instance: 'dp', value: '2087456123', current: false },
        { system: 'docplanner', instance: 'dp', value: newId, current: true },
      ],
    };
    const marked = await commands['appointment.mark_arrived']!(
      cmd('appointment.mark_arrived', {}),
      ctx({ vendorIds: ['2087456123', newId], current: known }),
    );
    expect(marked).toMatchObject({ outcome: 'done' });
    expect(sim.writes.log[1]).toMatchObject({
      path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/bookings/${newId}/presence/patient`,
      status: 204,
    });
  });

  it('book: POST the slot with the patient and duration; a taken slot is a permanent 404; no place is refused before any call', async () => {
    const { sim, ctx } = await setup();
    const data = {
      start: '2026-03-12T10:00:00+01:00',
      durationMinutes: 30,
      patient: { given: 'Anna', family: 'Kowalska', phone: '+48500100200', email: 'anna@example.com' },
      practitioner: { id: PLACE.doctor },
      location: { id: PLACE.address },
      organization: { id: PLACE.facility },
      service: { id: '4455661' },
    };
    const booked = await commands['appointment.book']!(
      { id: 'b1', type: 'appointment.book', data } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(booked.outcome).toBe('done');
    expect(sim.writes.log[0]).toMatchObject({
      method: 'POST',
      path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/slots/${encodeURIComponent(data.start)}/book`,
      body: {
        address_service_id: '4455661',
        duration: 30,
        is_returning: false,
        patient: { name: 'Anna', surname: 'Kowalska', phone: '+48500100200', email: 'anna@example.com' },
      },
      status: 200,
    });
    const taken = await commands['appointment.book']!(
      { id: 'b2', type: 'appointment.book', data } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(taken).toMatchObject({ outcome: 'permanent', vendor: { status: 404 } });
    expect(taken.outcome === 'permanent' && taken.message).toMatch(/Requested target slot .* not found/);
    const nowhere = await commands['appointment.book']!(
      {
        id: 'b3',
        type: 'appointment.book',
        data: { ...data, organization: undefined },
      } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(nowhere.outcome).toBe('permanent');
    expect(sim.writes.log).toHaveLength(2);
  });

  it("book: what Docplanner's bookSlot requires (duration, the patient's name and phone, the place, the service) is refused when sent and never called without", async () => {
    // BookSlotRequest requires address_service_id, patient and duration; its Patient name and phone
    // (docplanner.github.io/integrations-hub-front-app/docs, Slots > bookSlot). Docplanner has no
    // default length: a book without duration is answered 400.
    const { sim, ctx } = await setup();
    const data = {
      start: '2026-03-12T10:00:00+01:00',
      patient: { name: 'Jan' },
      practitioner: { id: PLACE.doctor },
      location: { id: PLACE.address },
      organization: { id: PLACE.facility },
      service: { id: '4455661' },
    };
    const reason = commandUnsupported({ type: 'appointment.book', data } as CommandData);
    expect(reason).toBe(
      'Docplanner books a slot only with durationMinutes (duration), patient.phone (phone)',
    );
    expect(
      commandUnsupported({
        type: 'appointment.book',
        data: { ...data, durationMinutes: 30, patient: { given: 'Jan', phone: '+48500100201' } },
      } as CommandData),
    ).toBeUndefined();
    expect(commandUnsupported({ type: 'appointment.cancel', data: {} } as CommandData)).toBeUndefined();
    // A command queued before the connector refused such data: failed without a call.
    const r = await commands['appointment.book']!(
      { id: 'b-lacks', type: 'appointment.book', data } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(r).toEqual({ outcome: 'permanent', message: reason });
    expect(sim.writes.log).toHaveLength(0);
    // The simulator answers such a book as Docplanner does.
    const token = await accessToken({
      instanceId: 'dp',
      config: ctx().config,
      http: fetchVendorHttp,
      state: ctx().state,
      logger: capturingLogger(),
    });
    const res = await fetch(
      `${sim.url}/api/v3/integration/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/slots/${encodeURIComponent(data.start)}/book`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          address_service_id: '4455661',
          is_returning: false,
          patient: { name: 'Jan' },
        }),
      },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      errors: {
        duration: ['This value should not be blank.'],
        'patient.phone': ['This value should not be blank.'],
      },
      message: 'Invalid arguments',
    });
  });

  /** A booking at the simulator's place, as the tests of a book's tries send it. */
  const janBooks = (id: string, start: string) =>
    ({
      id,
      type: 'appointment.book',
      data: {
        start,
        durationMinutes: 30,
        patient: { name: 'Jan', phone: '+48500100201' },
        practitioner: { id: PLACE.doctor },
        location: { id: PLACE.address },
        organization: { id: PLACE.facility },
        service: { id: '4455661' },
      },
    }) as CommandRequest<'appointment.book'>;

  it('a book that timed out and lands late: the next tries look for it (not booked meanwhile) and are done with its id', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const request = janBooks('b-crash', '2026-03-13T10:00:00+01:00');
    // The first try times out after sending: the simulator books it 300 ms later.
    sim.writes.delayMs = 300;
    let late: Promise<unknown> | undefined;
    const slowHttp: VendorHttp = {
      async request(r) {
        if (r.url.includes('/book')) {
          late = fetchVendorHttp.request(r).catch(() => {});
          throw ConnectorError.transient('timed out');
        }
        return fetchVendorHttp.request(r);
      },
    };
    await expect(commands['appointment.book']!(request, { ...c, http: slowHttp })).rejects.toThrow(
      'timed out',
    );
    // Not landed yet: the list does not show it, and the earlier try may still land: not booked.
    const early = await commands['appointment.book']!(request, { ...c, attempt: 2 });
    expect(early).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('not list it yet'),
    });
    // No retryAfterMs: the hub would take it for Docplanner asking to wait, and hold the instance.
    expect(early).not.toHaveProperty('retryAfterMs');
    await late;
    const found = await commands['appointment.book']!(request, { ...c, attempt: 3 });
    const made = writesTo(sim, '/book');
    expect(made).toHaveLength(1);
    expect(found).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [[...sim.bookings.keys()].at(-1)],
    });
    // Listed by getBookings at the slot, with the patient.
    expect(
      sim.served.filter((r) => r.method === 'GET' && r.path.includes('/bookings?')).map((r) => r.path),
    ).toEqual([
      expect.stringMatching(
        /\/bookings\?start=2026-03-13T10%3A00%3A00%2B01%3A00&end=2026-03-13T10%3A30%3A00%2B01%3A00&with=booking.patient$/,
      ),
      expect.anything(),
    ]);
  });

  it('a book answered 200 text/html (a maintenance page) is transient; the next tries look for it and book once it surely was not made', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const c = ctx({ vendorIds: [] });
      const request = janBooks('b-page', '2026-03-13T11:00:00+01:00');
      const http = page.before((r) => r.method === 'POST' && r.url.endsWith('/book'));
      // Before: permanent, "booked but answered without a booking id", and never retried.
      expect(await commands['appointment.book']!(request, { ...c, http })).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('Docplanner book answered 200 (text/html) with no JSON'),
        vendor: { status: 200 },
      });
      expect(page.answered).toHaveLength(1);
      // The page stood in for Docplanner: nothing was booked. Not in the list, but the try may
      // still land: not booked again yet.
      const retried = await commands['appointment.book']!(request, { ...c, attempt: 2 });
      expect(retried).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('not list it yet'),
      });
      expect(sim.writes.log.filter((w) => w.path.endsWith('/book'))).toHaveLength(0);
      // Once the earlier try has surely ended, a list without it proves it was not made: booked.
      await sentAgo(c, request, BOOK_SETTLE_MS + 1000);
      const third = await commands['appointment.book']!(request, { ...c, attempt: 3 });
      expect(third).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
      expect(third.outcome === 'done' && third.alreadyDone).toBeFalsy();
      expect(sim.writes.log.filter((w) => w.path.endsWith('/book')).map((w) => w.status)).toEqual([200]);
    } finally {
      await page.close();
    }
  });

  it("a lost book's next try takes no booking of another patient at the slot (strict on name, phone, email)", async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const start = '2026-03-13T12:00:00+01:00';
    const request = janBooks('b-other', start);
    (request.data.patient as { email?: string }).email = 'jan@example.com';
    // The answer was lost (a 502 the gateway gave; nothing was booked) ...
    sim.failNext(1, 502);
    expect((await commands['appointment.book']!(request, c)).outcome).toBe('transient');
    // ... and meanwhile others took the slot through an integration: another Jan, a Jan with
    // another email, a Jan with the phone but another name.
    const others = [
      { name: 'Jan', phone: '+48500999999', email: 'jan@example.com' },
      { name: 'Jan', phone: '48500100201', email: 'other@example.com' },
      { name: 'Janina', phone: '+48500100201', email: 'jan@example.com' },
    ];
    for (const [i, patient] of others.entries()) landed(sim, `77700${i}`, start, patient);
    const next = await commands['appointment.book']!(request, { ...c, attempt: 2 });
    expect(next).toMatchObject({ outcome: 'transient', message: expect.stringContaining('not list it yet') });
    await sentAgo(c, request, BOOK_SETTLE_MS + 1000);
    // Booked again after the wait: the slot is taken (404), and the command fails with it, not
    // done with another patient's booking.
    const last = await commands['appointment.book']!(request, { ...c, attempt: 3 });
    expect(last).toMatchObject({ outcome: 'permanent', vendor: { status: 404 } });
  });

  it('a lost book that lands only after the wait: the booking sent again is refused (the slot is taken), and the look after it finds the earlier one', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const start = '2026-03-13T13:00:00+01:00';
    const request = janBooks('b-very-late', start);
    sim.failNext(1, 502);
    expect((await commands['appointment.book']!(request, c)).outcome).toBe('transient');
    await sentAgo(c, request, BOOK_SETTLE_MS + 1000);
    // The earlier try lands at Docplanner between the list (empty) and the booking sent again.
    sim.writes.onRequest = () => {
      sim.writes.onRequest = undefined;
      landed(sim, '888001', start, { name: 'Jan', phone: '48500100201' });
    };
    const again = await commands['appointment.book']!(request, { ...c, attempt: 2 });
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendorIds: ['888001'] });
    expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([404]);
  });

  it('the same when Docplanner refuses the booking sent again with 422 (the slot cannot be booked), not 404', async () => {
    // FACTS.md: bookSlot answers "422 when the slot cannot be booked". Only a 404 was looked at
    // again: the command failed on the 422, its own earlier booking left at Docplanner unknown to it.
    const { sim, ctx } = await setup();
    sim.writes.takenSlotStatus = 422;
    const c = ctx({ vendorIds: [] });
    const start = '2026-03-13T14:00:00+01:00';
    const request = janBooks('b-very-late-422', start);
    sim.failNext(1, 502);
    expect((await commands['appointment.book']!(request, c)).outcome).toBe('transient');
    await sentAgo(c, request, BOOK_SETTLE_MS + 1000);
    sim.writes.onRequest = () => {
      sim.writes.onRequest = undefined;
      landed(sim, '888002', start, { name: 'Jan', phone: '48500100201' });
    };
    const again = await commands['appointment.book']!(request, { ...c, attempt: 2 });
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendorIds: ['888002'] });
    expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([422]);
  });
});

/** A booking made now through the API at the simulator's place, its slot taken (30 minutes). */
function landed(sim: DocplannerSimulator, id: string, start: string, patient: JsonObject) {
  sim.writes.addBooking(PLACE, {
    id,
    status: 'booked',
    start_at: start,
    duration: 30,
    booked_by: 'integration',
    canceled_by: '',
    booked_at: new Date().toISOString(),
    patient,
  });
  sim.writes.takeSlot(PLACE.doctor, PLACE.address, start);
}

/** Moves the `sent` mark of a book's earlier try `ms` back in time (its request went out then). */
async function sentAgo(c: CommandContext<Config>, request: CommandRequest, ms: number) {
  const key = `docplanner:command:${request.id}`;
  const record = (await c.commandState.get<JsonObject>(key)) as { sent: JsonObject };
  await c.commandState.set(key, {
    sent: { ...record.sent, at: new Date(Date.now() - ms).toISOString() },
  } as unknown as JsonValue);
}

/**
 * A real HTTP front door to the simulator whose token endpoint answers `failure` (default 503) the
 * first `tokenFailures` times (the simulator's own failures start after the token endpoint);
 * everything else is passed on.
 */
async function frontDoor(
  target: string,
  tokenFailures: number,
  failure = { status: 503, contentType: 'application/json', body: '{"message":"Service Unavailable"}' },
) {
  let failuresLeft = tokenFailures;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.url === '/oauth/v2/token' && failuresLeft > 0) {
      failuresLeft--;
      res.writeHead(failure.status, { 'content-type': failure.contentType }).end(failure.body);
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
    }
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body ? { body } : {}),
    });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const BOOK_DATA = {
  start: '2026-03-14T10:00:00+01:00',
  durationMinutes: 20,
  patient: { name: 'Jan', phone: '+48500100201' },
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  organization: { id: PLACE.facility },
  service: { id: '4455661' },
};

function bookRequest(id: string): CommandRequest<'appointment.book'> {
  return { id, type: 'appointment.book', data: BOOK_DATA } as CommandRequest<'appointment.book'>;
}

const OLD_START = '2026-03-10T11:30:00+01:00';
const MOVE_TO = '2026-03-11T09:00:00+01:00';
const writesTo = (sim: DocplannerSimulator, tail: string) =>
  sim.writes.log.filter((w) => w.path.endsWith(tail));

describe('book and move, which Docplanner cannot deduplicate', () => {
  it("book: an answer lost after the booking was made (502): the next try finds it in the slot's bookings and is done with its id, not booked again", async () => {
    const { sim, ctx } = await setup();
    sim.writes.loseAnswers(1, 502);
    const request = bookRequest('b-lost');
    const first = await commands['appointment.book']!(request, ctx({ vendorIds: [] }));
    expect(first).toMatchObject({ outcome: 'transient', vendor: { status: 502 } });
    const made = [...sim.bookings.keys()].at(-1);
    const again = await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendorIds: [made] });
    expect(writesTo(sim, '/book').map((w) => `${w.status} ${w.lostStatus}`)).toEqual(['502 200']);
    // Recorded: a later try (the hub failed after it) answers the same without a call.
    const third = await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 3 }));
    expect(third).toEqual({ outcome: 'done', alreadyDone: true, vendorIds: [made] });
  });

  // A proxy's bare 503 after Docplanner booked (Envoy's "reset before headers"): taken as proof that
  // nothing was booked, the next try booked again (the Clockwise.MD commands audit's case).
  it('book: a bare 503 after Docplanner booked is looked up, not booked again', async () => {
    const { sim, ctx } = await setup();
    sim.writes.loseAnswers(1, 503);
    const request = bookRequest('b-bare-503');
    expect((await commands['appointment.book']!(request, ctx({ vendorIds: [] }))).outcome).toBe('transient');
    const made = [...sim.bookings.keys()].at(-1);
    const again = await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendorIds: [made] });
    expect(writesTo(sim, '/book').map((w) => `${w.status} ${w.lostStatus}`)).toEqual(['503 200']);
  });

  it('book: a lost answer whose slot list fails is looked up again (transient), and one refused is not booked blind', async () => {
    const { sim, ctx } = await setup();
    sim.writes.loseAnswers(1, 504);
    const request = bookRequest('b-list-fails');
    expect((await commands['appointment.book']!(request, ctx({ vendorIds: [] }))).outcome).toBe('transient');
    sim.failNext(1, 503);
    expect(await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 2 }))).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('looked up again on the next try'),
    });
    sim.failNext(1, 403);
    expect(await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 3 }))).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('not sent again'),
    });
    expect(writesTo(sim, '/book')).toHaveLength(1);
  });

  it('book: a 429 proves nothing was booked (a rate limit turns a request away): the next try books', async () => {
    const { sim, ctx } = await setup();
    const request = bookRequest('b-429');
    sim.failNext(1, 429, 2, /\/book$/);
    expect(await commands['appointment.book']!(request, ctx({ vendorIds: [] }))).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 2000,
    });
    const second = await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 2 }));
    expect(second).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([200]);
  });

  for (const status of [503]) {
    it(`book: a ${status} with Retry-After proves nothing (a proxy's, maybe after Docplanner booked): the wait is kept, and the next try looks before it books`, async () => {
      const { sim, ctx } = await setup();
      const c = ctx({ vendorIds: [] });
      const request = bookRequest(`b-${status}`);
      sim.failNext(1, status, 1, /\/book$/);
      expect(await commands['appointment.book']!(request, c)).toMatchObject({
        outcome: 'transient',
        retryAfterMs: 1000,
        message: expect.stringContaining('does not say whether it was carried out'),
      });
      // Before: the mark was cleared and the next try booked at once (a second booking, had a
      // proxy answered so after Docplanner booked).
      expect(await commands['appointment.book']!(request, { ...c, attempt: 2 })).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('not list it yet'),
      });
      expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([]);
      await sentAgo(c, request, BOOK_SETTLE_MS + 1000);
      const third = await commands['appointment.book']!(request, { ...c, attempt: 3 });
      expect(third).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
      expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([200]);
    });
  }

  it("book: sent again after an unknown outcome and answered 429, the earlier try's mark stays: the next try looks before it books", async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const request = bookRequest('b-again-429');
    sim.failNext(1, 503, 1, /\/book$/);
    expect((await commands['appointment.book']!(request, c)).outcome).toBe('transient');
    await sentAgo(c, request, BOOK_SETTLE_MS + 1000);
    const key = `docplanner:command:${request.id}`;
    const earlier = await c.commandState.get(key);
    // The lookup lists nothing, the wait is over: sent again, and turned away by the rate limit,
    // which says nothing of the first send.
    sim.failNext(1, 429, 2, /\/book$/);
    expect((await commands['appointment.book']!(request, { ...c, attempt: 2 })).outcome).toBe('transient');
    // Before: the mark was gone, and the next try booked with no lookup.
    expect(await c.commandState.get(key)).toEqual(earlier);
    const lookups = () =>
      sim.served.filter((r) => r.method === 'GET' && r.path.includes('/bookings?')).length;
    const before = lookups();
    expect(await commands['appointment.book']!(request, { ...c, attempt: 3 })).toMatchObject({
      outcome: 'done',
    });
    expect(lookups()).toBe(before + 1);
  });

  it('book: a token endpoint that fails (503) marks nothing as sent: the next try books', async () => {
    const { sim, ctx } = await setup();
    const door = await frontDoor(sim.url, 1);
    try {
      const config = { apiBaseUrl: door.url, clientId: 'dp-client', clientSecret: 'dp-secret' };
      const request = bookRequest('b-token');
      await expect(
        commands['appointment.book']!(request, ctx({ vendorIds: [], config })),
      ).rejects.toMatchObject({ kind: 'transient' });
      expect(sim.writes.log).toEqual([]);
      const again = await commands['appointment.book']!(request, ctx({ vendorIds: [], config, attempt: 2 }));
      expect(again).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
      expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([200]);
    } finally {
      await door.close();
    }
  });

  it('a token endpoint answering 200 without a token (a maintenance page) is transient, not refused credentials', async () => {
    const { sim, ctx } = await setup();
    const door = await frontDoor(sim.url, 1, {
      status: 200,
      contentType: 'text/html',
      body: '<html><body>Scheduled maintenance</body></html>',
    });
    try {
      const config = { apiBaseUrl: door.url, clientId: 'dp-client', clientSecret: 'dp-secret' };
      const arrived = cmd('appointment.mark_arrived', {});
      // Before: permanent, "Docplanner refused the client credentials (token endpoint answered 200)".
      await expect(commands['appointment.mark_arrived']!(arrived, ctx({ config }))).rejects.toMatchObject({
        kind: 'transient',
        message: expect.stringContaining('answered 200 without an access token'),
      });
      expect(await commands['appointment.mark_arrived']!(arrived, ctx({ config, attempt: 2 }))).toMatchObject(
        {
          outcome: 'done',
        },
      );
    } finally {
      await door.close();
    }
  });

  it('book: a revoked token (401) is renewed and the booking sent once more: booked once', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    expect(
      await commands['appointment.mark_arrived']!(cmd('appointment.mark_arrived', {}), ctx()),
    ).toMatchObject({
      outcome: 'done',
    });
    sim.revokeTokens();
    const booked = await commands['appointment.book']!(bookRequest('b-401'), c);
    expect(booked).toMatchObject({ outcome: 'done' });
    expect(sim.tokensIssued).toBe(2);
    expect(writesTo(sim, '/book').map((w) => w.status)).toEqual([200]);
  });

  it('book: once done, the same command tried again (the hub failed after it) answers the same booking without a call', async () => {
    const { sim, ctx } = await setup();
    const request = bookRequest('b-done');
    const first = await commands['appointment.book']!(request, ctx({ vendorIds: [] }));
    expect(first.outcome).toBe('done');
    const id = first.outcome === 'done' ? first.vendorIds?.[0] : undefined;
    const again = await commands['appointment.book']!(request, ctx({ vendorIds: [], attempt: 2 }));
    expect(again).toEqual({ outcome: 'done', vendorIds: [id] });
    expect(writesTo(sim, '/book')).toHaveLength(1);
  });

  it('move: an answer lost after the move (502): the next try re-reads the old booking and is done with the new id its move chain names, not moved twice', async () => {
    const { sim, ctx } = await setup();
    const current = { ...CURRENT, start: OLD_START };
    const request = cmd('appointment.reschedule', { start: MOVE_TO });
    sim.writes.loseAnswers(1, 502);
    const first = await commands['appointment.reschedule']!(request, ctx({ current }));
    expect(first).toMatchObject({ outcome: 'transient', vendor: { status: 502 } });
    const moved = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
    const again = await commands['appointment.reschedule']!(request, ctx({ current, attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendor: { status: 200 } });
    expect(again.outcome === 'done' && again.vendorIds).toEqual([moved]);
    expect(writesTo(sim, '/move').map((w) => `${w.status} ${w.lostStatus}`)).toEqual(['502 201']);
    // Recorded: a further try answers the same without asking Docplanner again.
    const reads = sim.served.filter((r) => r.method === 'GET').length;
    expect(await commands['appointment.reschedule']!(request, ctx({ current, attempt: 3 }))).toEqual({
      outcome: 'done',
      vendorIds: [moved],
      alreadyDone: true,
    });
    expect(sim.served.filter((r) => r.method === 'GET').length).toBe(reads);
    // Nothing for the appointment to wait for: a cancel goes to the new booking at once.
    const c = ctx({ vendorIds: ['2087456123', moved], current });
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), c)).toMatchObject({
      outcome: 'done',
    });
    expect(sim.bookings.get(moved)?.booking.status).toBe('canceled');
  });

  it("move: after a lost answer, a re-read answered 200 text/html (a maintenance page) is transient, not the move's failure; the next re-read settles it", async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const current = { ...CURRENT, start: OLD_START };
      const request = cmd('appointment.reschedule', { start: MOVE_TO });
      sim.writes.loseAnswers(1, 502);
      expect((await commands['appointment.reschedule']!(request, ctx({ current }))).outcome).toBe(
        'transient',
      );
      const http = page.before((r) => (r.method ?? 'GET') === 'GET' && r.url.includes('with=booking.moving'));
      // Before: permanent, "reads as null: not moved again", though the move was made.
      expect(
        await commands['appointment.reschedule']!(request, ctx({ current, http, attempt: 2 })),
      ).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('without the booking: checked again on the next try'),
      });
      expect(page.answered).toHaveLength(1);
      const moved = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
      expect(await commands['appointment.reschedule']!(request, ctx({ current, attempt: 3 }))).toMatchObject({
        outcome: 'done',
        alreadyDone: true,
        vendorIds: [moved],
      });
      expect(writesTo(sim, '/move')).toHaveLength(1);
    } finally {
      await page.close();
    }
  });

  it('move: answered 200 text/html (a maintenance page): transient, and the next try re-reads the booking and moves it once', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const current = { ...CURRENT, start: OLD_START };
      const request = cmd('appointment.reschedule', { start: MOVE_TO });
      const http = page.before((r) => r.method === 'POST' && r.url.endsWith('/move'));
      // Before: permanent, "moved the booking but answered without its new id", and the
      // appointment marked to wait for a move notification no move would send.
      expect(await commands['appointment.reschedule']!(request, ctx({ current, http }))).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('Docplanner move answered 200 (text/html) with no JSON'),
      });
      expect(page.answered).toHaveLength(1);
      expect(await ctx().state.get('docplanner:move-pending:appointment/hub-1')).toBeUndefined();
      // Docplanner never saw the move: the re-read finds the booking where it was, and moves it.
      const again = await commands['appointment.reschedule']!(request, ctx({ current, attempt: 2 }));
      const moved = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
      expect(again).toMatchObject({ outcome: 'done', vendorIds: [moved] });
      expect(writesTo(sim, '/move')).toHaveLength(1);
    } finally {
      await page.close();
    }
  });

  it('move: after a try whose outcome is unknown, a booking canceled (not moved: its chain ends at it) fails the move, not done', async () => {
    const { sim, ctx } = await setup();
    const current = { ...CURRENT, start: OLD_START };
    const request = cmd('appointment.reschedule', { start: MOVE_TO });
    sim.failNext(1, 500);
    expect(await commands['appointment.reschedule']!(request, ctx({ current }))).toMatchObject({
      outcome: 'transient',
    });
    // Canceled meanwhile through the API (another integration), not moved.
    const old = sim.bookings.get('2087456123')!;
    sim.writes.addBooking(PLACE, { ...old.booking, status: 'canceled', canceled_by: 'integration' });
    const again = await commands['appointment.reschedule']!(request, ctx({ current, attempt: 2 }));
    expect(again).toMatchObject({
      outcome: 'permanent',
      message: expect.stringMatching(/canceled at Docplanner, not moved/),
    });
    expect(await ctx().state.get('docplanner:move-pending:appointment/hub-1')).toBeUndefined();
  });

  it("move: an answer lost after a move to another address: done without the new id (the new booking may be another doctor's)", async () => {
    const { sim, ctx } = await setup();
    const current = { ...CURRENT, start: OLD_START };
    // Another address may be another doctor's: where the chain's newest booking is, only
    // Docplanner's notification says.
    const elsewhere = cmd('appointment.reschedule', { start: MOVE_TO, location: { id: '221305' } });
    sim.writes.loseAnswers(1, 502);
    await commands['appointment.reschedule']!(elsewhere, ctx({ current }));
    expect(await commands['appointment.reschedule']!(elsewhere, ctx({ current, attempt: 2 }))).toEqual({
      outcome: 'done',
      vendorIds: [],
      alreadyDone: true,
      vendor: expect.objectContaining({ status: 200 }),
    });
  });

  it('after a move done without its new id, a command on the appointment waits for the notification naming it, then acts on the new booking', async () => {
    const { sim, ctx } = await setup();
    // A booking created before 2 April 2025: Docplanner has no move chain to name the new booking.
    sim.writes.movingChains = false;
    const current = { ...CURRENT, start: OLD_START };
    const move = cmd('appointment.reschedule', { start: MOVE_TO });
    sim.writes.loseAnswers(1, 502);
    await commands['appointment.reschedule']!(move, ctx({ current }));
    expect(await commands['appointment.reschedule']!(move, ctx({ current, attempt: 2 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [],
    });
    const moved = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
    const writes = sim.writes.log.length;
    // The hub knows only the old booking, which the move canceled: before the fix the cancel's
    // DELETE was refused (400), the re-read said canceled, and the cancel was done "already".
    for (const type of [
      'appointment.cancel',
      'appointment.reschedule',
      'appointment.mark_arrived',
      'appointment.mark_no_show',
    ] as const) {
      const data = type === 'appointment.reschedule' ? { start: '2026-03-12T09:00:00+01:00' } : {};
      // One handler type for the four (each takes its own CommandRequest).
      const handle = commands[type] as (
        c: CommandRequest,
        x: CommandContext<Config>,
      ) => ReturnType<NonNullable<(typeof commands)['appointment.cancel']>>;
      const r = await handle(cmd(type, data), ctx({ current }));
      expect(r, type).toMatchObject({ outcome: 'transient' });
      expect(r.outcome === 'transient' && r.message, type).toMatch(
        /booking 2087456123 was moved.*booking-moved notification/,
      );
    }
    expect(sim.writes.log).toHaveLength(writes);
    expect(sim.bookings.get(moved)?.booking.status).toBe('booked');
    // The move's own command, tried again (the hub failed after it), still answers its result.
    expect(await commands['appointment.reschedule']!(move, ctx({ current, attempt: 3 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    // Docplanner's booking-moved aliased the new booking to the appointment: the cancel goes to it.
    const c = ctx({ vendorIds: ['2087456123', moved], current });
    const cancelled = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), c);
    expect(cancelled).toEqual({ outcome: 'done', vendor: { status: 204, body: '' } });
    expect(sim.writes.log.at(-1)).toMatchObject({ method: 'DELETE', status: 204 });
    expect(sim.writes.log.at(-1)!.path).toMatch(new RegExp(`/bookings/${moved}$`));
    expect(sim.bookings.get(moved)?.booking.status).toBe('canceled');
    expect(await c.state.get('docplanner:move-pending:appointment/hub-1')).toBeUndefined();
  });

  it("a move answered with a Booking without id: the Location header's booking is the new id", async () => {
    const { sim, ctx } = await setup();
    const noBodyId: VendorHttp = {
      async request(r) {
        const res = await fetchVendorHttp.request(r);
        if (!r.url.endsWith('/move') || typeof res.body !== 'object' || res.body === null) return res;
        const { id: _id, ...body } = res.body as JsonObject;
        return { ...res, body };
      },
    };
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: MOVE_TO }),
      ctx({ http: noBodyId }),
    );
    const newId = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
    expect(moved).toMatchObject({ outcome: 'done', vendorIds: [newId] });
  });

  it('after a move answered without its new id, a cancel waits for the notification too', async () => {
    const { sim, ctx } = await setup();
    // Neither the Booking's id nor a Location header.
    const noId: VendorHttp = {
      async request(r) {
        const res = await fetchVendorHttp.request(r);
        if (!r.url.endsWith('/move') || typeof res.body !== 'object' || res.body === null) return res;
        const { id: _id, ...body } = res.body as JsonObject;
        const { location: _location, ...headers } = res.headers;
        return { ...res, headers, body };
      },
    };
    const moved = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: MOVE_TO }),
      ctx({ http: noId }),
    );
    expect(moved).toMatchObject({
      outcome: 'permanent',
      message: expect.stringMatching(/without its new id/),
    });
    const cancel = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx());
    expect(cancel).toMatchObject({ outcome: 'transient' });
    expect(writesTo(sim, '/bookings/2087456123')).toEqual([]);
  });

  it("move: after the move's notification made the new booking current, the check reads the booking the move was sent for", async () => {
    const { sim, ctx } = await setup();
    const request = cmd('appointment.reschedule', { start: MOVE_TO });
    sim.writes.loseAnswers(1, 504);
    await commands['appointment.reschedule']!(request, ctx({ current: { ...CURRENT, start: OLD_START } }));
    const moved = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
    // The hub normalized Docplanner's booking-moved meanwhile: the new booking is the current one.
    const again = await commands['appointment.reschedule']!(
      request,
      ctx({ vendorIds: ['2087456123', moved], current: { ...CURRENT, start: MOVE_TO }, attempt: 2 }),
    );
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true });
    expect(writesTo(sim, '/move')).toHaveLength(1);
    expect(sim.bookings.get(moved)?.booking.status).toBe('booked');
  });

  it('move: a failure after Docplanner moved to another address: the next try answers the new id and notes its place then', async () => {
    const { sim, ctx } = await setup();
    const request = cmd('appointment.reschedule', { start: MOVE_TO, location: { id: '221305' } });
    const c = ctx();
    // The database fails as the place is written, after the command's own record of the move.
    const failing = {
      get: c.state.get.bind(c.state),
      delete: c.state.delete.bind(c.state),
      set: async (key: string, value: JsonValue) => {
        if (key.startsWith('docplanner:moved-place:')) throw new Error('the database went away');
        await c.state.set(key, value);
      },
    };
    await expect(commands['appointment.reschedule']!(request, { ...c, state: failing })).rejects.toThrow(
      'the database went away',
    );
    const moved = [...sim.bookings.entries()].find(([, b]) => b.booking.start_at === MOVE_TO)![0];
    const again = await commands['appointment.reschedule']!(request, ctx({ attempt: 2 }));
    expect(again).toEqual({ outcome: 'done', vendorIds: [moved] });
    expect(writesTo(sim, '/move')).toHaveLength(1);
    expect(await c.state.get(`docplanner:moved-place:${moved}`)).toEqual({ ...PLACE, address: '221305' });
  });

  it('move: a 500 that did nothing: the next try re-reads the booking, still booked at its start, and moves it', async () => {
    const { sim, ctx } = await setup();
    const current = { ...CURRENT, start: OLD_START };
    const request = cmd('appointment.reschedule', { start: MOVE_TO });
    sim.failNext(1, 500);
    expect(await commands['appointment.reschedule']!(request, ctx({ current }))).toMatchObject({
      outcome: 'transient',
    });
    const again = await commands['appointment.reschedule']!(request, ctx({ current, attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    expect(
      sim.served
        .filter((r) => r.path.includes('/bookings/2087456123'))
        .map((r) => `${r.method} ${r.path.split('/').at(-1)} ${r.status}`),
    ).toEqual(['POST move 500', 'GET 2087456123?with=booking.moving 200', 'POST move 201']);
  });

  it('move: the booking canceled by the patient meanwhile: the next try fails permanently, not moved', async () => {
    const { sim, ctx } = await setup();
    const current = { ...CURRENT, start: OLD_START };
    const request = cmd('appointment.reschedule', { start: MOVE_TO });
    sim.failNext(1, 502);
    await commands['appointment.reschedule']!(request, ctx({ current }));
    const known = sim.bookings.get('2087456123')!;
    known.booking = { ...known.booking, status: 'canceled', canceled_by: 'user' };
    const again = await commands['appointment.reschedule']!(request, ctx({ current, attempt: 2 }));
    expect(again.outcome).toBe('permanent');
    expect(again.outcome === 'permanent' && again.message).toMatch(/canceled at Docplanner by the user/);
    expect(writesTo(sim, '/move')).toEqual([]);
  });
});

// confirmBooking (Docplanner API reference 1.9.0, Bookings): `PUT …/bookings/{id}/confirm` with a
// required `{ confirmed_by: "user" | "admin" }`, 204; 409 "Visit has already been confirmed", "Visit
// has been canceled", "Visit has been deleted", "Visit is in the past"; 400 on a bad `confirmed_by`.
describe('confirm (confirmBooking)', () => {
  /** A booking a week ahead (the simulator refuses to confirm a visit whose start has passed, as Docplanner does). */
  async function upcoming() {
    const s = await setup();
    const start = new Date(Date.now() + 7 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, '+00:00');
    s.sim.writes.addBooking(PLACE, { id: '2087456200', status: 'booked', start_at: start, duration: 30 });
    return {
      ...s,
      c: (over: Partial<CommandContext<Config>> = {}) => s.ctx({ vendorIds: ['2087456200'], ...over }),
    };
  }
  const confirms = (sim: DocplannerSimulator) =>
    sim.writes.log
      .filter((w) => w.path.endsWith('/confirm'))
      .map((w) => ({ method: w.method, body: w.body, status: w.lostStatus ?? w.status }));

  it("PUTs the confirm with confirmed_by admin (the clinic), user when the patient confirmed; Docplanner's booking-confirmed follows", async () => {
    const { sim, c } = await upcoming();
    const hook = await startHookReceiver({
      path: '/hooks/dp',
      answers: [{ status: 200 }],
      whenDone: 'repeat',
    });
    try {
      sim.writes.echoes = true;
      sim.writes.echoDelayMs = 0;
      sim.writes.hookUrl = hook.url;
      expect(await commands['appointment.confirm']!(cmd('appointment.confirm', {}), c())).toEqual({
        outcome: 'done',
        vendor: { status: 204, body: '' },
      });
      expect(sim.writes.log.map((w) => `${w.method} ${w.path}`)).toEqual([
        `PUT /facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/bookings/2087456200/confirm`,
      ]);
      expect(sim.writes.log[0]!.body).toEqual({ confirmed_by: 'admin' });
      expect(sim.writes.confirmed.get('2087456200')).toBe('admin');
      await expect.poll(() => hook.received.length).toBe(1);
      expect(JSON.parse(hook.received[0]!.body)).toMatchObject({
        name: 'booking-confirmed',
        data: { visit_booking: { id: '2087456200' } },
      });
    } finally {
      await hook.close();
    }
    const other = await upcoming();
    for (const [actor, by] of [
      [{ kind: 'patient' }, 'user'],
      [{ kind: 'staff', name: 'Front desk' }, 'admin'],
    ] as const) {
      other.sim.writes.confirmed.clear();
      await commands['appointment.confirm']!(cmd('appointment.confirm', { actor }), other.c());
      expect(other.sim.writes.log.at(-1)!.body).toEqual({ confirmed_by: by });
    }
  });

  it('a repeated confirm is done (already confirmed), and one whose answer was lost is sent again and done: confirmed once', async () => {
    const { sim, c } = await upcoming();
    const request = cmd('appointment.confirm', {});
    expect((await commands['appointment.confirm']!(request, c())).outcome).toBe('done');
    // Docplanner's 409 for a repeat is its answer to the hub's own earlier try: done, not a refusal.
    expect(await commands['appointment.confirm']!(request, c({ attempt: 2 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 409, body: { message: 'Visit has already been confirmed' } },
    });
    expect(confirms(sim).map((w) => w.status)).toEqual([204, 409]);

    const lost = await upcoming();
    lost.sim.writes.loseAnswers(1, 502, /\/confirm$/);
    const again = cmd('appointment.confirm', {});
    // Confirmed at Docplanner, answered 502: transient, nothing kept, sent again blind.
    expect((await commands['appointment.confirm']!(again, lost.c())).outcome).toBe('transient');
    expect(await commands['appointment.confirm']!(again, lost.c({ attempt: 2 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(confirms(lost.sim)).toEqual([
      { method: 'PUT', body: { confirmed_by: 'admin' }, status: 204 },
      { method: 'PUT', body: { confirmed_by: 'admin' }, status: 409 },
    ]);
  });

  it("Docplanner's other 409s are refusals with its words: a canceled visit, a visit in the past; 5xx and 429 are transient", async () => {
    const { sim, c, ctx } = await upcoming();
    const canceled = sim.bookings.get('2087456200')!;
    canceled.booking = { ...canceled.booking, status: 'canceled', canceled_by: 'user' };
    expect(await commands['appointment.confirm']!(cmd('appointment.confirm', {}), c())).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('Visit has been canceled'),
      vendor: { status: 409 },
    });
    // setup()'s booking starts on 2026-03-10.
    const past = await commands['appointment.confirm']!(cmd('appointment.confirm', {}), ctx());
    expect(past).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('Visit is in the past'),
    });
    const fresh = await upcoming();
    fresh.sim.failNext(1, 503, undefined, /\/confirm$/);
    expect((await commands['appointment.confirm']!(cmd('appointment.confirm', {}), fresh.c())).outcome).toBe(
      'transient',
    );
    expect(fresh.sim.writes.confirmed.size).toBe(0);
  });

  // Docplanner's sites are in many languages, and its words may change: a repeat is told by the
  // booking's data (getBookings with=booking.confirmation: `confirmed`), the English words only
  // a fast path.
  /** A VendorHttp over real HTTP that notes each booking read (`/bookings… with=…`). */
  function recording() {
    const reads: string[] = [];
    const http: VendorHttp = {
      request(req) {
        if ((req.method ?? 'GET') === 'GET' && /\/bookings/.test(req.url)) {
          reads.push(req.url.replace(/^.*\/addresses\/\d+/, '').replace(/\?.*with=([^&]+).*$/, ' with=$1'));
        }
        return fetchVendorHttp.request(req);
      },
    };
    return { reads, http };
  }

  it('a repeated confirm answered 409 in other words (localized) is done when the booking reads confirmed', async () => {
    const { sim, c } = await upcoming();
    sim.writes.confirmWords = {
      alreadyConfirmed: 'Wizyta została już potwierdzona',
      canceled: 'Wizyta została odwołana',
      past: 'Wizyta jest w przeszłości',
    };
    const request = cmd('appointment.confirm', {});
    expect((await commands['appointment.confirm']!(request, c())).outcome).toBe('done');
    const { reads, http } = recording();
    expect(await commands['appointment.confirm']!(request, c({ attempt: 2, http }))).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 409, body: { errors: [], message: 'Wizyta została już potwierdzona' } },
    });
    // getBooking tells no confirmation (its extensions: booking.moving, public_insurance_flow):
    // re-read for its status, start and move chain, then listed at its start.
    expect(reads).toEqual([
      '/bookings/2087456200 with=booking.moving',
      '/bookings with=booking.confirmation',
    ]);
    expect(sim.writes.confirmed.size).toBe(1);

    // The same words' other meanings are still refusals, told by the data: canceled, or in the past
    // and not confirmed.
    const canceled = await upcoming();
    canceled.sim.writes.confirmWords = sim.writes.confirmWords;
    const booking = canceled.sim.bookings.get('2087456200')!;
    booking.booking = { ...booking.booking, status: 'canceled', canceled_by: 'user' };
    expect(
      await commands['appointment.confirm']!(cmd('appointment.confirm', {}), canceled.c()),
    ).toMatchObject({
      outcome: 'permanent',
      message: expect.stringMatching(/Wizyta została odwołana.*booking 2087456200 reads canceled/),
      vendor: { status: 409 },
    });
    const past = await commands['appointment.confirm']!(cmd('appointment.confirm', {}), canceled.ctx());
    expect(past).toMatchObject({
      outcome: 'permanent',
      message: expect.stringMatching(/Wizyta jest w przeszłości.*reads booked and not confirmed/),
    });
  });

  it('a 409 in unknown words whose read cannot tell says so precisely: the list not answering is retried, one without `confirmed` fails', async () => {
    const { sim, c } = await upcoming();
    sim.writes.confirmWords = { alreadyConfirmed: 'Visit was confirmed before' };
    const request = cmd('appointment.confirm', {});
    await commands['appointment.confirm']!(request, c());
    // The re-read answers, the list does not (503): transient, looked at again on the next try.
    sim.failNext(1, 503, undefined, /\/bookings$/);
    expect(await commands['appointment.confirm']!(request, c({ attempt: 2 }))).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining(
        'Docplanner refused the confirm (409 "Visit was confirmed before") in words the hub does not take for "already confirmed", and listing the booking to tell whether it is confirmed answered 503',
      ),
    });
    expect(await commands['appointment.confirm']!(request, c({ attempt: 3 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    // A list that names no `confirmed` (the extension not honoured) cannot tell: permanent, saying so.
    const mute = await upcoming();
    mute.sim.writes.confirmWords = sim.writes.confirmWords;
    await commands['appointment.confirm']!(cmd('appointment.confirm', {}), mute.c());
    const http: VendorHttp = {
      async request(req) {
        const res = await fetchVendorHttp.request(req);
        if (!/with=booking\.confirmation/.test(req.url) || !isJsonObject(res.body)) return res;
        const items = (res.body._items as JsonObject[]).map(({ confirmed: _, ...b }) => b);
        return { ...res, body: { _items: items } };
      },
    };
    expect(
      await commands['appointment.confirm']!(cmd('appointment.confirm', {}), mute.c({ http })),
    ).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining(
        'its booking list (getBookings with=booking.confirmation) lists booking 2087456200 without `confirmed`: whether it is confirmed cannot be told',
      ),
      vendor: { status: 409 },
    });
  });

  it('a booking moved at Docplanner before the hub heard of it: the confirm waits for the notification, not refused', async () => {
    const { c } = await upcoming();
    const staff = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', {
        start: new Date(Date.now() + 9 * 86_400_000).toISOString(),
        durationMinutes: 30,
      }),
      c({ state: new MemoryStateStore(), commandState: new MemoryStateStore() }),
    );
    const newId = staff.outcome === 'done' ? staff.vendorIds![0]! : '';
    expect(newId).not.toBe('');
    expect(await commands['appointment.confirm']!(cmd('appointment.confirm', {}), c())).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining(`moved at Docplanner to booking ${newId}`),
    });
    // Once the move is known (the alias), the confirm goes to the new booking.
    const done = await commands['appointment.confirm']!(
      cmd('appointment.confirm', {}),
      c({ vendorIds: ['2087456200', newId] }),
    );
    expect(done.outcome).toBe('done');
  });
});

describe('Docplanner presence marks done without a change', () => {
  it('unchanged when the hub already knows the appointment in the status the mark gives (no echo is taken); else not', async () => {
    const { ctx } = await setup();
    const arrive = () =>
      commands['appointment.mark_arrived']!(cmd('appointment.mark_arrived', {}), ctxAs('arrived'));
    const ctxAs = (status: string) => ctx({ current: { ...CURRENT, status } });
    // Known arrived: the POST still goes (the known state may lag), and the command is unchanged.
    expect(await arrive()).toMatchObject({ outcome: 'done', unchanged: true });
    const absent = await commands['appointment.mark_no_show']!(
      cmd('appointment.mark_no_show', {}),
      ctxAs('noshow'),
    );
    expect(absent).toMatchObject({ outcome: 'done', unchanged: true });
    // Known otherwise: a change, whose presence-marked is the command's echo.
    for (const [type, status] of [
      ['appointment.mark_arrived', 'noshow'],
      ['appointment.mark_no_show', 'arrived'],
      ['appointment.mark_arrived', 'booked'],
    ] as const) {
      const result = await commands[type]!(cmd(type, {}) as never, ctxAs(status));
      expect(result.outcome).toBe('done');
      expect('unchanged' in result).toBe(false);
    }
    // No known state: it cannot tell, so not unchanged.
    const unknown = await commands['appointment.mark_arrived']!(
      cmd('appointment.mark_arrived', {}),
      ctx({ current: undefined }),
    );
    expect('unchanged' in unknown).toBe(false);
  });
});
