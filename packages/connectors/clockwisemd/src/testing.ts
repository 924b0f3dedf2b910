/**
 * `@switchyard/connector-clockwisemd/testing`: what this package's simulator and tests outside the package may use (the
 * connector, its config and vendor types, `encode`, the fixture files). Other packages import it by
 * this name, never by a relative path into `src/`. Not imported by production code.
 *
 * @example
 * ```ts
 * import { clockwisemdConnector, fixtureUrl } from '@switchyard/connector-clockwisemd/testing';
 *
 * const body = readFileSync(fixtureUrl('callback.json'), 'utf8');
 * ```
 */
import { readFileSync } from 'node:fs';
import type { VendorRequest, VendorResponse } from '@switchyard/core';
import type { Config } from './config.ts';

export type { Config } from './config.ts';
export { encode } from './encode.ts';
export { clockwisemdConnector } from './index.ts';

/**
 * The URL of a file of this connector's fixture folders: `fixtures/` (real vendor payloads, their
 * sources cited in the folder's README) unless `dir` names another.
 *
 * @example
 * ```ts
 * const url = fixtureUrl('callback.json');
 * ```
 */
export function fixtureUrl(name: string, dir = 'fixtures'): URL {
  return new URL(`../${dir}/${name}`, import.meta.url);
}

/**
 * Settings under which this connector's fixtures normalize (test values, the conformance test's),
 * for tests outside the package that run every shipped connector's fixtures, such as the server's
 * FHIR mapping tests.
 *
 * @example
 * ```ts
 * const ctx = memoryNormalizeContext({ instanceId: 'test', config: fixtureSettings });
 * ```
 */
export const fixtureSettings: Config = {
  auth: { mode: 'either', key: 'cw-hook-key-0123456789abcdef' },
  apiKey: 'cw-api-key-abcdef0123456789',
  apiBaseUrl: 'https://api.clockwisemd.test/v1',
};

/**
 * Clockwise.MD's REST API as the fixtures need it: `GET /appointments/{id}` with the `Authtoken` of
 * {@link fixtureSettings} answers the recorded appointment in `src/__api__/` (404 for any other, 401
 * without that key), for enrichment during tests that normalize the
 * fixtures in memory.
 *
 * @example
 * ```ts
 * const ctx = memoryNormalizeContext({ instanceId: 'test', config: fixtureSettings, vendorApi: fixtureVendorApi });
 * ```
 */
export function fixtureVendorApi(request: VendorRequest): VendorResponse {
  if (request.headers?.Authtoken !== fixtureSettings.apiKey)
    return { status: 401, headers: {}, body: { error: 'unauthorized' } };
  const id = /\/appointments\/(\d+)$/.exec(request.url)?.[1];
  if (id === undefined) return { status: 404, headers: {}, body: { error: 'not found' } };
  try {
    const body = JSON.parse(
      readFileSync(new URL(`./__api__/appointment-${id}.json`, import.meta.url), 'utf8'),
    );
    return { status: 200, headers: { 'content-type': 'application/json' }, body };
  } catch {
    return { status: 404, headers: {}, body: { error: 'not found' } };
  }
}
