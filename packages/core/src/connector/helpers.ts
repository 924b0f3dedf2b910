import { createHash, timingSafeEqual } from 'node:crypto';
import { ConnectorError } from '../errors/index.ts';
import { isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type {
  CommandResult,
  EventDraft,
  InboundRequest,
  InboundRequestHead,
  JsonSchema,
  NormalizeResult,
  StateStore,
  VendorResponse,
} from './types.ts';

/**
 * Compares a presented secret with the expected one in constant time (for equal lengths; a length
 * mismatch returns false after comparing digests, so the timing says nothing about the content).
 *
 * @example
 * ```ts
 * if (!timingSafeEqualString(req.headers.authorization, config.authorization)) throw ConnectorError.auth('wrong Authorization');
 * ```
 */
export function timingSafeEqualString(presented: string | undefined | null, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, expectedDigest(expected)) && presented.length === expected.length;
}

/**
 * The expected side's digests: a push is checked against the same configured key every time, and
 * hashing it again was half of the check's cost (two `createHash` per push). The secrets compared
 * are few (instance keys, the admin token); the map is emptied if it ever holds more than
 * {@link MAX_EXPECTED_DIGESTS}, so keys rotated away do not pile up.
 */
const expectedDigests = new Map<string, Buffer>();
const MAX_EXPECTED_DIGESTS = 256;

function expectedDigest(expected: string): Buffer {
  let digest = expectedDigests.get(expected);
  if (digest === undefined) {
    if (expectedDigests.size >= MAX_EXPECTED_DIGESTS) expectedDigests.clear();
    digest = createHash('sha256').update(expected).digest();
    expectedDigests.set(expected, digest);
  }
  return digest;
}

/**
 * One strict UTF-8 decoder for every body: `decode()` without `stream` keeps no state between
 * calls, and making a decoder per request was one of the push path's costlier lines.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the request body as JSON, or throws `ConnectorError.badRequest` saying why. Checks the
 * content type only when the vendor sent one that is plainly not JSON.
 *
 * @example
 * ```ts
 * const body = parseJsonBody(req); // JsonValue
 * ```
 */
