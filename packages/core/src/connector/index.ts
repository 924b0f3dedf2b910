export {
  ACCESS_TOKEN_EXPIRY_MARGIN_MS,
  type ClientCredentials,
  type ClientCredentialsContext,
  type ClientCredentialsOptions,
  clientCredentials,
  DEFAULT_ACCESS_TOKEN_LIFE_SECONDS,
  MAX_CACHED_ACCESS_TOKENS,
} from './client-credentials.ts';
export { defineConnector } from './define.ts';
export {
  CREATE_SETTLE_MS,
  commandOutcome,
  createdOutcome,
  dedupeKeyOf,
  emit,
  IP_OR_CIDR_SCHEMA,
  ignore,
  inboundRequestHead,
  isHtmlPage,
  isRetryableStatus,
  nextSendMark,
  normalizeHeaders,
  parseFormBody,
  parseJsonBody,
  parseJsonObjectBody,
  parseRetryAfter,
  provesNotCarriedOut,
  type SendMark,
  sendTimes,
  stillLanding,
  type TurnedAway,
  timingSafeEqualString,
  trimmedText,
  unchangedWhen,
  type VendorRead,
  vendorReadFailure,
} from './helpers.ts';
export {
  type KeysetItem,
  type KeysetPlace,
  type KeysetRequest,
  keysetMore,
  keysetRequest,
  nextKeysetPlace,
  readKeysetCursor,
  writeKeysetCursor,
} from './keyset.ts';
export {
  EVENT_SCOPED_FIELDS,
  type KnownStateOptions,
  knownStateKey,
  rememberKnownState,
  STATUS_BOUND_FIELDS,
  withKnownState,
} from './known-state.ts';
export {
  type BodySignatureScheme,
  DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  type DigestEncoding,
  hmacSha256,
  parseTimestampedSignatureHeader,
  type SignatureVerdict,
  signBody,
  signTimestamped,
  type TimestampedSignatureHeader,
  type TimestampedSigning,
  verifyBodySignature,
  verifyTimestampedSignature,
} from './signature.ts';
export { standardWebhooksHmac, verifyStandardWebhooksSignature } from './standard-webhooks.ts';
export type * from './types.ts';
export { vendorRequestInit, vendorResponseBody } from './vendor-exchange.ts';
