/**
 * `switchyard commands list|show|send`: the commands subsystem from the command line, as the admin.
 * It works on the config file's database (no running hub needed to list or show); `send` queues the
 * command, which a running hub's workers carry out.
 */
import type { JsonValue } from '@switchyard/core';
import type { CommandDetail, CommandView } from '../../commands/commands.ts';
import { createCommands } from '../../commands/commands.ts';
import { type Command, configOption, UsageError } from '../command.ts';

/** One line per command: created, id, type, status (attempts), target, sender. */
export function formatCommandLine(c: CommandView): string {
  return [
    c.createdAt,
    c.id,
    c.type,
    `${c.status} (${c.attempts} attempt${c.attempts === 1 ? '' : 's'})`,
    c.subject ?? `instance ${c.instance}`,
    `by ${c.sentBy}`,
  ].join('  ');
}

/** The detail: the line, the outcome, then every vendor call. */
export function formatCommandDetail(c: CommandDetail): string {
  const lines = [formatCommandLine(c)];
  if (c.result) lines.push(`  result: ${JSON.stringify(c.result)}`);
  if (c.error) lines.push(`  error: ${JSON.stringify(c.error)}`);
  if (c.nextAttemptAt) lines.push(`  next attempt: ${c.nextAttemptAt}`);
  for (const call of c.calls) {
    lines.push(
      `  attempt ${call.attempt}  ${call.method} ${call.url}  ${call.statusCode ?? call.error ?? '-'}  ${call.latencyMs ?? '-'} ms`,
    );
  }
  return lines.join('\n');
}

const USAGE =
  'usage: switchyard commands list|show ID|send --type T (--subject S | --instance I) [--data JSON] [--idempotency-key K]';

export const commandsCommand: Command = {
  name: 'commands',
  summary: 'list commands sent to vendors, show one with its vendor calls, or send one',
  usage:
    'list|show ID|send [--config FILE] [--type T] [--status S] [--limit N] [--subject S] [--instance I] [--data JSON] [--idempotency-key K] [--json]',
  details: [
    'Subcommands:',
    '  list                 the latest commands, newest first',
    '  show ID              one command with its outcome and every vendor call',
    '  send                 queue a command as the admin (a running hub carries it out)',
    'Options:',
    '  -c, --config FILE    the config file',
    '  --type T             list: filter; send: the command type (docs/commands.md)',
    '  --status S           list: pending, running, succeeded or failed',
    '  --subject S          send: appointment/<hub id>, slot/<hub id>',
    '  --instance I         send: the connector instance (appointment.book, slot.block)',
    '  --data JSON          send: the command data (default {})',
    '  --idempotency-key K  send: the same key again returns the first command',
    '  --limit N            list: how many (default 50, at most 500)',
    '  --json               JSON instead of lines',
  ].join('\n'),
  options: {
    ...configOption,
    type: { type: 'string' },
    status: { type: 'string' },
    subject: { type: 'string' },
    instance: { type: 'string' },
    data: { type: 'string' },
    'idempotency-key': { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args, io) {
    const [sub, ...rest] = args.positionals;
    if (
      !(sub === 'list' && rest.length === 0) &&
      !(sub === 'show' && rest.length === 1) &&
      !(sub === 'send' && rest.length === 0)
    )
      throw new UsageError(USAGE);
    const json = args.values.json === true;
    const str = (name: string) =>
      typeof args.values[name] === 'string' ? (args.values[name] as string) : undefined;
    let data: JsonValue = {};
    if (sub === 'send') {
      if (!str('type')) throw new UsageError(`send needs --type; ${USAGE}`);
      const text = str('data');
      if (text !== undefined) {
        try {
          data = JSON.parse(text) as JsonValue;
        } catch (error) {
          throw new UsageError(`--data is not JSON: ${(error as Error).message}`);
        }
      }
    }
    let limit = 50;
    if (str('limit') !== undefined) {
      limit = Number(str('limit'));
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw new UsageError('--limit must be an integer 1..500');
    }
    const status = str('status');
    if (status !== undefined && !['pending', 'running', 'succeeded', 'failed'].includes(status))
      throw new UsageError('--status must be pending, running, succeeded or failed');
    const { withHub } = await import('../hub.ts');
    // `send` enqueues the command's job in the transaction that stores it: the hub needs its queue.
    return withHub(
      args,
      io,
      async ({ hub }) => {
        const commands = createCommands({ worker: false });
        await commands.start(hub.host);
        const admin = { kind: 'admin' } as const;
        try {
          if (sub === 'list') {
            const page = await commands.list(admin, {
              limit,
              ...(str('type') ? { type: str('type')! } : {}),
              ...(status ? { status: status as CommandView['status'] } : {}),
            });
            for (const c of page.items)
              io.stdout.write(`${json ? JSON.stringify(c) : formatCommandLine(c)}\n`);
            if (page.items.length === 0 && !json) io.stderr.write('no commands\n');
            return 0;
          }
          if (sub === 'show') {
            const c = await commands.get(admin, rest[0]!);
            io.stdout.write(`${json ? JSON.stringify(c) : formatCommandDetail(c)}\n`);
            return 0;
          }
          const { command, replayed } = await commands.accept(
            admin,
            {
              type: str('type')!,
              ...(str('subject') ? { subject: str('subject')! } : {}),
              ...(str('instance') ? { instance: str('instance')! } : {}),
              data,
            },
            str('idempotency-key'),
          );
          io.stdout.write(
            `${json ? JSON.stringify(command) : `${replayed ? 'already sent' : 'queued'}  ${formatCommandLine(command)}`}\n`,
          );
          return 0;
        } finally {
          await commands.stop();
        }
      },
      { queue: true },
    );
  },
};
