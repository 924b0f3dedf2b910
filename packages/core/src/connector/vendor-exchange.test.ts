import { describe, expect, it } from 'vitest';
import { vendorRequestInit, vendorResponseBody } from './vendor-exchange.ts';

describe('vendorRequestInit', () => {
  it('defaults the method by the body, sets the body type and accept unless the caller did', () => {
    const get = vendorRequestInit({ url: 'https://v.example/a' });
    expect([get.method, get.headers.get('accept'), get.body]).toEqual(['GET', 'application/json', undefined]);
    const form = vendorRequestInit({
      url: 'https://v.example/t',
      form: { grant_type: 'client_credentials' },
    });
    expect([form.method, form.headers.get('content-type'), form.body]).toEqual([
      'POST',
      'application/x-www-form-urlencoded',
      'grant_type=client_credentials',
    ]);
    const json = vendorRequestInit({
      url: 'https://v.example/b',
      method: 'PUT',
      json: { a: 1 },
      headers: { 'content-type': 'application/vnd.api+json', accept: 'text/plain' },
    });
    expect([json.method, json.headers.get('content-type'), json.headers.get('accept'), json.body]).toEqual([
      'PUT',
      'application/vnd.api+json',
      'text/plain',
      '{"a":1}',
    ]);
    expect(() => vendorRequestInit({ url: 'https://v.example', json: {}, form: {} })).toThrow(TypeError);
  });
});

describe('vendorResponseBody', () => {
  it('parses JSON answers and keeps anything else, or JSON that does not parse, as text', () => {
    expect(vendorResponseBody('{"id":1}', 'application/json; charset=utf-8')).toEqual({ id: 1 });
    expect(vendorResponseBody('[1]', 'application/problem+json')).toEqual([1]);
    expect(vendorResponseBody('"x"', ' text/json')).toBe('x');
    expect(vendorResponseBody('<html>down</html>', 'application/json')).toBe('<html>down</html>');
    expect(vendorResponseBody('{"id":1}', 'text/html')).toBe('{"id":1}');
    expect(vendorResponseBody('{"id":1}', null)).toBe('{"id":1}');
    expect(vendorResponseBody('', 'application/json')).toBe('');
  });
});
