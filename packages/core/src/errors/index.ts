export { ConnectorError, type ConnectorErrorKind, isConnectorError } from './connector-error.ts';
export { type ErrorCode, type ErrorCodeSpec, errorCodes } from './registry.ts';
export { isSwitchyardError, SwitchyardError } from './switchyard-error.ts';
