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

function pullWith(
  body: JsonObject,
  status = 200,
  headers: Record<string, string> = {},
  settings: Partial<typeof fixtureSettings> = {},
) {
  return memoryNormalizeContext({
    config: { ...fixtureSettings, ...settings },
    vendorApi: () => ({ status, headers, body }),
  });
}

describe('Cliniko pull', () => {
  it('asks the first page from startFrom, archived ones included, sorted by updated_at then id, authenticated as Cliniko asks', async () => {
    const ctx = pullWith(page('page-booked.json'), 200, {}, { startFrom: '2016-07-01T00:00:00Z' });
    const batch = await fetchAppointments(ctx, null);
    const request = ctx.vendorRequests[0]!;
    const url = new URL(request.url);
    expect(url.pathname).toBe('/v1/individual_appointments');
    expect([...url.searchParams]).toEqual([
      ['per_page', '100'],
      ['q[]', 'archived_at:*'],
      ['q[]', 'updated_at:>=2016-06-30T23:59:00Z'],
      ['sort', 'updated_at,id'],
      ['order', 'asc'],
    ]);
    expect(request.headers).toMatchObject({
      authorization: `Basic ${Buffer.from(`${fixtureSettings.apiKey}:`).toString('base64')}`,
      'user-agent': fixtureSettings.userAgent,
    });
    expect(batch.notifications.map((n) => n.dedupeKey)).toEqual([
      'individual_appointment:1@2016-07-22T15:10:08Z',
    ]);
    // The page has a next link: more, its last second first (whole, by id), never a page number.
    expect([batch.cursor, batch.more]).toEqual([
      'individual_appointments=2016-07-22T15:10:08Z|2016-07-22T15:10:08Z|0&at=individual_appointments',
      true,
    ]);
  });

  it('starts a first poll 30 days back without startFrom, not at the beginning of the account', async () => {
    const ctx = pullWith(page('page-empty.json'));
    const before = Date.now();
    const batch = await fetchAppointments(ctx, null);
    const filter = new URL(ctx.vendorRequests[0]!.url).searchParams.getAll('q[]')[1]!;
    const from = Date.parse(filter.replace('updated_at:>=', ''));
    expect(from).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 30 * 86_400_000 - 60_000);
    expect(from).toBeLessThanOrEqual(Date.now() - 30 * 86_400_000 - 60_000);
    // Kept in the cursor: the start does not slide with each empty poll.
    const watermark = readCursor(batch.cursor).lists.individual_appointments.watermark!;
    expect(Date.parse(watermark)).toBe(from + 60_000);
  });

  it('filters inclusively from the watermark less the overlap', async () => {
    const ctx = pullWith(page('page-empty.json'));
    // The cursor this morning's connector wrote (the main list's alone) is still read.
    const batch = await fetchAppointments(ctx, '2026-03-10T10:00:00Z|1');
    expect(new URL(ctx.vendorRequests[0]!.url).searchParams.getAll('q[]')).toEqual([
      'archived_at:*',
      'updated_at:>=2026-03-10T09:59:00Z',
    ]);
    // The main list done, the cancelled one is next in the round.
    expect([batch.notifications, batch.cursor, batch.more]).toEqual([
      [],
      'individual_appointments=2026-03-10T10:00:00Z||&at=individual_appointments/cancelled',
      true,
    ]);
  });

  it('after a full page, reads its last second on its own by id, then goes on from the next second', async () => {
    const W = '2026-03-10T10:00:00Z';
    const full = {
      individual_appointments: [item('8', '2026-03-10T09:59:30Z'), item('7', W), item('9', W)],
      links: { next: 'https://x/?page=2' },
    };
    const batch = await fetchAppointments(pullWith(full), `${W}||`);
    // That whole second (Cliniko's times are finer than the seconds it shows: an item of it the page
    // did not reach may have a lower id than 9), by id: DateTime filters have no `=`, so [W, W + 1 s).
    expect([batch.cursor, batch.more]).toEqual([
      `individual_appointments=${W}|${W}|0&at=individual_appointments`,
      true,
    ]);
    const second = pullWith({ individual_appointments: [item('3', W), item('7', W)], links: { next: 'x' } });
    const inSecond = await fetchAppointments(second, batch.cursor);
    const url = new URL(second.vendorRequests[0]!.url);
    expect([url.searchParams.getAll('q[]'), url.searchParams.get('sort')]).toEqual([
      ['archived_at:*', `updated_at:>=${W}`, 'updated_at:<2026-03-10T10:00:01Z', 'id:>0'],
      'id',
    ]);
    // A full page of it: the ids above its last.
    expect(inSecond.cursor).toBe(`individual_appointments=${W}|${W}|7&at=individual_appointments`);
    const rest = pullWith({ individual_appointments: [item('12', W)], links: {} });
    const after = await fetchAppointments(rest, inSecond.cursor);
    expect(new URL(rest.vendorRequests[0]!.url).searchParams.getAll('q[]')).toContain('id:>7');
    expect([after.cursor, after.more]).toEqual([
      `individual_appointments=${W}|2026-03-10T10:00:01Z|&at=individual_appointments`,
      true,
    ]);
    // Then on from the next second, without the overlap (a round under way), to the list's end.
    const on = pullWith({ individual_appointments: [item('3', '2026-03-10T10:05:00Z')], links: {} });
    const end = await fetchAppointments(on, after.cursor);
    expect(new URL(on.vendorRequests[0]!.url).searchParams.getAll('q[]')).toEqual([
      'archived_at:*',
      'updated_at:>=2026-03-10T10:00:01Z',
    ]);
    expect([end.cursor, end.more]).toEqual([
      'individual_appointments=2026-03-10T10:05:00Z||&at=individual_appointments/cancelled',
      true,
    ]);
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

  it("brings a watermark stored past the poll's time back to it: a cursor written before the cap read nothing again", async () => {
    // What the versions before the cap stored after listing an appointment dated 2099.
    const stuck = '2099-01-01T00:00:00Z|1';
    const before = Date.now();
    const batch = await fetchAppointments(pullWith(page('page-empty.json')), stuck);
    const watermark = readCursor(batch.cursor).lists.individual_appointments.watermark!;
    // Before: 2099-01-01T00:00:00Z again, each round asking from 2098-12-31T23:59:00Z.
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
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T10:30:00Z||&at=individual_appointments/cancelled';
    const batch = await fetchAppointments(ctx, from);
    const url = new URL(ctx.vendorRequests[0]!.url);
    expect([url.pathname, url.searchParams.getAll('q[]')]).toEqual([
      '/v1/individual_appointments/cancelled',
      ['archived_at:*', 'updated_at:>=2026-03-10T10:29:00Z'],
    ]);
    expect(batch.notifications.map((n) => n.dedupeKey)).toEqual([
      'individual_appointment:7@2026-03-10T11:00:00Z',
    ]);
    // The unavailable blocks are next in the round, each list keeping its place.
    expect([batch.cursor, batch.more]).toEqual([
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T11:00:00Z||&at=unavailable_blocks',
      true,
    ]);
  });

  it('skips the cancelled list for the round when Cliniko does not answer it (404), the main list still polled', async () => {
    const ctx = pullWith({ message: 'Not found' }, 404);
    const from = 'individual_appointments=2026-03-10T12:00:00Z||&at=individual_appointments/cancelled';
    const batch = await fetchAppointments(ctx, from);
    expect([batch.notifications, batch.cursor, batch.more]).toEqual([
      [],
      'individual_appointments=2026-03-10T12:00:00Z||&at=unavailable_blocks',
      true,
    ]);
    // The main list's 404 is no such thing: it is the connector's whole source.
    const main = await fetchAppointments(pullWith({ message: 'Not found' }, 404), null).catch((e) => e);
    expect(isConnectorError(main) && main.kind).toBe('permanent');
  });

  it('asks the unavailable blocks after the appointments, a cursor stored before them starting them at the configured start', async () => {
    const ctx = pullWith(
      page('page-unavailable-blocks.json'),
      200,
      {},
      { startFrom: '2016-07-01T00:00:00Z' },
    );
    // What the connector stored before the blocks were read: both appointment lists, the round over.
    const before =
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T11:00:00Z||&at=individual_appointments';
    const main = await fetchAppointments(pullWith(page('page-empty.json')), before);
    expect(main.cursor).toBe(
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T11:00:00Z||&at=individual_appointments/cancelled',
    );
    const cancelled = await fetchAppointments(pullWith(page('page-empty.json')), main.cursor!);
    expect([cancelled.cursor, cancelled.more]).toEqual([
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T11:00:00Z||&at=unavailable_blocks',
      true,
    ]);
    const blocks = await fetchAppointments(ctx, cancelled.cursor!);
    const url = new URL(ctx.vendorRequests[0]!.url);
    expect([url.pathname, [...url.searchParams]]).toEqual([
      '/v1/unavailable_blocks',
      [
        ['per_page', '100'],
        ['q[]', 'archived_at:*'],
        ['q[]', 'updated_at:>=2016-06-30T23:59:00Z'],
        ['sort', 'updated_at,id'],
        ['order', 'asc'],
      ],
    ]);
    expect(blocks.notifications.map((n) => [n.type, n.dedupeKey, n.orderingKey])).toEqual([
      ['unavailable_block', 'unavailable_block:1@2016-07-15T00:04:35Z', 'unavailable_block:1'],
    ]);
    // The appointments keep their places; the blocks' own begins at the block read; the deleted
    // blocks are next.
    expect([blocks.cursor, blocks.more]).toEqual([
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T11:00:00Z||&unavailable_blocks=2016-07-15T00:04:35Z||&at=unavailable_blocks/deleted',
      true,
    ]);
    const deletedCtx = pullWith(
      page('page-unavailable-blocks-deleted.json'),
      200,
      {},
      {
        startFrom: '2016-07-01T00:00:00Z',
      },
    );
    const deleted = await fetchAppointments(deletedCtx, blocks.cursor!);
    expect(new URL(deletedCtx.vendorRequests[0]!.url).pathname).toBe('/v1/unavailable_blocks/deleted');
    expect(deleted.notifications.map((n) => n.dedupeKey)).toEqual([
      'unavailable_block:1@2016-07-17T10:00:00Z',
    ]);
    // The round is over: the next poll starts again at the appointments.
    expect([deleted.cursor, deleted.more]).toEqual([
      'individual_appointments=2026-03-10T12:00:00Z||&individual_appointments/cancelled=2026-03-10T11:00:00Z||&unavailable_blocks=2016-07-15T00:04:35Z||&unavailable_blocks/deleted=2016-07-17T10:00:00Z||&at=individual_appointments',
      false,
    ]);
  });

  it('skips the blocks lists for the round when Cliniko does not answer them (403, 404): the appointments are still polled', async () => {
    // Blocks came after the appointments: an account, or a key whose role cannot read them, must
    // not stop the appointments being polled after an upgrade (it failed the whole poll before).
    for (const status of [403, 404]) {
      const deleted = await fetchAppointments(
        pullWith({ message: 'Not found' }, status),
        'individual_appointments=2026-03-10T12:00:00Z||&at=unavailable_blocks/deleted',
      );
      expect([deleted.notifications, deleted.cursor, deleted.more]).toEqual([
        [],
        'individual_appointments=2026-03-10T12:00:00Z||&at=individual_appointments',
        false,
      ]);
      const blocks = await fetchAppointments(
        pullWith({ message: 'Not found' }, status),
        'individual_appointments=2026-03-10T12:00:00Z||&at=unavailable_blocks',
      );
      expect([blocks.notifications, blocks.cursor, blocks.more]).toEqual([
        [],
        'individual_appointments=2026-03-10T12:00:00Z||&at=unavailable_blocks/deleted',
        true,
      ]);
    }
    // The appointments' own 403 is the key refused: the poll fails, as before.
    const main = await fetchAppointments(pullWith({ message: 'Forbidden' }, 403), null).catch((e) => e);
    expect([isConnectorError(main) && main.kind, main.message]).toEqual([
      'permanent',
      'Cliniko refused the API key (403) for the appointment list (/individual_appointments)',
    ]);
    // A page without the blocks' array is no page of them.
    const wrong = await fetchAppointments(
      pullWith(page('page-booked.json')),
      'individual_appointments=2026-03-10T12:00:00Z||&at=unavailable_blocks',
    ).catch((e) => e);
    expect([isConnectorError(wrong) && wrong.kind, wrong.message]).toEqual([
      'transient',
      'Cliniko answered the unavailable block list with something that is not a page',
    ]);
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

  it('reads the cursor of each earlier version where it left off: nothing read again but a restarted round, nothing skipped', async () => {
    const W = '2026-03-10T10:00:00Z';
    const C = '2026-03-10T09:30:00Z';
    const S = '2026-03-10T10:00:05Z';
    /** What the call from `stored` asks (list, filters, sort), and the cursor after an empty last page. */
    async function resume(stored: string) {
      const ctx = pullWith(page('page-empty.json'));
      const batch = await fetchAppointments(ctx, stored);
      const url = new URL(ctx.vendorRequests[0]!.url);
      return [url.pathname, url.searchParams.getAll('q[]'), url.searchParams.get('sort'), batch.cursor];
    }
    const round = (since: string) => ['archived_at:*', `updated_at:>=${since}`];
    const second = (id: string) => [...round(S), 'updated_at:<2026-03-10T10:00:06Z', `id:>${id}`];
    const main = '/v1/individual_appointments';
    const cancelled = '/v1/individual_appointments/cancelled';
    // The first version: `<watermark>|<page>`, the main list's alone. A page number cannot be kept
    // (it skipped items): the round starts again at the watermark, less the overlap.
    expect(await resume(`${W}|3`)).toEqual([
      main,
      round('2026-03-10T09:59:00Z'),
      'updated_at,id',
      `individual_appointments=${W}||&at=individual_appointments/cancelled`,
    ]);
    // The second (both lists, still paged by number): each list from its own watermark.
    expect(
      await resume(
        `individual_appointments=${W}|2&individual_appointments/cancelled=${C}|4&at=individual_appointments/cancelled`,
      ),
    ).toEqual([
      cancelled,
      round('2026-03-10T09:29:00Z'),
      'updated_at,id',
      `individual_appointments=${W}||&individual_appointments/cancelled=${C}||&at=unavailable_blocks`,
    ]);
    // The keyset's, between rounds: from the watermark less the overlap.
    expect(await resume(`individual_appointments=${W}||&at=individual_appointments`)).toEqual([
      main,
      round('2026-03-10T09:59:00Z'),
      'updated_at,id',
      `individual_appointments=${W}||&at=individual_appointments/cancelled`,
    ]);
    // Within a round: on from its second, no overlap.
    expect(await resume(`individual_appointments=${W}|${S}|&at=individual_appointments`)).toEqual([
      main,
      round(S),
      'updated_at,id',
      `individual_appointments=${W}||&at=individual_appointments/cancelled`,
    ]);
    // Reading a second alone: all of it (`0`), or the ids above the last read, then the next second.
    for (const id of ['0', '7']) {
      expect(await resume(`individual_appointments=${W}|${S}|${id}&at=individual_appointments`)).toEqual([
        main,
        second(id),
        'id',
        `individual_appointments=${W}|2026-03-10T10:00:06Z|&at=individual_appointments`,
      ]);
    }
    // The cancelled list's place is its own, and kept while the main list is read.
    expect(
      await resume(
        `individual_appointments=${W}|${S}|7&individual_appointments/cancelled=${C}||&at=individual_appointments`,
      ),
    ).toEqual([
      main,
      second('7'),
      'id',
      `individual_appointments=${W}|2026-03-10T10:00:06Z|&individual_appointments/cancelled=${C}||&at=individual_appointments`,
    ]);
  });

  it('refuses a cursor it did not write', () => {
    expect(() => readCursor('yesterday|1')).toThrow(/is not <list>=<updated_at>\|<from>\|<id>/);
    expect(() =>
      readCursor(
        'individual_appointments=2026-03-10T10:00:00Z|2026-03-10T10:00:00Z|x9&at=individual_appointments',
      ),
    ).toThrow(/is not <list>/);
    // A cursor of the paging version (`<updated_at>|<page>`) starts its round again at the watermark.
    expect(
      readCursor(
        'individual_appointments=2026-03-10T10:00:00Z|3&individual_appointments/cancelled=2026-03-10T09:00:00Z||&at=individual_appointments',
      ).lists,
    ).toEqual({
      individual_appointments: { watermark: '2026-03-10T10:00:00Z' },
      'individual_appointments/cancelled': { watermark: '2026-03-10T09:00:00Z' },
      unavailable_blocks: {},
      'unavailable_blocks/deleted': {},
    });
    expect(() => readCursor('individual_appointments=2026-03-10T10:00:00Z|1&at=patients')).toThrow(
      /names no list to ask/,
    );
    expect(readCursor(null)).toEqual({
      lists: {
        individual_appointments: {},
        'individual_appointments/cancelled': {},
        unavailable_blocks: {},
        'unavailable_blocks/deleted': {},
      },
      at: 'individual_appointments',
    });
  });
});
