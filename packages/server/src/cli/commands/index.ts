/**
 * The command table. To add a command (`start`, `migrate`, `replay`, `events`, `inbound`, `subscriptions`):
 * write `commands/<name>.ts` exporting a {@link Command}, and add it to this list. `help` and the
 * dispatcher read the list; nothing else changes.
 */
import type { Command } from '../command.ts';
import { commandsCommand } from './commands.ts';
import { eventsCommand } from './events.ts';
import { gatesCommand } from './gates.ts';
import { helpCommand } from './help.ts';
import { inboundCommand } from './inbound.ts';
import { listenCommand } from './listen.ts';
import { migrateCommand } from './migrate.ts';
import { pushCommand } from './push.ts';
import { replayCommand } from './replay.ts';
import { schemaCommand } from './schema.ts';
import { startCommand } from './start.ts';
import { subscriptionsCommand } from './subscriptions.ts';
import { validateCommand } from './validate.ts';

export const commands: Command[] = [
  startCommand,
  validateCommand,
  migrateCommand,
  replayCommand,
  eventsCommand,
  inboundCommand,
  subscriptionsCommand,
  gatesCommand,
  commandsCommand,
  listenCommand,
  pushCommand,
  schemaCommand,
];
commands.push(helpCommand(() => commands));
