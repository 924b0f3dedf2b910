import { defineConfig } from 'vitest/config';

// One test command runs everything: unit tests (`*.test.ts`) and Postgres-backed integration tests
// (`*.int.test.ts`). Each integration test file gets its own database from @switchyard/testing, so
// files run in parallel without seeing each other's rows.
export default defineConfig({
  test: {
    include: ['packages/**/*.test.ts', 'scripts/**/*.test.ts', 'bench/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/.tools/**'],
    globalSetup: ['packages/testing/src/postgres/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './scripts/vitest-summary-reporter.ts'],
  },
});
