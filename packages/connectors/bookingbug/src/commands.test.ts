import { readFileSync } from 'node:fs';
import {
  type CommandContext,
  type CommandRequest,
  ConnectorError,
  type JsonObject,
  type VendorHttp,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import {
  capturingLogger,
  describeCommandConformance,
  fetchVendorHttp,
  MemoryStateStore,
  memoryCommandContext,
} from '@switchyard/testing';
import { startMaintenancePage } from '@switchyard/testing/simulator-kit/maintenance-page';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdminTokenCache,
  commands,
  commandsUnavailable,
  commandUnsupported,
  vendorWords,
} from './commands.ts';
import type { Config } from './config.ts';
import { bookingbugConnector } from './index.ts';
import { BookingBugSimulator } from './simulator.ts';

const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

const sims: BookingBugSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

/** The legacy sample purchase's booking (company 50666) and a JRNI webhook's (company 37011). */
const LEGACY = { booking: '13477736', company: '50666' };
const JRNI = { booking: '1294', company: '37011' };

/** The simulator's administrator (its default App-Id, App-Key, email and password). */
const setupAdmin = {
  baseUrl: 'https://bb.test',
  appId: 'sim-app-id',
  appKey: 'sim-app-key',
  email: 'admin@clinic.example',
  password: 'sim-admin-password',
};

async function setup() {
  const sim = new BookingBugSimulator();
  sims.push(sim);
  await sim.start();
  sim.writes.echoes = false;
  sim.writes.addBooking(fixture('created.json'));
  sim.writes.remember(fixture('jrni-data-create.json'));
  const state = new MemoryStateStore();
  const config: Config = {
    basicToken: 't'.repeat(20),
    adminApi: {
      baseUrl: `${sim.url}/`,
      appId: 'sim-app-id',
      appKey: 'sim-app-key',
      email: 'admin@clinic.example',
      password: 'sim-admin-password',
    },
  };
  const ctx = (over: Partial<CommandContext<Config>> = {}): CommandContext<Config> => ({
    instanceId: 'bb',
    config,
    http: fetchVendorHttp,
    vendorIds: [LEGACY.booking],
    current: { organization: { id: LEGACY.company } },
    state,
    commandState: new MemoryStateStore(),
    logger: capturingLogger(),
    attempt: 1,
    ...over,
  });
  return { sim, ctx, state, config };
}

const cancelCmd = (data: object = {}) =>
  ({
    id: `c-${Math.random()}`,
    type: 'appointment.cancel',
    subject: 'appointment/h',
    data,
  }) as unknown as CommandRequest<'appointment.cancel'>;

const moveCmd = (data: object) =>
  ({
    id: `m-${Math.random()}`,
    type: 'appointment.reschedule',
    subject: 'appointment/h',
    data,
  }) as unknown as CommandRequest<'appointment.reschedule'>;

/** HTTP whose first PUT reaches the simulator while its answer is lost: the hub sees `status`. */
function losingFirstPut(status: number): VendorHttp {
  let lose = true;
  return {
    async request(request) {
      const res = await fetchVendorHttp.request(request);
      if (request.method !== 'PUT' || !lose) return res;
      lose = false;
      return { status, headers: {}, body: 'Gateway error' };
    },
  };
}

const cancel = commands['appointment.cancel']!;
const reschedule = commands['appointment.reschedule']!;
const calls = (sim: BookingBugSimulator) => sim.writes.log.map((c) => `${c.method} ${c.path} ${c.status}`);

// The floor every connector's commands meet: 503 and 429 transient (Retry-After kept), 422 permanent.
describeCommandConformance({
  connector: bookingbugConnector,
  // The admin login comes first: answered here, the kit's answers reach each command's own call.
  vendorApi: (request) =>
    request.url.endsWith('/api/v1/login')
      ? { status: 200, headers: {}, body: { auth_token: 'conformance-token' } }
      : undefined,
  config: {
    basicToken: 't'.repeat(20),
    adminApi: {
      baseUrl: 'https://bb.test/',
      appId: 'app-id',
      appKey: 'app-key',
      email: 'admin@clinic.example',
      password: 'admin-password',
    },
  },
  samples: {
    'appointment.book': {
      data: {
        start: '2017-03-17T13:00:00+02:00',
        patient: { given: 'Jamie', family: 'Oliver', email: 'j.oliver@test.com' },
        organization: { id: '50666' },
        service: { id: '104747' },
        practitioner: { id: '30553' },
      },
    },
    'appointment.cancel': {
      data: {},
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
    },
    'appointment.reschedule': {
      data: { start: '2017-03-11T09:00:00+00:00' },
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
    },
    'appointment.mark_arrived': {
      data: {},
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
    },
    'appointment.mark_no_show': {
      data: {},
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
    },
    'appointment.update': {
      data: { comment: 'insurance verified' },
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
    },
  },
});

