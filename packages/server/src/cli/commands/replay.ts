import { isSwitchyardError, SwitchyardError } from '@switchyard/core';
import { sql } from 'kysely';
import { configDurationMs } from '../../config/units.ts';
import type { Hub } from '../../pipeline/hub.ts';
import { type CliIO, type Command, configOption, UsageError } from '../command.ts';
import { type ProgressStream, progressBar } from '../progress.ts';

/**
 * `2026-03-01T10:00:00Z`, `2026-03-01`, or a duration meaning "that long ago" (`2h`, `30m`);
 * `option` names the option in the usage error (`push --signed-at` reads times the same way).
 */
export function parseSince(text: string, now = new Date(), option = '--since'): Date {
  const ago = configDurationMs(text);
  if (ago !== undefined) return new Date(now.getTime() - ago);
  const date = new Date(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(date.getTime())) return date;
  throw new UsageError(
    `${option} must be an ISO date-time (2026-03-01T10:00:00Z) or a duration ago (2h), not "${text}"`,
  );
}

const FINISHED = ['succeeded', 'dead', 'skipped'] as const;

/**
 * Asks `step` every 250 ms until it answers an exit code, telling a terminal that Ctrl-C stops the
 * waiting, not the replay; `step` is told once Ctrl-C was pressed, and answers then.
 */
async function follow(
  io: CliIO,
  what: 'it' | 'them',
  step: (interrupted: boolean) => Promise<number | undefined>,
): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  if (io.stdout === process.stdout) process.once('SIGINT', stop);
  if ((io.stderr as ProgressStream).isTTY)
    io.stderr.write(
      `waiting for the workers of the running hub to send ${what} (Ctrl-C stops waiting; the replay goes on)\n`,
    );
  try {
    for (;;) {
      const code = await step(controller.signal.aborted);
      if (code !== undefined) return code;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    process.off('SIGINT', stop);
  }
}

/**
 * Follows one replayed delivery until it is finished (the running hub's workers send it); 1 when
 * it ended dead. Ctrl-C stops waiting, not the replay.
 */
function watchOne(hub: Hub, io: CliIO, deliveryId: string): Promise<number> {
  return follow(io, 'it', async (interrupted) => {
    const d = await hub.deliveries.get(deliveryId);
    if ((FINISHED as readonly string[]).includes(d.status)) {
      const last = d.attemptLog[d.attemptLog.length - 1];
      const answered = last?.statusCode ? ` (HTTP ${last.statusCode})` : '';
      io.stdout.write(
        `delivery ${deliveryId}: ${d.status === 'succeeded' ? 'delivered' : d.status}${answered}\n`,
      );
      return d.status === 'dead' ? 1 : 0;
    }
    if (!interrupted) return undefined;
    io.stdout.write(`delivery ${deliveryId}: still ${d.status}\n`);
    return 0;
  });
}

/** Counts the replay deliveries of a subscription created since `since`, by status. */
async function replayStatus(hub: Hub, subscriptionId: string, since: Date) {
  const result = await sql<{ status: string; n: number }>`
    select status, count(*)::int as n from switchyard.deliveries
    where subscription_id = ${subscriptionId} and reason = 'replay' and created_at >= ${since}
    group by status`.execute(hub.host.db);
  const counts = Object.fromEntries(result.rows.map((r) => [r.status, r.n])) as Record<string, number>;
  const finished = FINISHED.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
  return { finished, succeeded: counts.succeeded ?? 0, dead: counts.dead ?? 0 };
}

/** Follows the replayed deliveries until every one is finished (the running hub's workers send them). */
function watch(hub: Hub, io: CliIO, subscriptionId: string, since: Date, total: number): Promise<number> {
  const bar = progressBar(io.stderr as ProgressStream, total, `replay ${subscriptionId}`);
  return follow(io, 'them', async (interrupted) => {
    const status = await replayStatus(hub, subscriptionId, since);
    bar.update(status.finished, `${status.succeeded} delivered, ${status.dead} dead`);
    if (status.finished < total && !interrupted) return undefined;
    bar.finish();
    io.stdout.write(
      `${status.succeeded} delivered, ${status.dead} dead, ${total - status.finished} still pending\n`,
    );
    return status.dead > 0 ? 1 : 0;
  });
}

