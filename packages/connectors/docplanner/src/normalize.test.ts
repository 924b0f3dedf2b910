import { readFileSync } from 'node:fs';
import { type EventDraft, type JsonObject, type VendorNotification, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { pushAuth: { apiKey: 'dp-push-key-7f3a9c2e41' } };

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

function notificationOf(body: JsonObject): VendorNotification {
  return parse(inboundRequest({ body }), config)[0]!;
}

/** Normalizes fixtures in order on one context; returns the single event of each, validated. */
async function run(
  ctx: ReturnType<typeof memoryNormalizeContext<Config>>,
  ...files: Array<string | JsonObject>
) {
  const out: EventDraft[] = [];
  for (const file of files) {
    const n = notificationOf(typeof file === 'string' ? fixture(file) : file);
    const result = await normalize(n, ctx);
    expect(result.events, typeof file === 'string' ? file : n.type).toHaveLength(1);
    const draft = result.events[0]!;
    const verdict = validateEvent(
      completeEvent(draft, {
        instanceId: ctx.instanceId,
        connector: 'docplanner',
        notification: n,
        index: 0,
      }),
    );
    expect(verdict, `${draft.type} valid`).toEqual({ valid: true });
    out.push(draft);
  }
  return out;
}

const newCtx = () => memoryNormalizeContext({ instanceId: 'dp-main', config });

/** Normalizes one notification; returns all its events, each validated. */
async function eventsOf(ctx: ReturnType<typeof newCtx>, file: string | JsonObject): Promise<EventDraft[]> {
  const n = notificationOf(typeof file === 'string' ? fixture(file) : file);
  const result = await normalize(n, ctx);
  result.events.forEach((draft, index) => {
    const event = completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector: 'docplanner',
      notification: n,
      index,
    });
    expect(validateEvent(event), `${draft.type} valid`).toEqual({ valid: true });
  });
  return result.events;
}

/** A fixture's booking notification about another booking id, told at another time. */
function about(file: string, bookingId: string, createdAt: string): JsonObject {
  const body = fixture(file);
  const data = body.data as JsonObject;
  return {
    ...body,
    created_at: createdAt,
    data: { ...data, visit_booking: { ...(data.visit_booking as JsonObject), id: bookingId } },
  };
}

