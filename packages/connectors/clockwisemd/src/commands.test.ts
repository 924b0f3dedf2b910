import {
  type CommandContext,
  type CommandRequest,
  ConnectorError,
  isJsonObject,
  type JsonValue,
  type VendorHttp,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import {
  capturingLogger,
  describeCommandConformance,
  fetchVendorHttp,
  MemoryStateStore,
  memoryNormalizeContext,
} from '@switchyard/testing';
import { startMaintenancePage } from '@switchyard/testing/simulator-kit/maintenance-page';
import { afterEach, describe, expect, it } from 'vitest';
import { CREATE_SETTLE_MS, commands } from './commands.ts';
import type { Config } from './config.ts';
import { clockwisemdConnector } from './index.ts';
import { cancelIntentKey, normalize } from './normalize.ts';
import { ClockwiseSimulator } from './simulator.ts';

const sims: ClockwiseSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function setup() {
  const sim = new ClockwiseSimulator({ apiKey: 'cw-api-key' });
  sims.push(sim);
  await sim.start();
  sim.writes.echoes = false;
  sim.setAppointment({ id: 12345, first_name: 'Maria', extra_fields: [] });
  const ctx = (over: Partial<CommandContext<Config>> = {}): CommandContext<Config> => ({
    instanceId: 'cw',
    config: {
      auth: { mode: 'either', key: 'k'.repeat(24) },
      apiBaseUrl: sim.apiBaseUrl,
      apiKey: 'cw-api-key',
    },
    http: fetchVendorHttp,
    vendorIds: ['12345'],
    state: new MemoryStateStore(),
    commandState: new MemoryStateStore(),
    logger: capturingLogger(),
    attempt: 1,
    ...over,
  });
  return { sim, ctx };
}

const cmd = <T extends CommandRequest['type']>(type: T, data: object) =>
  ({ id: `c-${Math.random()}`, type, subject: 'appointment/h', data }) as unknown as CommandRequest<T>;

// The floor every connector's commands meet: 503 and 429 transient (Retry-After kept), 422 permanent.
describeCommandConformance({
  connector: clockwisemdConnector,
  config: {
    auth: { mode: 'either', key: 'k'.repeat(24) },
    apiBaseUrl: 'https://cw.test/v1',
    apiKey: 'cw-api-key',
  },
  samples: {
    'appointment.book': {
      data: {
        start: '2026-03-10T11:30:00+01:00',
        patient: { given: 'Maria', family: 'Lopez', phone: '+15555550100' },
        location: { id: '1' },
        service: { id: '2' },
      },
    },
    'appointment.cancel': { data: {}, vendorIds: ['12345'] },
    'appointment.update': { data: { customFields: { '7': 'yes' } }, vendorIds: ['12345'] },
  },
});

describe('Clockwise.MD commands against the simulator', () => {
  it('cancel: PUT remove with the Authtoken; a second remove is the vendor refusal passed through', async () => {
    const { sim, ctx } = await setup();
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx())).toMatchObject({
      outcome: 'done',
    });
    expect(sim.writes.log[0]).toMatchObject({
      method: 'PUT',
      path: '/v1/appointments/12345/remove',
      status: 200,
    });
    expect(sim.served.at(-1)).toMatchObject({ authtoken: 'cw-api-key' });
    expect(await commands['appointment.cancel']!(cmd('appointment.cancel', {}), ctx())).toMatchObject({
      outcome: 'permanent',
      vendor: { status: 422, body: { error: 'Appointment already removed' } },
    });
  });

  it('cancel: records that the hub asked (so the echoed remove is a cancellation), takes it back when refused, and a refusal after its own unanswered remove is already done', async () => {
    const { sim, ctx } = await setup();
    const c = ctx();
    const command = cmd('appointment.cancel', {});
    sim.writes.loseAnswers(1, 502);
    const first = await commands['appointment.cancel']!(command, c);
    expect(first.outcome).toBe('transient');
    expect(await c.state.get(cancelIntentKey('12345'))).toMatchObject({ command: command.id });
    // The next try finds it removed (the vendor refuses a second remove): done, already so.
    const second = await commands['appointment.cancel']!(command, c);
    expect(second).toMatchObject({ outcome: 'done', alreadyDone: true, vendor: { status: 422 } });
    // Another command's cancel refused outright: no remove will come, the record is taken back.
    const other = ctx();
    const refused = await commands['appointment.cancel']!(cmd('appointment.cancel', {}), other);
    expect(refused.outcome).toBe('permanent');
    expect(await other.state.get(cancelIntentKey('12345'))).toBeUndefined();
  });

  it('update: PUT custom_fields; a comment is refused before any call; 503 with Retry-After is transient', async () => {
    const { sim, ctx } = await setup();
    expect(
      await commands['appointment.update']!(
        cmd('appointment.update', { customFields: { '104': 'verified' } }),
        ctx(),
      ),
    ).toMatchObject({ outcome: 'done' });
    expect(sim.writes.log[0]).toMatchObject({ body: { custom_fields: { '104': 'verified' } }, status: 200 });
    expect(
      await commands['appointment.update']!(cmd('appointment.update', { comment: 'x' }), ctx()),
    ).toMatchObject({
      outcome: 'permanent',
    });
    sim.failApi(1, { status: 503, retryAfterSeconds: 3 });
    expect(
      await commands['appointment.update']!(
        cmd('appointment.update', { customFields: { '104': 'y' } }),
        ctx(),
      ),
    ).toMatchObject({ outcome: 'transient', retryAfterMs: 3000 });
    expect(sim.writes.log).toHaveLength(1);
  });

  it("a refusal's message says the vendor's reason, from error, message or errors; a page's HTML is left out", async () => {
    const { sim, ctx } = await setup();
    const update = () => cmd('appointment.update', { customFields: { '104': 'y' } });
    // Before: 'Clockwise.MD update answered 422', the reason only in the kept body.
    const answers: Array<[unknown, string]> = [
      [
        { error: 'custom field 104 is read-only' },
        'Clockwise.MD update answered 422: custom field 104 is read-only',
      ],
      [{ message: 'Invalid value' }, 'Clockwise.MD update answered 422: Invalid value'],
      [
        { errors: { custom_fields: ['104 is not a field', 'bad'] } },
        'Clockwise.MD update answered 422: custom_fields 104 is not a field; bad',
      ],
    ];
    for (const [body, message] of answers) {
      sim.failApi(1, { status: 422, body });
      expect(await commands['appointment.update']!(update(), ctx())).toEqual({
        outcome: 'permanent',
        message,
        vendor: { status: 422, body },
      });
    }
    const page = await commands['appointment.update']!(
      update(),
      ctx({ http: scripted([[403, '<html><body>Forbidden</body></html>']]) }),
    );
    expect(page).toMatchObject({ outcome: 'permanent', message: 'Clockwise.MD update answered 403' });
    // An unknown appointment's remove, and a create the vendor refused.
    const gone = await commands['appointment.cancel']!(
      cmd('appointment.cancel', {}),
      ctx({ vendorIds: ['12399'] }),
    );
    expect(gone).toMatchObject({ message: 'Clockwise.MD remove answered 404: Appointment not found' });
    const refused = await commands['appointment.book']!(
      cmd('appointment.book', { start: '2026-03-10T11:30:00-05:00', patient: {}, location: { id: '77' } }),
      ctx({ vendorIds: [] }),
    );
    expect(refused).toMatchObject({
      outcome: 'permanent',
      message: 'Clockwise.MD create answered 422: hospital_id, apt_time and first_name are required',
    });
  });

  it('a remove or an update answered 200 text/html (a maintenance page) is transient, not done; the next try carries it out once', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const http = page.before((r) => r.method === 'PUT');
      const c = ctx();
      const command = cmd('appointment.cancel', {});
      // Before: done, the appointment still on the queue and no remove webhook to come.
      expect(await commands['appointment.cancel']!(command, { ...c, http })).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('Clockwise.MD remove answered 200 (text/html) with an HTML page'),
        vendor: { status: 200 },
      });
      // Whether a page answered in front of a remove carried out is unknown: the record stays.
      expect(await c.state.get(cancelIntentKey('12345'))).toMatchObject({ command: command.id });
      expect(await commands['appointment.cancel']!(command, { ...c, attempt: 2 })).toMatchObject({
        outcome: 'done',
        vendor: { status: 200 },
      });
      const update = cmd('appointment.update', { customFields: { '104': 'verified' } });
      expect(await commands['appointment.update']!(update, ctx({ http }))).toMatchObject({
        outcome: 'transient',
      });
      expect(await commands['appointment.update']!(update, ctx({ attempt: 2 }))).toMatchObject({
        outcome: 'done',
      });
      expect(page.answered).toEqual([
        'PUT /v1/appointments/12345/remove',
        'PUT /v1/appointments/12345/update',
      ]);
      expect(sim.writes.log.map((w) => `${w.path} ${w.status}`)).toEqual([
        '/v1/appointments/12345/remove 200',
        '/v1/appointments/12345/update 200',
      ]);
      // An empty or a text 2xx is the vendor's (its write answers are unverified): done.
      for (const body of ['', 'OK']) {
        const done = await commands['appointment.update']!(update, ctx({ http: scripted([[200, body]]) }));
        expect(done, JSON.stringify(body)).toMatchObject({ outcome: 'done' });
      }
    } finally {
      await page.close();
    }
  });

  it('honours Retry-After given as an HTTP date, as well as in seconds', async () => {
    const { ctx } = await setup();
    const at = new Date(Date.now() + 90_000).toUTCString();
    const c = ctx({
      http: scripted([
        [429, {}, { 'retry-after': at }],
        [503, {}, { 'retry-after': '4' }],
      ]),
    });
    const update = cmd('appointment.update', { customFields: { '104': 'y' } });
    const limited = await commands['appointment.update']!(update, c);
    expect(limited.outcome).toBe('transient');
    // The date has one-second precision.
    expect(limited.outcome === 'transient' && limited.retryAfterMs).toBeGreaterThan(88_000);
    expect(limited.outcome === 'transient' && limited.retryAfterMs).toBeLessThanOrEqual(90_000);
    expect(await commands['appointment.update']!(update, c)).toMatchObject({ retryAfterMs: 4000 });
  });

  it('refuses an update with a comment up front (the hub answers 422 before queuing it), custom fields alone not', () => {
    const config = { auth: { mode: 'either', key: 'k'.repeat(24) }, apiKey: 'cw-api-key' } as Config;
    expect(
      clockwisemdConnector.commandUnsupported?.(
        { type: 'appointment.update', data: { comment: 'x', customFields: { '104': 'y' } } },
        config,
      ),
    ).toMatch(/no writable comment/);
    expect(
      clockwisemdConnector.commandUnsupported?.(
        { type: 'appointment.update', data: { customFields: { '104': 'y' } } },
        config,
      ),
    ).toBeUndefined();
    expect(
      clockwisemdConnector.commandUnsupported?.({ type: 'appointment.cancel', data: {} }, config),
    ).toBeUndefined();
    // A booking without its hospital: refused up front too (accepted before, then failed unsent).
    const booking = { start: '2026-03-10T11:30:00-05:00', patient: { given: 'Maria' } };
    expect(
      clockwisemdConnector.commandUnsupported?.({ type: 'appointment.book', data: booking }, config),
    ).toMatch(/needs location\.id/);
    expect(
      clockwisemdConnector.commandUnsupported?.(
        { type: 'appointment.book', data: { ...booking, location: { id: '1' } } },
        config,
      ),
    ).toBeUndefined();
  });

  it("refuses a book without the patient's first name up front (Clockwise.MD's create requires first_name), naming the field", () => {
    const config = { auth: { mode: 'either', key: 'k'.repeat(24) }, apiKey: 'cw-api-key' } as Config;
    const unsupported = (data: CommandRequest<'appointment.book'>['data']) =>
      clockwisemdConnector.commandUnsupported?.({ type: 'appointment.book', data }, config);
    const start = '2026-03-10T11:30:00-05:00';
    // Before: accepted (202), sent, and refused by the vendor's 422 "… first_name are required".
    expect(unsupported({ start, patient: { family: 'Lopez' }, location: { id: '77' } })).toBe(
      'Clockwise.MD needs patient.given or patient.name (first_name) to book',
    );
    expect(unsupported({ start, patient: { given: '' }, location: { id: '77' } })).toMatch(/patient\.given/);
    expect(unsupported({ start, patient: {} })).toBe(
      'Clockwise.MD needs location.id (the hospital id), patient.given or patient.name (first_name) to book',
    );
    expect(unsupported({ start, patient: { name: 'Maria' }, location: { id: '77' } })).toBeUndefined();
    expect(unsupported({ start, patient: { given: 'Maria' }, location: { id: '77' } })).toBeUndefined();
  });

  it('book: POST create with form fields, the new id returned; missing fields are the vendor 422', async () => {
    const { sim, ctx } = await setup();
    const r = await commands['appointment.book']!(
      {
        id: 'b1',
        type: 'appointment.book',
        data: {
          start: '2026-03-10T11:30:00-05:00',
          patient: { given: 'Maria', family: 'Lopez', phone: '5551234', isReturning: true },
          location: { id: '77' },
          service: { id: '9' },
        },
      },
      ctx({ vendorIds: [] }),
    );
    expect(r).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    expect(sim.writes.log[0]!.body).toEqual({
      hospital_id: '77',
      apt_time: '2026-03-10T11:30:00-05:00',
      type: 'online',
      first_name: 'Maria',
      last_name: 'Lopez',
      phone_number: '5551234',
      reason_id: '9',
      is_new_patient: 'false',
    });
    const refused = await commands['appointment.book']!(
      {
        id: 'b2',
        type: 'appointment.book',
        data: { start: '2026-03-10T11:30:00-05:00', patient: {}, location: { id: '77' } },
      },
      ctx({ vendorIds: [] }),
    );
    expect(refused).toMatchObject({ outcome: 'permanent', vendor: { status: 422 } });
  });
});

