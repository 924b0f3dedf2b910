import { isSwitchyardError } from '@switchyard/core';
import type { Hub } from '../../pipeline/hub.ts';
import { type CliIO, type Command, configOption, UsageError } from '../command.ts';
import { type ProgressStream, progressBar } from '../progress.ts';
import { parseSince } from './replay.ts';

/** Messages put back per statement by `--failed`: short transactions, a line of progress each. */
const BATCH = 500;
/** Ids per status read while following (one `= any(…)` each). */
const FOLLOW_CHUNK = 5000;

/** How many of `ids` are in each status, read in chunks. */
async function statuses(hub: Hub, ids: readonly string[]): Promise<Record<string, number>> {
  const total: Record<string, number> = {};
  for (let i = 0; i < ids.length; i += FOLLOW_CHUNK)
    for (const [status, n] of Object.entries(await hub.inbound.statusCounts(ids.slice(i, i + FOLLOW_CHUNK))))
      total[status] = (total[status] ?? 0) + (n ?? 0);
  return total;
}

/**
 * Follows re-normalized messages until none is waiting (the running hub's workers normalize them),
 * with a progress bar on a terminal; then a summary. 1 when some failed again. Ctrl-C stops the
 * waiting, not the re-normalization.
 */
async function follow(hub: Hub, io: CliIO, ids: readonly string[], label: string): Promise<number> {
  const bar = progressBar(io.stderr as ProgressStream, ids.length, label);
  const controller = new AbortController();
  const stop = () => controller.abort();
  if (io.stdout === process.stdout) process.once('SIGINT', stop);
  if ((io.stderr as ProgressStream).isTTY)
    io.stderr.write(
      'waiting for the workers of the running hub to normalize them (Ctrl-C stops waiting; they are queued)\n',
    );
  try {
    for (;;) {
      const s = await statuses(hub, ids);
      const waiting = s.received ?? 0;
      const detail = `${s.normalized ?? 0} normalized, ${s.ignored ?? 0} ignored, ${s.failed ?? 0} failed`;
      bar.update(ids.length - waiting, detail);
      if (waiting === 0 || controller.signal.aborted) {
        bar.finish();
        io.stdout.write(`${detail}${waiting > 0 ? `, ${waiting} still waiting` : ''}\n`);
        return (s.failed ?? 0) > 0 ? 1 : 0;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    process.off('SIGINT', stop);
  }
}

/** `switchyard inbound renormalize`: runs normalization again for failed (or ignored) messages. */
export const inboundCommand: Command = {
  name: 'inbound',
  summary:
    'normalize stored vendor messages again (after a connector fix): by id, or every failed one of an instance',
  usage: 'renormalize ID… | renormalize --failed --instance ID [--since TIME] [--config FILE] [--wait]',
  details: [
    'Subcommands:',
    '  renormalize ID…       each failed or ignored message named, again (event ids stay the same)',
    '  renormalize --failed --instance ID',
    '                        every failed message of the instance, oldest first, in batches of 500;',
    '                        one that fails again while this runs is not taken a second time',
    'Options:',
    '  --since TIME          with --failed: only messages received since TIME (ISO date-time, or a',
    '                        duration ago such as 2h)',
    "  --wait                follow them until the running hub's workers have normalized them (a",
    '                        progress bar on a terminal; the default there)',
    '  -c, --config FILE     the config file',
    '',
    'Exit code: 1 when a named message could not be queued (not found, not failed or ignored), or',
    'with --wait when some failed again.',
  ].join('\n'),
  options: {
    ...configOption,
    failed: { type: 'boolean' },
    instance: { type: 'string' },
    since: { type: 'string' },
    wait: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args, io) {
    const [sub, ...ids] = args.positionals;
    const { failed, instance, since } = args.values;
    if (sub !== 'renormalize')
      throw new UsageError('usage: switchyard inbound renormalize ID… | renormalize --failed --instance ID');
    if (failed === true ? ids.length > 0 : ids.length === 0)
      throw new UsageError('inbound renormalize needs message ids, or --failed --instance ID (not both)');
    if (failed === true && typeof instance !== 'string') throw new UsageError('--failed needs --instance ID');
    if (failed !== true && (instance !== undefined || since !== undefined))
      throw new UsageError('--instance and --since go with --failed');
    const sinceDate = typeof since === 'string' ? parseSince(since) : undefined;
    const wait = args.values.wait === true || (io.stderr as ProgressStream).isTTY === true;
    const { withHub } = await import('../hub.ts');
    return withHub(args, io, async ({ hub }) => {
      if (failed !== true) {
        const queued: string[] = [];
        let refused = 0;
        for (const id of ids) {
          try {
            const m = await hub.inbound.renormalize(id);
            queued.push(m.id);
            io.stdout.write(`queued ${id}\n`);
          } catch (error) {
            // A message not found, or not failed nor ignored: said, and the others still go.
            if (
              !isSwitchyardError(error) ||
              !['SY_PIPELINE_NOT_FOUND', 'SY_PIPELINE_CONFLICT'].includes(error.code)
            )
              throw error;
            refused++;
            io.stderr.write(`${id}: ${error.message}\n`);
          }
        }
        io.stdout.write(`queued ${queued.length} of ${ids.length} message(s)\n`);
        const followed = wait && queued.length > 0 ? await follow(hub, io, queued, 'renormalize') : 0;
        return refused > 0 ? 1 : followed;
      }
      const instanceId = instance as string;
      const queued: string[] = [];
      let failedBefore: Date | undefined;
      for (;;) {
        const page = await hub.inbound.renormalizeFailed({
          instanceId,
          ...(sinceDate ? { since: sinceDate } : {}),
          ...(failedBefore ? { failedBefore } : {}),
          limit: BATCH,
        });
        failedBefore = page.failedBefore;
        queued.push(...page.ids);
        if (page.ids.length > 0) io.stderr.write(`queued ${queued.length} so far\n`);
        if (!page.more) break;
      }
      const range = sinceDate ? ` received since ${sinceDate.toISOString()}` : '';
      io.stdout.write(`queued ${queued.length} failed message(s) of instance ${instanceId}${range}\n`);
      if (!wait || queued.length === 0) return 0;
      return follow(hub, io, queued, `renormalize ${instanceId}`);
    });
  },
};
