import { readFileSync } from 'node:fs';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { matchKey, respond } from './gate.ts';
import { parse } from './parse.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;
const n = (body: JsonObject) => parse(inboundRequest({ body }), {})[0]!;

/** The example with every `patient` removed, as Docplanner's published move examples come. */
function withoutPatients(body: JsonObject): JsonObject {
  for (const booking of Object.values(body.data as JsonObject)) {
    if (booking && typeof booking === 'object' && !Array.isArray(booking)) delete booking.patient;
  }
  return body;
}

describe('respond', () => {
  it('approves with 200 {}', () => {
    expect(respond({ outcome: 'approve', reason: 'approved' }, {})).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: {},
    });
  });

  it('refuses with 409 and {"error_code": N} when an approver gave a code', () => {
    expect(respond({ outcome: 'refuse', reason: 'slot taken', vendorErrorCode: 3 }, {})).toEqual({
      status: 409,
      headers: { 'content-type': 'application/json' },
      body: { error_code: 3 },
    });
  });

  it('refuses with a plain JSON body otherwise, without the approver reason', () => {
    const res = respond({ outcome: 'refuse', reason: 'internal note: patient blacklisted' }, {});
    expect(res.status).toBe(409);
    expect(res.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.stringify(res.body)).not.toContain('blacklisted');
    expect(res.body).toMatchObject({ error: 'refused' });
  });
});

describe('matchKey', () => {
  it('matches slot-booking with the slot-booked that follows', () => {
    const key = matchKey(n(fixture('slot-booking.json')));
    expect(key).toBe('docplanner:98765:445566:2026-03-10T10:30:00.000Z:tel:600100200');
    expect(matchKey(n(fixture('slot-booked.json')))).toBe(key);
  });

  it('matches booking-moving with booking-moved by the moved booking id and the new start', () => {
    const key = matchKey(n(fixture('booking-moving.json')));
    expect(key).toBe('docplanner:move:210045781:2026-03-12T14:00:00.000Z');
    expect(matchKey(n(fixture('booking-moved.json')))).toBe(key);
  });

  it('matches a move without any patient (as in Docplanner’s own examples)', () => {
    const moving = withoutPatients(fixture('booking-moving.json'));
    const moved = withoutPatients(fixture('booking-moved.json'));
    expect(JSON.stringify(moving)).not.toContain('patient');
    expect(JSON.stringify(moved)).not.toContain('patient');
    expect(matchKey(n(moving))).toBe('docplanner:move:210045781:2026-03-12T14:00:00.000Z');
    expect(matchKey(n(moved))).toBe(matchKey(n(moving)));
  });

  it('does not match a move of the same booking to another time', () => {
    const moved = fixture('booking-moved.json');
    (moved.data as { new_visit_booking: JsonObject }).new_visit_booking.start_at =
      '2026-03-13T15:00:00+01:00';
    expect(matchKey(n(moved))).not.toBe(matchKey(n(fixture('booking-moving.json'))));
  });

  it('ignores offset spelling and phone formatting', () => {
    const booked = fixture('slot-booked.json');
    const booking = (booked.data as { visit_booking: JsonObject }).visit_booking;
    booking.start_at = '2026-03-10T10:30:00Z';
    booking.patient = { ...(booking.patient as JsonObject), phone: '600 100 200' };
    expect(matchKey(n(booked))).toBe(matchKey(n(fixture('slot-booking.json'))));
  });

  it('falls back to the normalized name without a phone; a move without a new patient still matches', () => {
    const request = fixture('slot-booking.json');
    const r = (request.data as { visit_booking_request: JsonObject }).visit_booking_request;
    r.patient = { name: 'Jan', surname: 'Kowalski', phone: '' };
    const booked = fixture('slot-booked.json');
    const b = (booked.data as { visit_booking: JsonObject }).visit_booking;
    b.patient = { name: ' JAN ', surname: 'kowalski', phone: '' };
    expect(matchKey(n(request))).toMatch(/name:jan kowalski$/);
    expect(matchKey(n(booked))).toBe(matchKey(n(request)));
    expect(matchKey(n(fixture('booking-moving-canceling-by-no-patient.json')))).toBe(
      'docplanner:move:210047400:2026-03-20T16:00:00.000Z',
    );
  });

  it('differs for another start time, and is undefined for notifications that cannot be matched', () => {
    const other = fixture('slot-booked.json');
    (other.data as { visit_booking: JsonObject }).visit_booking.start_at = '2026-03-10T12:00:00+01:00';
    expect(matchKey(n(other))).not.toBe(matchKey(n(fixture('slot-booking.json'))));
    expect(matchKey(n(fixture('break-created.json')))).toBeUndefined();
    expect(matchKey(n(fixture('booking-canceled.json')))).toBeUndefined();
  });
});