/**
 * A VendorHttp that answers from a script, one entry a call: a status with an optional body, or
 * headers, or `'lost'` for a call that got no answer (the hub's VendorHttp throws a transient ConnectorError).
 */
function scripted(
  answers: Array<number | [number, JsonValue] | [number, JsonValue, Record<string, string>] | 'lost'>,
): VendorHttp & { urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    async request(request: VendorRequest): Promise<VendorResponse> {
      urls.push(`${request.method} ${request.url}`);
      const next = answers.shift();
      if (next === undefined) throw new Error(`unscripted call ${request.method} ${request.url}`);
      if (next === 'lost') throw ConnectorError.transient('vendor API PUT timed out after 10000 ms');
      const [status, body, headers = {}] = typeof next === 'number' ? [next, {}] : next;
      return { status, headers, body };
    },
  };
}

describe('Clockwise.MD cancel: a refusal is already done only after its own unanswered remove', () => {
  const cancel = commands['appointment.cancel']!;
  const REMOVE_SENT = 'clockwisemd:remove-sent';

  it("a 503 with Retry-After (a proxy's, after Clockwise.MD removed it) keeps the mark: the next try's refusal is already done", async () => {
    const { sim, ctx } = await setup();
    const c = ctx();
    const command = cmd('appointment.cancel', {});
    sim.writes.loseAnswers(1, 503, 1);
    expect(await cancel(command, c)).toMatchObject({ outcome: 'transient', vendor: { status: 503 } });
    expect(await c.commandState.get(REMOVE_SENT)).toBe(true);
    // Before: the 503 with Retry-After was taken as "nothing done", the 422 as the vendor's refusal.
    expect(await cancel(command, { ...c, attempt: 2 })).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 422 },
    });
    expect(await c.commandState.get(REMOVE_SENT)).toBeUndefined();
  });

  it("a bare 503 after Clockwise.MD removed it (a proxy's) keeps the mark and the record: the next try's refusal is already done", async () => {
    const { sim, ctx } = await setup();
    const c = ctx();
    const command = cmd('appointment.cancel', {});
    sim.writes.loseAnswers(1, 503);
    expect(await cancel(command, c)).toMatchObject({ outcome: 'transient', vendor: { status: 503 } });
    // Before: both taken back, so the remove webhook read as a no-show and the next try failed.
    expect(await c.state.get(cancelIntentKey('12345'))).toMatchObject({ command: command.id });
    expect(await cancel(command, { ...c, attempt: 2 })).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 422 },
    });
    expect(sim.writes.log.map((w) => `${w.status} ${w.lostStatus ?? ''}`.trim())).toEqual(['503 200', '422']);
  });

  it('422 twice, the second time on a manual retry (same command state): fails both times', async () => {
    const { ctx } = await setup();
    const refusal: [number, JsonValue] = [422, { error: 'Patient already discharged' }];
    const http = scripted([refusal, refusal]);
    const c = ctx({ http });
    const command = cmd('appointment.cancel', {});
    expect(await cancel(command, c)).toMatchObject({ outcome: 'permanent', vendor: { status: 422 } });
    // An operator's retry: a fresh set of tries, the command's state kept.
    const retried = await cancel(command, { ...c, attempt: 1 });
    expect(retried).toMatchObject({
      outcome: 'permanent',
      vendor: { status: 422, body: { error: 'Patient already discharged' } },
    });
    expect(http.urls).toHaveLength(2);
    expect(await c.commandState.get(REMOVE_SENT)).toBeUndefined();
    expect(await c.state.get(cancelIntentKey('12345'))).toBeUndefined();
  });

  it('no answer, then 503, then 422: the unanswered remove still counts (a 503 says nothing of it)', async () => {
    const { ctx } = await setup();
    const c = ctx({ http: scripted(['lost', 503, [422, { error: 'Appointment already removed' }]]) });
    const command = cmd('appointment.cancel', {});
    await expect(cancel(command, c)).rejects.toThrow(/timed out/);
    expect(await c.commandState.get(REMOVE_SENT)).toBe(true);
    expect(await cancel(command, { ...c, attempt: 2 })).toMatchObject({ outcome: 'transient' });
    expect(await c.state.get(cancelIntentKey('12345'))).toMatchObject({ command: command.id });
    expect(await cancel(command, { ...c, attempt: 3 })).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 422 },
    });
    expect(await c.commandState.get(REMOVE_SENT)).toBeUndefined();
  });

  it('a key refused (401) after an unanswered remove fails, and keeps the mark for a retry once the key is fixed', async () => {
    const { ctx } = await setup();
    const c = ctx({ http: scripted(['lost', 401, 422]) });
    const command = cmd('appointment.cancel', {});
    await expect(cancel(command, c)).rejects.toThrow();
    expect(await cancel(command, { ...c, attempt: 2 })).toMatchObject({ outcome: 'permanent' });
    expect(await cancel(command, { ...c, attempt: 1 })).toMatchObject({ outcome: 'done', alreadyDone: true });
  });

  it('does not ask again once the echo of its unanswered remove took the record', async () => {
    const { ctx } = await setup();
    const c = ctx({ http: scripted(['lost', 422]) });
    const command = cmd('appointment.cancel', {});
    await expect(cancel(command, c)).rejects.toThrow();
    // The vendor did remove it: normalizing its `remove` webhook took the record.
    await c.state.delete(cancelIntentKey('12345'));
    expect(await cancel(command, { ...c, attempt: 2 })).toMatchObject({ outcome: 'done', alreadyDone: true });
    // A later remove by staff (after an undo_remove) is not taken for this command's cancellation.
    expect(await c.state.get(cancelIntentKey('12345'))).toBeUndefined();
  });
});

