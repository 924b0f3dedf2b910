/**
 * Square Appointments commands, through the Bookings API (v2, a bearer access token).
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST /v2/bookings` `{ idempotency_key, booking: { start_at, location_id, customer_id, customer_note?, appointment_segments: [{ team_member_id, service_variation_id, service_variation_version, duration_minutes? }] } }`; 200 `{ booking }` |
 * | appointment.cancel | `GET /v2/bookings/{id}` (its `version`), then `POST /v2/bookings/{id}/cancel` `{ idempotency_key, booking_version }`; 200 `{ booking }` |
 * | appointment.reschedule | `GET /v2/bookings/{id}`, then `PUT /v2/bookings/{id}` `{ idempotency_key, booking: { version, start_at } }`; 200 `{ booking }` |
 *
 * Sources: https://developer.squareup.com/reference/square/bookings-api/create-booking,
 * …/update-booking, …/cancel-booking, …/retrieve-booking (request fields `idempotency_key`,
 * `booking_version`, "the revision number for the booking used for optimistic concurrency").
 *
 * **Lost answers.** Every write carries an `idempotency_key`, derived from the command id, and a
 * later try sends the very same request again: Square's idempotency guide
 * (https://developer.squareup.com/docs/working-with-apis/idempotency) says a request repeated with
 * the same key "knows it's a duplicate request" and "returns the response as the first successful
 * … response", and the same key with a changed request is an error. So, unlike the vendors without
 * a key (docs/commands.md, "Creating commands whose answer was lost"), a booking whose answer was
 * lost is re-sent, not looked up: Square answers with the booking the first send made. The guide
 * adds that "this behavior might vary depending on the API"; a cancel or move re-sent after its
 * first send landed is still safe without the replay, as its `booking_version` is then stale
 * (below) and the re-read finds it done.
 *
 * **Versions.** A cancel or a move carries the `version` of the booking read just before it
 * (https://developer.squareup.com/docs/working-with-apis/optimistic-concurrency: without the
 * current version Square "returns a 'version mismatch' error … and your application must retrieve
 * the object again and then update it"). On that answer the booking is read again: already as
 * requested, the command is done; else the write is sent once more with the new version, under a
 * new key (the key names the version: the same key with another body is refused as reused).
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
  type VendorResponse,
} from '@switchyard/core';
import { apiBase, apiHeaders, type Config } from './config.ts';
import type { VendorBooking } from './vendor.ts';

type Ctx = CommandContext<Config>;

/**
 * Square's error text: `{ errors: [{ category, code, detail, field }] }`
 * (https://developer.squareup.com/docs/build-basics/handling-errors) → `CODE (field): detail; …`.
 *
 * @example
 * ```ts
 * squareSaid({ status: 409, headers: {}, body: { errors: [{ category: 'INVALID_REQUEST_ERROR', code: 'VERSION_MISMATCH' }] } });
 * // 'VERSION_MISMATCH'
 * ```
 */
export function squareSaid(res: VendorResponse): string | undefined {
  const errors = isJsonObject(res.body) && Array.isArray(res.body.errors) ? res.body.errors : [];
  const parts = errors.filter(isJsonObject).map((e) => {
    const code = typeof e.code === 'string' ? e.code : String(e.category ?? 'error');
    const field = typeof e.field === 'string' && e.field !== '' ? ` (${e.field})` : '';
    const detail = typeof e.detail === 'string' && e.detail !== '' ? `: ${e.detail}` : '';
    return `${code}${field}${detail}`;
  });
  return parts.length > 0 ? parts.join('; ').slice(0, 300) : undefined;
}

/** Whether Square refused a write for a stale `version` / `booking_version`. */
export function isVersionMismatch(res: VendorResponse): boolean {
  if (res.status < 400 || res.status >= 500) return false;
  const errors = isJsonObject(res.body) && Array.isArray(res.body.errors) ? res.body.errors : [];
  return errors.some((e) => isJsonObject(e) && e.code === 'VERSION_MISMATCH');
}

/**
 * Why an instance cannot carry out commands (the contract's `commandsUnavailable`): without an
 * access token it takes webhooks only, and the hub refuses its commands at once.
 */
