/**
 * The place of a pull connector that reads a vendor's list by keyset (docs/writing-a-connector.md
 * §9, "Page by keyset, never by page number"), for a list sorted by `(updated_at, id)` that the
 * vendor filters by time and by id: where the next call starts, how a page moves it, and the
 * cursor string the hub stores. The connector maps a {@link KeysetRequest} to its vendor's query
 * parameters; the paging rule is the same for every such vendor, so it lives here once.
 *
 * A round reads from the watermark (less an overlap for writes committed late) sorted by
 * `(updated_at, id)`; after a full page, that page's last second alone by id from its first id (a
 * vendor that shows seconds but keeps finer times may sort one of that second below the page's
 * last id), then on from the next second, until a page is not full. A page number skipped items
 * (one changed while a round paged moved to the end of the list and every later one a place up,
 * onto the page just read), and a page of one timestamp could not move the watermark.
 */
import { ConnectorError } from '../errors/index.ts';

/** Where a keyset read is. */
export interface KeysetPlace {
  /** The latest `updated_at` second stored (never past the poll that read it): each round starts here. */
  watermark: string;
  /** Set while a round is under way: the next call asks `updated_at` from this second on. */
  from?: string;
  /** With `from`: the next call asks that second alone, by id, after this id (`''`: all of it). */
  afterId?: string;
}

/**
 * What the next call asks: `round`, `updated_at >= since` sorted by `(updated_at, id)`; `second`,
 * `since <= updated_at < before` sorted by id, ids after `afterId` when set.
 */
export type KeysetRequest =
  | { kind: 'round'; since: string }
  | { kind: 'second'; since: string; before: string; afterId?: string };

/** One listed item's place: its `updated_at` and id, as the vendor gave them. */
export interface KeysetItem {
  updatedAt: string;
  id: string;
}

/** A time's second, as an ISO string (`2026-03-10T10:00:00.000Z`). */
function secondOf(time: string | number): string {
  return new Date(Math.floor(new Date(time).getTime() / 1000) * 1000).toISOString();
}

function isTime(text: string): boolean {
  return !Number.isNaN(Date.parse(text));
}

/**
 * Reads a stored cursor: `<watermark>` between rounds, `<watermark>|<from>` or
 * `<watermark>|<from>|<after id>` within one (the id URI-encoded). No cursor yet: the place is
 * `start` (where the first poll starts: bound it, never the account's whole history). A cursor it
 * did not write is a `permanent` ConnectorError.
 *
 * @example
 * ```ts
 * readKeysetCursor(null, '2026-01-01T00:00:00.000Z'); // { watermark: '2026-01-01T00:00:00.000Z' }
 * readKeysetCursor('2026-03-10T10:00:00.000Z|2026-03-10T10:00:00.000Z|B-7', start); // { watermark, from, afterId: 'B-7' }
 * ```
 */
export function readKeysetCursor(cursor: string | null, start: string): KeysetPlace {
  if (cursor === null || cursor === '') return { watermark: start };
  const [watermark = '', from, afterId, ...rest] = cursor.split('|');
  // An id that is not URI-encoded (a lone `%`) threw decodeURIComponent's URIError, not this.
  const id = afterId === undefined ? undefined : decodedId(afterId);
  if (rest.length > 0 || !isTime(watermark) || (from !== undefined && !isTime(from)) || id === null) {
    throw ConnectorError.permanent(
      `the stored cursor ${JSON.stringify(cursor)} is not <updated_at>[|<from>[|<after id>]]`,
    );
  }
  return {
    watermark,
    ...(from === undefined ? {} : { from }),
    ...(id === undefined ? {} : { afterId: id }),
  };
}

/** A cursor's URI-encoded id, or null when it is not one. */
function decodedId(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/**
 * The cursor string of a place ({@link readKeysetCursor} reads it back).
 *
 * @example
 * ```ts
 * writeKeysetCursor({ watermark: W, from: W, afterId: '' }); // `${W}|${W}|`
 * ```
 */
export function writeKeysetCursor(place: KeysetPlace): string {
  const { watermark, from, afterId } = place;
  if (from === undefined) return watermark;
  return afterId === undefined
    ? `${watermark}|${from}`
    : `${watermark}|${from}|${encodeURIComponent(afterId)}`;
}

/**
 * What the call from `place` asks; a round starts `overlapSeconds` before the watermark.
 *
 * @example
 * ```ts
 * keysetRequest({ watermark: '2026-03-10T10:00:00.000Z' }, 60); // { kind: 'round', since: '2026-03-10T09:59:00.000Z' }
 * ```
 */
export function keysetRequest(place: KeysetPlace, overlapSeconds: number): KeysetRequest {
  if (place.from !== undefined && place.afterId !== undefined) {
    return {
      kind: 'second',
      since: place.from,
      before: secondOf(Date.parse(place.from) + 1000),
      ...(place.afterId === '' ? {} : { afterId: place.afterId }),
    };
  }
  return {
    kind: 'round',
    since: place.from ?? secondOf(Date.parse(place.watermark) - overlapSeconds * 1000),
  };
}

/**
 * The place after a page read from `place`: `items` as the vendor listed them (its order), `full`
 * when the vendor has more than the page held. The watermark moves to the latest second listed,
 * never past `now`: one item whose `updated_at` lay in the future (a vendor clock gone wrong, an
 * import) would otherwise move it there, and every real change after it went unread; such an
 * item is listed again each round, and its dedupe key stores it once. A stored watermark past now
 * comes back to now. Another call is due at once
 * while the result has `from` ({@link keysetMore}).
 *
 * @example
 * ```ts
 * nextKeysetPlace({ watermark: W }, [{ updatedAt: W, id: 'B-1' }, { updatedAt: W, id: 'B-2' }], true);
 * // { watermark: W, from: W, afterId: '' }: that second alone next
 * ```
 */
export function nextKeysetPlace(
  place: KeysetPlace,
  items: readonly KeysetItem[],
  full: boolean,
  now: number = Date.now(),
): KeysetPlace {
  const cap = secondOf(now);
  // A stored watermark already past now (written before the cap, by a connector that had no such
  // rule) is brought back to it: left there, every round asked from the future and read nothing.
  let watermark = Date.parse(place.watermark) > Date.parse(cap) ? cap : place.watermark;
  for (const item of items) {
    if (!isTime(item.updatedAt)) {
      throw ConnectorError.transient(
        `the vendor listed ${item.id} with updated_at ${JSON.stringify(item.updatedAt)}`,
      );
    }
    const second = secondOf(item.updatedAt);
    const capped = Date.parse(second) > Date.parse(cap) ? cap : second;
    if (Date.parse(capped) > Date.parse(watermark)) watermark = capped;
  }
  const last = items.at(-1);
  if (full && last !== undefined) {
    // Within that second: go on after the page's last id. Else that whole second by id, from its first.
    if (place.from !== undefined && place.afterId !== undefined)
      return { watermark, from: place.from, afterId: last.id };
    return { watermark, from: secondOf(last.updatedAt), afterId: '' };
  }
  // That second is read: on from the next one, in the same round.
  if (place.from !== undefined && place.afterId !== undefined) {
    return { watermark, from: secondOf(Date.parse(place.from) + 1000) };
  }
  // The list is read to its end: the next round starts at the watermark again.
  return { watermark };
}

/** Whether a round is under way at `place` (the pull's `more`: call again at once). */
export function keysetMore(place: KeysetPlace): boolean {
  return place.from !== undefined;
}
