import { readFileSync } from 'node:fs';
import { type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import connector from './index.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { signingKey: 'test-signing-secret-0123456789abcdef' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;
const A = 'https://api.calendly.com/scheduled_events/EVENT00000000001/invitees/INVITEE000000001';
const B = 'https://api.calendly.com/scheduled_events/EVENT00000000002/invitees/INVITEE000000002';

async function run(ctx: ReturnType<typeof memoryNormalizeContext<Config>>, file: string) {
  const [notification] = parse(inboundRequest({ body: fixture(file) }), config);
  const result = await normalize(notification!, ctx);
  for (const [index, draft] of result.events.entries()) {
    const event = completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector,
      notification: notification!,
      index,
    });
    expect(validateEvent(event), file).toEqual({ valid: true });
  }
  return result;
}

describe('normalize', () => {
  it('maps invitee.created to a valid appointment.created', async () => {
    const ctx = memoryNormalizeContext<Config>({ instanceId: 'main', config });
    const result = await run(ctx, 'invitee-created.json');
    const hubId = await ctx.aliases.hubId('appointment', A);
    expect(result.events).toEqual([
      {
        type: 'appointment.created',
        subject: `appointment/${hubId}`,
        time: '2026-03-08T17:04:12.000000Z',
        data: {
          id: hubId,
          vendorIds: [{ system: connector.name, instance: 'main', value: A, current: true }],
          status: 'booked',
          start: '2026-03-10T10:30:00.000000Z',
          end: '2026-03-10T11:00:00.000000Z',
          durationMinutes: 30,
          patient: {
            name: 'Ada Lovelace',
            given: 'Ada',
            family: 'Lovelace',
            email: 'ada.lovelace@example.com',
          },
          practitioner: { id: 'https://api.calendly.com/users/HOST000000000001', name: 'Dr Jane Host' },
          service: {
            id: 'https://api.calendly.com/event_types/EVTYPE0000000001',
            name: '30 Minute Consultation',
          },
          bookedAt: '2026-03-08T17:04:11.000000Z',
          vendor: fixture('invitee-created.json'),
        },
      },
    ]);
  });

  it('keeps one subject through a reschedule and the new invitee’s cancellation, in either arrival order', async () => {
    for (const order of [
      ['invitee-canceled-rescheduled.json', 'invitee-created-rescheduled.json'],
      ['invitee-created-rescheduled.json', 'invitee-canceled-rescheduled.json'],
    ]) {
      const ctx = memoryNormalizeContext<Config>({ instanceId: 'main', config });
      const created = await run(ctx, 'invitee-created.json');
      const subject = created.events[0]!.subject;
      const results = [await run(ctx, order[0]!), await run(ctx, order[1]!)];
      const moved = results.flatMap((r) => r.events);
      expect(
        moved.map((e) => [e.type, e.subject]),
        order.join(' then '),
      ).toEqual([['appointment.rescheduled', subject]]);
      expect((moved[0]!.data as JsonObject).previous).toEqual({
        start: '2026-03-10T10:30:00.000000Z',
        end: '2026-03-10T11:00:00.000000Z',
        vendorId: A,
      });
      expect(results.find((r) => r.events.length === 0)!.ignored).toContain('a reschedule');
      const cancelled = await run(ctx, 'invitee-canceled.json');
      expect(cancelled.events.map((e) => [e.type, e.subject])).toEqual([['appointment.cancelled', subject]]);
      expect(cancelled.events[0]!.data).toMatchObject({
        status: 'cancelled',
        start: '2026-03-12T08:00:00.000000Z',
        cancelledAt: '2026-03-11T18:45:29.000000Z',
        cancelledBy: { kind: 'practitioner', vendorValue: 'host', name: 'Dr Jane Host' },
      });
      expect(await ctx.aliases.find('appointment', B)).toBe(subject.slice('appointment/'.length));
    }
  });

  it('maps a no-show mark and its removal (invitee_no_show.created / .deleted) to appointment.no_show and appointment.status_reverted', async () => {
    const ctx = memoryNormalizeContext<Config>({ instanceId: 'main', config });
    const created = await run(ctx, 'invitee-created.json');
    const subject = created.events[0]!.subject;
    // Before: both stored as ignored ("has no normalized counterpart").
    const marked = await run(ctx, 'invitee-no-show-created.json');
    expect(marked.events.map((e) => [e.type, e.subject, e.time])).toEqual([
      ['appointment.no_show', subject, '2026-03-10T11:20:05.000000Z'],
    ]);
    expect(marked.events[0]!.data).toMatchObject({
      status: 'noshow',
      start: '2026-03-10T10:30:00.000000Z',
      vendorIds: [{ system: connector.name, instance: 'main', value: A, current: true }],
    });
    const unmarked = await run(ctx, 'invitee-no-show-deleted.json');
    expect(unmarked.events.map((e) => [e.type, e.subject])).toEqual([
      ['appointment.status_reverted', subject],
    ]);
    expect(unmarked.events[0]!.data).toMatchObject({ status: 'booked', changes: ['status'] });
    // A mark made again after its removal is another webhook, not a duplicate of the first.
    const keys = ['invitee-no-show-created.json', 'invitee-no-show-deleted.json'].map(
      (f) => parse(inboundRequest({ body: fixture(f) }), config)[0]!,
    );
    const again = fixture('invitee-no-show-created.json');
    again.created_at = '2026-03-10T12:01:00.000000Z';
    const remarked = parse(inboundRequest({ body: again }), config)[0]!;
    expect(new Set([...keys, remarked].map((n) => n.dedupeKey)).size).toBe(3);
    // Ordered with the invitee's other webhooks (one person, one ordering key).
    const [booked] = parse(inboundRequest({ body: fixture('invitee-created.json') }), config);
    expect(keys.map((n) => n.orderingKey)).toEqual([booked!.orderingKey, booked!.orderingKey]);
  });

  it('stores other Calendly events as ignored', async () => {
    const ctx = memoryNormalizeContext<Config>({ config });
    const result = await run(ctx, 'routing-form-submission-created.json');
    expect(result).toEqual({
      events: [],
      ignored: 'Calendly "routing_form_submission.created" has no normalized counterpart',
    });
  });
});
