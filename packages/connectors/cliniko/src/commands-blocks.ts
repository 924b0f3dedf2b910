/**
 * Cliniko calendar-block commands: its unavailable blocks (github.com/redguava/cliniko-api,
 * sections/unavailable_blocks.md), with the key, answers and write record of the appointment
 * commands (commands.ts).
 *
 * | command | call |
 * |---|---|
 * | slot.block | `POST /unavailable_blocks` `{ starts_at, ends_at, practitioner_id, business_id, notes? }` ("Create Unavailable Block": 201, the block) |
 * | slot.move_block | `PUT /unavailable_blocks/{id}` `{ starts_at, ends_at }` ("Update Unavailable Block": 200, the block) |
 * | slot.unblock | `DELETE /unavailable_blocks/{id}` ("Delete Unavailable Block": 204) |
 *
 * As with a booking, Cliniko has no idempotency key for a new block: a try marks it in the
 * command's state before the POST, and a later try after an answer that did not prove a refusal
 * looks the block up (practitioner, business, start and end) before it sends again
 * ({@link blockedEarlier}). A move sets the times: sent again after a lost answer, it leaves the same
 * block. A removal of a block already gone answers 404, which is done.
 */
import {
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  nextSendMark,
  provesNotCarriedOut,
  sendNotCarriedOut,
  sendTimes,
  stillLanding,
} from '@switchyard/core';
import { type Ctx, listed, lookupFailed, madeSince, outcome } from './commands.ts';
import { apiBase, apiHeaders, type Config, clinikoTime } from './config.ts';

/**
 * Why this instance cannot carry out a block command as sent: a block needs the practitioner and
 * the business (`location.id`), both required by Cliniko's create; a block or move needs an end
 * after its start. Undefined when nothing. Asked when the command is sent (the connector's
 * `commandUnsupported`) and again by the handler.
 *
 * @example
 * ```ts
 * blockUnsupported({ type: 'slot.block', data: { start: '2026-03-11T13:00:00+01:00', end: '2026-03-11T14:00:00+01:00' } });
 * // 'Cliniko blocks a calendar only with practitioner.id, location.id (the Cliniko business)'
 * ```
 */
export function blockUnsupported(command: CommandData): string | undefined {
  if (command.type !== 'slot.block' && command.type !== 'slot.move_block') return undefined;
  if (command.type === 'slot.block') {
    const missing = [
      command.data.practitioner?.id ? undefined : 'practitioner.id',
      command.data.location?.id ? undefined : 'location.id (the Cliniko business)',
    ].filter((m) => m !== undefined);
    if (missing.length > 0) return `Cliniko blocks a calendar only with ${missing.join(', ')}`;
  }
  const { start, end } = command.data;
  if (!(Date.parse(end) > Date.parse(start))) {
    return `a block's end (${end}) must be after its start (${start})`;
  }
  return undefined;
}

const SENT = 'cliniko:block-sent';

/** A live block (not deleted or archived) with exactly these start and end instants. */
function sameLiveBlock(item: JsonValue, startsAt: string, endsAt: string): item is JsonObject {
  return (
    isJsonObject(item) &&
    item.id != null &&
    typeof item.starts_at === 'string' &&
    typeof item.ends_at === 'string' &&
    Date.parse(item.starts_at) === Date.parse(startsAt) &&
    Date.parse(item.ends_at) === Date.parse(endsAt) &&
    !item.deleted_at &&
    !item.archived_at
  );
}

/**
 * After a try whose POST went out and whose answer did not prove a refusal: lists the practitioner's
 * blocks at the business that start at the block's start (`q[]=practitioner_id:=…`,
 * `business_id:=…`, and `starts_at:>=` and `:<=` the start: Cliniko's DateTime filters have no
 * `=`), and takes one with the same end that Cliniko made no earlier than the first try less the
 * clocks' skew (as a booking's lookup does, commands.ts). Found: done with its id (`alreadyDone`).
 * Not found: undefined, send once the last POST can no longer land ({@link stillLanding}). A list that does not answer 200 ends the try as its answer says
 * (transient: looked up again next time; refused: nothing is sent blind).
 */
async function blockedEarlier(
  ctx: Ctx,
  body: JsonObject,
  sentAt: number | undefined,
): Promise<CommandResult | undefined> {
  const query = new URLSearchParams();
  query.append('q[]', `practitioner_id:=${body.practitioner_id}`);
  query.append('q[]', `business_id:=${body.business_id}`);
  query.append('q[]', `starts_at:>=${body.starts_at}`);
  query.append('q[]', `starts_at:<=${body.starts_at}`);
  const found = await ctx.http.request({
    url: `${apiBase(ctx.config)}/unavailable_blocks?${query}`,
    headers: apiHeaders(ctx.config),
  });
  const items = listed(found, 'unavailable_blocks');
  if (!Array.isArray(items)) return lookupFailed('Cliniko unavailable block lookup', found);
  const made = items.find(
    (item): item is JsonObject =>
      sameLiveBlock(item, String(body.starts_at), String(body.ends_at)) && madeSince(item, sentAt),
  );
  return made ? { outcome: 'done', alreadyDone: true, vendorIds: [String(made.id)] } : undefined;
}

