import { readFileSync } from 'node:fs';
import type { CommandRequest } from '@switchyard/core';
import { describeCommandConformance, fetchVendorHttp, memoryCommandContext } from '@switchyard/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commands, commandUnsupported } from './commands.ts';
import type { Config } from './config.ts';
import connector from './index.ts';
import { AcuitySimulator } from './simulator.ts';
import { type AcuityAppointment, fixtureSettings, fixtureUrl } from './testing.ts';

const example = JSON.parse(
  readFileSync(fixtureUrl('appointment-54321.json', 'fixtures-api'), 'utf8'),
) as AcuityAppointment;

const book: CommandRequest<'appointment.book'> = {
  id: 'cmd-book',
  type: 'appointment.book',
  instance: 'acuity-main',
  data: {
    start: '2026-03-10T11:30:00-07:00',
    patient: { given: 'Bob', family: 'McTest', email: 'bob.mctest@example.com' },
    practitioner: { id: '27238' },
    service: { id: '1' },
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
  data: { start: '2013-07-03T09:00:00-07:00' },
} as CommandRequest<'appointment.reschedule'>;

// The floor: 503, 429 (Retry-After kept), 422, a 200 page for a booking, and no blind second POST.
describeCommandConformance({
  connector,
  config: fixtureSettings,
  samples: {
    'appointment.book': { data: book.data },
    'appointment.cancel': { data: {}, vendorIds: ['54321'] },
    'appointment.reschedule': { data: move.data, vendorIds: ['54321'] },
  },
});

let sim: AcuitySimulator;
let config: Config;
beforeEach(async () => {
  sim = new AcuitySimulator({ config: fixtureSettings });
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

describe('Acuity commands against the simulator', () => {
  it('books: POST /appointments, done with the new id', async () => {
    const ctx = attempt(1);
    const result = await commands['appointment.book']!(book, ctx);
    expect(result).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    expect(sim.appointments.size).toBe(2);
  });

  it('a booking made but answered 503 by a gateway: the next try finds it (alreadyDone) and books nothing more', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect(await commands['appointment.book']!(book, first)).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 7000,
    });
    expect(sim.appointments.size).toBe(2); // made
    const again = await commands['appointment.book']!(book, attempt(2, first));
    const made = [...sim.appointments.keys()].find((id) => id !== 54321)!;
    expect(again).toEqual({ outcome: 'done', alreadyDone: true, vendorIds: [String(made)] });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
  });

  it("a booking sent in UTC, made but its answer lost, is found by the next try though Acuity dates it by the account's day", async () => {
    await sim.close();
    sim = new AcuitySimulator({ config: fixtureSettings, accountOffset: '-07:00' });
    await sim.start();
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
    // 03:30 UTC on the 11th is 20:30 on the 10th at the account: its minDate/maxDate day.
    const utc = { ...book, data: { ...book.data, start: '2026-03-11T03:30:00Z' } };
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect((await commands['appointment.book']!(utc, first)).outcome).toBe('transient');
    const made = [...sim.appointments.values()][0]!;
    expect(made.datetime).toBe('2026-03-10T20:30:00-0700');
    expect(await commands['appointment.book']!(utc, attempt(2, first))).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [String(made.id)],
    });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
  });

  it('a booking turned away (503 before the write) is sent again once the lookup finds nothing and the POST can no longer land; a lookup that fails sends nothing', async () => {
    sim.failNext();
    const first = attempt(1);
    expect((await commands['appointment.book']!(book, first)).outcome).toBe('transient');
    sim.failNext(); // the lookup
    expect((await commands['appointment.book']!(book, attempt(2, first))).outcome).toBe('transient');
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    // Not listed, but the 503 may be a gateway's that forwarded the POST, which may still land:
    // sent again at once, it booked twice when it did.
    expect(await commands['appointment.book']!(book, attempt(3, first))).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('it may still land'),
    });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('acuity:book-sent', { at: old, last: old });
    expect(await commands['appointment.book']!(book, attempt(4, first))).toMatchObject({ outcome: 'done' });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(2);
    expect(sim.appointments.size).toBe(2);
  });

  it('a booking sent again after the wait and refused (400 not_available) is looked for once more: the earlier POST landed late, booked once', async () => {
    sim.failNext(); // the gateway's 503: Acuity still at work on it
    const first = attempt(1);
    expect((await commands['appointment.book']!(book, first)).outcome).toBe('transient');
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('acuity:book-sent', { at: old, last: old });
    // The lookup finds nothing; the first POST lands just before the one sent again, refused.
    const ctx = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) => {
        if (request.method !== 'POST') return fetchVendorHttp.request(request);
        sim.add({
          ...example,
          id: 9_100_001,
          datetime: '2026-03-10T11:30:00-0700',
          datetimeCreated: new Date().toISOString().replace(/\.\d+Z$/, '+0000'),
        });
        return {
          status: 400,
          headers: { 'content-type': 'application/json' },
          body: {
            status_code: 400,
            message: 'The time you picked is not available.',
            error: 'not_available',
          },
        };
      },
    });
    expect(await commands['appointment.book']!(book, ctx)).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['9100001'],
    });
    expect(await first.commandState.get('acuity:book-sent')).toBeUndefined();
  });

  it('a booking sent again and refused, whose second lookup fails, keeps the first POST’s mark and is transient: the next try finds the booking', async () => {
    sim.failNext(); // the gateway's 503: the first POST's outcome unknown
    const first = attempt(1);
    expect((await commands['appointment.book']!(book, first)).outcome).toBe('transient');
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('acuity:book-sent', { at: old, last: old });
    // The lookup finds nothing; the POST sent again is refused (the first landed meanwhile), and
    // the lookup after the refusal meets the gateway's 503.
    let lookups = 0;
    const ctx = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) => {
        if (request.method === 'POST') {
          sim.add({ ...example, id: 9_100_003, datetime: '2026-03-10T11:30:00-0700' });
          return {
            status: 400,
            headers: { 'content-type': 'application/json' },
            body: {
              status_code: 400,
              message: 'The time you picked is not available.',
              error: 'not_available',
            },
          };
        }
        lookups++;
        if (lookups === 2)
          return { status: 503, headers: { 'retry-after': '7' }, body: 'upstream connect error' };
        return fetchVendorHttp.request(request);
      },
    });
    expect((await commands['appointment.book']!(book, ctx)).outcome).toBe('transient');
    expect(await first.commandState.get('acuity:book-sent')).toEqual({ at: old, last: old });
    expect(await commands['appointment.book']!(book, attempt(3, first))).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['9100003'],
    });
  });

  it('a booking sent again and answered 429 keeps the first POST’s mark: the next try looks it up before it books', async () => {
    sim.failNext(); // the gateway's 503: the first POST's outcome unknown
    const first = attempt(1);
    expect((await commands['appointment.book']!(book, first)).outcome).toBe('transient');
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('acuity:book-sent', { at: old, last: old });
    // The lookup finds nothing; the second POST is turned away (429): nothing said of the first.
    const ctx = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) =>
        request.method === 'POST'
          ? { status: 429, headers: { 'retry-after': '7' }, body: '' }
          : fetchVendorHttp.request(request),
    });
    expect((await commands['appointment.book']!(book, ctx)).outcome).toBe('transient');
    expect(await first.commandState.get('acuity:book-sent')).toEqual({ at: old, last: old });
    // The first POST lands late; the next try finds it instead of booking again.
    sim.add({ ...example, id: 9_100_002, datetime: '2026-03-10T11:30:00-0700' });
    expect(await commands['appointment.book']!(book, attempt(3, first))).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['9100002'],
    });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
  });

  it('a refused booking (400 not_available) is permanent with Acuity’s words, and forgets its mark', async () => {
    sim.failNext({ status: 400 });
    const ctx = attempt(1);
    expect(await commands['appointment.book']!(book, ctx)).toMatchObject({ outcome: 'permanent' });
    expect(await ctx.commandState.get('acuity:book-sent')).toBeUndefined();
  });

  it('cancels with PUT …/cancel; a later try after a lost answer reads first and is done (alreadyDone) without a second PUT', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1, undefined, ['54321']);
    expect((await commands['appointment.cancel']!(cancel, first)).outcome).toBe('transient');
    expect(sim.appointments.get(54321)!.canceled).toBe(true);
    const again = await commands['appointment.cancel']!(cancel, attempt(2, first, ['54321']));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true });
    expect(sim.calls.filter((c) => c.method === 'PUT')).toHaveLength(1);
  });

  it('a cancel refused as a repeat (the first landed after the read, or the front desk cancelled it) is done once a read shows it cancelled', async () => {
    await sim.close();
    sim = new AcuitySimulator({ config: fixtureSettings, repeatedCancel: 'refused' });
    await sim.start();
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
    sim.add({ ...example, canceled: true });
    expect(await commands['appointment.cancel']!(cancel, attempt(1, undefined, ['54321']))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(sim.calls.map((c) => `${c.method} ${c.status}`)).toEqual(['PUT 400', 'GET 200']);
    // A refusal of a live appointment stands, with Acuity's words.
    sim.add({ ...example, id: 54322, canceled: false });
    sim.failNext({ status: 400 });
    expect(await commands['appointment.cancel']!(cancel, attempt(1, undefined, ['54322']))).toMatchObject({
      outcome: 'permanent',
    });
  });

  it('a try numbered 1 again after its write went out (a manual retry, a try given back) reads first too: no second PUT', async () => {
    // A manual retry counts its tries from 1 again, and a try the hub's database cut short keeps
    // its number: the attempt number cannot tell that a cancel or a move already went out.
    sim.failNext({ afterWrite: true });
    const first = attempt(1, undefined, ['54321']);
    expect((await commands['appointment.cancel']!(cancel, first)).outcome).toBe('transient');
    const again = await commands['appointment.cancel']!(cancel, attempt(1, first, ['54321']));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true });
    sim.add({ ...example, id: 54322 });
    sim.failNext({ afterWrite: true });
    const moving = attempt(1, undefined, ['54322']);
    expect((await commands['appointment.reschedule']!(move, moving)).outcome).toBe('transient');
    const moved = await commands['appointment.reschedule']!(move, attempt(1, moving, ['54322']));
    expect(moved).toMatchObject({ outcome: 'done', alreadyDone: true });
    expect(sim.calls.filter((c) => c.method === 'PUT')).toHaveLength(2);
  });

  it("cancels as the clinic (admin=true), past the account's client cancellation rules; as the client when the actor is the patient", async () => {
    // developers.acuityscheduling.com/reference/put-appointments-id-cancel: "By default appointments
    // are canceled as a client. Canceling an appointment as an admin ... disables cancellation
    // rules": sent as a client, the front desk's cancel an hour before the visit was refused.
    await sim.close();
    sim = new AcuitySimulator({ config: fixtureSettings, clientCancel: { minHoursBefore: 24 } });
    await sim.start();
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
    const soon = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, '-0000');
    sim.add({ ...example, id: 54330, datetime: soon });
    sim.add({ ...example, id: 54331, datetime: soon });
    const byStaff = { ...cancel, data: { reason: 'practitioner ill', actor: { kind: 'staff' as const } } };
    expect(await commands['appointment.cancel']!(byStaff, attempt(1, undefined, ['54330']))).toMatchObject({
      outcome: 'done',
    });
    expect(sim.appointments.get(54330)!.canceled).toBe(true);
    // No actor: the command comes from the clinic's system, as for Docplanner's confirm.
    sim.add({ ...example, id: 54332, datetime: soon });
    expect(await commands['appointment.cancel']!(cancel, attempt(1, undefined, ['54332']))).toMatchObject({
      outcome: 'done',
    });
    // The patient asking (a patient portal): Acuity's client rules apply, and its refusal stands.
    const byPatient = { ...cancel, data: { actor: { kind: 'patient' as const } } };
    expect(await commands['appointment.cancel']!(byPatient, attempt(1, undefined, ['54331']))).toEqual({
      outcome: 'permanent',
      message:
        'Acuity cancel answered 400: cancel_too_close: Clients are not allowed to cancel this close to the time of the appointment.',
      vendor: expect.objectContaining({ status: 400 }),
    });
    expect(sim.appointments.get(54331)!.canceled).not.toBe(true);
  });

  it("books as the clinic's staff with bookAs: admin (admin=true, notes written), past the account's minimum notice; as a client by default, refused with Acuity's words", async () => {
    // developers.acuityscheduling.com/reference/post-appointments: "By default appointments are
    // created as if they are being booked by a client. Booking as an admin disables availability
    // and attribute validations, and allows setting the notes attribute. This also requires a valid
    // calendarID": as a client, the front desk's booking an hour ahead was refused.
    await sim.close();
    sim = new AcuitySimulator({ config: fixtureSettings, clientBooking: { minHoursBefore: 24 } });
    await sim.start();
    const soon = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const urgent = {
      ...book,
      data: { ...book.data, start: soon, comment: 'referred by Dr Jones' },
    } as CommandRequest<'appointment.book'>;
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
    expect(await commands['appointment.book']!(urgent, attempt(1))).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('not_available_min_hours_in_advance: The time'),
    });
    expect(sim.appointments.size).toBe(0);
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl, bookAs: 'admin' };
    const made = await commands['appointment.book']!(urgent, attempt(1));
    expect(made).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    const booked = sim.appointments.get(Number((made as { vendorIds: string[] }).vendorIds[0]))!;
    expect(booked).toMatchObject({ calendarID: 27238, notes: 'referred by Dr Jones' });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(2);
    // As an admin Acuity needs the calendar: refused at once without it, nothing sent.
    const noCalendar = {
      ...urgent,
      data: { ...urgent.data, practitioner: undefined },
    } as unknown as CommandRequest<'appointment.book'>;
    expect(commandUnsupported(noCalendar, config)).toContain('practitioner.id');
    expect(await commands['appointment.book']!(noCalendar, attempt(1))).toMatchObject({
      outcome: 'permanent',
    });
    expect(sim.calls.filter((c) => c.method === 'POST')).toHaveLength(2);
  });

  it('reschedules with PUT …/reschedule; a later try finds it moved (alreadyDone); a cancelled one is refused with Acuity’s words', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1, undefined, ['54321']);
    expect((await commands['appointment.reschedule']!(move, first)).outcome).toBe('transient');
    expect(await commands['appointment.reschedule']!(move, attempt(2, first, ['54321']))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    sim.appointments.get(54321)!.canceled = true;
    const other = { ...move, data: { start: '2013-07-04T09:00:00-07:00' } };
    expect(await commands['appointment.reschedule']!(other, attempt(1, undefined, ['54321']))).toMatchObject({
      outcome: 'permanent',
      message:
        'Acuity reschedule answered 400: reschedule_canceled: Canceled appointments may not be rescheduled.',
    });
  });

  it("reschedules as the clinic's staff with bookAs: admin (…/reschedule?admin=true), past the client's minimum notice; as a client by default, refused with Acuity's error", async () => {
    // The reschedule reference: `admin` "bypasses availability checks"; a client's reschedule of a
    // visit an hour away is refused (reschedule_too_close) under the account's notice.
    await sim.close();
    sim = new AcuitySimulator({ config: fixtureSettings, clientReschedule: { minHoursBefore: 24 } });
    await sim.start();
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, '+0000');
    sim.add({ ...example, id: 54400, datetime: inAnHour });
    const later = { ...move, data: { start: '2030-07-03T09:00:00-07:00' } };
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
    expect(await commands['appointment.reschedule']!(later, attempt(1, undefined, ['54400']))).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('reschedule_too_close'),
    });
    expect(sim.appointments.get(54400)!.datetime).toBe(inAnHour);
    config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl, bookAs: 'admin' };
    expect(await commands['appointment.reschedule']!(later, attempt(1, undefined, ['54400']))).toMatchObject({
      outcome: 'done',
    });
    expect(sim.appointments.get(54400)!.datetime).toBe('2030-07-03T09:00:00-0700');
    expect(sim.calls.filter((c) => c.method === 'PUT').map((c) => c.status)).toEqual([400, 200]);
  });

  it('refuses at once what the API cannot carry: a booking without a type or names, a move of place or type', () => {
    expect(
      commandUnsupported({ type: 'appointment.book', data: { ...book.data, service: undefined } } as never),
    ).toMatch(/service.id/);
    expect(
      commandUnsupported({
        type: 'appointment.book',
        data: { ...book.data, patient: { name: 'Cher' } },
      } as never),
    ).toMatch(/first and last names/);
    expect(
      commandUnsupported({
        type: 'appointment.reschedule',
        data: { ...move.data, location: { id: '1' } },
      } as never),
    ).toMatch(/in time only/);
  });
});
