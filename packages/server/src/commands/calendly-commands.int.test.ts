/**
 * Calendly commands through a started hub against the Calendly simulator: a booking arrives as its
 * `invitee.created` webhook; a no-show, its removal and a cancel of that appointment each go to
 * Calendly's API v2 by the invitee URI the hub keyed it by, each answered by a gateway's 503 after
 * Calendly carried it out (the answer lost): the hub's next try reads the state reached instead of
 * writing again (one write each), and the webhook Calendly then sends is the command's echo.
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

const hook = async (event: string) => {
  const record = await sim.push(sim.webhook(event, URI), { hookUrl: `${c.hub.url}/hooks/cal` });
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
});
