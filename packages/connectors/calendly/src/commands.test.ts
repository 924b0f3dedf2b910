import { readFileSync } from 'node:fs';
import type { CommandRequest, JsonObject } from '@switchyard/core';
import { describeCommandConformance, fetchVendorHttp, memoryCommandContext } from '@switchyard/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BOOK_CLOCK_SKEW_MS, commands, commandUnsupported, inviteeRef, outcome, said } from './commands.ts';
import type { Config } from './config.ts';
import connector from './index.ts';
import { CalendlySimulator, SIM_ORGANIZATION } from './simulator.ts';
import { fixtureSettings, fixtureUrl } from './testing.ts';

const settings: Config = { ...fixtureSettings, apiToken: 'test-personal-access-token-0123' };
const created = JSON.parse(readFileSync(fixtureUrl('invitee-created.json'), 'utf8')) as {
  payload: JsonObject;
};
const URI = String(created.payload.uri);

const cancel = {
  id: 'cmd-cancel',
  type: 'appointment.cancel',
  subject: 'appointment/hub-1',
  data: { reason: 'patient called' },
} as CommandRequest<'appointment.cancel'>;
const noShow = {
  id: 'cmd-no-show',
  type: 'appointment.mark_no_show',
  subject: 'appointment/hub-1',
  data: {},
} as CommandRequest<'appointment.mark_no_show'>;
const clear = {
  id: 'cmd-clear',
  type: 'appointment.clear_presence',
  subject: 'appointment/hub-1',
  data: {},
} as CommandRequest<'appointment.clear_presence'>;
const EVENT_TYPE = 'https://api.calendly.com/event_types/EVTYPE0000000001';
const book = {
  id: 'cmd-book',
  type: 'appointment.book',
  instance: 'cal',
  data: {
    // The fixture's event type, the day after its booking, given with an offset (Calendly takes UTC).
    start: '2026-03-11T11:30:00+01:00',
    patient: {
      given: 'Grace',
      family: 'Hopper',
      email: 'grace.hopper@example.com',
      phone: '+33 6 12 34 56 78',
    },
    service: { id: EVENT_TYPE },
    vendor: {
      timezone: 'Europe/Paris',
      questions_and_answers: [
        { question: 'What would you like to discuss?', answer: 'A check-up', position: 0 },
      ],
    },
  },
} as CommandRequest<'appointment.book'>;

// The floor: 503, 429 (Retry-After kept), 422 (the answer kept), a 200 page taken as nothing.
describeCommandConformance({
  connector,
  config: settings,
  samples: {
    'appointment.book': { data: book.data },
    'appointment.cancel': { data: {}, vendorIds: [URI] },
    'appointment.mark_no_show': { data: {}, vendorIds: [URI] },
    'appointment.clear_presence': { data: {}, vendorIds: [URI] },
  },
});