describe('BookingBug commands against the simulator', () => {
  it('cancel: logs in once, then POSTs the cancel with App-Id, App-Key, Auth-Token and { notify, cancel_reason }', async () => {
    const { sim, ctx, state } = await setup();
    const result = await cancel(cancelCmd({ reason: 'patient called' }), ctx());
    expect(result).toMatchObject({ outcome: 'done', vendor: { status: 200 } });
    expect(calls(sim)).toEqual([
      'POST /api/v1/login 201',
      `POST /api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}/cancel 200`,
    ]);
    const [login, call] = sim.writes.log;
    expect(login!.body).toEqual({ email: 'admin@clinic.example', password: 'sim-admin-password' });
    expect(call).toMatchObject({
      appId: 'sim-app-id',
      appKey: 'sim-app-key',
      body: { notify: true, cancel_reason: 'patient called' },
    });
    expect(call!.authToken).toBeTruthy();
    expect(sim.writes.isCancelled(LEGACY.booking)).toBe(true);
    // The token is a credential: it is not written to the instance state (a database row).
    expect([...state.values.values()].join()).not.toContain(call!.authToken!);
    expect(state.values.size).toBe(0);

    // The token is reused from memory: a second command makes no second login.
    const other = await cancel(
      cancelCmd(),
      ctx({
        vendorIds: [JRNI.booking],
        current: { organization: { id: JRNI.company } },
        state: new MemoryStateStore(),
      }),
    );
    expect(other).toMatchObject({ outcome: 'done' });
    expect(calls(sim).slice(2)).toEqual([
      `POST /api/v1/admin/${JRNI.company}/bookings/${JRNI.booking}/cancel 200`,
    ]);
    expect(sim.writes.log[2]!.body).toEqual({ notify: true });
  });

  it('takes the company from adminApi.companyId when the known state names none, and sends it at login; notify follows notifyOnCancel', async () => {
    const { sim, ctx, config } = await setup();
    const withCompany: Config = {
      ...config,
      adminApi: { ...config.adminApi!, companyId: Number(LEGACY.company), notifyOnCancel: false },
    };
    expect(await cancel(cancelCmd(), ctx({ config: withCompany, current: {} }))).toMatchObject({
      outcome: 'done',
    });
    expect(sim.writes.log[0]!.body).toMatchObject({ id: Number(LEGACY.company) });
    expect(sim.writes.log[1]).toMatchObject({
      path: `/api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}/cancel`,
      body: { notify: false },
    });
    // Neither the state nor the config names a company: nothing is sent.
    sim.writes.log.length = 0;
    const unknown = await cancel(cancelCmd(), ctx({ current: {} }));
    expect(unknown).toMatchObject({ outcome: 'permanent', message: expect.stringContaining('companyId') });
    expect(sim.writes.log).toEqual([]);
  });

  it('an expired Auth-Token (401): logs in again once and repeats the call', async () => {
    const { sim, ctx } = await setup();
    await cancel(
      cancelCmd(),
      ctx({ vendorIds: [JRNI.booking], current: { organization: { id: JRNI.company } } }),
    );
    sim.writes.log.length = 0;
    sim.writes.expireTokens();
    expect(await cancel(cancelCmd(), ctx())).toMatchObject({ outcome: 'done' });
    expect(calls(sim)).toEqual([
      `POST /api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}/cancel 401`,
      'POST /api/v1/login 201',
      `POST /api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}/cancel 200`,
    ]);
  });

  it('keeps a token per instance and per login: another instance, or changed settings, log in for their own', async () => {
    const { sim, ctx, config } = await setup();
    const logins = () => calls(sim).filter((c) => c.startsWith('POST /api/v1/login')).length;
    const jrni = { vendorIds: [JRNI.booking], current: { organization: { id: JRNI.company } } };
    expect(await cancel(cancelCmd(), ctx({ instanceId: 'bb-a', ...jrni }))).toMatchObject({
      outcome: 'done',
    });
    expect(logins()).toBe(1);
    // Another instance against the same account: its own login.
    expect(await cancel(cancelCmd(), ctx({ instanceId: 'bb-b' }))).toMatchObject({ outcome: 'done' });
    expect(logins()).toBe(2);
    // The first instance's settings changed (now a parent/child login): the old token is not used.
    const changed: Config = {
      ...config,
      adminApi: { ...config.adminApi!, companyId: Number(LEGACY.company) },
    };
    expect(
      await cancel(cancelCmd(), ctx({ instanceId: 'bb-a', config: changed, vendorIds: ['13477737'] })),
    ).toMatchObject({
      outcome: 'permanent',
      vendor: { status: 404 },
    });
    // An unknown booking (404, then re-read): what matters is the login before it.
    expect(sim.writes.log.slice(-3).map((c) => c.path)).toEqual([
      '/api/v1/login',
      `/api/v1/admin/${LEGACY.company}/bookings/13477737/cancel`,
      `/api/v1/admin/${LEGACY.company}/bookings/13477737`,
    ]);
    expect(sim.writes.log.at(-3)!.body).toMatchObject({ id: Number(LEGACY.company) });
  });

  it('holds at most its bound of tokens, the least recently used going first', () => {
    const cache = new AdminTokenCache(2);
    cache.set('a', 'login-a', 'token-a');
    cache.set('b', 'login-b', 'token-b');
    expect(cache.get('a', 'login-a')).toBe('token-a');
    cache.set('c', 'login-c', 'token-c');
    expect(cache.size).toBe(2);
    expect(cache.get('b', 'login-b')).toBeUndefined();
    expect(cache.get('a', 'login-a')).toBe('token-a');
    expect(cache.get('a', 'another-login')).toBeUndefined();
    // A token that failed is forgotten, unless another command has renewed it meanwhile.
    cache.delete('a', 'token-old');
    expect(cache.get('a', 'login-a')).toBe('token-a');
    cache.delete('a', 'token-a');
    expect(cache.get('a', 'login-a')).toBeUndefined();
  });

  it('a cancelled booking: the refusal is followed by a re-read, and is_cancelled counts as done (a repeated call)', async () => {
    const { sim, ctx } = await setup();
    expect(await cancel(cancelCmd(), ctx())).toMatchObject({ outcome: 'done' });
    const again = await cancel(cancelCmd(), ctx({ attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendor: { status: 409 } });
    expect(calls(sim).slice(2)).toEqual([
      `POST /api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}/cancel 409`,
      `GET /api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking} 200`,
    ]);
  });

  it('5xx and 429 are transient, Retry-After honoured', async () => {
    const { sim, ctx } = await setup();
    sim.writes.failNext(1, 503);
    expect(await cancel(cancelCmd(), ctx())).toMatchObject({
      outcome: 'transient',
      message: 'BookingBug login answered 503',
      vendor: { status: 503 },
    });
    sim.writes.failNext(1, 429, 7);
    // The login above failed: this try logs in (429), nothing reached the booking.
    const limited = await cancel(cancelCmd(), ctx());
    expect(limited).toMatchObject({ outcome: 'transient', retryAfterMs: 7000 });
    expect(sim.writes.isCancelled(LEGACY.booking)).toBe(false);
    // With a token, the cancel itself is throttled.
    expect(
      await cancel(
        cancelCmd(),
        ctx({ vendorIds: [JRNI.booking], current: { organization: { id: JRNI.company } } }),
      ),
    ).toMatchObject({ outcome: 'done' });
    sim.writes.failNext(1, 429, 3);
    expect(await cancel(cancelCmd(), ctx())).toMatchObject({
      outcome: 'transient',
      message: 'BookingBug cancel answered 429',
      retryAfterMs: 3000,
    });
    expect(await cancel(cancelCmd(), ctx())).toMatchObject({ outcome: 'done' });
  });

  it('other 4xx are permanent with the vendor answer: an unknown booking, a refused login', async () => {
    const { sim, ctx, config } = await setup();
    const missing = await cancel(cancelCmd(), ctx({ vendorIds: ['999'] }));
    expect(missing).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug cancel answered 404: Booking not found',
      vendor: { status: 404, body: { error: 'Booking not found' } },
    });
    const wrong: Config = { ...config, adminApi: { ...config.adminApi!, password: 'not-it' } };
    const refused = await cancel(cancelCmd(), ctx({ config: wrong, state: new MemoryStateStore() }));
    expect(refused).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('refused the admin login (answered 401)'),
      vendor: { status: 401 },
    });
    expect(JSON.stringify(refused)).not.toContain('not-it');
    expect(sim.writes.isCancelled(LEGACY.booking)).toBe(false);
  });

  it('a login answered 200 without an auth_token (a maintenance page) is transient, not a refused login', async () => {
    const { sim, ctx } = await setup();
    let pages = 1;
    const http: VendorHttp = {
      async request(request) {
        if (request.url.endsWith('/api/v1/login') && pages-- > 0) {
          return { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>Maintenance</html>' };
        }
        return fetchVendorHttp.request(request);
      },
    };
    const state = new MemoryStateStore();
    const command = cancelCmd();
    // Before: permanent, "BookingBug refused the admin login (answered 200)".
    expect(await cancel(command, ctx({ http, state, instanceId: 'bb-maintenance' }))).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('answered 200 without an auth_token'),
    });
    expect(
      await cancel(command, ctx({ http, state, instanceId: 'bb-maintenance', attempt: 2 })),
    ).toMatchObject({
      outcome: 'done',
    });
    expect(sim.writes.isCancelled(LEGACY.booking)).toBe(true);
  });

  it('is unavailable, and so refused at once by the hub, without adminApi', () => {
    expect(commandsUnavailable({ basicToken: 't'.repeat(20) })).toMatch(/adminApi/);
    expect(bookingbugConnector.commandsUnavailable?.({ basicToken: 't'.repeat(20) })).toMatch(/adminApi/);
    expect(
      commandsUnavailable({
        basicToken: 't'.repeat(20),
        adminApi: { baseUrl: 'https://uk.bookingbug.com', appId: 'a', email: 'e', password: 'p' },
      }),
    ).toBeUndefined();
    expect(Object.keys(bookingbugConnector.commands ?? {})).toEqual([
      'appointment.book',
      'appointment.cancel',
      'appointment.reschedule',
      'appointment.mark_arrived',
      'appointment.mark_no_show',
      'appointment.update',
    ]);
  });
});

