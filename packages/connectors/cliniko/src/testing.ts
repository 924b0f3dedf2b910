/**
 * `@switchyard/connector-cliniko/testing`: what tests outside the package may use (the connector,
 * its config, the fixture files). Other packages import it by this name, never by a relative path
 * into `src/`. Not imported by production code.
 *
 * @example
 * ```ts
 * import { clinikoConnector, fixtureUrl } from '@switchyard/connector-cliniko/testing';
 * ```
 */
import type { Config } from './config.ts';

export type { Config } from './config.ts';
export { clinikoConnector } from './index.ts';
export type { AppointmentPage, IndividualAppointment } from './vendor.ts';

/** The URL of a file of this connector's `fixtures/` (pages of its appointment list). */
export function fixtureUrl(name: string, dir = 'fixtures'): URL {
  return new URL(`../${dir}/${name}`, import.meta.url);
}

/** Settings under which this connector's fixtures normalize (test values). */
export const fixtureSettings: Config = {
  apiKey: 'test-api-key-0123456789abcdef-au2',
  apiBaseUrl: 'https://api.au2.cliniko.test/v1',
  userAgent: 'Switchyard tests (tests@example.com)',
};
