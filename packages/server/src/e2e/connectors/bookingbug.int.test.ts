/**
 * BookingBug (JRNI) end to end: the simulator pushes every documented purchase (the connector's
 * fixtures) with HTTP Basic auth to the booking and cancellation URLs over real HTTP; the hub
 * works out what changed from the purchase it saw last and delivers signed CloudEvents.
 */
import bookingbug from '@switchyard/connector-bookingbug';
import type { JsonObject, JsonValue } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { type BookingBugPushKind, BookingBugSimulator } from '@switchyard/testing/simulators/bookingbug';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './fixtures.ts';
import { bodies, type E2e, expectDelivered, startE2e } from './harness.ts';

const USERNAME = 'switchyard-bb-e2e';
const PASSWORD = 'bb-e2e-password-0123456789';
const INSTANCE = 'bb-main';

const FIXTURES: Array<{ file: string; kind?: BookingBugPushKind; expect: string[] | 'ignored' }> = [
  { file: 'created.json', expect: ['appointment.created'] },
  { file: 'repeat-unchanged.json', expect: 'ignored' },
  { file: 'amended-time.json', kind: 'modify', expect: ['appointment.rescheduled'] },
  { file: 'amended-other.json', kind: 'modify', expect: ['appointment.updated'] },
  { file: 'cancelled-via-cancellation-url.json', kind: 'cancelled', expect: ['appointment.cancelled'] },
  { file: 'two-bookings.json', expect: ['appointment.created', 'appointment.created'] },
  { file: 'moved-new-booking-id.json', kind: 'modify', expect: ['appointment.rescheduled'] },
  { file: 'cancelled-via-is-cancelled.json', kind: 'modify', expect: ['appointment.cancelled'] },
  { file: 'jrni-create.json', expect: ['appointment.created'] },
  { file: 'jrni-modify.json', kind: 'modify', expect: ['appointment.rescheduled'] },
  { file: 'jrni-cancelled.json', kind: 'modify', expect: ['appointment.cancelled'] },
];

type Body = Record<string, JsonValue> & { type: string; subject: string; data: JsonObject };

const database = useTestDatabase();
let e2e: E2e;
let sim: BookingBugSimulator;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [bookingbug] });
  await e2e.hub.instances.upsert({
    id: INSTANCE,
    connector: 'bookingbug',
    mode: 'push',
    settings: { basicAuth: { username: USERNAME, password: PASSWORD } },
  });
  sim = new BookingBugSimulator({
    bookingUrl: e2e.hookUrl(INSTANCE),
    cancellationUrl: e2e.hookUrl(INSTANCE, 'cancellation'),
    username: USERNAME,
    password: PASSWORD,
  });
});

afterAll(async () => {
  await e2e?.close();
});

describe('bookingbug end to end', () => {
  const delivered = new Map<string, Body[]>();

  it('delivers every documented purchase push as signed, valid CloudEvents; an unchanged repeat is ignored', async () => {
    for (const f of FIXTURES) {
      const settled = await e2e.settle(INSTANCE, () =>
        sim.push(fixture('bookingbug', f.file), f.kind ? { kind: f.kind } : {}),
      );
      expect(sim.pushes[sim.pushes.length - 1]!.delivered, f.file).toBe(true);
      expect(settled.messages.length, f.file).toBeGreaterThanOrEqual(1);
      if (f.expect === 'ignored') {
        expect(
          settled.messages.map((m) => m.status),
          f.file,
        ).toEqual(settled.messages.map(() => 'ignored'));
        expect(settled.messages[0]!.reason).toBeTruthy();
        expect(settled.events).toEqual([]);
        continue;
      }
      expect(
        settled.messages.map((m) => m.status),
        `${f.file}: ${settled.messages.map((m) => m.reason ?? '').join(' ')}`,
      ).not.toContain('failed');
      expect(
        settled.deliveries.map((d) => d.type),
        f.file,
      ).toEqual(f.expect);
      settled.deliveries.forEach((d, i) => {
        expectDelivered(d, settled.events[i]!, { instanceId: INSTANCE, connector: 'bookingbug' });
      });
      delivered.set(f.file, bodies(settled) as Body[]);
    }
    const expected = FIXTURES.flatMap((f) => (f.expect === 'ignored' ? [] : f.expect));
    const accepted = e2e.subscriber.requests.filter((r) => r.response && r.response.status < 300);
    expect(accepted.map((r) => r.type)).toEqual(expected);
    // The cancellation URL is its own push route.
    const { items } = await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 });
    expect(items.filter((m) => m.route === 'cancellation')).toHaveLength(1);
  });

  it('keeps one subject per booking, also when BookingBug replaces the booking id on a move', () => {
    const one = (file: string, i = 0) => delivered.get(file)![i]!;
    const first = one('created.json');
    for (const file of ['amended-time.json', 'amended-other.json', 'cancelled-via-cancellation-url.json']) {
      expect(one(file).subject, file).toBe(first.subject);
    }
    expect(one('amended-time.json').data.start).toBe('2017-03-14T15:00:00+00:00');
    expect(one('amended-time.json').data.previous).toMatchObject({ start: '2017-03-10T11:30:00+00:00' });
    const [a, b] = delivered.get('two-bookings.json')!;
    expect(a!.subject).not.toBe(b!.subject);
    const moved = one('moved-new-booking-id.json');
    const movedIds = (moved.data.vendorIds as JsonObject[]).map((v) => v.value);
    expect(movedIds).toContain('13477850');
    const movedFrom = [a!, b!].find((x) => x.subject === moved.subject);
    expect(movedFrom, 'the move keeps the hub id of one of the two bookings').toBeDefined();
    const cancelled = one('cancelled-via-is-cancelled.json');
    expect([a!.subject, b!.subject]).toContain(cancelled.subject);
    expect(cancelled.subject).not.toBe(moved.subject);
    const jrni = one('jrni-create.json');
    expect(one('jrni-modify.json').subject).toBe(jrni.subject);
    expect(one('jrni-cancelled.json').subject).toBe(jrni.subject);
    expect(one('jrni-cancelled.json').data.status).toBe('cancelled');
  });

  it('refuses a push with the wrong password: 401, nothing stored', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items.length;
    const wrong = new BookingBugSimulator({
      bookingUrl: e2e.hookUrl(INSTANCE),
      username: USERNAME,
      password: 'not-the-password-0123456',
    });
    const record = await wrong.push(fixture('bookingbug', 'created.json'));
    expect(record.attempts.map((x) => x.status)).toEqual([401]);
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items).toHaveLength(before);
  });
});
