export {
  type ConformanceCheck,
  type ConformanceFixture,
  type ConformanceOptions,
  type ConformanceReport,
  type ConformanceResult,
  type CredentialParts,
  checkConformance,
  conformanceChecks,
  conformanceCheckTitles,
} from './check.ts';
export { type CompleteEventContext, completeEvent } from './complete-event.ts';
export { describeConformance } from './describe.ts';
