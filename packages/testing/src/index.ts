/**
 * @switchyard/testing: what Switchyard's tests are built from.
 *
 * - Postgres harness: `useTestDatabase()` gives each vitest file a fresh database on the run's
 *   server (`DATABASE_URL`, else testcontainers when Docker answers, else embedded PostgreSQL 18);
 *   `createTestDatabase()` / `startTestPostgres()` do the same outside vitest;
 *   `startEmbeddedPostgres()` is re-exported from `@switchyard/embedded-postgres`.
 * - `startRecordingSubscriber()`: a scripted webhook subscriber that verifies Standard Webhooks signatures.
 * - `memoryNormalizeContext()` / `inboundRequest()`: connector unit-test helpers; `fetchVendorHttp`,
 *   a real-HTTP `VendorHttp` as the hub lends one, for tests against a simulator.
 * - `describeConformance()` / `checkConformance()`: the conformance suite every connector runs.
 * - The simulator kit: `@switchyard/testing/simulator-kit/{push,receiver,server}`, what the vendor
 *   simulators share. Each simulator lives in its connector's package
 *   (`@switchyard/connector-<vendor>/simulator`); this package depends on no connector.
 *
 * @example
 * ```ts
 * import { useTestDatabase, startRecordingSubscriber } from '@switchyard/testing';
 *
 * const db = useTestDatabase();
 * it('delivers', async () => {
 *   const subscriber = await startRecordingSubscriber({ secrets: 'whsec_...' });
 *   // start the hub against db.url(), subscribe subscriber.url, push ...
 *   await subscriber.waitFor(1);
 *   await subscriber.close();
 * });
 * ```
 */

export * from './conformance/index.ts';
export {
  capturingLogger,
  type InboundRequestOptions,
  inboundRequest,
  type LogEntry,
  MemoryAliasStore,
  type MemoryCommandContext,
  type MemoryCommandContextOptions,
  type MemoryNormalizeContext,
  type MemoryNormalizeContextOptions,
  MemoryStateStore,
  memoryCommandContext,
  memoryNormalizeContext,
  type VendorApi,
} from './connector-context.ts';
export * from './postgres/index.ts';
export {
  type RecordedRequest,
  type RecordingSubscriber,
  type RecordingSubscriberOptions,
  type RequestHandler,
  type ResponseStep,
  type ScriptStep,
  type SignatureCheck,
  startRecordingSubscriber,
} from './recording-subscriber.ts';
export { fetchVendorHttp } from './vendor-http.ts';
