/**
 * BookingBug / JRNI commands, through the admin REST API (dev.bookingbug.com, REST API
 * "Authentication" and "Admin Bookings"):
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST /api/v1/admin/{company_id}/bookings` with `{ datetime, service_id, person_id?, resource_id?, member_id \| client }` ("New Booking") |
 * | appointment.cancel | `POST /api/v1/admin/{company_id}/bookings/{id}/cancel` with `{ notify, cancel_reason }` |
 * | appointment.reschedule | `PUT /api/v1/admin/{company_id}/bookings/{id}` with `{ datetime }` ("Update Booking") |
 * | appointment.mark_arrived | `PUT /api/v3/admin/{company_id}/bookings/{id}` with `{ current_multi_status: "checked_in" }` (JRNI v3 "Check-In") |
 * | appointment.mark_no_show | the same with `"no_show"` |
 * | appointment.update | `data.comment`: `PUT /api/v1/admin/{company_id}/bookings/{id}/private_notes` with `{ note }` |
 *
 * Every call carries `App-Id` (and `App-Key` when configured) and the `Auth-Token` an administrator's
 * login (`POST /api/v1/login` with `{ email, password }`) returned. The token is kept in this
 * process's memory only ({@link AdminTokenCache}) and renewed once when the API answers 401 (an
 * expired or logged-out token).
 *
 * What a repeated cancel answers is not documented: when the cancel is refused, the booking is read
 * again (`GET /api/v1/admin/{company_id}/bookings/{id}`) and an `is_cancelled` booking counts as done;
 * a move, a check-in status and a note are checked the same way ({@link sendOnce}); a booking is
 * looked up among the company's bookings before it is sent again ({@link madeBefore}). Clearing a
 * status and writing custom fields have no documented call (docs/connectors/bookingbug.md#commands).
 */
