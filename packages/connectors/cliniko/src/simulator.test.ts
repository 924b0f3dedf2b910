import { isConnectorError, type VendorNotification } from '@switchyard/core';
import { fetchVendorHttp, memoryCommandContext, memoryNormalizeContext } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from './commands.ts';
import { apiHeaders, type Config, clinikoTime } from './config.ts';
import { normalize } from './normalize.ts';
import { fetchAppointments } from './pull.ts';
import { ClinikoSimulator, type ClinikoSimulatorOptions } from './simulator.ts';
import { fixtureSettings } from './testing.ts';

const sims: ClinikoSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

/** A clock one second further at each write, from 2026-03-01T10:00:00Z. */
function steppingClock() {
  let t = Date.parse('2026-03-01T10:00:00Z');
  return () => {
    t += 1000;
    return new Date(t);
  };
}

async function setup(
  settings: Partial<Config> = {},
  now: () => Date = steppingClock(),
  options: Partial<ClinikoSimulatorOptions> = {},
) {
  const sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey, now, ...options });
  sims.push(sim);
  // The stepping clock is in the past: the first poll starts before it (the default is 30 days ago).
  const config: Config = {
    ...fixtureSettings,
    apiBaseUrl: await sim.start(),
    startFrom: '2026-01-01T00:00:00Z',
    ...settings,
  };
  const ctx = memoryNormalizeContext({
    instanceId: 'cliniko-main',
    config,
    vendorApi: fetchVendorHttp.request,
  });
  /** Pulls until Cliniko has no next page, as the hub's poller does; returns every notification. */
  const drain = async (from: string | null, turns = 40) => {
    const all: VendorNotification[] = [];
    let cursor = from;
    for (let turn = 0; turn < turns; turn += 1) {
      const batch = await fetchAppointments(ctx, cursor);
      all.push(...batch.notifications);
      cursor = batch.cursor === undefined ? cursor : batch.cursor;
      if (!batch.more) return { all, cursor };
    }
    if (turns < 40) return { all, cursor };
    throw new Error('the pull never ended');
  };
  return { sim, config, ctx, drain };
}

