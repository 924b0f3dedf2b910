import {
  ConnectorError,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type KeysetPlace,
  type KeysetRequest,
  keysetMore,
  keysetRequest,
  nextKeysetPlace,
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
  DEFAULT_START_DAYS,
} from './config.ts';

/** The vendor type of every pulled appointment version: Cliniko's list says what is, not what changed. */
export const APPOINTMENT_TYPE = 'individual_appointment';

/**
 * The vendor type of every pulled unavailable block version (a practitioner's time blocked at a
 * business: github.com/redguava/cliniko-api, sections/unavailable_blocks.md).
 */
export const UNAVAILABLE_BLOCK_TYPE = 'unavailable_block';

/**
 * The lists polled, in turn, each round. Cliniko's `GET /individual_appointments` leaves cancelled
 * appointments out: "cancelled or deleted appointments ... are only returned on their specific end
 * point" (Cliniko, github.com/redguava/cliniko-api/issues/139), `/individual_appointments/cancelled`.
 * Unavailable blocks likewise: `GET /unavailable_blocks`, and the deleted ones on
 * `GET /unavailable_blocks/deleted` (sections/unavailable_blocks.md, "Get Deleted Unavailable Blocks").
 * New lists go last: a cursor stored before them resumes its lists and reaches the new ones at the
 * end of its round, from the configured start.
 */
export const LISTS = [
  'individual_appointments',
  'individual_appointments/cancelled',
  'unavailable_blocks',
  'unavailable_blocks/deleted',
] as const;
export type List = (typeof LISTS)[number];

/**
 * What each list holds: the vendor type of its items, the page's array (Cliniko names it after the
 * resource), what a message calls an item, and the refusals that skip the list for the round
 * (`skipOn`) instead of failing the poll: a 404 for the lists of removed records (Cliniko's current
 * reference no longer names the cancelled one), and a 403 or 404 for the unavailable blocks, added
 * after the appointments: an account or a key's role that cannot read blocks must not stop the
 * appointments being polled after an upgrade.
 */
const LIST_OF: Record<List, { type: string; key: string; what: string; skipOn: readonly number[] }> = {
  individual_appointments: {
    type: APPOINTMENT_TYPE,
    key: 'individual_appointments',
    what: 'appointment',
    skipOn: [],
  },
  'individual_appointments/cancelled': {
    type: APPOINTMENT_TYPE,
    key: 'individual_appointments',
    what: 'appointment',
    skipOn: [404],
  },
  unavailable_blocks: {
    type: UNAVAILABLE_BLOCK_TYPE,
    key: 'unavailable_blocks',
    what: 'unavailable block',
    skipOn: [403, 404],
  },
  'unavailable_blocks/deleted': {
    type: UNAVAILABLE_BLOCK_TYPE,
    key: 'unavailable_blocks',
    what: 'unavailable block',
    skipOn: [403, 404],
  },
};

/**
 * One list's place, as `@switchyard/core`'s keyset helpers keep it ({@link KeysetPlace}; the paging
 * rule of docs/writing-a-connector.md §9 is theirs): `watermark`, the latest `updated_at` second
 * stored from the list, where each round starts (less `overlapSeconds`); while a round is under
 * way, `from`, the second it goes on from, and, while that second is read alone by id, `afterId`,
 * the last id read of it (`''`: none yet, the whole second). No watermark: the list was never asked.
 */
export type ListCursor = Partial<KeysetPlace>;

/** The pull cursor: each list's place, and the list the next call asks. */
export interface Cursor {
  lists: Record<List, ListCursor>;
  at: List;
}

const ID = /^\d{1,20}$/;

/**
 * One list's `<watermark>|<from>|<id>` (empty fields where unset; `0` for a whole second, Cliniko's
 * ids being positive), or the `<watermark>|<page>` of the versions that paged by number.
 */
