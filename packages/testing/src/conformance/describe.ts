import { describe, expect, it } from 'vitest';
import {
  applicableChecks,
  type ConformanceOptions,
  type ConformanceReport,
  type CredentialParts,
  checkConformance,
  conformanceChecks,
  conformanceCheckTitles,
} from './check.ts';

/**
 * Registers the conformance suite as vitest tests: one `describe` per connector, one `it` per check
 * group, each failing with the list of findings of its group. Call it at the top level of a
 * connector's `src/conformance.test.ts`.
 *
 * @example
 * ```ts
 * import { describeConformance } from '@switchyard/testing';
 * import { quable } from './index.ts';
 *
 * describeConformance({
 *   connector: quable,
 *   config: { authorization: 'test-secret' },
 *   fixturesDir: new URL('../fixtures/', import.meta.url),
 *   credentials: {
 *     good: { headers: { authorization: 'test-secret' } },
 *     wrong: [{ headers: { authorization: 'nope' } }],
 *     missing: {},
 *   },
 *   fixtures: [{ file: 'document-create.json', expect: ['document.created'] }],
 * });
 * ```
 */
export function describeConformance<C, K = CredentialParts>(options: ConformanceOptions<C, K>): void {
  let running: Promise<ConformanceReport> | undefined;
  const run = () => {
    running ??= checkConformance(options);
    return running;
  };
  const applicable = new Set(applicableChecks(options.connector));
  describe(`conformance: ${options.connector.name}`, () => {
    for (const check of conformanceChecks) {
      // A group that cannot apply (auth for a pull-only connector) is shown skipped, not passed.
      it.skipIf(!applicable.has(check))(conformanceCheckTitles[check], async () => {
        const report = await run();
        const failures = report.results
          .filter((r) => r.check === check && !r.ok)
          .map((r) => (r.fixture ? `${r.fixture}: ${r.message}` : r.message));
        expect(failures, `conformance check "${check}" failed`).toEqual([]);
      });
    }
  });
}
