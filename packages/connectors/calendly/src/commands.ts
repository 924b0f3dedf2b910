/**
 * Calendly commands, through its API v2 (a bearer token, `apiToken`, with `scheduled_events:read` and `:write`).
 *
 * | command | call |
 * |---|---|
 * | appointment.cancel | `POST /scheduled_events/{event uuid}/cancellation` `{ reason? }`; 201 `{ resource: Cancellation }` (developer.calendly.com/api-docs/calendly-api/scheduled-events/create-scheduled-event-cancellation) |
 * | appointment.mark_no_show | `POST /invitee_no_shows` `{ invitee: <invitee URI> }`; 201 `{ resource: { uri, invitee, created_at } }` (…/scheduled-events/create-invitee-no-show) |
 * | appointment.clear_presence | `DELETE /invitee_no_shows/{uuid}`; 204 (…/scheduled-events/delete-invitee-no-show) |
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
 * Not offered: Calendly's API has no reschedule (the invitee's `reschedule_url` is a page for the
 * invitee), no arrival, no confirm, no field to update; booking (`POST /invitees`, the Scheduling
 * API) is not implemented yet (docs/connectors/calendly.md).
 */
import {
  type CommandContext,
  type CommandData,
  type CommandResult,
  type CommandSpec,
  commandOutcome,
  isJsonObject,
  type JsonObject,
  type VendorResponse,
} from '@switchyard/core';
import { apiBase, apiHeaders, type Config } from './config.ts';

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
  const result = commandOutcome(what, res, said(res));
  if (res.status !== 429 || result.outcome !== 'transient' || result.retryAfterMs !== undefined)
    return result;
  const reset = Number(res.headers['x-ratelimit-reset']);
  return Number.isFinite(reset) && reset > 0 && reset <= 3600
    ? { ...result, retryAfterMs: reset * 1000 }
    : result;
}

/**
 * What Calendly cannot do with a command: none at all without `apiToken`. Refused when the command
 * is sent (422 SY_COMMAND_UNSUPPORTED).
 *
 * @example
 * ```ts
 * commandUnsupported({ type: 'appointment.cancel', data: {} }, { signingKey }); // 'Calendly commands need the instance's apiToken …'
 * ```
 */
export function commandUnsupported(_command: CommandData, config?: Config): string | undefined {
  if (config !== undefined && !config.apiToken) {
    return "Calendly commands need the instance's apiToken (a personal access token or OAuth token with scheduled_events:read and :write)";
  }
  return undefined;
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

export const commands: CommandSpec<Config> = {
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
