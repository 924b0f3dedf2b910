/**
 * A proxy's or a vendor's maintenance page over real HTTP: every request is answered `200
 * text/html`, whatever was asked. Put in front of a simulator for the calls a test picks
 * ({@link MaintenancePage.before}), it shows what a connector does with a 2xx that is not the
 * vendor's answer: a write whose answer must name what it made (a booking) is not done on it
 * (`createdOutcome`, docs/writing-a-connector.md).
 *
 * Tests import it as `@switchyard/testing/simulator-kit/maintenance-page`.
 */
import type { VendorHttp, VendorRequest } from '@switchyard/core';
import { fetchVendorHttp } from '../vendor-http.ts';
import { closeServer, listenLocal, readBody } from './server.ts';

/** A started maintenance page: its base URL, the requests it answered, and how to route to it. */
export interface MaintenancePage {
  url: string;
  /** `METHOD path` of every request it answered. */
  readonly answered: string[];
  /**
   * A VendorHttp that sends the requests `match` picks (method and URL, `POST https://…/book`) to
   * this page, the same path on its host, and the others through `http` (default
   * `fetchVendorHttp`), each over real HTTP.
   */
  before(match: (request: VendorRequest) => boolean, http?: VendorHttp): VendorHttp;
  close(): Promise<void>;
}

const PAGE =
  '<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>We will be back soon</h1></body></html>';

/**
 * Starts a page on 127.0.0.1 answering every request `200 text/html`.
 *
 * @example
 * ```ts
 * const page = await startMaintenancePage();
 * const http = page.before((r) => r.method === 'POST' && r.url.endsWith('/book'));
 * const result = await commands['appointment.book']!(command, { ...ctx, http }); // transient, not done
 * await page.close();
 * ```
 */
export async function startMaintenancePage(): Promise<MaintenancePage> {
  const answered: string[] = [];
  const { server, url } = await listenLocal(
    async (req, res) => {
      await readBody(req);
      answered.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    },
    (_error, _req, res) => res.end(),
  );
  return {
    url,
    answered,
    before(match, http = fetchVendorHttp) {
      return {
        request(request) {
          if (!match(request)) return http.request(request);
          const to = new URL(request.url);
          return fetchVendorHttp.request({ ...request, url: `${url}${to.pathname}${to.search}` });
        },
      };
    },
    close: () => closeServer(server),
  };
}
