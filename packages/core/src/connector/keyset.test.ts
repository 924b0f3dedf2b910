import { describe, expect, it } from 'vitest';
import { isConnectorError } from '../errors/index.ts';
import {
  type KeysetItem,
  type KeysetPlace,
  keysetMore,
  keysetRequest,
  nextKeysetPlace,
  readKeysetCursor,
  writeKeysetCursor,
} from './keyset.ts';

const W = '2026-03-10T10:00:00.000Z';
const NOW = Date.parse('2026-03-10T12:00:00Z');
const item = (id: string, updatedAt: string): KeysetItem => ({ id, updatedAt });

/**
 * A vendor's list, sorted by (updated_at, id), answering a request as the guide's vendor does, with
 * `per` items a page. The ids compare as strings.
 */
function list(items: KeysetItem[], per: number) {
  return (place: KeysetPlace) => {
    const request = keysetRequest(place, 0);
    const t = (i: KeysetItem) => Date.parse(i.updatedAt);
    const matching = items
      .filter((i) =>
        request.kind === 'round'
          ? t(i) >= Date.parse(request.since)
          : t(i) >= Date.parse(request.since) &&
            t(i) < Date.parse(request.before) &&
            (request.afterId === undefined || i.id > request.afterId),
      )
      .sort(
        (a, b) => (request.kind === 'round' ? t(a) - t(b) : 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      );
    return { page: matching.slice(0, per), full: matching.length > per };
  };
}

describe('keyset paging', () => {
  it('starts at the given start, a round from the watermark less the overlap', () => {
    expect(readKeysetCursor(null, W)).toEqual({ watermark: W });
    expect(keysetRequest({ watermark: W }, 60)).toEqual({ kind: 'round', since: '2026-03-10T09:59:00.000Z' });
  });

  it("after a full page reads that page's last second alone by id, from its first id, then goes on", () => {
    const full = nextKeysetPlace(
      { watermark: W },
      [item('B-6', '2026-03-10T09:59:30Z'), item('B-7', W)],
      true,
      NOW,
    );
    expect(full).toEqual({ watermark: W, from: W, afterId: '' });
    expect(keysetRequest(full, 60)).toEqual({ kind: 'second', since: W, before: '2026-03-10T10:00:01.000Z' });
    const within = nextKeysetPlace(full, [item('B-2', W), item('B-9', W)], true, NOW);
    expect(keysetRequest(within, 60)).toMatchObject({ kind: 'second', afterId: 'B-9' });
    const next = nextKeysetPlace(within, [], false, NOW);
    expect(next).toEqual({ watermark: W, from: '2026-03-10T10:00:01.000Z' });
    expect(keysetRequest(next, 60)).toEqual({ kind: 'round', since: '2026-03-10T10:00:01.000Z' });
    const end = nextKeysetPlace(next, [item('B-3', '2026-03-10T10:02:00.400Z')], false, NOW);
    expect([end, keysetMore(end), keysetMore(next)]).toEqual([
      { watermark: '2026-03-10T10:02:00.000Z' },
      false,
      true,
    ]);
  });

  it('skips nothing when an item changes between two pages of a round', () => {
    const items = ['B-1', 'B-2', 'B-3', 'B-4', 'B-5'].map((id) => item(id, W));
    const seen = new Set<string>();
    let place = readKeysetCursor(null, '2026-03-10T09:00:00.000Z');
    for (let call = 0; call < 20; call += 1) {
      const { page, full } = list(items, 2)(place);
      for (const i of page) seen.add(`${i.id}@${i.updatedAt}`);
      place = nextKeysetPlace(place, page, full, NOW);
      // B-1 changes after the first page: it moves to the end of the list.
      if (call === 0) items[0] = item('B-1', '2026-03-10T10:00:01.000Z');
      if (!keysetMore(place)) break;
    }
    expect(seen).toEqual(
      new Set([
        ...['B-1', 'B-2', 'B-3', 'B-4', 'B-5'].map((id) => `${id}@${W}`),
        'B-1@2026-03-10T10:00:01.000Z',
      ]),
    );
  });

  it('never moves the watermark past now: one item dated in the future would hide every later change', () => {
    const place = nextKeysetPlace({ watermark: W }, [item('B-1', '2027-01-01T00:00:00Z')], false, NOW);
    expect(place).toEqual({ watermark: '2026-03-10T12:00:00.000Z' });
  });

  it('brings a stored watermark past now back to now: stored before the cap, it read nothing ever again', () => {
    const stored = readKeysetCursor('2099-01-01T00:00:00Z', W);
    const place = nextKeysetPlace(stored, [], false, NOW);
    expect(place).toEqual({ watermark: '2026-03-10T12:00:00.000Z' });
    expect(keysetRequest(place, 60)).toEqual({ kind: 'round', since: '2026-03-10T11:59:00.000Z' });
  });

  it('writes a cursor it reads back, and refuses one it did not write', () => {
    for (const place of [
      { watermark: W },
      { watermark: W, from: W },
      { watermark: W, from: W, afterId: 'B|1' },
    ]) {
      expect(readKeysetCursor(writeKeysetCursor(place), W)).toEqual(place);
    }
    expect(writeKeysetCursor({ watermark: W, from: W, afterId: '' })).toBe(`${W}|${W}|`);
    const refused = (() => {
      try {
        return readKeysetCursor('yesterday|1', W);
      } catch (error) {
        return error;
      }
    })();
    expect(isConnectorError(refused) && [refused.kind, refused.message]).toEqual([
      'permanent',
      'the stored cursor "yesterday|1" is not <updated_at>[|<from>[|<after id>]]',
    ]);
    // An after id that is not URI-encoded: the same refusal, not decodeURIComponent's URIError.
    const badId = (() => {
      try {
        return readKeysetCursor(`${W}|${W}|B-%E0`, W);
      } catch (error) {
        return error;
      }
    })();
    expect(isConnectorError(badId) && [badId.kind, badId.message]).toEqual([
      'permanent',
      `the stored cursor "${W}|${W}|B-%E0" is not <updated_at>[|<from>[|<after id>]]`,
    ]);
    expect(readKeysetCursor(`${W}|${W}|${encodeURIComponent('B|7%')}`, W).afterId).toBe('B|7%');
  });
});
