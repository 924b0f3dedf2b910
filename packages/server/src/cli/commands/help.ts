import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';

/**
 * `switchyard help [COMMAND]`. Built from the command table it is given, so it never lists a
 * command that does not exist.
 */
export function helpCommand(table: () => readonly Command[]): Command {
  return {
    name: 'help',
    summary: 'list the commands, or show the options of one',
    usage: '[COMMAND]',
    options: {},
    allowPositionals: true,
    async run(args, io) {
      const commands = table();
      const wanted = args.positionals[0];
      if (wanted !== undefined) {
        const command = commands.find((c) => c.name === wanted);
        if (!command)
          throw new UsageError(
            `unknown command "${wanted}"; commands: ${commands.map((c) => c.name).join(', ')}`,
          );
        io.stdout.write(`switchyard ${command.name} ${command.usage}`.trimEnd());
        io.stdout.write(`\n\n${command.summary}\n`);
        if (command.details) io.stdout.write(`\n${command.details}\n`);
        return 0;
      }
      const width = Math.max(...commands.map((c) => c.name.length));
      io.stdout.write('Usage: switchyard <command> [options]\n\nCommands:\n');
      for (const command of commands)
        io.stdout.write(`  ${command.name.padEnd(width)}  ${command.summary}\n`);
      io.stdout.write('\nRun "switchyard help <command>" for the options of a command.\n');
      return 0;
    },
  };
}