function readListCursor(text: string | null, whole: string): ListCursor {
  if (text === null || text === '') return {};
  const parts = text.split('|');
  const bad = () =>
    ConnectorError.permanent(
      `the stored Cliniko cursor ${JSON.stringify(whole)} is not <list>=<updated_at>|<from>|<id>&…&at=<list>`,
    );
  const [watermark = '', second = '', afterId = ''] = parts;
  if (Number.isNaN(Date.parse(watermark))) throw bad();
  if (parts.length === 2) {
    // Written before the keyset (`<updated_at>|<page>`): the round starts again at its watermark.
    if (!/^[1-9]\d*$/.test(second)) throw bad();
    return { watermark };
  }
  if (parts.length !== 3) throw bad();
  if (second === '') {
    if (afterId !== '') throw bad();
    return { watermark };
  }
  if (Number.isNaN(Date.parse(second)) || (afterId !== '' && !ID.test(afterId))) throw bad();
  if (afterId === '') return { watermark, from: second };
  return { watermark, from: second, afterId: afterId === '0' ? '' : afterId };
}

/**
 * Reads `individual_appointments=<watermark>|<from>|<afterId>&individual_appointments/cancelled=…&at=<list>`
 * (`from` and `afterId` empty between rounds); a list's `<updated_at>|<page>` of earlier versions,
 * and the first form, `<updated_at>|<page>` alone (the main list's), are read as its watermark. A
 * list the cursor does not name (one never asked, or added since it was stored: the unavailable
 * blocks) has no watermark: it starts at the configured start.
 */
