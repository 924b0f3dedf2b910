export {
  applicableChecks,
  CONFORMANCE_REPARSE_DELAY_MS,
  type ConformanceCheck,
  type ConformanceCredentials,
  type ConformanceFixture,
  type ConformanceOptions,
  type ConformanceReport,
  type ConformanceResult,
  type CredentialParts,
  checkConformance,
  conformanceChecks,
  conformanceCheckTitles,
  DEFAULT_CONFORMANCE_PUBLIC_URL,
  DEFAULT_CONFORMANCE_RECEIVED_AT,
  type SigningContext,
  type SignRequest,
} from './check.ts';
export {
  type CommandConformanceOptions,
  type CommandConformanceResult,
  type CommandSample,
  checkCommandConformance,
  describeCommandConformance,
} from './commands.ts';
export { type CompleteEventContext, completeEvent } from './complete-event.ts';
export { describeConformance } from './describe.ts';
