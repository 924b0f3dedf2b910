export { defineConnector } from './define.ts';
export {
  dedupeKeyOf,
  emit,
  ignore,
  normalizeHeaders,
  parseJsonBody,
  parseJsonObjectBody,
  timingSafeEqualString,
} from './helpers.ts';
export type * from './types.ts';