describe('Cliniko simulator and connector', () => {
  it('pages through the list by updated_at, then lists only what changed since', async () => {
    const { sim, drain } = await setup({ perPage: 2, overlapSeconds: 0 });
    for (const id of ['1', '2', '3', '4', '5']) sim.put({ id, starts_at: '2026-03-10T10:00:00Z' });
    const first = await drain(null);
    expect(new Set(first.all.map((n) => n.dedupeKey)).size).toBe(5);
    sim.put({ id: '2', starts_at: '2026-03-11T10:00:00Z' });
    const next = await drain(first.cursor);
    // The last stored version again (inclusive watermark: the dedupe key drops it) and the change.
    expect(next.all.map((n) => n.dedupeKey)).toEqual([
      'individual_appointment:5@2026-03-01T10:00:05Z',
      'individual_appointment:2@2026-03-01T10:00:06Z',
    ]);
  });

  it('reads every appointment when equal updated_at straddle pages, and one updated meanwhile', async () => {
    // A clock the test sets: many writes in one second, as an import or a bulk reschedule makes.
    let at = Date.parse('2026-03-01T10:00:00Z');
    const { sim, drain } = await setup({ perPage: 2, overlapSeconds: 0 }, () => new Date(at));
    for (const id of ['11', '12', '13', '14', '15']) sim.put({ id, starts_at: '2026-03-10T10:00:00Z' });
    at += 1000;
    for (const id of ['16', '17', '18']) sim.put({ id, starts_at: '2026-03-10T11:00:00Z' });
    at += 1000;
    for (const id of ['19', '20', '21', '22', '23', '24', '25'])
      sim.put({ id, starts_at: '2026-03-10T12:00:00Z' });
    const first = await drain(null);
    const ids = (all: VendorNotification[]) => [...new Set(all.map((n) => n.orderingKey))].sort();
    // Before: sort=updated_at alone, paged by number; equal times came in another order on each page
    // (Cliniko documents no tie-breaker), and some were read twice while others were never read.
    expect(ids(first.all)).toEqual(
      Array.from({ length: 15 }, (_, n) => `individual_appointment:${n + 11}`).sort(),
    );
    // Ten more in one second, the round cut after its first page (a process stopping), and one
    // read before updated meanwhile: it leaves its place, nothing after it is passed over.
    at += 1000;
    for (let id = 30; id < 40; id++) sim.put({ id: String(id), starts_at: '2026-03-10T13:00:00Z' });
    const partial = await drain(first.cursor, 6);
    expect(partial.all.map((n) => n.orderingKey)).toContain('individual_appointment:30');
    at += 1000;
    sim.put({ id: '30', notes: 'moved to the end by an update' });
    const rest = await drain(partial.cursor);
    const read = ids([...partial.all, ...rest.all]).filter((k) => Number(k!.split(':')[1]) >= 30);
    expect(read).toEqual(Array.from({ length: 10 }, (_, n) => `individual_appointment:${n + 30}`).sort());
    expect(rest.all.some((n) => n.dedupeKey === 'individual_appointment:30@2026-03-01T10:00:04Z')).toBe(true);
  });

  it('reads every appointment of a second whose finer times sort them against their ids', async () => {
    // Ten writes 90 ms apart, the later the lower the id: sorted by (time, id), the page's last id
    // is no bound for the rest of its second.
    let at = Date.parse('2026-03-01T10:00:00.050Z');
    const { sim, drain } = await setup({ perPage: 3, overlapSeconds: 0 }, () => new Date(at));
    for (let id = 69; id >= 60; id--) {
      sim.put({ id: String(id), starts_at: '2026-03-10T10:00:00Z' });
      at += 90;
    }
    const { all } = await drain(null);
    expect([...new Set(all.map((n) => n.orderingKey))].sort()).toEqual(
      Array.from({ length: 10 }, (_, n) => `individual_appointment:${n + 60}`),
    );
  });

  it('lists archived appointments (q[]=archived_at:*), which Cliniko leaves out of its lists otherwise', async () => {
    const { sim, ctx, drain } = await setup();
    sim.put({ id: '41', starts_at: '2026-03-10T10:00:00Z' });
    const first = await drain(null);
    const archivedAt = sim.put({ id: '41', archived_at: '2026-03-01T12:00:00Z' }).updated_at;
    const next = await drain(first.cursor);
    // Before: never seen again, and its subscribers kept an appointment that no longer exists.
    expect(next.all.map((n) => n.dedupeKey)).toContain(`individual_appointment:41@${archivedAt}`);
    const archived = next.all.find((n) => n.dedupeKey === `individual_appointment:41@${archivedAt}`)!;
    const seen = await normalize(first.all.find((n) => n.orderingKey === 'individual_appointment:41')!, ctx);
    expect(seen.events.map((e) => e.type)).toEqual(['appointment.created']);
    expect((await normalize(archived, ctx)).events.map((e) => e.type)).toEqual(['appointment.cancelled']);
  });

  it("starts a first poll 30 days back by default, from startFrom when set, not at the account's beginning", async () => {
    let at = Date.now() - 400 * 86_400_000;
    const { sim, drain } = await setup({ startFrom: undefined }, () => new Date(at));
    sim.put({ id: '51', starts_at: '2025-01-10T10:00:00Z' });
    at = Date.now() - 40 * 86_400_000;
    sim.put({ id: '52', starts_at: '2026-01-10T10:00:00Z' });
    at = Date.now() - 86_400_000;
    sim.put({ id: '53', starts_at: '2027-01-10T10:00:00Z' });
    const first = await drain(null);
    // Before: all three, the account's whole history (each told as appointment.created).
    expect(first.all.map((n) => n.orderingKey)).toEqual(['individual_appointment:53']);
    const fromSetting = await setup(
      { startFrom: clinikoTime(Date.now() - 45 * 86_400_000) },
      () => new Date(at),
    );
    at = Date.now() - 400 * 86_400_000;
    fromSetting.sim.put({ id: '51' });
    at = Date.now() - 40 * 86_400_000;
    fromSetting.sim.put({ id: '52' });
    const chosen = await fromSetting.drain(null);
    expect(chosen.all.map((n) => n.orderingKey)).toEqual(['individual_appointment:52']);
  });

  it('books, moves and cancels through the API, and the next polls tell the story', async () => {
    const { sim, config, ctx, drain } = await setup();
    const cmd = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    const booked = await commands['appointment.book']!(
      {
        id: 'cmd-1',
        type: 'appointment.book',
        data: {
          start: '2026-03-10T10:00:00Z',
          durationMinutes: 30,
          patient: { id: '82' },
          practitioner: { id: '1' },
          location: { id: '1' },
          service: { id: '2' },
        },
      },
      cmd,
    );
    expect(booked).toMatchObject({ outcome: 'done', vendorIds: ['1000'] });
    const types: string[] = [];
    const record = async (from: string | null) => {
      const { all, cursor } = await drain(from);
      for (const n of all) types.push(...(await normalize(n, ctx)).events.map((e) => e.type));
      return cursor;
    };
    let cursor = await record(null);
    const target = memoryCommandContext({ config, vendorIds: ['1000'], vendorApi: fetchVendorHttp.request });
    const move = {
      id: 'cmd-2',
      type: 'appointment.reschedule' as const,
      subject: 'appointment/h',
      data: { start: '2026-03-12T10:00:00Z' },
    };
    expect((await commands['appointment.reschedule']!(move, target)).outcome).toBe('done');
    cursor = await record(cursor);
    const cancel = { id: 'cmd-3', type: 'appointment.cancel' as const, subject: 'appointment/h', data: {} };
    expect((await commands['appointment.cancel']!(cancel, target)).outcome).toBe('done');
    await record(cursor);
    expect(types).toEqual(['appointment.created', 'appointment.rescheduled', 'appointment.cancelled']);
    expect(sim.get('1000')).toMatchObject({ cancellation_reason: 50 });
  });

  for (const presenceWritable of [true, false]) {
    it(`marks arrival and no-show, clears them and writes the notes through the API, the next polls telling each (presence ${presenceWritable ? 'by the appointment PATCH' : 'through the attendee: the PATCH ignores it'})`, async () => {
      const { sim, config, ctx, drain } = await setup({}, steppingClock(), { presenceWritable });
      sim.put({ id: '61', starts_at: '2026-03-10T10:00:00Z', patient_arrived: false, did_not_arrive: false });
      const types: string[] = [];
      let cursor: string | null = null;
      const record = async () => {
        const { all, cursor: next } = await drain(cursor);
        cursor = next;
        for (const n of all) types.push(...(await normalize(n, ctx)).events.map((e) => e.type));
      };
      await record();
      const target = memoryCommandContext({
        config,
        vendorIds: ['61'],
        vendorApi: fetchVendorHttp.request,
      });
      const run = async (
        type: 'appointment.mark_arrived' | 'appointment.mark_no_show' | 'appointment.clear_presence',
      ) => {
        const result = await commands[type]!(
          { id: 'c', type, subject: 'appointment/h', data: {} } as never,
          target,
        );
        expect(result.outcome, type).toBe('done');
        await record();
      };
      await run('appointment.mark_arrived');
      await run('appointment.mark_no_show');
      await run('appointment.clear_presence');
      const noted = await commands['appointment.update']!(
        {
          id: 'u',
          type: 'appointment.update',
          subject: 'appointment/h',
          data: { comment: 'bring the referral' },
        },
        target,
      );
      expect(noted.outcome).toBe('done');
      await record();
      expect(types).toEqual([
        'appointment.created',
        'appointment.arrived',
        'appointment.no_show',
        'appointment.status_reverted',
        'appointment.updated',
      ]);
      expect(sim.get('61')).toMatchObject({ notes: 'bring the referral' });
      const writes = sim.requests.filter((r) => r.method !== 'GET' || r.url.endsWith('/attendees'));
      expect(writes.map((r) => `${r.method} ${r.url.replace(/\d+/g, 'N')}`)).toEqual(
        presenceWritable
          ? Array(4).fill('PATCH /vN/individual_appointments/N')
          : [
              ...Array(3)
                .fill([
                  'PATCH /vN/individual_appointments/N',
                  'GET /vN/individual_appointments/N/attendees',
                  'PUT /vN/attendees/N',
                ])
                .flat(),
              'PATCH /vN/individual_appointments/N',
            ],
      );
    });
  }

  for (const refuseRepeats of [false, true]) {
    it(`a presence write whose answer was lost was carried out; sent again, it changes nothing: one new version (a repeat answered ${refuseRepeats ? '422, read back as done' : '200'})`, async () => {
      const { sim, config, drain } = await setup({}, steppingClock(), { refuseRepeats });
      sim.put({ id: '62', starts_at: '2026-03-10T10:00:00Z', patient_arrived: false, did_not_arrive: false });
      const first = await drain(null);
      const target = memoryCommandContext({ config, vendorIds: ['62'], vendorApi: fetchVendorHttp.request });
      const arrive = {
        id: 'c',
        type: 'appointment.mark_arrived' as const,
        subject: 'appointment/h',
        data: {},
      };
      sim.loseAnswers(1, 502);
      expect((await commands['appointment.mark_arrived']!(arrive, target)).outcome).toBe('transient');
      expect(sim.get('62')).toMatchObject({ patient_arrived: true });
      expect(await commands['appointment.mark_arrived']!(arrive, target)).toMatchObject({
        outcome: 'done',
        ...(refuseRepeats ? { alreadyDone: true } : {}),
      });
      expect(
        sim.requests
          .filter((r) => r.url.startsWith('/v1/individual_appointments/62'))
          .map((r) => [r.method, r.status, r.lostStatus]),
      ).toEqual([
        ['PATCH', 502, 200],
        ...(refuseRepeats
          ? [
              ['PATCH', 422, undefined],
              ['GET', 200, undefined],
            ]
          : [['PATCH', 200, undefined]]),
      ]);
      const next = await drain(first.cursor);
      const versions = new Set(next.all.map((n) => n.dedupeKey));
      // The last version of the first poll again (the inclusive watermark) and the arrival's, once.
      expect([...versions].filter((k) => !first.all.some((n) => n.dedupeKey === k))).toHaveLength(1);
    });
  }

  it('a cancel whose answer was lost, sent again and refused as a repeat (422), is done once a read shows it cancelled; a refusal of a live one stands', async () => {
    const { sim, config } = await setup({}, steppingClock(), { refuseRepeats: true });
    sim.put({ id: '63', starts_at: '2026-03-10T10:00:00Z' });
    const target = memoryCommandContext({ config, vendorIds: ['63'], vendorApi: fetchVendorHttp.request });
    const cancel = { id: 'c', type: 'appointment.cancel' as const, subject: 'appointment/h', data: {} };
    sim.loseAnswers(1, 502);
    expect((await commands['appointment.cancel']!(cancel, target)).outcome).toBe('transient');
    expect(sim.get('63')?.cancelled_at).toEqual(expect.any(String));
    // Before: permanent, "Cliniko cancel answered 422", the appointment cancelled.
    expect(await commands['appointment.cancel']!(cancel, target)).toEqual({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(
      sim.requests
        .filter((r) => r.url.startsWith('/v1/individual_appointments/63'))
        .map((r) => [r.method, r.status, r.lostStatus]),
    ).toEqual([
      ['PATCH', 502, 204],
      ['PATCH', 422, undefined],
      ['GET', 200, undefined],
    ]);
    sim.put({ id: '64', starts_at: '2026-03-10T11:00:00Z' });
    const refused = memoryCommandContext({
      config: { ...config, cancellationReason: 99 as never },
      vendorIds: ['64'],
      vendorApi: fetchVendorHttp.request,
    });
    expect(await commands['appointment.cancel']!(cancel, refused)).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('cancellation_reason is not included in the list'),
    });
  });

  it('finds through the API the booking a try whose answer was lost made, passing over a cancelled one of the same slot', async () => {
    const { sim, config } = await setup();
    const links = (kind: string, id: string) => ({ links: { self: `${sim.url}/${kind}/${id}` } });
    const slot = {
      starts_at: '2026-03-10T10:30:00Z',
      patient: links('patients', '82'),
      practitioner: links('practitioners', '1'),
    };
    sim.put({ id: '990', ...slot, cancelled_at: '2026-03-02T09:00:00Z' });
    sim.put({ id: '991', ...slot, cancelled_at: null });
    const cmd = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    await cmd.commandState.set('cliniko:book-sent', true);
    const booking = {
      id: 'cmd-1',
      type: 'appointment.book' as const,
      data: {
        start: '2026-03-10T11:30:00+01:00',
        patient: { id: '82' },
        practitioner: { id: '1' },
        location: { id: '1' },
        service: { id: '2' },
      },
    };
    expect(await commands['appointment.book']!(booking, cmd)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['991'],
    });
    expect(sim.requests.map((r) => [r.method, r.status])).toEqual([['GET', 200]]);
  });

  it("a booking sent again after the wait and refused as taken (the first send's booking landed late) is looked for once more: done with that booking, made once", async () => {
    const { sim, config } = await setup({}, () => new Date(), { refuseOverlaps: true });
    const links = (kind: string, id: string) => ({ links: { self: `${sim.url}/${kind}/${id}` } });
    const booking = {
      id: 'cmd-1',
      type: 'appointment.book' as const,
      data: {
        start: '2026-03-10T11:30:00+01:00',
        durationMinutes: 30,
        patient: { id: '82' },
        practitioner: { id: '1' },
        location: { id: '1' },
        service: { id: '2' },
      },
    };
    // The first POST answered 502 by a gateway, Cliniko still at work on it.
    sim.failNextWrite(502);
    const first = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    expect((await commands['appointment.book']!(booking, first)).outcome).toBe('transient');
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('cliniko:book-sent', { at: old, last: old });
    // The lookup finds nothing; the first POST lands just before the one sent again, refused.
    const again = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) => {
        if (request.method === 'POST') {
          sim.put({
            id: '7001',
            starts_at: '2026-03-10T10:30:00Z',
            ends_at: '2026-03-10T11:00:00Z',
            cancelled_at: null,
            created_at: clinikoTime(Date.now()),
            patient: links('patients', '82'),
            practitioner: links('practitioners', '1'),
          });
        }
        return fetchVendorHttp.request(request);
      },
    });
    expect(await commands['appointment.book']!(booking, again)).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['7001'],
    });
    expect(sim.requests.map((r) => [r.method, r.status])).toEqual([
      ['POST', 502],
      ['GET', 200],
      ['POST', 422],
      ['GET', 200],
    ]);
    expect(await first.commandState.get('cliniko:book-sent')).toBeUndefined();
  });

  it('a booking sent again, refused, whose second lookup fails keeps the first send’s mark and is transient: the next try finds the booking', async () => {
    const { sim, config } = await setup({}, () => new Date(), { refuseOverlaps: true });
    const links = (kind: string, id: string) => ({ links: { self: `${sim.url}/${kind}/${id}` } });
    const booking = {
      id: 'cmd-2',
      type: 'appointment.book' as const,
      data: {
        start: '2026-03-12T09:00:00Z',
        durationMinutes: 30,
        patient: { id: '82' },
        practitioner: { id: '1' },
        location: { id: '1' },
        service: { id: '2' },
      },
    };
    sim.failNextWrite(502);
    const first = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    expect((await commands['appointment.book']!(booking, first)).outcome).toBe('transient');
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('cliniko:book-sent', { at: old, last: old });
    const again = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) => {
        if (request.method !== 'POST') return fetchVendorHttp.request(request);
        // The first POST lands just before this one; the lookup after the refusal meets a 503.
        sim.put({
          id: '7002',
          starts_at: '2026-03-12T09:00:00Z',
          ends_at: '2026-03-12T09:30:00Z',
          cancelled_at: null,
          created_at: clinikoTime(Date.now()),
          patient: links('patients', '82'),
          practitioner: links('practitioners', '1'),
        });
        const answer = await fetchVendorHttp.request(request);
        sim.failNext(503);
        return answer;
      },
    });
    expect((await commands['appointment.book']!(booking, again)).outcome).toBe('transient');
    expect(await first.commandState.get('cliniko:book-sent')).toEqual({ at: old, last: old });
    const third = memoryCommandContext({
      config,
      attempt: 3,
      commandState: first.commandState,
      vendorApi: fetchVendorHttp.request,
    });
    expect(await commands['appointment.book']!(booking, third)).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['7002'],
    });
    expect(sim.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([502, 422]);
  });

  it('refuses what Cliniko refuses: a booking without the ids it requires, a cancellation reason not in its list', async () => {
    const { sim, config } = await setup();
    const cmd = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    const refused = await cmd.http.request({
      method: 'POST',
      url: `${sim.url}/individual_appointments`,
      headers: apiHeaders(config),
      json: { starts_at: '2026-03-10T10:00:00Z', patient_id: '82' },
    });
    expect([refused.status, refused.body]).toEqual([
      422,
      {
        errors: {
          practitioner_id: ["can't be blank"],
          appointment_type_id: ["can't be blank"],
          business_id: ["can't be blank"],
        },
      },
    ]);
    sim.put({ id: '5', starts_at: '2026-03-10T10:00:00Z' });
    const target = memoryCommandContext({
      config: { ...config, cancellationReason: 35 },
      vendorIds: ['5'],
      vendorApi: fetchVendorHttp.request,
    });
    const cancel = { id: 'cmd-9', type: 'appointment.cancel' as const, subject: 'appointment/h', data: {} };
    expect(await commands['appointment.cancel']!(cancel, target)).toMatchObject({
      outcome: 'permanent',
      message: 'Cliniko cancel answered 422: cancellation_reason is not included in the list',
    });
    expect(sim.get('5')?.cancelled_at).toBeUndefined();
  });

  it('answers a wrong key 401, which the pull takes as permanent, and a 429 as transient with its wait', async () => {
    const { sim, config, ctx } = await setup();
    // Cliniko's limiter sends no Retry-After: X-RateLimit-Reset, the UNIX second the limit resets.
    const reset = () => ({ 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 40) });
    sim.failNext(429, reset());
    const limited = await fetchAppointments(ctx, null).catch((e: unknown) => e);
    expect(isConnectorError(limited) && limited.kind).toBe('transient');
    expect((limited as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(35_000);
    expect((limited as { retryAfterMs?: number }).retryAfterMs).toBeLessThanOrEqual(40_000);
    sim.failNext(429, reset());
    const target = memoryCommandContext({ config, vendorIds: ['1'], vendorApi: fetchVendorHttp.request });
    const cancel = { id: 'cmd-9', type: 'appointment.cancel' as const, subject: 'appointment/h', data: {} };
    const waited = await commands['appointment.cancel']!(cancel, target);
    expect(waited.outcome === 'transient' && waited.retryAfterMs).toBeGreaterThan(35_000);
    const wrong = memoryNormalizeContext({
      config: { ...ctx.config, apiKey: 'not-the-key-0123456789' },
      vendorApi: fetchVendorHttp.request,
    });
    const refused = await fetchAppointments(wrong, null).catch((e: unknown) => e);
    expect(isConnectorError(refused) && refused.kind).toBe('permanent');
  });
});
