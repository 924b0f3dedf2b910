import { readFileSync } from 'node:fs';
import { type ConnectorError, type JsonObject, toRfc3339 } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { parse, routes } from './parse.ts';

const config: Config = { auth: { secret: 'in-test-secret-0123456789abcdef' } };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;
const created = fixture('soap-note-created.json');

function badRequest(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect((error as ConnectorError).kind).toBe('bad_request');
    return (error as ConnectorError).message;
  }
  throw new Error('expected a bad_request ConnectorError');
}

describe('routes', () => {
  it('answers the instance URL and the URL with the secret as last segment', () => {
    expect(routes).toEqual([
      { name: 'default', path: '' },
      { name: 'secret', path: ':secret' },
    ]);
  });
});

describe('parse', () => {
  it('turns the vendor sample into one notification keyed by note id', () => {
    const [n, ...rest] = parse(inboundRequest({ body: created }), config);
    expect(rest).toEqual([]);
    expect(n).toMatchObject({
      type: 'soap_note.created',
      orderingKey: '10',
      occurredAt: '2018-03-26T14:20:00Z',
      payload: created,
      meta: { route: 'default' },
    });
    expect(n?.dedupeKey).toMatch(/^sha256:[0-9a-f]{40}$/);
  });

  it('gives a vendor retry the same key, and a re-send with a new envelope time a new one', () => {
    const key = (body: JsonObject) => parse(inboundRequest({ body }), config)[0]?.dedupeKey;
    const data = created.data as JsonObject;
    const note = data.object as JsonObject;
    expect(key(structuredClone(created))).toBe(key(created));
    expect(key({ ...created, created_at: '2018-04-01T08:00:00Z' })).not.toBe(key(created));
    expect(key({ ...created, data: { object: { ...note, updated_at: '2018-03-26T15:00:00Z' } } })).not.toBe(
      key(created),
    );
    expect(key({ ...created, type: 'soap_note.updated' })).not.toBe(key(created));
    expect(key({ ...created, data: { object: { ...note, id: 11 } } })).not.toBe(key(created));
  });

  it('refuses the page sample as printed (trailing commas are not JSON)', () => {
    const text =
      '{ "created_at": "2018-03-26T14:20:00Z", "data": { "object": { "id": 10, }, }, "type": "soap_note.created" }';
    expect(badRequest(() => parse(inboundRequest({ body: text }), config))).toContain('not valid JSON');
  });

  it('refuses bodies that cannot be a SOAP note event', () => {
    expect(badRequest(() => parse(inboundRequest({ body: {} }), config))).toContain('no type');
    expect(
      badRequest(() => parse(inboundRequest({ body: { type: 'soap_note.updated' } }), config)),
    ).toContain('no data.object');
    expect(
      badRequest(() =>
        parse(inboundRequest({ body: { type: 'soap_note.created', data: { object: {} } } }), config),
      ),
    ).toContain('no data.object.id');
  });

  it('keeps unknown types (normalize ignores them) with distinct keys', () => {
    const [n] = parse(inboundRequest({ body: fixture('invoice-created-unknown.json') }), config);
    expect(n).toMatchObject({
      type: 'invoice.created',
      orderingKey: '901',
      occurredAt: '2018-03-29T17:00:00Z',
    });
    const bare = (body: JsonObject) => parse(inboundRequest({ body }), config)[0]?.dedupeKey;
    expect(bare({ type: 'ping', a: 1 })).not.toBe(bare({ type: 'ping', a: 2 }));
  });
});

describe('toRfc3339', () => {
  it('keeps offsets, adds seconds, and reads an offset-less time as UTC', () => {
    expect(toRfc3339('2018-03-26T14:20:00Z')).toBe('2018-03-26T14:20:00Z');
    expect(toRfc3339('2018-03-26T14:20:00.123+01:00')).toBe('2018-03-26T14:20:00.123+01:00');
    expect(toRfc3339('2018-03-26 14:20')).toBe('2018-03-26T14:20:00Z');
    expect(toRfc3339('2018-03-26T14:20:00+0530')).toBe('2018-03-26T14:20:00+05:30');
    expect(toRfc3339('yesterday')).toBeUndefined();
    expect(toRfc3339('2018-13-45T99:00:00Z')).toBeUndefined();
    expect(toRfc3339(undefined)).toBeUndefined();
  });
});
