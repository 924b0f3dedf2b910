import { readFileSync } from 'node:fs';
import type { CommandRequest, JsonObject } from '@switchyard/core';
import { describeCommandConformance, fetchVendorHttp, memoryCommandContext } from '@switchyard/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commands, commandUnsupported, inviteeRef, outcome, said } from './commands.ts';
import type { Config } from './config.ts';
import connector from './index.ts';
import { CalendlySimulator } from './simulator.ts';
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

// The floor: 503, 429 (Retry-After kept), 422 (the answer kept), a 200 page taken as nothing.
describeCommandConformance({
  connector,
  config: settings,
  samples: {
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
