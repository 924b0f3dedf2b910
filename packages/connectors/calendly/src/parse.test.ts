import { readFileSync } from 'node:fs';
import type { ConnectorError, JsonObject } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { parse } from './parse.ts';

const config: Config = { signingKey: 'test-signing-secret-0123456789abcdef' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

describe('parse', () => {
  it('keys an invitee webhook by event and invitee, dated by Calendly, ordered by the person', () => {
    const body = fixture('invitee-created.json');
    const [n] = parse(inboundRequest({ body }), config);
    expect(n).toMatchObject({
      type: 'invitee.created',
      occurredAt: '2026-03-08T17:04:12.000000Z',
      payload: body,
    });
    expect(n!.dedupeKey).toMatch(/^sha256:/);
    expect(n!.orderingKey).toMatch(/^invitee:[0-9a-f]{32}$/);
    // The address is hashed: the ordering key, a column of its own, holds no personal data.
    expect(n!.orderingKey).not.toContain('example.com');
  });

  it('gives the old and the new invitee of a reschedule one ordering key, and different dedupe keys', () => {
    const keys = [
      'invitee-created.json',
      'invitee-canceled-rescheduled.json',
      'invitee-created-rescheduled.json',
      'invitee-canceled.json',
    ].map((file) => parse(inboundRequest({ body: fixture(file) }), config)[0]!);
    expect(new Set(keys.map((n) => n.orderingKey)).size).toBe(1);
    expect(new Set(keys.map((n) => n.dedupeKey)).size).toBe(4);
  });

  it('keeps the dedupe key of a retry, whose envelope Calendly may date anew', () => {
    const body = fixture('invitee-created.json');
    const retried = { ...body, created_at: '2026-03-08T17:05:12.000000Z' };
    expect(parse(inboundRequest({ body: retried }), config)[0]!.dedupeKey).toBe(
      parse(inboundRequest({ body }), config)[0]!.dedupeKey,
    );
  });

  it('refuses a body without an event name, a payload, or an invitee URI', () => {
    const kind = (body: JsonObject) => {
      try {
        parse(inboundRequest({ body }), config);
        return 'parsed';
      } catch (error) {
        return (error as ConnectorError).kind;
      }
    };
    expect(kind({ payload: { uri: 'x' } })).toBe('bad_request');
    expect(kind({ event: 'invitee.created' })).toBe('bad_request');
    expect(kind({ event: 'invitee.created', payload: { email: 'a@example.com' } })).toBe('bad_request');
    expect(kind(fixture('routing-form-submission-created.json'))).toBe('parsed');
  });
});