describe('Clockwise.MD create, which has no idempotency key', () => {
  const data = {
    start: '2026-03-10T11:30:00-05:00',
    patient: { given: 'Maria', family: 'Lopez', phone: '5551234' },
    location: { id: '77' },
  };
  const book = (id: string) =>
    ({ id, type: 'appointment.book', data }) as unknown as CommandRequest<'appointment.book'>;
  const creates = (sim: ClockwiseSimulator) =>
    sim.writes.log.filter((w) => w.path === '/v1/appointments/create');

  /** The create's `sent` mark, dated past {@link CREATE_SETTLE_MS}: its create webhook is no longer awaited. */
  const settled = async (c: CommandContext<Config>, id: string) =>
    c.commandState.set(`clockwisemd:command:${id}`, {
      sent: { at: new Date(Date.now() - CREATE_SETTLE_MS - 1000).toISOString() },
    });

  /** Normalizes the `create` webhook of appointment `id` with the command's instance state, as the hub does. */
  const createWebhook = async (c: CommandContext<Config>, id: string) => {
    const n = memoryNormalizeContext<Config>({
      instanceId: 'cw',
      config: c.config,
      state: c.state as MemoryStateStore,
      vendorApi: (req) => fetchVendorHttp.request(req),
    });
    return normalize(
      {
        type: 'create',
        dedupeKey: `create-${id}`,
        orderingKey: `appointment:${id}`,
        payload: { appointment_id: Number(id), event_type: 'create' },
      },
      n,
    );
  };

  for (const [lost, retryAfter] of [
    [502, undefined],
    [503, undefined],
    [504, undefined],
    [503, 1],
  ] as const) {
    it(`an answer lost after the create (${lost}${retryAfter ? ' with Retry-After' : ''}, a proxy's) is not created again: the next try answers the appointment its create webhook named`, async () => {
      const { sim, ctx } = await setup();
      const c = ctx({ vendorIds: [] });
      const id = `cw-lost-${lost}-${retryAfter}`;
      sim.writes.loseAnswers(1, lost, retryAfter);
      expect(await commands['appointment.book']!(book(id), c)).toMatchObject({
        outcome: 'transient',
        vendor: { status: lost },
        ...(retryAfter ? { retryAfterMs: retryAfter * 1000 } : {}),
      });
      // Before the webhook: looked for again, never created again.
      expect(await commands['appointment.book']!(book(id), { ...c, attempt: 2 })).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('no create webhook has named it yet'),
      });
      const appointment = creates(sim)[0]!.id!;
      await createWebhook(c, appointment);
      // Before (a 503 with Retry-After): created again on the second try, two appointments.
      expect(await commands['appointment.book']!(book(id), { ...c, attempt: 3 })).toEqual({
        outcome: 'done',
        alreadyDone: true,
        vendorIds: [appointment],
      });
      expect(await commands['appointment.book']!(book(id), { ...c, attempt: 4 })).toEqual({
        outcome: 'done',
        vendorIds: [appointment],
      });
      expect(creates(sim).map((w) => `${w.status} ${w.lostStatus}`)).toEqual([`${lost} 200`]);
      // Nothing left behind in the instance state.
      expect((c.state as MemoryStateStore).values.size).toBe(1);
    });
  }

  it('a create whose webhook never names it ends, after the wait, as outcome unknown: not sent again', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    sim.writes.loseAnswers(1, 503, 1);
    expect(await commands['appointment.book']!(book('cw-silent'), c)).toMatchObject({ outcome: 'transient' });
    await settled(c, 'cw-silent');
    const again = await commands['appointment.book']!(book('cw-silent'), { ...c, attempt: 2 });
    expect(again).toMatchObject({ outcome: 'permanent', message: expect.stringContaining('not sent again') });
    expect(creates(sim)).toHaveLength(1);
    expect((c.state as MemoryStateStore).values.size).toBe(0);
  });

  it("another booking's create webhook at the same slot (another patient) is not taken for this one", async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    sim.writes.loseAnswers(1, 503, 1);
    await commands['appointment.book']!(book('cw-other'), c);
    sim.setAppointment({
      id: 990001,
      first_name: 'Someone',
      last_name: 'Else',
      apt_time: data.start,
      hospital_id: '77',
      extra_fields: [],
    });
    await createWebhook(c, '990001');
    expect(await commands['appointment.book']!(book('cw-other'), { ...c, attempt: 2 })).toMatchObject({
      outcome: 'transient',
    });
    expect(creates(sim)).toHaveLength(1);
  });

  it("a booking sent with no name and no contact detail, its answer lost, does not take another patient's create at the slot", async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const nameless = {
      id: 'cw-nameless',
      type: 'appointment.book',
      data: { start: data.start, patient: {}, location: { id: '77' } },
    } as unknown as CommandRequest<'appointment.book'>;
    // A proxy's 502 after forwarding it: whether Clockwise.MD made it is unknown.
    expect(
      await commands['appointment.book']!(nameless, { ...c, http: scripted([[502, 'Bad Gateway']]) }),
    ).toMatchObject({ outcome: 'transient' });
    // A walk-in booked by the front desk at that hospital and time.
    sim.setAppointment({
      id: 990002,
      first_name: 'Walk',
      last_name: 'In',
      phone_number: '5559876',
      apt_time: data.start,
      hospital_id: '77',
      extra_fields: [],
    });
    await createWebhook(c, '990002');
    // Before: done with the walk-in's appointment (alreadyDone), which a cancel through the hub
    // would then have removed. Nothing tells the booking apart: it is looked for, never taken.
    expect(await commands['appointment.book']!(nameless, { ...c, attempt: 2 })).toMatchObject({
      outcome: 'transient',
    });
    await settled(c, 'cw-nameless');
    expect(await commands['appointment.book']!(nameless, { ...c, attempt: 3 })).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('not sent again'),
    });
  });

  it('once done, the same command tried again (the hub failed after it) answers the same id without a call', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const first = await commands['appointment.book']!(book('cw-done'), c);
    expect(first).toMatchObject({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    const again = await commands['appointment.book']!(book('cw-done'), { ...c, attempt: 2 });
    expect(again).toEqual({ outcome: 'done', vendorIds: first.outcome === 'done' ? first.vendorIds : [] });
    expect(creates(sim)).toHaveLength(1);
  });

  it('a create whose record the database refused (after Clockwise.MD answered) is answered by the next try in this process, without a call', async () => {
    const { sim, ctx } = await setup();
    const c = ctx({ vendorIds: [] });
    const store = c.commandState;
    let refuse = false;
    // The database goes away between the answer and the write of its record.
    const commandState = {
      get: store.get.bind(store),
      delete: store.delete.bind(store),
      async set(key: string, value: JsonValue) {
        if (refuse) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        await store.set(key, value);
        if (isJsonObject(value) && isJsonObject(value.sent)) refuse = true;
      },
    } as typeof store;
    await expect(commands['appointment.book']!(book('cw-db-cut'), { ...c, commandState })).rejects.toThrow(
      /ECONNREFUSED/,
    );
    expect(await store.get(`clockwisemd:command:cw-db-cut`)).toMatchObject({ sent: {} });
    refuse = false;
    // Before: permanent, "outcome unknown", the appointment booked and its id in hand.
    const again = await commands['appointment.book']!(book('cw-db-cut'), { ...c, commandState, attempt: 2 });
    expect(again).toEqual({ outcome: 'done', vendorIds: [expect.stringMatching(/^\d+$/)] });
    expect(await store.get(`clockwisemd:command:cw-db-cut`)).toEqual({
      done: { vendorIds: again.outcome === 'done' ? again.vendorIds : [] },
    });
    expect(creates(sim)).toHaveLength(1);
  });

  it('a create answered with an id the hub cannot keep (a number JSON rounds, control characters) is transient, and not created again', async () => {
    const { ctx } = await setup();
    for (const text of ['{"id":12345678901234567890}', '{"appointment":{"id":"88\\u0000123"}}']) {
      const http = scripted([[200, JSON.parse(text) as JsonValue]]);
      const c = ctx({ vendorIds: [], http });
      const first = await commands['appointment.book']!(book(`cw-id-${text.length}`), c);
      // Before (the number): done, aliased to 12345678901234567000, another appointment's id.
      expect(first, text).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('with an id the hub cannot keep'),
      });
      await settled(c, `cw-id-${text.length}`);
      const again = await commands['appointment.book']!(book(`cw-id-${text.length}`), { ...c, attempt: 2 });
      expect(again).toMatchObject({
        outcome: 'permanent',
        message: expect.stringContaining('not sent again'),
      });
      expect(http.urls).toHaveLength(1);
    }
  });

  it('a create answered 200 text/html (a maintenance page) is transient, not done, and not created again', async () => {
    const { sim, ctx } = await setup();
    const page = await startMaintenancePage();
    try {
      const c = ctx({ vendorIds: [] });
      const http = page.before((r) => r.url.endsWith('/appointments/create'));
      // Before: done with no appointment id (the hub could never address what it booked).
      const first = await commands['appointment.book']!(book('cw-page'), { ...c, http });
      expect(first).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('Clockwise.MD create answered 200 (text/html) with no JSON'),
        vendor: { status: 200 },
      });
      expect(page.answered).toEqual(['POST /v1/appointments/create']);
      // Whether it booked is unknown: the next try does not create again.
      await settled(c, 'cw-page');
      const again = await commands['appointment.book']!(book('cw-page'), { ...c, attempt: 2 });
      expect(again).toMatchObject({
        outcome: 'permanent',
        message: expect.stringContaining('not sent again'),
      });
      expect(creates(sim)).toHaveLength(0);
    } finally {
      await page.close();
    }
  });
});