describe('the mapping', () => {
  it("an invitee URI names its event's and its own uuid; anything else nothing", () => {
    expect(inviteeRef(URI)).toEqual({ event: 'EVENT00000000001', invitee: 'INVITEE000000001' });
    expect(inviteeRef('https://api.calendly.com/scheduled_events/EVENT00000000001')).toBeUndefined();
    expect(inviteeRef('54321')).toBeUndefined();
  });

  it("Calendly's error body is the message; its 429 waits X-RateLimit-Reset when no Retry-After says", () => {
    const body = {
      title: 'Invalid Argument',
      message: 'The supplied parameters are invalid.',
      details: [{ parameter: 'invitee', message: 'is invalid' }],
    };
    expect(said({ status: 400, headers: {}, body })).toBe(
      'Invalid Argument: The supplied parameters are invalid. (invitee: is invalid)',
    );
    // developer.calendly.com/api-docs/overview/rate-limits: 429 with X-RateLimit-Reset: 60.
    const limited = outcome('Calendly cancel', {
      status: 429,
      headers: { 'x-ratelimit-limit': '500', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '60' },
      body: { title: 'Too Many Requests', message: 'Rate limit exceeded' },
    });
    expect(limited).toMatchObject({ outcome: 'transient', retryAfterMs: 60_000 });
    for (const status of [401, 403, 404, 409]) {
      expect(outcome('Calendly cancel', { status, headers: {}, body }).outcome).toBe('permanent');
    }
    expect(outcome('Calendly cancel', { status: 500, headers: {}, body }).outcome).toBe('transient');
  });

  it('an instance without apiToken takes no commands', () => {
    expect(commandUnsupported(cancel, fixtureSettings)).toMatch(/apiToken/);
    expect(commandUnsupported(cancel, settings)).toBeUndefined();
  });

  it('a booking without the event type URI, the email or a name is refused at once: Calendly cannot book it', () => {
    const without = (data: Partial<CommandRequest<'appointment.book'>['data']>) =>
      commandUnsupported({ ...book, data: { ...book.data, ...data } }, settings);
    expect(without({})).toBeUndefined();
    expect(without({ service: undefined })).toMatch(/service\.id \(the event type URI/);
    // An id that is not an event type's URI (a uuid alone, a scheduling page) is no event_type.
    expect(without({ service: { id: 'EVTYPE0000000001' } })).toMatch(/service\.id/);
    expect(without({ service: { id: 'https://calendly.com/jane-host/30min' } })).toMatch(/service\.id/);
    expect(without({ patient: { name: 'Grace Hopper' } })).toMatch(/patient\.email/);
    expect(without({ patient: { email: 'grace.hopper@example.com' } })).toMatch(/name/);
    expect(without({ patient: { name: 'Grace Hopper', email: 'grace.hopper@example.com' } })).toBeUndefined();
    expect(without({ vendor: { timezone: 3 } })).toMatch(/vendor\.timezone/);
  });
});

let sim: CalendlySimulator;
let config: Config;
beforeEach(async () => {
  sim = new CalendlySimulator({ config: settings });
  await sim.start();
  sim.add(created.payload);
  config = { ...settings, apiBaseUrl: sim.apiBaseUrl };
});
afterEach(async () => {
  await sim.close();
});

/** A try against the simulator over real HTTP; a later one shares the command's state. */
const attempt = (n: number, previous?: ReturnType<typeof memoryCommandContext<Config>>) =>
  memoryCommandContext({
    config,
    vendorIds: [URI],
    attempt: n,
    vendorApi: fetchVendorHttp.request,
    ...(previous ? { commandState: previous.commandState } : {}),
  });

const writes = () => sim.calls.filter((c) => c.method !== 'GET');

describe('Calendly commands against the simulator', () => {
  it('cancel: POST /scheduled_events/{event}/cancellation with the reason; the invitee is canceled', async () => {
    expect(await commands['appointment.cancel']!(cancel, attempt(1))).toMatchObject({ outcome: 'done' });
    expect(writes()).toEqual([
      {
        method: 'POST',
        path: '/scheduled_events/EVENT00000000001/cancellation',
        status: 201,
        body: { reason: 'patient called' },
      },
    ]);
    expect(sim.invitees.get(URI)!.status).toBe('canceled');
  });

  it('a cancel carried out but its answer lost: the next try reads the event canceled, done (alreadyDone), not sent again', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect(await commands['appointment.cancel']!(cancel, first)).toMatchObject({ outcome: 'transient' });
    expect(await commands['appointment.cancel']!(cancel, attempt(2, first))).toEqual({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(writes()).toHaveLength(1);
  });

  it("a cancel of an event canceled before this command: done, unchanged (no notification comes); Calendly's refusal of a cancel that landed meanwhile is read behind", async () => {
    await commands['appointment.cancel']!(cancel, attempt(1));
    expect(await commands['appointment.cancel']!(cancel, attempt(1))).toEqual({
      outcome: 'done',
      unchanged: true,
    });
    // The read says active, but the cancel lands before this one: refused (403), read again.
    sim.add({
      ...created.payload,
      status: 'active',
      scheduled_event: { ...(created.payload.scheduled_event as JsonObject), status: 'active' },
    });
    const ctx = memoryCommandContext({
      config,
      vendorIds: [URI],
      vendorApi: async (request) => {
        if (request.method === 'POST') await commands['appointment.cancel']!(cancel, attempt(1));
        return fetchVendorHttp.request(request);
      },
    });
    expect(await commands['appointment.cancel']!(cancel, ctx)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 403 },
    });
  });

  it('a group event (two active invitees) is not cancelled: it would cancel the other invitee too', async () => {
    const other = `${URI.replace(/INVITEE000000001$/, 'INVITEE000000002')}`;
    sim.add({ ...created.payload, uri: other, email: 'grace.hopper@example.com' });
    expect(await commands['appointment.cancel']!(cancel, attempt(1))).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('2 active invitees'),
    });
    expect(writes()).toHaveLength(0);
  });

  it("an invitee that cancelled itself from a group event, the hub not told yet: done, unchanged; the others' event is not cancelled", async () => {
    const other = `${URI.replace(/INVITEE000000001$/, 'INVITEE000000002')}`;
    sim.add({ ...created.payload, uri: other, email: 'grace.hopper@example.com' });
    sim.add({ ...created.payload, status: 'canceled' });
    expect(await commands['appointment.cancel']!(cancel, attempt(1))).toEqual({
      outcome: 'done',
      unchanged: true,
    });
    expect(writes()).toHaveLength(0);
    expect(sim.invitees.get(other)!.status).toBe('active');
  });

  it('mark_no_show: POST /invitee_no_shows with the invitee URI; a lost answer is read on the next try, not sent again', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect((await commands['appointment.mark_no_show']!(noShow, first)).outcome).toBe('transient');
    expect(writes()).toEqual([
      { method: 'POST', path: '/invitee_no_shows', status: 503, body: { invitee: URI } },
    ]);
    expect(await commands['appointment.mark_no_show']!(noShow, attempt(2, first))).toEqual({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(writes()).toHaveLength(1);
    // Marked before another command: unchanged, nothing sent.
    expect(await commands['appointment.mark_no_show']!(noShow, attempt(1))).toEqual({
      outcome: 'done',
      unchanged: true,
    });
  });

  it('clear_presence: DELETE /invitee_no_shows/{uuid} of the no-show the invitee names; none: done, unchanged', async () => {
    expect(await commands['appointment.clear_presence']!(clear, attempt(1))).toEqual({
      outcome: 'done',
      unchanged: true,
    });
    await commands['appointment.mark_no_show']!(noShow, attempt(1));
    const mark = String((sim.invitees.get(URI)!.no_show as JsonObject).uri);
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect((await commands['appointment.clear_presence']!(clear, first)).outcome).toBe('transient');
    expect(writes().at(-1)).toMatchObject({
      method: 'DELETE',
      path: `/invitee_no_shows/${mark.split('/').at(-1)}`,
    });
    expect(sim.invitees.get(URI)!.no_show).toBeNull();
    expect(await commands['appointment.clear_presence']!(clear, attempt(2, first))).toEqual({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(writes().filter((c) => c.method === 'DELETE')).toHaveLength(1);
  });

  it('book: POST /invitees with the event type, the start in UTC and the invitee; done with the invitee URI its webhook keys it by', async () => {
    const result = await commands['appointment.book']!(book, attempt(1));
    const made = [...sim.invitees.values()].filter((i) => i.email === 'grace.hopper@example.com');
    expect(made).toHaveLength(1);
    expect(result).toEqual({
      outcome: 'done',
      vendorIds: [made[0]!.uri],
      vendor: { status: 201, body: { resource: expect.objectContaining({ uri: made[0]!.uri }) } },
    });
    expect(String(made[0]!.uri)).toMatch(
      /^https:\/\/api\.calendly\.com\/scheduled_events\/[^/]+\/invitees\/[^/]+$/,
    );
    expect(writes()).toEqual([
      {
        method: 'POST',
        path: '/invitees',
        status: 201,
        body: {
          event_type: EVENT_TYPE,
          start_time: '2026-03-11T10:30:00.000Z',
          invitee: {
            email: 'grace.hopper@example.com',
            name: 'Grace Hopper',
            first_name: 'Grace',
            last_name: 'Hopper',
            timezone: 'Europe/Paris',
            text_reminder_number: '+33612345678',
          },
          questions_and_answers: book.data.vendor!.questions_and_answers,
        },
      },
    ]);
    // A first send reads nothing: the lookup is for a try after an answer that proved nothing.
    expect(sim.calls.filter((c) => c.method === 'GET')).toEqual([]);
  });

  it('book answered 503 after Calendly made it (the answer lost): the next try finds it by the lookup and is done with it; booked once', async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    expect((await commands['appointment.book']!(book, first)).outcome).toBe('transient');
    const again = await commands['appointment.book']!(book, attempt(2, first));
    const made = [...sim.invitees.values()].filter((i) => i.email === 'grace.hopper@example.com');
    expect(made).toHaveLength(1);
    expect(again).toEqual({ outcome: 'done', alreadyDone: true, vendorIds: [made[0]!.uri] });
    expect(writes()).toHaveLength(1);
    const event = String(made[0]!.event).split('/').at(-1);
    expect(sim.calls.filter((c) => c.method === 'GET').map((c) => c.path)).toEqual([
      '/users/me',
      '/scheduled_events',
      `/scheduled_events/${event}/invitees`,
    ]);
  });

  it('book answered 503 before Calendly made it: not sent again while the POST may still land; sent again once it cannot, booked once', async () => {
    sim.failNext();
    const first = attempt(1);
    expect((await commands['appointment.book']!(book, first)).outcome).toBe('transient');
    const waiting = await commands['appointment.book']!(book, attempt(2, first));
    expect(waiting).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('may still land'),
    });
    expect(writes()).toHaveLength(1);
    // Past the settle time: the mark as a send of 3 minutes ago left it.
    const ago = new Date(Date.now() - 3 * 60_000).toISOString();
    await first.commandState.set('calendly:book-sent', { at: ago, last: ago });
    expect(await commands['appointment.book']!(book, attempt(3, first))).toMatchObject({ outcome: 'done' });
    expect(writes().map((c) => c.status)).toEqual([503, 201]);
    expect([...sim.invitees.values()].filter((i) => i.email === 'grace.hopper@example.com')).toHaveLength(1);
  });

  it("book turned away by Calendly's rate limit (429, X-RateLimit-Reset): transient, waiting the reset; nothing was made, so the next try books without a lookup", async () => {
    sim.rateLimitNext(60);
    const first = attempt(1);
    expect(await commands['appointment.book']!(book, first)).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 60_000,
    });
    expect(await first.commandState.get('calendly:book-sent')).toBeUndefined();
    expect(await commands['appointment.book']!(book, attempt(2, first))).toMatchObject({ outcome: 'done' });
    expect(sim.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'POST /invitees 429',
      'POST /invitees 201',
    ]);
  });

  it("a booking of the same slot and email made before the first send (the front desk's) is not taken for this command's", async () => {
    await commands['appointment.book']!(book, attempt(1));
    const earlier = [...sim.invitees.values()].find((i) => i.email === 'grace.hopper@example.com')!;
    earlier.created_at = new Date(Date.now() - BOOK_CLOCK_SKEW_MS - 60_000).toISOString();
    const ctx = attempt(2);
    const now = new Date().toISOString();
    await ctx.commandState.set('calendly:book-sent', { at: now, last: now });
    expect(await commands['appointment.book']!({ ...book, id: 'cmd-book-2' }, ctx)).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('may still land'),
    });
  });

  it("a re-send refused (the slot taken) by the earlier try's booking, landed late: looked up again, done with it", async () => {
    sim.failNext();
    const first = attempt(1);
    await commands['appointment.book']!(book, first);
    const ago = new Date(Date.now() - 3 * 60_000).toISOString();
    await first.commandState.set('calendly:book-sent', { at: ago, last: ago });
    let landed: string | undefined;
    const ctx = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) => {
        // The first POST lands now, after this try's lookup missed it: the re-send finds the slot taken.
        if (request.method === 'POST' && landed === undefined) {
          await commands['appointment.book']!(book, attempt(1));
          landed = String(
            [...sim.invitees.values()].find((i) => i.email === 'grace.hopper@example.com')!.uri,
          );
        }
        return fetchVendorHttp.request(request);
      },
    });
    expect(await commands['appointment.book']!(book, ctx)).toEqual({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: [landed],
    });
    expect(writes().at(-1)).toMatchObject({ method: 'POST', path: '/invitees', status: 400 });
    expect(await ctx.commandState.get('calendly:book-sent')).toBeUndefined();
  });

  it("a first booking refused (the slot taken): permanent with Calendly's words, nothing left to look up", async () => {
    const taken = { ...book, data: { ...book.data, start: '2026-03-10T10:30:00Z' } };
    const ctx = attempt(1);
    expect(await commands['appointment.book']!(taken, ctx)).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('no longer available'),
      vendor: { status: 400 },
    });
    expect(await ctx.commandState.get('calendly:book-sent')).toBeUndefined();
  });

  it("an answer naming the invitee on another host (the reference's own example: https://calendly.com/scheduled_events/…) is kept as the webhook's URI", async () => {
    const ctx = memoryCommandContext({
      config,
      vendorApi: async (request) => {
        const res = await fetchVendorHttp.request(request);
        const resource = (res.body as { resource: JsonObject }).resource;
        resource.uri = String(resource.uri).replace('https://api.calendly.com/', 'https://calendly.com/');
        return res;
      },
    });
    const result = await commands['appointment.book']!(book, ctx);
    const made = [...sim.invitees.values()].find((i) => i.email === 'grace.hopper@example.com')!;
    expect(String(made.uri)).toMatch(/^https:\/\/api\.calendly\.com\/scheduled_events\//);
    expect(result).toMatchObject({ outcome: 'done', vendorIds: [made.uri] });
  });

  it("the lookup lists the token's organization's events of the email around the start", async () => {
    sim.failNext({ afterWrite: true });
    const first = attempt(1);
    await commands['appointment.book']!(book, first);
    const requests: string[] = [];
    const ctx = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: async (request) => {
        requests.push(request.url);
        return fetchVendorHttp.request(request);
      },
    });
    await commands['appointment.book']!(book, ctx);
    const list = new URL(requests[1]!);
    expect(Object.fromEntries(list.searchParams)).toEqual({
      organization: SIM_ORGANIZATION,
      invitee_email: 'grace.hopper@example.com',
      min_start_time: '2026-03-11T10:29:00.000Z',
      max_start_time: '2026-03-11T10:31:00.000Z',
      count: '100',
    });
  });

  it('a wrong token: 401, permanent', async () => {
    const ctx = memoryCommandContext({
      config: { ...config, apiToken: 'another-token-0123456789' },
      vendorIds: [URI],
      vendorApi: fetchVendorHttp.request,
    });
    expect(await commands['appointment.cancel']!(cancel, ctx)).toMatchObject({
      outcome: 'permanent',
      vendor: { status: 401 },
    });
  });
});
