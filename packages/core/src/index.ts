/**
 * @switchyard/core: the normalized event model (JSON Schemas, generated types, validators), the
 * connector contract and the error registry. No I/O.
 */
export * from './connector/index.ts';
export * from './errors/index.ts';
export * from './event-types.ts';
export * from './json.ts';
export * from './model.ts';
export * from './time.ts';
export * from './validate.ts';
