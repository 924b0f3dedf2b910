import type { EventEnvelope, InboundRequest } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import { parse } from './parse.ts';

const config: Config = { auth: { mode: 'either', key: 'k'.repeat(24) } };

function event(type: string, data: Record<string, unknown> = {}, vendortype = ''): EventEnvelope {
  return {
    specversion: '1.0',
    id: 'evt-1',
    type,
    source: 'cw-test',
    subject: 'appointment/hub-1',
    time: '2026-03-10T16:30:00Z',
    datacontenttype: 'application/json',
    connector: 'clockwisemd',
    instance: 'cw-test',
    vendortype,
    data: {
      id: 'hub-1',
      status: 'booked',
      vendorIds: [
        { system: 'clockwisemd', instance: 'cw-test', value: '111', current: false },
        { system: 'clockwisemd', instance: 'cw-test', value: '12345', current: true },
      ],
      ...data,
    },
  };
}

describe('clockwisemd encode', () => {
  it.each([
    ['appointment.created', {}, 'create'],
    ['appointment.rescheduled', {}, 'reschedule'],
    ['appointment.updated', {}, 'demographics_update'],
    ['appointment.arrived', {}, 'checkin'],
    ['appointment.checked_in', {}, 'ready'],
    ['appointment.in_progress', {}, 'callback'],
    ['appointment.completed', {}, 'discharge'],
    ['appointment.no_show', {}, 'remove'],
    ['appointment.cancelled', {}, 'remove'],
    ['appointment.restored', {}, 'undo_remove'],
    ['appointment.status_reverted', { workflowStep: 'scheduled' }, 'undo_checkin'],
    ['appointment.status_reverted', { workflowStep: 'arrived' }, 'undo_ready'],
    ['appointment.status_reverted', { workflowStep: 'ready' }, 'undo_callback'],
    ['appointment.status_reverted', { workflowStep: 'in_progress' }, 'undo_discharge'],
  ])('%s (%o) becomes %s for the current appointment id', (type, data, vendorType) => {
    const encoded = encode(event(type, data), config);
    expect(encoded).toEqual({ route: 'default', body: { appointment_id: 12345, event_type: vendorType } });
  });

  it('prefers the recorded vendor type when it produces the event type', () => {
    expect(encode(event('appointment.status_reverted', {}, 'undo_ready'), config).body).toMatchObject({
      event_type: 'undo_ready',
    });
    // An undone no-show: back to scheduled like undo_checkin, but Clockwise.MD sent undo_remove.
    expect(
      encode(event('appointment.status_reverted', { workflowStep: 'scheduled' }, 'undo_remove'), config).body,
    ).toMatchObject({ event_type: 'undo_remove' });
  });

  it('refuses events Clockwise.MD cannot produce, or without a Clockwise id', () => {
    expect(() => encode(event('appointment.confirmed'), config)).toThrow(/no webhook/);
    expect(() => encode(event('appointment.created', { vendorIds: [] }), config)).toThrow(/no Clockwise.MD/);
  });

  it('produces a body parse accepts', () => {
    const encoded = encode(event('appointment.arrived'), config);
    const request: InboundRequest = {
      route: encoded.route,
      params: {},
      query: {},
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      rawBody: Buffer.from(JSON.stringify(encoded.body)),
      sourceIp: '127.0.0.1',
      receivedAt: new Date(),
    };
    expect(parse(request, config)[0]).toMatchObject({ type: 'checkin', orderingKey: 'appointment:12345' });
  });
});
