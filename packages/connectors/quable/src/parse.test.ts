import { readFileSync } from 'node:fs';
import { type ConnectorError, type JsonObject, toRfc3339 } from '@switchyard/core';
import { inboundRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { parse, routes } from './parse.ts';

const config: Config = { authorization: 'Bearer qb-test-0123456789abcdef' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

describe('parse', () => {
  it('answers one route: the instance URL', () => {
    expect(routes).toEqual([{ name: 'default', path: '' }]);
  });

  it('keys the vendor example by uuid and orders it by resource code', () => {
    const body = fixture('doc-example-document-update.json');
    expect(parse(inboundRequest({ body }), config)).toEqual([
      {
        type: 'document.update',
        dedupeKey: 'ce6c64a3-4f27-4b0e-862c-ee780eae06d1',
        orderingKey: 'product_blue_pant',
        occurredAt: '2020-06-18T11:48:17+00:00',
        payload: body,
      },
    ]);
  });

  it('orders a finish event by its process when it has no resource', () => {
    const body = fixture('import-finish.json');
    delete body.resource;
    expect(parse(inboundRequest({ body }), config)[0]?.orderingKey).toBe('imp-20260310-0042');
  });

  it('stores a notification without uuid under a content key rather than refusing it', () => {
    const body = fixture('media-update.json');
    delete body.uuid;
    const key = (b: JsonObject) => parse(inboundRequest({ body: b }), config)[0]?.dedupeKey;
    expect(key(body)).toMatch(/^sha256:/);
    expect(key(body)).toBe(key(structuredClone(body)));
    expect(key({ ...body, created_at: '2026-03-10T10:06:00+01:00' })).not.toBe(key(body));
  });

  it('refuses a body without an event code or that is not a JSON object', () => {
    const kind = (body: unknown) => {
      try {
        parse(inboundRequest({ body: body as JsonObject }), config);
        return 'parsed';
      } catch (error) {
        return (error as ConnectorError).kind;
      }
    };
    expect(kind({ uuid: 'ce6c64a3-4f27-4b0e-862c-ee780eae06d1' })).toBe('bad_request');
    expect(kind({ uuid: 'x', code: '  ' })).toBe('bad_request');
    expect(kind([fixture('document-create.json')])).toBe('bad_request');
    expect(kind('not json {')).toBe('bad_request');
  });
});

describe('toRfc3339', () => {
  it('keeps Quable offsets and reads an offset-less time as UTC', () => {
    expect(toRfc3339('2020-06-18T11:48:17+00:00')).toBe('2020-06-18T11:48:17+00:00');
    expect(toRfc3339('2020-06-18 11:48:17')).toBe('2020-06-18T11:48:17Z');
    expect(toRfc3339('2020-06-18T11:48:17+0200')).toBe('2020-06-18T11:48:17+02:00');
    expect(toRfc3339('18/06/2020')).toBeUndefined();
  });
});
