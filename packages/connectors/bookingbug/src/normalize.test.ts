import { readFileSync } from 'node:fs';
import { type JsonObject, type NormalizeResult, toRfc3339 } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { eventMap, normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { basicAuth: { username: 'bb-user', password: 'bb-password-0123456789' } };
const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

function setup() {
  const ctx = memoryNormalizeContext({
    config,
    instanceId: 'bb-test',
    receivedAt: new Date('2026-01-15T10:00:00Z'),
  });
  const push = async (body: JsonObject, route = 'default'): Promise<NormalizeResult> => {
    const [n] = parse(inboundRequest({ route, body, receivedAt: new Date('2026-01-15T10:00:00Z') }), config);
    return normalize(n!, ctx);
  };
  return { ctx, push };
}

const dataOf = (r: NormalizeResult, i = 0) => r.events[i]?.data as JsonObject;

describe('bookingbug normalize', () => {
  it('stores a JRNI queue entry that names no booking as ignored, saying why', async () => {
    // FACTS.md, "BookingBug (now JRNI)": appointment.origin is `booking` or `queuer`; the `queuing`
    // block's fields are not published, and `bookingId` is the only documented id of the entry.
    // The hub's vocabulary does have queue steps (Clockwise.MD's walk-ins), so the reason is not
    // "no queues" but that nothing identifies the entry across its create, modify and cancel.
    const { push } = setup();
    const create = fixture('jrni-data-create.json');
    const { bookingId: _, ...appointment } = create.appointment as JsonObject;
    const r = await push({ ...create, appointment: { ...appointment, origin: 'queuer' } });
    expect(r.events).toEqual([]);
    expect(r.ignored).toMatch(/queue entry/);
    expect(r.ignored).toMatch(/no identifier/);
  });

  it('announces a JRNI queue entry that names its booking (origin queuer with a bookingId) as that booking', async () => {
    // The same fixture (jrni-data-create.json, FACTS.md's data-webhook blocks) with origin queuer:
    // once JRNI books the walk-in, the push names the booking and continues it like any other.
    const { push } = setup();
    const create = fixture('jrni-data-create.json');
    const r = await push({
      ...create,
      appointment: { ...(create.appointment as JsonObject), origin: 'queuer' },
    });
    expect(r.events.map((e) => e.type)).toEqual(['appointment.created']);
  });

  it("reads a legacy datetime without an offset in the booking's time_zone, as UTC only when it names none", async () => {
    // The vendor sample (created.json, bookingbug-push-notifications.md) with the offsets removed.
    const bare = (time_zone: string | undefined, datetime: string, end_datetime: string): JsonObject => {
      const body = fixture('created.json');
      const booking = ((body._embedded as JsonObject).bookings as JsonObject[])[0]!;
      Object.assign(booking, { datetime, end_datetime });
      if (time_zone === undefined) delete booking.time_zone;
      else booking.time_zone = time_zone;
      return body;
    };
    const cases: Array<[string | undefined, string, string, string, string]> = [
      // Before: 11:30 in Paris was announced as 11:30 UTC, an hour late.
      [
        'Europe/Paris',
        '2017-03-10T11:30:00',
        '2017-03-10T12:00:00',
        '2017-03-10T11:30:00+01:00',
        '2017-03-10T12:00:00+01:00',
      ],
      // The sample's own zone in summer time (British Summer Time, +01:00).
      [
        'Europe/London',
        '2017-07-10 11:30:00',
        '2017-07-10 12:00:00',
        '2017-07-10T11:30:00+01:00',
        '2017-07-10T12:00:00+01:00',
      ],
      // No zone named: UTC, as before.
      [
        undefined,
        '2017-03-10T11:30:00',
        '2017-03-10T12:00:00',
        '2017-03-10T11:30:00Z',
        '2017-03-10T12:00:00Z',
      ],
    ];
    for (const [zone, datetime, endDatetime, start, end] of cases) {
      const { push } = setup();
      const r = await push(bare(zone, datetime, endDatetime));
      expect(dataOf(r), String(zone)).toMatchObject({ start, end });
    }
    // An offset the vendor sends is kept, whatever the zone.
    const { push } = setup();
    const kept = await push(bare('Europe/Paris', '2017-03-10T11:30:00+00:00', '2017-03-10T12:00:00+00:00'));
    expect(dataOf(kept)).toMatchObject({
      start: '2017-03-10T11:30:00+00:00',
      end: '2017-03-10T12:00:00+00:00',
    });
  });

  it('maps the vendor sample to a created appointment with patient, practitioner, place and service', async () => {
    const { push } = setup();
    const r = await push(fixture('created.json'));
    expect(r.events.map((e) => e.type)).toEqual(['appointment.created']);
    const data = dataOf(r);
    expect(r.events[0]?.subject).toBe(`appointment/${data.id}`);
    expect(r.events[0]?.time).toBe('2017-03-07T09:30:31Z');
    expect(data).toMatchObject({
      vendorIds: [{ system: 'bookingbug', instance: 'bb-test', value: '13477736', current: true }],
      status: 'booked',
      start: '2017-03-10T11:30:00+00:00',
      end: '2017-03-10T12:00:00+00:00',
      durationMinutes: 30,
      timeZone: 'Europe/London',
      bookedAt: '2017-03-07T09:30:31Z',
      patient: {
        id: '3056937',
        externalRef: 'QWERTY123',
        name: 'Test Gladden',
        given: 'Test',
        family: 'Gladden',
        email: 'test@bookingbug.com',
        phone: '+4412345678910',
      },
      practitioner: { id: '30553', name: 'Waqas' },
      location: {
        id: '52355',
        name: 'London Office',
        address: { line: ['111 Neville Road'], postalCode: 'E11 11', country: 'United Kingdom' },
      },
      organization: { id: '50666' },
      service: { id: '104747', name: 'Microchipping', price: { amount: 1500, unit: 'minor' } },
    });
    const vendor = data.vendor as JsonObject;
    expect((vendor.booking as JsonObject).id).toBe(13477736);
    expect((vendor.purchase as JsonObject).id).toBe(11610441);
    expect(((vendor.purchase as JsonObject)._embedded as JsonObject).bookings).toBeUndefined();
  });

  it('follows created → unchanged → moved → changed → cancelled on one hub id', async () => {
    const { push } = setup();
    const created = await push(fixture('created.json'));
    const hubSubject = created.events[0]?.subject;
    expect((await push(fixture('repeat-unchanged.json'))).ignored).toBe('no change since the last delivery');

    const moved = await push(fixture('amended-time.json'));
    expect(moved.events[0]?.type).toBe('appointment.rescheduled');
    expect(moved.events[0]?.subject).toBe(hubSubject);
    expect(dataOf(moved)).toMatchObject({
      start: '2017-03-14T15:00:00+00:00',
      previous: { start: '2017-03-10T11:30:00+00:00', end: '2017-03-10T12:00:00+00:00' },
      changes: ['start', 'end'],
    });

    const changed = await push(fixture('amended-other.json'));
    expect(changed.events[0]?.type).toBe('appointment.updated');
    expect(dataOf(changed)).toMatchObject({
      changes: ['practitioner', 'vendor.resource_name'],
      practitioner: { id: '30560', name: 'Sarah' },
    });

    const cancelled = await push(fixture('cancelled-via-cancellation-url.json'), 'cancellation');
    expect(cancelled.events.map((e) => [e.type, e.subject])).toEqual([['appointment.cancelled', hubSubject]]);
    expect(dataOf(cancelled).status).toBe('cancelled');
    expect((await push(fixture('cancelled-via-cancellation-url.json'), 'cancellation')).ignored).toMatch(
      /no change/,
    );
  });

  it('gives one event per booking, treats a replaced booking id at a new time as a move, cancels only flagged bookings', async () => {
    const { push, ctx } = setup();
    const two = await push(fixture('two-bookings.json'));
    expect(two.events.map((e) => e.type)).toEqual(['appointment.created', 'appointment.created']);
    const [first, second] = two.events.map((e) => e.subject);
    expect(first).not.toBe(second);

    const moved = await push(fixture('moved-new-booking-id.json'));
    expect(moved.events.map((e) => [e.type, e.subject])).toEqual([['appointment.rescheduled', first]]);
    expect(dataOf(moved)).toMatchObject({
      vendorIds: [
        { value: '13477801', current: false },
        { value: '13477850', current: true },
      ],
      previous: { start: '2017-03-20T09:00:00+00:00', vendorId: '13477801' },
      start: '2017-03-21T11:00:00+00:00',
    });
    expect(await ctx.aliases.find('appointment', '13477850')).toBe(first?.slice('appointment/'.length));

    const cancelled = await push(fixture('cancelled-via-is-cancelled.json'));
    expect(cancelled.events.map((e) => [e.type, e.subject])).toEqual([['appointment.cancelled', second]]);
  });

  it('cancels every booking when the cancellation URL gets a purchase without is_cancelled', async () => {
    const { push } = setup();
    await push(fixture('two-bookings.json'));
    const r = await push(fixture('two-bookings.json'), 'cancellation');
    expect(r.events.map((e) => e.type)).toEqual(['appointment.cancelled', 'appointment.cancelled']);
  });

  it("follows JRNI's data webhook: created, moved, checked in, being seen, completed", async () => {
    const { push } = setup();
    const created = await push(fixture('jrni-data-create.json'));
    expect(created.events[0]).toMatchObject({ type: 'appointment.created', time: '2023-02-10T15:12:09Z' });
    expect(dataOf(created)).toMatchObject({
      vendorIds: [{ system: 'bookingbug', value: '1294', current: true }],
      status: 'booked',
      workflowStep: 'scheduled',
      start: '2023-02-17T14:00:00-05:00',
      end: '2023-02-17T15:00:00-05:00',
      durationMinutes: 60,
      patient: {
        name: 'Jrni Test',
        given: 'Jrni',
        family: 'Test',
        phone: '+11234567890',
        email: 'jrni+test@jrni.com',
      },
      practitioner: { id: '15400', name: 'Staff Member Name', email: 'staff@jrni.com' },
      organization: { id: '37011', name: 'Virtual Location' },
      location: { id: '37011', name: 'Virtual Location', address: { line: ['United States'] } },
      service: { id: '48855', name: 'Video Service' },
      videoCallUrl: 'https://example.jrni.com/app/zoom/join?ref=hLevdp1-Av_7tm4dMjUx',
      bookedBy: { kind: 'staff', name: 'Admin User', vendorValue: 'Administrator' },
    });
    expect((dataOf(created).vendor as JsonObject).webhook).toMatchObject({ triggerName: 'create' });
    const subject = created.events[0]?.subject;
    const moved = await push(fixture('jrni-data-modify-time.json'));
    expect(moved.events[0]).toMatchObject({ type: 'appointment.rescheduled', subject });
    expect(dataOf(moved)).toMatchObject({
      start: '2023-02-18T14:00:00-05:00',
      previous: { start: '2023-02-17T14:00:00-05:00', end: '2023-02-17T15:00:00-05:00' },
      changes: ['start', 'end'],
    });
    const steps = [
      ['jrni-data-checked-in.json', 'appointment.arrived', 'arrived', 'arrived'],
      ['jrni-data-being-seen.json', 'appointment.in_progress', 'checked-in', 'in_progress'],
      ['jrni-data-completed.json', 'appointment.completed', 'fulfilled', 'completed'],
    ];
    for (const [file, type, status, workflowStep] of steps) {
      const r = await push(fixture(file!));
      expect(
        r.events.map((e) => [e.type, e.subject]),
        file,
      ).toEqual([[type, subject]]);
      expect(dataOf(r), file).toMatchObject({ status, workflowStep, patient: { name: 'Jrni Test' } });
    }
    // Stepping back along the visit is an undo.
    const back = {
      ...fixture('jrni-data-completed.json'),
      triggerTime: '2023-02-18T20:01:00Z',
    } as JsonObject;
    (back.appointment as JsonObject).checkInStatus = 'Being seen';
    const reverted = await push(back);
    expect(reverted.events[0]?.type).toBe('appointment.status_reverted');
    expect(dataOf(reverted)).toMatchObject({
      status: 'checked-in',
      workflowStep: 'in_progress',
      changes: ['status', 'workflowStep'],
    });
  });

  it("follows JRNI's notification webhook: created, confirmed, a reminder that changes nothing, cancelled", async () => {
    const { push } = setup();
    const created = await push(fixture('jrni-notification-created.json'));
    expect(dataOf(created)).toMatchObject({
      timeZone: 'America/New_York',
      start: '2023-05-31T12:00:00-04:00',
    });
    const confirmed = await push(fixture('jrni-notification-confirmed.json'));
    expect(confirmed.events.map((e) => e.type)).toEqual(['appointment.confirmed']);
    expect((await push(fixture('jrni-notification-reminder.json'))).ignored).toMatch(/reminder/);
    const cancelled = await push(fixture('jrni-notification-cancelled.json'));
    expect(cancelled.events[0]).toMatchObject({
      type: 'appointment.cancelled',
      subject: created.events[0]?.subject,
    });
    expect(dataOf(cancelled)).toMatchObject({ status: 'cancelled', cancelledAt: '2023-05-30T16:20:00Z' });
  });

  it('keeps one identity per booking across the legacy push and JRNI webhooks, each event filled from the other', async () => {
    const { push } = setup();
    const created = await push(fixture('created.json'));
    await push(fixture('amended-time.json'));
    await push(fixture('amended-other.json'));
    const noShow = await push(fixture('jrni-legacy-booking-no-show.json'));
    expect(noShow.events.map((e) => [e.type, e.subject])).toEqual([
      ['appointment.no_show', created.events[0]?.subject],
    ]);
    expect(dataOf(noShow)).toMatchObject({
      status: 'noshow',
      start: '2017-03-14T15:00:00+00:00',
      // From the legacy purchase: the client's id and reference, the address, the price.
      patient: { id: '3056937', externalRef: 'QWERTY123', name: 'Test Gladden' },
      location: { id: '52355', name: 'London Office' },
      service: { id: '104747', name: 'Microchipping', price: { amount: 1500, unit: 'minor' } },
      practitioner: { id: '30560', name: 'Sarah' },
      organization: { id: '50666', name: 'Waqas Ahmad Child' },
      timeZone: 'Europe/London',
    });
    expect(dataOf(noShow).workflowStep).toBeUndefined();
    const undone = await push(fixture('jrni-legacy-booking-no-show-undone.json'));
    expect(undone.events[0]?.type).toBe('appointment.status_reverted');
    expect(dataOf(undone)).toMatchObject({
      status: 'booked',
      workflowStep: 'scheduled',
      changes: ['status', 'workflowStep'],
      patient: { id: '3056937' },
    });
  });

  it('fills a cancellation from the known state: the push without client, person link or address contradicts nothing', async () => {
    const { push } = setup();
    const created = await push(fixture('created.json'));
    const thin = fixture('created.json');
    const embedded = thin._embedded as JsonObject;
    delete embedded.client;
    delete embedded.member;
    delete thin.client_name;
    const [booking] = embedded.bookings as JsonObject[];
    for (const key of ['_links', 'address', 'time_zone', 'company_id', 'first_name', 'last_name', 'email'])
      delete booking![key];
    const cancelled = await push(thin, 'cancellation');
    expect(cancelled.events.map((e) => e.type)).toEqual(['appointment.cancelled']);
    const { vendor: _v, status, ...known } = dataOf(created);
    const { vendor: _w, ...after } = dataOf(cancelled);
    expect(after).toEqual({ ...known, status: 'cancelled' });
    expect(after.practitioner).toEqual({ id: '30553', name: 'Waqas' });
    expect(status).toBe('booked');
  });

  it('maps a legacy multi_status like JRNI check-in statuses, and an uncancelled booking to restored', async () => {
    const { push } = setup();
    await push(fixture('created.json'));
    const arrived = fixture('created.json');
    ((arrived._embedded as JsonObject).bookings as JsonObject[])[0]!.multi_status = 'checked_in';
    const r = await push(arrived);
    expect(r.events.map((e) => e.type)).toEqual(['appointment.arrived']);
    expect(dataOf(r)).toMatchObject({ status: 'arrived', workflowStep: 'arrived' });
  });

  it('ignores a JRNI snapshot older than the one applied: a late modify does not restore a cancelled booking', async () => {
    // FACTS.md: every JRNI data webhook is a full snapshot carrying its triggerTime (UTC).
    const { push } = setup();
    const create = fixture('jrni-data-create.json'); // 2023-02-10T15:12:09Z
    const cancel: JsonObject = { ...create, triggerName: 'cancelled', triggerTime: '2023-02-12T10:00:00Z' };
    cancel.appointment = { ...(create.appointment as JsonObject), status: 'Cancelled' };
    const lateModify = fixture('jrni-data-modify-time.json');
    lateModify.triggerTime = '2023-02-11T10:00:00Z'; // made before the cancellation, delivered after it
    expect((await push(create)).events.map((e) => e.type)).toEqual(['appointment.created']);
    expect((await push(cancel)).events.map((e) => e.type)).toEqual(['appointment.cancelled']);
    const stale = await push(lateModify);
    expect(stale.events).toEqual([]);
    expect(stale.ignored).toMatch(/older than the one of 2023-02-12T10:00:00Z/);
    // A later snapshot still applies (the booking really back, at its new time).
    lateModify.triggerTime = '2023-02-13T10:00:00Z';
    expect((await push(lateModify)).events.map((e) => e.type)).toEqual(['appointment.restored']);
  });

  it('announces both when one JRNI snapshot moves the booking and checks the patient in: rescheduled, then arrived', async () => {
    const { push } = setup();
    await push(fixture('jrni-data-create.json'));
    // The vendor's checked-in example carries another start than the create's.
    const both = await push(fixture('jrni-data-checked-in.json'));
    expect(both.events.map((e) => e.type)).toEqual(['appointment.rescheduled', 'appointment.arrived']);
    expect(dataOf(both, 0).changes).toEqual(expect.arrayContaining(['start', 'end']));
    expect(dataOf(both, 1)).toMatchObject({ status: 'arrived', workflowStep: 'arrived' });
    expect(both.events[0]!.subject).toBe(both.events[1]!.subject);
  });

  it('announces a cancelled booking that comes back as restored (the undo of a cancellation)', async () => {
    const { push } = setup();
    await push(fixture('created.json'));
    await push(fixture('created.json'), 'cancellation');
    const back = fixture('created.json');
    ((back._embedded as JsonObject).bookings as JsonObject[])[0]!.is_cancelled = false;
    const restored = await push(back);
    expect(restored.events.map((e) => e.type)).toEqual(['appointment.restored']);
    expect(dataOf(restored)).toMatchObject({ status: 'booked', changes: ['status', 'workflowStep'] });
  });

  /** The vendor sample's booking 13477736 as JRNI's data webhook tells it, at 11:30 written with `Z`. */
  const jrniSample = (appointment: JsonObject = {}, rest: JsonObject = {}): JsonObject => {
    const body = fixture('jrni-legacy-booking-no-show.json');
    body.appointment = {
      ...(body.appointment as JsonObject),
      customerStartTime: '2017-03-10T11:30:00Z',
      customerEndTime: '2017-03-10T12:00:00Z',
      companyStartTime: '2017-03-10T11:30:00Z',
      companyEndTime: '2017-03-10T12:00:00Z',
      checkInStatus: '',
      checkInStatusList: [],
      joinVideoURL: 'https://example.jrni.com/app/zoom/join?ref=LOjmIDvhfgjzV_O5',
      ...appointment,
    };
    body.staff = { name: 'Waqas', email: '', jrniId: 30553, externalId: '' };
    body.resource = { name: 'Consultation Room 1', jrniId: 43049, externalId: '' };
    body.additionalAttendeeCustomers = [];
    body.additionalAttendeeStaff = [];
    body.triggerTime = '2017-03-08T10:00:00Z';
    return { ...body, ...rest };
  };

  it('compares times as instants and takes what only JRNI carries (who booked, video link, company name) as no change', async () => {
    const { push } = setup();
    const created = await push(fixture('created.json'));
    // The legacy push wrote 2017-03-10T11:30:00+00:00; JRNI writes the same instant with Z.
    expect((await push(jrniSample())).ignored).toBe('no change since the last delivery');

    const moved = await push(
      jrniSample(
        {
          companyStartTime: '2017-03-10T12:30:00Z',
          companyEndTime: '2017-03-10T13:00:00Z',
        },
        { triggerTime: '2017-03-08T11:00:00Z' },
      ),
    );
    expect(moved.events.map((e) => [e.type, e.subject])).toEqual([
      ['appointment.rescheduled', created.events[0]?.subject],
    ]);
    expect(dataOf(moved)).toMatchObject({
      start: '2017-03-10T12:30:00Z',
      previous: { start: '2017-03-10T11:30:00Z', end: '2017-03-10T12:00:00Z' },
      changes: ['start', 'end'],
      bookedBy: { name: 'Test Gladden' },
      organization: { id: '50666', name: 'Waqas Ahmad Child' },
    });
    // The same instant in another offset (a company's local time) is no move either.
    const local = jrniSample(
      { companyStartTime: '2017-03-10T13:30:00+01:00', companyEndTime: '2017-03-10T14:00:00+01:00' },
      { triggerTime: '2017-03-08T12:00:00Z' },
    );
    expect((await push(local)).ignored).toBe('no change since the last delivery');
  });

  it('takes what only the purchase carries as no change after JRNI, and still announces what the two disagree on', async () => {
    const { push } = setup();
    const sarah = jrniSample({}, { staff: { name: 'Sarah', email: '', jrniId: 30560, externalId: '' } });
    const created = await push(sarah);
    expect(created.events.map((e) => e.type)).toEqual(['appointment.created']);
    // The purchase adds the client id, the price, the address, quantity and waitlist flag: no change;
    // it names another practitioner: a change.
    const legacy = await push(fixture('created.json'));
    expect(legacy.events.map((e) => [e.type, e.subject])).toEqual([
      ['appointment.updated', created.events[0]?.subject],
    ]);
    expect(dataOf(legacy)).toMatchObject({
      changes: ['practitioner'],
      practitioner: { id: '30553', name: 'Waqas' },
      location: { id: '52355', name: 'London Office' },
      patient: { id: '3056937', externalRef: 'QWERTY123' },
    });
    expect((await push(fixture('created.json'))).ignored).toBe('no change since the last delivery');
  });

  it('announces a JRNI modify that changes only an answer to a custom booking field', async () => {
    // FACTS.md, "BookingBug (now JRNI)": the data webhook's appointment carries
    // `customBookingFields[] {ref, value}` (jrni-data-create.json: additional_comments "test").
    // A modify changing only an answer was stored as ignored ("no change since the last delivery").
    const { ctx, push } = setup();
    const create = fixture('jrni-data-create.json');
    expect((await push(create)).events.map((e) => e.type)).toEqual(['appointment.created']);
    const appointment = create.appointment as JsonObject;
    const fields = (appointment.customBookingFields as JsonObject[]).map((f) =>
      f.ref === 'additional_comments' ? { ...f, value: 'wheelchair access, please' } : f,
    );
    const modify = {
      ...create,
      appointment: { ...appointment, customBookingFields: fields },
      triggerName: 'modify',
      triggerTime: '2023-02-10T16:00:00Z',
    };
    const r = await push(modify);
    expect(r.events.map((e) => e.type)).toEqual(['appointment.updated']);
    expect(dataOf(r).changes).toEqual(['vendor.custom_booking_fields']);
    expect((await push({ ...modify, triggerTime: '2023-02-10T16:05:00Z' })).ignored).toBe(
      'no change since the last delivery',
    );
    // A snapshot kept before the answers were (none stored): their first sight is no change.
    const { customBookingFields: _, ...older } = (await ctx.state.get<JsonObject>('booking:1294'))!;
    await ctx.state.set('booking:1294', older);
    const again = await push({ ...modify, triggerTime: '2023-02-10T16:10:00Z' });
    expect(again.events).toEqual([]);
  });

  it('announces the attendees a JRNI "attendees added" brings, even as the first JRNI push about a legacy booking', async () => {
    const { push } = setup();
    await push(fixture('created.json'));
    const added = jrniSample(
      {},
      {
        triggerName: 'attendees_added',
        additionalAttendeeCustomers: [{ firstName: 'Ann', lastName: 'Gladden' }],
      },
    );
    const r = await push(added);
    expect(r.events.map((e) => e.type)).toEqual(['appointment.updated']);
    expect(dataOf(r).changes).toEqual(['vendor.additional_attendees']);
  });

  it('reads which shape told a snapshot stored before that was recorded from what it holds', async () => {
    const unmark = async (ctx: ReturnType<typeof setup>['ctx'], bookingId: string) => {
      const { shapes: _s, ...snap } = (await ctx.state.get<JsonObject>(`booking:${bookingId}`))!;
      await ctx.state.set(`booking:${bookingId}`, snap);
    };
    // Told by the legacy push only: JRNI's first push adds who booked and a video link, no change.
    const legacy = setup();
    await legacy.push(fixture('created.json'));
    await unmark(legacy.ctx, '13477736');
    expect((await legacy.push(jrniSample())).ignored).toBe('no change since the last delivery');
    // Told by JRNI (it names who booked): a video link its next push adds is a change.
    const jrni = setup();
    await jrni.push(jrniSample({ joinVideoURL: '' }));
    await unmark(jrni.ctx, '13477736');
    const link = await jrni.push(
      jrniSample({ joinVideoURL: 'https://example.jrni.com/app/zoom/join?ref=new' }),
    );
    expect(link.events.map((e) => e.type)).toEqual(['appointment.updated']);
    expect(dataOf(link).changes).toEqual(['videoCallUrl']);
  });

  it('takes a booking id replaced at the same instant (written another way) as a new booking, not a move', async () => {
    const { push } = setup();
    const two = await push(fixture('two-bookings.json'));
    const [first] = two.events.map((e) => e.subject);
    const replaced = fixture('moved-new-booking-id.json');
    const [booking] = (replaced._embedded as JsonObject).bookings as JsonObject[];
    booking!.datetime = '2017-03-20T09:00:00Z';
    booking!.end_datetime = '2017-03-20T09:30:00Z';
    const r = await push(replaced);
    expect(r.events.map((e) => e.type)).toEqual(['appointment.created']);
    expect(r.events[0]?.subject).not.toBe(first);
  });

  it('announces an amendment of a booking it never saw as created (the hub started late)', async () => {
    const { push } = setup();
    expect((await push(fixture('amended-other.json'))).events[0]?.type).toBe('appointment.created');
  });

  it('ignores a purchase without bookings', async () => {
    const { push } = setup();
    const body = { ...fixture('created.json'), _embedded: { bookings: [] } };
    expect((await push(body)).ignored).toBe('the purchase has no bookings');
  });

  it('is documented: every vendor type and normalized type appears in docs/connectors/bookingbug.md', () => {
    const doc = readFileSync(new URL('../../../../docs/connectors/bookingbug.md', import.meta.url), 'utf8');
    for (const row of eventMap) {
      expect(doc, row.vendorType).toContain(`\`${row.vendorType}\``);
      for (const type of row.normalizedTypes) expect(doc, type).toContain(`\`${type}\``);
    }
  });

  it('normalizes datetimes keeping the offset', () => {
    expect(toRfc3339('2017-03-10T11:30:00+00:00')).toBe('2017-03-10T11:30:00+00:00');
    expect(toRfc3339('2017-03-10 11:30')).toBe('2017-03-10T11:30:00Z');
    expect(toRfc3339('2017-03-10T11:30:00+0100')).toBe('2017-03-10T11:30:00+01:00');
    expect(toRfc3339('null')).toBeUndefined();
  });
});
