import { readFileSync } from 'node:fs';
import { ConnectorError } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { parse } from './parse.ts';
import { fixtureSettings, fixtureUrl } from './testing.ts';

const form = (body: string, receivedAt = new Date('2026-03-10T09:00:00Z')) =>
  inboundRequest({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, receivedAt });

describe('parse', () => {
  it("reads Acuity's documented form: action, id, calendarID, appointmentTypeID", () => {
    const [n] = parse(form(readFileSync(fixtureUrl('appointment-scheduled.form'), 'utf8')), fixtureSettings);
    expect(n).toMatchObject({
      type: 'scheduled',
      orderingKey: 'appointment:54321',
      payload: { action: 'scheduled', id: '54321', calendarID: '27238', appointmentTypeID: '1' },
    });
  });

  it('keys scheduled and canceled by action and id (a retry or replay is one), rescheduled and changed also by receive time', () => {
    const key = (body: string, at: string) => parse(form(body, new Date(at)), fixtureSettings)[0]!.dedupeKey;
    expect(key('action=scheduled&id=1', '2026-03-10T09:00:00Z')).toBe(
      key('action=scheduled&id=1', '2026-03-11T09:00:00Z'),
    );
    expect(key('action=scheduled&id=1', '2026-03-10T09:00:00Z')).not.toBe(
      key('action=canceled&id=1', '2026-03-10T09:00:00Z'),
    );
    expect(key('action=rescheduled&id=1', '2026-03-10T09:00:00Z')).not.toBe(
      key('action=rescheduled&id=1', '2026-03-10T10:00:00Z'),
    );
  });

  it('refuses JSON, a form without action or a numeric id, and bytes that are not UTF-8', () => {
    const refuses = (request: ReturnType<typeof form>) => () => parse(request, fixtureSettings);
    expect(refuses(inboundRequest({ body: { action: 'scheduled', id: '1' } }))).toThrow(ConnectorError);
    expect(refuses(form('id=1'))).toThrow('no action');
    expect(refuses(form('action=scheduled&id=abc'))).toThrow('numeric id');
    expect(
      refuses(
        inboundRequest({
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: Buffer.from([0xff, 0xfe]),
        }),
      ),
    ).toThrow('UTF-8');
  });
});
