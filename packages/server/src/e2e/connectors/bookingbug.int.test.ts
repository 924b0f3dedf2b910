/**
 * BookingBug (JRNI) end to end: simulators push every documented purchase and JRNI webhook (the
 * connector's fixtures) over real HTTP, each with one of JRNI's auth modes: HTTP Basic to the
 * booking and cancellation URLs, a Basic token, and OAuth2 with a token fetched from the hub's own
 * token endpoint. The hub works out what changed from each booking's known state, whatever shape
 * told it, and delivers signed CloudEvents.
 */
import bookingbug from '@switchyard/connector-bookingbug';
import { type BookingBugPushKind, BookingBugSimulator } from '@switchyard/connector-bookingbug/simulator';
import type { JsonObject, JsonValue } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCurrentEntity } from '../../entities/current.ts';
import { fixture } from './fixtures.test-support.ts';
import { bodies, type E2e, expectDelivered, startE2e } from './harness.test-support.ts';

const USERNAME = 'switchyard-bb-e2e';
const PASSWORD = 'bb-e2e-password-0123456789';
const BASIC_TOKEN = 'jrni-e2e-basic-token-0123456789';
const CLIENT_ID = 'jrni-e2e-client';
const CLIENT_SECRET = 'jrni-e2e-client-secret-0123456789abcdef';
const INSTANCE = 'bb-main';

/** Which simulator pushes: the legacy push (Basic), JRNI with OAuth2, JRNI with a Basic token. */
type Sender = 'legacy' | 'oauth2' | 'token';

const FIXTURES: Array<{
  file: string;
  kind?: BookingBugPushKind;
  by?: Sender;
  expect: string[] | 'ignored';
}> = [
  { file: 'created.json', expect: ['appointment.created'] },
  { file: 'repeat-unchanged.json', expect: 'ignored' },
  { file: 'amended-time.json', kind: 'modify', expect: ['appointment.rescheduled'] },
  { file: 'amended-other.json', kind: 'modify', expect: ['appointment.updated'] },
  { file: 'jrni-legacy-booking-no-show.json', by: 'oauth2', expect: ['appointment.no_show'] },
  { file: 'jrni-legacy-booking-no-show-undone.json', by: 'token', expect: ['appointment.status_reverted'] },
  { file: 'cancelled-via-cancellation-url.json', kind: 'cancelled', expect: ['appointment.cancelled'] },
  { file: 'two-bookings.json', expect: ['appointment.created', 'appointment.created'] },
  { file: 'moved-new-booking-id.json', kind: 'modify', expect: ['appointment.rescheduled'] },
  { file: 'cancelled-via-is-cancelled.json', kind: 'modify', expect: ['appointment.cancelled'] },
  { file: 'jrni-data-create.json', by: 'oauth2', expect: ['appointment.created'] },
  { file: 'jrni-data-modify-time.json', by: 'oauth2', expect: ['appointment.rescheduled'] },
  { file: 'jrni-data-checked-in.json', by: 'oauth2', expect: ['appointment.arrived'] },
  { file: 'jrni-data-being-seen.json', by: 'oauth2', expect: ['appointment.in_progress'] },
  { file: 'jrni-data-completed.json', by: 'oauth2', expect: ['appointment.completed'] },
  { file: 'jrni-notification-created.json', by: 'token', expect: ['appointment.created'] },
  { file: 'jrni-notification-confirmed.json', by: 'token', expect: ['appointment.confirmed'] },
  { file: 'jrni-notification-reminder.json', by: 'token', expect: 'ignored' },
  { file: 'jrni-notification-cancelled.json', by: 'token', expect: ['appointment.cancelled'] },
];

type Body = Record<string, JsonValue> & { type: string; subject: string; data: JsonObject };

const database = useTestDatabase();
let e2e: E2e;
let sim: BookingBugSimulator;
let jrniOauth: BookingBugSimulator;
let jrniToken: BookingBugSimulator;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [bookingbug] });
  await e2e.hub.instances.upsert({
    id: INSTANCE,
    connector: 'bookingbug',
    mode: 'push',
    settings: {
      basicAuth: { username: USERNAME, password: PASSWORD },
      basicToken: BASIC_TOKEN,
      oauth2: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    },
  });
  sim = new BookingBugSimulator({
    bookingUrl: e2e.hookUrl(INSTANCE),
    cancellationUrl: e2e.hookUrl(INSTANCE, 'cancellation'),
    username: USERNAME,
    password: PASSWORD,
  });
  jrniOauth = new BookingBugSimulator({
    bookingUrl: e2e.hookUrl(INSTANCE),
    auth: {
      kind: 'oauth2',
      accessTokenUrl: e2e.hookUrl(INSTANCE, 'oauth/token'),
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
    },
  });
  jrniToken = new BookingBugSimulator({
    bookingUrl: e2e.hookUrl(INSTANCE),
    auth: { kind: 'basic-token', token: BASIC_TOKEN },
  });
});

afterAll(async () => {
  await e2e?.close();
});

