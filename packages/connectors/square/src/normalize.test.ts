import { readFileSync } from 'node:fs';
import type { JsonObject, VendorNotification } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { signatureKey: 'test-signature-key-0123456789' };
const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const notificationOf = (body: JsonObject): VendorNotification => parse(inboundRequest({ body }), config)[0]!;
/** The documented booking at another version and status (and start), as a new event. */
function variant(version: number, status: string, changes: JsonObject = {}): JsonObject {
  const body = structuredClone(fixture('booking-updated-accepted.json'));
  body.event_id = `evt-${version}-${status}`;
  const booking = ((body.data as JsonObject).object as JsonObject).booking as JsonObject;
  Object.assign(booking, { version, status, ...changes });
  return body;
}

describe('normalize', () => {
  it("maps Square's documented booking to the normalized appointment", async () => {
    const ctx = memoryNormalizeContext({ config, instanceId: 'sq' });
    const result = await normalize(notificationOf(fixture('booking-created.json')), ctx);
    expect(result.events).toHaveLength(1);
    const [event] = result.events;
    expect(event!.type).toBe('appointment.created');
    expect(event!.time).toBe('2020-12-08T19:56:53Z');
    expect(event!.data).toMatchObject({
      status: 'pending',
      start: '2020-12-17T16:00:00Z',
      end: '2020-12-17T16:30:00Z',
      durationMinutes: 30,
      location: { id: 'L9R0X9X5SGDBJ' },
      patient: { id: 'SSKBT02ECWZXK6W3VWYC78E52R' },
      practitioner: { id: '_4GsfYnqGHyurOwzWdKj' },
      service: { id: 'T3WUWYFJOVW2EU6XGRU5YG4A' },
      comment: 'I would like to sit near the window please',
      vendorIds: [{ system: 'square', instance: 'sq', value: 'i2id2g3enyspi7', current: true }],
    });
  });

  it('tells each status change apart, one subject per booking', async () => {
    const ctx = memoryNormalizeContext({ config });
    const run = async (body: JsonObject) => (await normalize(notificationOf(body), ctx)).events[0];
    const created = await run(fixture('booking-created.json'));
    const confirmed = await run(fixture('booking-updated-accepted.json'));
    const moved = await run(variant(2, 'ACCEPTED', { start_at: '2020-12-18T10:00:00Z' }));
    const noted = await run(
      variant(3, 'ACCEPTED', { start_at: '2020-12-18T10:00:00Z', customer_note: 'aisle seat' }),
    );
    const noShow = await run(
      variant(4, 'NO_SHOW', { start_at: '2020-12-18T10:00:00Z', customer_note: 'aisle seat' }),
    );
    expect([created, confirmed, moved, noted, noShow].map((e) => e?.type)).toEqual([
      'appointment.created',
      'appointment.confirmed',
      'appointment.rescheduled',
      'appointment.updated',
      'appointment.no_show',
    ]);
    expect(new Set([created, confirmed, moved, noted, noShow].map((e) => e?.subject)).size).toBe(1);
    expect(moved!.data.previous).toEqual({ start: '2020-12-17T16:00:00Z', end: '2020-12-17T16:30:00Z' });
    expect(noted!.data.changes).toEqual(['comment']);
  });

  it.each([
    ['CANCELLED_BY_CUSTOMER', 'patient'],
    ['CANCELLED_BY_SELLER', 'staff'],
    ['DECLINED', 'staff'],
  ])('maps %s to appointment.cancelled, cancelled by the %s', async (status, kind) => {
    const ctx = memoryNormalizeContext({ config });
    await normalize(notificationOf(fixture('booking-updated-accepted.json')), ctx);
    const [event] = (await normalize(notificationOf(variant(2, status)), ctx)).events;
    expect(event!.type).toBe('appointment.cancelled');
    expect(event!.data).toMatchObject({ status: 'cancelled', cancelledBy: { kind, vendorValue: status } });
  });

  it('orders by booking version: an older or repeated version arriving late is ignored', async () => {
    const ctx = memoryNormalizeContext({ config });
    await normalize(notificationOf(fixture('booking-updated-cancelled-by-customer.json')), ctx);
    const late = await normalize(notificationOf(fixture('booking-updated-accepted.json')), ctx);
    expect(late.ignored).toMatch(/version 1 is not newer than version 2/);
    const again = await normalize(notificationOf(variant(2, 'ACCEPTED')), ctx);
    expect(again.ignored).toMatch(/version 2 is not newer/);
  });

  it('ignores other Square events with a reason, and fails an unknown status permanently', async () => {
    const ctx = memoryNormalizeContext({ config });
    const other = await normalize({ type: 'payment.created', dedupeKey: 'p1', payload: {} }, ctx);
    expect(other.ignored).toMatch(/payment.created/);
    await expect(normalize(notificationOf(variant(5, 'TELEPORTED')), ctx)).rejects.toMatchObject({
      kind: 'permanent',
    });
  });
});
