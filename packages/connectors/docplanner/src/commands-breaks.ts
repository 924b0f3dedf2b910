/**
 * Docplanner calendar-block commands: its Calendar Breaks calls (API reference 1.14.0, under
 * `/facilities/{f}/doctors/{d}/addresses/{a}`; FACTS.md, "Write API"), with the token, place and
 * write record of the booking commands (commands.ts).
 *
 * | command | call |
 * |---|---|
 * | slot.block | `POST …/breaks` `{since, till, description?}` (addCalendarBreak: 201, the break) |
 * | slot.move_block | `PATCH …/breaks/{id}` `{since, till}` (moveCalendarBreak: 204) |
 * | slot.unblock | `DELETE …/breaks/{id}` (deleteCalendarBreak: 204) |
 *
 * A block's place is the command's (`organization` / `practitioner` / `location`, as a book's); a
 * move's or unblock's is the block's known state (`ctx.current`): from Docplanner's `break-*`
 * notification or, before one arrived (late, or lost), the hub's `slot.block` command that made it. As with
 * a book, Docplanner has no idempotency key for a new break: a block whose answer was lost is never
 * sent again blind, its next try first looks for the break among the address's breaks in its span
 * ({@link blockedEarlier}). A move and a removal are safe to repeat: a repeated move is refused 422
 * "Same Date Range" and the break is re-read, a repeated removal answers 404, which is done.
 */
import {
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  createdOutcome,
  isJsonObject,
  type JsonObject,
  type JsonValue,
} from '@switchyard/core';
import {
  api,
  attemptOf,
  BOOK_SETTLE_MS,
  type Ctx,
  carriedOut,
  failure,
  type Lookup,
  lookupList,
  notListedYet,
  ok,
  type Place,
  placeOf,
  placePath,
  replayed,
  type SentWrite,
  sameInstant,
  sendWrite,
  unsuccessfulWrite,
  vendorId,
  vendorTime,
} from './commands.ts';
import type { Config } from './config.ts';
import { docplannerApi } from './pull.ts';

/**
 * What a block or move lacks that Docplanner needs: the three ids of the path (a block), and an
 * `end` after `start` (Docplanner refuses the break 422 "Invalid date range"); undefined when
 * nothing. Checked when the command is sent ({@link breakUnsupported}) and again by the handler.
 */
function breakLacks(command: CommandData): string | undefined {
  if (command.type !== 'slot.block' && command.type !== 'slot.move_block') return undefined;
  const d = command.data;
  const missing: string[] = [];
  if (command.type === 'slot.block') {
    if (!command.data.organization?.id) missing.push('organization.id (facility)');
    if (!command.data.practitioner?.id) missing.push('practitioner.id (doctor)');
    if (!command.data.location?.id) missing.push('location.id (address)');
  }
  if (missing.length > 0) return `Docplanner blocks a calendar only with ${missing.join(', ')}`;
  if (!(Date.parse(d.end) > Date.parse(d.start))) {
    return `a block's end (${d.end}) must be after its start (${d.start}): Docplanner refuses it ("Invalid date range")`;
  }
  return undefined;
}

/**
 * Why this instance cannot carry out a block command as sent (see commands.ts's
 * `commandUnsupported`, which asks this one too).
 *
 * @example
 * ```ts
 * breakUnsupported({ type: 'slot.block', data: { start: '2026-03-11T14:00:00+01:00', end: '2026-03-11T13:00:00+01:00', … } });
 * // "a block's end (…) must be after its start (…): Docplanner refuses it (\"Invalid date range\")"
 * ```
 */
export function breakUnsupported(command: CommandData): string | undefined {
  return breakLacks(command);
}