describe('bookingbug end to end', () => {
  const delivered = new Map<string, Body[]>();

  it('delivers every documented purchase and JRNI webhook as signed, valid CloudEvents; a push that changes nothing is ignored', async () => {
    const senders = { legacy: sim, oauth2: jrniOauth, token: jrniToken };
    for (const f of FIXTURES) {
      const sender = senders[f.by ?? 'legacy'];
      const settled = await e2e.settle(INSTANCE, () =>
        sender.push(fixture('bookingbug', f.file), f.kind ? { kind: f.kind } : {}),
      );
      expect(sender.pushes[sender.pushes.length - 1]!.delivered, f.file).toBe(true);
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
      // The hub's current state of each booking is the last event delivered for it, whichever
      // shape told it and whatever clock dated it: the legacy purchase carries no change time (its
      // events are dated when the hub received them, 2026), the JRNI no-show its 2017 triggerTime.
      for (const event of settled.events) {
        const last = settled.events.findLast((e) => e.subject === event.subject)!;
        const current = await getCurrentEntity(e2e.hub.host.db, event.subject);
        expect([current?.eventId, current?.data.status], `${f.file}: current state`).toEqual([
          last.id,
          (last.data as JsonObject).status,
        ]);
      }
      delivered.set(f.file, bodies(settled) as Body[]);
    }
    const expected = FIXTURES.flatMap((f) => (f.expect === 'ignored' ? [] : f.expect));
    const accepted = e2e.subscriber.requests.filter((r) => r.response && r.response.status < 300);
    expect(accepted.map((r) => r.type)).toEqual(expected);
    // The cancellation URL is its own push route; token requests store nothing.
    const { items } = await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 100 });
    expect(items.filter((m) => m.route === 'cancellation')).toHaveLength(1);
    expect(items.filter((m) => m.route === 'oauth-token')).toHaveLength(0);
    // One token served every OAuth2 push: JRNI's client caches it until it expires.
    expect(jrniOauth.tokenRequests.map((r) => [r.status, r.issued])).toEqual([[200, true]]);
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
    const jrni = one('jrni-data-create.json');
    for (const file of [
      'jrni-data-modify-time.json',
      'jrni-data-checked-in.json',
      'jrni-data-completed.json',
    ])
      expect(one(file).subject, file).toBe(jrni.subject);
    expect(one('jrni-data-completed.json').data).toMatchObject({
      status: 'fulfilled',
      workflowStep: 'completed',
    });
    expect(one('jrni-notification-cancelled.json').data.status).toBe('cancelled');
  });

  it('keeps one identity and one known state per booking across the legacy push and JRNI webhooks', () => {
    const one = (file: string) => delivered.get(file)![0]!;
    const created = one('created.json');
    const noShow = one('jrni-legacy-booking-no-show.json');
    expect(noShow.subject).toBe(created.subject);
    expect(one('jrni-legacy-booking-no-show-undone.json').subject).toBe(created.subject);
    // What only the legacy purchase said (client id, address, price) is in the JRNI-told event.
    expect(noShow.data).toMatchObject({
      status: 'noshow',
      patient: { id: '3056937', externalRef: 'QWERTY123' },
      location: { id: '52355' },
      service: { id: '104747', price: { amount: 1500, unit: 'minor' } },
      practitioner: { id: '30560', name: 'Sarah' },
    });
    expect(one('jrni-legacy-booking-no-show-undone.json').data).toMatchObject({
      status: 'booked',
      changes: ['status', 'workflowStep'],
    });
    // And what JRNI said is in the legacy cancellation that follows.
    const cancelled = one('cancelled-via-cancellation-url.json');
    expect(cancelled.data).toMatchObject({
      status: 'cancelled',
      patient: { id: '3056937' },
      practitioner: { id: '30560', name: 'Sarah' },
      bookedBy: { name: 'Test Gladden' },
    });
  });

  it('serves OAuth2 tokens only for the right client credentials, and accepts only tokens it issued', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items.length;
    const tokenUrl = e2e.hookUrl(INSTANCE, 'oauth/token');
    const wrongSecret = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&client_id=${CLIENT_ID}&client_secret=not-the-secret`,
    });
    expect(wrongSecret.status).toBe(401);
    expect(await wrongSecret.text()).not.toContain('access_token');
    const forged = new BookingBugSimulator({
      bookingUrl: e2e.hookUrl(INSTANCE),
      auth: { kind: 'basic-token', token: 'not-the-token-0123456789' },
    });
    const refused = await forged.push(fixture('bookingbug', 'jrni-data-create.json'));
    expect(refused.attempts.map((a) => a.status)).toEqual([401]);
    const bearer = await fetch(e2e.hookUrl(INSTANCE), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer sy1.9999999999.AAAAAAAAAAAAAAAA.x',
      },
      body: JSON.stringify(fixture('bookingbug', 'jrni-data-create.json')),
    });
    expect(bearer.status).toBe(401);
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items).toHaveLength(before);
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