describe('BookingBug reschedule against the simulator', () => {
  const PATH = `/api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}`;
  // The sample purchase's booking starts 2017-03-10T11:30:00+00:00.
  const NEW_START = '2017-03-11T10:00:00+01:00';

  it('PUTs { datetime } to the admin booking (Update Booking) with the Auth-Token; the booking moves', async () => {
    const { sim, ctx } = await setup();
    const result = await reschedule(moveCmd({ start: NEW_START }), ctx());
    expect(result).toMatchObject({
      outcome: 'done',
      vendor: { status: 200, body: { id: Number(LEGACY.booking), datetime: NEW_START } },
    });
    expect(calls(sim)).toEqual(['POST /api/v1/login 201', `PUT ${PATH} 200`]);
    expect(sim.writes.log[1]).toMatchObject({ appId: 'sim-app-id', body: { datetime: NEW_START } });
    expect(sim.writes.log[1]!.authToken).toBeTruthy();
    expect(sim.writes.startOf(LEGACY.booking)).toBe(NEW_START);
  });

  it('a try after one whose answer was lost reads the booking first and sends nothing again when it already starts there', async () => {
    const { sim, ctx } = await setup();
    // The PUT reaches BookingBug, its answer does not reach the hub (a gateway timeout).
    const http = losingFirstPut(504);
    const commandState = new MemoryStateStore();
    const command = moveCmd({ start: NEW_START });
    expect(await reschedule(command, ctx({ http, commandState }))).toMatchObject({ outcome: 'transient' });
    expect(sim.writes.startOf(LEGACY.booking)).toBe(NEW_START);
    const again = await reschedule(command, ctx({ http, commandState, attempt: 2 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true, vendor: { status: 200 } });
    expect(calls(sim).slice(1)).toEqual([`PUT ${PATH} 200`, `GET ${PATH} 200`]);
  });

  it('a try after a lost answer sends the move again when the booking is elsewhere, and not while the read fails', async () => {
    const { sim, ctx } = await setup();
    // A token first (a move of another booking), so that the failure below answers the read.
    await reschedule(
      moveCmd({ start: NEW_START }),
      ctx({ vendorIds: [JRNI.booking], current: { organization: { id: JRNI.company } } }),
    );
    const seen = sim.writes.log.length;
    // The try before sent the move; its answer was lost.
    const commandState = new MemoryStateStore();
    await commandState.set('bookingbug:move-sent', true);
    const command = moveCmd({ start: NEW_START });
    sim.writes.failNext(1, 503);
    expect(await reschedule(command, ctx({ commandState, attempt: 2 }))).toMatchObject({
      outcome: 'transient',
      message: 'BookingBug booking read answered 503',
    });
    expect(calls(sim).slice(seen)).toEqual([`GET ${PATH} 503`]);
    // Readable, and still at its old time: the move goes again.
    expect(await reschedule(command, ctx({ commandState, attempt: 3 }))).toMatchObject({ outcome: 'done' });
    expect(calls(sim).slice(seen + 1)).toEqual([`GET ${PATH} 200`, `PUT ${PATH} 200`]);
    expect(sim.writes.startOf(LEGACY.booking)).toBe(NEW_START);
  });

  it('a refused move is permanent with BookingBug’s answer, after a re-read (a taken time, a cancelled booking, an unknown one)', async () => {
    const { sim, ctx } = await setup();
    sim.writes.occupy(NEW_START);
    expect(await reschedule(moveCmd({ start: NEW_START }), ctx())).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug reschedule answered 409: Conflict: the slot is fully booked',
      vendor: { status: 409 },
    });
    expect(sim.writes.startOf(LEGACY.booking)).toBe('2017-03-10T11:30:00+00:00');
    expect(await cancel(cancelCmd(), ctx())).toMatchObject({ outcome: 'done' });
    const seen = sim.writes.log.length;
    const refused = await reschedule(moveCmd({ start: NEW_START }), ctx());
    expect(refused).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug reschedule answered 403: Rescheduling cancelled booking',
      vendor: { status: 403, body: { error: 'Rescheduling cancelled booking' } },
    });
    expect(calls(sim).slice(seen)).toEqual([`PUT ${PATH} 403`, `GET ${PATH} 200`]);
    const missing = await reschedule(moveCmd({ start: NEW_START }), ctx({ vendorIds: ['999'] }));
    expect(missing).toMatchObject({ outcome: 'permanent', vendor: { status: 404 } });
  });

  it('refuses, when the command is sent, a length, service or place the documented update cannot carry', () => {
    const start = NEW_START;
    expect(commandUnsupported({ type: 'appointment.reschedule', data: { start } })).toBeUndefined();
    expect(
      bookingbugConnector.commandUnsupported?.(
        { type: 'appointment.reschedule', data: { start, durationMinutes: 45, location: { id: '1' } } },
        { basicToken: 't'.repeat(20) },
      ),
    ).toBe(
      "BookingBug's documented booking update moves a booking in time only (datetime): data.durationMinutes, data.location cannot be sent",
    );
    expect(commandUnsupported({ type: 'appointment.cancel', data: {} })).toBeUndefined();
  });

  it('fails for good, without a call, a move with a length queued before the connector refused it up front', async () => {
    const { sim, ctx } = await setup();
    const result = await reschedule(moveCmd({ start: NEW_START, durationMinutes: 45 }), ctx());
    expect(result).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('data.durationMinutes'),
    });
    expect(sim.writes.log).toEqual([]);
  });
});

