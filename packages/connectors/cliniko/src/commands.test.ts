import type { CommandRequest, JsonObject, VendorRequest, VendorResponse } from '@switchyard/core';
import { describeCommandConformance, memoryCommandContext } from '@switchyard/testing';
import { startMaintenancePage } from '@switchyard/testing/simulator-kit/maintenance-page';
import { describe, expect, it } from 'vitest';
import { commands, commandUnsupported } from './commands.ts';
import { blockCommands } from './commands-blocks.ts';
import { clinikoConnector } from './index.ts';
import { fixtureSettings } from './testing.ts';

const BASE = fixtureSettings.apiBaseUrl;
const bookCommand: CommandRequest<'appointment.book'> = {
  id: 'cmd-1',
  type: 'appointment.book',
  data: {
    start: '2026-03-10T11:30:00+01:00',
    durationMinutes: 30,
    patient: { id: '82', name: 'Joe Monahan' },
    practitioner: { id: '1' },
    location: { id: '1' },
    service: { id: '2' },
  },
};

/** Cliniko's `created_at` of a booking made a moment ago (as the lost POST's would be). */
function justNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function answering(...answers: VendorResponse[]) {
  return (_request: VendorRequest) =>
    answers.shift() ?? { status: 500, headers: {}, body: 'no more answers' };
}

// The floor every connector's commands meet: 503 and 429 transient (Retry-After kept), 422 permanent.
describeCommandConformance({
  connector: clinikoConnector,
  config: fixtureSettings,
  samples: {
    'appointment.book': { data: bookCommand.data },
    'appointment.cancel': { data: { reason: 'patient called' }, vendorIds: ['1001'] },
    'appointment.reschedule': { data: { start: '2026-03-11T09:00:00+01:00' }, vendorIds: ['1001'] },
    'appointment.mark_arrived': { data: {}, vendorIds: ['1001'] },
    'appointment.mark_no_show': { data: {}, vendorIds: ['1001'] },
    'appointment.clear_presence': { data: {}, vendorIds: ['1001'] },
    'appointment.update': { data: { comment: 'bring the referral' }, vendorIds: ['1001'] },
    'slot.block': {
      data: {
        start: '2026-03-11T13:00:00+01:00',
        end: '2026-03-11T14:00:00+01:00',
        practitioner: { id: '1' },
        location: { id: '1' },
      },
    },
    'slot.move_block': {
      data: { start: '2026-03-11T15:00:00+01:00', end: '2026-03-11T16:00:00+01:00' },
      vendorIds: ['1'],
    },
    'slot.unblock': { data: {}, vendorIds: ['1'] },
  },
});

/** Cliniko's individual appointment as its update answers it (sections/individual_appointments.md). */
function appointmentAnswer(flags: { patient_arrived: boolean | null; did_not_arrive: boolean | null }) {
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: { id: '1001', updated_at: '2026-03-10T10:05:00Z', notes: null, ...flags },
  };
}

function presence<
  T extends 'appointment.mark_arrived' | 'appointment.mark_no_show' | 'appointment.clear_presence',
>(type: T): CommandRequest<T> {
  return { id: 'cmd-p', type, subject: 'appointment/h1', data: {} } as CommandRequest<T>;
}

