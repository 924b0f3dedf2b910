/**
 * Clockwise.MD commands, through the REST API (`Authtoken` header, the instance's `apiKey`). The
 * write calls come from public client code (FACTS.md): their answers are *unverified*, so any 2xx
 * is done and its body is kept on the command, except a create's answer without the appointment's
 * id (`createdOutcome`: transient, not done) and an HTML page for a remove or an update (`outcome`).
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST /appointments/create` (form fields) |
 * | appointment.cancel | `PUT /appointments/{id}/remove` |
 * | appointment.update | `PUT /appointments/{id}/update` with `{ custom_fields }` |
 *
 * No check-in call is published, so `appointment.mark_arrived` is not offered.
 */
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  CREATE_SETTLE_MS,
  commandOutcome,
  createdOutcome,
  isJsonObject,
  isRetryableStatus,
  type JsonObject,
  type JsonValue,
  provesNotCarriedOut,
  type VendorResponse,
} from '@switchyard/core';
import { type Config, resolveConfig } from './config.ts';
import { type CreateAsked, cancelIntentKey, createIntentKey, slotOnlyIntentKey } from './normalize.ts';

type Ctx = CommandContext<Config>;

/** How much of Clockwise.MD's words a failure message keeps (as the other connectors'). */
const SAID_MAX = 200;

/**
 * Clockwise.MD's own words in a refusal, for the failure message: its `error`, `message` or
 * `errors` (text, a list, or by field), else a text body that is not a page; cut at
 * {@link SAID_MAX}. The error format is *unverified* (FACTS.md), so each common one is read. The
 * message said only "answered 422" before, the reason in the kept body alone. The instance's
 * secrets a vendor quotes are scrubbed by the hub, from the message as from the body.
 *
 * @example
 * ```ts
 * vendorSaid({ status: 422, headers: {}, body: { error: 'Appointment already removed' } }); // 'Appointment already removed'
 * ```
 */
function vendorSaid(res: VendorResponse): string | undefined {
  if (isRetryableStatus(res.status) || (res.status >= 200 && res.status < 300)) return undefined;
  const text = (value: JsonValue | undefined): string =>
    typeof value === 'string'
      ? value.trim()
      : Array.isArray(value)
        ? value
            .map(text)
            .filter((t) => t !== '')
            .join('; ')
        : isJsonObject(value)
          ? Object.entries(value)
              .map(([field, v]) => `${field} ${text(v)}`.trim())
              .join('; ')
          : value === undefined || value === null
            ? ''
            : String(value);
  let said = '';
  if (isJsonObject(res.body)) {
    said = text(res.body.error) || text(res.body.message) || text(res.body.errors);
  } else if (typeof res.body === 'string' && !/^\s*</.test(res.body)) {
    said = res.body.trim();
  }
  return said === '' ? undefined : said.slice(0, SAID_MAX);
}

/**
 * The outcome of a remove or an update: {@link commandOutcome}, whose 2xx HTML page (a proxy's or a
 * maintenance page's) is transient, not done (a commands audit: a cancel answered by a maintenance
 * page succeeded, the appointment still on the queue and no webhook to come). A text or empty 2xx
 * is done, as FACTS.md says any 2xx is: the write answers are unverified.
 */
function outcome(what: string, res: VendorResponse): CommandResult {
  return commandOutcome(`Clockwise.MD ${what}`, res, vendorSaid(res));
}

function api(ctx: Ctx): { base: string; headers: Record<string, string> } | CommandResult {
  const config = resolveConfig(ctx.config);
  if (!config.apiKey) {
    return { outcome: 'permanent', message: 'Clockwise.MD commands need settings.apiKey (the REST API key)' };
  }
  return { base: config.apiBaseUrl, headers: { Authtoken: config.apiKey, Accept: 'application/json' } };
}

function current(ctx: Ctx): string | CommandResult {
  const id = ctx.vendorIds[ctx.vendorIds.length - 1];
  return id ?? { outcome: 'permanent', message: 'the appointment has no Clockwise.MD id' };
}

/**
 * Key of a cancel's mark in the command's own state: one of its tries sent `remove` and got no
 * answer that says what became of it (no answer at all, a 5xx, Retry-After or not), so the remove may
 * have happened. Any definite answer settles it: the mark is taken back.
 */
