/**
 * A {@link VendorHttp} over real HTTP for connector tests against a simulator, behaving as the one
 * the hub lends (`packages/server/src/delivery/vendor-http.ts`) where a connector can tell: the
 * method defaults to GET, or POST with a body; `json` goes as `application/json`, `form` as
 * `application/x-www-form-urlencoded` (a caller's own `content-type` wins); `accept:
 * application/json` unless set; redirects are not followed (a 3xx is the answer); it resolves for
 * every status, parses JSON answers (`application/json`, `*+json`; an empty or unparsable one is
 * the text), gives header names lowercase, and throws `ConnectorError.transient` on network errors
 * and timeouts (`timeoutMs`, default 10 s). What the hub adds (the destination check, the answer
 * size cap, logs, traces) is not here: the end-to-end test runs the real one.
 *
 * @example
 * ```ts
 * const sim = new AcmeSimulator();
 * const config = { apiBaseUrl: await sim.start(), apiKey: 'k' };
 * // As the context's vendorApi: each call goes over HTTP and is kept in ctx.vendorRequests.
 * const ctx = memoryCommandContext({ config, vendorIds: ['42'], vendorApi: fetchVendorHttp.request });
 * await commands['appointment.cancel']!(command, ctx); // a real PATCH to the simulator
 * ```
 */
import {
  ConnectorError,
  type VendorHttp,
  type VendorRequest,
  type VendorResponse,
  vendorRequestInit,
  vendorResponseBody,
} from '@switchyard/core';

export const fetchVendorHttp: VendorHttp = {
  async request(request: VendorRequest): Promise<VendorResponse> {
    const { method, headers, body } = vendorRequestInit(request);
    const timeoutMs = request.timeoutMs ?? 10_000;
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(request.url, { method, headers, body, signal, redirect: 'manual' });
      text = await response.text();
    } catch (error) {
      const what = signal.aborted ? `timed out after ${timeoutMs} ms` : `failed: ${(error as Error).message}`;
      throw ConnectorError.transient(`vendor API ${method} ${new URL(request.url).origin} ${what}`);
    }
    const parsed = vendorResponseBody(text, response.headers.get('content-type'));
    const responseHeaders: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      responseHeaders[name] = value;
    });
    return { status: response.status, headers: responseHeaders, body: parsed };
  },
};
