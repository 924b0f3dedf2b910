import type { Subscription } from '../../subscriptions/generated/input.ts';
import { TEST_EVENT_TYPE } from '../../subscriptions/schema.ts';
import { type Command, configOption, UsageError } from '../command.ts';

function row(s: Subscription): string[] {
  const state = s.disabledAt ? `disabled (${s.disabledReason ?? 'no reason'})` : 'enabled';
  return [
    s.id,
    s.kind,
    s.format,
    s.url ?? `/v1/subscriptions/${s.id}/events`,
    s.eventTypes.join(','),
    s.sources ? s.sources.join(',') : '*',
    s.managedBy,
    state,
    s.secrets.map((x) => x.secretHint).join(',') || '-',
  ];
}

/** Lines of columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows]
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/** `switchyard subscriptions list|test`. */
export const subscriptionsCommand: Command = {
  name: 'subscriptions',
  summary: 'list the subscriptions, or send one a signed test event',
  usage: 'list|test [--config FILE] [--id ID] [--type T] [--json]',
  details: [
    'Subcommands:',
    '  list                every subscription: id, kind, format, url, events, sources, managed by, state, secret hints',
    '  test --id ID        POST a signed synthetic event to a webhook subscription now (nothing stored)',
    'Options:',
    '  -c, --config FILE   the config file',
    '  --type T            test: the catalog event type sent (default hub.test; FHIR formats: docs/fhir.md)',
    '  --json              list: one JSON subscription a line',
  ].join('\n'),
  options: { ...configOption, id: { type: 'string' }, type: { type: 'string' }, json: { type: 'boolean' } },
  allowPositionals: true,
  async run(args, io) {
    const [sub, ...extra] = args.positionals;
    if ((sub !== 'list' && sub !== 'test') || extra.length > 0)
      throw new UsageError('usage: switchyard subscriptions list | switchyard subscriptions test --id ID');
    const id = args.values.id;
    if (sub === 'test' && typeof id !== 'string') throw new UsageError('subscriptions test needs --id ID');
    const { withHub } = await import('../hub.ts');
    return withHub(args, io, async ({ hub }) => {
      if (sub === 'list') {
        const all = await hub.subscriptions.list();
        if (args.values.json === true) {
          for (const s of all) io.stdout.write(`${JSON.stringify(s)}\n`);
        } else if (all.length === 0) {
          io.stderr.write('no subscriptions\n');
        } else {
          const header = ['ID', 'KIND', 'FORMAT', 'URL', 'EVENTS', 'SOURCES', 'MANAGED', 'STATE', 'SECRETS'];
          io.stdout.write(`${table(header, all.map(row))}\n`);
        }
        return 0;
      }
      const type = typeof args.values.type === 'string' ? args.values.type : TEST_EVENT_TYPE;
      const result = await hub.sendTestEvent(id as string, type, 'the CLI (switchyard subscriptions test)');
      const latency = result.latencyMs !== undefined ? ` in ${Math.round(result.latencyMs)} ms` : '';
      if (result.ok) {
        io.stdout.write(`${id}: HTTP ${result.statusCode}${latency}: delivered\n`);
        return 0;
      }
      const why =
        result.statusCode !== undefined ? `HTTP ${result.statusCode}` : (result.error ?? 'no answer');
      io.stdout.write(`${id}: ${why}${latency}: not accepted\n`);
      return 1;
    });
  },
};