describe('Cliniko commands', () => {
  it('books with the ids Cliniko needs and aliases the new appointment', async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorApi: answering({
        status: 201,
        headers: {},
        body: { id: '1001', updated_at: '2026-03-01T10:00:00Z' },
      }),
    });
    const result = await commands['appointment.book']!(bookCommand, ctx);
    expect(result).toMatchObject({ outcome: 'done', vendorIds: ['1001'] });
    expect(ctx.vendorRequests[0]).toMatchObject({
      method: 'POST',
      url: `${BASE}/individual_appointments`,
      // Cliniko expects every time in UTC, as it writes them (2014-08-30T18:00:00Z).
      json: {
        starts_at: '2026-03-10T10:30:00Z',
        ends_at: '2026-03-10T11:00:00Z',
        patient_id: '82',
        practitioner_id: '1',
        appointment_type_id: '2',
        business_id: '1',
      },
    });
  });

  // A 503 with Retry-After proves nothing either: a proxy in front of Cliniko answers so after
  // forwarding the booking (before, the mark was cleared and the next try booked again).
  for (const [status, headers] of [
    [502, {}],
    [503, { 'retry-after': '1' }],
  ] as const) {
    it(`after a booking whose answer was lost (${status}${'retry-after' in headers ? ' with Retry-After' : ''}), looks it up instead of booking again`, async () => {
      const first = memoryCommandContext({
        config: fixtureSettings,
        vendorApi: answering({ status, headers, body: '' }),
      });
      expect((await commands['appointment.book']!(bookCommand, first)).outcome).toBe('transient');
      const again = memoryCommandContext({
        config: fixtureSettings,
        attempt: 2,
        commandState: first.commandState,
        vendorApi: answering({
          status: 200,
          headers: {},
          body: {
            individual_appointments: [
              // The same slot booked before and cancelled is not what the lost POST made.
              { id: '990', starts_at: '2026-03-10T10:30:00Z', cancelled_at: '2026-03-02T09:00:00Z' },
              { id: '1001', starts_at: '2026-03-10T10:30:00Z', cancelled_at: null, created_at: justNow() },
            ],
          },
        }),
      });
      expect(await commands['appointment.book']!(bookCommand, again)).toEqual({
        outcome: 'done',
        alreadyDone: true,
        vendorIds: ['1001'],
      });
      expect(again.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET']);
      expect(new URL(again.vendorRequests[0]!.url).searchParams.getAll('q[]')).toEqual([
        'patient_id:=82',
        'practitioner_id:=1',
        // Cliniko's DateTime filters have no `=`: the start is pinned from both sides.
        'starts_at:>=2026-03-10T10:30:00Z',
        'starts_at:<=2026-03-10T10:30:00Z',
      ]);
    });
  }

  it('after a lost answer, a live booking of the same patient and start made before the first send is not taken for it', async () => {
    const first = memoryCommandContext({
      config: fixtureSettings,
      vendorApi: answering({ status: 502, headers: {}, body: '' }),
    });
    expect((await commands['appointment.book']!(bookCommand, first)).outcome).toBe('transient');
    // Past the wait for the lost POST to land (it made nothing): the try books.
    const sent = (await first.commandState.get('cliniko:book-sent')) as { at: string };
    await first.commandState.set('cliniko:book-sent', {
      ...sent,
      last: new Date(Date.now() - 130_000).toISOString(),
    });
    const anHourAgo = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const again = memoryCommandContext({
      config: fixtureSettings,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: answering(
        {
          status: 200,
          headers: {},
          // Booked by the front desk an hour before: the lost POST made nothing here.
          body: {
            individual_appointments: [
              { id: '880', starts_at: '2026-03-10T10:30:00Z', cancelled_at: null, created_at: anHourAgo },
            ],
          },
        },
        { status: 201, headers: {}, body: { id: '1002' } },
      ),
    });
    // Before: done with '880', a booking this command did not make.
    expect(await commands['appointment.book']!(bookCommand, again)).toMatchObject({
      outcome: 'done',
      vendorIds: ['1002'],
    });
    expect(again.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET', 'POST']);
    // A third try still measures from the first send, not from the second's.
    const mark = (await again.commandState.get('cliniko:book-sent')) as { at: string };
    expect(Date.parse(mark.at)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(mark.at)).toBe(
      Date.parse(((await first.commandState.get('cliniko:book-sent')) as { at: string }).at),
    );
  });

  it('after a lost answer, a booking not listed yet is not posted again while the lost POST may still land; then it is', async () => {
    // The retry comes 1 s after the hub's 10 s timeout, while Cliniko may still be making the
    // booking: its lookup found nothing and posted again before, booking twice once the first landed.
    const first = memoryCommandContext({
      config: fixtureSettings,
      vendorApi: answering({ status: 504, headers: {}, body: '' }),
    });
    expect((await commands['appointment.book']!(bookCommand, first)).outcome).toBe('transient');
    const nothingListed = { status: 200, headers: {}, body: { individual_appointments: [] } };
    const again = memoryCommandContext({
      config: fixtureSettings,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: answering(nothingListed, { status: 201, headers: {}, body: { id: '1002' } }),
    });
    expect(await commands['appointment.book']!(bookCommand, again)).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('it may still land'),
    });
    expect(again.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET']);
    // Still not listed two minutes after the POST went out: it made nothing, and the try books.
    const sent = (await first.commandState.get('cliniko:book-sent')) as { at: string; last: string };
    const old = new Date(Date.now() - 130_000).toISOString();
    await first.commandState.set('cliniko:book-sent', { at: old, last: old });
    const later = memoryCommandContext({
      config: fixtureSettings,
      attempt: 3,
      commandState: first.commandState,
      vendorApi: answering(nothingListed, { status: 201, headers: {}, body: { id: '1002' } }),
    });
    expect(await commands['appointment.book']!(bookCommand, later)).toMatchObject({
      outcome: 'done',
      vendorIds: ['1002'],
    });
    expect(later.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET', 'POST']);
    expect(Date.parse(sent.last)).toBeGreaterThanOrEqual(Date.parse(sent.at));
  });

  it("a lookup answered 200 without its list (a proxy's page) sends nothing again: a booking or a block whose answer was lost is not made twice", async () => {
    const page: VendorResponse = {
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: '<html><body>Down for maintenance</body></html>',
    };
    const block: CommandRequest<'slot.block'> = {
      id: 'cmd-b',
      type: 'slot.block',
      data: {
        start: '2026-03-11T13:00:00+01:00',
        end: '2026-03-11T14:00:00+01:00',
        practitioner: { id: '1' },
        location: { id: '1' },
      },
    } as CommandRequest<'slot.block'>;
    const cases = [
      { run: commands['appointment.book']!, command: bookCommand, mark: 'cliniko:book-sent' },
      { run: blockCommands['slot.block']!, command: block, mark: 'cliniko:block-sent' },
    ] as const;
    for (const { run, command, mark } of cases) {
      const first = memoryCommandContext({
        config: fixtureSettings,
        vendorApi: answering({ status: 504, headers: {}, body: '' }),
      });
      expect(
        (await (run as (typeof commands)['appointment.book'] & {})(command as never, first)).outcome,
      ).toBe('transient');
      // Past the wait for the lost POST: a lookup that listed nothing would post again.
      const old = new Date(Date.now() - 130_000).toISOString();
      await first.commandState.set(mark, { at: old, last: old });
      const again = memoryCommandContext({
        config: fixtureSettings,
        attempt: 2,
        commandState: first.commandState,
        vendorApi: answering(page, { status: 201, headers: {}, body: { id: '1002' } }),
      });
      expect(
        await (run as (typeof commands)['appointment.book'] & {})(command as never, again),
      ).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('lookup answered 200'),
      });
      expect(again.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET']);
    }
  });

  it('a booking or a block sent again and answered 408 or 429 keeps the first POST’s mark: the next try looks before it sends', async () => {
    const block: CommandRequest<'slot.block'> = {
      id: 'cmd-b',
      type: 'slot.block',
      data: {
        start: '2026-03-11T13:00:00+01:00',
        end: '2026-03-11T14:00:00+01:00',
        practitioner: { id: '1' },
        location: { id: '1' },
      },
    } as CommandRequest<'slot.block'>;
    const cases = [
      {
        run: commands['appointment.book']!,
        command: bookCommand,
        mark: 'cliniko:book-sent',
        key: 'individual_appointments',
        status: 429,
      },
      {
        run: blockCommands['slot.block']!,
        command: block,
        mark: 'cliniko:block-sent',
        key: 'unavailable_blocks',
        status: 408,
      },
    ] as const;
    for (const { run, command, mark, key, status } of cases) {
      const first = memoryCommandContext({
        config: fixtureSettings,
        vendorApi: answering({ status: 504, headers: {}, body: '' }),
      });
      const send = run as (typeof commands)['appointment.book'] & {};
      expect((await send(command as never, first)).outcome).toBe('transient');
      // Past the wait for the first POST, whose outcome is still unknown: the lookup lists nothing,
      // and the POST sent again is turned away, which says nothing of the first one.
      const old = new Date(Date.now() - 130_000).toISOString();
      await first.commandState.set(mark, { at: old, last: old });
      const again = memoryCommandContext({
        config: fixtureSettings,
        attempt: 2,
        commandState: first.commandState,
        vendorApi: answering(
          { status: 200, headers: {}, body: { [key]: [] } },
          { status, headers: {}, body: '' },
        ),
      });
      expect((await send(command as never, again)).outcome).toBe('transient');
      expect(again.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET', 'POST']);
      expect(await first.commandState.get(mark)).toEqual({ at: old, last: old });
      const third = memoryCommandContext({
        config: fixtureSettings,
        attempt: 3,
        commandState: first.commandState,
        vendorApi: answering({ status: 503, headers: {}, body: '' }),
      });
      expect((await send(command as never, third)).outcome).toBe('transient');
      expect(third.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET']);
    }
  });

  it('a booking answered 200 text/html (a maintenance page) is transient, not done; the next try looks it up', async () => {
    const page = await startMaintenancePage();
    try {
      const first = memoryCommandContext({
        config: fixtureSettings,
        vendorApi: page.before(() => true).request,
      });
      // Before: done, with no appointment id.
      expect(await commands['appointment.book']!(bookCommand, first)).toMatchObject({
        outcome: 'transient',
        message: expect.stringContaining('Cliniko book answered 200 (text/html) with no JSON'),
        vendor: { status: 200 },
      });
      expect(page.answered).toEqual(['POST /v1/individual_appointments']);
      const again = memoryCommandContext({
        config: fixtureSettings,
        attempt: 2,
        commandState: first.commandState,
        vendorApi: answering({
          status: 200,
          headers: {},
          body: {
            individual_appointments: [
              { id: '1001', starts_at: '2026-03-10T10:30:00Z', created_at: justNow() },
            ],
          },
        }),
      });
      expect(await commands['appointment.book']!(bookCommand, again)).toEqual({
        outcome: 'done',
        alreadyDone: true,
        vendorIds: ['1001'],
      });
    } finally {
      await page.close();
    }
  });

  it("passes Cliniko's refusal on with its words, and a refused booking is not looked up again", async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorApi: answering({
        status: 422,
        headers: {},
        body: { errors: { starts_at: ['conflicts with another appointment'] } },
      }),
    });
    expect(await commands['appointment.book']!(bookCommand, ctx)).toMatchObject({
      outcome: 'permanent',
      message: 'Cliniko book answered 422: starts_at conflicts with another appointment',
    });
    expect(await ctx.commandState.get('cliniko:book-sent')).toBeUndefined();
  });

  it('cancels with the configured reason code, and an appointment already cancelled is done without a call', async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering({ status: 204, headers: {}, body: '' }),
    });
    const cancel = {
      id: 'cmd-2',
      type: 'appointment.cancel' as const,
      subject: 'appointment/h1',
      data: { reason: 'patient called' },
    };
    expect((await commands['appointment.cancel']!(cancel, ctx)).outcome).toBe('done');
    expect(ctx.vendorRequests[0]).toMatchObject({
      method: 'PATCH',
      url: `${BASE}/individual_appointments/1001/cancel`,
      json: { cancellation_reason: 50, cancellation_note: 'patient called' },
    });
    const already = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      current: { status: 'cancelled' },
    });
    expect(await commands['appointment.cancel']!(cancel, already)).toEqual({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(already.vendorRequests).toEqual([]);
  });

  it('reschedules by PATCH (the update the current reference names), letting Cliniko derive the end, transient on a rate limit', async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering({ status: 429, headers: { 'retry-after': '12' }, body: '' }),
    });
    const move = {
      id: 'cmd-3',
      type: 'appointment.reschedule' as const,
      subject: 'appointment/h1',
      data: { start: '2026-03-11T09:00:00+01:00' },
    };
    expect(await commands['appointment.reschedule']!(move, ctx)).toMatchObject({
      outcome: 'transient',
      retryAfterMs: 12_000,
    });
    expect(ctx.vendorRequests[0]).toMatchObject({
      method: 'PATCH',
      json: { starts_at: '2026-03-11T08:00:00Z', ends_at: null },
    });
  });

  it('reads the appointment before a later try sends the move again: not written over when it is already there', async () => {
    const move = {
      id: 'cmd-3c',
      type: 'appointment.reschedule' as const,
      subject: 'appointment/h1',
      data: { start: '2026-03-11T09:00:00+01:00' },
    };
    // The first try's PATCH went out; its answer was lost (a timeout: transient).
    const first = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering({ status: 504, headers: {}, body: '' }),
    });
    expect((await commands['appointment.reschedule']!(move, first)).outcome).toBe('transient');
    expect(first.vendorRequests.map((r) => r.method)).toEqual(['PATCH']);
    // It landed, and staff lengthened the visit since: the later try reads, and writes nothing.
    const landed = {
      id: '1001',
      starts_at: '2026-03-11T08:00:00Z',
      ends_at: '2026-03-11T09:30:00Z',
    };
    const again = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      commandState: first.commandState,
      vendorApi: answering({ status: 200, headers: {}, body: landed }),
    });
    expect(await commands['appointment.reschedule']!(move, again)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    expect(again.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET']);
    // Not there (it did not land): read, then sent; a read that fails sends nothing.
    const elsewhere = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      commandState: first.commandState,
      vendorApi: answering(
        { status: 200, headers: {}, body: { ...landed, starts_at: '2026-03-10T10:00:00Z' } },
        { status: 200, headers: {}, body: landed },
      ),
    });
    expect((await commands['appointment.reschedule']!(move, elsewhere)).outcome).toBe('done');
    expect(elsewhere.vendorRequests.map((r) => r.method ?? 'GET')).toEqual(['GET', 'PATCH']);
    const down = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      commandState: first.commandState,
      vendorApi: answering({ status: 503, headers: {}, body: '' }),
    });
    expect((await commands['appointment.reschedule']!(move, down)).outcome).toBe('transient');
    expect(down.vendorRequests).toHaveLength(1);
  });

  it("reschedules keeping the known length: the polled start to end, else the booking command's durationMinutes", async () => {
    const move = {
      id: 'cmd-3b',
      type: 'appointment.reschedule' as const,
      subject: 'appointment/h1',
      data: { start: '2026-03-11T09:00:00+01:00' },
    };
    for (const [current, ends] of [
      [{ start: '2026-03-10T10:00:00Z', end: '2026-03-10T11:00:00Z' }, '2026-03-11T09:00:00Z'],
      [{ start: '2026-03-10T10:00:00+01:00', durationMinutes: 50 }, '2026-03-11T08:50:00Z'],
    ] as const) {
      const ctx = memoryCommandContext({
        config: fixtureSettings,
        vendorIds: ['1001'],
        current: current as unknown as JsonObject,
        vendorApi: answering({ status: 200, headers: {}, body: { id: '1001' } }),
      });
      expect((await commands['appointment.reschedule']!(move, ctx)).outcome).toBe('done');
      expect(ctx.vendorRequests[0]).toMatchObject({
        json: { starts_at: '2026-03-11T08:00:00Z', ends_at: ends },
      });
    }
  });

  it('marks an arrival by PATCH, clearing a no-show beside it; one call when the answer shows it', async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering(appointmentAnswer({ patient_arrived: true, did_not_arrive: false })),
    });
    expect(
      await commands['appointment.mark_arrived']!(presence('appointment.mark_arrived'), ctx),
    ).toMatchObject({
      outcome: 'done',
    });
    expect(ctx.vendorRequests).toMatchObject([
      {
        method: 'PATCH',
        url: `${BASE}/individual_appointments/1001`,
        json: { patient_arrived: true, did_not_arrive: false },
      },
    ]);
  });

  it('an answer that leaves the flags out cannot say they were not written: done in one call', async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering({
        status: 200,
        headers: {},
        body: { id: '1001', updated_at: '2026-03-10T10:05:00Z' },
      }),
    });
    expect(
      await commands['appointment.mark_no_show']!(presence('appointment.mark_no_show'), ctx),
    ).toMatchObject({
      outcome: 'done',
    });
    expect(ctx.vendorRequests).toHaveLength(1);
  });

  it("an attendee lookup answered 200 without its list (a proxy's page) is transient, not a permanent failure", async () => {
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering(appointmentAnswer({ patient_arrived: false, did_not_arrive: false }), {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: { message: 'Service temporarily unavailable' },
      }),
    });
    expect(
      await commands['appointment.mark_arrived']!(presence('appointment.mark_arrived'), ctx),
    ).toMatchObject({ outcome: 'transient', message: expect.stringContaining('lookup') });
  });

  it("when Cliniko's answer shows the flags unchanged (a parameter it does not take), sets them on the attendee", async () => {
    for (const [type, arrived] of [
      ['appointment.mark_no_show', false],
      ['appointment.clear_presence', null],
      ['appointment.mark_arrived', true],
    ] as const) {
      const ctx = memoryCommandContext({
        config: fixtureSettings,
        vendorIds: ['1001'],
        vendorApi: answering(
          // Still arrived (or, for the arrival, still nothing): the PATCH did not write them.
          appointmentAnswer({ patient_arrived: type !== 'appointment.mark_arrived', did_not_arrive: false }),
          {
            status: 200,
            headers: {},
            body: { attendees: [{ id: '77', arrived: true, cancelled_at: null }], total_entries: 1 },
          },
          { status: 200, headers: {}, body: { id: '77', arrived } },
        ),
      });
      expect(await commands[type]!(presence(type) as never, ctx), type).toMatchObject({ outcome: 'done' });
      expect(
        ctx.vendorRequests.map(
          (r) => `${r.method ?? 'GET'} ${r.url.replace(BASE!, '')} ${JSON.stringify(r.json)}`,
        ),
        type,
      ).toEqual([
        `PATCH /individual_appointments/1001 ${JSON.stringify(
          type === 'appointment.mark_arrived'
            ? { patient_arrived: true, did_not_arrive: false }
            : type === 'appointment.mark_no_show'
              ? { patient_arrived: false, did_not_arrive: true }
              : { patient_arrived: false, did_not_arrive: false },
        )}`,
        'GET /individual_appointments/1001/attendees undefined',
        `PUT /attendees/77 ${JSON.stringify({ arrived })}`,
      ]);
    }
  });

  it('a PATCH refused without naming a flag (an update of ignored flags changes nothing) and a read showing them otherwise: set on the attendee', async () => {
    const attendees = {
      status: 200,
      headers: {},
      body: { attendees: [{ id: '77', arrived: null, cancelled_at: null }], total_entries: 1 },
    };
    const ctx = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering(
        { status: 422, headers: {}, body: { errors: { base: ['nothing to change'] } } },
        appointmentAnswer({ patient_arrived: false, did_not_arrive: false }),
        attendees,
        { status: 200, headers: {}, body: { id: '77', arrived: true } },
      ),
    });
    expect(await commands['appointment.mark_arrived']!(presence('appointment.mark_arrived'), ctx)).toEqual({
      outcome: 'done',
      vendor: { status: 200, body: { id: '77', arrived: true } },
    });
    expect(ctx.vendorRequests.map((r) => `${r.method ?? 'GET'} ${r.url.replace(BASE!, '')}`)).toEqual([
      'PATCH /individual_appointments/1001',
      'GET /individual_appointments/1001',
      'GET /individual_appointments/1001/attendees',
      'PUT /attendees/77',
    ]);
    // The attendee refused too: both refusals in the message.
    const both = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering(
        { status: 409, headers: {}, body: { message: 'appointment is locked' } },
        appointmentAnswer({ patient_arrived: false, did_not_arrive: false }),
        attendees,
        { status: 422, headers: {}, body: { errors: { arrived: ['cannot be changed'] } } },
      ),
    });
    expect(
      await commands['appointment.mark_arrived']!(presence('appointment.mark_arrived'), both),
    ).toMatchObject({
      outcome: 'permanent',
      message:
        'Cliniko arrival answered 409: appointment is locked; set through the attendee instead: Cliniko attendee arrival answered 422: arrived cannot be changed',
    });
  });

  it('a refusal that may be a repeat (422 after a lost answer) is done when a read shows the value there; else it stands', async () => {
    const repeat = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      attempt: 2,
      vendorApi: answering(
        { status: 422, headers: {}, body: { errors: { patient_arrived: ['is already set'] } } },
        appointmentAnswer({ patient_arrived: true, did_not_arrive: false }),
      ),
    });
    expect(await commands['appointment.mark_arrived']!(presence('appointment.mark_arrived'), repeat)).toEqual(
      {
        outcome: 'done',
        alreadyDone: true,
      },
    );
    expect(repeat.vendorRequests.map((r) => `${r.method ?? 'GET'} ${r.url.replace(BASE!, '')}`)).toEqual([
      'PATCH /individual_appointments/1001',
      'GET /individual_appointments/1001',
    ]);
    const notes = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering(
        { status: 422, headers: {}, body: { errors: { notes: ['is too long'] } } },
        { status: 200, headers: {}, body: { id: '1001', notes: 'older words' } },
      ),
    });
    expect(
      await commands['appointment.update']!(
        {
          id: 'cmd-u',
          type: 'appointment.update',
          subject: 'appointment/h1',
          data: { comment: 'new words' },
        },
        notes,
      ),
    ).toMatchObject({
      outcome: 'permanent',
      message: 'Cliniko notes update answered 422: notes is too long',
    });
  });

  it("a presence or notes write refused passes Cliniko's words on; a rate limit waits for X-RateLimit-Reset", async () => {
    const refused = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering(
        {
          status: 422,
          headers: {},
          body: { errors: { did_not_arrive: ['cannot be set on a future appointment'] } },
        },
        appointmentAnswer({ patient_arrived: false, did_not_arrive: false }),
      ),
    });
    expect(
      await commands['appointment.mark_no_show']!(presence('appointment.mark_no_show'), refused),
    ).toMatchObject({
      outcome: 'permanent',
      message: 'Cliniko no-show answered 422: did_not_arrive cannot be set on a future appointment',
    });
    const reset = Math.floor(Date.now() / 1000) + 30;
    const limited = memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      vendorApi: answering({ status: 429, headers: { 'x-ratelimit-reset': String(reset) }, body: '' }),
    });
    const result = await commands['appointment.update']!(
      {
        id: 'cmd-u',
        type: 'appointment.update',
        subject: 'appointment/h1',
        data: { comment: 'late 10 min' },
      },
      limited,
    );
    expect(result).toMatchObject({ outcome: 'transient', retryAfterMs: expect.any(Number) });
    expect((result as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(25_000);
    expect(limited.vendorRequests).toMatchObject([
      { method: 'PATCH', url: `${BASE}/individual_appointments/1001`, json: { notes: 'late 10 min' } },
    ]);
  });

  it('refuses at once what Cliniko cannot do', () => {
    expect(
      commandUnsupported({ type: 'appointment.update', data: { comment: 'x', customFields: { '1': 'y' } } }),
    ).toMatch(/no custom fields/);
    expect(commandUnsupported({ type: 'appointment.update', data: { comment: 'x' } })).toBeUndefined();
    const { practitioner: _p, ...noPractitioner } = bookCommand.data;
    expect(commandUnsupported({ type: 'appointment.book', data: noPractitioner })).toBe(
      'Cliniko books only with practitioner.id',
    );
    expect(
      commandUnsupported({
        type: 'appointment.reschedule',
        data: { start: '2026-03-11T09:00:00Z', service: { id: '3' } },
      }),
    ).toMatch(/in time only/);
    expect(commandUnsupported({ type: 'appointment.book', data: bookCommand.data })).toBeUndefined();
  });
});

