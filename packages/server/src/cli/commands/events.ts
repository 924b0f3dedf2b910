import type { HubEvent } from '../../events/api.ts';
import type { Hub } from '../../pipeline/hub.ts';
import { isDatabaseUnavailable } from '../../storage/unavailable.ts';
import { type CliIO, type Command, configOption, UsageError } from '../command.ts';

/** One event as one line: time, type, source, subject, id (or the whole event as JSON). */
export function formatEvent(event: HubEvent, json: boolean): string {
  if (json) return JSON.stringify(event);
  return [event.time, event.type, event.source, event.subject, event.id].join('  ');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * The newest `limit` events the filter matches, newest first. A page of the events API looks at a
 * bounded number of events (events/store.ts EVENT_LIST_SCAN) and may hold fewer than asked, even
 * none, with a cursor to go on from: the pages are followed until `limit` are found or
 * `nextCursor` is null, so a rare type is not answered "no events" when older ones exist.
 *
 * @example
 * ```ts
 * const events = await latestEvents(hub, { type: 'gate.*' }, 50);
 * ```
 */
export async function latestEvents(
  hub: Hub,
  filter: { type?: string; source?: string },
  limit: number,
): Promise<HubEvent[]> {
  return (await newestMatches(hub, filter, limit)).events;
}

/**
 * {@link latestEvents}, with the sequence from which its first page looked at every event stored
 * then: the newest match, or where the page stopped without one (0: it looked at every event). A
 * follower goes on from there: the events above it that were stored then match nothing.
 */
async function newestMatches(
  hub: Hub,
  filter: { type?: string; source?: string },
  limit: number,
): Promise<{ events: HubEvent[]; lookedFrom: bigint }> {
  const events: HubEvent[] = [];
  let lookedFrom: bigint | undefined;
  let cursor: string | undefined;
  for (;;) {
    const page = await hub.events.list({
      ...filter,
      limit: limit - events.length,
      ...(cursor ? { cursor } : {}),
    });
    lookedFrom ??= page.items[0]
      ? BigInt(page.items[0].sequence)
      : page.nextCursor
        ? BigInt(page.nextCursor)
        : 0n;
    events.push(...page.items);
    if (events.length >= limit || !page.nextCursor) return { events, lookedFrom };
    cursor = page.nextCursor;
  }
}

/** Events after `afterSequence`, oldest first (the API pages newest first). */
async function newerThan(
  hub: Hub,
  filter: { type?: string; source?: string },
  afterSequence: bigint,
): Promise<HubEvent[]> {
  const found: HubEvent[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await hub.events.list({ ...filter, limit: 500, ...(cursor ? { cursor } : {}) });
    for (const event of page.items) {
      if (BigInt(event.sequence) <= afterSequence) return found.reverse();
      found.push(event);
    }
    // A page that looked at its share of events without filling up (a type that matches none of
    // them) goes on from its cursor: past what was already shown, there is nothing more to find.
    if (!page.nextCursor || BigInt(page.nextCursor) <= afterSequence) return found.reverse();
    cursor = page.nextCursor;
  }
}

/**
 * Prints the last ten events the filter matches, however far back ({@link latestEvents}), then
 * every new one each `pollMs`, until `signal` aborts. An outage
 * of the database (a Postgres restart, a failover: storage/unavailable.ts) is waited out, said once
 * on stderr when it starts and once when the database is back, and the events stored meanwhile are
 * printed then; any other error ends the tail. Before, the first poll that met a restart ended the
 * command with "internal error (a bug; please report it)" and a stack (exit 70).
 *
 * @example
 * ```ts
 * await tailEvents(hub, io, { type: 'appointment.*' }, false, controller.signal, 1000);
 * ```
 */
export async function tailEvents(
  hub: Hub,
  io: CliIO,
  filter: { type?: string; source?: string },
  json: boolean,
  signal: AbortSignal,
  pollMs: number,
): Promise<void> {
  let last: bigint | undefined;
  let down = false;
  while (!signal.aborted) {
    try {
      if (last === undefined) {
        // The last ten matches, as `tail -n` prints them, however far back: before, only those
        // among the events one page looks at (EVENT_LIST_SCAN), and a filter whose matches were
        // older printed nothing. Once; the polls then go on from where the first page looked, not
        // from the tenth match (without one, through every event stored, each second).
        const latest = await newestMatches(hub, filter, 10);
        for (const event of [...latest.events].reverse()) io.stdout.write(`${formatEvent(event, json)}\n`);
        last = latest.lookedFrom;
      } else {
        for (const event of await newerThan(hub, filter, last)) {
          io.stdout.write(`${formatEvent(event, json)}\n`);
          last = BigInt(event.sequence);
        }
      }
      if (down) io.stderr.write('switchyard events: the database is back\n');
      down = false;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      // The code only (ECONNREFUSED, 57P01): a driver's message may quote the URL's host and user.
      const code = (error as { code?: unknown }).code;
      if (!down)
        io.stderr.write(
          `switchyard events: the database is unavailable${typeof code === 'string' ? ` (${code})` : ''}; waiting for it\n`,
        );
      down = true;
    }
    await sleep(pollMs, signal);
  }
}

/** `switchyard events list|tail`: the stored normalized events, newest first, or followed. */
export const eventsCommand: Command = {
  name: 'events',
  summary: 'list stored events (newest first), or tail them as they arrive',
  usage: 'list|tail [--config FILE] [--type T] [--source S] [--limit N] [--json]',
  details: [
    'Subcommands:',
    '  list                the latest events, newest first (time, type, source, subject, id)',
    '  tail                the last 10 matches, then every new one as it is stored, until Ctrl-C',
    'Options:',
    '  -c, --config FILE   the config file',
    '  --type T            an event type, or a family (appointment.*)',
    '  --source S          an instance id',
    '  --limit N           list: how many (default 50, at most 500)',
    '  --json              one JSON event a line',
  ].join('\n'),
  options: {
    ...configOption,
    type: { type: 'string' },
    source: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args, io) {
    const [sub, ...extra] = args.positionals;
    if ((sub !== 'list' && sub !== 'tail') || extra.length > 0)
      throw new UsageError('usage: switchyard events list|tail [--type T] [--source S]');
    const filter: { type?: string; source?: string } = {};
    if (typeof args.values.type === 'string') filter.type = args.values.type;
    if (typeof args.values.source === 'string') filter.source = args.values.source;
    const json = args.values.json === true;
    let limit = 50;
    if (args.values.limit !== undefined) {
      limit = Number(args.values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw new UsageError('--limit must be an integer 1..500');
    }
    const { withHub } = await import('../hub.ts');
    return withHub(args, io, async ({ hub }) => {
      if (sub === 'list') {
        const events = await latestEvents(hub, filter, limit);
        for (const event of events) io.stdout.write(`${formatEvent(event, json)}\n`);
        if (events.length === 0 && !json) io.stderr.write('no events\n');
        return 0;
      }
      const controller = new AbortController();
      const stop = () => controller.abort();
      const real = io.stdout === process.stdout;
      if (real) {
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }
      try {
        await tailEvents(hub, io, filter, json, controller.signal, 1000);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    });
  },
};