import { createHash } from 'node:crypto';
import {
  type CommandContext,
  type CommandData,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  commandOutcome,
  createdOutcome,
  isJsonObject,
  isRetryableStatus,
  type JsonObject,
  type JsonValue,
  nextSendMark,
  provesNotCarriedOut,
  refusedResendLookedUp,
  sendNotCarriedOut,
  sendTimes,
  stillLanding,
  unchangedWhen,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import { type AdminApiConfig, type Config, DEFAULT_NOTIFY_ON_CANCEL } from './config.ts';
import { checkInOf } from './normalize.ts';

type Ctx = CommandContext<Config>;

/**
 * Admin `Auth-Token`s, in this process's memory only: a token is a credential (it acts as the
 * administrator), and the hub keeps no secret in its database, where the instance state would have
 * held it in plain text. Losing it costs one login: a restarted process, or another process of the
 * hub, logs in for its own. One entry per instance, with the login it came from (a digest of the
 * host, App-Id, App-Key, email, password and company): after a settings change the entry does not
 * match and the next command logs in with the new settings. Bounded: past `max` instances the least
 * recently used entry goes (instances come and go; a process should not keep tokens of deleted ones).
 *
 * @example
 * ```ts
 * const cache = new AdminTokenCache(2);
 * cache.set('bb', login, 'token-1');
 * cache.get('bb', login);      // 'token-1'
 * cache.get('bb', otherLogin); // undefined: the settings changed
 * ```
 */
export class AdminTokenCache {
  readonly #entries = new Map<string, { login: string; token: string }>();
  readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(instanceId: string, login: string): string | undefined {
    const entry = this.#entries.get(instanceId);
    if (entry === undefined || entry.login !== login) return undefined;
    // Map order is the eviction order: used last, evicted last.
    this.#entries.delete(instanceId);
    this.#entries.set(instanceId, entry);
    return entry.token;
  }

  set(instanceId: string, login: string, token: string): void {
    this.#entries.delete(instanceId);
    this.#entries.set(instanceId, { login, token });
    while (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  /** Forgets the instance's token when it is still `token` (another command may have renewed it). */
  delete(instanceId: string, token: string): void {
    if (this.#entries.get(instanceId)?.token === token) this.#entries.delete(instanceId);
  }
}

/** Tokens of the instances this process runs commands for (a few; 1,000 leaves room to spare). */
const adminTokens = new AdminTokenCache(1000);

/**
 * Why an instance cannot carry out commands, or undefined when it can (the contract's
 * `commandsUnavailable`): without `adminApi` the hub refuses commands at once.
 *
 * @example
 * ```ts
 * commandsUnavailable({ basicToken: 't'.repeat(16) }); // 'settings.adminApi (the BookingBug admin API) is not configured'
 * ```
 */
export function commandsUnavailable(config: Config): string | undefined {
  return config.adminApi ? undefined : 'settings.adminApi (the BookingBug admin API) is not configured';
}

function base(api: AdminApiConfig): string {
  return api.baseUrl.replace(/\/+$/, '');
}

function appHeaders(api: AdminApiConfig): Record<string, string> {
  return {
    accept: 'application/json',
    'App-Id': api.appId,
    ...(api.appKey !== undefined ? { 'App-Key': api.appKey } : {}),
  };
}

/**
 * Which login a token came from: every setting the login sends. A digest, so the cache holds no
 * second copy of the password.
 */
function loginOf(api: AdminApiConfig): string {
  const parts = [base(api), api.appId, api.appKey ?? null, api.email, api.password, api.companyId ?? null];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

const ok = (res: VendorResponse) => res.status >= 200 && res.status < 300;
const retryable = (res: VendorResponse) => isRetryableStatus(res.status);

/** How much of the vendor's words a failure message keeps (as Cliniko's and Docplanner's). */
const SAID_MAX = 200;

/**
 * BookingBug's / JRNI's own words in a refusal, for the failure message: its `error` and JRNI's
 * `detail` ("The detail attribute of the error response will provide more information about the
 * incorrect parameters", dev.jrni.com "400 Validation Error"; a `detail` that is not text is written
 * as JSON), else its `message`, else a text body; the admin login's secrets (the password, the
 * App-Key, the Auth-Token in use) scrubbed, cut at {@link SAID_MAX} characters. Only `error` was
 * shown before: "Validation error", without what was wrong (the body was kept, the message said
 * nothing).
 *
 * @example
 * ```ts
 * vendorWords({ status: 400, headers: {}, body: { error: 'Validation error', detail: 'service_id is missing' } });
 * // 'Validation error: service_id is missing' (undefined for a 5xx, 408 or 429: worth another try)
 * ```
 */
export function vendorWords(
  res: VendorResponse,
  secrets: ReadonlyArray<string | undefined> = [],
): string | undefined {
  if (retryable(res)) return undefined;
  const text = (value: JsonValue | undefined) =>
    typeof value === 'string'
      ? value.trim()
      : value === undefined || value === null
        ? ''
        : JSON.stringify(value);
  let said: string;
  if (isJsonObject(res.body)) {
    const error = text(res.body.error);
    const more = text(res.body.detail) || text(res.body.message);
    said = [error, more].filter((part, i, all) => part !== '' && all.indexOf(part) === i).join(': ');
  } else {
    said = typeof res.body === 'string' ? res.body.trim() : '';
  }
  for (const secret of secrets) {
    // A short value would scrub ordinary words; the configured secrets are longer.
    if (secret !== undefined && secret.length >= 6) said = said.replaceAll(secret, '[redacted]');
  }
  return said === '' ? undefined : said.slice(0, SAID_MAX);
}

/** The secrets a BookingBug answer must not carry into a message: the login's and the token in use. */
function secretsOf(ctx: Ctx | undefined, api: AdminApiConfig | undefined): Array<string | undefined> {
  if (!ctx || !api) return [];
  return [api.password, api.appKey, adminTokens.get(ctx.instanceId, loginOf(api))];
}

/** 5xx, 408 and 429 are worth another try (Retry-After honoured); other 4xx are BookingBug's refusal. */
function failure(what: string, res: VendorResponse, ctx?: Ctx, api?: AdminApiConfig): CommandResult {
  return commandOutcome(`BookingBug ${what}`, res, vendorWords(res, secretsOf(ctx, api)));
}

/** Logs in as the configured administrator; the token is cached (in memory) before it is used. */
async function login(ctx: Ctx, api: AdminApiConfig): Promise<string | CommandResult> {
  const body: JsonObject = { email: api.email, password: api.password };
  // The parent/child form of the login names the company logged in against.
  if (api.companyId !== undefined) body.id = api.companyId;
  const res = await ctx.http.request({
    method: 'POST',
    url: `${base(api)}/api/v1/login`,
    headers: appHeaders(api),
    json: body,
  });
  if (retryable(res)) return failure('login', res, ctx, api);
  const token = isJsonObject(res.body) ? res.body.auth_token : undefined;
  if (ok(res) && (typeof token !== 'string' || token === '')) {
    // A 2xx is no refusal: a maintenance page or a proxy answering for BookingBug. Taken for a
    // refused login, it failed the command for good (a commands audit). Its body has nothing worth
    // keeping.
    return {
      outcome: 'transient',
      message: `BookingBug's admin login answered ${res.status} without an auth_token`,
    };
  }
  if (!ok(res) || typeof token !== 'string') {
    // The answer of a refused login is passed on.
    return {
      outcome: 'permanent',
      message: `BookingBug refused the admin login (answered ${res.status}): check adminApi.appId, appKey, email and password`,
      vendor: { status: res.status, body: res.body },
    };
  }
  adminTokens.set(ctx.instanceId, loginOf(api), token);
  return token;
}

/**
 * One admin API call with the cached `Auth-Token` (logging in first when there is none), logging in
 * again and repeating the call once when the API answers 401. Answers the response, or the outcome
 * of a failed login.
 */
async function adminCall(
  ctx: Ctx,
  api: AdminApiConfig,
  request: VendorRequest,
): Promise<VendorResponse | CommandResult> {
  let token: string | CommandResult =
    adminTokens.get(ctx.instanceId, loginOf(api)) ?? (await login(ctx, api));
  if (typeof token !== 'string') return token;
  const send = (t: string) =>
    ctx.http.request({ ...request, headers: { ...appHeaders(api), ...request.headers, 'Auth-Token': t } });
  let res = await send(token);
  if (res.status === 401) {
    // Stale: not offered to another command while this one logs in (or fails to).
    adminTokens.delete(ctx.instanceId, token);
    token = await login(ctx, api);
    if (typeof token !== 'string') return token;
    res = await send(token);
    if (res.status === 401) {
      return {
        outcome: 'permanent',
        message:
          'BookingBug answered 401 with a fresh Auth-Token: check the administrator’s rights on the company',
        vendor: { status: res.status, body: res.body },
      };
    }
  }
  return res;
}

function isResult(value: VendorResponse | CommandResult): value is CommandResult {
  return 'outcome' in value;
}

/** The booking's company: from its known state (what BookingBug / JRNI said), else the configured one. */
function companyOf(ctx: Ctx, api: AdminApiConfig): string | undefined {
  const org = ctx.current?.organization;
  const known =
    isJsonObject(org) && (typeof org.id === 'string' || typeof org.id === 'number') ? org.id : undefined;
  const id = known ?? api.companyId;
  return id === undefined || id === '' ? undefined : String(id);
}

/**
 * The booking a command acts on: its admin API path (`version` v1, the BookingBug docs' API; v3 for
 * the check-in status, documented there only), or why there is none (no call made).
 */
function bookingPath(
  ctx: Ctx,
  version: 'v1' | 'v3' = 'v1',
): { api: AdminApiConfig; path: string } | CommandResult {
  const api = ctx.config.adminApi;
  if (!api) return { outcome: 'permanent', message: commandsUnavailable(ctx.config)! };
  const booking = ctx.vendorIds[ctx.vendorIds.length - 1];
  if (!booking) return { outcome: 'permanent', message: 'the appointment has no BookingBug booking id' };
  const company = companyOf(ctx, api);
  if (!company) {
    return {
      outcome: 'permanent',
      message:
        'the hub does not know this booking’s company (no notification named it): set adminApi.companyId',
    };
  }
  return {
    api,
    path: `${base(api)}/api/${version}/admin/${encodeURIComponent(company)}/bookings/${encodeURIComponent(booking)}`,
  };
}

/** The admin booking as BookingBug holds it now (`GET …/bookings/{id}`), or undefined when unreadable. */
async function readBooking(ctx: Ctx, api: AdminApiConfig, path: string): Promise<JsonObject | undefined> {
  const now = await adminCall(ctx, api, { method: 'GET', url: path });
  return !isResult(now) && ok(now) && isJsonObject(now.body) ? now.body : undefined;
}

async function cancel(command: CommandRequest<'appointment.cancel'>, ctx: Ctx): Promise<CommandResult> {
  const target = bookingPath(ctx);
  if ('outcome' in target) return target;
  const { api, path } = target;
  const body: JsonObject = { notify: api.notifyOnCancel ?? DEFAULT_NOTIFY_ON_CANCEL };
  if (command.data.reason !== undefined) body.cancel_reason = command.data.reason;
  const res = await adminCall(ctx, api, { method: 'POST', url: `${path}/cancel`, json: body });
  if (isResult(res)) return res;
  // A 2xx is done, unless it is a proxy's or a maintenance page (transient: commandOutcome).
  const result = failure('cancel', res, ctx, api);
  if (result.outcome === 'permanent') {
    // A repeated cancel (after a crash, or cancelled meanwhile at the vendor): done if it is cancelled.
    const now = await readBooking(ctx, api, path);
    if (now?.is_cancelled === true) {
      return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
    }
  }
  return result;
}

/**
 * A write BookingBug cannot deduplicate, sent at most once more than needed (commands run at least
 * once), done when BookingBug answers the admin booking (a 2xx without it is transient). The command's state notes that it went out; a later try of the same command (its answer
 * lost: a timeout, a 5xx, a crash) reads the booking first (`readPath`) and sends nothing when the
 * booking is already as asked (`reached`: done, `alreadyDone`), nor while the read answers 5xx, 408
 * or 429, or a 2xx without the booking (transient); a refused read (e.g. 404) leaves the answer to
 * the write. A refused write (a 4xx other than
 * 401/408/429) is followed by the same read: a booking already as asked is done, else the refusal
 * stands.
 */
async function sendOnce(
  ctx: Ctx,
  api: AdminApiConfig,
  write: {
    what: string;
    sentKey: string;
    request: VendorRequest;
    readPath: string;
    reached: (booking: JsonObject) => boolean;
    /** What a refusal that stands becomes, given the booking as read after it (undefined: unreadable). */
    refused?: (result: CommandResult, now: JsonObject | undefined) => CommandResult;
  },
): Promise<CommandResult> {
  if ((await ctx.commandState.get(write.sentKey)) !== undefined) {
    const now = await adminCall(ctx, api, { method: 'GET', url: write.readPath });
    if (isResult(now)) return now;
    if (retryable(now)) return failure('booking read', now, ctx, api);
    if (ok(now)) {
      // A 2xx without the admin booking (a proxy's or a maintenance page's HTML 200, a body of
      // another shape) says nothing of it: transient, nothing sent. Taken as "not as asked", the
      // write went again unchecked (a second private note).
      const read = createdOutcome('BookingBug booking read', now, (booking) => booking.id);
      if (read.outcome !== 'done') return read;
      if (write.reached(now.body as JsonObject)) {
        return { outcome: 'done', alreadyDone: true, vendor: { status: now.status, body: now.body } };
      }
    }
  }
  await ctx.commandState.set(write.sentKey, true);
  const res = await adminCall(ctx, api, write.request);
  if (isResult(res)) return res;
  if (ok(res)) {
    // Each of these writes is documented to answer the admin booking: a 2xx without it (a proxy's
    // or a maintenance page's HTML 200) says nothing was written, nor that it was not. Transient by
    // createdOutcome's rule (it was done), the mark kept: the next try re-reads the booking first.
    const result = createdOutcome(`BookingBug ${write.what}`, res, (booking) => booking.id);
    return result.outcome === 'done' ? { outcome: 'done', vendor: result.vendor } : result;
  }
  const result = failure(write.what, res, ctx, api);
  if (result.outcome === 'permanent') {
    const now = await readBooking(ctx, api, write.readPath);
    if (now !== undefined && write.reached(now)) {
      return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
    }
    if (write.refused) return write.refused(result, now);
  }
  return result;
}

/** Whether the admin booking starts at `start` (the same instant, whatever offset either is written in). */
function startsAt(booking: JsonObject, start: string): boolean {
  const at = typeof booking.datetime === 'string' ? Date.parse(booking.datetime) : Number.NaN;
  return !Number.isNaN(at) && at === Date.parse(start) && booking.is_cancelled !== true;
}

/** Set in the command's state before the move is sent: a later try re-reads the booking first. */
const MOVE_SENT = 'bookingbug:move-sent';

/**
 * `PUT /api/v1/admin/{company_id}/bookings/{id}` with `{ datetime }` (dev.bookingbug.com, Admin
 * Bookings, "Update Booking": "a booking can be moved to a new date/time (if available)").
 * `datetime` is the command's start as given, with its offset: the docs' own format for a booking's
 * `datetime` (New Booking: `2017-03-09T15:43:37.494Z`), where a time without one would be read in a
 * time zone the hub does not know.
 *
 * What BookingBug answers to a move onto the time the booking already has is not documented, and
 * re-sending blindly could undo a later move made at BookingBug in between: sent by
 * {@link sendOnce}, a booking starting at `start` counting as moved. `data.reason` is not sent: the update has no
 * documented field for it.
 */
async function reschedule(
  command: CommandRequest<'appointment.reschedule'>,
  ctx: Ctx,
): Promise<CommandResult> {
  // Also here: a command the hub accepted before the connector refused it up front.
  const unsupported = commandUnsupported(command);
  if (unsupported !== undefined) return { outcome: 'permanent', message: unsupported };
  const target = bookingPath(ctx);
  if ('outcome' in target) return target;
  const { api, path } = target;
  const start = command.data.start;
  const moved = await sendOnce(ctx, api, {
    what: 'reschedule',
    sentKey: MOVE_SENT,
    request: { method: 'PUT', url: path, json: { datetime: start } },
    readPath: path,
    reached: (booking) => startsAt(booking, start),
  });
  return withMovedId(moved, ctx.vendorIds[ctx.vendorIds.length - 1]);
}

/**
 * A move keeps its booking id: the docs' Update Booking answers the booking it was sent to
 * (dev.bookingbug.com, Admin Bookings: `PUT …/bookings/{booking_id}` answered with `"id": 13543734`,
 * the id of the New Booking sample it moves), and JRNI's modify webhook names the same `bookingId`.
 * Should an answer name another booking (a host that re-books on a move, as the legacy push's
 * `moved-new-booking-id` sample shows BookingBug doing to a booking), that id is passed on
 * (`vendorIds`): the hub aliases it to the same appointment, and the next command goes to it instead
 * of to a booking that no longer exists.
 */
function withMovedId(result: CommandResult, booking: string | undefined): CommandResult {
  if (result.outcome !== 'done' || !isJsonObject(result.vendor?.body)) return result;
  const id = result.vendor.body.id;
  const named = typeof id === 'number' || (typeof id === 'string' && id !== '') ? String(id) : undefined;
  return named !== undefined && named !== booking ? { ...result, vendorIds: [named] } : result;
}

/**
 * Data BookingBug's documented booking update has no field for, refused when the command is sent
 * (the contract's `commandUnsupported`): the docs show the move by `datetime` only. "Moved to a
 * different staff/resource" is mentioned without its fields, and a length or service is not. A
 * book lacking what New Booking needs is refused the same way, naming each missing field.
 *
 * @example
 * ```ts
 * commandUnsupported({ type: 'appointment.reschedule', data: { start, durationMinutes: 30 } });
 * // "BookingBug's documented booking update moves a booking in time only (datetime): data.durationMinutes cannot be sent"
 * commandUnsupported({ type: 'appointment.book', data: { start, patient: { name: 'Jan' } } }, config);
 * // 'BookingBug books only with … service.id (the BookingBug service), …' (undefined when it can be sent)
 * ```
 */
export function commandUnsupported(command: CommandData, config?: Config): string | undefined {
  if (command.type === 'appointment.book') return bookLacks(command.data, config);
  if (command.type === 'appointment.update' && command.data.customFields !== undefined) {
    return 'BookingBug has no documented call that writes a booking’s fields: only data.comment (a private note) can be sent';
  }
  if (command.type !== 'appointment.reschedule') return undefined;
  const extra = (['durationMinutes', 'service', 'location'] as const).filter(
    (field) => command.data[field] !== undefined,
  );
  if (extra.length === 0) return undefined;
  return `BookingBug's documented booking update moves a booking in time only (datetime): data.${extra.join(', data.')} cannot be sent`;
}

/** Set in the command's state before the check-in status is sent: a later try re-reads first. */
const CHECK_IN_SENT = 'bookingbug:check-in-sent';

/**
 * Sets the booking's check-in status: `PUT /api/v3/admin/{company_id}/bookings/{id}` with
 * `{ current_multi_status }` (api-docs.jrni.com, v3 tutorial "Check-In": "If you want to indicate
 * that a customer has arrived you can update the status as follows", answered with the booking and
 * its `current_multi_status`). The statuses are JRNI's defaults, `checked_in` and `no_show`
 * ("configurable, but by default ... Checked in, Being seen, Completed, No show"; a company's
 * `multi_status` lists them by these keys).
 *
 * Sent by {@link sendOnce}, as a move is, the booking read being the v1 admin booking (whose
 * `current_multi_status` the connector already reads from BookingBug): a lost answer does not
 * overwrite a later status (say "being seen") with an older one.
 */
async function setCheckIn(status: 'checked_in' | 'no_show', ctx: Ctx): Promise<CommandResult> {
  const target = bookingPath(ctx, 'v3');
  if ('outcome' in target) return target;
  const read = bookingPath(ctx);
  if ('outcome' in read) return read;
  // Known before the call in the status this check-in status normalizes to: the write changes
  // nothing, and a push of the booking as it was normalizes to nothing (compared with the last
  // delivery). `unchanged`: no echo taken, not the next arrival or no-show staff set.
  const already = ctx.current?.status === CHECK_IN_STATUS[status];
  const result = await sendOnce(ctx, target.api, {
    what: 'check-in status',
    sentKey: CHECK_IN_SENT,
    request: { method: 'PUT', url: target.path, json: { current_multi_status: status } },
    readPath: read.path,
    reached: (booking) => checkInOf(booking.current_multi_status) === status && booking.is_cancelled !== true,
    refused: (result, now) =>
      // A 404 of the v3 path for a booking the v1 API reads: the host does not serve JRNI's v3 admin
      // API (a legacy BookingBug host), not a missing booking. No other documented call sets the
      // status (the v1 booking's HAL `check_in` link has no documented method or body): refused,
      // saying so, rather than "answered 404".
      result.vendor?.status === 404 && now !== undefined
        ? {
            ...result,
            message: `BookingBug answered 404 to JRNI's v3 check-in call (PUT /api/v3/admin/…/bookings/{id}) while the booking reads through the v1 admin API: this host does not serve the v3 API (a legacy BookingBug host), and no documented v1 call sets a check-in status; set it in BookingBug, or ask JRNI to enable the v3 API for the account`,
          }
        : result,
  });
  return unchangedWhen(result, already);
}

/** The normalized status each check-in status the commands set gives (normalize.ts `CHECK_IN`). */
const CHECK_IN_STATUS = { checked_in: 'arrived', no_show: 'noshow' } as const;

/** Set in the command's state before the note is sent: a later try re-reads first. */
const NOTE_SENT = 'bookingbug:note-sent';

/**
 * `data.comment` as a private note: `PUT /api/v1/admin/{company_id}/bookings/{id}/private_notes`
 * with `{ note }` (dev.bookingbug.com, Admin Bookings, "Add Private Note": "only visible to
 * administrator and not customers", answered with the booking and its `notes.private[]`), the
 * command's "note for the clinic". Each call adds a note, so it is sent by {@link sendOnce}: a try
 * after a lost answer finds the note among the booking's private notes and sends nothing.
 */
async function update(command: CommandRequest<'appointment.update'>, ctx: Ctx): Promise<CommandResult> {
  // Also here: a command the hub accepted before the connector refused it up front.
  const unsupported = commandUnsupported(command);
  if (unsupported !== undefined) return { outcome: 'permanent', message: unsupported };
  const note = command.data.comment;
  if (note === undefined)
    return { outcome: 'permanent', message: 'nothing BookingBug can write: give data.comment' };
  const target = bookingPath(ctx);
  if ('outcome' in target) return target;
  return sendOnce(ctx, target.api, {
    what: 'private note',
    sentKey: NOTE_SENT,
    request: { method: 'PUT', url: `${target.path}/private_notes`, json: { note } },
    readPath: target.path,
    reached: (booking) => {
      const notes = isJsonObject(booking.notes) ? booking.notes.private : undefined;
      return Array.isArray(notes) && notes.some((n) => isJsonObject(n) && n.note === note);
    },
  });
}

/** A `data.vendor` id (a number, or a string BookingBug's integer id is written in), else undefined. */
function vendorField(data: CommandRequest<'appointment.book'>['data'], key: string): string | undefined {
  const vendor = isJsonObject(data.vendor as JsonValue) ? (data.vendor as JsonObject) : {};
  const value = vendor[key];
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * The BookingBug person a booking names (`data.practitioner.id`), or undefined: the `name:…` id the
 * hub's events give a person BookingBug named without an id (normalize.ts) is no person id.
 */
function personOf(data: CommandRequest<'appointment.book'>['data']): string | undefined {
  const id = data.practitioner?.id;
  return id === undefined || id === '' || id.startsWith('name:') ? undefined : id;
}

/** BookingBug's ids are integers (`"service_id": 104747`): an id that reads as one goes as one. */
function bbId(id: string): string | number {
  return /^\d{1,15}$/.test(id) ? Number(id) : id;
}

/**
 * What a booking lacks that BookingBug's New Booking needs, named, or undefined: the company (the
 * path's `{company_id}`: `data.organization.id`, else `adminApi.companyId`), the service
 * (`data.service.id`, its `service_id`), who or what is booked (`data.practitioner.id`, its
 * `person_id`, or `data.vendor.resource_id`), and the client (`data.vendor.member_id`, an existing
 * client, or the patient's email and name, from which BookingBug makes one: "New Booking With Client
 * Creation").
 */
function bookLacks(
  data: CommandRequest<'appointment.book'>['data'],
  config: Config | undefined,
): string | undefined {
  const missing: string[] = [];
  if (!data.organization?.id && config?.adminApi?.companyId === undefined)
    missing.push('organization.id (the BookingBug company; or set adminApi.companyId)');
  if (!data.service?.id) missing.push('service.id (the BookingBug service)');
  if (personOf(data) === undefined && vendorField(data, 'resource_id') === undefined)
    missing.push('practitioner.id (the BookingBug person) or vendor.resource_id');
  const named = (data.patient.given ?? data.patient.name ?? data.patient.family) !== undefined;
  if (vendorField(data, 'member_id') === undefined && (data.patient.email === undefined || !named))
    missing.push('vendor.member_id (an existing client), or patient.email and a name (a new client)');
  return missing.length > 0 ? `BookingBug books only with ${missing.join(', ')}` : undefined;
}

/** Set in the command's state (with when) before the booking is sent: a later try looks it up first. */
const BOOK_SENT = 'bookingbug:book-sent';

/**
 * How long before the `sent` mark a booking found by the lookup may have been made (clocks differ):
 * one made earlier is not this command's.
 */
const BOOK_CLOCK_SKEW_MS = 5 * 60_000;

/** The UTC day `days` after `at`, `YYYY-MM-DD` (the list's `start_date` / `end_date`). */
function dayOf(at: number, days: number): string {
  return new Date(at + days * 86_400_000).toISOString().slice(0, 10);
}

/** Bookings asked for a page of the lookup ({@link madeBefore}): the list's documented default and most. */
const LOOKUP_PER_PAGE = 100;

/**
 * Pages the lookup reads at most ({@link madeBefore}): 500 bookings of the service, person or
 * client within three days. Past them the lookup cannot tell, and the booking is not sent blind.
 */
const LOOKUP_MAX_PAGES = 5;

/**
 * The bookings of a List Bookings answer: `_embedded.bookings`, or none when a 2xx HAL collection
 * leaves `_embedded` out and says `total_entries: 0` (HAL's `_embedded` is optional: an empty
 * collection may have nothing to embed). Undefined for anything else (a proxy's page, another
 * shape): the lookup could not tell.
 */
function listedBookings(res: VendorResponse): JsonValue[] | undefined {
  if (!ok(res) || !isJsonObject(res.body)) return undefined;
  const embedded = res.body._embedded;
  if (embedded === undefined) return res.body.total_entries === 0 ? [] : undefined;
  return isJsonObject(embedded) && Array.isArray(embedded.bookings) ? embedded.bookings : undefined;
}

/**
 * The booking an earlier try of this command made, found among the company's bookings
 * (`GET /api/v1/admin/{company_id}/bookings`, Admin Bookings "List Bookings", with `start_date` /
 * `end_date` a day either side of the start, whatever the company's time zone, `service_id`, and
 * `person_id`, `client_id` or `email` when known): one starting at the same instant, for the same
 * service, person or resource, not cancelled, and not created before the try went out. The list is
 * paged (`page`, `per_page`, `total_entries`): read page after page until the booking is found or
 * the list ends, at most {@link LOOKUP_MAX_PAGES} (before, only the first 100 were read: on a busy
 * day the booking on page 2 was not found and booked again). Answers its id, undefined when there
 * is none, or the outcome of a lookup that could not tell (transient while it answers 5xx/408/429 or
 * a 2xx without the list; a refusal, or more pages than it reads, is permanent: nothing is sent
 * blind).
 */
async function madeBefore(
  ctx: Ctx,
  api: AdminApiConfig,
  bookings: string,
  body: JsonObject,
  sentAt: number | undefined,
): Promise<string | undefined | CommandResult> {
  const at = Date.parse(String(body.datetime));
  const query = new URLSearchParams({
    start_date: dayOf(at, -1),
    end_date: dayOf(at, 1),
    per_page: String(LOOKUP_PER_PAGE),
  });
  if (body.service_id !== undefined) query.set('service_id', String(body.service_id));
  if (body.person_id !== undefined) query.set('person_id', String(body.person_id));
  if (body.member_id !== undefined) query.set('client_id', String(body.member_id));
  else if (isJsonObject(body.client) && typeof body.client.email === 'string')
    query.set('email', body.client.email);
  const unknown =
    'an earlier try of this booking went out and its outcome is unknown; the lookup that would find it';
  let seen = 0;
  for (let page = 1; page <= LOOKUP_MAX_PAGES; page++) {
    query.set('page', String(page));
    const res = await adminCall(ctx, api, { method: 'GET', url: `${bookings}?${query}` });
    if (isResult(res)) return res;
    const list = listedBookings(res);
    if (list === undefined) {
      // Not a 2xx here, so never done.
      const result = (
        ok(res)
          ? {
              outcome: 'transient',
              message: `BookingBug booking lookup answered ${res.status} without a list of bookings`,
            }
          : failure('booking lookup', res, ctx, api)
      ) as Exclude<CommandResult, { outcome: 'done' }>;
      return result.outcome === 'transient'
        ? {
            ...result,
            message: `${unknown} did not answer (${result.message}): looked up again on the next try`,
          }
        : {
            ...result,
            message: `${unknown} was refused (${result.message}): not sent again, so nothing is booked twice; BookingBug's notification of the booking will show whether it happened`,
          };
    }
    const made = findMade(list, body, at, sentAt);
    if (made !== undefined) return made;
    seen += list.length;
    // The end: an empty page, all of `total_entries` read, or (without it) a page not full.
    const total = isJsonObject(res.body) ? res.body.total_entries : undefined;
    if (list.length === 0 || (typeof total === 'number' ? seen >= total : list.length < LOOKUP_PER_PAGE))
      return undefined;
  }
  return {
    outcome: 'permanent',
    message: `${unknown} lists more than ${LOOKUP_MAX_PAGES * LOOKUP_PER_PAGE} bookings and it was not among them: not sent again, so nothing is booked twice; BookingBug's notification of the booking will show whether it happened`,
  };
}

/** The booking of `list` an earlier try of the booking `body` made ({@link madeBefore}), by id. */
function findMade(
  list: JsonValue[],
  body: JsonObject,
  at: number,
  sentAt: number | undefined,
): string | undefined {
  const same = (key: string, b: JsonObject) =>
    body[key] === undefined || String(b[key]) === String(body[key]);
  const made = list.find(
    (b): b is JsonObject =>
      isJsonObject(b) &&
      typeof b.datetime === 'string' &&
      Date.parse(b.datetime) === at &&
      b.is_cancelled !== true &&
      same('service_id', b) &&
      same('person_id', b) &&
      same('resource_id', b) &&
      (sentAt === undefined ||
        typeof b.created_at !== 'string' ||
        Date.parse(b.created_at) >= sentAt - BOOK_CLOCK_SKEW_MS),
  );
  return made === undefined ? undefined : String(made.id);
}

/**
 * `POST /api/v1/admin/{company_id}/bookings` (dev.bookingbug.com, Admin Bookings, "New Booking":
 * "create a new booking/appointment ... on behalf of the customer"; no basket or checkout: that is
 * the public, customer-facing API) with `datetime` (`data.start` with its offset), `service_id`,
 * `person_id` and / or `resource_id`, and `member_id` or a new `client` (`first_name`, `last_name`,
 * `email`, `mobile`); answered with the admin booking, whose `id` becomes the new appointment's
 * alias ({@link createdOutcome}: an answer without it is transient, not done). `data.comment` and
 * `data.durationMinutes` are not sent (no documented field; the service sets the length).
 *
 * BookingBug cannot deduplicate a booking: the command's state notes that it went out before it
 * does; a later try (its answer lost, a 5xx, a 2xx without the id) looks for the booking it made
 * ({@link madeBefore}) and answers its id (`alreadyDone`) instead of booking again, and books again
 * only once the last send can no longer land ({@link stillLanding}); a refusal (a 4xx) says nothing
 * was made and takes the note back.
 */
async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const d = command.data;
  // Also here: a command the hub accepted before the connector refused it up front.
  const lacks = bookLacks(d, ctx.config);
  if (lacks !== undefined) return { outcome: 'permanent', message: lacks };
  const api = ctx.config.adminApi;
  if (!api) return { outcome: 'permanent', message: commandsUnavailable(ctx.config)! };
  // bookLacks checked that one of the two is there (an empty organization id counts as none).
  const company = d.organization?.id || String(api.companyId);
  const bookings = `${base(api)}/api/v1/admin/${encodeURIComponent(company)}/bookings`;
  const body: JsonObject = { datetime: d.start, service_id: bbId(d.service!.id) };
  const person = personOf(d);
  if (person !== undefined) body.person_id = bbId(person);
  const resource = vendorField(d, 'resource_id');
  if (resource !== undefined) body.resource_id = bbId(resource);
  const member = vendorField(d, 'member_id');
  if (member !== undefined) body.member_id = bbId(member);
  else {
    const p = d.patient;
    const client: JsonObject = { email: p.email! };
    const first = p.given ?? p.name;
    if (first !== undefined) client.first_name = first;
    if (p.family !== undefined) client.last_name = p.family;
    if (p.phone !== undefined) client.mobile = p.phone;
    body.client = client;
  }
  const sent = await ctx.commandState.get<JsonValue>(BOOK_SENT);
  if (sent !== undefined) {
    const { first: sentAt, last } = sendTimes(sent);
    const found = await madeBefore(ctx, api, bookings, body, sentAt);
    if (typeof found === 'string') return { outcome: 'done', alreadyDone: true, vendorIds: [found] };
    if (found !== undefined) return found;
    // Not listed yet while the last send may still land: sent again at once, it booked twice.
    const landing = stillLanding('booking', last);
    if (landing) return landing;
  }
  // The first send's time stays: a booking the lookup did not list yet (made by that send) is not
  // left out by a later one's.
  await ctx.commandState.set(BOOK_SENT, nextSendMark(sent));
  const res = await adminCall(ctx, api, { method: 'POST', url: bookings, json: body });
  if (isResult(res)) return res;
  const result = createdOutcome('BookingBug book', res, (b) => b.id, vendorWords(res, secretsOf(ctx, api)));
  if (result.outcome === 'permanent' && sent !== undefined) {
    // Sent again and refused (409 "No Space Left": the time is taken): by the earlier try, landed
    // after the wait? Looked for once more before the command fails, as Docplanner's book does; it
    // failed at once before, its own earlier booking left at BookingBug.
    // A lookup that does not answer its list keeps the earlier send's note (refusedResendLookedUp).
    const found = await madeBefore(ctx, api, bookings, body, sendTimes(sent).first);
    const settled = await refusedResendLookedUp(
      ctx.commandState,
      BOOK_SENT,
      sent,
      typeof found === 'string' ? { outcome: 'done', alreadyDone: true, vendorIds: [found] } : found,
    );
    if (settled) return settled;
  }
  // A refusal (409: the slot is taken; 400, 403) or a 408/429 says this send made nothing; a 5xx or
  // a 2xx without the id may have made it: the note stays, and the next try looks first. An earlier
  // send's unknown outcome keeps the note (with that send's times) all the same.
  if (result.outcome === 'permanent' || provesNotCarriedOut(res)) {
    await sendNotCarriedOut(ctx.commandState, BOOK_SENT, sent);
  }
  return result;
}

/** The BookingBug / JRNI command handlers. */
export const commands: CommandSpec<Config> = {
  'appointment.book': book,
  'appointment.cancel': cancel,
  'appointment.reschedule': reschedule,
  'appointment.mark_arrived': (_command, ctx) => setCheckIn('checked_in', ctx),
  'appointment.mark_no_show': (_command, ctx) => setCheckIn('no_show', ctx),
  'appointment.update': update,
};
