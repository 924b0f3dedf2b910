import type { TestProject } from 'vitest/node';
import { startTestPostgres, type TestPostgres } from './test-postgres.ts';
import './vitest-context.ts';

/**
 * The vitest global setup (root `vitest.config.ts`): one Postgres for the whole run, its admin URL
 * provided to test files (`useTestDatabase()` reads it), stopped at the end. A failure to get one is
 * not fatal here: it is handed on, so only tests that need Postgres fail, with the reason.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: TestPostgres | undefined;
  try {
    server = await startTestPostgres();
    project.provide('switchyardPostgres', { url: server.url, kind: server.kind });
  } catch (error) {
    project.provide('switchyardPostgres', { error: (error as Error).message });
  }
  return async () => {
    await server?.stop();
  };
}
