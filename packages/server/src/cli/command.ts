/**
 * The shape of a `switchyard` command. Commands are rows of a table (`commands/index.ts`): adding
 * one is adding a file and a row, with no dispatch code to touch.
 */
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { SwitchyardError } from '@switchyard/core';
import type { ProcessIO } from '../runtime/process.ts';

/** Where a command writes and what it may read: injected so commands run in tests without a process. */
export interface CliIO extends ProcessIO {
  stdout: { write(text: string): unknown };
}

/** What a command receives from `node:util` parseArgs. */
export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  /** One line for `switchyard help`. */
  summary: string;
  /** Usage after `switchyard <name>`, e.g. `--config FILE`. */
  usage: string;
  /** Extra help text (option descriptions) for `switchyard help <name>`. */
  details?: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  /** Returns the exit code. Throw {@link UsageError} or a `SwitchyardError` for user mistakes. */
  run(args: ParsedArgs, io: CliIO): Promise<number>;
}

/**
 * A mistake on the command line (`SY_CONFIG_USAGE`): printed as one line, exit code 2.
 *
 * @example
 * ```ts
 * if (!values.config) throw new UsageError('validate needs --config FILE');
 * ```
 */
export class UsageError extends SwitchyardError {
  constructor(message: string) {
    super('SY_CONFIG_USAGE', message);
  }
}

/** The example config of a source checkout: what `./sy start` runs when no config is given. */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../../examples/switchyard.yaml', import.meta.url));

/**
 * The config file a command uses, the same for every command: `--config`, else
 * `$SWITCHYARD_CONFIG`, else `./switchyard.yaml`, else (in a source checkout)
 * `examples/switchyard.yaml`, so `./sy start` runs on a fresh clone. Relative paths are the
 * caller's (`io.cwd`); `shown` is the path as printed in messages.
 *
 * @example
 * ```ts
 * const { path, shown, example } = findConfigFile(args, io);
 * ```
 */
export function findConfigFile(
  args: ParsedArgs,
  io: CliIO,
): { path: string; shown: string; example: boolean } {
  const given = args.values.config;
  const named = typeof given === 'string' && given !== '' ? given : io.env.SWITCHYARD_CONFIG;
  if (named) return { path: resolve(io.cwd, named), shown: named, example: false };
  const local = resolve(io.cwd, 'switchyard.yaml');
  if (existsSync(local) || !existsSync(EXAMPLE_CONFIG))
    return { path: local, shown: 'switchyard.yaml', example: false };
  const shown = relative(io.cwd, EXAMPLE_CONFIG);
  return { path: EXAMPLE_CONFIG, shown: shown.startsWith('..') ? EXAMPLE_CONFIG : shown, example: true };
}

/** The `--config` option, shared by every command that reads the config file. */
export const configOption = { config: { type: 'string', short: 'c' } } as const;