describe('bookings', () => {
  it('slot-booked → appointment.created with the full snapshot', async () => {
    const [e] = await run(newCtx(), 'slot-booked.json');
    expect(e!.type).toBe('appointment.created');
    expect(e!.time).toBe('2026-03-02T09:14:07+01:00');
    expect(e!.subject).toBe(`appointment/${e!.data.id}`);
    expect(e!.data).toMatchObject({
      vendorIds: [{ system: 'docplanner', instance: 'dp-main', value: '210045781', current: true }],
      status: 'booked',
      start: '2026-03-10T11:30:00+01:00',
      end: '2026-03-10T11:50:00+01:00',
      durationMinutes: 20,
      patient: {
        name: 'Jan Kowalski',
        given: 'Jan',
        family: 'Kowalski',
        phone: '+48600100200',
        birthDate: '1985-04-12',
        gender: 'male',
        nationalId: '85041212345',
        isReturning: false,
      },
      practitioner: { id: '98765', name: 'Anna Nowak' },
      location: {
        id: '445566',
        name: 'Gabinet Mokotów',
        address: { line: ['ul. Puławska 12'], postalCode: '02-512', city: 'Warszawa' },
        kind: 'commercial',
      },
      organization: { id: '12345', name: 'Centrum Medyczne Zdrowie' },
      service: { id: '556677', price: { amount: 150, unit: 'major', isFrom: false }, visible: true },
      insurance: { id: '31', name: 'Medicover', plan: 'Standard', planId: '311' },
      payment: { required: false },
      comment: 'Kontrola ciśnienia',
      bookedBy: { kind: 'patient', vendorValue: 'user' },
    });
    expect((e!.data.vendor as JsonObject).visit_booking).toMatchObject({ signature: 'f3a9c15781' });
  });

  it('carries who booked: doctor → practitioner, integration → integration', async () => {
    const [doctor, integration] = await run(
      newCtx(),
      'slot-booked-by-doctor.json',
      'slot-booked-by-integration.json',
    );
    expect(doctor!.data.bookedBy).toEqual({ kind: 'practitioner', vendorValue: 'doctor' });
    expect(integration!.data.bookedBy).toEqual({ kind: 'integration', vendorValue: 'integration' });
  });

  it('keeps the video call URL', async () => {
    const [e] = await run(newCtx(), 'slot-booked-videocall.json');
    expect(e!.data.videoCallUrl).toBe('https://video.znanylekarz.pl/room/8f2c1d7a-5b1e');
  });

  it('slot-overbooked is a booking like slot-booked', async () => {
    const [e] = await run(newCtx(), 'slot-overbooked.json');
    expect(e!.type).toBe('appointment.created');
    expect(e!.data.bookedBy).toEqual({ kind: 'practitioner', vendorValue: 'doctor' });
  });

  it('booking-confirmed → appointment.confirmed on the same hub id', async () => {
    const [booked, confirmed] = await run(newCtx(), 'slot-booked.json', 'booking-confirmed.json');
    expect(confirmed!.type).toBe('appointment.confirmed');
    expect(confirmed!.subject).toBe(booked!.subject);
  });

  it('booking-canceled → appointment.cancelled with who cancelled', async () => {
    const [, cancelled] = await run(
      newCtx(),
      'slot-booked-by-integration.json',
      'booking-canceled-by-integration.json',
    );
    expect(cancelled!.type).toBe('appointment.cancelled');
    expect(cancelled!.data).toMatchObject({
      status: 'cancelled',
      cancelledAt: '2026-03-07T09:00:00+01:00',
      cancelledBy: { kind: 'integration', vendorValue: 'integration' },
    });
  });

  it('booking-payment-status-changed → appointment.updated with the payment change', async () => {
    const [booked, updated] = await run(
      newCtx(),
      'slot-booked-paid.json',
      'booking-payment-status-changed.json',
    );
    expect(booked!.data.payment).toEqual({ required: true });
    expect(updated!.type).toBe('appointment.updated');
    expect(updated!.subject).toBe(booked!.subject);
    expect(updated!.data.payment).toEqual({
      required: true,
      status: 'refunded',
      previousStatus: 'paid',
      changedAt: '2026-03-06T08:30:00+01:00',
    });
    expect(updated!.data.changes).toEqual(['payment.status']);
  });

  it('ignores a payment change older than the payment status known (a retried or released push): a late paid does not undo the refund', async () => {
    const ctx = newCtx();
    const [, refunded] = await run(ctx, 'slot-booked-paid.json', 'booking-payment-status-changed.json');
    const paid = fixture('booking-payment-status-changed.json');
    paid.created_at = '2026-03-04T12:00:01+01:00';
    (paid.data as JsonObject).visit_payment_status = {
      status_from: 'waiting_for_confirmation',
      status_to: 'paid',
      changed_at: '2026-03-04T12:00:00+01:00',
    };
    const late = await normalize(notificationOf(paid), ctx);
    expect(late.events).toEqual([]);
    expect(late.ignored).toMatch(/before the payment status "refunded"/);
    expect(await ctx.state.get(`known:${refunded!.subject}`)).toMatchObject({
      payment: { status: 'refunded', changedAt: '2026-03-06T08:30:00+01:00' },
    });
    // A later change still applies.
    const chargedBack = structuredClone(paid);
    chargedBack.created_at = '2026-03-07T10:00:01+01:00';
    (chargedBack.data as JsonObject).visit_payment_status = {
      status_from: 'refunded',
      status_to: 'charged_back',
      changed_at: '2026-03-07T10:00:00+01:00',
    };
    const [after] = await run(ctx, chargedBack);
    expect(after!.data.payment).toMatchObject({ status: 'charged_back', previousStatus: 'refunded' });
  });

  it('a payment change or a confirmation keeps the standing status: a refund after a cancellation, a payment after arrival', async () => {
    // FACTS.md: a booking's status is booked|canceled; a refund of a cancelled paid visit is the
    // usual order (cancel, then refund). Both used to announce the appointment booked again.
    const cancel = fixture('booking-canceled.json');
    ((cancel.data as JsonObject).visit_booking as JsonObject).id = '210047010';
    cancel.created_at = '2026-03-06T08:00:01+01:00';
    const ctx = newCtx();
    const [, cancelled, refunded] = await run(
      ctx,
      'slot-booked-paid.json',
      cancel,
      'booking-payment-status-changed.json',
    );
    expect([cancelled!.type, cancelled!.data.status]).toEqual(['appointment.cancelled', 'cancelled']);
    expect([refunded!.type, refunded!.data.status, refunded!.data.changes]).toEqual([
      'appointment.updated',
      'cancelled',
      ['payment.status'],
    ]);
    expect(refunded!.data.payment).toMatchObject({ status: 'refunded' });
    const confirmation = fixture('booking-confirmed.json');
    ((confirmation.data as JsonObject).visit_booking as JsonObject).id = '210047010';
    const [confirmed] = await run(ctx, confirmation);
    expect(confirmed!.data.status).toBe('cancelled');

    // Arrived, then paid at the desk: still arrived.
    const present = fixture('presence-marked-present.json');
    ((present.data as JsonObject).visit_booking as JsonObject).id = '210047010';
    const other = newCtx();
    const [, arrived, paid] = await run(
      other,
      'slot-booked-paid.json',
      present,
      'booking-payment-status-changed.json',
    );
    expect([arrived!.data.status, paid!.data.status]).toEqual(['arrived', 'arrived']);

    // A payment change whose booking says canceled (its cancellation not seen): cancelled.
    const canceledPayment = fixture('booking-payment-status-changed.json');
    ((canceledPayment.data as JsonObject).visit_booking as JsonObject).status = 'canceled';
    const [, unseen] = await run(newCtx(), 'slot-booked-paid.json', canceledPayment);
    expect(unseen!.data.status).toBe('cancelled');
  });

  it('fills an event from the known state: a payment change whose booking carries only ids and times', async () => {
    const [booked, updated] = await run(
      newCtx(),
      'slot-booked-paid.json',
      'booking-payment-status-changed-partial.json',
    );
    expect(updated!.type).toBe('appointment.updated');
    expect(updated!.subject).toBe(booked!.subject);
    const { vendor: _bookedVendor, ...known } = booked!.data;
    const { vendor, changes, payment, ...rest } = updated!.data;
    expect(rest).toEqual({ ...known, payment: undefined });
    expect(rest.patient).toMatchObject({ name: 'Ewa Zielińska' });
    expect(rest.service).toMatchObject({ id: '556677' });
    expect(payment).toEqual({
      required: true,
      status: 'paid',
      previousStatus: 'waiting_for_confirmation',
      changedAt: '2026-03-05T12:04:00+01:00',
    });
    expect(changes).toEqual(['payment.status']);
    expect(((vendor as JsonObject).visit_booking as JsonObject).patient).toBeUndefined();
  });

  it('drops a known field the vendor sends as null, keeps one it leaves out', async () => {
    const ctx = newCtx();
    const withInsurance = fixture('slot-booked-paid.json');
    const booking = (withInsurance.data as JsonObject).visit_booking as JsonObject;
    booking.insurance = { id: '7', name: 'Medicover', plan: 'Gold', plan_id: '71' };
    const [booked] = await run(ctx, withInsurance);
    expect(booked!.data.insurance).toMatchObject({ id: '7' });
    const [partial] = await run(ctx, 'booking-payment-status-changed-partial.json');
    expect(partial!.data.insurance).toMatchObject({ id: '7' });
    const [full] = await run(ctx, 'booking-payment-status-changed.json');
    expect(full!.data.insurance).toBeUndefined();
  });

  it('fills a reschedule request without patients from the booking as known', async () => {
    const ctx = newCtx();
    const [booked] = await run(ctx, 'slot-booked.json');
    const moving = fixture('booking-moving.json');
    const data = moving.data as JsonObject;
    delete (data.canceling_booking as JsonObject).patient;
    delete (data.creating_booking as JsonObject).patient;
    const [request] = await run(ctx, moving);
    const { current, proposed } = request!.data as { current: JsonObject; proposed: JsonObject };
    expect(current.id).toBe(booked!.data.id);
    expect(current.patient).toEqual(booked!.data.patient);
    expect(proposed.patient).toEqual(booked!.data.patient);
  });

  it('maps not-paid and unknown payment words', async () => {
    const body = fixture('booking-payment-status-changed.json');
    (body.data as JsonObject).visit_payment_status = {
      status_from: 'not-paid',
      status_to: 'mystery',
      changed_at: null,
    };
    const [e] = await run(newCtx(), body);
    expect(e!.data.payment).toMatchObject({ status: 'unknown', previousStatus: 'not_paid' });
  });

  it('presence-marked PRESENT → arrived, ABSENT → no_show, anything else ignored', async () => {
    const [arrived, noShow] = await run(
      newCtx(),
      'presence-marked-present.json',
      'presence-marked-absent.json',
    );
    expect(arrived!.type).toBe('appointment.arrived');
    expect(arrived!.data).toMatchObject({ status: 'arrived', workflowStep: 'arrived' });
    expect(noShow!.type).toBe('appointment.no_show');
    expect(noShow!.data.status).toBe('noshow');
    const odd = fixture('presence-marked-present.json');
    (odd.data as JsonObject).presence = 'LATE';
    const result = await normalize(notificationOf(odd), newCtx());
    expect(result.ignored).toMatch(/LATE/);
  });
});

