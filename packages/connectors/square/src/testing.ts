/**
 * `@switchyard/connector-square/testing`: what this package's simulator and tests outside the package may use (the
 * connector, its config and vendor types, the vendor's credential headers, `encode`, the fixture
 * files). Other packages import it by this name, never by a relative path into `src/`. Not imported
 * by production code.
 *
 * @example
 * ```ts
 * import { squareConnector, fixtureUrl } from '@switchyard/connector-square/testing';
 *
 * const body = readFileSync(fixtureUrl('booking-created.json'), 'utf8');
 * ```
 */
import type { Config } from './config.ts';

export { credentialHeaders } from './auth.ts';
export type { Config } from './config.ts';
export { encode } from './encode.ts';
export { squareConnector } from './index.ts';
export type { VendorBooking, VendorEvent } from './vendor.ts';

/**
 * The URL of a file of this connector's fixture folders: `fixtures/` (real vendor payloads, their
 * sources cited in the folder's README) unless `dir` names another.
 *
 * @example
 * ```ts
 * const url = fixtureUrl('booking-created.json');
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
  signatureKey: 'test-signature-key-0123456789',
  accessToken: 'EAAAtest-access-token-0123456789',
};
