import {
  type CommandContext,
  type CommandRequest,
  ConnectorError,
  type JsonObject,
  type JsonValue,
  type VendorHttp,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import { capturingLogger, MemoryStateStore } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from './commands.ts';
import type { Config } from './config.ts';
import { DocplannerSimulator } from './simulator.ts';

/** A real-HTTP VendorHttp, as the hub lends one: resolves for every status, transient on network errors. */
const fetchHttp: VendorHttp = {
  async request(request: VendorRequest): Promise<VendorResponse> {
    const headers: Record<string, string> = { ...request.headers };
    let body: string | undefined;
    if (request.form) {
      body = new URLSearchParams(request.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (request.json !== undefined) {
      body = JSON.stringify(request.json);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(request.url, { method: request.method ?? 'GET', headers, body });
    } catch (error) {
      throw ConnectorError.transient(`network error: ${(error as Error).message}`, { cause: error });
    }
    const text = await res.text();
    let parsed: JsonValue | string = text;
    if (/json/.test(res.headers.get('content-type') ?? '') && text !== '')
      parsed = JSON.parse(text) as JsonValue;
    return { status: res.status, headers: Object.fromEntries(res.headers), body: parsed };
  },
};

const PLACE = { facility: '90211', doctor: '182733', address: '221304' };
const CURRENT: JsonObject = {
  id: 'hub-1',
  vendorIds: [],
  status: 'booked',
  organization: { id: PLACE.facility },
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  service: { id: '4455661' },
};

const sims: DocplannerSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function setup() {
  const sim = new DocplannerSimulator({ clientId: 'dp-client', clientSecret: 'dp-secret' });
  sims.push(sim);
  const url = await sim.start();
  sim.writes.echoes = false;
  sim.writes.addBooking(PLACE, {
    id: '2087456123',
    status: 'booked',
    start_at: '2026-03-10T11:30:00+01:00',
    duration: 30,
    address_service: { id: '4455661' },
  });
  const state = new MemoryStateStore();
  const ctx = (over: Partial<CommandContext<Config>> = {}): CommandContext<Config> => ({
    instanceId: 'dp',
    config: { apiBaseUrl: url, clientId: 'dp-client', clientSecret: 'dp-secret' },
    http: fetchHttp,
    vendorIds: ['2087456123'],
    current: CURRENT,
    state,
    logger: capturingLogger(),
    attempt: 1,
    ...over,
  });
  return { sim, ctx };
}

function cmd<T extends CommandRequest['type']>(type: T, data: object): CommandRequest<T> {
  return {
    id: `cmd-${Math.random()}`,
    type,
    subject: 'appointment/hub-1',
    data,
  } as unknown as CommandRequest<T>;
}

describe('Docplanner commands against the simulator', () => {
  it('cancel: DELETE the booking with the reason, with a token; a repeated cancel is done (already canceled)', async () => {
    const { sim, ctx } = await setup();
    const first = await commands['appointment.cancel']!(
      cmd('appointment.cancel', { reason: 'patient called' }),
      ctx(),
    );
    expect(first).toMatchObject({ outcome: 'done' });
    expect(sim.writes.log).toEqual([
      {
        method: 'DELETE',
        path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/bookings/2087456123`,
        body: { reason: 'patient called' },
        status: 204,
      },
    ]);
    expect(sim.tokensIssued).toBe(1);
    const again = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx({ attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true });
    expect(sim.writes.log.map((w) => w.status)).toEqual([204, 409]);
  });

  it('transient on 503 and on 429 with its Retry-After; permanent on an unknown booking with the vendor answer', async () => {
    const { sim, ctx } = await setup();
    sim.failNext(1, 503);
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx())).toMatchObject({
      outcome: 'transient',
      vendor: { status: 503 },
    });
    sim.failNext(1, 429, 7);
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx())).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 7000,
    });
    const missing = await commands['appointment.cancel']!(
      cmd('appointment.cancel', {}),
      ctx({ vendorIds: ['999'] }),
    );
    expect(missing).toMatchObject({
      outcome: 'permanent',
      vendor: { status: 404, body: { message: 'Booking not found' } },
    });
  });

  it('refreshes a revoked token on 401 and goes on', async () => {
    const { sim, ctx } = await setup();
    const c = ctx();
    expect(await commands['appointment.mark_arrived']!(cmd('appointment.mark_arrived', {}), c)).toMatchObject(
      {
        outcome: 'done',
      },
    );
    sim.revokeTokens();
    expect(
      await commands['appointment.clear_presence']!(cmd('appointment.clear_presence', {}), c),
    ).toMatchObject({
      outcome: 'done',
    });
    expect(sim.tokensIssued).toBe(2);
    expect(
      sim.writes.log.map((w) => `${w.method} ${w.path.split('/').slice(-3).join('/')} ${w.status}`),
    ).toEqual(['POST 2087456123/presence/patient 204', 'DELETE 2087456123/presence/patient 204']);
  });

  it('reschedule: POST move with start and service; the new booking id is returned for aliasing', async () => {
    const { sim, ctx } = await setup();
    const r = await commands['appointment.reschedule']!(
      cmd('appointment.reschedule', { start: '2026-03-11T09:00:00+01:00' }),
      ctx(),
    );
    expect(r.outcome).toBe('done');
    const newId = r.outcome === 'done' ? r.vendorIds?.[0] : undefined;
    expect(newId).toMatch(/^\d+$/);
    expect(newId).not.toBe('2087456123');
    expect(sim.writes.log[0]).toMatchObject({
      method: 'POST',
      body: { start: '2026-03-11T09:00:00+01:00', address_service_id: '4455661' },
      status: 200,
    });
    expect(sim.bookings.get('2087456123')?.booking.status).toBe('canceled');
  });

  it('book: POST the slot with the patient; a taken slot is a permanent 422; no place is refused before any call', async () => {
    const { sim, ctx } = await setup();
    const data = {
      start: '2026-03-12T10:00:00+01:00',
      patient: { given: 'Anna', family: 'Kowalska', phone: '+48500100200', email: 'anna@example.com' },
      practitioner: { id: PLACE.doctor },
      location: { id: PLACE.address },
      organization: { id: PLACE.facility },
      service: { id: '4455661' },
    };
    const booked = await commands['appointment.book']!(
      { id: 'b1', type: 'appointment.book', data } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(booked.outcome).toBe('done');
    expect(sim.writes.log[0]).toMatchObject({
      method: 'POST',
      path: `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}/slots/${encodeURIComponent(data.start)}/book`,
      body: {
        address_service_id: '4455661',
        is_returning: false,
        patient: { name: 'Anna', surname: 'Kowalska', phone: '+48500100200', email: 'anna@example.com' },
      },
      status: 201,
    });
    const taken = await commands['appointment.book']!(
      { id: 'b2', type: 'appointment.book', data } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(taken).toMatchObject({ outcome: 'permanent', vendor: { status: 422 } });
    const nowhere = await commands['appointment.book']!(
      {
        id: 'b3',
        type: 'appointment.book',
        data: { ...data, organization: undefined },
      } as CommandRequest<'appointment.book'>,
      ctx({ vendorIds: [] }),
    );
    expect(nowhere.outcome).toBe('permanent');
    expect(sim.writes.log).toHaveLength(2);
  });

  it('does not repeat a booking whose earlier try got no answer (no idempotency at Docplanner)', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const request = {
      id: 'b-crash',
      type: 'appointment.book',
      data: {
        start: '2026-03-13T10:00:00+01:00',
        patient: { name: 'Jan', phone: '+48500100201' },
        practitioner: { id: PLACE.doctor },
        location: { id: PLACE.address },
        organization: { id: PLACE.facility },
        service: { id: '4455661' },
      },
    } as CommandRequest<'appointment.book'>;
    // The first try times out after sending: the simulator answers too late.
    sim.writes.delayMs = 300;
    let late: Promise<unknown> | undefined;
    const slowHttp: VendorHttp = {
      async request(r) {
        if (r.url.includes('/book')) {
          late = fetchHttp.request(r).catch(() => {});
          throw ConnectorError.transient('timed out');
        }
        return fetchHttp.request(r);
      },
    };
    await expect(commands['appointment.book']!(request, { ...c, http: slowHttp })).rejects.toThrow(
      'timed out',
    );
    const retried = await commands['appointment.book']!(request, { ...c, attempt: 2 });
    expect(retried.outcome).toBe('permanent');
    await late;
    expect(sim.writes.log.filter((w) => w.path.endsWith('/book'))).toHaveLength(1);
  });
});