describe('BookingBug check-in status against the simulator', () => {
  const V3 = `/api/v3/admin/${LEGACY.company}/bookings/${LEGACY.booking}`;
  const V1 = `/api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}`;
  const presence = (type: 'appointment.mark_arrived' | 'appointment.mark_no_show') =>
    ({ id: `p-${Math.random()}`, type, subject: 'appointment/h', data: {} }) as unknown as CommandRequest<
      'appointment.mark_arrived' | 'appointment.mark_no_show'
    >;
  const arrived = commands['appointment.mark_arrived']!;
  const noShow = commands['appointment.mark_no_show']!;

  it('mark_arrived and mark_no_show PUT { current_multi_status } to the v3 admin booking (JRNI "Check-In")', async () => {
    const { sim, ctx } = await setup();
    const result = await arrived(presence('appointment.mark_arrived') as never, ctx());
    expect(result).toMatchObject({
      outcome: 'done',
      vendor: { status: 200, body: { current_multi_status: 'checked_in' } },
    });
    expect(calls(sim)).toEqual(['POST /api/v1/login 201', `PUT ${V3} 200`]);
    expect(sim.writes.log[1]).toMatchObject({
      appId: 'sim-app-id',
      body: { current_multi_status: 'checked_in' },
    });
    expect(sim.writes.log[1]!.authToken).toBeTruthy();
    expect(await noShow(presence('appointment.mark_no_show') as never, ctx())).toMatchObject({
      outcome: 'done',
    });
    expect(sim.writes.log[2]).toMatchObject({
      method: 'PUT',
      path: V3,
      body: { current_multi_status: 'no_show' },
    });
  });

  it('a try after a lost answer reads the booking first: nothing sent again when it has the status', async () => {
    const { sim, ctx } = await setup();
    const http = losingFirstPut(502);
    const commandState = new MemoryStateStore();
    const command = presence('appointment.mark_arrived');
    expect(await arrived(command as never, ctx({ http, commandState }))).toMatchObject({
      outcome: 'transient',
    });
    expect(await arrived(command as never, ctx({ http, commandState, attempt: 2 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(calls(sim).slice(1)).toEqual([`PUT ${V3} 200`, `GET ${V1} 200`]);
    // Another status set since (say, a no-show): the arrival is sent again.
    const other = new MemoryStateStore();
    await other.set('bookingbug:check-in-sent', true);
    expect(
      await noShow(presence('appointment.mark_no_show') as never, ctx({ commandState: other, attempt: 2 })),
    ).toMatchObject({
      outcome: 'done',
    });
    expect(calls(sim).slice(3)).toEqual([`GET ${V1} 200`, `PUT ${V3} 200`]);
  });

  it('an unknown booking is a permanent refusal with the vendor answer', async () => {
    const { ctx } = await setup();
    expect(
      await arrived(presence('appointment.mark_arrived') as never, ctx({ vendorIds: ['999'] })),
    ).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug check-in status answered 404: Booking not found',
      vendor: { status: 404 },
    });
  });
});

describe('BookingBug update (a private note) against the simulator', () => {
  const PATH = `/api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}`;
  const updateCmd = (data: object) =>
    ({
      id: `u-${Math.random()}`,
      type: 'appointment.update',
      subject: 'appointment/h',
      data,
    }) as unknown as CommandRequest<'appointment.update'>;
  const update = commands['appointment.update']!;

  it('PUTs data.comment as { note } to the booking’s private notes (Add Private Note)', async () => {
    const { sim, ctx } = await setup();
    const result = await update(updateCmd({ comment: 'insurance verified' }), ctx());
    expect(result).toMatchObject({
      outcome: 'done',
      vendor: { status: 200, body: { notes: { private: [{ note: 'insurance verified' }] } } },
    });
    expect(calls(sim)).toEqual(['POST /api/v1/login 201', `PUT ${PATH}/private_notes 200`]);
    expect(sim.writes.log[1]!.body).toEqual({ note: 'insurance verified' });
    expect(sim.writes.privateNotes(LEGACY.booking)).toEqual(['insurance verified']);
  });

  it('a try after a lost answer finds the note and adds no second one', async () => {
    const { sim, ctx } = await setup();
    const commandState = new MemoryStateStore();
    const command = updateCmd({ comment: 'called back' });
    const http = losingFirstPut(504);
    expect(await update(command, ctx({ http, commandState }))).toMatchObject({ outcome: 'transient' });
    expect(await update(command, ctx({ http, commandState, attempt: 2 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(sim.writes.privateNotes(LEGACY.booking)).toEqual(['called back']);
    expect(calls(sim).slice(1)).toEqual([`PUT ${PATH}/private_notes 200`, `GET ${PATH} 200`]);
  });

  it('a try after a lost answer whose read is answered 200 text/html (a maintenance page) sends nothing: transient, and no second note', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const commandState = new MemoryStateStore();
      const command = updateCmd({ comment: 'called back' });
      expect(await update(command, ctx({ http: losingFirstPut(504), commandState }))).toMatchObject({
        outcome: 'transient',
      });
      const http = page.before((r) => (r.method ?? 'GET') === 'GET' && r.url.endsWith(PATH));
      // Before: the page was taken for a booking without the note, and the note was added again.
      expect(await update(command, ctx({ http, commandState, attempt: 2 }))).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('BookingBug booking read answered 200 (text/html)'),
      });
      expect(page.answered).toEqual([`GET ${PATH}`]);
      expect(sim.writes.privateNotes(LEGACY.booking)).toEqual(['called back']);
    } finally {
      await page.close();
    }
  });

  it('custom fields are refused when the command is sent, and by the handler without a call', async () => {
    const { sim, ctx } = await setup();
    const data = { customFields: { '104': 'x' } };
    expect(commandUnsupported({ type: 'appointment.update', data })).toMatch(/only data.comment/);
    expect(commandUnsupported({ type: 'appointment.update', data: { comment: 'x' } })).toBeUndefined();
    expect(await update(updateCmd({ comment: 'x', ...data }), ctx())).toMatchObject({ outcome: 'permanent' });
    expect(sim.writes.log).toEqual([]);
  });
});

describe('BookingBug answers that are not what they seem', () => {
  const PATH = `/api/v1/admin/${LEGACY.company}/bookings/${LEGACY.booking}`;
  const V3 = `/api/v3/admin/${LEGACY.company}/bookings/${LEGACY.booking}`;
  const CONFIG: Config = {
    basicToken: 't'.repeat(20),
    adminApi: {
      baseUrl: 'https://bb.test',
      appId: 'app-id',
      appKey: 'app-key-0123456789',
      email: 'admin@clinic.example',
      password: 'admin-password-0123',
    },
  };
  const TOKEN = 'auth-token-abcdef0123456789';
  /** A vendor whose login answers TOKEN, then `answers` in turn. */
  const vendor =
    (...answers: VendorResponse[]) =>
    (request: VendorRequest) =>
      request.url.endsWith('/api/v1/login')
        ? { status: 201, headers: {}, body: { auth_token: TOKEN } }
        : (answers.shift() ?? { status: 500, headers: {}, body: 'no more answers' });

  it("JRNI's detail is in the failure message, after its error (it was the error only)", async () => {
    const { ctx } = await setup();
    // The simulator answers as JRNI documents a validation error: { error, detail }.
    expect(await reschedule(moveCmd({ start: 'next tuesday' }), ctx())).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug reschedule answered 400: Validation error: datetime is missing or invalid',
      vendor: { status: 400, body: { error: 'Validation error', detail: 'datetime is missing or invalid' } },
    });
  });

  it('the words are scrubbed of the login’s secrets and the token, a detail that is not text is JSON, and they are cut', async () => {
    const ctx = memoryCommandContext({
      instanceId: 'bb-words',
      config: CONFIG,
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
      vendorApi: vendor({
        status: 403,
        headers: {},
        body: {
          error: 'Forbidden',
          detail: `token ${TOKEN} (app-key-0123456789) may not act on company 50666`,
        },
      }),
    });
    const refused = await cancel(cancelCmd(), ctx);
    expect(refused).toMatchObject({
      outcome: 'permanent',
      message:
        'BookingBug cancel answered 403: Forbidden: token [redacted] ([redacted]) may not act on company 50666',
    });
    expect(
      vendorWords({
        status: 400,
        headers: {},
        body: { error: 'Validation error', detail: { datetime: ['is taken'] } },
      }),
    ).toBe('Validation error: {"datetime":["is taken"]}');
    expect(
      vendorWords({
        status: 409,
        headers: {},
        body: { error: 'No Space Left', message: 'NoSpaceLeftError' },
      }),
    ).toBe('No Space Left: NoSpaceLeftError');
    expect(vendorWords({ status: 400, headers: {}, body: { error: 'x'.repeat(500) } })).toHaveLength(200);
    expect(vendorWords({ status: 503, headers: {}, body: { error: 'down' } })).toBeUndefined();
  });

  it('a move keeps its booking id (the documented answer names it); an answer naming another is aliased', async () => {
    const { ctx } = await setup();
    // The documented Update Booking answers the booking it was sent to: no new id.
    const same = await reschedule(moveCmd({ start: '2017-03-11T10:00:00+01:00' }), ctx());
    expect(same.outcome).toBe('done');
    expect(same).not.toHaveProperty('vendorIds');
    const moved = memoryCommandContext({
      instanceId: 'bb-move',
      config: CONFIG,
      vendorIds: [LEGACY.booking],
      current: { organization: { id: LEGACY.company } },
      vendorApi: vendor({
        status: 200,
        headers: {},
        body: { id: 13477799, datetime: '2017-03-11T09:00:00+00:00', is_cancelled: false },
      }),
    });
    expect(await reschedule(moveCmd({ start: '2017-03-11T10:00:00+01:00' }), moved)).toMatchObject({
      outcome: 'done',
      vendorIds: ['13477799'],
    });
    expect(moved.vendorRequests.at(-1)).toMatchObject({ method: 'PUT', url: `https://bb.test${PATH}` });
  });

  it('a move, check-in or note answered 200 text/html (a maintenance page) is transient, not done; the next try re-reads, then sends', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const commandState = new MemoryStateStore();
      const command = moveCmd({ start: '2017-03-11T10:00:00+01:00' });
      const http = page.before((r) => r.method === 'PUT');
      // Before: done, though nothing moved.
      expect(await reschedule(command, ctx({ http, commandState }))).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('BookingBug reschedule answered 200 (text/html) with no JSON'),
      });
      expect(sim.writes.startOf(LEGACY.booking)).toBe('2017-03-10T11:30:00+00:00');
      expect(await reschedule(command, ctx({ commandState, attempt: 2 }))).toMatchObject({ outcome: 'done' });
      expect(calls(sim).slice(-2)).toEqual([`GET ${PATH} 200`, `PUT ${PATH} 200`]);
      expect(Date.parse(sim.writes.startOf(LEGACY.booking)!)).toBe(Date.parse('2017-03-11T09:00:00Z'));
      const arrived = commands['appointment.mark_arrived']!;
      expect(
        await arrived(
          { id: 'p-page', type: 'appointment.mark_arrived', subject: 'appointment/h', data: {} } as never,
          ctx({ http }),
        ),
      ).toMatchObject({ outcome: 'transient' });
      const update = commands['appointment.update']!;
      const note = {
        id: 'u-page',
        type: 'appointment.update',
        subject: 'appointment/h',
        data: { comment: 'x' },
      };
      expect(await update(note as never, ctx({ http }))).toMatchObject({ outcome: 'transient' });
      expect(page.answered).toEqual([`PUT ${PATH}`, `PUT ${V3}`, `PUT ${PATH}/private_notes`]);
    } finally {
      await page.close();
    }
  });

  it('a host without the v3 API (404 while the v1 booking reads): the check-in is refused saying so, not "404"', async () => {
    const { sim, ctx } = await setup();
    sim.writes.legacyHost = true;
    const arrived = commands['appointment.mark_arrived']!;
    const command = { id: 'p-legacy', type: 'appointment.mark_arrived', subject: 'appointment/h', data: {} };
    const result = await arrived(command as never, ctx());
    expect(result).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('this host does not serve the v3 API (a legacy BookingBug host)'),
      vendor: { status: 404 },
    });
    expect(calls(sim)).toEqual(['POST /api/v1/login 201', `PUT ${V3} 404`, `GET ${PATH} 200`]);
    // An unknown booking is still the vendor's 404.
    const unknown = await arrived(command as never, ctx({ vendorIds: ['999'] }));
    expect(unknown).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug check-in status answered 404: Not Found',
    });
  });
});