const REMOVE_SENT = 'clockwisemd:remove-sent';

/**
 * `remove` takes the patient off the queue, which Clockwise.MD notifies as a no-show before check-in
 * (FACTS.md). The cancellation is recorded first in the instance state ({@link cancelIntentKey}), so
 * normalization takes the `remove` it causes for the cancellation it is. A refusal (4xx) after an
 * earlier try's `remove` went out unanswered is that remove having happened ("already removed", as
 * the catalog has a retried cancel succeed): done, `alreadyDone` (not a 401 or 403: the key was
 * refused, which says nothing of the appointment). A refusal with no such try before it is the
 * vendor's word: permanent, and neither record stays behind.
 */
async function cancel(command: CommandRequest<'appointment.cancel'>, ctx: Ctx): Promise<CommandResult> {
  const a = api(ctx);
  if ('outcome' in a) return a;
  const id = current(ctx);
  if (typeof id !== 'string') return id;
  const sentBefore = (await ctx.commandState.get(REMOVE_SENT)) !== undefined;
  const intent = cancelIntentKey(id);
  const asked = { command: command.id, at: new Date().toISOString() };
  if (!sentBefore) await ctx.state.set(intent, asked);
  // After an unanswered try the record is renewed only while it is there: gone, the echo of that
  // remove took it (the remove happened), and a new one would make staff's next remove a cancellation.
  else if ((await ctx.state.get(intent)) !== undefined) await ctx.state.set(intent, asked);
  // Set before the call, not after: a try that ends without an answer (a timeout, the connection or
  // the process lost mid-call) leaves it; an answer settles it below.
  await ctx.commandState.set(REMOVE_SENT, true);
  const res = await ctx.http.request({
    method: 'PUT',
    url: `${a.base}/appointments/${encodeURIComponent(id)}/remove`,
    headers: a.headers,
  });
  const result = outcome('remove', res);
  if (result.outcome === 'done') {
    await ctx.commandState.delete(REMOVE_SENT);
    return result;
  }
  if (result.outcome === 'transient' && !provesNotCarriedOut(res)) {
    // A 5xx that does not say it was refused: this remove may have happened (the mark stays).
    return result;
  }
  const refusedAuth = res.status === 401 || res.status === 403;
  if (result.outcome === 'permanent' && sentBefore && !refusedAuth) {
    await ctx.commandState.delete(REMOVE_SENT);
    return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
  }
  // Nothing of this try happened (a refusal, or provesNotCarriedOut). An earlier unanswered remove may
  // still have: its mark and record stay. Else no remove of this command will come, and a later one
  // (staff's) means what it says.
  if (!sentBefore) {
    await ctx.commandState.delete(REMOVE_SENT);
    await ctx.state.delete(intent);
  }
  return result;
}

const NO_COMMENT = 'Clockwise.MD has no writable comment: only customFields can be updated';
const BOOK_NEEDS = 'Clockwise.MD needs location.id (the hospital id) to book';

/**
 * What a book lacks that `POST /appointments/create` requires (FACTS.md; the create answers 422
 * "hospital_id, apt_time and first_name are required"), named as the command's fields, or undefined
 * when nothing is missing. `apt_time` is the command's `start`, which its schema requires. A
 * `last_name` is sent when given, not required: that the create refuses a booking without one is
 * not verified, and refusing a booking Clockwise.MD would take is the worse mistake.
 */
function bookLacks(d: CommandRequest<'appointment.book'>['data']): string | undefined {
  const missing: string[] = [];
  if (!d.location?.id) missing.push('location.id (the hospital id)');
  if (!(d.patient.given ?? d.patient.name)) missing.push('patient.given or patient.name (first_name)');
  return missing.length === 0 ? undefined : `Clockwise.MD needs ${missing.join(', ')} to book`;
}