describe('Cliniko writes done without a change', () => {
  const FLAGS = {
    'appointment.mark_arrived': { patient_arrived: true, did_not_arrive: false },
    'appointment.mark_no_show': { patient_arrived: false, did_not_arrive: true },
    'appointment.clear_presence': { patient_arrived: false, did_not_arrive: false },
  } as const;
  const ctxKnown = (current: Record<string, string> | undefined, answer: VendorResponse) =>
    memoryCommandContext({
      config: fixtureSettings,
      vendorIds: ['1001'],
      ...(current ? { current } : {}),
      vendorApi: answering(answer),
    });

  for (const [type, already, otherwise] of [
    ['appointment.mark_arrived', 'arrived', 'booked'],
    ['appointment.mark_no_show', 'noshow', 'arrived'],
    ['appointment.clear_presence', 'booked', 'noshow'],
  ] as const) {
    it(`${type}: unchanged when the hub knows the appointment ${already} before the call (Cliniko saves nothing, no echo)`, async () => {
      const answer = appointmentAnswer(FLAGS[type]);
      const same = await commands[type]!(presence(type) as never, ctxKnown({ status: already }, answer));
      expect(same).toMatchObject({ outcome: 'done', unchanged: true });
      for (const current of [{ status: otherwise }, undefined]) {
        const changed = await commands[type]!(presence(type) as never, ctxKnown(current, answer));
        expect(changed.outcome).toBe('done');
        expect('unchanged' in changed).toBe(false);
      }
    });
  }

  it('a refusal stays a refusal, known state or not', async () => {
    const refused = await commands['appointment.mark_arrived']!(
      presence('appointment.mark_arrived'),
      ctxKnown({ status: 'arrived' }, { status: 404, headers: {}, body: { message: 'Not found' } }),
    );
    expect(refused.outcome).toBe('permanent');
  });

  it('notes written as the hub already knows them: unchanged; other notes: not', async () => {
    const update = (comment: string) =>
      ({
        id: 'cmd-n',
        type: 'appointment.update',
        subject: 'appointment/h1',
        data: { comment },
      }) as CommandRequest<'appointment.update'>;
    const answer = { status: 200, headers: {}, body: { id: '1001', notes: 'x' } };
    const known = { status: 'booked', comment: 'Bring the X-ray' };
    expect(
      await commands['appointment.update']!(update('Bring the X-ray'), ctxKnown(known, answer)),
    ).toMatchObject({ outcome: 'done', unchanged: true });
    const other = await commands['appointment.update']!(update('Fasting'), ctxKnown(known, answer));
    expect('unchanged' in other).toBe(false);
    // No notes known (Cliniko's empty notes give no `comment`): clearing them changes nothing.
    expect(
      await commands['appointment.update']!(update(''), ctxKnown({ status: 'booked' }, answer)),
    ).toMatchObject({ unchanged: true });
  });
});
