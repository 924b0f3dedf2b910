import {
  ConnectorError,
  isJsonObject,
  type JsonObject,
  type PullContext,
  type PullSpec,
  parseRetryAfter,
  type VendorNotification,
  type VendorResponse,
} from '@switchyard/core';
import {
  apiBase,
  apiHeaders,
  type Config,
  clinikoTime,
  DEFAULT_OVERLAP_SECONDS,
  DEFAULT_PER_PAGE,
} from './config.ts';

/** The vendor type of every pulled appointment version: Cliniko's list says what is, not what changed. */
export const APPOINTMENT_TYPE = 'individual_appointment';

/**
 * The lists polled, in turn, each round. Cliniko's `GET /individual_appointments` leaves cancelled
 * appointments out: "cancelled or deleted appointments ... are only returned on their specific end
 * point" (Cliniko, github.com/redguava/cliniko-api/issues/139), `/individual_appointments/cancelled`.
 */
export const LISTS = ['individual_appointments', 'individual_appointments/cancelled'] as const;
export type List = (typeof LISTS)[number];

/**
 * One list's place: the watermark (the latest `updated_at` stored from it) and the page asked from
 * it. The page moves only while a whole page shares timestamps at or before the watermark (it
 * could not move the watermark, and `>=` would answer it again).
 */
export interface ListCursor {
  watermark?: string;
  page: number;
}

/** The pull cursor: each list's place, and the list the next call asks. */
export interface Cursor {
  lists: Record<List, ListCursor>;
  at: List;
}

function readListCursor(text: string | null, whole: string): ListCursor {
  if (text === null || text === '') return { page: 1 };
  const [watermark = '', page = '1'] = text.split('|');
  const n = Number(page);
  if (Number.isNaN(Date.parse(watermark)) || !Number.isInteger(n) || n < 1) {
    throw ConnectorError.permanent(
      `the stored Cliniko cursor ${JSON.stringify(whole)} is not <list>=<updated_at>|<page>&…&at=<list>`,
    );
  }
  return { watermark, page: n };
}

/**
 * Reads `individual_appointments=<updated_at>|<page>&individual_appointments/cancelled=…&at=<list>`;
 * the first form, `<updated_at>|<page>` alone, is the main list's.
 */
export function readCursor(cursor: string | null): Cursor {
  const fresh = (): Cursor => ({
    lists: { individual_appointments: { page: 1 }, 'individual_appointments/cancelled': { page: 1 } },
    at: 'individual_appointments',
  });
  if (cursor === null || cursor === '') return fresh();
  const out = fresh();
  if (!cursor.includes('=')) {
    out.lists.individual_appointments = readListCursor(cursor, cursor);
    return out;
  }
  const params = new URLSearchParams(cursor);
  for (const list of LISTS) out.lists[list] = readListCursor(params.get(list), cursor);
  const at = params.get('at');
  if (!LISTS.includes(at as List)) {
    throw ConnectorError.permanent(
      `the stored Cliniko cursor ${JSON.stringify(cursor)} names no list to ask`,
    );
  }
  out.at = at as List;
  return out;
}

export function writeCursor(cursor: Cursor): string {
  const params = new URLSearchParams();
  for (const list of LISTS) {
    const { watermark, page } = cursor.lists[list];
    if (watermark !== undefined) params.set(list, `${watermark}|${page}`);
  }
  params.set('at', cursor.at);
  // Kept readable in the instance's pull health: `|`, `/` and `:` as written.
  return params.toString().replaceAll('%7C', '|').replaceAll('%2F', '/').replaceAll('%3A', ':');
}

/** One appointment version as a notification: one dedupe key per (id, updated_at). */
export function toNotification(item: JsonObject): VendorNotification {
  const id = typeof item.id === 'number' ? String(item.id) : item.id;
  const updatedAt = item.updated_at;
  if (
    typeof id !== 'string' ||
    id === '' ||
    typeof updatedAt !== 'string' ||
    Number.isNaN(Date.parse(updatedAt))
  ) {
    throw ConnectorError.transient('Cliniko listed an appointment without id or updated_at');
  }
  return {
    type: APPOINTMENT_TYPE,
    dedupeKey: `individual_appointment:${id}@${updatedAt}`,
    orderingKey: `individual_appointment:${id}`,
    occurredAt: updatedAt,
    payload: item,
  };
}

/**
 * How long Cliniko said to wait before the next call, in ms, when it said: `Retry-After` (core's one
 * parser) if sent; else, on a 429, until `X-RateLimit-Reset`. Cliniko's limiter (200 requests a
 * minute per user) answers 429 with that header, "a UNIX timestamp of elapsed seconds" at which
 * the limit resets (github.com/redguava/cliniko-api readme, "Rate limits"), and no Retry-After.
 *
 * @example
 * ```ts
 * retryAfterMs({ status: 429, headers: { 'x-ratelimit-reset': '1773136860' } }, 1773136800_000); // 60000
 * ```
 */