export function commandsUnavailable(config: Config): string | undefined {
  return config.accessToken
    ? undefined
    : 'settings.accessToken (a Square access token with APPOINTMENTS_WRITE) is not configured';
}

/** The `service_variation_version` a booking names: Square's CreateBooking requires it per segment. */
function serviceVersion(data: CommandRequest<'appointment.book'>['data']): number | undefined {
  const vendor = data.vendor;
  const v = isJsonObject(vendor) ? vendor.service_variation_version : undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  return typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/**
 * What the Bookings API cannot do with a command's data: a booking needs the location, the
 * customer (`patient.id`, a Square customer id), the team member, the service variation and its
 * version (`vendor.service_variation_version`); a move changes the start only. Refused when the
 * command is sent.
 */
export function commandUnsupported(command: CommandData, _config?: Config): string | undefined {
  if (command.type === 'appointment.reschedule') {
    const { service, location, durationMinutes } = command.data;
    return service || location || durationMinutes !== undefined
      ? 'Square moves a booking in time only here (its segments would need the service variation version): book anew to change the service, place or length'
      : undefined;
  }
  if (command.type !== 'appointment.book') return undefined;
  const d = command.data;
  const missing: string[] = [];
  if (!d.location?.id) missing.push('location.id (the Square location)');
  if (!d.patient?.id) missing.push('patient.id (the Square customer id)');
  if (!d.practitioner?.id) missing.push('practitioner.id (the team member)');
  if (!d.service?.id) missing.push('service.id (the service variation)');
  if (serviceVersion(d) === undefined) missing.push('vendor.service_variation_version');
  return missing.length > 0 ? `Square books only with ${missing.join(', ')}` : undefined;
}

/** The booking in an answer (`{ booking }`), when it has an id. */
function bookingOf(res: VendorResponse): VendorBooking | undefined {
  const booking = isJsonObject(res.body) ? res.body.booking : undefined;
  return isJsonObject(booking) && typeof booking.id === 'string' ? (booking as VendorBooking) : undefined;
}

async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const refused = commandUnsupported(command);
  if (refused) return { outcome: 'permanent', message: refused };
  const d = command.data;
  const segment: JsonObject = {
    team_member_id: d.practitioner!.id,
    service_variation_id: d.service!.id,
    service_variation_version: serviceVersion(d)!,
  };
  if (d.durationMinutes !== undefined) segment.duration_minutes = d.durationMinutes;
  const booking: JsonObject = {
    start_at: d.start,
    location_id: d.location!.id,
    customer_id: d.patient.id!,
    appointment_segments: [segment],
  };
  if (d.comment) booking.customer_note = d.comment;
  // Built from the command alone, so every try sends the same body under the same key: Square
  // answers a repeat with the booking the first send made (a lost answer, a gateway's 503) and
  // books once. No "sent" mark and no lookup are needed, as they are for vendors without a key.
  const res = await ctx.http.request({
    method: 'POST',
    url: `${apiBase(ctx.config)}/bookings`,
    headers: apiHeaders(ctx.config),
    json: { idempotency_key: `${command.id}:book`, booking },
  });
  return createdOutcome(
    'Square book',
    res,
    (body) => (isJsonObject(body.booking) ? body.booking.id : undefined),
    squareSaid(res),
  );
}

/** `GET /v2/bookings/{id}`: the booking, or the outcome of an answer without one. */
async function readBooking(
  ctx: Ctx,
  id: string,
): Promise<{ booking: VendorBooking; result?: undefined } | { booking?: undefined; result: CommandResult }> {
  const res = await ctx.http.request({
    url: `${apiBase(ctx.config)}/bookings/${encodeURIComponent(id)}`,
    headers: apiHeaders(ctx.config),
  });
  const found = res.status === 200 ? bookingOf(res) : undefined;
  if (found) return { booking: found };
  const result = commandOutcome('Square booking read', res, squareSaid(res));
  // A 200 without the booking (a proxy's page): not known, so not written.
  return {
    result:
      result.outcome === 'done'
        ? {
            outcome: 'transient',
            message: 'Square booking read answered 200 without the booking',
            vendor: result.vendor,
          }
        : result,
  };
}

