import { isConnectorError, type VendorNotification } from '@switchyard/core';
import { fetchVendorHttp, memoryCommandContext, memoryNormalizeContext } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from './commands.ts';
import { apiHeaders, type Config } from './config.ts';
import { normalize } from './normalize.ts';
import { fetchAppointments } from './pull.ts';
import { ClinikoSimulator } from './simulator.ts';
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

async function setup(settings: Partial<Config> = {}) {
  const sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey, now: steppingClock() });
  sims.push(sim);
  const config: Config = { ...fixtureSettings, apiBaseUrl: await sim.start(), ...settings };
  const ctx = memoryNormalizeContext({
    instanceId: 'cliniko-main',
    config,
    vendorApi: fetchVendorHttp.request,
  });
  /** Pulls until Cliniko has no next page, as the hub's poller does; returns every notification. */
  const drain = async (from: string | null) => {
    const all: VendorNotification[] = [];
    let cursor = from;
    for (let turn = 0; turn < 20; turn += 1) {
      const batch = await fetchAppointments(ctx, cursor);
      all.push(...batch.notifications);
      cursor = batch.cursor === undefined ? cursor : batch.cursor;
      if (!batch.more) return { all, cursor };
    }
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