async function block(command: CommandRequest<'slot.block'>, ctx: Ctx): Promise<CommandResult> {
  // Also here: a command the hub accepted before the connector refused such data up front.
  const refused = blockUnsupported(command);
  if (refused !== undefined) return { outcome: 'permanent', message: refused };
  const d = command.data;
  const body: JsonObject = {
    starts_at: clinikoTime(d.start),
    ends_at: clinikoTime(d.end),
    practitioner_id: d.practitioner!.id,
    business_id: d.location!.id,
  };
  if (d.reason !== undefined) body.notes = d.reason;
  const mark = await ctx.commandState.get(SENT);
  const { first: sentAt, last } = sendTimes(mark);
  if (mark !== undefined) {
    const earlier = await blockedEarlier(ctx, body, sentAt);
    if (earlier) return earlier;
    // Not listed yet while the last POST may still land: posted again at once, it blocked twice.
    const landing = stillLanding('calendar block', last);
    if (landing) return landing;
  }
  // The first send's time stays: a later try that sends again must still find what the first made.
  await ctx.commandState.set(SENT, nextSendMark(mark));
  const res = await ctx.http.request({
    method: 'POST',
    url: `${apiBase(ctx.config)}/unavailable_blocks`,
    headers: apiHeaders(ctx.config),
    json: body,
  });
  // A 2xx without the block's id (a proxy's page) is transient, not done: the mark stays, and the
  // next try looks the block up before posting again.
  const result = outcome('Cliniko unavailable block', res, (b) => b.id);
  // This POST made nothing; an earlier POST's unknown outcome keeps its mark.
  if (result.outcome === 'permanent' || provesNotCarriedOut(res)) {
    await sendNotCarriedOut(ctx.commandState, SENT, mark);
  }
  return result;
}

/** The block a move or unblock acts on: its Cliniko id, from the slot's aliases. */
function blockId(ctx: Ctx): string | CommandResult {
  // A `slot/…` of another kind (a Docplanner availability) is no unavailable block.
  if (ctx.current?.kind !== undefined && ctx.current.kind !== 'block') {
    return {
      outcome: 'permanent',
      message: `this slot is not a calendar block (kind ${JSON.stringify(ctx.current.kind)}): only a Cliniko unavailable block can be moved or removed`,
    };
  }
  const id = ctx.vendorIds.at(-1);
  return id ?? { outcome: 'permanent', message: 'the block has no Cliniko id at this instance' };
}

async function moveBlock(command: CommandRequest<'slot.move_block'>, ctx: Ctx): Promise<CommandResult> {
  const refused = blockUnsupported(command);
  if (refused !== undefined) return { outcome: 'permanent', message: refused };
  const id = blockId(ctx);
  if (typeof id !== 'string') return id;
  // PUT, the update the API documents for blocks ("Update Unavailable Block").
  const res = await ctx.http.request({
    method: 'PUT',
    url: `${apiBase(ctx.config)}/unavailable_blocks/${encodeURIComponent(id)}`,
    headers: apiHeaders(ctx.config),
    json: { starts_at: clinikoTime(command.data.start), ends_at: clinikoTime(command.data.end) },
  });
  return outcome('Cliniko unavailable block move', res);
}

async function unblock(_command: CommandRequest<'slot.unblock'>, ctx: Ctx): Promise<CommandResult> {
  const id = blockId(ctx);
  if (typeof id !== 'string') return id;
  const res = await ctx.http.request({
    method: 'DELETE',
    url: `${apiBase(ctx.config)}/unavailable_blocks/${encodeURIComponent(id)}`,
    headers: apiHeaders(ctx.config),
  });
  // 404: not there any more (deleted by staff, or this command's earlier try whose answer was
  // lost): the time is free, as asked.
  if (res.status === 404)
    return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
  return outcome('Cliniko unavailable block removal', res);
}

/**
 * The calendar-block handlers, spread into the connector's `commands` beside the appointment ones.
 *
 * @example
 * ```ts
 * const result = await blockCommands['slot.unblock']!(command, ctx); // { outcome: 'done', … }
 * ```
 */
export const blockCommands: CommandSpec<Config> = {
  'slot.block': block,
  'slot.move_block': moveBlock,
  'slot.unblock': unblock,
};
