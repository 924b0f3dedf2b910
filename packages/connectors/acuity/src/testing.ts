/**
 * `@switchyard/connector-acuity/testing`: what this package's simulator and tests outside the
 * package may use (the connector, its config and vendor types, the signature headers, `encode`, the
 * fixture files and the API answers they need). Not imported by production code.
 *
 * @example
 * ```ts
 * import { acuityConnector, fixtureUrl } from '@switchyard/connector-acuity/testing';
 * const body = readFileSync(fixtureUrl('appointment-scheduled.form'), 'utf8');
 * ```
 */
import { readFileSync } from 'node:fs';
import type { VendorRequest, VendorResponse } from '@switchyard/core';
import { apiHeaders, type Config } from './config.ts';

export { credentialHeaders } from './auth.ts';
export type { Config } from './config.ts';
export { encode } from './encode.ts';
export { acuityConnector } from './index.ts';
export type { AcuityAppointment, AcuityWebhook } from './vendor.ts';

/**
 * The URL of a file of this connector's fixture folders: `fixtures/` (webhooks) unless `dir` names
 * another (`fixtures-api`: the API's appointment records).
 *
 * @example
 * ```ts
 * const url = fixtureUrl('appointment-54321.json', 'fixtures-api');
 * ```
 */
export function fixtureUrl(name: string, dir = 'fixtures'): URL {
  return new URL(`../${dir}/${name}`, import.meta.url);
}

/**
 * Settings under which this connector's fixtures normalize (the conformance test's).
 *
 * @example
 * ```ts
 * const ctx = memoryNormalizeContext({ instanceId: 'test', config: fixtureSettings, vendorApi: fixtureVendorApi });
 * ```
 */
export const fixtureSettings: Config = {
  userId: '11145481',
  apiKey: 'test-api-key-0123456789abcdef',
  apiBaseUrl: 'https://acuity.test/api/v1',
};

/**
 * The Acuity API as the fixtures need it: `GET /appointments/:id` answered from `fixtures-api/`,
 * 404 for an id it has not, 401 without {@link fixtureSettings}' credentials.
 *
 * @example
 * ```ts
 * fixtureVendorApi({ url: 'https://acuity.test/api/v1/appointments/54321', headers }); // 200 Bob McTest
 * ```
 */
export function fixtureVendorApi(request: VendorRequest): VendorResponse {
  if (request.headers?.authorization !== apiHeaders(fixtureSettings).authorization) {
    return {
      status: 401,
      headers: {},
      body: { status_code: 401, message: 'Unauthorized', error: 'unauthorized' },
    };
  }
  const id = /\/appointments\/(\d+)$/.exec(request.url)?.[1];
  try {
    if (id === undefined) throw new Error('no id');
    const body = JSON.parse(readFileSync(fixtureUrl(`appointment-${id}.json`, 'fixtures-api'), 'utf8'));
    return { status: 200, headers: { 'content-type': 'application/json' }, body };
  } catch {
    return { status: 404, headers: {}, body: { status_code: 404, message: 'Not Found', error: 'not_found' } };
  }
}