export function readCursor(cursor: string | null): Cursor {
  const fresh = (): Cursor => ({
    lists: Object.fromEntries(LISTS.map((list) => [list, {}])) as Record<List, ListCursor>,
    at: LISTS[0],
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

/**
 * The cursor {@link readCursor} reads back. Times in UTC seconds, as Cliniko writes them (core's
 * helpers give `toISOString`'s milliseconds), and a whole second's `afterId` as `0`: the form every
 * version since the keyset stored, so a cursor stored by one reads the same in the other.
 */
export function writeCursor(cursor: Cursor): string {
  const params = new URLSearchParams();
  for (const list of LISTS) {
    const { watermark, from, afterId } = cursor.lists[list];
    if (watermark === undefined) continue;
    const second = from === undefined ? '' : clinikoTime(from);
    const id = afterId === undefined ? '' : afterId === '' ? '0' : afterId;
    params.set(list, `${clinikoTime(watermark)}|${second}|${id}`);
  }
  params.set('at', cursor.at);
  // Kept readable in the instance's pull health: `|`, `/` and `:` as written.
  return params.toString().replaceAll('%7C', '|').replaceAll('%2F', '/').replaceAll('%3A', ':');
}

/**
 * One appointment or unavailable block version as a notification: one dedupe key per (type, id,
 * updated_at), ordered per record.
 */
export function toNotification(item: JsonObject, type: string = APPOINTMENT_TYPE): VendorNotification {
  const id = typeof item.id === 'number' ? String(item.id) : item.id;
  const updatedAt = item.updated_at;
  if (
    typeof id !== 'string' ||
    id === '' ||
    typeof updatedAt !== 'string' ||
    Number.isNaN(Date.parse(updatedAt))
  ) {
    throw ConnectorError.transient(
      `Cliniko listed ${type === APPOINTMENT_TYPE ? 'an appointment' : 'an unavailable block'} without id or updated_at`,
    );
  }
  return {
    type,
    dedupeKey: `${type}:${id}@${updatedAt}`,
    orderingKey: `${type}:${id}`,
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

/**
 * Where a list's first poll starts: `startFrom`, else {@link DEFAULT_START_DAYS} days before now.
 *
 * @example
 * ```ts
 * startOf({ ...config, startFrom: '2026-01-01T00:00:00Z' }); // '2026-01-01T00:00:00Z'
 * startOf(config, Date.parse('2026-03-31T12:00:00Z')); // '2026-03-01T12:00:00Z' (30 days back)
 * ```
 */
export function startOf(config: Config, now = Date.now()): string {
  return clinikoTime(config.startFrom ?? now - DEFAULT_START_DAYS * 86_400_000);
}

function listUrl(config: Config, list: List, request: KeysetRequest): string {
  const query = new URLSearchParams({ per_page: String(config.perPage ?? DEFAULT_PER_PAGE) });
  // Archived appointments are left out of every list unless asked for: "The `*` operator can be
  // used to find cancelled or archived records on an endpoint that would usually exclude them"
  // (docs.api.cliniko.com, Filtering Results, "All records including archived":
  // `q[]=archived_at:*`). Cliniko's current API archives where it deleted: without it, an
  // appointment archived was never seen again.
  query.append('q[]', 'archived_at:*');
  query.append('q[]', `updated_at:>=${clinikoTime(request.since)}`);
  if (request.kind === 'second') {
    // One second, by id: DateTime filters have no `=`, so [since, before); ids are positive, so
    // `id:>0` is the whole second.
    query.append('q[]', `updated_at:<${clinikoTime(request.before)}`);
    query.append('q[]', `id:>${request.afterId ?? '0'}`);
    query.set('sort', 'id');
  } else {
    // Ties broken by id, so that the keyset (second, id) names a place in the list.
    query.set('sort', 'updated_at,id');
  }
  query.set('order', 'asc');
  return `${apiBase(config)}/${list}?${query}`;
}

/**
 * One page per call; `more` while the list asked has more to read, then while a list of the round
 * is still to ask ({@link LISTS}: the appointments, the cancelled ones, the unavailable blocks, the
 * deleted ones). The round ends after the last list.
 * Each list is read by keyset with `@switchyard/core`'s helpers ({@link ListCursor}): from the
 * watermark less the overlap, then, after a full page, its last second on its own by id, then on
 * from the next second; no page number, so no item is skipped however the list changes meanwhile,
 * and the watermark never past the poll's time.
 */
export async function fetchAppointments(ctx: PullContext<Config>, stored: string | null) {
  const state = readCursor(stored);
  const list = state.at;
  const place: KeysetPlace = {
    ...state.lists[list],
    watermark: state.lists[list].watermark ?? startOf(ctx.config),
  };
  const request = keysetRequest(place, ctx.config.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS);
  const res = await ctx.http.request({
    url: listUrl(ctx.config, list, request),
    headers: apiHeaders(ctx.config),
  });
  const following = LISTS[LISTS.indexOf(list) + 1];
  const after = following ?? LISTS[0];
  const of = LIST_OF[list];
  if (of.skipOn.includes(res.status)) {
    // Cliniko's current reference (docs.api.cliniko.com) no longer names the cancelled list, and a
    // key's role may not read blocks: a list the account does not answer must not stop the others
    // being polled ({@link LIST_OF}).
    ctx.logger.warn({ list, status: res.status }, 'Cliniko does not answer this list: skipped this round');
    return {
      notifications: [],
      cursor: writeCursor({ ...state, at: after }),
      more: following !== undefined,
    };
  }
  if (res.status !== 200) throw vendorFailure(res, `the ${of.what} list (/${list})`);
  const page = res.body;
  if (!isJsonObject(page) || !Array.isArray(page[of.key])) {
    throw ConnectorError.transient(`Cliniko answered the ${of.what} list with something that is not a page`);
  }
  const notifications = (page[of.key] as JsonValue[]).map((item) => {
    if (!isJsonObject(item))
      throw ConnectorError.transient(`Cliniko listed an ${of.what} that is not an object`);
    return toNotification(item, of.type);
  });
  const items = notifications.map((n) => {
    const id = n.orderingKey!.slice(of.type.length + 1);
    // The id goes into the next call's `q[]=id:>…`, which Cliniko compares as a number.
    if (!ID.test(id))
      throw ConnectorError.transient(`Cliniko listed an ${of.what} whose id ${id} is not a number`);
    return { updatedAt: n.occurredAt!, id };
  });
  const links = isJsonObject(page.links) ? page.links : {};
  const next = nextKeysetPlace(place, items, typeof links.next === 'string');
  const more = keysetMore(next);
  return {
    notifications,
    cursor: writeCursor({ lists: { ...state.lists, [list]: next }, at: more ? list : after }),
    more: more || following !== undefined,
  };
}

export const pull: PullSpec<Config> = {
  defaultIntervalMs: 60_000,
  fetch: (ctx, cursor) => fetchAppointments(ctx, cursor),
};