/**
 * Why this instance cannot carry out a command as sent (the contract's `commandUnsupported`): the
 * hub refuses it at once instead of accepting a command that could only fail (a booking without its
 * hospital was accepted, 202, and then failed without a call; one without the patient's first name
 * was accepted, then refused by Clockwise.MD's 422). A nameless book the hub accepted before is
 * still sent, and the vendor's refusal fails it: only the hospital is needed to make the call.
 *
 * @example
 * ```ts
 * commandUnsupported({ type: 'appointment.update', data: { comment: 'x' } }); // 'Clockwise.MD has no writable comment: …'
 * ```
 */
export function commandUnsupported(command: CommandData): string | undefined {
  if (command.type === 'appointment.book') return bookLacks(command.data);
  return command.type === 'appointment.update' && command.data.comment !== undefined ? NO_COMMENT : undefined;
}

async function update(command: CommandRequest<'appointment.update'>, ctx: Ctx): Promise<CommandResult> {
  // Also here: a command the hub accepted before the connector refused it up front.
  const unsupported = commandUnsupported(command);
  if (unsupported !== undefined) return { outcome: 'permanent', message: unsupported };
  const a = api(ctx);
  if ('outcome' in a) return a;
  const id = current(ctx);
  if (typeof id !== 'string') return id;
  const res = await ctx.http.request({
    method: 'PUT',
    url: `${a.base}/appointments/${encodeURIComponent(id)}/update`,
    headers: a.headers,
    json: { custom_fields: (command.data.customFields ?? {}) as JsonValue },
  });
  return outcome('update', res);
}

/**
 * Key of a create's record in the command's own state (`ctx.commandState`, purged with the command;
 * the command id in it: records written to the instance state before migration 33 moved there under
 * the same key). The create call has no idempotency key (a repeated create books twice), so its
 * record says what became of it for every later try of the command (a retry after a transient
 * failure, after a crash, or after the hub's own work following a success failed):
 * - absent: nothing went out, or the answer proved it was not made (a 4xx refusal, a 408, a 429):
 *   sending it (again) is safe. Clockwise.MD documents no maintenance answer (FACTS.md: its write
 *   answers are unverified), so no 5xx proves the create was not carried out, a 503 with
 *   `Retry-After` included: a proxy in front of it answers so after forwarding the request
 *   ({@link provesNotCarriedOut});
 * - `{ sent: { at } }`: the request went out at `at` and no answer says what became of it (no
 *   answer, a timeout, a 5xx, a 2xx without the appointment's id): never sent again.
 *   Clockwise.MD has no call to list or search appointments, so the next try looks for the
 *   appointment the `create` webhook named ({@link createIntentKey}, {@link madeEarlier}). A bare
 *   `'sent'` (what earlier versions wrote) has no such entry: outcome unknown;
 * - `{ done: { vendorIds } }`: created; a later try answers the same result without a call. Kept
 *   in the command's state by the connector, in the one write that replaces the `sent` mark: why
 *   the hub does not offer a record of its own is in docs/writing-a-connector.md ("What a command
 *   created").
 */
const createKey = (command: CommandRequest) => `clockwisemd:command:${command.id}`;

/**
 * How long after a create went out the next try waits for its `create` webhook before it ends the
 * command as "outcome unknown", ms: core's `CREATE_SETTLE_MS`, the one wait every connector's
 * lookup keeps. The request may still be under way at Clockwise.MD when the hub stops waiting (its
 * 10 s timeout; a gateway answers after its own, commonly 60 s), and the webhook comes after the
 * create.
 */
export { CREATE_SETTLE_MS };

/**
 * Creates Clockwise.MD carried out whose record ({@link createKey}) could not be written, the
 * database refusing it after the answer came: their appointment ids, by command id. A command cut
 * short by a database outage is given back to this process once the database answers again, and
 * its next try finds only the `sent` mark: it failed as "outcome unknown", the appointment booked
 * and its id in hand (a commands audit). The next try here records and answers them instead. Kept
 * in memory only (a try in another process, or after a restart, ends as "outcome unknown"); at most
 * {@link MAX_UNRECORDED}, the oldest dropped.
 */
const unrecorded = new Map<string, string[]>();
const MAX_UNRECORDED = 1000;

