/**
 * The `switchyard` command line: finds the command in the table, parses its options with
 * `node:util` parseArgs, runs it. A user mistake (bad option, bad config) prints its message, never
 * a stack trace; anything else is a bug and prints the stack.
 */
import { parseArgs } from 'node:util';
import { isSwitchyardError } from '@switchyard/core';
import { suggest } from '../config/load.ts';
import { type CliIO, type Command, UsageError } from './command.ts';
import { commands as defaultCommands } from './commands/index.ts';

function isParseArgsError(error: unknown): error is Error {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/**
 * `--limit -5` as `--limit=-5`: parseArgs takes a value starting with a dash for a forgotten
 * argument and answers "argument is ambiguous", while the command checks the number and names the
 * allowed range (`--limit must be an integer 1..500`), as it does for `--limit 0`. Only a value
 * that reads as a negative number is joined: no option's name starts with a digit.
 */
function joinNegativeValues(args: readonly string[], options: Command['options']): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const long = arg.startsWith('--')
      ? arg.slice(2)
      : Object.keys(options).find((key) => arg === `-${options[key]!.short}`);
    if (long !== undefined && options[long]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`--${long}=${next}`);
      i++;
    } else joined.push(arg);
    if (arg === '--') return [...joined, ...args.slice(i + 1)];
  }
  return joined;
}

/**
 * A reader that went away (`switchyard events … | head`) ends the command's output, as it ends a
 * Unix tool's: the process exits at once, quietly, instead of dying of the write error with a stack
 * trace. Any other output error is thrown as before. Not for `start`: a hub whose log has nowhere
 * to go must still stop its work and its Postgres cleanly (start.ts keeps running without it).
 */
function exitWhenReaderGone(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
}

/**
 * Runs one command line and returns the exit code: 0 success, 1 the command found problems,
 * 2 a usage or user error, 70 an internal error.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(
  argv: readonly string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() },
  commands: readonly Command[] = defaultCommands,
): Promise<number> {
  const [name, ...rest] = argv;
  const wantsHelp = name === undefined || name === '--help' || name === '-h';
  const command = commands.find((c) => c.name === (wantsHelp ? 'help' : name));
  try {
    if (!command) {
      const hint = suggest(
        name ?? '',
        commands.map((c) => c.name),
      );
      throw new UsageError(
        `unknown command "${name}"${hint ? `; did you mean "${hint}"?` : ''} (run "switchyard help" for the list)`,
      );
    }
    const help =
      !wantsHelp && (rest.includes('--help') || rest.includes('-h'))
        ? commands.find((c) => c.name === 'help')
        : undefined;
    // `start --help` prints help, not a hub: it ends quietly like any other output.
    if (io.stdout === process.stdout && (help ?? command).name !== 'start')
      process.stdout.on('error', exitWhenReaderGone);
    if (help) return await help.run({ values: {}, positionals: [command.name] }, io);
    const parsed = parseArgs({
      args: wantsHelp ? [] : joinNegativeValues(rest, command.options),
      options: command.options,
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
    return await command.run({ values: parsed.values, positionals: parsed.positionals }, io);
  } catch (error) {
    if (isParseArgsError(error)) {
      io.stderr.write(
        `switchyard ${command?.name ?? ''}: ${error.message} (run "switchyard help ${command?.name ?? ''}")\n`,
      );
      return 2;
    }
    if (isSwitchyardError(error)) {
      io.stderr.write(`switchyard: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(
      `switchyard: internal error (a bug; please report it):\n${(error as Error)?.stack ?? String(error)}\n`,
    );
    return 70;
  }
}