describe('moves', () => {
  it('booking-moved keeps one hub id across the new booking id and is not a cancellation', async () => {
    const ctx = newCtx();
    const [booked, moved, cancelled] = await run(
      ctx,
      'slot-booked.json',
      'booking-moved.json',
      'booking-canceled.json',
    );
    expect(moved!.type).toBe('appointment.rescheduled');
    expect(moved!.subject).toBe(booked!.subject);
    expect(moved!.data).toMatchObject({
      status: 'booked',
      start: '2026-03-12T15:00:00+01:00',
      end: '2026-03-12T15:20:00+01:00',
      previous: {
        start: '2026-03-10T11:30:00+01:00',
        end: '2026-03-10T11:50:00+01:00',
        vendorId: '210045781',
      },
      changes: ['start', 'end'],
    });
    expect(moved!.data.cancelledBy).toBeUndefined();
    expect(moved!.data.vendorIds).toEqual([
      { system: 'docplanner', instance: 'dp-main', value: '210045781', current: false },
      { system: 'docplanner', instance: 'dp-main', value: '210046990', current: true },
    ]);
    // The later cancellation names only the new booking id and still lands on the same appointment.
    expect(cancelled!.subject).toBe(booked!.subject);
    expect(await ctx.aliases.find('appointment', '210046990')).toBe(booked!.data.id);
  });

  it('ignores a cancellation of the booking id a move replaced: the appointment goes on under the new one', async () => {
    const ctx = newCtx();
    const [booked] = await run(ctx, 'slot-booked.json', 'booking-moved.json');
    const canceled = fixture('booking-canceled.json');
    const data = canceled.data as JsonObject;
    const ofOldId = {
      ...canceled,
      data: { ...data, visit_booking: { ...(data.visit_booking as JsonObject), id: 210045781 } },
    };
    const result = await normalize(notificationOf(ofOldId), ctx);
    expect(result.events).toEqual([]);
    expect(result.ignored).toMatch(/210045781.*replaced with 210046990/);
    // The new booking's own cancellation still cancels the appointment.
    const [cancelled] = await run(ctx, 'booking-canceled.json');
    expect(cancelled).toMatchObject({ type: 'appointment.cancelled', subject: booked!.subject });
    // And the old id's, arriving after that, is still the move's: no second cancellation.
    const late = await normalize(notificationOf(ofOldId), ctx);
    expect(late.events).toEqual([]);
  });

  it('ignores a slot-booked arriving after the cancellation or move that followed it (a retried or released push): no booked again', async () => {
    // The booking is canceled (2026-03-09) before its slot-booked (2026-03-02) arrives.
    const ctx = newCtx();
    const [cancelled] = await run(ctx, 'booking-canceled.json');
    const late = await normalize(
      notificationOf(about('slot-booked.json', '210046990', '2026-03-02T09:14:07+01:00')),
      ctx,
    );
    expect(late.events).toEqual([]);
    expect(late.ignored).toMatch(/late creation/);
    expect(await ctx.state.get(`known:${cancelled!.subject}`)).toMatchObject({ status: 'cancelled' });

    // A move's old booking: its late creation would make the canceled old id current again.
    const moved = newCtx();
    const [rescheduled] = await run(moved, 'booking-moved.json');
    const lateOld = await normalize(notificationOf(fixture('slot-booked.json')), moved);
    expect(lateOld.events).toEqual([]);
    expect(await moved.state.get(`known:${rescheduled!.subject}`)).toMatchObject({
      start: '2026-03-12T15:00:00+01:00',
      vendorIds: [
        { value: '210045781', current: false },
        { value: '210046990', current: true },
      ],
    });

    // A booking told only by its creation, or created before its later news, is created as before.
    const [created] = await run(newCtx(), 'slot-booked.json');
    expect(created!.type).toBe('appointment.created');
  });

  it('ignores a presence mark told before the cancellation already applied (a retried or released push): no arrived after cancelled', async () => {
    const ctx = newCtx();
    const [cancelled] = await run(ctx, 'booking-canceled.json');
    for (const file of ['presence-marked-present.json', 'presence-marked-absent.json']) {
      const late = await normalize(
        notificationOf(about(file, '210046990', '2026-03-08T10:00:00+01:00')),
        ctx,
      );
      expect(late.events).toEqual([]);
      expect(late.ignored).toMatch(/late presence mark/);
    }
    expect(await ctx.state.get(`known:${cancelled!.subject}`)).toMatchObject({ status: 'cancelled' });
    // One told after what is known is applied as before; so is one told before a later
    // confirmation or payment change only (still news: nothing set the status since).
    const [arrived] = await run(newCtx(), 'presence-marked-present.json');
    expect(arrived!.type).toBe('appointment.arrived');
    const paid = newCtx();
    await run(paid, 'slot-booked.json');
    await normalize(
      notificationOf(about('booking-payment-status-changed.json', '210045781', '2026-03-06T08:30:01+01:00')),
      paid,
    );
    const presence = await normalize(
      notificationOf(about('presence-marked-present.json', '210045781', '2026-03-04T10:00:00+01:00')),
      paid,
    );
    expect(presence.events.map((e) => e.type)).toEqual(['appointment.arrived']);
    // Applied, it does not move the appointment's last event time back before the payment's.
    expect(await paid.state.get(`event-time:${presence.events[0]!.subject}`)).toBe(
      '2026-03-06T08:30:01+01:00',
    );
  });

  it("drops the place a move through the hub noted for the new booking: the move's own notification says it now", async () => {
    const ctx = newCtx();
    await ctx.state.set('docplanner:moved-place:210046990', {
      facility: '12345',
      doctor: '98765',
      address: '445566',
    });
    await run(ctx, 'slot-booked.json', 'booking-moved.json');
    expect(await ctx.state.get('docplanner:moved-place:210046990')).toBeUndefined();
  });

  it('gives old and new id one hub id even when the old booking was never seen', async () => {
    const ctx = newCtx();
    const [moved] = await run(ctx, 'booking-moved.json');
    const hubId = moved!.data.id as string;
    expect(await ctx.aliases.find('appointment', '210045781')).toBe(hubId);
    expect(await ctx.aliases.find('appointment', '210046990')).toBe(hubId);
  });

  it('reports a move on the old identity when the new id arrived first (out of order), with a warning, then brings it to the later state of the new id', async () => {
    const ctx = newCtx();
    // The new booking 210046990 is cancelled (2026-03-09) before the move that made it (2026-03-04) arrives.
    const [booked, cancelledFirst] = await run(ctx, 'slot-booked.json', 'booking-canceled.json');
    expect(cancelledFirst!.subject).not.toBe(booked!.subject);
    const events = await eventsOf(ctx, 'booking-moved.json');
    expect(events.map((e) => [e.type, e.subject])).toEqual([
      ['appointment.rescheduled', booked!.subject],
      ['appointment.cancelled', booked!.subject],
    ]);
    expect(ctx.logger.entries.filter((e) => e.level === 'warn')).toHaveLength(1);
    const last = events.at(-1)!;
    expect(last.time).toBe('2026-03-09T20:45:01+01:00');
    expect(last.data).toMatchObject({
      id: booked!.data.id,
      status: 'cancelled',
      start: '2026-03-12T15:00:00+01:00',
      cancelledAt: '2026-03-09T20:45:00+01:00',
      cancelledBy: { kind: 'patient', vendorValue: 'user' },
      patient: { name: 'Jan Kowalski' },
      vendorIds: [
        { system: 'docplanner', instance: 'dp-main', value: '210045781', current: false },
        { system: 'docplanner', instance: 'dp-main', value: '210046990', current: true },
      ],
    });
    expect(last.data.previous).toBeUndefined();
    expect(await ctx.state.get(`known:${booked!.subject}`)).toMatchObject({ status: 'cancelled' });
    // The new id's own identity keeps what went out under it.
    expect(await ctx.aliases.find('appointment', '210046990')).toBe(cancelledFirst!.data.id);
    expect(await ctx.state.get(`known:${cancelledFirst!.subject}`)).toMatchObject({ status: 'cancelled' });
  });

  it('ignores a move arriving after what followed it when its old booking was never seen: the cancelled appointment is not booked again', async () => {
    // The new booking 210046990 is cancelled (2026-03-09); the move that made it (2026-03-04),
    // retried by Docplanner, arrives after that, and the old booking 210045781 was never seen.
    const ctx = newCtx();
    const [cancelled] = await run(ctx, 'booking-canceled.json');
    const late = await normalize(notificationOf(fixture('booking-moved.json')), ctx);
    expect(late.events).toEqual([]);
    expect(late.ignored).toMatch(/late move/);
    expect(await ctx.state.get(`known:${cancelled!.subject}`)).toMatchObject({ status: 'cancelled' });
    // The old booking id still names the appointment.
    expect(await ctx.aliases.find('appointment', '210045781')).toBe(cancelled!.data.id);

    // Nor does a move that a later move of the new booking followed set the appointment back.
    const chained = newCtx();
    const second = fixture('booking-moved.json');
    const secondData = second.data as JsonObject;
    const [movedAgain] = await run(chained, {
      ...second,
      created_at: '2026-03-06T12:00:00+01:00',
      data: {
        ...secondData,
        old_visit_booking: { ...(secondData.new_visit_booking as JsonObject), status: 'canceled' },
        new_visit_booking: {
          ...(secondData.new_visit_booking as JsonObject),
          id: '210047500',
          start_at: '2026-03-20T09:00:00+01:00',
          end_at: '2026-03-20T09:20:00+01:00',
        },
      },
    });
    const lateFirst = await normalize(notificationOf(fixture('booking-moved.json')), chained);
    expect(lateFirst.events).toEqual([]);
    expect(await chained.state.get(`known:${movedAgain!.subject}`)).toMatchObject({
      start: '2026-03-20T09:00:00+01:00',
    });
  });

  it('ignores a confirmation of the booking a move replaced, told before the move (a retried or released push): the appointment keeps its new time and booking id', async () => {
    const ctx = newCtx();
    // Confirmed 2026-03-03, moved 2026-03-04; the confirmation push, retried, arrives last.
    const [, moved] = await run(ctx, 'slot-booked.json', 'booking-moved.json');
    const late = await normalize(notificationOf(fixture('booking-confirmed.json')), ctx);
    expect(late.events).toEqual([]);
    expect(late.ignored).toMatch(/replaced with 210046990/);
    expect(await ctx.state.get(`known:${moved!.subject}`)).toMatchObject({
      start: '2026-03-12T15:00:00+01:00',
      vendorIds: [
        { value: '210045781', current: false },
        { value: '210046990', current: true },
      ],
    });
    // The new booking's own confirmation still applies.
    const [confirmed] = await run(
      ctx,
      about('booking-confirmed.json', '210046990', '2026-03-05T08:00:00+01:00'),
    );
    expect(confirmed).toMatchObject({ type: 'appointment.confirmed', subject: moved!.subject });
  });

  it('brings the old identity to a payment status the new id got before the move arrived', async () => {
    const ctx = newCtx();
    await run(ctx, 'slot-booked.json');
    await run(ctx, about('booking-payment-status-changed.json', '210046990', '2026-03-06T08:30:01+01:00'));
    const [moved, updated] = await eventsOf(ctx, 'booking-moved.json');
    expect(moved!.type).toBe('appointment.rescheduled');
    expect(updated).toMatchObject({ type: 'appointment.updated', subject: moved!.subject });
    expect(updated!.data).toMatchObject({
      status: 'booked',
      payment: { status: 'refunded', previousStatus: 'paid' },
      changes: ['payment.status'],
    });
  });

  it('brings the old identity to the arrival or no-show the new id got before the move arrived', async () => {
    for (const [file, type, status] of [
      ['presence-marked-present.json', 'appointment.arrived', 'arrived'],
      ['presence-marked-absent.json', 'appointment.no_show', 'noshow'],
    ] as const) {
      const ctx = newCtx();
      await run(ctx, 'slot-booked.json');
      await run(ctx, about(file, '210046990', '2026-03-12T15:05:00+01:00'));
      const events = await eventsOf(ctx, 'booking-moved.json');
      expect(
        events.map((e) => [e.type, e.data.status]),
        file,
      ).toEqual([
        ['appointment.rescheduled', 'booked'],
        [type, status],
      ]);
    }
  });

  it('reports only the move when what the new id told first is not later than the move, or is what the move says', async () => {
    const earlier = newCtx();
    await run(earlier, 'slot-booked.json');
    await run(earlier, about('booking-canceled.json', '210046990', '2026-03-04T10:00:00+01:00'));
    const beforeMove = await eventsOf(earlier, 'booking-moved.json');
    expect(beforeMove.map((e) => e.type)).toEqual(['appointment.rescheduled']);

    const same = newCtx();
    await run(same, 'slot-booked.json');
    await run(same, about('booking-confirmed.json', '210046990', '2026-03-05T08:00:00+01:00'));
    const confirmed = await eventsOf(same, 'booking-moved.json');
    expect(confirmed.map((e) => e.type)).toEqual(['appointment.rescheduled']);
  });

  it('reports the old place and practitioner when the move changes address', async () => {
    const [booked, moved] = await run(
      newCtx(),
      'slot-booked-by-doctor.json',
      'booking-moved-address-change.json',
    );
    expect(moved!.subject).toBe(booked!.subject);
    expect(moved!.data).toMatchObject({
      practitioner: { id: '98770', name: 'Piotr Wiśniewski' },
      location: { id: '445570', name: 'Przychodnia Wola' },
      previous: {
        start: '2026-03-16T08:00:00+01:00',
        location: { id: '445566' },
        practitioner: { id: '98765' },
        vendorId: '210047200',
      },
      changes: ['start', 'end', 'location', 'practitioner'],
    });
  });
});