/** Records a create's result in the write that ends its `sent` mark, or keeps it in {@link unrecorded}. */
async function recordCreated(command: CommandRequest, ctx: Ctx, vendorIds: string[]): Promise<void> {
  try {
    await ctx.commandState.set(createKey(command), { done: { vendorIds } });
    unrecorded.delete(command.id);
  } catch (error) {
    unrecorded.delete(command.id);
    unrecorded.set(command.id, vendorIds);
    if (unrecorded.size > MAX_UNRECORDED) unrecorded.delete(unrecorded.keys().next().value!);
    throw error;
  }
}

/** The booking's entry under {@link createIntentKey}: set before the call, dropped once it is settled. */
async function setAsked(key: string, command: CommandRequest, entry: CreateAsked | undefined, ctx: Ctx) {
  const asked = (await ctx.state.get<JsonObject>(key)) ?? {};
  const { [command.id]: _, ...rest } = isJsonObject(asked) ? asked : {};
  const next = entry === undefined ? rest : { ...rest, [command.id]: entry as unknown as JsonObject };
  if (Object.keys(next).length === 0) await ctx.state.delete(key);
  else await ctx.state.set(key, next);
}

/** The command's entry under an intent key, if there is one. */
async function askedEntry(ctx: Ctx, key: string, commandId: string): Promise<JsonObject | undefined> {
  const asked = await ctx.state.get<JsonObject>(key);
  return isJsonObject(asked) && isJsonObject(asked[commandId]) ? (asked[commandId] as JsonObject) : undefined;
}

const UNKNOWN_CREATE =
  'an earlier try of this booking went out and its outcome is unknown (no answer, a 5xx, which a proxy in front of Clockwise.MD may give after forwarding it, an answer without a usable appointment id, or a database outage before its answer was recorded)';

/**
 * After a create whose outcome is unknown: the appointment the `create` webhook named for this
 * booking ({@link createIntentKey}, or an earlier version's {@link slotOnlyIntentKey}), if one did: done with its id (`alreadyDone`). Not yet, while
 * the create may still land or its webhook come ({@link CREATE_SETTLE_MS}): transient, looked for
 * again on the next try. Not by then: permanent, never sent again (Clockwise.MD cannot be asked
 * whether it booked, so nothing is booked twice); the vendor's webhook will show whether it did.
 */
async function madeEarlier(
  command: CommandRequest<'appointment.book'>,
  ctx: Ctx,
  keys: readonly [string, ...string[]],
  sent: JsonObject | undefined,
): Promise<CommandResult> {
  // The booking's entry under this version's key, else under the slot-only key an earlier version
  // wrote it under (its create went out before an upgrade): looked for under this version's key
  // alone, it ended "outcome unknown" although its create webhook had named the appointment.
  let key = keys[0];
  let entry: JsonObject | undefined;
  for (const k of keys) {
    entry = await askedEntry(ctx, k, command.id);
    if (entry !== undefined) {
      key = k;
      break;
    }
  }
  if (typeof entry?.found === 'string') {
    await recordCreated(command, ctx, [entry.found]);
    await setAsked(key, command, undefined, ctx);
    return { outcome: 'done', alreadyDone: true, vendorIds: [entry.found] };
  }
  const at = typeof sent?.at === 'string' ? Date.parse(sent.at) : Number.NaN;
  const wait = at + CREATE_SETTLE_MS - Date.now();
  if (entry !== undefined && wait > 0) {
    return {
      outcome: 'transient',
      message: `${UNKNOWN_CREATE}, and no create webhook has named it yet: Clockwise.MD has no idempotency key and no call to look it up, so it is looked for again on the next try, never booked again (${Math.ceil(wait / 1000)} s left to wait)`,
    };
  }
  await setAsked(key, command, undefined, ctx);
  return {
    outcome: 'permanent',
    message: `${UNKNOWN_CREATE}; no create webhook named it within ${CREATE_SETTLE_MS / 1000} s, and Clockwise.MD has no idempotency key and no call to look it up: not sent again, so nothing is booked twice; the vendor's webhook (create) will show whether it happened`,
  };
}

