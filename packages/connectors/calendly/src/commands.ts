/**
 * Calendly commands, through its API v2 (a bearer token, `apiToken`, with `scheduled_events:read` and `:write`).
 *
 * | command | call |
 * |---|---|
 * | appointment.cancel | `POST /scheduled_events/{event uuid}/cancellation` `{ reason? }`; 201 `{ resource: Cancellation }` (developer.calendly.com/api-docs/calendly-api/scheduled-events/create-scheduled-event-cancellation) |
 * | appointment.mark_no_show | `POST /invitee_no_shows` `{ invitee: <invitee URI> }`; 201 `{ resource: { uri, invitee, created_at } }` (…/scheduled-events/create-invitee-no-show) |
 * | appointment.clear_presence | `DELETE /invitee_no_shows/{uuid}`; 204 (…/scheduled-events/delete-invitee-no-show) |
 * | appointment.book | `POST /invitees` `{ event_type, start_time, invitee: { email, name, first_name?, last_name?, timezone, text_reminder_number? }, location?, questions_and_answers? }`; 201 `{ resource: Invitee }` (Scheduling API, paid plans: calendly-preview.mintlify.app/api-reference/v2/scheduling/create-event-invitee, developer.calendly.com/schedule-events-with-ai-agents; its own rate limits: developer.calendly.com/release-notes/2026/4/15) |
 *
 * The hub's appointment is an invitee; its vendor id the invitee URI,
 * `https://api.calendly.com/scheduled_events/<event uuid>/invitees/<invitee uuid>` (normalize.ts keys
 * it so, and a reschedule adds the new invitee's URI to the same hub id: the last is the current
 * one). Each command reads first (the invitee, and for a cancel its event): Calendly takes no
 * idempotency key and its reference does not say what a second cancel or a second no-show answers,
 * so a state already reached is done without a write (`unchanged` when this command had not sent
 * it; `alreadyDone` when an earlier try of it did, its mark saved in the command's state before the
 * write), and a refusal is read again before the command fails.
 *
 * A booking is marked in the command's state before the POST (Calendly takes no idempotency key) and,
 * on a later try after an answer that proved nothing, looked up before it is sent again: the
 * organization's scheduled events of the invitee's email at the start (`GET /users/me` for the
 * organization, `GET /scheduled_events?organization&invitee_email&min_start_time&max_start_time`),
 * then each one's invitees of that email (`GET /scheduled_events/{uuid}/invitees?email&status=active`),
 * one made since the first send being the booking (docs/commands.md, "Creating commands whose
 * answer was lost").
 *
 * Not offered: Calendly's API has no reschedule (the invitee's `reschedule_url` is a page for the
 * invitee), no arrival, no confirm, no field to update.
 */
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  commandOutcome,
  createdOutcome,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  nextSendMark,
  provesNotCarriedOut,
  refusedResendLookedUp,
  sendNotCarriedOut,
  sendTimes,
  stillLanding,
  type VendorResponse,
} from '@switchyard/core';
import { apiBase, apiHeaders, type Config, DEFAULT_API_BASE_URL } from './config.ts';

type Ctx = CommandContext<Config>;

/** An invitee URI's event and invitee uuids. */
export interface InviteeRef {
  event: string;
  invitee: string;
}

/**
 * The scheduled event's and the invitee's uuids of an invitee URI (the hub's vendor id of a Calendly
 * appointment); undefined for anything else.
 *
 * @example
 * ```ts
 * inviteeRef('https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAA'); // { event: 'GBGBDCAADAEDCRZ2', invitee: 'AAAA' }
 * ```
 */