export function parseJsonBody(request: InboundRequest): JsonValue {
  const type = request.headers['content-type'];
  if (type !== undefined && type !== '' && !/json|text\/plain/i.test(type)) {
    throw ConnectorError.badRequest(
      `expected a JSON body, got content-type ${JSON.stringify(type.slice(0, 100))}`,
    );
  }
  if (request.rawBody.length === 0) throw ConnectorError.badRequest('the request body is empty');
  let text: string;
  try {
    text = UTF8.decode(request.rawBody);
  } catch {
    throw ConnectorError.badRequest('the request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    throw ConnectorError.badRequest(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Like {@link parseJsonBody}, but the body must be a JSON object. */
export function parseJsonObjectBody(request: InboundRequest): JsonObject {
  const body = parseJsonBody(request);
  if (!isJsonObject(body)) throw ConnectorError.badRequest('the request body must be a JSON object');
  return body;
}

/** The form content type, `parseFormBody`'s one accepted type (parameters such as `charset` allowed). */
const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * Reads a form-encoded body (`application/x-www-form-urlencoded`, what Acuity's webhooks are) as
 * its fields, or throws `ConnectorError.badRequest` saying why. Unlike {@link parseJsonBody}, the
 * content type is required: any bytes parse as a form (`{"a":1}` is one field named `{"a":1}`), so
 * only the type says the vendor sent one. `+` reads as a space and `%XX` as its byte, as browsers
 * and PHP encode them; a name sent twice keeps its last value (what PHP, the language of many
 * vendors' senders, makes of it). An empty body is no fields: what a webhook must carry, the
 * connector checks. Store the fields as the payload; the raw body is kept beside it, byte for byte.
 *
 * @example
 * ```ts
 * const form = parseFormBody(request); // 'action=scheduled&id=54321' → { action: 'scheduled', id: '54321' }
 * if (!form.action) throw ConnectorError.badRequest('the webhook has no action');
 * ```
 */
export function parseFormBody(request: InboundRequest): Record<string, string> {
  const type = request.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith(FORM_TYPE)) {
    throw ConnectorError.badRequest(
      `expected ${FORM_TYPE}, got content-type ${JSON.stringify(type.slice(0, 100))}`,
    );
  }
  let text: string;
  try {
    text = UTF8.decode(request.rawBody);
  } catch {
    throw ConnectorError.badRequest('the request body is not valid UTF-8');
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/**
 * A dedupe key derived from content, for vendors whose notifications carry no id (Docplanner): the
 * same parts always give the same key. Parts are joined unambiguously, then hashed.
 *
 * @example
 * ```ts
 * dedupeKeyOf('slot-booked', booking.id, body.created_at); // 'sha256:...'
 * ```
 */
export function dedupeKeyOf(...parts: ReadonlyArray<string | number | boolean | null | undefined>): string {
  const canonical = JSON.stringify(parts.map((p) => (p === undefined ? null : p)));
  return `sha256:${createHash('sha256').update(canonical).digest('hex').slice(0, 40)}`;
}

/**
 * A vendor field read as text: the string without its surrounding white space, or undefined when
 * it is no string or only white space. Vendors send `""`, `" "` and `null` for a field they leave
 * empty; each is "not given", so a mapping never emits an empty name or id.
 *
 * @example
 * ```ts
 * trimmedText('  Ada ');  // 'Ada'
 * trimmedText('   ');     // undefined
 * trimmedText(42);        // undefined
 * ```
 */
export function trimmedText(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * Parses a `Retry-After` header: delay-seconds (`120`) or an HTTP date. Returns milliseconds from
 * `now` (a past date gives 0), or undefined when absent or unreadable. The one parser of the hub's
 * deliveries and the connectors' vendor calls, so a vendor's date is honoured wherever it is sent.
 *
 * @example
 * ```ts
 * parseRetryAfter('120');                             // 120000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:00 GMT')); // 60000
 * parseRetryAfter('soon');                            // undefined
 * ```
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  // Only date-looking text: Date.parse accepts bare numbers like "1.5" as years.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Answers that say the vendor did not do it now but may later: 408, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** How {@link vendorReadFailure} names the read in its messages. */
export interface VendorRead {
  /** The API, as a sentence's subject: `the Acuity API`. */
  api: string;
  /** What was read: `appointment 54321`. */
  entity: string;
  /** The settings it was called with, as refused: `the API key`, `the userId/apiKey`. */
  credentials: string;
  /** Kept on the error (`details`), for the log: `{ appointmentId }`. */
  details?: Record<string, unknown>;
}

/**
 * The error for a read from a vendor's API that did not return the entity (normalize enriching a
 * webhook that carries only an id, as Acuity's and Clockwise.MD's do), by the rule they share:
 * 401/403 `permanent` (the settings are wrong, and every retry would be refused alike); 408, 429
 * and 5xx `transient`, with the answer's `Retry-After` as `retryAfterMs`; a 2xx without the entity
 * (a proxy's or a maintenance page answered 200) `transient`; any other status `permanent`. A 404
 * is the connector's to decide before calling this: the entity is gone, and what that means
 * differs (Acuity, whose events are built from the read, ignores the webhook; Clockwise.MD, whose
 * webhook names the step, emits without enrichment). So is a network failure, which `ctx.http`
 * throws as `transient`. On the final attempt a connector emits what the webhook said instead of
 * throwing a transient one (docs/writing-a-connector.md, "enrichment").
 *
 * @example
 * ```ts
 * const res = await ctx.http.request({ url: `${base}/appointments/${encodeURIComponent(id)}`, headers });
 * if (res.status === 404) return ignore(`no appointment ${id}`);
 * const record = res.status === 200 && isJsonObject(res.body) ? res.body : undefined;
 * if (record === undefined) {
 *   const failure = vendorReadFailure(res, { api: 'the Acuity API', entity: `appointment ${id}`, credentials: 'the userId/apiKey' });
 *   if (failure.kind !== 'transient' || !ctx.finalAttempt) throw failure; // 503 + Retry-After: 120 → transient, retryAfterMs 120000
 *   // final attempt: emit what the webhook said, marked enrichment: 'failed'
 * }
 * ```
 */
export function vendorReadFailure(
  res: Pick<VendorResponse, 'status' | 'headers'>,
  read: VendorRead,
): ConnectorError {
  const { api, entity, credentials, details } = read;
  const kept = details === undefined ? {} : { details };
  if (res.status === 401 || res.status === 403) {
    return ConnectorError.permanent(
      `${api} refused ${credentials} (HTTP ${res.status}): check the instance settings`,
      kept,
    );
  }
  if (isRetryableStatus(res.status)) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    return ConnectorError.transient(`${api} answered ${res.status} for ${entity}`, {
      ...kept,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  if (res.status >= 200 && res.status < 300) {
    return ConnectorError.transient(`${api} answered ${res.status} for ${entity} without it`, kept);
  }
  return ConnectorError.permanent(`${api} answered ${res.status} for ${entity}`, kept);
}

/**
 * A vendor's own documented "turned away, nothing done" answer to a write (its rate limit's or its
 * maintenance answer, recognised by status *and* body), for {@link provesNotCarriedOut}.
 */
export type TurnedAway = (res: Pick<VendorResponse, 'status' | 'headers' | 'body'>) => boolean;

/**
 * Whether an answer to a write proves the vendor did not carry it out, so sending it again cannot
 * do it twice: a 408 (the request never arrived whole) and a 429 (turned away by a rate limit,
 * the vendor's or a gateway's: a limiter refuses a request instead of passing it on, and no proxy
 * answers 429 for an upstream that failed), and a 5xx only when the connector recognises it as its
 * vendor's own documented turn-away answer (`documented`). No 5xx proves it on its own, a 503 with
 * `Retry-After` included: a gateway or proxy in front of the vendor answers 503 after it forwarded
 * the request (Envoy's "upstream connect error or disconnect/reset before headers", Heroku's
 * request timeout), and `Retry-After` says nothing of who answered. Taken as proof, a booking so
 * answered after the vendor made it was sent again and booked twice (a commands audit of
 * Clockwise.MD, with a proxy's 503 and `Retry-After`). None of the shipped vendors documents such
 * a 5xx for a write that creates (docs/commands.md, "Creating commands and lost answers"), so none
 * passes `documented` today. Why a 429 still proves it: taken as no proof, every booking a vendor's
 * rate limit turned away waited for the lookup rule's 2 minutes (Docplanner) and spent a list call
 * of the same limit, in exactly the bursts that hit the limit. A refusal (another 4xx) proves it
 * too, but is the command's end, not a retry.
 *
 * @example
 * ```ts
 * const res = await ctx.http.request({ method: 'POST', url: `${base}/bookings`, json });
 * // a write the vendor cannot deduplicate: this send did nothing; an earlier one's mark stays
 * if (result.outcome === 'permanent' || provesNotCarriedOut(res)) await sendNotCarriedOut(ctx.commandState, SENT, mark);
 * ```
 */
export function provesNotCarriedOut(
  res: Pick<VendorResponse, 'status' | 'headers' | 'body'>,
  documented?: TurnedAway,
): boolean {
  if (res.status === 408 || res.status === 429) return true;
  return res.status >= 500 && documented?.(res) === true;
}

/**
 * Whether a vendor's answer is an HTML page: a text body labelled `text/html`, or one that starts
 * with `<`. The shipped vendors' APIs answer JSON (or nothing); a page is a proxy's, a gateway's or
 * a maintenance page's, whatever its status, and says nothing of what the vendor did.
 *
 * @example
 * ```ts
 * isHtmlPage({ status: 200, headers: { 'content-type': 'text/html' }, body: '<h1>Down for maintenance</h1>' }); // true
 * isHtmlPage({ status: 204, headers: {}, body: '' }); // false
 * ```
 */
export function isHtmlPage(res: Pick<VendorResponse, 'headers' | 'body'>): boolean {
  const type = res.headers['content-type'] ?? '';
  return typeof res.body === 'string' && (/^\s*text\/html\b/i.test(type) || /^\s*</.test(res.body));
}

/**
 * How long after a write that creates (a booking, a block) went out a lookup that does not list
 * what it made still proves nothing, ms. A request whose answer the hub lost may still be under way
 * at the vendor: the hub stops waiting after its 10 s request timeout, a gateway answers 502 / 504
 * after its own (commonly 60 s), and the vendor may carry the write out after either. The first
 * retry comes 1 s later (`commands.retrySchedule`): a lookup then says only "not yet", and a write
 * sent again on it is made twice once the first lands. Two minutes covers both.
 */
export const CREATE_SETTLE_MS = 120_000;

/**
 * A create's send mark, kept in the command's state before each send of a write the vendor cannot
 * deduplicate: when it first went out (`at`: a lookup takes only what the vendor made since, less
 * the clocks' skew) and when it last did (`last`: {@link stillLanding} counts from it), ISO 8601.
 */
export interface SendMark extends JsonObject {
  at: string;
  last: string;
}

/**
 * The first and last send times (ms) of a stored {@link SendMark}. A mark of an earlier version
 * without `last` gives its `at` for both; one without a time (`true`) neither.
 *
 * @example
 * ```ts
 * const mark = await ctx.commandState.get(SENT);
 * const { first, last } = sendTimes(mark); // { first: 1767225600000, last: 1767225611000 }
 * ```
 */
export function sendTimes(mark: unknown): { first: number | undefined; last: number | undefined } {
  const ms = (field: string) => {
    const value = isJsonObject(mark as JsonValue) ? (mark as JsonObject)[field] : undefined;
    const parsed = typeof value === 'string' ? Date.parse(value) : Number.NaN;
    return Number.isNaN(parsed) ? undefined : parsed;
  };
  const first = ms('at');
  return { first, last: ms('last') ?? first };
}

/**
 * The {@link SendMark} to store before a send made `now`: the first send's time kept from
 * `previous` (so a lookup after a later send still finds what the first one made), `last` now.
 *
 * @example
 * ```ts
 * await ctx.commandState.set(SENT, nextSendMark(await ctx.commandState.get(SENT)));
 * ```
 */
export function nextSendMark(previous: unknown, now: number = Date.now()): SendMark {
  const at = new Date(now).toISOString();
  const first = sendTimes(previous).first;
  return { at: first === undefined ? at : new Date(first).toISOString(), last: at };
}

/**
 * After a send of a create the vendor cannot deduplicate was answered with proof that *this* send
 * did nothing (a refusal, or {@link provesNotCarriedOut}): its send mark as it was before the send
 * (`previous`, read before {@link nextSendMark} replaced it). Gone when this was the first send;
 * kept, with the earlier send's times, when it was sent again: a 408 or 429 to the second POST says
 * nothing of the first, whose outcome is still unknown, and the next try must look it up before it
 * sends (deleted, the mark let the next try book again with no lookup: an audit of Acuity, Cliniko
 * and BookingBug).
 *
 * @example
 * ```ts
 * const mark = await ctx.commandState.get(SENT);
 * await ctx.commandState.set(SENT, nextSendMark(mark));
 * const res = await ctx.http.request({ method: 'POST', url, json });
 * if (provesNotCarriedOut(res)) await sendNotCarriedOut(ctx.commandState, SENT, mark);
 * ```
 */
export async function sendNotCarriedOut(
  state: StateStore,
  key: string,
  previous: JsonValue | undefined,
): Promise<void> {
  if (previous === undefined) await state.delete(key);
  else await state.set(key, previous);
}

/**
 * A create sent again and refused (the time taken: by its own earlier send, landed after the wait?),
 * given the outcome of the lookup made after the refusal (`found`): done with what the earlier send
 * made, the send mark goes; a lookup that did not answer its list says nothing of the earlier send,
 * so its mark stays as it was before this send ({@link sendNotCarriedOut}: this one, refused, made
 * nothing) and that outcome is returned, for the next try to look again rather than fail for good on
 * a refusal that may be of its own booking. Undefined when the lookup found nothing: the refusal
 * stands. Acuity's, BookingBug's and Cliniko's books end this way.
 *
 * @example
 * ```ts
 * if (result.outcome === 'permanent' && mark !== undefined) {
 *   const settled = await refusedResendLookedUp(ctx.commandState, SENT, mark, await madeEarlier(ctx, d, sentAt));
 *   if (settled) return settled;
 * }
 * ```
 */
export async function refusedResendLookedUp(
  state: StateStore,
  key: string,
  previous: JsonValue | undefined,
  found: CommandResult | undefined,
): Promise<CommandResult | undefined> {
  if (found === undefined) return undefined;
  if (found.outcome === 'done') await state.delete(key);
  else await sendNotCarriedOut(state, key, previous);
  return found;
}

/**
 * For a create whose earlier try's outcome is unknown and whose lookup did not list it: `transient`
 * while that try's request may still land at the vendor (sent less than {@link CREATE_SETTLE_MS}
 * ago, `lastSentAt` in ms), so the next try looks again instead of sending; undefined once it
 * cannot, or when the send time is not known (a mark of an earlier version): send it again. No
 * `retryAfterMs`: the hub takes one as the vendor asking it to wait, and would hold every other
 * command of the instance in this process until then.
 *
 * @example
 * ```ts
 * const made = list(found.body).find((b) => sameSlot(b, command.data));
 * if (made) return { outcome: 'done', alreadyDone: true, vendorIds: [String(made.id)] };
 * const landing = stillLanding('Acme booking', lastSentAt); // sent 30 s ago: transient
 * if (landing) return landing;
 * // else: send it again
 * ```
 */
export function stillLanding(
  what: string,
  lastSentAt: number | undefined,
  now: number = Date.now(),
): CommandResult | undefined {
  if (lastSentAt === undefined || Number.isNaN(lastSentAt)) return undefined;
  const wait = lastSentAt + CREATE_SETTLE_MS - now;
  if (wait <= 0) return undefined;
  return {
    outcome: 'transient',
    message: `an earlier try of this ${what} went out and its outcome is unknown, and the vendor does not list it yet: it may still land, so it is looked for again on the next try, and sent again only when still not there ${CREATE_SETTLE_MS / 1000} s after it went out (${Math.ceil(wait / 1000)} s from now)`,
  };
}

/**
 * A command's outcome from the vendor's answer to its call, by the rule every connector follows:
 * 2xx `done`, unless it is an HTML page ({@link isHtmlPage}: `transient`); 408, 429 and 5xx `transient`, with the answer's `Retry-After` as `retryAfterMs`; any
 * other status `permanent`, the vendor's refusal. The answer is kept as `vendor` (on the command,
 * and in `command.failed`). `what` names the call with its vendor (`Cliniko cancel`); `said`, the
 * vendor's own error text when its body has one, ends the message. A call the vendor cannot
 * deduplicate (a booking) answered 5xx may have been carried out: check before trusting `transient`
 * (docs/writing-a-connector.md, "Commands").
 *
 * @example
 * ```ts
 * const res = await ctx.http.request({ method: 'PATCH', url: `${base}/individual_appointments/${id}/cancel`, json });
 * return commandOutcome('Cliniko cancel', res); // { outcome: 'transient', message: 'Cliniko cancel answered 503', vendor }
 * ```
 */
export function commandOutcome(what: string, res: VendorResponse, said?: string): CommandResult {
  const vendor = { status: res.status, body: res.body };
  if (res.status >= 200 && res.status < 300 && isHtmlPage(res)) {
    // A proxy's or a maintenance page's 200, not the vendor's answer: nothing says the write was
    // carried out. Taken as done, a cancel so answered succeeded with the appointment still booked
    // and no notification to come (a commands audit).
    const type = res.headers['content-type']?.split(';')[0]?.trim();
    return {
      outcome: 'transient',
      message: `${what} answered ${res.status}${type ? ` (${type})` : ''} with an HTML page, not the API's answer: not taken as done (a proxy or a maintenance page answers so); retried`,
      vendor,
    };
  }
  if (res.status >= 200 && res.status < 300) return { outcome: 'done', vendor };
  const message = `${what} answered ${res.status}${said ? `: ${said}` : ''}`;
  if (isRetryableStatus(res.status)) {
    const after = parseRetryAfter(res.headers['retry-after']);
    return { outcome: 'transient', message, vendor, ...(after === undefined ? {} : { retryAfterMs: after }) };
  }
  return { outcome: 'permanent', message, vendor };
}

/**
 * `result` marked `unchanged` when it is `done` and `unchanged` holds; any other outcome as it is.
 * For a write whose target was already in the requested state before the call (what the hub knows
 * of it, `ctx.current`, or a read says so): the vendor changes nothing and notifies nothing, and the
 * hub takes no echo for the command (see `CommandResult`). Decide before the call: the answer
 * shows the state after it.
 *
 * @example
 * ```ts
 * const already = ctx.current?.status === 'arrived'; // the known state, before the call
 * const res = await ctx.http.request({ method: 'POST', url: `${booking}/presence/patient` });
 * return unchangedWhen(commandOutcome('Docplanner presence', res), already); // { outcome: 'done', unchanged: true, vendor }
 * ```
 */
export function unchangedWhen(result: CommandResult, unchanged: boolean): CommandResult {
  return unchanged && result.outcome === 'done' ? { ...result, unchanged: true } : result;
}

/**
 * A command's outcome from the answer to a write whose answer must carry JSON naming what it made
 * (a booking's id), the rule every connector's `appointment.book` follows: as
 * {@link commandOutcome}, except that a 2xx is `done` only when its body is a JSON object in which
 * `idOf` finds an id (an integer JSON reads exactly, |n| < 2^53, or a string of at most 300 characters without control characters,
 * which the hub can store and put in a URL; the result's `vendorIds` is `[id]`). A 2xx without one
 * (an HTML page a proxy or a maintenance page answers with 200, a JSON answer without the id or
 * with an id the hub could not keep) is no
 * proof the write was carried out, nor that it was not: it is `transient`, never `done`, the answer
 * kept as `vendor`. Taken as done, the command succeeded with no appointment behind it (or one the
 * hub could never address). A write the vendor cannot deduplicate keeps its "sent" mark on such an
 * answer, as on a 5xx that does not say it was refused, so the next try checks before booking again
 * (docs/writing-a-connector.md, "Answers that are not what they seem").
 *
 * @example
 * ```ts
 * const res = await ctx.http.request({ method: 'POST', url: `${base}/individual_appointments`, json });
 * return createdOutcome('Cliniko book', res, (body) => body.id);
 * // 201 { id: 7 }:  { outcome: 'done', vendorIds: ['7'], vendor }
 * // 200 text/html:  { outcome: 'transient', message: 'Cliniko book answered 200 (text/html) without …', vendor }
 * // 201 { id: 'x'.repeat(10_000) }: { outcome: 'transient', message: '… with an id the hub cannot keep (10000 characters) …', vendor }
 * ```
 */
export function createdOutcome(
  what: string,
  res: VendorResponse,
  idOf: (body: JsonObject) => JsonValue | undefined,
  said?: string,
): CommandResult {
  if (res.status >= 200 && res.status < 300 && isHtmlPage(res)) {
    return {
      outcome: 'transient',
      message: `${what} ${answeredWithoutId(res)}`,
      vendor: { status: res.status, body: res.body },
    };
  }
  const result = commandOutcome(what, res, said);
  if (result.outcome !== 'done') return result;
  const id = isJsonObject(res.body) ? idOf(res.body) : undefined;
  if (typeof id === 'string' && id !== '' && !usableVendorId(id)) {
    // Kept, it could not be stored (an alias's index takes ~2.7 kB, Postgres text no NUL): the
    // outcome's write failed after the booking was made. Nor addressed: a URL path never takes it.
    const said = id.length > MAX_VENDOR_ID_LENGTH ? `${id.length} characters` : 'control characters';
    return {
      outcome: 'transient',
      message: `${what} answered ${res.status} with an id the hub cannot keep (${said}): not taken as done; retried, and the next try checks before it writes again`,
      vendor: result.vendor,
    };
  }
  if (typeof id === 'number' && !Number.isSafeInteger(id)) {
    // JSON.parse rounds an integer past 2^53 (12345678901234567890 reads 12345678901234567000) and
    // writes a fraction or a big one in its own way (1.5, 1e+21): kept, the alias named another
    // appointment, and the next command on it went to that one's URL.
    return {
      outcome: 'transient',
      message: `${what} answered ${res.status} with an id the hub cannot keep (the number ${id}, not an integer it reads exactly): not taken as done; retried, and the next try checks before it writes again`,
      vendor: result.vendor,
    };
  }
  if ((typeof id === 'string' && id !== '') || typeof id === 'number') {
    return { ...result, vendorIds: [String(id)] };
  }
  return { outcome: 'transient', message: `${what} ${answeredWithoutId(res)}`, vendor: result.vendor };
}

/** The longest vendor id {@link createdOutcome} takes, characters (the admin API's lookup's bound). */
const MAX_VENDOR_ID_LENGTH = 300;

/**
 * Whether a vendor's id can be kept and used: at most {@link MAX_VENDOR_ID_LENGTH} characters and
 * no control characters (a NUL cannot be stored at all).
 */
function usableVendorId(id: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
  return id.length <= MAX_VENDOR_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(id);
}

/** `answered 200 (text/html) without the JSON …`: what the answer was, in the failure message. */
function answeredWithoutId(res: VendorResponse): string {
  const type = res.headers['content-type']?.split(';')[0]?.trim();
  const what = isJsonObject(res.body)
    ? 'a JSON object without the id of what it made'
    : res.body === ''
      ? 'an empty body'
      : 'no JSON';
  return `answered ${res.status}${type ? ` (${type})` : ''} with ${what}: not taken as done (a proxy or a maintenance page answers so); retried, and the next try checks before it writes again`;
}

/**
 * Builds a {@link NormalizeResult} with events.
 *
 * @example
 * ```ts
 * return emit({ type: 'appointment.created', subject: `appointment/${id}`, time, data });
 * ```
 */
export function emit(...events: EventDraft[]): NormalizeResult {
  return { events };
}

/**
 * Builds a {@link NormalizeResult} for a notification that maps to no normalized event: the hub
 * stores it as `ignored` with this reason.
 *
 * @example
 * ```ts
 * return ignore(`Quable ${n.type} has no normalized counterpart`);
 * ```
 */
export function ignore(reason: string): NormalizeResult {
  return { events: [], ignored: reason };
}

/**
 * Lower-cases header names and keeps the first value of repeated headers, the shape
 * {@link InboundRequest.headers} has.
 */
export function normalizeHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name.toLowerCase()] = Array.isArray(value) ? value[0] : value;
  }
  return out;
}

/**
 * The head of a push request as `push.authenticate` gets it: every field but `rawBody`, which throws
 * when read (a connector typed against the full request would otherwise get `undefined`), saying
 * that body checks go in `push.verifyBody`. The hub and the conformance kit both hand this over, so
 * a connector that reaches for the body in `authenticate` fails the kit exactly as it fails the hub.
 *
 * @example
 * ```ts
 * push.authenticate(inboundRequestHead(request), config);
 * push.verifyBody?.(request, config);
 * const notifications = push.parse(request, config);
 * ```
 */
export function inboundRequestHead(request: InboundRequestHead): InboundRequestHead {
  const head = { ...request };
  delete (head as { rawBody?: unknown }).rawBody;
  Object.defineProperty(head, 'rawBody', {
    enumerable: false,
    get() {
      throw new TypeError(
        'push.authenticate runs before the body is read: check what needs the body in push.verifyBody',
      );
    },
  });
  return head;
}

/**
 * The JSON Schema of one IPv4/IPv6 address or CIDR range (`185.60.0.0/22`, `2001:db8::/32`), for
 * settings that list where requests may come from (a vendor's source IPs, the hub's trusted
 * proxies): refused when the file or instance is saved, not at the first request.
 *
 * @example
 * ```ts
 * const configSchema = { type: 'object', properties: { allowedSourceIps: { type: 'array', items: IP_OR_CIDR_SCHEMA } } };
 * ```
 */
export const IP_OR_CIDR_SCHEMA: JsonSchema = {
  type: 'string',
  anyOf: [
    { format: 'ipv4' },
    { format: 'ipv6' },
    { pattern: '^(25[0-5]|2[0-4]\\d|1?\\d?\\d)(\\.(25[0-5]|2[0-4]\\d|1?\\d?\\d)){3}/(3[0-2]|[12]?\\d)$' },
    { pattern: '^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*/(12[0-8]|1[01]\\d|[1-9]?\\d)$' },
  ],
  'x-message': 'must be an IPv4 or IPv6 address or a CIDR range (10.0.0.0/8, 2001:db8::/32)',
};

/** What a secret that is a URL path segment must not contain: each ends or changes the segment. */
export const PATH_SEGMENT_SECRET_MESSAGE =
  'is a URL path segment in auth.mode path: it must not contain /, ?, #, % or whitespace (a push could never match it); send such a value in a header instead (auth.mode header)';

/**
 * The schema rule, to spread into an `auth` object schema with a `mode` of `path` | `header` | …,
 * that refuses a shared secret the hub could never match as a path segment (`/hooks/{instance}/{secret}`)
 * when `mode` is `path`: a `/` makes two segments (404), `?` and `#` end the path, `%` starts an
 * escape the router decodes, and whitespace cannot be sent unescaped. Other modes take any string
 * (a header carries it as it is). Being part of the settings schema, it is checked where settings
 * are: the config file (after secret references are resolved) and the admin API, in the same words
 * ({@link PATH_SEGMENT_SECRET_MESSAGE}), never quoting the value.
 *
 * @example
 * ```ts
 * auth: { type: 'object', properties: { mode: { enum: ['path', 'header'] }, key: { type: 'string', 'x-secret': true } }, ...pathSegmentSecretRule('key') }
 * ```
 */
export function pathSegmentSecretRule(field: string): JsonSchema {
  return {
    if: { required: ['mode'], properties: { mode: { const: 'path' } } },
    // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword, not a thenable.
    then: {
      properties: {
        [field]: { pattern: '^[^/?#%\\s]*$', 'x-message': PATH_SEGMENT_SECRET_MESSAGE },
      },
    },
  };
}

/**
 * The URL of a push as its vendor was told it (`InboundRequest.hookUrl`): `server.publicUrl`
 * without its trailing slashes, then the path and query (as received by the hub, still
 * percent-encoded as sent; as built by `switchyard push` and the conformance kit). The one rule
 * for that string, so what the hub verifies and what the tools sign agree. Never from `Host` or
 * `X-Forwarded-*`: the sender chooses those.
 *
 * @example
 * ```ts
 * hookUrlOf('https://hub.example.com/', '/hooks/sq-main?x=1'); // 'https://hub.example.com/hooks/sq-main?x=1'
 * ```
 */
export function hookUrlOf(publicUrl: string, requestUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${requestUrl}`;
}