async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const a = api(ctx);
  if ('outcome' in a) return a;
  const d = command.data;
  const hospital = d.location?.id;
  // Also here: a command the hub accepted before the connector refused it up front.
  if (!hospital) return { outcome: 'permanent', message: BOOK_NEEDS };
  const intent = createIntentKey(hospital, d.start, d.patient.given ?? d.patient.name, d.patient.family);
  const earlier = await ctx.commandState.get<JsonValue>(createKey(command));
  if (isJsonObject(earlier) && isJsonObject(earlier.done) && Array.isArray(earlier.done.vendorIds)) {
    const vendorIds = earlier.done.vendorIds.filter((v): v is string => typeof v === 'string');
    return { outcome: 'done', ...(vendorIds.length > 0 ? { vendorIds } : {}) };
  }
  if (earlier === 'sent' || (isJsonObject(earlier) && isJsonObject(earlier.sent))) {
    const made = unrecorded.get(command.id);
    if (made !== undefined) {
      await recordCreated(command, ctx, made);
      return { outcome: 'done', ...(made.length > 0 ? { vendorIds: made } : {}) };
    }
    return madeEarlier(
      command,
      ctx,
      [intent, slotOnlyIntentKey(hospital, d.start)],
      isJsonObject(earlier) ? (earlier.sent as JsonObject) : undefined,
    );
  }
  const form: Record<string, string> = { hospital_id: hospital, apt_time: d.start, type: 'online' };
  const p = d.patient;
  const first = p.given ?? p.name;
  if (first !== undefined) form.first_name = first;
  if (p.family !== undefined) form.last_name = p.family;
  if (p.phone !== undefined) form.phone_number = p.phone;
  if (p.email !== undefined) form.email = p.email;
  if (p.birthDate !== undefined) form.dob = p.birthDate;
  if (d.service?.id !== undefined) form.reason_id = d.service.id;
  form.is_new_patient = String(!(p.isReturning ?? false));
  const at = new Date().toISOString();
  // Before the call: the create webhook may come before its answer, or instead of it.
  await setAsked(
    intent,
    command,
    {
      at,
      ...(first !== undefined ? { given: first } : {}),
      ...(p.family !== undefined ? { family: p.family } : {}),
      ...(p.phone !== undefined ? { phone: p.phone } : {}),
      ...(p.email !== undefined ? { email: p.email } : {}),
      ...(p.birthDate !== undefined ? { birthDate: p.birthDate } : {}),
    },
    ctx,
  );
  await ctx.commandState.set(createKey(command), { sent: { at } });
  const res = await ctx.http.request({
    method: 'POST',
    url: `${a.base}/appointments/create`,
    headers: a.headers,
    form,
  });
  if (res.status >= 200 && res.status < 300) {
    const result = createdOutcome('Clockwise.MD create', res, (body) =>
      isJsonObject(body.appointment) ? body.appointment.id : body.id,
    );
    // A 2xx without the appointment's id (a proxy's HTML page, an answer without `id`) was taken
    // as done with no appointment behind it: transient now, as a 5xx that does not say; the `sent`
    // mark stays, so the next try does not book again.
    if (result.outcome !== 'done') return result;
    // Recorded in the write that ends the `sent` mark: a later try answers it without a call.
    await recordCreated(command, ctx, result.vendorIds ?? []);
    await setAsked(intent, command, undefined, ctx);
    return result;
  }
  if (isRetryableStatus(res.status) && !provesNotCarriedOut(res)) {
    // Its Retry-After is still honoured (the wait); only the mark stays.
    const asked = commandOutcome('Clockwise.MD create', res);
    return {
      outcome: 'transient',
      message: `Clockwise.MD create answered ${res.status}, which does not say whether it was carried out (a proxy in front of Clockwise.MD answers so after forwarding it): the next try looks for the appointment its create webhook names, and does not book again (nothing is booked twice)`,
      vendor: { status: res.status, body: res.body },
      ...(asked.outcome === 'transient' && asked.retryAfterMs !== undefined
        ? { retryAfterMs: asked.retryAfterMs }
        : {}),
    };
  }
  await ctx.commandState.delete(createKey(command));
  await setAsked(intent, command, undefined, ctx);
  return outcome('create', res);
}

/** The Clockwise.MD command handlers. */
export const commands: CommandSpec<Config> = {
  'appointment.book': book,
  'appointment.cancel': cancel,
  'appointment.update': update,
};
