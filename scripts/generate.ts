/**
 * `pnpm generate` writes every generated file (types from the JSON Schemas, docs tables, ...);
 * `pnpm generate:check` writes nothing and exits 1, naming the stale files, when any differs from what
 * the sources give. Generation steps are listed in `scripts/generators.ts`.
 */
import { runGenerateCli } from '../packages/core/scripts/codegen.ts';
import { generators } from './generators.ts';

process.exitCode = await runGenerateCli(generators, process.argv.slice(2));
