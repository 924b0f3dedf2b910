/**
 * How a {@link VendorRequest} goes on the wire and how the answer comes back, shared by the hub's
 * vendor client (`packages/server/src/delivery/vendor-http.ts`) and the testing package's
 * `fetchVendorHttp`, so that a connector tested against a simulator sees what the hub's client
 * would send and answer: the two had written the same rules twice.
 */
import type { JsonValue } from '../json.ts';
import type { VendorRequest } from './types.ts';

/**
 * The method, headers and body of a vendor request. The method defaults to GET, or POST when a
 * `json` or `form` body is given; `json` goes as `application/json`, `form` as
 * `application/x-www-form-urlencoded` (a caller's own `content-type` wins); `accept:
 * application/json` is added unless set. Throws TypeError for a request with both bodies.
 *
 * @example
 * ```ts
 * const { method, headers, body } = vendorRequestInit({ url, form: { grant_type: 'client_credentials' } });
 * // 'POST', content-type application/x-www-form-urlencoded, 'grant_type=client_credentials'
 * ```
 */
export function vendorRequestInit(request: VendorRequest): {
  method: string;
  headers: Headers;
  body: string | undefined;
} {
  if (request.json !== undefined && request.form !== undefined) {
    throw new TypeError('a vendor request takes json or form, not both');
  }
  const method =
    request.method ?? (request.json !== undefined || request.form !== undefined ? 'POST' : 'GET');
  const headers = new Headers(request.headers ?? {});
  if (!headers.has('accept')) headers.set('accept', 'application/json');
  let body: string | undefined;
  if (request.json !== undefined) {
    body = JSON.stringify(request.json);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  } else if (request.form !== undefined) {
    body = new URLSearchParams(request.form).toString();
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded');
  }
  return { method, headers, body };
}

/**
 * A vendor's answer body as a connector gets it: parsed when its content type is JSON
 * (`application/json`, `application/*+json`, `text/json`) and it parses; else the text.
 *
 * @example
 * ```ts
 * vendorResponseBody('{"id":1}', 'application/json; charset=utf-8'); // { id: 1 }
 * vendorResponseBody('<html>…', 'application/json'); // '<html>…'
 * ```
 */
export function vendorResponseBody(text: string, contentType: string | null): JsonValue | string {
  if (text === '' || contentType === null || !JSON_TYPE.test(contentType.trim())) return text;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b|^text\/json\b/i;
