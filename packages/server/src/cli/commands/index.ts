/**
 * The command table. To add a command (`start`, `migrate`, `replay`, `events`, `subscriptions`):
 * write `commands/<name>.ts` exporting a {@link Command}, and add it to this list. `help` and the
 * dispatcher read the list; nothing else changes.
 */
import type { Command } from '../command.ts';
import { helpCommand } from './help.ts';
import { schemaCommand } from './schema.ts';
import { validateCommand } from './validate.ts';

export const commands: Command[] = [validateCommand, schemaCommand];
commands.push(helpCommand(() => commands));
