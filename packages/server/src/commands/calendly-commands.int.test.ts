/**
 * Calendly commands through a started hub against the Calendly simulator: a booking arrives as its
 * `invitee.created` webhook; a no-show, its removal and a cancel of that appointment each go to
 * Calendly's API v2 by the invitee URI the hub keyed it by, each answered by a gateway's 503 after
 * Calendly carried it out (the answer lost): the hub's next try reads the state reached instead of
 * writing again (one write each), and the webhook Calendly then sends is the command's echo. A
 * booking through the Scheduling API (`POST /invitees`) answered alike is found by the next try's
 * lookup (booked once), and its `invitee.created` lands on the hub id the command's outcome named.
 */
import { readFileSync } from 'node:fs';
import { CalendlySimulator } from '@switchyard/connector-calendly/simulator';
import { fixtureSettings, fixtureUrl } from '@switchyard/connector-calendly/testing';
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandHub, startCommandHub } from './command-hub.test-support.ts';

const db = useTestDatabase();
const settings = { ...fixtureSettings, apiToken: 'test-personal-access-token-0123' };
const created = JSON.parse(readFileSync(fixtureUrl('invitee-created.json'), 'utf8')) as {
  payload: JsonObject;
};
const URI = String(created.payload.uri);
let sim: CalendlySimulator;
let c: CommandHub;

beforeAll(async () => {
  sim = new CalendlySimulator({ config: settings, retryDelaysMs: [] });
  await sim.start();
  sim.add(created.payload);
  c = await startCommandHub(db.url(), {
    file: 'calendly-commands.yaml',
    instances: [
      '  - id: cal',
      '    connector: calendly',
      '    mode: push',
      '    settings:',
      `      signingKey: ${settings.signingKey}`,
      `      apiToken: ${settings.apiToken}`,
      `      apiBaseUrl: ${sim.apiBaseUrl}`,
    ],
    subscription: { id: 'crm', events: ['appointment.*', 'command.*'] },
  });
});

afterAll(async () => {
  await c?.stop();
  await sim?.close();
});

const hook = async (event: string, uri = URI) => {
  const record = await sim.push(sim.webhook(event, uri), { hookUrl: `${c.hub.url}/hooks/cal` });
  expect(record.delivered).toBe(true);
};
const writes = (method: string, path: string) =>
  sim.calls.filter((x) => x.method === method && x.path === path);

describe('Calendly commands through a started hub', () => {
  it('mark_no_show, clear_presence and cancel, each answered 503 after Calendly carried it out: done by the next try without a second write, each echoed by its webhook', async () => {
    await hook('invitee.created');
    const subject = (await c.subscriber.waitFor((x) => x.type === 'appointment.created', 15_000)).subject!;

    sim.failNext({ afterWrite: true, retryAfter: '0' });
    const noShow = await c.send({ type: 'appointment.mark_no_show', subject, data: {} });
    expect(await c.finished(noShow)).toMatchObject({ status: 'succeeded', result: { alreadyDone: true } });
    expect(writes('POST', '/invitee_no_shows')).toMatchObject([{ status: 503, body: { invitee: URI } }]);
    await hook('invitee_no_show.created');
    expect((await c.delivered('appointment.no_show', subject)).causedBy).toEqual({ commandId: noShow });

    sim.failNext({ afterWrite: true, retryAfter: '0' });
    const clear = await c.send({ type: 'appointment.clear_presence', subject, data: {} });
    expect(await c.finished(clear)).toMatchObject({ status: 'succeeded', result: { alreadyDone: true } });
    expect(sim.calls.filter((x) => x.method === 'DELETE')).toHaveLength(1);
    expect(sim.invitees.get(URI)!.no_show).toBeNull();
    await hook('invitee_no_show.deleted');
    expect((await c.delivered('appointment.status_reverted', subject)).causedBy).toEqual({
      commandId: clear,
    });

    sim.failNext({ afterWrite: true, retryAfter: '0' });
    const cancel = await c.send({ type: 'appointment.cancel', subject, data: { reason: 'patient called' } });
    expect(await c.finished(cancel)).toMatchObject({ status: 'succeeded', result: { alreadyDone: true } });
    expect(writes('POST', '/scheduled_events/EVENT00000000001/cancellation')).toMatchObject([
      { status: 503, body: { reason: 'patient called' } },
    ]);
    await hook('invitee.canceled');
    expect((await c.delivered('appointment.cancelled', subject)).causedBy).toEqual({ commandId: cancel });
  });

  it("book answered 503 after Calendly made it: found by the next try, booked once; its invitee.created is one appointment, the command's echo", async () => {
    sim.failNext({ afterWrite: true, retryAfter: '0' });
    const id = await c.send({
      type: 'appointment.book',
      instance: 'cal',
      data: {
        start: '2026-03-11T11:30:00+01:00',
        patient: { name: 'Grace Hopper', email: 'grace.hopper@example.com' },
        service: { id: 'https://api.calendly.com/event_types/EVTYPE0000000001' },
        vendor: { timezone: 'Europe/Paris' },
      },
    });
    const booked = await c.finished(id);
    const made = [...sim.invitees.values()].filter((i) => i.email === 'grace.hopper@example.com');
    expect(made).toHaveLength(1);
    expect(booked).toMatchObject({
      status: 'succeeded',
      result: { alreadyDone: true, vendorIds: [made[0]!.uri], appointmentId: expect.any(String) },
    });
    expect(writes('POST', '/invitees')).toHaveLength(1);
    const subject = `appointment/${booked.result.appointmentId}`;
    await hook('invitee.created', String(made[0]!.uri));
    const echo = await c.delivered('appointment.created', subject);
    expect(echo.causedBy).toEqual({ commandId: id });
    expect(echo).toMatchObject({
      start: '2026-03-11T10:30:00.000Z',
      patient: { email: 'grace.hopper@example.com' },
    });
  });

  it('a booking Calendly cannot make (no event type URI, no email) is refused at once, 422 SY_COMMAND_UNSUPPORTED, nothing sent', async () => {
    const before = sim.calls.length;
    const r = await c.api('POST', '/v1/commands', {
      type: 'appointment.book',
      instance: 'cal',
      data: {
        start: '2026-03-12T09:00:00Z',
        patient: { name: 'Grace Hopper' },
        service: { id: 'EVTYPE0000000001' },
      },
    });
    expect(r).toMatchObject({ status: 422, json: { code: 'SY_COMMAND_UNSUPPORTED' } });
    expect(String(r.json.detail)).toMatch(/service\.id \(the event type URI.*patient\.email/);
    expect(sim.calls.length).toBe(before);
  });
});