describe('gates', () => {
  it('slot-booking → booking_requested with a proposed appointment, adopted by the slot-booked that follows', async () => {
    const ctx = newCtx();
    const [requested, booked] = await run(ctx, 'slot-booking.json', 'slot-booked.json');
    expect(requested!.type).toBe('appointment.booking_requested');
    expect(requested!.subject).toBe(`approval_request/${requested!.data.id}`);
    const proposed = requested!.data.proposed as JsonObject;
    expect(requested!.data.kind).toBe('booking');
    expect(proposed).toMatchObject({
      status: 'proposed',
      vendorIds: [],
      start: '2026-03-10T11:30:00+01:00',
      patient: { phone: '+48600100200' },
      bookedBy: { kind: 'patient', vendorValue: 'user' },
    });
    expect(booked!.data.id).toBe(proposed.id);
    expect(booked!.data.vendorIds).toEqual([
      { system: 'docplanner', instance: 'dp-main', value: '210045781', current: true },
    ]);
  });

  it('resolves a booking with one alias call (the hub answers it in one statement)', async () => {
    const ctx = newCtx();
    const calls: string[] = [];
    const aliases = ctx.aliases;
    ctx.aliases = new Proxy(aliases, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(name));
          return value.apply(target, args);
        };
      },
    });
    await run(ctx, 'slot-booked.json');
    // vendorIds of the id just created is answered without a statement (pipeline/stores.ts,
    // FreshHubIds); find of the booking and of its gate alias, then hubId, cost two in a row.
    expect(calls).toEqual(['hubIdUnless', 'vendorIds']);
    calls.length = 0;
    await run(ctx, 'booking-confirmed.json');
    expect(calls).toEqual(['hubIdUnless', 'vendorIds']);
  });

  it('does not hand a used provisional id to a later booking of the same slot', async () => {
    const ctx = newCtx();
    const [, first] = await run(ctx, 'slot-booking.json', 'slot-booked.json');
    const again = fixture('slot-booked.json');
    (again.data as { visit_booking: JsonObject }).visit_booking.id = '210099999';
    const [second] = await run(ctx, again);
    expect(second!.data.id).not.toBe(first!.data.id);
  });

  it('booking-moving → reschedule_requested with current and proposed on the appointment hub id', async () => {
    const [booked, requested] = await run(newCtx(), 'slot-booked.json', 'booking-moving.json');
    expect(requested!.type).toBe('appointment.reschedule_requested');
    expect(requested!.data).toMatchObject({
      kind: 'reschedule',
      current: { id: booked!.data.id, status: 'booked', start: '2026-03-10T11:30:00+01:00' },
      proposed: { id: booked!.data.id, status: 'proposed', start: '2026-03-12T15:00:00+01:00' },
    });
  });

  it('reads booking-moving leniently: canceling_by spelling, patient missing from creating_booking', async () => {
    const [requested] = await run(newCtx(), 'booking-moving-canceling-by-no-patient.json');
    expect(requested!.data).toMatchObject({
      current: { vendorIds: [{ value: '210047400', current: true }] },
      proposed: {
        status: 'proposed',
        start: '2026-03-20T17:00:00+01:00',
        patient: { name: 'Tomasz Wójcik' },
      },
    });
  });
});

