/**
 * Every generation step `pnpm generate` runs, in order. A package that generates files exports a
 * `Generator` (see `packages/core/scripts/codegen.ts`) and adds it here; `pnpm generate:check` then
 * fails whenever its outputs are stale.
 */
import type { Generator } from '../packages/core/scripts/codegen.ts';
import { coreGenerator } from '../packages/core/scripts/core-generator.ts';
import { configGenerator } from '../packages/server/src/config/generate.ts';
import { instancesGenerator } from '../packages/server/src/instances/generate.ts';
import { subscriptionsGenerator } from '../packages/server/src/subscriptions/generate.ts';

export const generators: Generator[] = [
  coreGenerator,
  configGenerator,
  instancesGenerator,
  subscriptionsGenerator,
];