/** A cancel's or a move's write as first sent: a later try sends it again as it is. */
type Write = { method: 'POST' | 'PUT'; url: string; json: JsonObject };

/**
 * A change of an existing booking (cancel, move) with Square's two guards: the write sent by an
 * earlier try is sent again as it was (same key, same body: Square's to deduplicate), saved in the
 * command's state before it goes out; a write refused for a stale version reads the booking again
 * and, unless it is done by now, goes once more with the new version under a new key.
 */
async function change(
  ctx: Ctx,
  what: string,
  stateKey: string,
  done: (booking: VendorBooking) => boolean,
  write: (booking: VendorBooking) => Write,
): Promise<CommandResult> {
  const id = ctx.vendorIds.at(-1);
  if (id === undefined)
    return { outcome: 'permanent', message: 'the appointment has no Square booking id at this instance' };
  let sent = await ctx.commandState.get<Write>(stateKey);
  if (sent === undefined) {
    const { booking, result } = await readBooking(ctx, id);
    if (result) return result;
    // Already as requested before anything was sent: nothing changes, nothing is notified.
    if (done(booking)) return { outcome: 'done', unchanged: true };
    sent = write(booking);
    await ctx.commandState.set(stateKey, sent);
  }
  for (let round = 0; ; round++) {
    const res = await ctx.http.request({ ...sent, headers: apiHeaders(ctx.config) });
    if (isVersionMismatch(res) && round > 0) {
      // Changed again between the second read and its write: the next try reads afresh.
      await ctx.commandState.delete(stateKey);
      return {
        outcome: 'transient',
        message: `${what}: the booking changed again while it was written (${squareSaid(res) ?? res.status})`,
        vendor: { status: res.status, body: res.body },
      };
    }
    if (!isVersionMismatch(res)) {
      const result = commandOutcome(what, res, squareSaid(res));
      if (result.outcome !== 'permanent') return result;
      // Refused: a repeat of a write that was carried out (Square's answer to cancelling a
      // cancelled booking is not documented), or the booking is gone. Read: done when it is so.
      await ctx.commandState.delete(stateKey);
      const now = await readBooking(ctx, id);
      return now.booking && done(now.booking) ? { outcome: 'done', alreadyDone: true } : result;
    }
    // VERSION_MISMATCH: changed since it was read (or this command's own earlier send landed and
    // Square did not replay it). Read again, as Square's optimistic-concurrency guide says.
    const now = await readBooking(ctx, id);
    if (now.result) return now.result;
    if (done(now.booking)) {
      await ctx.commandState.delete(stateKey);
      return { outcome: 'done', alreadyDone: true };
    }
    sent = write(now.booking);
    await ctx.commandState.set(stateKey, sent);
  }
}

function versionOf(booking: VendorBooking): number {
  return typeof booking.version === 'number' ? booking.version : 0;
}

const CANCELLED = new Set(['CANCELLED_BY_CUSTOMER', 'CANCELLED_BY_SELLER', 'DECLINED']);

export const commands: CommandSpec<Config> = {
  'appointment.book': book,

  async 'appointment.cancel'(command, ctx) {
    const base = apiBase(ctx.config);
    return change(
      ctx,
      'Square cancel',
      'square:cancel-sent',
      (b) => CANCELLED.has(String(b.status)),
      (b) => ({
        method: 'POST',
        url: `${base}/bookings/${encodeURIComponent(b.id)}/cancel`,
        json: { idempotency_key: `${command.id}:cancel:v${versionOf(b)}`, booking_version: versionOf(b) },
      }),
    );
  },

  async 'appointment.reschedule'(command, ctx) {
    const refused = commandUnsupported(command);
    if (refused) return { outcome: 'permanent', message: refused };
    const base = apiBase(ctx.config);
    const to = Date.parse(command.data.start);
    return change(
      ctx,
      'Square reschedule',
      'square:move-sent',
      (b) => typeof b.start_at === 'string' && Date.parse(b.start_at) === to,
      (b) => ({
        method: 'PUT',
        url: `${base}/bookings/${encodeURIComponent(b.id)}`,
        json: {
          idempotency_key: `${command.id}:move:v${versionOf(b)}`,
          booking: { version: versionOf(b), start_at: command.data.start },
        },
      }),
    );
  },
};