describe('breaks, availability, schedules', () => {
  it('break-created / moved / removed → slot.blocked / block_moved (previous from last seen) / unblocked', async () => {
    const ctx = newCtx();
    const [created, moved, removed] = await run(
      ctx,
      'break-created.json',
      'break-moved.json',
      'break-removed.json',
    );
    expect(created!.data).toMatchObject({
      kind: 'block',
      status: 'busy-unavailable',
      start: '2026-03-11T12:00:00+01:00',
    });
    expect(moved!.type).toBe('slot.block_moved');
    expect(moved!.subject).toBe(created!.subject);
    expect(moved!.data).toMatchObject({
      start: '2026-03-11T13:00:00+01:00',
      previous: { start: '2026-03-11T12:00:00+01:00', end: '2026-03-11T13:00:00+01:00' },
    });
    expect(removed!.type).toBe('slot.unblocked');
    expect(removed!.subject).toBe(created!.subject);
    // The removal is remembered, so a late notification of the break cannot bring it back.
    expect(await ctx.state.get('break:7788123')).toMatchObject({
      removed: true,
      at: '2026-03-05T08:10:00+01:00',
    });
  });

  it('break-moved of an unseen break has no previous', async () => {
    const [moved] = await run(newCtx(), 'break-moved.json');
    expect(moved!.data.previous).toBeUndefined();
  });

  it('ignores a break notification older than the one applied (a retried or released push): a removed break stays removed, a moved one stays moved', async () => {
    const ctx = newCtx();
    const [, removed] = await run(ctx, 'break-moved.json', 'break-removed.json');
    for (const late of ['break-created.json', 'break-moved.json']) {
      const result = await normalize(notificationOf(fixture(late)), ctx);
      expect(result.events, late).toEqual([]);
      expect(result.ignored, late).toMatch(/after its removal of 2026-03-05T08:10:00\+01:00/);
    }
    // The break's id used again later is a new break.
    const [again] = await run(ctx, {
      ...fixture('break-created.json'),
      created_at: '2026-03-06T09:00:00+01:00',
    });
    expect(again).toMatchObject({ type: 'slot.blocked', subject: removed!.subject });
    expect(again!.data.previous).toBeUndefined();

    const moving = newCtx();
    await run(moving, 'break-moved.json');
    const lateCreated = await normalize(notificationOf(fixture('break-created.json')), moving);
    expect(lateCreated.events).toEqual([]);
    const [removedAfter] = await run(moving, 'break-removed.json');
    expect(removedAfter!.type).toBe('slot.unblocked');
  });

  it('legacy slot-changed → slot.changed asking for a reload', async () => {
    const [e] = await run(newCtx(), 'slot-changed.json');
    expect(e!.data).toMatchObject({
      kind: 'availability',
      reloadRequired: true,
      vendorIds: [{ value: '98765:445566' }],
      practitioner: { id: '98765' },
    });
    // The calendar is the schedule the address-* notifications of this doctor and address name.
    const ctx = newCtx();
    const [changed] = await run(ctx, 'slot-changed.json');
    const [assigned] = await run(ctx, 'address-service-created.json');
    expect(assigned!.subject).toBe(`schedule/${assigned!.data.id}`);
    expect(changed!.data.scheduleId).toBe(assigned!.data.id);
  });

  it('address-* → schedule events on one schedule per doctor and address', async () => {
    const ctx = newCtx();
    const events = await run(
      ctx,
      'address-service-created.json',
      'address-service-changed.json',
      'address-service-deleted.json',
      'address-commercial-type-changed.json',
    );
    expect(events.map((e) => [e.type, e.data.change])).toEqual([
      ['schedule.updated', 'service_added'],
      ['schedule.updated', 'service_changed'],
      ['schedule.updated', 'service_removed'],
      ['schedule.updated', 'location_kind_changed'],
    ]);
    expect(new Set(events.map((e) => e.subject)).size).toBe(1);
    expect(events[1]!.data.service).toMatchObject({ id: '556700', price: { amount: 280, isFrom: true } });
    expect(events[2]!.data.service).toMatchObject({ removed: true });
    expect(events[3]!.data.location).toMatchObject({ kind: 'non-commercial' });
    const [assigned, unassigned] = await run(ctx, 'address-assigned.json', 'address-unassigned.json');
    expect(assigned!.type).toBe('schedule.activated');
    expect(assigned!.data.active).toBe(true);
    expect(unassigned!.type).toBe('schedule.deactivated');
    expect(unassigned!.data.active).toBe(false);
  });

  it('ignores an address-* notification older than the last one applied about the same thing (a retried or released push): no reactivated schedule, no removed service back', async () => {
    const ctx = newCtx();
    // The doctor is unassigned from the address (2026-03-25) before the assignment (2026-03-01) arrives.
    const [unassigned] = await run(ctx, 'address-unassigned.json');
    const lateAssigned = await normalize(notificationOf(fixture('address-assigned.json')), ctx);
    expect(lateAssigned.events).toEqual([]);
    expect(lateAssigned.ignored).toMatch(/late notification/);
    // The service is deleted (10:10) before its change (10:05) and creation (10:00) arrive.
    const [deleted] = await run(ctx, 'address-service-deleted.json');
    expect(deleted!.data.service).toMatchObject({ removed: true });
    for (const late of ['address-service-changed.json', 'address-service-created.json']) {
      const result = await normalize(notificationOf(fixture(late)), ctx);
      expect(result.events, late).toEqual([]);
    }
    // What is about something else, or later, still applies.
    const [kind] = await run(ctx, 'address-commercial-type-changed.json');
    expect(kind!.type).toBe('schedule.updated');
    const [assignedAgain] = await run(ctx, {
      ...fixture('address-assigned.json'),
      created_at: '2026-03-26T09:00:00+01:00',
    });
    expect(assignedAgain).toMatchObject({ type: 'schedule.activated', subject: unassigned!.subject });
  });

  it('an unknown name is ignored with a reason', async () => {
    const result = await normalize(notificationOf(fixture('unknown-name.json')), newCtx());
    expect(result).toEqual({ events: [], ignored: expect.stringContaining('calendar-synchronized') });
  });

  it('fails permanently when a booking notification lacks its booking', async () => {
    const body = {
      name: 'slot-booked',
      data: { facility: { id: '1' } },
      created_at: '2026-03-02T09:14:07+01:00',
    };
    await expect(normalize(notificationOf(body), newCtx())).rejects.toMatchObject({ kind: 'permanent' });
  });
});