export function retryAfterMs(
  res: Pick<VendorResponse, 'status' | 'headers'>,
  now = Date.now(),
): number | undefined {
  const after = parseRetryAfter(res.headers['retry-after'], now);
  if (after !== undefined || res.status !== 429) return after;
  const reset = res.headers['x-ratelimit-reset']?.trim();
  return reset !== undefined && /^\d+$/.test(reset) ? Math.max(0, Number(reset) * 1000 - now) : undefined;
}

/** A 5xx or 429 is transient (Cliniko's rate limit answers 429, see {@link retryAfterMs}); other refusals permanent. */
export function vendorFailure(res: VendorResponse, what: string): ConnectorError {
  if (res.status >= 500 || res.status === 429) {
    return ConnectorError.transient(`Cliniko answered ${res.status} to ${what}`, {
      retryAfterMs: retryAfterMs(res),
    });
  }
  if (res.status === 401 || res.status === 403) {
    return ConnectorError.permanent(`Cliniko refused the API key (${res.status}) for ${what}`);
  }
  return ConnectorError.permanent(`Cliniko answered ${res.status} to ${what}`);
}

function listUrl(config: Config, list: List, cursor: ListCursor): string {
  const query = new URLSearchParams({
    sort: 'updated_at',
    order: 'asc',
    per_page: String(config.perPage ?? DEFAULT_PER_PAGE),
    page: String(cursor.page),
  });
  if (cursor.watermark !== undefined) {
    const overlapMs = (config.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS) * 1000;
    const from = clinikoTime(Date.parse(cursor.watermark) - overlapMs);
    // Inclusive: appointments sharing the watermark's second across a page boundary are not skipped.
    query.append('q[]', `updated_at:>=${from}`);
  }
  return `${apiBase(config)}/${list}?${query}`;
}

/**
 * One page per call; `more` while the list asked has a next page, then while a list of the round
 * is still to ask (the main list, then the cancelled one). The round ends after the last list.
 */
export async function fetchAppointments(ctx: PullContext<Config>, stored: string | null) {
  const state = readCursor(stored);
  const list = state.at;
  const cursor = state.lists[list];
  const res = await ctx.http.request({
    url: listUrl(ctx.config, list, cursor),
    headers: apiHeaders(ctx.config),
  });
  const following = LISTS[LISTS.indexOf(list) + 1];
  const at = (hasNext: boolean) => (hasNext ? list : (following ?? LISTS[0]));
  if (res.status === 404 && list !== LISTS[0]) {
    // Cliniko's current reference (docs.api.cliniko.com) no longer names the cancelled list: an
    // account that does not answer it must not stop the main list being polled.
    ctx.logger.warn({ list, status: res.status }, 'Cliniko does not answer this list: skipped this round');
    return {
      notifications: [],
      cursor: writeCursor({ ...state, at: at(false) }),
      more: following !== undefined,
    };
  }
  if (res.status !== 200) throw vendorFailure(res, `the appointment list (/${list})`);
  const page = res.body;
  if (!isJsonObject(page) || !Array.isArray(page.individual_appointments)) {
    throw ConnectorError.transient('Cliniko answered the appointment list with something that is not a page');
  }
  const notifications = page.individual_appointments.map((item) => {
    if (!isJsonObject(item))
      throw ConnectorError.transient('Cliniko listed an appointment that is not an object');
    return toNotification(item);
  });
  let watermark = cursor.watermark;
  // Never past this poll's time: one appointment whose updated_at lies in the future (a clock
  // gone wrong at Cliniko, an import) moved the watermark there, and every real update after it
  // went unread with nothing reported (an attacker audit). Such an item is listed again at each
  // poll, and its dedupe key (id, updated_at) stores it once.
  const now = clinikoTime(Date.now());
  for (const n of notifications) {
    const at = Date.parse(n.occurredAt!) > Date.parse(now) ? now : n.occurredAt!;
    if (watermark === undefined || Date.parse(at) > Date.parse(watermark)) watermark = at;
  }
  const links = isJsonObject(page.links) ? page.links : {};
  const hasNext = typeof links.next === 'string' && notifications.length > 0;
  const next: ListCursor =
    watermark === cursor.watermark
      ? { ...(watermark === undefined ? {} : { watermark }), page: hasNext ? cursor.page + 1 : cursor.page }
      : { ...(watermark === undefined ? {} : { watermark }), page: 1 };
  return {
    notifications,
    cursor: writeCursor({ lists: { ...state.lists, [list]: next }, at: at(hasNext) }),
    more: hasNext || following !== undefined,
  };
}

export const pull: PullSpec<Config> = {
  defaultIntervalMs: 60_000,
  fetch: (ctx, cursor) => fetchAppointments(ctx, cursor),
};