describe('BookingBug book against the simulator', () => {
  const book = commands['appointment.book']!;
  const BOOKINGS = `/api/v1/admin/${LEGACY.company}/bookings`;

  /**
   * Vendor HTTP whose booking POST times out at the hub while BookingBug is still at work: `land()`
   * carries that POST out later, as BookingBug would.
   */
  function lostBookingPost(): VendorHttp & { land(): Promise<unknown> } {
    let held: VendorRequest | undefined;
    return {
      async request(request) {
        if (request.method === 'POST' && request.url.endsWith(BOOKINGS)) {
          held = request;
          throw ConnectorError.transient('vendor API POST timed out after 10000 ms');
        }
        return fetchVendorHttp.request(request);
      },
      land: () => fetchVendorHttp.request(held!),
    };
  }
  /** The docs' New Booking sample: Microchipping (104747) with person 30553 in room 43049. */
  const DATA = {
    start: '2017-03-17T13:00:00+02:00',
    patient: { given: 'Jamie', family: 'Oliver', email: 'j.oliver@test.com', phone: '+447989898989' },
    organization: { id: LEGACY.company },
    service: { id: '104747' },
    practitioner: { id: '30553' },
    vendor: { resource_id: 43049 },
  };
  const bookCmd = (data: object = DATA, id = `b-${Math.random()}`) =>
    ({ id, type: 'appointment.book', data }) as unknown as CommandRequest<'appointment.book'>;
  const posts = (sim: BookingBugSimulator) =>
    sim.writes.log.filter((c) => c.method === 'POST' && c.path === BOOKINGS);

  it('POSTs New Booking with the ids and a new client; the booking’s id is the result', async () => {
    const { sim, ctx } = await setup();
    const result = await book(bookCmd(), ctx({ vendorIds: [], current: undefined }));
    expect(result).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    expect(calls(sim)).toEqual(['POST /api/v1/login 201', `POST ${BOOKINGS} 201`]);
    expect(sim.writes.log[1]).toMatchObject({
      appId: 'sim-app-id',
      body: {
        datetime: '2017-03-17T13:00:00+02:00',
        service_id: 104747,
        person_id: 30553,
        resource_id: 43049,
        client: {
          first_name: 'Jamie',
          last_name: 'Oliver',
          email: 'j.oliver@test.com',
          mobile: '+447989898989',
        },
      },
    });
    expect(sim.writes.startOf(result.outcome === 'done' ? result.vendorIds![0]! : '')).toBe(DATA.start);
    // An existing client by its member id (data.vendor.member_id), no client made.
    const member = await book(
      bookCmd({ ...DATA, start: '2017-03-17T14:00:00+02:00', vendor: { member_id: '2897097' } }),
      ctx({ vendorIds: [], current: undefined }),
    );
    expect(member.outcome).toBe('done');
    expect(sim.writes.log.at(-1)!.body).toEqual({
      datetime: '2017-03-17T14:00:00+02:00',
      service_id: 104747,
      person_id: 30553,
      member_id: 2897097,
    });
  });

  it('what New Booking needs is refused when the command is sent, the fields named, and by the handler without a call', async () => {
    const { sim, ctx } = await setup();
    const bare = { start: DATA.start, patient: { name: 'Jamie' } };
    expect(commandUnsupported({ type: 'appointment.book', data: bare })).toBe(
      'BookingBug books only with organization.id (the BookingBug company; or set adminApi.companyId), service.id (the BookingBug service), practitioner.id (the BookingBug person) or vendor.resource_id, vendor.member_id (an existing client), or patient.email and a name (a new client)',
    );
    // The company may come from the settings; a resource stands for a person; a member for the client.
    const config = { basicToken: 't'.repeat(20), adminApi: { ...setupAdmin, companyId: 37000 } };
    expect(
      commandUnsupported(
        {
          type: 'appointment.book',
          data: { ...bare, service: { id: '1' }, vendor: { resource_id: '2', member_id: 3 } },
        },
        config,
      ),
    ).toBeUndefined();
    expect(commandUnsupported({ type: 'appointment.book', data: DATA })).toBeUndefined();
    // A person BookingBug named without an id has a `name:` id in the hub's events: no person id.
    expect(
      commandUnsupported({
        type: 'appointment.book',
        data: { ...DATA, practitioner: { id: 'name:Waqas' }, vendor: {} },
      }),
    ).toBe('BookingBug books only with practitioner.id (the BookingBug person) or vendor.resource_id');
    expect(await book(bookCmd(bare), ctx({ vendorIds: [] }))).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('BookingBug books only with'),
    });
    expect(sim.writes.log).toEqual([]);
  });

  it('a taken time is permanent with JRNI’s words; nothing is noted as sent', async () => {
    const { sim, ctx } = await setup();
    sim.writes.occupy(DATA.start);
    const c = ctx({ vendorIds: [] });
    expect(await book(bookCmd(), c)).toMatchObject({
      outcome: 'permanent',
      message: 'BookingBug book answered 409: No Space Left: NoSpaceLeftError',
      vendor: { status: 409 },
    });
    expect(await c.commandState.get('bookingbug:book-sent')).toBeUndefined();
  });

  it('a try after one whose answer was lost finds the booking it made and books nothing again', async () => {
    const { sim, ctx } = await setup();
    const command = bookCmd();
    const commandState = new MemoryStateStore();
    // The POST reaches BookingBug, its answer does not come back.
    const losing: VendorHttp = {
      async request(request) {
        const res = await fetchVendorHttp.request(request);
        if (request.method === 'POST' && request.url.endsWith(BOOKINGS)) {
          throw ConnectorError.transient('vendor API POST timed out after 10000 ms');
        }
        return res;
      },
    };
    await expect(book(command, ctx({ vendorIds: [], http: losing, commandState }))).rejects.toThrow(
      'timed out',
    );
    const again = await book(command, ctx({ vendorIds: [], commandState, attempt: 2 }));
    expect(again).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [expect.stringMatching(/^\d+$/)],
    });
    // The one booking the lost POST made, at the command's start.
    expect(posts(sim)).toHaveLength(1);
    expect(sim.writes.startOf(again.outcome === 'done' ? again.vendorIds![0]! : '')).toBe(DATA.start);
    const lookup = sim.writes.log.at(-1)!;
    expect(lookup).toMatchObject({ method: 'GET', path: BOOKINGS, status: 200 });
    // The same slot booked by someone else (another service) is not the one this command made.
    const other = await book(
      bookCmd({ ...DATA, service: { id: '104748' } }, 'b-other'),
      ctx({ vendorIds: [], commandState: new MemoryStateStore(), attempt: 1 }),
    );
    expect(other.outcome).toBe('done');
  });

  it('a booking answered 200 text/html (a maintenance page) is transient, not done; the next try looks, then books', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const command = bookCmd();
      const commandState = new MemoryStateStore();
      const http = page.before((r) => r.method === 'POST' && r.url.endsWith(BOOKINGS));
      expect(await book(command, ctx({ vendorIds: [], http, commandState }))).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('BookingBug book answered 200 (text/html) with no JSON'),
        vendor: { status: 200 },
      });
      expect(page.answered).toEqual([`POST ${BOOKINGS}`]);
      // Not listed yet: the page's POST may still land, so nothing goes out for two minutes.
      expect(await book(command, ctx({ vendorIds: [], commandState, attempt: 2 }))).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('it may still land'),
      });
      expect(posts(sim)).toHaveLength(0);
      // The page booked nothing: the lookup finds nothing then, and the booking goes out.
      await commandState.set('bookingbug:book-sent', { at: new Date(Date.now() - 130_000).toISOString() });
      const again = await book(command, ctx({ vendorIds: [], commandState, attempt: 3 }));
      expect(again).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
      expect(again).not.toHaveProperty('alreadyDone');
      expect(calls(sim).slice(1)).toEqual([
        `GET ${BOOKINGS} 200`,
        `GET ${BOOKINGS} 200`,
        `POST ${BOOKINGS} 201`,
      ]);
    } finally {
      await page.close();
    }
  });

  it('a try that sends again keeps the first send’s time, so the lookup never leaves out what that send made', async () => {
    const { sim, ctx } = await setup();
    const commandState = new MemoryStateStore();
    const first = '2026-01-05T10:00:00.000Z';
    await commandState.set('bookingbug:book-sent', { at: first });
    expect(await book(bookCmd(), ctx({ vendorIds: [], commandState, attempt: 2 }))).toMatchObject({
      outcome: 'done',
    });
    expect(calls(sim).slice(1)).toEqual([`GET ${BOOKINGS} 200`, `POST ${BOOKINGS} 201`]);
    expect(await commandState.get('bookingbug:book-sent')).toEqual({ at: first, last: expect.any(String) });
  });

  it('a booking sent again and answered 429 keeps the first send’s mark: the next try looks before it books', async () => {
    const { sim, ctx } = await setup();
    const commandState = new MemoryStateStore();
    const old = new Date(Date.now() - 130_000).toISOString();
    await commandState.set('bookingbug:book-sent', { at: old, last: old });
    // The lookup lists nothing; the POST sent again is turned away, which says nothing of the first.
    const limited: VendorHttp = {
      async request(request) {
        if (request.method === 'POST' && request.url.endsWith(BOOKINGS)) {
          return { status: 429, headers: { 'retry-after': '5' }, body: '' };
        }
        return fetchVendorHttp.request(request);
      },
    };
    const again = await book(bookCmd(), ctx({ vendorIds: [], http: limited, commandState, attempt: 2 }));
    expect(again.outcome).toBe('transient');
    expect(await commandState.get('bookingbug:book-sent')).toEqual({ at: old, last: old });
    expect(posts(sim)).toHaveLength(0);
  });

  it('a booking whose lost POST lands at BookingBug after the next try looked is not sent again: a later try finds it, booked once', async () => {
    // The POST goes out; BookingBug is still at work when the hub stops waiting (its 10 s timeout)
    // and when the retry 1 s later looks. That lookup found nothing and booked again before: two
    // bookings once the first landed.
    const { sim, ctx } = await setup();
    const command = bookCmd();
    const commandState = new MemoryStateStore();
    const slow = lostBookingPost();
    await expect(book(command, ctx({ vendorIds: [], http: slow, commandState }))).rejects.toThrow(
      'timed out',
    );
    expect(await book(command, ctx({ vendorIds: [], commandState, attempt: 2 }))).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('it may still land'),
    });
    expect(posts(sim)).toHaveLength(0);
    await slow.land(); // BookingBug carries the first POST out
    const again = await book(command, ctx({ vendorIds: [], commandState, attempt: 3 }));
    expect(again).toMatchObject({ outcome: 'done', alreadyDone: true });
    expect(posts(sim)).toHaveLength(1);
  });

  it('a booking sent again after the wait and refused as taken (409) is looked for once more: the earlier POST landed late, booked once', async () => {
    const { sim, ctx } = await setup();
    const command = bookCmd();
    const commandState = new MemoryStateStore();
    const slow = lostBookingPost();
    await expect(book(command, ctx({ vendorIds: [], http: slow, commandState }))).rejects.toThrow(
      'timed out',
    );
    const old = new Date(Date.now() - 130_000).toISOString();
    await commandState.set('bookingbug:book-sent', { at: old, last: old });
    // The lookup finds nothing; the first POST lands just before the one sent again, which finds
    // the time taken.
    const landing: VendorHttp = {
      async request(request) {
        if (request.method === 'POST' && request.url.endsWith(BOOKINGS)) {
          await slow.land();
          sim.writes.occupy(DATA.start);
        }
        return fetchVendorHttp.request(request);
      },
    };
    const again = await book(command, ctx({ vendorIds: [], http: landing, commandState, attempt: 2 }));
    expect(again).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [expect.stringMatching(/^\d+$/)],
    });
    expect(
      sim.writes.log.filter((c) => c.method === 'POST' && c.path === BOOKINGS).map((c) => c.status),
    ).toEqual([201, 409]);
  });

  it('a booking sent again and refused (409), whose second lookup fails, keeps the earlier send’s note and is transient: the next try finds the booking', async () => {
    const { sim, ctx } = await setup();
    const command = bookCmd();
    const commandState = new MemoryStateStore();
    const slow = lostBookingPost();
    await expect(book(command, ctx({ vendorIds: [], http: slow, commandState }))).rejects.toThrow(
      'timed out',
    );
    const old = new Date(Date.now() - 130_000).toISOString();
    await commandState.set('bookingbug:book-sent', { at: old, last: old });
    // The first POST lands just before the one sent again (refused as taken), and the lookup
    // after the refusal meets the gateway's 503.
    let refused = false;
    const landing: VendorHttp = {
      async request(request) {
        if (request.method === 'POST' && request.url.endsWith(BOOKINGS)) {
          await slow.land();
          sim.writes.occupy(DATA.start);
          refused = true;
        } else if (refused && request.method === 'GET') {
          return { status: 503, headers: { 'retry-after': '7' }, body: 'upstream connect error' };
        }
        return fetchVendorHttp.request(request);
      },
    };
    const again = await book(command, ctx({ vendorIds: [], http: landing, commandState, attempt: 2 }));
    expect(again.outcome).toBe('transient');
    expect(await commandState.get('bookingbug:book-sent')).toEqual({ at: old, last: old });
    expect(await book(command, ctx({ vendorIds: [], commandState, attempt: 3 }))).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [expect.stringMatching(/^\d+$/)],
    });
    expect(
      sim.writes.log.filter((c) => c.method === 'POST' && c.path === BOOKINGS).map((c) => c.status),
    ).toEqual([201, 409]);
  });

  it('the lookup pages through the list, reads an empty HAL list without _embedded, and never books blind past its pages', async () => {
    const old = new Date(Date.now() - 300_000).toISOString();
    const other = (i: number) => ({
      id: 9000 + i,
      datetime: '2017-03-17T09:00:00+00:00',
      service_id: 104747,
      person_id: 30553,
      resource_id: 43049,
      is_cancelled: false,
    });
    const mine = { ...other(0), id: 777, datetime: DATA.start };
    /** BookingBug with a login that works, a lookup answering `list(page)`, and a booking that makes 4242. */
    const answering = (list: (page: number) => JsonObject) => {
      const commandState = new MemoryStateStore();
      const c = memoryCommandContext({
        instanceId: `bb-pages-${Math.random()}`,
        config: { basicToken: 't'.repeat(20), adminApi: setupAdmin },
        commandState,
        vendorApi: (request): VendorResponse => {
          if (request.url.endsWith('/login'))
            return { status: 201, headers: {}, body: { auth_token: 'tok-0123456789' } };
          if (request.method === 'POST') return { status: 201, headers: {}, body: { id: 4242 } };
          const page = Number(new URL(request.url).searchParams.get('page') ?? 1);
          return { status: 200, headers: {}, body: list(page) };
        },
      });
      return { c, commandState };
    };
    const lookups = (c: { vendorRequests: { method?: string; url: string }[] }) =>
      c.vendorRequests
        .filter((r) => (r.method ?? 'GET') === 'GET')
        .map((r) => new URL(r.url).searchParams.get('page'));
    const sends = (c: { vendorRequests: { method?: string; url: string }[] }) =>
      c.vendorRequests.filter((r) => r.method === 'POST' && r.url.endsWith(BOOKINGS));

    // A busy day: the booking the lost try made is on page 2.
    const busy = answering((page) => ({
      total_entries: 150,
      _embedded: {
        bookings: page === 1 ? Array.from({ length: 100 }, (_, i) => other(i + 1)) : [mine],
      },
    }));
    await busy.commandState.set('bookingbug:book-sent', { at: old, last: old });
    expect(await book(bookCmd(), busy.c)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['777'],
    });
    expect(lookups(busy.c)).toEqual(['1', '2']);
    expect(sends(busy.c)).toHaveLength(0);

    // An empty list whose HAL answer leaves `_embedded` out: nothing found, and the booking goes out.
    const empty = answering(() => ({ total_entries: 0 }));
    await empty.commandState.set('bookingbug:book-sent', { at: old, last: old });
    expect(await book(bookCmd(), empty.c)).toMatchObject({ outcome: 'done', vendorIds: ['4242'] });
    expect(sends(empty.c)).toHaveLength(1);

    // More than the lookup reads, none of them the booking: it fails rather than book blind.
    const endless = answering(() => ({
      total_entries: 10_000,
      _embedded: { bookings: Array.from({ length: 100 }, (_, i) => other(i + 1)) },
    }));
    await endless.commandState.set('bookingbug:book-sent', { at: old, last: old });
    expect(await book(bookCmd(), endless.c)).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('not sent again, so nothing is booked twice'),
    });
    expect(lookups(endless.c)).toHaveLength(5); // LOOKUP_MAX_PAGES
    expect(sends(endless.c)).toHaveLength(0);
  });

  it('while the lookup fails nothing is sent; a refused lookup fails for good rather than book blind', async () => {
    const { sim, ctx } = await setup();
    const commandState = new MemoryStateStore();
    await commandState.set('bookingbug:book-sent', { at: new Date().toISOString() });
    sim.writes.failNext(1, 503); // the login
    expect(await book(bookCmd(), ctx({ vendorIds: [], commandState, attempt: 2 }))).toMatchObject({
      outcome: 'transient',
    });
    expect(posts(sim)).toHaveLength(0);
    /** BookingBug with a login that works and a lookup that answers `status`. */
    const lookupAnswering = (status: number) =>
      memoryCommandContext({
        instanceId: `bb-lookup-${status}`,
        config: { basicToken: 't'.repeat(20), adminApi: setupAdmin },
        commandState,
        vendorApi: (request): VendorResponse =>
          request.url.endsWith('/login')
            ? { status: 201, headers: {}, body: { auth_token: 'tok-0123456789' } }
            : { status, headers: {}, body: { error: 'Lookup failed' } },
      });
    const failing = lookupAnswering(502);
    expect(await book(bookCmd(), failing)).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('looked up again on the next try'),
    });
    const refused = lookupAnswering(403);
    expect(await book(bookCmd(), refused)).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('not sent again, so nothing is booked twice'),
    });
    for (const c of [failing, refused])
      expect(c.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['POST', 'GET']);
  });
});

describe('BookingBug check-in status set without a change', () => {
  const presence = (type: 'appointment.mark_arrived' | 'appointment.mark_no_show') =>
    ({ id: `p-${Math.random()}`, type, subject: 'appointment/h', data: {} }) as unknown as CommandRequest<
      'appointment.mark_arrived' | 'appointment.mark_no_show'
    >;

  it('unchanged when the hub knows the booking in the status the check-in status gives before the call; else not', async () => {
    const { ctx } = await setup();
    const known = (status?: string) => ({
      current: { organization: { id: LEGACY.company }, ...(status ? { status } : {}) },
    });
    for (const [type, already, otherwise] of [
      ['appointment.mark_arrived', 'arrived', 'noshow'],
      ['appointment.mark_no_show', 'noshow', 'arrived'],
    ] as const) {
      const handler = commands[type]!;
      expect(await handler(presence(type) as never, ctx(known(already)))).toMatchObject({
        outcome: 'done',
        unchanged: true,
      });
      for (const status of [otherwise, undefined]) {
        const changed = await handler(presence(type) as never, ctx(known(status)));
        expect(changed.outcome).toBe('done');
        expect('unchanged' in changed).toBe(false);
      }
    }
  });
});