/** `switchyard replay`: sends deliveries again (same event ids, so subscribers deduplicate). */
export const replayCommand: Command = {
  name: 'replay',
  summary: 'send a delivery, the dead deliveries of a subscription, or its events since a time again',
  usage: '--delivery ID [--force] | --subscription ID (--dead | --since TIME) [--config FILE] [--wait]',
  details: [
    'Options:',
    '  --delivery ID         replay one finished delivery (once: a delivery already replayed is refused)',
    '  --force               with --delivery: send it again even though it was already replayed',
    '  --subscription ID     with --dead: every dead delivery not yet replayed, oldest first;',
    '                        with --since TIME: every matching event stored since TIME',
    '                        (ISO date-time, or a duration ago such as 2h)',
    '  --wait                follow the replayed deliveries until they are sent (a progress bar on a',
    "                        terminal; the default there). The running hub's workers send them.",
    '  -c, --config FILE     the config file',
    '',
    'Exit code with --wait: 1 when some replayed deliveries (or the one, with --delivery) ended dead again.',
  ].join('\n'),
  options: {
    ...configOption,
    delivery: { type: 'string' },
    subscription: { type: 'string' },
    dead: { type: 'boolean' },
    since: { type: 'string' },
    wait: { type: 'boolean' },
    force: { type: 'boolean' },
  },
  async run(args, io) {
    const { delivery, subscription, dead, since } = args.values;
    const modes = [delivery !== undefined, dead === true, since !== undefined].filter(Boolean).length;
    if (modes !== 1 || (delivery !== undefined && subscription !== undefined))
      throw new UsageError(
        'replay needs exactly one of --delivery ID, --subscription ID --dead, --subscription ID --since TIME',
      );
    if (delivery === undefined && typeof subscription !== 'string')
      throw new UsageError('--dead and --since need --subscription ID');
    if (args.values.force === true && delivery === undefined)
      throw new UsageError('--force goes with --delivery ID');
    const sinceDate = typeof since === 'string' ? parseSince(since) : undefined;
    const { withHub } = await import('../hub.ts');
    return withHub(args, io, async ({ hub }) => {
      if (typeof delivery === 'string') {
        const fresh = await hub.deliveries
          .replay(delivery, { force: args.values.force === true })
          .catch((error: unknown) => {
            // The hub's refusal names the API's `force: true`; on the command line it is --force.
            const replayedAs = isSwitchyardError(error) ? error.details?.replayedAs : undefined;
            if (typeof replayedAs !== 'string') throw error;
            throw new SwitchyardError(
              'SY_PIPELINE_CONFLICT',
              `delivery ${delivery} was already replayed as ${replayedAs}: replay that one, or add --force to send this one again`,
              { details: (error as SwitchyardError).details },
            );
          });
        io.stdout.write(`queued delivery ${fresh.id}: a replay of ${delivery} (event ${fresh.eventId})\n`);
        const wait = args.values.wait === true || (io.stderr as ProgressStream).isTTY === true;
        return wait ? watchOne(hub, io, fresh.id) : 0;
      }
      const id = subscription as string;
      const started = (await sql<{ now: Date }>`select now() as now`.execute(hub.host.db)).rows[0]!.now;
      const { replayed } = sinceDate
        ? await hub.deliveries.replaySince(id, sinceDate)
        : await hub.deliveries.replayDead(id);
      const what = sinceDate ? `event(s) since ${sinceDate.toISOString()}` : 'dead deliver(ies)';
      io.stdout.write(`queued ${replayed} ${what} of subscription ${id} again\n`);
      const wait = args.values.wait === true || (io.stderr as ProgressStream).isTTY === true;
      if (!wait || replayed === 0) return 0;
      return watch(hub, io, id, started, replayed);
    });
  },
};
