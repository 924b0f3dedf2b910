/**
 * `switchyard gates`: lists gate (approval) requests with their decisions, or shows one with every
 * approver's answer. Reads the database directly (no running hub needed).
 */
import type { Kysely } from 'kysely';
import { DEFAULT_MATCH_WINDOW_MS } from '../../gates/gates.ts';
import { type GateRequest, type GateRequestDetail, getGate, listGates } from '../../gates/views.ts';
import { openDatabase } from '../../storage/db.ts';
import { type Command, configOption, UsageError } from '../command.ts';

/**
 * Runs `fn` on the gate tables' database: `--database-url` when given, else the config file's
 * database the way every other command finds it (a real Postgres, or the embedded one, reusing a
 * running hub's embedded server).
 */
async function withGateDatabase(
  args: Parameters<Command['run']>[0],
  io: Parameters<Command['run']>[1],
  fn: (db: Kysely<unknown>) => Promise<number>,
): Promise<number> {
  const url = args.values['database-url'];
  if (typeof url === 'string' && url !== '') {
    const database = openDatabase(url, { max: 2 });
    try {
      return await fn(database.db);
    } finally {
      await database.close();
    }
  }
  const { withHub } = await import('../hub.ts');
  return withHub(args, io, ({ hub }) => fn(hub.host.db));
}

function ms(value: number | null): string {
  return value === null ? '-' : `${Math.round(value)} ms`;
}

/** One line per request: when, id, instance, vendor type, decision (reason, by), time, booking. */
export function formatGateLine(g: GateRequest): string {
  const decision =
    g.decision === null
      ? g.status
      : `${g.decision} (${g.reason}${g.decidedBy ? ` by ${g.decidedBy}` : ''}${g.vendorErrorCode !== null ? `, code ${g.vendorErrorCode}` : ''})`;
  return [
    g.receivedAt.toISOString(),
    g.id,
    g.instanceId,
    g.vendorType,
    decision,
    ms(g.decisionMs),
    `booking: ${g.booking.status}`,
  ].join('  ');
}

/** The detail view: the line, then each approver's answer. */
export function formatGateDetail(g: GateRequestDetail): string {
  const lines = [formatGateLine(g)];
  if (g.refusalReason) lines.push(`  refusal reason: ${g.refusalReason}`);
  if (g.error) lines.push(`  error: ${g.error}`);
  if (g.responseStatus !== null) lines.push(`  vendor answered: HTTP ${g.responseStatus}`);
  lines.push(`  approvers asked: ${g.approvers}`);
  for (const a of g.answers) {
    const status = a.statusCode === null ? (a.error ?? 'no answer') : `HTTP ${a.statusCode}`;
    lines.push(
      `  - ${a.subscriptionId}: ${a.outcome} (${status}, ${ms(a.latencyMs)})${a.reason ? ` ${a.reason}` : ''}${a.afterDecision ? ' [after the decision]' : ''}`,
    );
  }
  if (g.booking.status === 'booked')
    lines.push(`  booked: ${g.booking.vendorType} → ${g.booking.subject ?? g.booking.eventId}`);
  return `${lines.join('\n')}\n`;
}

/**
 * `switchyard gates [list] [--instance ID] [--decision approve|refuse] [--reason R] [--limit N] [--json]`
 * and `switchyard gates show ID [--json]`.
 *
 * @example
 * ```ts
 * await main(['gates', 'list', '--decision', 'refuse', '--database-url', url]);
 * ```
 */
export const gatesCommand: Command = {
  name: 'gates',
  summary: 'list approval (gate) requests with their decisions, or show one with every answer',
  usage:
    '[list | show ID] [--config FILE | --database-url URL] [--instance ID] [--decision approve|refuse] [--reason R] [--limit N] [--json]',
  details: [
    'Options:',
    '  --instance ID        only this connector instance',
    '  --decision D         approve or refuse',
    '  --reason R           approved, refused, deadline, no_approvers, unavailable, error or abandoned',
    '  --limit N            at most N requests (default 20, at most 500)',
    '  --json               print JSON instead of text',
    "  --database-url URL   the database (default: the config file's, like every command)",
    '  -c, --config FILE    the config file to read the database from',
  ].join('\n'),
  options: {
    ...configOption,
    'database-url': { type: 'string' },
    instance: { type: 'string' },
    decision: { type: 'string' },
    reason: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args, io) {
    const [action = 'list', id, ...extra] = args.positionals;
    if (extra.length > 0 || (action !== 'list' && action !== 'show')) {
      throw new UsageError('usage: switchyard gates [list | show ID] [options]');
    }
    if (action === 'show' && !id) throw new UsageError('gates show needs a gate request id');
    const v = args.values;
    const limit = v.limit === undefined ? 20 : Number(v.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500)
      throw new UsageError('--limit must be an integer 1..500');
    return withGateDatabase(args, io, async (db) => {
      try {
        if (action === 'show') {
          const gate = await getGate(db, id!, DEFAULT_MATCH_WINDOW_MS);
          io.stdout.write(v.json ? `${JSON.stringify(gate, null, 2)}\n` : formatGateDetail(gate));
          return 0;
        }
        const page = await listGates(
          db,
          {
            ...(typeof v.instance === 'string' ? { instanceId: v.instance } : {}),
            ...(typeof v.decision === 'string' ? { decision: v.decision } : {}),
            ...(typeof v.reason === 'string' ? { reason: v.reason } : {}),
            limit,
          },
          DEFAULT_MATCH_WINDOW_MS,
        );
        if (v.json) io.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        else if (page.items.length === 0) io.stdout.write('no gate requests\n');
        else io.stdout.write(`${page.items.map(formatGateLine).join('\n')}\n`);
        return 0;
      } catch (error) {
        // A read command never migrates: a database the hub has not run on yet just says so.
        if ((error as { code?: unknown }).code === '42P01') {
          throw new UsageError(
            'this database has no gate tables yet: start the hub (or run its migrations) first',
          );
        }
        throw error;
      }
    });
  },
};
