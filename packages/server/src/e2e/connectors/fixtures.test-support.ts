/** Reads connector fixture files for the end-to-end tests (the same files the conformance suite runs). */
import { readFileSync } from 'node:fs';
import type { JsonObject } from '@switchyard/core';

/**
 * The parsed JSON of `packages/connectors/<vendor>/<dir>/<file>`.
 *
 * @example
 * ```ts
 * const body = fixture('docplanner', 'slot-booked.json');
 * ```
 */
export function fixture(vendor: string, file: string, dir = 'fixtures'): JsonObject {
  const url = new URL(`../../../../connectors/${vendor}/${dir}/${file}`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as JsonObject;
}