/** The break id a `Location` header names (`…/addresses/{a}/breaks/{id}`), if it names one. */
function locatedBreak(location: string | undefined): string | undefined {
  const m = location === undefined ? null : /\/breaks\/([^/?#]+)/.exec(location);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined; // a malformed escape: the header says nothing usable
  }
}

const UNKNOWN_BLOCK = 'an earlier try of this block went out and its outcome is unknown';

/** A block's lookup ({@link blockedEarlier}). */
const BLOCK_LOOKUP: Lookup = {
  unknown: UNKNOWN_BLOCK,
  list: 'break list',
  listed: "the address's breaks",
  done: 'blocked',
  notification: "Docplanner's notification (break-created)",
};

/** The same text, absent and empty alike (Docplanner's `description` is null when none was given). */
const sameDescription = (listed: JsonValue | undefined, sent: JsonValue | undefined) =>
  (typeof listed === 'string' ? listed : '') === (typeof sent === 'string' ? sent : '');

/**
 * After a block whose outcome is unknown (no answer, a 5xx that does not say, a 2xx without the
 * break): lists the address's breaks in the block's span (getCalendarBreaks, `GET …/breaks?since=
 * &till=`) and looks for one with the same start and end instants and description. Found: done with
 * its id (`alreadyDone`). A break carries nothing that tells who made it or when, so one made the
 * same by someone else is taken as this command's; Docplanner refuses a second break of the same
 * address, span and description (409), so there can only be the one. Not found: undefined (send
 * again) once the earlier try has surely ended at Docplanner ({@link BOOK_SETTLE_MS} after it went
 * out), else transient until then. A list that did not answer is transient, one refused permanent:
 * nothing is sent blind.
 */
async function blockedEarlier(
  command: CommandRequest<'slot.block'>,
  ctx: Ctx,
  place: Place,
  body: JsonObject,
  sent: SentWrite,
): Promise<CommandResult | undefined> {
  const query = new URLSearchParams({ since: String(body.since), till: String(body.till) });
  const listed = await lookupList(ctx, `${placePath(ctx.config, place)}/breaks?${query}`, BLOCK_LOOKUP);
  if (!('items' in listed)) return listed;
  const { items, res } = listed;
  const made = items.find(
    (b): b is JsonObject =>
      isJsonObject(b) &&
      vendorId(b.id) !== undefined &&
      sameInstant(b.since, body.since) &&
      sameInstant(b.till, body.till) &&
      sameDescription(b.description, body.description),
  );
  if (made) return carriedOut(command, ctx, { vendorIds: [vendorId(made.id)!], alreadyDone: true }, res);
  const sentAt = sent.at === undefined ? Number.NaN : Date.parse(sent.at);
  const wait = Number.isNaN(sentAt) ? BOOK_SETTLE_MS : sentAt + BOOK_SETTLE_MS - Date.now();
  return wait > 0 ? notListedYet(BLOCK_LOOKUP, wait) : undefined;
}

async function block(command: CommandRequest<'slot.block'>, ctx: Ctx): Promise<CommandResult> {
  const d = command.data;
  // Also here: a command the hub accepted before the connector refused such data up front.
  const lacks = breakLacks(command);
  if (lacks !== undefined) return { outcome: 'permanent', message: lacks };
  const place = placeOf(d as unknown as JsonObject)!;
  const earlier = await attemptOf(command, ctx);
  const again = await replayed(command, ctx, earlier);
  if (again) return again;
  const body: JsonObject = { since: vendorTime(d.start), till: vendorTime(d.end) };
  if (d.reason !== undefined) body.description = d.reason;
  const unknown = earlier && 'sent' in earlier ? earlier.sent : undefined;
  if (unknown) {
    const checked = await blockedEarlier(command, ctx, place, body, unknown);
    if (checked) return checked;
  }
  const first = unknown?.first ?? unknown?.at;
  const res = await sendWrite(
    command,
    ctx,
    { method: 'POST', url: `${placePath(ctx.config, place)}/breaks`, json: body },
    first === undefined ? {} : { first },
    unknown,
  );
  if (!ok(res)) {
    if (unknown && res.status === 409) {
      // "Break for given address, date range and description exists": the earlier try's, landed
      // after the wait? Looked for once more before the command fails on the refusal.
      const found = await blockedEarlier(command, ctx, place, body, { at: new Date(0).toISOString() });
      if (found) return found;
    }
    return unsuccessfulWrite(
      command,
      ctx,
      'break',
      res,
      "the next try looks for the break among the address's breaks before it sends it again",
      unknown,
    );
  }
  // addCalendarBreak answers the CalendarBreak (since 1.4.7; before it, no body) and a `Location`
  // naming it: either gives the id.
  const located = locatedBreak(res.headers.location);
  const result: CommandResult =
    located !== undefined && !(isJsonObject(res.body) && vendorId(res.body.id) !== undefined)
      ? { outcome: 'done', vendorIds: [located] }
      : createdOutcome('Docplanner break', res, (b) => b.id);
  // Without an id (a proxy's page): the `sent` mark stays, so the next try looks before it sends.
  if (result.outcome !== 'done') return result;
  return carriedOut(command, ctx, { vendorIds: result.vendorIds ?? [] }, res);
}

/** The break a move or unblock acts on: its id and place from the block's known state. */
function breakTarget(ctx: Ctx): { id: string; place: Place } | CommandResult {
  // A `slot/…` may be a doctor's availability (slot-changed, kind `availability`), which no break
  // call addresses: its DELETE would answer 404, read as "already removed", done.
  if (ctx.current?.kind !== undefined && ctx.current.kind !== 'block') {
    return {
      outcome: 'permanent',
      message: `this slot is not a calendar block (kind ${JSON.stringify(ctx.current.kind)}): only a Docplanner break can be moved or removed`,
    };
  }
  const id = ctx.vendorIds[ctx.vendorIds.length - 1];
  const place = placeOf(ctx.current);
  if (!id || !place) {
    return {
      outcome: 'permanent',
      message:
        'the hub does not know this block’s facility, doctor and address (neither a Docplanner notification about it nor the command that made it carried them)',
    };
  }
  return { id, place };
}

async function moveBlock(command: CommandRequest<'slot.move_block'>, ctx: Ctx): Promise<CommandResult> {
  const lacks = breakLacks(command);
  if (lacks !== undefined) return { outcome: 'permanent', message: lacks };
  const t = breakTarget(ctx);
  if ('outcome' in t) return t;
  const url = `${placePath(ctx.config, t.place)}/breaks/${encodeURIComponent(t.id)}`;
  const body = { since: vendorTime(command.data.start), till: vendorTime(command.data.end) };
  const res = await docplannerApi(api(ctx), { method: 'PATCH', url, json: body });
  // A 2xx is done, unless it is a proxy's or a maintenance page (transient: commandOutcome).
  const result = failure('break move', res);
  if (result.outcome === 'permanent' && res.status === 422) {
    // "Same Date Range": the break is there already (this command's earlier try, whose answer was
    // lost, or a move made meanwhile). Done when a re-read says so; any other 422 stands.
    const now = await docplannerApi(api(ctx), { method: 'GET', url });
    if (
      ok(now) &&
      isJsonObject(now.body) &&
      sameInstant(now.body.since, body.since) &&
      sameInstant(now.body.till, body.till)
    ) {
      return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
    }
  }
  return result;
}

async function unblock(_command: CommandRequest<'slot.unblock'>, ctx: Ctx): Promise<CommandResult> {
  const t = breakTarget(ctx);
  if ('outcome' in t) return t;
  const res = await docplannerApi(api(ctx), {
    method: 'DELETE',
    url: `${placePath(ctx.config, t.place)}/breaks/${encodeURIComponent(t.id)}`,
  });
  const result = failure('break removal', res);
  if (result.outcome !== 'permanent') return result; // done, or a 5xx / a maintenance page: transient
  // 404 "Invalid break ID": not there any more (staff removed it, or this command's earlier try
  // whose answer was lost): the time is free, as asked.
  if (res.status === 404)
    return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
  return result;
}

/**
 * The calendar-block handlers, spread into the connector's `commands` beside the booking ones.
 *
 * @example
 * ```ts
 * const result = await breakCommands['slot.unblock']!(command, ctx); // { outcome: 'done', … }
 * ```
 */
export const breakCommands: CommandSpec<Config> = {
  'slot.block': block,
  'slot.move_block': moveBlock,
  'slot.unblock': unblock,
};
