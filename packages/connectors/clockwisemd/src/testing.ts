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
