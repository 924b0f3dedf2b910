/**
 * The shape of a `switchyard` command. Commands are rows of a table (`commands/index.ts`): adding
 * one is adding a file and a row, with no dispatch code to touch.
 */
import type { ParseArgsConfig } from 'node:util';
import { SwitchyardError } from '@switchyard/core';

/** Where a command writes and what it may read: injected so commands run in tests without a process. */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
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

/**
 * Helper for commands that take a config file: `--config`, else `SWITCHYARD_CONFIG`, else
 * `switchyard.yaml` in the working directory.
 *
 * @example
 * ```ts
 * const file = configPath(args, io); // 'switchyard.yaml'
 * ```
 */
export function configPath(args: ParsedArgs, io: CliIO): string {
  const given = args.values.config;
  if (typeof given === 'string' && given !== '') return given;
  return io.env.SWITCHYARD_CONFIG || 'switchyard.yaml';
}

/** The `--config` option, shared by every command that reads the config file. */
export const configOption = { config: { type: 'string', short: 'c' } } as const;
