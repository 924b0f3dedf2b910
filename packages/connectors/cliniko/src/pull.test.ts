import { readFileSync } from 'node:fs';
import { isConnectorError, type JsonObject } from '@switchyard/core';
import { memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { fetchAppointments, readCursor, retryAfterMs } from './pull.ts';
import { fixtureSettings, fixtureUrl } from './testing.ts';

const page = (file: string) => JSON.parse(readFileSync(fixtureUrl(file), 'utf8')) as JsonObject;
const item = (id: string, updatedAt: string) => ({
  id,
  updated_at: updatedAt,
  starts_at: '2026-03-10T10:00:00Z',
});

function pullWith(body: JsonObject, status = 200, headers: Record<string, string> = {}) {
  return memoryNormalizeContext({ config: fixtureSettings, vendorApi: () => ({ status, headers, body }) });
}

describe('Cliniko pull', () => {
  it('asks the first page sorted by updated_at, authenticated as Cliniko asks, and keeps the newest updated_at', async () => {
    const ctx = pullWith(page('page-booked.json'));
    const batch = await fetchAppointments(ctx, null);
    const request = ctx.vendorRequests[0]!;
    const url = new URL(request.url);
    expect(url.pathname).toBe('/v1/individual_appointments');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      sort: 'updated_at',
      order: 'asc',
      per_page: '100',
      page: '1',
    });
    expect(request.headers).toMatchObject({
      authorization: `Basic ${Buffer.from(`${fixtureSettings.apiKey}:`).toString('base64')}`,
      'user-agent': fixtureSettings.userAgent,
    });
    expect(batch.notifications.map((n) => n.dedupeKey)).toEqual([
      'individual_appointment:1@2016-07-22T15:10:08Z',
    ]);
    // The page has a next link: more, from the new watermark's first page.
    expect([batch.cursor, batch.more]).toEqual([
      'individual_appointments=2016-07-22T15:10:08Z|1&at=individual_appointments',
      true,
    ]);
  });

  it('filters inclusively from the watermark less the overlap', async () => {
    const ctx = pullWith(page('page-empty.json'));
    // The cursor this morning's connector wrote (the main list's alone) is still read.
    const batch = await fetchAppointments(ctx, '2026-03-10T10:00:00Z|1');
    expect(new URL(ctx.vendorRequests[0]!.url).searchParams.getAll('q[]')).toEqual([
      'updated_at:>=2026-03-10T09:59:00Z',
    ]);
    // The main list done, the cancelled one is next in the round.
    expect([batch.notifications, batch.cursor, batch.more]).toEqual([
      [],
      'individual_appointments=2026-03-10T10:00:00Z|1&at=individual_appointments/cancelled',
      true,
    ]);
  });

  it('moves to the next page while a whole page cannot move the watermark', async () => {
    const W = '2026-03-10T10:00:00Z';
    const full = {
      individual_appointments: [item('7', W), item('8', '2026-03-10T09:59:30Z')],
      links: { next: 'https://x/?page=3' },
    };
    const ctx = pullWith(full);
    const batch = await fetchAppointments(ctx, `${W}|2`);
    expect(new URL(ctx.vendorRequests[0]!.url).searchParams.get('page')).toBe('2');
    expect([batch.cursor, batch.more]).toEqual([
      `individual_appointments=${W}|3&at=individual_appointments`,
      true,
    ]);
    const moved = {
      individual_appointments: [item('9', '2026-03-10T10:05:00Z')],
      links: { next: 'https://x/?page=4' },
    };
    expect((await fetchAppointments(pullWith(moved), `${W}|3`)).cursor).toBe(
      'individual_appointments=2026-03-10T10:05:00Z|1&at=individual_appointments',
    );
  });

  it('never moves the watermark past the time of the poll: a future updated_at does not stall the pull', async () => {
    const future = {
      individual_appointments: [item('5', '2026-03-10T10:00:00Z'), item('6', '2099-01-01T00:00:00Z')],
      links: {},
    };
    const before = Date.now();
    const batch = await fetchAppointments(pullWith(future), '2026-03-10T09:00:00Z|1');
    expect(batch.notifications.map((n) => n.dedupeKey)).toContain(
      'individual_appointment:6@2099-01-01T00:00:00Z',
    );
    const watermark = readCursor(batch.cursor).lists.individual_appointments.watermark!;
    // Before: 2099-01-01T00:00:00Z, and no later update was ever asked for.
    expect(Date.parse(watermark)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(watermark)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('asks the cancelled list after the main one, which leaves cancelled appointments out, from its own watermark', async () => {
    const cancelled = {
      individual_appointments: [
        {
          ...item('7', '2026-03-10T11:00:00Z'),
          cancelled_at: '2026-03-10T11:00:00Z',
          cancellation_reason: 50,
        },
      ],
      links: {},
    };
    const ctx = pullWith(cancelled);
    const from =
      'individual_appointments=2026-03-10T12:00:00Z|1&individual_appointments/cancelled=2026-03-10T10:30:00Z|1&at=individual_appointments/cancelled';
    const batch = await fetchAppointments(ctx, from);
    const url = new URL(ctx.vendorRequests[0]!.url);
    expect([url.pathname, url.searchParams.getAll('q[]')]).toEqual([
      '/v1/individual_appointments/cancelled',
      ['updated_at:>=2026-03-10T10:29:00Z'],
    ]);
    expect(batch.notifications.map((n) => n.dedupeKey)).toEqual([
      'individual_appointment:7@2026-03-10T11:00:00Z',
    ]);
    // The round is over: the next poll starts again at the main list, each list keeping its place.
    expect([batch.cursor, batch.more]).toEqual([
      'individual_appointments=2026-03-10T12:00:00Z|1&individual_appointments/cancelled=2026-03-10T11:00:00Z|1&at=individual_appointments',
      false,
    ]);
  });

  it('skips the cancelled list for the round when Cliniko does not answer it (404), the main list still polled', async () => {
    const ctx = pullWith({ message: 'Not found' }, 404);
    const from = 'individual_appointments=2026-03-10T12:00:00Z|1&at=individual_appointments/cancelled';
    const batch = await fetchAppointments(ctx, from);
    expect([batch.notifications, batch.cursor, batch.more]).toEqual([
      [],
      'individual_appointments=2026-03-10T12:00:00Z|1&at=individual_appointments',
      false,
    ]);
    // The main list's 404 is no such thing: it is the connector's whole source.
    const main = await fetchAppointments(pullWith({ message: 'Not found' }, 404), null).catch((e) => e);
    expect(isConnectorError(main) && main.kind).toBe('permanent');
  });

  it('is transient on 429 and 5xx (Retry-After kept), permanent when the key is refused', async () => {
    const limited = await fetchAppointments(pullWith({}, 429, { 'retry-after': '30' }), null).catch((e) => e);
    expect([isConnectorError(limited) && limited.kind, limited.retryAfterMs]).toEqual(['transient', 30_000]);
    const refused = await fetchAppointments(pullWith({}, 401), null).catch((e) => e);
    expect([isConnectorError(refused) && refused.kind, refused.message]).toEqual([
      'permanent',
      'Cliniko refused the API key (401) for the appointment list (/individual_appointments)',
    ]);
  });

  it("waits until Cliniko's X-RateLimit-Reset (UNIX seconds) on a 429 without Retry-After", async () => {
    const now = Date.parse('2026-03-10T10:00:00Z');
    const reset = String(now / 1000 + 45);
    expect(retryAfterMs({ status: 429, headers: { 'x-ratelimit-reset': reset } }, now)).toBe(45_000);
    expect(retryAfterMs({ status: 429, headers: { 'x-ratelimit-reset': String(now / 1000 - 5) } }, now)).toBe(
      0,
    );
    // Retry-After wins when sent; a reset on another status says nothing of this answer.
    expect(
      retryAfterMs({ status: 429, headers: { 'retry-after': '3', 'x-ratelimit-reset': reset } }, now),
    ).toBe(3000);
    expect(retryAfterMs({ status: 503, headers: { 'x-ratelimit-reset': reset } }, now)).toBeUndefined();
    const limited = await fetchAppointments(
      pullWith({}, 429, { 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 60) }),
      null,
    ).catch((e) => e);
    expect(limited.retryAfterMs).toBeGreaterThan(55_000);
  });

  it('refuses a cursor it did not write', () => {
    expect(() => readCursor('yesterday|1')).toThrow(/is not <list>=<updated_at>\|<page>/);
    expect(() => readCursor('individual_appointments=2026-03-10T10:00:00Z|1&at=patients')).toThrow(
      /names no list to ask/,
    );
    expect(readCursor(null)).toEqual({
      lists: { individual_appointments: { page: 1 }, 'individual_appointments/cancelled': { page: 1 } },
      at: 'individual_appointments',
    });
  });
});