export function inviteeRef(uri: string | undefined): InviteeRef | undefined {
  const m = uri === undefined ? null : /\/scheduled_events\/([^/?#]+)\/invitees\/([^/?#]+)\/?$/.exec(uri);
  return m ? { event: decodeURIComponent(m[1]!), invitee: decodeURIComponent(m[2]!) } : undefined;
}

/**
 * Calendly's error text, `{ title, message, details: [{ parameter, message }] }`
 * (developer.calendly.com/api-docs, every endpoint's "Errors") → `title: message (parameter: message)`.
 */
export function said(res: VendorResponse): string | undefined {
  if (!isJsonObject(res.body)) return undefined;
  const { title, message, details } = res.body;
  const parts = [title, message].filter((p): p is string => typeof p === 'string' && p !== '');
  const detail = Array.isArray(details)
    ? details
        .filter(isJsonObject)
        .map((d) => [d.parameter, d.message].filter((p) => typeof p === 'string' && p !== '').join(': '))
        .filter((d) => d !== '')
    : [];
  const text = `${parts.join(': ')}${detail.length > 0 ? ` (${detail.join('; ')})` : ''}`;
  return text === '' ? undefined : text.slice(0, 300);
}

/**
 * {@link commandOutcome} with Calendly's rate limit: its 429 carries no `Retry-After` but
 * `X-RateLimit-Reset`, the seconds until the limit resets (developer.calendly.com/api-docs/overview/rate-limits),
 * taken as the wait when no `Retry-After` says one.
 */
export function outcome(what: string, res: VendorResponse): CommandResult {
  return waitReset(commandOutcome(what, res, said(res)), res);
}

/** A 429's `X-RateLimit-Reset` as the wait of a transient `result` that names none. */
function waitReset(result: CommandResult, res: VendorResponse): CommandResult {
  if (res.status !== 429 || result.outcome !== 'transient' || result.retryAfterMs !== undefined)
    return result;
  const reset = Number(res.headers['x-ratelimit-reset']);
  return Number.isFinite(reset) && reset > 0 && reset <= 3600
    ? { ...result, retryAfterMs: reset * 1000 }
    : result;
}

/**
 * What Calendly cannot do with a command: none at all without `apiToken`; a booking without the
 * event type's URI (`service.id`, `https://api.calendly.com/event_types/<uuid>`: Create Event
 * Invitee's `event_type`), the patient's email or a name (`invitee.email`, and `name` or
 * `first_name`, are required), or with a `vendor.timezone` that is not text. Refused when the
 * command is sent (422 SY_COMMAND_UNSUPPORTED).
 *
 * @example
 * ```ts
 * commandUnsupported({ type: 'appointment.cancel', data: {} }, { signingKey }); // 'Calendly commands need the instance's apiToken …'
 * commandUnsupported({ type: 'appointment.book', data: { start, patient: { name: 'Ada' } } }); // 'Calendly books only with service.id … and patient.email'
 * ```
 */
export function commandUnsupported(command: CommandData, config?: Config): string | undefined {
  if (config !== undefined && !config.apiToken) {
    return "Calendly commands need the instance's apiToken (a personal access token or OAuth token with scheduled_events:read and :write)";
  }
  if (command.type !== 'appointment.book') return undefined;
  const d = command.data;
  const missing: string[] = [];
  if (eventTypeUuid(d.service?.id) === undefined) {
    missing.push('service.id (the event type URI, https://api.calendly.com/event_types/<uuid>)');
  }
  if (!d.patient.email?.trim()) missing.push('patient.email');
  if (inviteeNames(d.patient).name === undefined) missing.push("the patient's name (name, or given)");
  const vendor = vendorFields(d);
  if (vendor.timezone !== undefined && (typeof vendor.timezone !== 'string' || vendor.timezone === '')) {
    missing.push('vendor.timezone as an IANA time zone name');
  }
  return missing.length > 0 ? `Calendly books only with ${missing.join(' and ')}` : undefined;
}

type BookData = CommandRequest<'appointment.book'>['data'];

/** The event type's uuid of an event type URI, or undefined for anything else. */
function eventTypeUuid(uri: string | undefined): string | undefined {
  const m = uri === undefined ? null : /^https?:\/\/[^/]+\/event_types\/([^/?#]+)\/?$/.exec(uri.trim());
  return m ? m[1] : undefined;
}

/** `data.vendor` as an object (what the normalized command does not name). */
function vendorFields(d: BookData): JsonObject {
  return isJsonObject(d.vendor as JsonValue) ? (d.vendor as JsonObject) : {};
}

/** Calendly's invitee names: `name` (the full one, or given and family joined), `first_name`, `last_name`. */
function inviteeNames(patient: BookData['patient']): { name?: string; first?: string; last?: string } {
  const given = patient.given?.trim() || undefined;
  const family = patient.family?.trim() || undefined;
  const name = patient.name?.trim() || [given, family].filter(Boolean).join(' ') || undefined;
  return {
    ...(name ? { name } : {}),
    ...(given ? { first: given } : {}),
    ...(family ? { last: family } : {}),
  };
}

/**
 * The hub's vendor id of an invitee URI: as Calendly's webhooks write it (`https://api.calendly.com/…`,
 * what normalize.ts keys the appointment by), whatever host the answer named (the reference's own
 * example of Create Event Invitee writes `https://calendly.com/scheduled_events/…`): keyed by the
 * answer's spelling, the `invitee.created` that follows made a second appointment.
 */
function canonicalInvitee(uri: JsonValue | undefined): string | undefined {
  const ref = typeof uri === 'string' ? inviteeRef(uri) : undefined;
  return ref
    ? `${DEFAULT_API_BASE_URL}/scheduled_events/${encodeURIComponent(ref.event)}/invitees/${encodeURIComponent(ref.invitee)}`
    : undefined;
}

const noId: CommandResult = {
  outcome: 'permanent',
  message: 'the appointment has no Calendly invitee URI at this instance',
};

/** A read's answer as the command's outcome when it did not bring the resource. */
function readFailed(what: string, res: VendorResponse): CommandResult {
  const result = outcome(what, res);
  // A 2xx without the resource (a proxy's page): nothing known, so nothing sent.
  return result.outcome === 'done'
    ? {
        outcome: 'transient',
        message: `${what} answered ${res.status} without the resource`,
        vendor: result.vendor,
      }
    : result;
}

/** `GET {path}` → its `resource`, or the answer when it did not bring one. */
async function read(
  ctx: Ctx,
  what: string,
  path: string,
): Promise<{ resource: JsonObject } | { failed: CommandResult }> {
  const res = await ctx.http.request({
    url: `${apiBase(ctx.config)}${path}`,
    headers: apiHeaders(ctx.config),
  });
  const resource = res.status === 200 && isJsonObject(res.body) ? res.body.resource : undefined;
  return isJsonObject(resource) ? { resource } : { failed: readFailed(what, res) };
}

const eventPath = (ref: InviteeRef) => `/scheduled_events/${encodeURIComponent(ref.event)}`;
const inviteePath = (ref: InviteeRef) => `${eventPath(ref)}/invitees/${encodeURIComponent(ref.invitee)}`;

/**
 * Done without a write: `alreadyDone` when an earlier try of this command sent it (its notification
 * may still come), `unchanged` when none did (nothing changes, no notification comes).
 */
function reached(sent: unknown): CommandResult {
  return sent !== undefined ? { outcome: 'done', alreadyDone: true } : { outcome: 'done', unchanged: true };
}

/** The no-show's uuid of an invitee's `no_show` (`{ uri: …/invitee_no_shows/<uuid>, created_at }`), or undefined. */
function noShowUuid(invitee: JsonObject): string | undefined {
  const mark = invitee.no_show;
  const uri = isJsonObject(mark) && typeof mark.uri === 'string' ? mark.uri : undefined;
  const m = uri === undefined ? null : /\/(?:invitee_)?no_shows\/([^/?#]+)\/?$/.exec(uri);
  return m ? decodeURIComponent(m[1]!) : undefined;
}

/**
 * A write of this command, after its read said it is still to do: the mark `key` saved first (a
 * later try that finds the state reached then says `alreadyDone`), the call, and on a refusal the
 * read again (the earlier try's write may have landed in between, or staff did it): reached, done.
 */
async function write(
  ctx: Ctx,
  key: string,
  what: string,
  call: { method: 'POST' | 'DELETE'; path: string; json?: JsonObject },
  isReached: () => Promise<boolean>,
): Promise<CommandResult> {
  await ctx.commandState.set(key, true);
  const res = await ctx.http.request({
    method: call.method,
    url: `${apiBase(ctx.config)}${call.path}`,
    headers: apiHeaders(ctx.config),
    ...(call.json ? { json: call.json } : {}),
  });
  const result = outcome(what, res);
  // A 401 is the token, not the state; any other refusal (a 403 too: what Calendly answers to a
  // second cancel its reference does not say) may be the state reached meanwhile.
  if (result.outcome !== 'permanent' || res.status === 401) return result;
  return (await isReached()) ? { outcome: 'done', alreadyDone: true, vendor: result.vendor } : result;
}

const SENT = 'calendly:book-sent';
/** How far Calendly's clock may be behind the hub's when it stamps the invitee a lost POST made. */
export const BOOK_CLOCK_SKEW_MS = 5 * 60_000;
/** Either side of the start in the events' list: `min_start_time`/`max_start_time` are not said to include it. */
const WINDOW_MS = 60_000;

/** A list's answer, `{ collection: [...] }` (every List endpoint of the API v2), or its failure as the outcome. */
async function list(
  ctx: Ctx,
  what: string,
  path: string,
): Promise<{ items: JsonObject[] } | { failed: CommandResult }> {
  const res = await ctx.http.request({
    url: `${apiBase(ctx.config)}${path}`,
    headers: apiHeaders(ctx.config),
  });
  const collection = res.status === 200 && isJsonObject(res.body) ? res.body.collection : undefined;
  // A 2xx that is not the list (a proxy's page): not known, so nothing is sent blind.
  if (!Array.isArray(collection)) return { failed: readFailed(what, res) };
  return { items: collection.filter(isJsonObject) };
}

/**
 * The booking an earlier try of this command made: among the organization's scheduled events of the
 * invitee's email starting at the command's start and of its event type, an active invitee of that
 * email made since the first send (less the clocks' skew: one the front desk or the patient booked
 * before is not this command's). Done with its URI (`alreadyDone`); undefined when none is listed;
 * a lookup that did not answer its list is the outcome (nothing is sent blind). Listing an
 * organization's events needs an admin's or owner's token (List Events, `organization`).
 */
async function madeEarlier(
  ctx: Ctx,
  d: BookData,
  sentAt: number | undefined,
): Promise<CommandResult | undefined> {
  const me = await read(ctx, 'Calendly current user read', '/users/me');
  if ('failed' in me) return me.failed;
  const organization = me.resource.current_organization;
  if (typeof organization !== 'string' || organization === '') {
    return {
      outcome: 'transient',
      message: 'Calendly current user read answered without current_organization',
    };
  }
  const email = d.patient.email!.trim();
  const at = Date.parse(d.start);
  const query = new URLSearchParams({
    organization,
    invitee_email: email,
    min_start_time: new Date(at - WINDOW_MS).toISOString(),
    max_start_time: new Date(at + WINDOW_MS).toISOString(),
    count: '100',
  });
  const events = await list(ctx, 'Calendly booking lookup', `/scheduled_events?${query}`);
  if ('failed' in events) return events.failed;
  const eventType = eventTypeUuid(d.service!.id);
  for (const event of events.items) {
    const uuid =
      typeof event.uri === 'string' ? /\/scheduled_events\/([^/?#]+)\/?$/.exec(event.uri)?.[1] : undefined;
    if (uuid === undefined || typeof event.start_time !== 'string' || Date.parse(event.start_time) !== at)
      continue;
    if (eventTypeUuid(typeof event.event_type === 'string' ? event.event_type : undefined) !== eventType)
      continue;
    const invitees = await list(
      ctx,
      'Calendly booking lookup',
      `/scheduled_events/${encodeURIComponent(uuid)}/invitees?${new URLSearchParams({ email, status: 'active', count: '100' })}`,
    );
    if ('failed' in invitees) return invitees.failed;
    const made = invitees.items.find((i) => {
      if (
        i.status !== 'active' ||
        typeof i.email !== 'string' ||
        i.email.toLowerCase() !== email.toLowerCase()
      )
        return false;
      const created = typeof i.created_at === 'string' ? Date.parse(i.created_at) : Number.NaN;
      return sentAt === undefined || (!Number.isNaN(created) && created >= sentAt - BOOK_CLOCK_SKEW_MS);
    });
    const uri = made ? canonicalInvitee(made.uri) : undefined;
    if (uri) return { outcome: 'done', alreadyDone: true, vendorIds: [uri] };
  }
  return undefined;
}

/** The body of Create Event Invitee from the command. */
function bookBody(d: BookData): JsonObject {
  const vendor = vendorFields(d);
  const { name, first, last } = inviteeNames(d.patient);
  const invitee: JsonObject = {
    email: d.patient.email!.trim(),
    name: name!,
    // Required by Calendly; an IANA zone only shapes how times are shown to the invitee.
    timezone: typeof vendor.timezone === 'string' ? vendor.timezone : 'UTC',
  };
  if (first) invitee.first_name = first;
  if (last) invitee.last_name = last;
  // Calendly refuses a text_reminder_number that is not a valid phone: sent only in E.164 form.
  const phone = d.patient.phone?.replace(/[\s().-]/g, '');
  if (phone && /^\+[1-9]\d{6,14}$/.test(phone)) invitee.text_reminder_number = phone;
  const json: JsonObject = {
    event_type: d.service!.id.trim(),
    // Calendly takes the start in UTC.
    start_time: new Date(Date.parse(d.start)).toISOString(),
    invitee,
  };
  if (isJsonObject(vendor.location as JsonValue)) json.location = vendor.location as JsonObject;
  if (Array.isArray(vendor.questions_and_answers)) json.questions_and_answers = vendor.questions_and_answers;
  return json;
}

/**
 * Books through the Scheduling API (`POST /invitees`), never twice blind: marked before the POST,
 * looked up ({@link madeEarlier}) on a later try after an answer that proved nothing, and sent
 * again only once the last POST can no longer land ({@link stillLanding}).
 */
async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const refused = commandUnsupported(command, ctx.config);
  if (refused) return { outcome: 'permanent', message: refused };
  const d = command.data;
  const mark = await ctx.commandState.get(SENT);
  const { first: sentAt, last } = sendTimes(mark);
  if (mark !== undefined) {
    // An earlier try's POST went out and its answer proved nothing: look before sending again.
    const made = await madeEarlier(ctx, d, sentAt);
    if (made) return made;
    // Not listed yet while the last POST may still land: posted again at once, it booked twice.
    const landing = stillLanding('booking', last);
    if (landing) return landing;
  }
  // The first send's time stays: a later send must still find what the first one made.
  await ctx.commandState.set(SENT, nextSendMark(mark));
  const res = await ctx.http.request({
    method: 'POST',
    url: `${apiBase(ctx.config)}/invitees`,
    headers: apiHeaders(ctx.config),
    json: bookBody(d),
  });
  // Done only with the invitee's URI (the hub's vendor id of the appointment, as its webhook keys it).
  const result = waitReset(
    createdOutcome(
      'Calendly book',
      res,
      (body) => (isJsonObject(body.resource) ? canonicalInvitee(body.resource.uri) : undefined),
      said(res),
    ),
    res,
  );
  if (result.outcome === 'permanent' && mark !== undefined && res.status !== 401) {
    // Sent again and refused (the slot taken): by the earlier try's POST, landed after the lookup
    // above? Looked for once more before the command fails, as the other connectors' books do.
    // A lookup that does not answer its list keeps the earlier POST's mark (refusedResendLookedUp).
    const settled = await refusedResendLookedUp(
      ctx.commandState,
      SENT,
      mark,
      await madeEarlier(ctx, d, sentAt),
    );
    if (settled) return settled;
  }
  // A refusal or a 408/429 (Calendly's rate limits turn a request away) proves this POST made
  // nothing: the mark goes, unless an earlier POST's outcome is still unknown.
  if (result.outcome === 'permanent' || provesNotCarriedOut(res)) {
    await sendNotCarriedOut(ctx.commandState, SENT, mark);
  }
  return result;
}

export const commands: CommandSpec<Config> = {
  'appointment.book': book,
  /**
   * Calendly cancels a scheduled event, not one invitee: for an event with more than one active
   * invitee (a group event) the cancel is refused, since it would cancel the others' bookings too.
   */
  async 'appointment.cancel'(command, ctx) {
    const ref = inviteeRef(ctx.vendorIds.at(-1));
    if (ref === undefined) return noId;
    const key = 'calendly:cancel-sent';
    const sent = await ctx.commandState.get(key);
    // The invitee first: one that cancelled itself in a group event leaves the event active with the
    // others in it, and the event's counter alone would let this cancel theirs.
    const invitee = await read(ctx, 'Calendly invitee read', inviteePath(ref));
    if ('failed' in invitee) return invitee.failed;
    if (invitee.resource.status === 'canceled') return reached(sent);
    const got = await read(ctx, 'Calendly event read', eventPath(ref));
    if ('failed' in got) return got.failed;
    if (got.resource.status === 'canceled') return reached(sent);
    const counter = isJsonObject(got.resource.invitees_counter) ? got.resource.invitees_counter : {};
    if (typeof counter.active === 'number' && counter.active > 1) {
      return {
        outcome: 'permanent',
        message: `Calendly cancels a whole scheduled event, and this one has ${counter.active} active invitees: cancelled, each of their bookings would be; the invitee cancels on its cancel_url instead`,
      };
    }
    const json: JsonObject = {};
    if (command.data.reason) json.reason = command.data.reason.slice(0, 10_000);
    return write(
      ctx,
      key,
      'Calendly cancel',
      { method: 'POST', path: `${eventPath(ref)}/cancellation`, json },
      async () => {
        const again = await read(ctx, 'Calendly invitee read', inviteePath(ref));
        return 'resource' in again && again.resource.status === 'canceled';
      },
    );
  },

  async 'appointment.mark_no_show'(_command, ctx) {
    const uri = ctx.vendorIds.at(-1);
    const ref = inviteeRef(uri);
    if (ref === undefined || uri === undefined) return noId;
    const key = 'calendly:no-show-sent';
    const sent = await ctx.commandState.get(key);
    const got = await read(ctx, 'Calendly invitee read', inviteePath(ref));
    if ('failed' in got) return got.failed;
    if (isJsonObject(got.resource.no_show)) return reached(sent);
    return write(
      ctx,
      key,
      'Calendly no-show',
      { method: 'POST', path: '/invitee_no_shows', json: { invitee: uri } },
      async () => {
        const again = await read(ctx, 'Calendly invitee read', inviteePath(ref));
        return 'resource' in again && isJsonObject(again.resource.no_show);
      },
    );
  },

  /** Calendly's one presence mark is the no-show: clearing it deletes the invitee's InviteeNoShow. */
  async 'appointment.clear_presence'(_command, ctx) {
    const ref = inviteeRef(ctx.vendorIds.at(-1));
    if (ref === undefined) return noId;
    const key = 'calendly:no-show-delete-sent';
    const sent = await ctx.commandState.get(key);
    const got = await read(ctx, 'Calendly invitee read', inviteePath(ref));
    if ('failed' in got) return got.failed;
    if (!isJsonObject(got.resource.no_show)) return reached(sent);
    const uuid = noShowUuid(got.resource);
    if (uuid === undefined) {
      return {
        outcome: 'permanent',
        message: "Calendly's invitee has a no_show without its uri: nothing to delete by",
      };
    }
    return write(
      ctx,
      key,
      'Calendly no-show removal',
      { method: 'DELETE', path: `/invitee_no_shows/${encodeURIComponent(uuid)}` },
      async () => {
        const again = await read(ctx, 'Calendly invitee read', inviteePath(ref));
        return 'resource' in again && !isJsonObject(again.resource.no_show);
      },
    );
  },
};
