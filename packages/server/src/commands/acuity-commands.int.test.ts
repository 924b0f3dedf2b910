/**
 * Acuity Scheduling commands through a started hub against the Acuity simulator (its account in
 * UTC-7, as the vendor's own example record): a booking whose answer a gateway replaced after Acuity
 * made it, sent by a CRM in UTC, is found by its next try (booked once) and its `scheduled` webhook
 * is the command's echo; a reschedule and a cancel of that appointment go to Acuity by the hub id
 * the booking's outcome named, each echoed with `causedBy`.
 */
import { AcuitySimulator } from '@switchyard/connector-acuity/simulator';
import { fixtureSettings } from '@switchyard/connector-acuity/testing';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandHub, startCommandHub } from './command-hub.test-support.ts';

const db = useTestDatabase();
let sim: AcuitySimulator;
let c: CommandHub;

beforeAll(async () => {
  sim = new AcuitySimulator({ config: fixtureSettings, retryDelaysMs: [], accountOffset: '-07:00' });
  await sim.start();
  c = await startCommandHub(db.url(), {
    file: 'acuity-commands.yaml',
    instances: [
      '  - id: ac',
      '    connector: acuity',
      '    mode: push',
      '    settings:',
      `      userId: "${fixtureSettings.userId}"`,
      `      apiKey: ${fixtureSettings.apiKey}`,
      `      apiBaseUrl: ${sim.apiBaseUrl}`,
    ],
    subscription: { id: 'crm', events: ['appointment.*', 'command.*'] },
  });
});

afterAll(async () => {
  await c?.stop();
  await sim?.close();
});

const hook = (action: string, id: number) =>
  sim.push(`action=${action}&id=${id}&calendarID=27238&appointmentTypeID=1`, {
    hookUrl: `${c.hub.url}/hooks/ac`,
  });

describe('Acuity commands through a started hub', () => {
  it('book answered 503 after Acuity made it: found by the next try, booked once; its webhook, the reschedule and the cancel each echo their command', async () => {
    sim.failNext({ afterWrite: true, retryAfter: '0' });
    const id = await c.send({
      type: 'appointment.book',
      instance: 'ac',
      data: {
        start: '2026-03-11T03:30:00Z',
        patient: { given: 'Bob', family: 'McTest', email: 'bob.mctest@example.com' },
        practitioner: { id: '27238' },
        service: { id: '1' },
      },
    });
    const booked = await c.finished(id);
    const made = [...sim.appointments.values()];
    expect(made).toHaveLength(1);
    expect(booked).toMatchObject({
      status: 'succeeded',
      result: { alreadyDone: true, vendorIds: [String(made[0]!.id)], appointmentId: expect.any(String) },
    });
    expect(sim.calls.filter((x) => x.method === 'POST')).toHaveLength(1);
    const subject = `appointment/${booked.result.appointmentId}`;
    await hook('scheduled', made[0]!.id);
    expect((await c.delivered('appointment.created', subject)).causedBy).toEqual({ commandId: id });

    const move = await c.send({
      type: 'appointment.reschedule',
      subject,
      data: { start: '2026-03-12T16:00:00Z' },
    });
    expect((await c.finished(move)).status).toBe('succeeded');
    expect(made[0]!.datetime).toBe('2026-03-12T09:00:00-0700');
    await hook('rescheduled', made[0]!.id);
    expect((await c.delivered('appointment.rescheduled', subject)).causedBy).toEqual({ commandId: move });

    const cancel = await c.send({ type: 'appointment.cancel', subject, data: { reason: 'patient called' } });
    expect((await c.finished(cancel)).status).toBe('succeeded');
    expect(made[0]!.canceled).toBe(true);
    await hook('canceled', made[0]!.id);
    expect((await c.delivered('appointment.cancelled', subject)).causedBy).toEqual({ commandId: cancel });
  });
});
